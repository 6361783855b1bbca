//! The one trace model: languages, frames, exceptions and traces, and how a frame is
//! normalised and judged in-app.
//!
//! In: function names and file paths as logs print them. Out: `Frame`s with generated parts
//! removed. No state.

use serde::{Deserialize, Serialize};

/// The language a trace was written by.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Lang {
    Python,
    Rust,
    Java,
    Go,
    Node,
    /// A fault read from no known trace.
    Unknown,
}

/// One frame of a trace. The fingerprint reads `function`, `file` and `in_app`; the fault view
/// (what the model stage needs to find the code) reads `path`, `line` and `column`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Frame {
    /// The file as the crashed process saw it (fault view).
    pub path: String,
    pub line: u32,
    pub column: Option<u32>,
    /// The function, as written (fault view) or normalised (`normalize_function`).
    pub function: String,
    /// The last two components of the file, without line numbers (fingerprint).
    #[serde(skip)]
    pub file: String,
    /// Whether the frame is the application's code (fingerprint).
    #[serde(skip)]
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
            Lang::Unknown => true,
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

pub(crate) fn frame(lang: Lang, function: &str, file: &str, in_app: &InApp) -> Frame {
    let function = normalize_function(function);
    // Decide on the full path: `site-packages/`, `node_modules/` and `/rustc/` live in its
    // directories, which normalising drops.
    let app = in_app.decide(lang, &function, file);
    Frame {
        function,
        file: normalize_file(file),
        in_app: app,
        ..Frame::default()
    }
}
