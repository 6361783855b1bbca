//! Imports run one way: every `crate::` path in `src/` is held against the layer table
//! (`hephaestus::LAYERS`, documented in lib.rs under "# Layout").
//!
//! In: the source files of `src/`. Out: a failure that names each import running upward (file,
//! line, the module it names). No state.

use std::path::{Path, PathBuf};

use hephaestus::LAYERS;

/// Where a module stands: its row in the table, then its place in the row.
fn rank(module: &str) -> Option<(usize, usize)> {
    LAYERS.iter().enumerate().find_map(|(row, mods)| {
        mods.iter()
            .position(|m| *m == module)
            .map(|place| (row, place))
    })
}

/// The code of a line without its comment (a `//` inside a string is kept).
fn code(line: &str) -> &str {
    let mut quotes = 0;
    let bytes = line.as_bytes();
    for i in 0..bytes.len() {
        match bytes[i] {
            b'"' if i == 0 || bytes[i - 1] != b'\\' => quotes += 1,
            b'/' if quotes % 2 == 0 && bytes.get(i + 1) == Some(&b'/') => return &line[..i],
            _ => {}
        }
    }
    line
}

/// The top modules a piece of code names through `crate::` (grouped imports included).
fn named(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find("crate::") {
        let before = rest[..at].chars().last();
        rest = &rest[at + "crate::".len()..];
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue; // `hephaestus_crate::` and the like
        }
        if let Some(group) = rest.strip_prefix('{') {
            let mut depth = 0;
            let mut name = String::new();
            let mut at_start = true;
            for c in group.chars() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => at_start = true,
                    c if at_start && (c.is_alphanumeric() || c == '_') => name.push(c),
                    _ if at_start && !name.is_empty() => {
                        out.push(std::mem::take(&mut name));
                        at_start = false;
                    }
                    _ => {}
                }
            }
            if !name.is_empty() {
                out.push(name);
            }
        } else {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            out.push(name);
        }
    }
    out
}

/// Every import of `source` (a file of module `module`) that runs to a layer above it, as
/// `line: module`.
fn upward(module: &str, source: &str) -> Vec<String> {
    let Some(mine) = rank(module) else {
        return vec![format!(
            "module `{module}` is in no layer of hephaestus::LAYERS"
        )];
    };
    let mut bad = Vec::new();
    // A statement may span lines (`use crate::{\n a,\n b };`): read it whole.
    let mut statement = String::new();
    let mut first = 0;
    for (n, line) in source.lines().enumerate() {
        if statement.is_empty() {
            first = n + 1;
        }
        statement.push_str(code(line));
        statement.push(' ');
        let open = statement.matches('{').count() > statement.matches('}').count();
        if open && statement.contains("crate::{") {
            continue;
        }
        for other in named(&statement) {
            if other == module || other.is_empty() {
                continue;
            }
            match rank(&other) {
                Some(theirs) if theirs < mine => {}
                Some(_) => bad.push(format!("{first}: {other}")),
                None => bad.push(format!("{first}: {other} (in no layer)")),
            }
        }
        statement.clear();
    }
    bad
}

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn no_import_runs_up_a_layer() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    files.sort();
    assert!(files.len() > 50, "read only {} files of src/", files.len());
    let mut bad = Vec::new();
    for file in &files {
        let rel = file.strip_prefix(&src).unwrap_or(file);
        let top = rel
            .components()
            .next()
            .map(|c| c.as_os_str().to_string_lossy());
        let Some(top) = top else { continue };
        if top == "lib.rs" || top == "main.rs" {
            continue; // the root declares the modules; the binary stands above them all
        }
        let module = top.trim_end_matches(".rs");
        let text = std::fs::read_to_string(file).unwrap_or_default();
        for b in upward(module, &text) {
            bad.push(format!("src/{}:{b}", rel.display()));
        }
    }
    assert!(
        bad.is_empty(),
        "imports that run up a layer (see lib.rs \"# Layout\"):\n{}",
        bad.join("\n")
    );
}

#[test]
fn every_module_has_a_layer() {
    let lib = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("src/lib.rs"))
        .unwrap_or_default();
    let declared: Vec<&str> = lib
        .lines()
        .filter_map(|l| l.strip_prefix("pub mod "))
        .map(|l| l.trim_end_matches(';'))
        .collect();
    assert!(declared.len() > 10, "{declared:?}");
    for module in &declared {
        assert!(rank(module).is_some(), "`{module}` is in no layer");
    }
    let listed: usize = LAYERS.iter().map(|row| row.len()).sum();
    assert_eq!(
        listed,
        declared.len(),
        "LAYERS lists a module lib.rs does not declare"
    );
}

#[test]
fn the_check_sees_upward_imports() {
    // A ground module naming the dataflow, grouped and plain, is caught; a comment is not code.
    let source = "use crate::{core::time::Millis,\n    dataflow::ctx::Ctx};\n// crate::job\nfn f() { crate::spec::Plan::default(); }\n";
    assert_eq!(upward("core", source), ["1: dataflow", "4: spec"]);
    // Downward and sideways-earlier imports pass.
    assert!(
        upward(
            "cluster",
            "use crate::mask::tokens::Tok; use crate::parse::X;"
        )
        .is_empty()
    );
    assert_eq!(
        upward("parse", "use crate::cluster::Miner;"),
        ["1: cluster"]
    );
}
