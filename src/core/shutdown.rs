//! The stop signal of a job, shared by the binary (Ctrl-C), the operators and tests.
//!
//! In: a `trigger` from anyone holding a clone. Out: `is_triggered` for all of them. State: one
//! shared flag.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// Asks a running job to stop: inputs close, open incidents are flushed, the job returns.
#[derive(Clone, Debug, Default)]
pub struct Shutdown(Arc<AtomicBool>);

impl Shutdown {
    pub fn trigger(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    pub fn is_triggered(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}
