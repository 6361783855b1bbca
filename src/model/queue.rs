//! The handoff from the dataflow to the model-worker stage: a queue that never blocks the
//! dataflow and never drops an incident.
//!
//! In: incident updates offered by the sink on worker 0 (`Handoff::offer`, synchronous, takes a
//! short lock). Out: incidents taken by the stage (`Handoff::take`, async), oldest first. When
//! more than `capacity` fingerprints wait, a new update of a waiting fingerprint replaces the
//! waiting one (the latest update carries the cumulative count) instead of queueing twice;
//! below it, updates of a waiting fingerprint are merged the same way. A fingerprint that is
//! not waiting is always queued (bounded by the incident store's cap), and the overflow beyond
//! `capacity` is counted. State: the waiting incidents by fingerprint and their order, and how
//! many taken ones are not yet done (`idle` is false until they are).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

use crate::core::record::Incident;

#[derive(Default)]
struct Waiting {
    order: VecDeque<String>,
    by_fingerprint: HashMap<String, Incident>,
    closed: bool,
    /// Taken and not yet `done`.
    in_hand: usize,
}

/// What the queue did with the offered updates (for metrics and tests).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Offered {
    pub queued: u64,
    /// Folded into an update of the same fingerprint that was still waiting.
    pub merged: u64,
    /// Queued although `capacity` fingerprints were already waiting.
    pub overflow: u64,
}

#[derive(Clone)]
pub struct Handoff {
    waiting: Arc<Mutex<Waiting>>,
    ready: Arc<Notify>,
    capacity: usize,
}

impl Handoff {
    pub fn new(capacity: usize) -> Handoff {
        Handoff {
            waiting: Arc::default(),
            ready: Arc::new(Notify::new()),
            capacity: capacity.max(1),
        }
    }

    /// Offers updates; never blocks on the stage.
    pub fn offer(&self, incidents: impl IntoIterator<Item = Incident>) -> Offered {
        let mut done = Offered::default();
        let Ok(mut w) = self.waiting.lock() else {
            return done;
        };
        for incident in incidents {
            if let Some(slot) = w.by_fingerprint.get_mut(&incident.fingerprint) {
                *slot = incident;
                done.merged += 1;
                continue;
            }
            if w.order.len() >= self.capacity {
                done.overflow += 1;
            }
            w.order.push_back(incident.fingerprint.clone());
            w.by_fingerprint
                .insert(incident.fingerprint.clone(), incident);
            done.queued += 1;
        }
        let depth = w.order.len();
        drop(w);
        crate::metrics::model_queue(depth, done.merged, done.overflow);
        self.ready.notify_one();
        done
    }

    /// No more offers: `take` returns `None` once the queue is empty.
    pub fn close(&self) {
        if let Ok(mut w) = self.waiting.lock() {
            w.closed = true;
        }
        self.ready.notify_one();
    }

    fn pop(&self) -> Result<Option<Incident>, bool> {
        let Ok(mut w) = self.waiting.lock() else {
            return Ok(None);
        };
        while let Some(fp) = w.order.pop_front() {
            if let Some(i) = w.by_fingerprint.remove(&fp) {
                w.in_hand += 1;
                return Ok(Some(i));
            }
        }
        if w.closed { Ok(None) } else { Err(false) }
    }

    /// The next waiting incident; `None` when closed and empty.
    pub async fn take(&self) -> Option<Incident> {
        loop {
            let notified = self.ready.notified();
            match self.pop() {
                Ok(next) => {
                    if next.is_some() {
                        // Wake a possible second taker.
                        self.ready.notify_one();
                    }
                    return next;
                }
                Err(_) => notified.await,
            }
        }
    }

    /// The taker is done with one taken incident.
    pub fn done(&self) {
        if let Ok(mut w) = self.waiting.lock() {
            w.in_hand = w.in_hand.saturating_sub(1);
        }
    }

    /// Nothing waiting and every taken incident done with.
    pub fn idle(&self) -> bool {
        self.waiting
            .lock()
            .is_ok_and(|w| w.order.is_empty() && w.in_hand == 0)
    }

    /// Incidents waiting.
    pub fn len(&self) -> usize {
        self.waiting.lock().map_or(0, |w| w.order.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inc(fp: &str, count: u64) -> Incident {
        Incident {
            fingerprint: fp.into(),
            count,
            ..Incident::default()
        }
    }

    #[tokio::test]
    async fn merges_by_fingerprint_and_keeps_everything() {
        let q = Handoff::new(2);
        let o = q.offer([inc("a", 1), inc("b", 1), inc("a", 5), inc("c", 1)]);
        assert_eq!(
            o,
            Offered {
                queued: 3,
                merged: 1,
                overflow: 1
            }
        );
        q.close();
        let mut got = Vec::new();
        while let Some(i) = q.take().await {
            got.push((i.fingerprint, i.count));
        }
        assert_eq!(got, vec![("a".into(), 5), ("b".into(), 1), ("c".into(), 1)]);
    }

    #[tokio::test]
    async fn take_waits_for_an_offer() {
        let q = Handoff::new(4);
        let taker = tokio::spawn({
            let q = q.clone();
            async move { q.take().await.map(|i| i.fingerprint) }
        });
        tokio::task::yield_now().await;
        q.offer([inc("x", 1)]);
        assert_eq!(taker.await.ok().flatten(), Some("x".to_string()));
    }
}
