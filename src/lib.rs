//! Hephaestus: a timely-dataflow job that turns logs into de-duplicated incidents.
//!
//! In: log lines from files, directories, globs, stdin or Kafka, described by a job spec (TOML).
//! Out: incidents as JSON lines (and Kafka topics), dead letters for input that could not be
//! read, a summary, Prometheus metrics, and fixes proposed, validated and deployed by the model
//! stage.
//!
//! # Layout
//!
//! The modules stand in layers; a module imports only modules of the layers below its own, so
//! any stage can be read with nothing above it in mind. From the ground up ([`LAYERS`] is the
//! table the layer test holds the code to):
//!
//! | layer | modules | what lives there |
//! |---|---|---|
//! | ground | `core` | records, positions, epochs, time, the stable hash, checkpoints, shutdown |
//! | metrics | `metrics` | metric names, the Prometheus endpoint, counters, progress |
//! | text | `mask`, `trace` | masking variables and token hashes; the one stack-trace model |
//! | stages | `parse`, `source`, `multiline`, `detect`, `cluster`, `incident`, `kafka` | each stage's config and pure logic, no timely types |
//! | model | `model` | analysis, fixes, the sandbox and the deployment loop (`model::deploy`) |
//! | plan | `spec` | a spec (TOML) turned into a validated `Plan` |
//! | dataflow | `dataflow` | one timely operator per stage and the graph that wires them |
//! | job | `job` | running a plan: workers, metrics server, model stage, summary |
//! | commands | `commands` | `templates`, `generate`, `replay`, `worker`, `fuzz`, the deploy commands, the MCP server (`mcp`) |
//! | face | `cli` | the command line (the binary, `main.rs`, sits above it) |

pub mod cli;
pub mod cluster;
pub mod commands;
pub mod core;
pub mod dataflow;
pub mod detect;
pub mod incident;
pub mod job;
pub mod kafka;
pub mod mask;
pub mod metrics;
pub mod model;
pub mod multiline;
pub mod parse;
pub mod source;
pub mod spec;
pub mod trace;

/// The layers from the ground up: a module may import the modules of its own row that are
/// listed before it, and any module of a lower row. The layer test (`tests/it/layers.rs`) reads
/// every `crate::` path in `src/` and fails on an import that runs upward.
pub const LAYERS: &[&[&str]] = &[
    &["core"],
    &["metrics"],
    &["mask", "trace"],
    &[
        "parse",
        "source",
        "multiline",
        "detect",
        "cluster",
        "incident",
        "kafka",
    ],
    &["model"],
    &["spec"],
    &["dataflow"],
    &["job"],
    &["commands"],
    &["cli"],
];
