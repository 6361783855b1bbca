//! Hephaestus: a timely-dataflow job that turns logs into de-duplicated incidents.
//!
//! In: log lines from files, directories, globs or stdin, described by a job spec (TOML). Out:
//! incidents as JSON lines, dead letters for input that could not be read, a summary, and
//! Prometheus metrics. The stages, in dataflow order, are `source`, `multiline`, `parse`,
//! `detect`, `cluster`, `incident` and `sink`; `pipeline` wires them; `spec` turns a spec into a
//! validated plan; `job` runs it. Each stage keeps its pure logic apart from its timely operator
//! (`stage.rs`), so the logic is tested on its own.

pub mod checkpoint;
pub mod cli;
pub mod cluster;
pub mod deploy;
pub mod detect;
pub mod fuzz;
pub mod generate;
pub mod incident;
pub mod job;
pub mod kafka;
pub mod metrics;
pub mod model;
pub mod multiline;
pub mod parse;
pub mod pipeline;
pub mod progress;
pub mod record;
pub mod sink;
pub mod source;
pub mod spec;
pub mod templates;
pub mod time;
