//! The one integration-test binary (timely and the rest are linked once).
//!
//! In: the fixtures, generated inputs and the built `hephaestus` binary. Out: assertions on whole
//! jobs, run in-process (`job::run`) or as processes. Modules by concern; `common` holds the
//! helpers and `reference` the sequential implementation the dataflow is checked against.

mod bad_input;
mod broker;
mod cli;
mod common;
mod dedup;
mod deploy;
mod deploy_ops;
mod fuzz;
mod golden;
mod kafka;
mod kafka_accounting;
mod kafka_errors;
mod kafka_faults;
mod kafka_processes;
mod layers;
mod live;
mod loghub;
mod mcp;
mod model;
mod model_kafka;
mod model_loop;
mod monitoring;
mod openai;
mod openai_ship;
mod processes;
mod prometheus;
mod props;
mod reference;
mod replay;
mod sandbox;
mod specs;
mod templates;
mod workers;
