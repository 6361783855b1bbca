//! Stack traces, read once for everyone: where one starts (`heads`, for the multiline stage),
//! what it holds (`parse`, per-language readers in `langs`), its fingerprint and title (for the
//! cluster stage), and the fault view the model stage needs to find the code (`fault`).
//!
//! In: a record's message and trace text (Java/Kotlin/.NET, Python, Go, Rust, Node.js). Out: the
//! chain of exceptions, each with its type, message and frames (`model`); and a fingerprint: a
//! stable hash of each exception's type and its top in-app frames, with line numbers,
//! addresses, argument values and generated names (Java lambdas and proxies, Rust symbol
//! hashes) removed, so the same bug hashes the same across builds, hosts and restarts. Go and
//! Rust panics have no exception type: the masked panic message stands in. No state.

pub mod fault;
pub mod heads;
mod langs;
mod model;

pub use model::{Exception, Frame, InApp, Lang, Trace, normalize_file, normalize_function};

use crate::core::hash::stable_hash;
use crate::mask::mask_line;

/// Parses the trace of a record whose head line is `message`.
pub fn parse(message: &str, trace: &str, in_app: &InApp) -> Option<Trace> {
    let text_has = |needle: &str| message.contains(needle) || trace.contains(needle);
    let lines = || std::iter::once(message).chain(trace.lines());
    if text_has("Traceback (most recent call last):") {
        return Some(langs::python(lines(), in_app));
    }
    if message.contains(" panicked at ") || trace.contains(" panicked at ") {
        return Some(langs::rust(lines(), in_app));
    }
    if lines().any(|l| l.starts_with("goroutine ") && l.ends_with("]:"))
        || message.starts_with("panic: ")
    {
        return Some(langs::go(lines(), in_app));
    }
    if lines()
        .any(|l| l.trim_start().starts_with("at ") && (l.starts_with(' ') || l.starts_with('\t')))
    {
        return Some(langs::stack(lines(), in_app));
    }
    None
}

impl Trace {
    /// Hash of each exception's type and top `max_frames` in-app frames (all frames when none
    /// is in-app; the masked message when there are no frames).
    pub fn fingerprint(&self, max_frames: usize) -> u64 {
        let mut material = String::new();
        for ex in self.exceptions.iter().take(5) {
            material.push_str(&ex.type_name);
            material.push('\n');
            let in_app = ex.frames.iter().any(|f| f.in_app);
            let frames = ex
                .frames
                .iter()
                .filter(|f| f.in_app || !in_app)
                .take(max_frames);
            let mut any = false;
            for f in frames {
                any = true;
                material.push_str(&f.function);
                material.push('@');
                material.push_str(&f.file);
                material.push('\n');
            }
            if !any {
                material.push_str(&mask_line(&ex.message));
                material.push('\n');
            }
        }
        stable_hash(material.as_bytes())
    }

    /// `Type: masked message (at top in-app function)` of the outermost exception.
    pub fn title(&self) -> String {
        let Some(ex) = self.exceptions.first() else {
            return String::from("stack trace");
        };
        let msg = mask_line(&ex.message);
        let title = crate::core::record::truncate_title(&if msg.is_empty() {
            ex.type_name.clone()
        } else {
            format!("{}: {}", ex.type_name, msg)
        });
        let root = self.exceptions.last().unwrap_or(ex);
        let top = root
            .frames
            .iter()
            .find(|f| f.in_app)
            .or(root.frames.first());
        match top {
            Some(f) => format!("{title} (at {})", f.function),
            None => title,
        }
    }
}
