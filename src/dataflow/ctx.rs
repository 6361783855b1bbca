//! What every operator of a job shares: the plan, the process's counters, the stop signal and
//! the job's error list.
//!
//! In: built once per process by the job. Out: clones handed to each operator. State: the error
//! list and the fatal flag, shared by every worker of the process; what to restore, read-only.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use crate::core::cut::Restore;
use crate::core::shutdown::Shutdown;
use crate::metrics::Stats;
use crate::spec::Plan;

/// What every operator of a job shares.
#[derive(Clone)]
pub struct Ctx {
    pub plan: Arc<Plan>,
    pub stats: Arc<Stats>,
    pub shutdown: Shutdown,
    /// What the stateful stages and the Kafka source restore (found before any worker starts).
    pub restore: Arc<Restore>,
    errors: Arc<Mutex<Vec<String>>>,
    /// Set by `fail`: the workers stop stepping at once.
    fatal: Arc<AtomicBool>,
}

impl Ctx {
    pub fn new(plan: Arc<Plan>, stats: Arc<Stats>, shutdown: Shutdown, restore: Restore) -> Ctx {
        Ctx {
            plan,
            stats,
            shutdown,
            restore: Arc::new(restore),
            errors: Arc::default(),
            fatal: Arc::default(),
        }
    }

    /// Every error recorded so far.
    pub fn errors(&self) -> Vec<String> {
        self.errors.lock().map(|e| e.clone()).unwrap_or_default()
    }

    /// Records an error after which the job must not go on (an output that cannot be
    /// written): every worker of this process stops stepping, so no probe passes what was not
    /// written and nothing more is committed, as after a crash. The job fails with `message`.
    pub fn fail(&self, message: String) {
        self.error(message);
        self.fatal.store(true, Ordering::Relaxed);
        self.shutdown.trigger();
    }

    pub(crate) fn is_fatal(&self) -> bool {
        self.fatal.load(Ordering::Relaxed)
    }

    /// Records an error that does not stop the other workers; the job fails at the end.
    pub fn error(&self, message: String) {
        eprintln!("hephaestus: error: {message}");
        if let Ok(mut errors) = self.errors.lock() {
            errors.push(message);
        }
    }
}
