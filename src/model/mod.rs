//! The model-worker stage: incidents in, validated fixes out (see DESIGN.md). Built up over
//! several steps; so far the sandbox every validation step runs in.

pub mod builtin;
pub mod edits;
pub mod fault;
pub mod protocol;
pub mod sandbox;
