//! Multiline stage: joins stack-trace continuation lines to the log line they belong to.
//!
//! In: the physical lines of one source, in order. Out: records (`RawLine` whose bytes may hold
//! several lines joined with `\n`); a record is emitted when the next record's head arrives, or
//! at end of input (`flush`), where an unfinished trace is marked `cut`. State: per source, the
//! open record and which kind of trace it is in. Understands Java (`at …`, `Caused by:`,
//! `... N more`), Python tracebacks (including chained ones), Go panics and goroutine dumps, Rust
//! panics with backtraces, Node.js stacks, and indented continuation lines in general.
//!
//! Nothing is dropped: a record that would exceed `max_lines`/`max_bytes` is emitted and the
//! line starts a new record. Invalid UTF-8 or oversize lines never join anything.

use serde::{Deserialize, Serialize};

use crate::core::record::RawLine;
use crate::trace::heads::{
    exception_header, go_call, go_head, python_exception_line, rust_frame, rust_head, starts_ws,
};

/// `[multiline]`: joining stack traces.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct MultilineConfig {
    /// Join continuation lines at all. Off for sources that are one record per line.
    pub enabled: bool,
    /// Most physical lines in one record.
    pub max_lines: u32,
    /// Most bytes in one record.
    pub max_bytes: usize,
}

impl Default for MultilineConfig {
    fn default() -> Self {
        MultilineConfig {
            enabled: true,
            max_lines: 1000,
            max_bytes: 1 << 20,
        }
    }
}

/// Which trace the open record is in, and what it still expects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// A log line; no trace yet.
    Head,
    /// A JSON object line: complete in itself (a stack travels inside one of its fields).
    Closed,
    /// Java or Node.js: exception header seen; `frames` counts `at` lines.
    Stack { frames: u32 },
    /// Python: inside `Traceback …:`, waiting for the exception line.
    Python,
    /// Python: exception line seen; chained tracebacks may follow.
    PythonDone,
    /// Go panic or goroutine dump; `goroutines` counts `goroutine N [...]:` lines.
    Go { goroutines: u32 },
    /// Rust panic; `expect_message` right after `panicked at file:line:col:`.
    Rust {
        expect_message: bool,
        frames: u32,
        backtrace: bool,
    },
}

impl Mode {
    /// Would ending input here leave the trace unfinished?
    fn unfinished(self) -> bool {
        match self {
            Mode::Head | Mode::Closed | Mode::PythonDone => false,
            Mode::Stack { frames } => frames == 0,
            Mode::Python => true,
            Mode::Go { goroutines } => goroutines == 0,
            Mode::Rust {
                expect_message,
                frames,
                backtrace,
            } => expect_message || (backtrace && frames == 0),
        }
    }
}

struct Open {
    rec: RawLine,
    mode: Mode,
    /// The last physical line had no newline at end of input.
    unterminated: bool,
}

/// The per-source joiner.
pub struct Joiner {
    cfg: MultilineConfig,
    open: Option<Open>,
}

impl Joiner {
    pub fn new(cfg: MultilineConfig) -> Joiner {
        Joiner { cfg, open: None }
    }

    /// Feeds one physical line (`unterminated` when it had no newline at end of input); pushes
    /// the record it completes, if any, to `out`.
    pub fn push(&mut self, line: RawLine, unterminated: bool, out: &mut Vec<RawLine>) {
        let text = match (line.oversize, std::str::from_utf8(&line.bytes)) {
            (None, Ok(text)) if self.cfg.enabled => text,
            _ => {
                self.emit(false, out);
                out.push(line);
                return;
            }
        };
        if let Some(open) = &mut self.open
            && let Some(mode) = continuation(open.mode, text)
        {
            let fits = open.rec.lines < self.cfg.max_lines
                && open.rec.bytes.len() + 1 + line.bytes.len() <= self.cfg.max_bytes;
            if fits {
                open.rec.bytes.push(b'\n');
                open.rec.bytes.extend_from_slice(&line.bytes);
                open.rec.lines += 1;
                open.mode = mode;
                open.unterminated = unterminated;
                return;
            }
        }
        let mode = head_mode(text);
        self.emit(false, out);
        self.open = Some(Open {
            rec: line,
            mode,
            unterminated,
        });
    }

