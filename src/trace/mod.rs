//! Stack traces: parse, normalise, fingerprint.
//!
//! In: a record's message and trace text (Java/Kotlin/.NET, Python, Go, Rust, Node.js). Out: the
//! chain of exceptions, each with its type, message and frames (function, file, in-app flag);
//! and a fingerprint: a stable hash of each exception's type and its top in-app frames, with
//! line numbers, addresses, argument values and generated names (Java lambdas and proxies, Rust
//! symbol hashes) removed, so the same bug hashes the same across builds, hosts and restarts.
//! Go and Rust panics have no exception type: the masked panic message stands in. No state.

mod langs;

use crate::core::hash::stable_hash;
use crate::mask::mask_line;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lang {
    Java,
    Python,
    Go,
    Rust,
    Node,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    pub function: String,
    pub file: String,
    pub in_app: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Exception {
    pub type_name: String,
    pub message: String,
    /// Innermost (most recent call) first.
    pub frames: Vec<Frame>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Trace {
    pub lang: Lang,
    /// Outermost first (for Python: the last printed, which is the one that escaped).
    pub exceptions: Vec<Exception>,
}

/// Which frames belong to the application. Configured prefixes win over the built-in lists of
/// standard-library and framework namespaces.
#[derive(Clone, Debug, Default)]
pub struct InApp {
    pub include: Vec<String>,
    pub exclude: Vec<String>,
}

const JAVA_LIBS: &[&str] = &[
    "java.",
    "javax.",
    "jdk.",
    "sun.",
    "com.sun.",
    "kotlin.",
    "kotlinx.",
    "scala.",
    "groovy.",
    "org.springframework.",
    "org.apache.",
    "org.eclipse.",
    "io.netty.",
    "com.google.",
    "com.fasterxml.",
    "reactor.",
    "io.reactivex.",
    "org.hibernate.",
    "org.junit.",
    "junit.",
    "org.slf4j.",
    "ch.qos.",
    "net.bytebuddy.",
    "io.micrometer.",
    "okhttp3.",
    "akka.",
    "System.",
    "Microsoft.",
];
const RUST_LIBS: &[&str] = &[
    "std::",
    "core::",
    "alloc::",
    "backtrace::",
    "rust_begin_unwind",
    "rust_panic",
    "__rust",
    "_start",
    "__libc",
    "<std::",
    "<core::",
    "<alloc::",
    "tokio::",
    "futures::",
    "futures_util::",
    "start_thread",
    "clone",
];

impl InApp {
    fn decide(&self, lang: Lang, function: &str, file: &str) -> bool {
        let hit = |list: &[String]| {
            list.iter()
                .any(|p| function.starts_with(p.as_str()) || file.contains(p.as_str()))
        };
        if hit(&self.include) {
            return true;
        }
        if hit(&self.exclude) {
            return false;
        }
        match lang {
            Lang::Java => {
                !JAVA_LIBS.iter().any(|p| function.starts_with(p)) && !function.contains("$$Lambda")
            }
            Lang::Python => {
                !(file.contains("site-packages/")
                    || file.contains("dist-packages/")
                    || file.contains("/lib/python")
                    || file.starts_with('<'))
            }
            Lang::Go => {
                // The import path's first element: `main`, `runtime`, `net` (standard library,
                // no dot) or `github.com` (a module, which is the application's or a dependency's).
                let first = match function.split_once('/') {
                    Some((first, _)) => first,
                    None => function.split('.').next().unwrap_or(""),
                };
                first == "main" || first.contains('.')
            }
            Lang::Rust => {
                !RUST_LIBS.iter().any(|p| function.starts_with(p))
                    && !file.contains("/rustc/")
                    && !file.contains(".cargo/registry")
            }
            Lang::Node => {
                !(file.starts_with("node:")
                    || file.starts_with("internal/")
                    || file.contains("node_modules/"))
            }
        }
    }
}

/// Removes generated parts of a function name: lambda counters, proxy and CGLIB suffixes,
/// `0x…` addresses, Rust symbol hashes, Go argument lists.
pub fn normalize_function(f: &str) -> String {
    let mut out = String::with_capacity(f.len());
    for (i, seg) in f.split('.').enumerate() {
        if i > 0 {
            out.push('.');
        }
        let seg = seg.split_once("$$Lambda").map_or(seg, |(a, _)| a);
        let seg = seg.split_once("$$EnhancerBy").map_or(seg, |(a, _)| a);
        let seg = seg.split_once("$$FastClassBy").map_or(seg, |(a, _)| a);
        let seg = seg.split_once("$$SpringCGLIB").map_or(seg, |(a, _)| a);
        let seg = if seg.starts_with("lambda$") {
            seg.trim_end_matches(|c: char| c.is_ascii_digit())
                .trim_end_matches('$')
        } else {
            seg
        };
        let seg = if seg.starts_with("GeneratedMethodAccessor")
            || seg.starts_with("$Proxy")
            || seg.starts_with("GeneratedConstructorAccessor")
        {
            seg.trim_end_matches(|c: char| c.is_ascii_digit())
        } else {
            seg
        };
        out.push_str(seg);
    }
    // Rust: `app::run::h0123456789abcdef`.
    if let Some(idx) = out.rfind("::h")
        && out.len() - idx == 19
        && out[idx + 3..].bytes().all(|b| b.is_ascii_hexdigit())
    {
        out.truncate(idx);
    }
    out.split(['/', ' '])
        .filter(|s| !s.starts_with("0x"))
        .collect::<Vec<_>>()
        .join("/")
}

/// Keeps the last two path components and drops `:line[:col]` and ` +0x…` suffixes.
pub fn normalize_file(f: &str) -> String {
    let f = f.split(" +0x").next().unwrap_or(f).trim();
    let mut f = f;
    for _ in 0..2 {
        if let Some((a, b)) = f.rsplit_once(':')
            && !b.is_empty()
            && b.bytes().all(|c| c.is_ascii_digit())
        {
            f = a;
        }
    }
    let f = f.split(":line ").next().unwrap_or(f);
    let parts: Vec<&str> = f
        .split(['/', '\\'])
        .filter(|p| !p.is_empty() && *p != ".")
        .collect();
    parts[parts.len().saturating_sub(2)..].join("/")
}

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

pub(crate) fn frame(lang: Lang, function: &str, file: &str, in_app: &InApp) -> Frame {
    let function = normalize_function(function);
    // Decide on the full path: `site-packages/`, `node_modules/` and `/rustc/` live in its
    // directories, which normalising drops.
    let app = in_app.decide(lang, &function, file);
    Frame {
        function,
        file: normalize_file(file),
        in_app: app,
    }
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
