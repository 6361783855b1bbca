//! The subcommands besides `run`: each takes its request from the CLI and returns its result as a
//! value (the binary prints it).
//!
//! In: a request per command. Out: files, reports or a typed error. State: none between calls.

pub mod deploy;
pub mod fuzz;
pub mod generate;
pub mod mcp;
pub mod replay;
pub mod templates;
pub mod worker;