    /// End of input (or an idle source): emits the open record; at end of input an unfinished
    /// trace is marked `cut`.
    pub fn flush(&mut self, end_of_input: bool, out: &mut Vec<RawLine>) {
        self.emit(end_of_input, out);
    }

    pub fn is_open(&self) -> bool {
        self.open.is_some()
    }

    /// The offset of the open record's first line (nothing at or after it is fully processed).
    pub fn open_head(&self) -> Option<u64> {
        self.open.as_ref().map(|o| o.rec.pos.offset)
    }

    fn emit(&mut self, end_of_input: bool, out: &mut Vec<RawLine>) {
        if let Some(mut open) = self.open.take() {
            while open.rec.lines > 1 && open.rec.bytes.last() == Some(&b'\n') {
                open.rec.bytes.pop();
            }
            // A lone exception header (`Error: disk full`) is a message, not a cut trace; a lone
            // `Traceback …:` or `panic: …` line is the start of one.
            let multi = open.rec.lines > 1;
            let unfinished =
                open.mode.unfinished() && (multi || !matches!(open.mode, Mode::Stack { .. }));
            open.rec.cut = end_of_input && (unfinished || (open.unterminated && multi));
            out.push(open.rec);
        }
    }
}

/// The mode a record starts in, from its first line.
fn head_mode(s: &str) -> Mode {
    if s.starts_with('{') && s.trim_end().ends_with('}') {
        Mode::Closed
    } else if go_head(s) {
        Mode::Go { goroutines: 0 }
    } else if rust_head(s) {
        Mode::Rust {
            expect_message: s.ends_with(':'),
            frames: 0,
            backtrace: false,
        }
    } else if s.starts_with("Traceback (most recent call last):") {
        Mode::Python
    } else if exception_header(s) {
        Mode::Stack { frames: 0 }
    } else {
        Mode::Head
    }
}

