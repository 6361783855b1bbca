//! The timely layer: one operator per stage, each an extension trait on `Stream`, and the graph
//! that wires them (`graph`).
//!
//! In: the plan and the context of a process. Out: the dataflow installed on each worker. State:
//! each operator keeps its stage's state; the pure logic it drives lives in the stage's module.

pub mod admit;
pub mod cluster;
pub mod ctx;
pub mod deal;
pub mod detect;
pub mod graph;
pub mod incident;
pub mod kafka_sink;
pub mod kafka_source;
pub mod multiline;
pub mod parse;
pub mod sink;
pub mod source;
