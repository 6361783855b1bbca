//! The admission operator: a per-service budget of new incidents per window (`incident::admit`).
//!
//! In: clustered events, exchanged by shard. Out: the same events, those past the budget folded
//! into their service's overflow incident (whose owner may be another worker: the caller
//! exchanges again). Each epoch is decided once complete, in position order, so the decisions
//! are the same for any worker count. State: the `Admission` and the epochs not yet complete.

use std::collections::BTreeMap;

use timely::dataflow::StreamVec;
use timely::dataflow::channels::pact::Pipeline;
use timely::dataflow::operators::{Capability, Operator};

use crate::core::epoch::Epoch;
use crate::core::record::Clustered;
use crate::incident::admit::{Admission, Admitted};
use crate::metrics;

/// Admission by budget.
pub trait AdmitIncidents<'s> {
    /// Folds new fingerprints past the budget (`admission` holds the state, seeded with the
    /// restored incidents) into their service's overflow incident.
    fn admit_incidents(self, admission: Admission) -> StreamVec<'s, Epoch, Clustered>;
}

impl<'s> AdmitIncidents<'s> for StreamVec<'s, Epoch, Clustered> {
    fn admit_incidents(self, mut admission: Admission) -> StreamVec<'s, Epoch, Clustered> {
        let worker = self.scope().index();
        let mut pending: BTreeMap<Epoch, (Capability<Epoch>, Vec<Clustered>)> = BTreeMap::new();
        self.unary_frontier(Pipeline, "Admit", move |_cap, _info| {
            move |(input, frontier), output| {
                input.for_each_stamp(|cap, data| {
                    if let Some(t) = cap.least().copied() {
                        let slot = pending
                            .entry(t)
                            .or_insert_with(|| (cap.delayed(&t, 0), Vec::new()));
                        for batch in data {
                            slot.1.append(batch);
                        }
                    }
                });
                while let Some(entry) = pending.first_entry() {
                    if frontier.less_equal(entry.key()) {
                        break;
                    }
                    let (cap, mut events) = entry.remove();
                    events.sort_by_key(|c| c.event.record.pos);
                    let mut folded = 0;
                    for c in &mut events {
                        if admission.admit(c) == Admitted::Folded {
                            folded += 1;
                        }
                    }
                    if folded > 0 {
                        metrics::events_folded(worker, "incident", folded);
                    }
                    output.session(&cap).give_container(&mut events);
                }
            }
        })
    }
}