/// If `s` continues a record in `mode`, the record's mode after it.
fn continuation(mode: Mode, s: &str) -> Option<Mode> {
    let t = s.trim_start();
    match mode {
        Mode::Closed => None,
        Mode::Head => {
            if s.starts_with("Traceback (most recent call last):") {
                Some(Mode::Python)
            } else if exception_header(s) {
                Some(Mode::Stack { frames: 0 })
            } else if starts_ws(s) && !t.is_empty() {
                Some(if t.starts_with("at ") {
                    Mode::Stack { frames: 1 }
                } else {
                    Mode::Head
                })
            } else {
                None
            }
        }
        Mode::Stack { frames } => {
            if starts_ws(s) && t.starts_with("at ") {
                Some(Mode::Stack { frames: frames + 1 })
            } else if (starts_ws(s) && !t.is_empty())
                || t.starts_with("Caused by:")
                || t.starts_with("Suppressed:")
            {
                Some(mode)
            } else {
                None
            }
        }
        Mode::Python => {
            if starts_ws(s) || s.is_empty() {
                Some(Mode::Python)
            } else if python_exception_line(s) {
                Some(Mode::PythonDone)
            } else {
                None
            }
        }
        Mode::PythonDone => {
            if s.is_empty()
                || s.starts_with("During handling of the above exception")
                || s.starts_with("The above exception was the direct cause")
            {
                Some(Mode::PythonDone)
            } else if s.starts_with("Traceback (most recent call last):") {
                Some(Mode::Python)
            } else {
                None
            }
        }
        Mode::Go { goroutines } => {
            if s.starts_with("goroutine ") {
                Some(Mode::Go {
                    goroutines: goroutines + 1,
                })
            } else if s.is_empty()
                || starts_ws(s)
                || s.starts_with("[signal ")
                || s.starts_with("created by ")
                || s.starts_with("exit status ")
                || s.starts_with("panic: ")
                || go_call(s)
            {
                Some(mode)
            } else {
                None
            }
        }
        Mode::Rust {
            expect_message,
            frames,
            backtrace,
        } => {
            if expect_message {
                Some(Mode::Rust {
                    expect_message: false,
                    frames,
                    backtrace,
                })
            } else if s.starts_with("stack backtrace:") {
                Some(Mode::Rust {
                    expect_message,
                    frames,
                    backtrace: true,
                })
            } else if rust_frame(s) {
                Some(Mode::Rust {
                    expect_message,
                    frames: frames + 1,
                    backtrace,
                })
            } else if s.starts_with("note: ") {
                Some(mode)
            } else {
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::record::Position;

    fn join(text: &str, eof_newline: bool) -> Vec<(String, bool)> {
        let mut j = Joiner::new(MultilineConfig::default());
        let mut out = Vec::new();
        let lines: Vec<&str> = text.lines().collect();
        for (i, l) in lines.iter().enumerate() {
            let raw = RawLine {
                pos: Position {
                    source: 0,
                    offset: i as u64,
                    line: i as u64 + 1,
                },
                bytes: l.as_bytes().to_vec(),
                lines: 1,
                ..Default::default()
            };
            j.push(raw, !eof_newline && i + 1 == lines.len(), &mut out);
        }
        j.flush(true, &mut out);
        out.into_iter()
            .map(|r| (String::from_utf8(r.bytes).expect("utf8"), r.cut))
            .collect()
    }

    #[test]
    fn java_with_cause() {
        let text = "2024-03-01 12:00:00 ERROR [main] App: failed\njava.lang.IllegalStateException: boom\n\tat a.B.c(B.java:10)\n\tat a.B.main(B.java:3)\nCaused by: java.lang.NullPointerException\n\tat a.C.d(C.java:5)\n\t... 2 more\n2024-03-01 12:00:01 INFO [main] App: next";
        let out = join(text, true);
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].0.lines().count(), 7);
        assert!(!out[0].1);
    }

    #[test]
    fn python_chained_then_log() {
        let text = "ERROR:root:failed\nTraceback (most recent call last):\n  File \"a.py\", line 1, in <module>\n    f()\nKeyError: 'x'\n\nDuring handling of the above exception, another exception occurred:\n\nTraceback (most recent call last):\n  File \"a.py\", line 3, in <module>\n    g()\nValueError: y\nINFO:root:next";
        let out = join(text, true);
        assert_eq!(out.len(), 2, "{out:?}");
        assert!(out[0].0.ends_with("ValueError: y"));
    }

    #[test]
    fn go_rust_node() {
        let go = "panic: runtime error: index out of range [5] with length 3\n\ngoroutine 1 [running]:\nmain.main()\n\t/app/main.go:12 +0x1d\nexit status 2\nnext line";
        assert_eq!(join(go, true).len(), 2);
        let rust = "thread 'main' panicked at src/main.rs:4:5:\ncalled `Option::unwrap()` on a `None` value\nstack backtrace:\n   0: rust_begin_unwind\n             at /rustc/x/library/std/src/panicking.rs:647:5\n   1: app::run\nnote: Some details are omitted\nnext";
        assert_eq!(join(rust, true).len(), 2);
        // Rust ≥ 1.91 names the thread id too.
        let rust = rust.replace("'main' panicked", "'main' (14316) panicked");
        assert_eq!(join(&rust, true).len(), 2);
        let node = "TypeError: Cannot read properties of undefined (reading 'id')\n    at handler (/app/src/h.js:10:15)\n    at process.processTicksAndRejections (node:internal/process/task_queues:95:5)\nnext";
        assert_eq!(join(node, true).len(), 2);
    }

    #[test]
    fn cut_at_end_of_input() {
        let out = join(
            "ERROR x\nTraceback (most recent call last):\n  File \"a.py\", line 1, in <module>",
            true,
        );
        assert_eq!(out.len(), 1);
        assert!(
            out[0].1,
            "python traceback without its exception line is cut"
        );
        let out = join(
            "ERROR x\njava.lang.IllegalStateException: y\n\tat a.B.c(B.j",
            false,
        );
        assert!(out[0].1, "unterminated frame line is cut");
        let out = join("just a line without newline", false);
        assert!(!out[0].1);
    }

    #[test]
    fn caps_never_drop_lines() {
        let mut j = Joiner::new(MultilineConfig {
            max_lines: 3,
            ..Default::default()
        });
        let mut out = Vec::new();
        for (i, l) in ["head", " a", " b", " c", " d"].iter().enumerate() {
            j.push(
                RawLine {
                    pos: Position {
                        offset: i as u64,
                        ..Default::default()
                    },
                    bytes: l.as_bytes().to_vec(),
                    lines: 1,
                    ..Default::default()
                },
                false,
                &mut out,
            );
        }
        j.flush(true, &mut out);
        let total: u32 = out.iter().map(|r| r.lines).sum();
        assert_eq!((out.len(), total), (2, 5));
    }
}
