//! A node's leases, when its outbox is a database several nodes share:
//! renewed every sixth of the lease, with the planner's role, on a task of
//! their own, so that a long burst, a slow relay or a reload never holds
//! them up.
//!
//! The renewals run on real time (tokio's timer), not on the daemon's
//! clock: leases expire on the database's clock, which no rehearsal steps.
//! A node that cannot renew stops starting sends after half the lease and
//! abandons those in flight just before it ends (`scheduler::send_claimed`).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tracing::{info, warn};

use crate::diagnostics::Chain;
use crate::outbox::{OutboxError, Planning};
use crate::scheduler::{Scheduler, blocking};

/// The task that renews the leases; stopped when dropped.
pub(super) struct LeaseKeeper {
    task: JoinHandle<()>,
}

impl LeaseKeeper {
    /// Starts renewing, if the outbox has leases. `replan` is nudged when
    /// this node takes the planner's role over (the planner before it
    /// stopped renewing its own), so that it plans at once.
    pub(super) fn start(scheduler: Arc<Scheduler>, replan: Arc<Notify>) -> Option<LeaseKeeper> {
        let lease = scheduler.outbox().lease()?;
        let task = tokio::spawn(keep(scheduler, replan, lease / 6));
        Some(LeaseKeeper { task })
    }
}

impl Drop for LeaseKeeper {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn keep(scheduler: Arc<Scheduler>, replan: Arc<Notify>, every: Duration) {
    let mut failing = false;
    loop {
        tokio::time::sleep(every).await;
        let renewing = scheduler.clone();
        let renewed = blocking(move || renew(&renewing)).await;
        match renewed {
            Ok((before, now)) => {
                if failing {
                    info!("the database answers again: this node's leases are renewed");
                    failing = false;
                }
                if now == Planning::Plans && before != Planning::Plans {
                    replan.notify_one();
                }
            }
            Err(err) => {
                if !failing {
                    warn!(
                        error = %Chain(&err),
                        "cannot renew this node's leases; if this lasts half the lease, it starts no new send, and abandons those in flight before the leases end"
                    );
                }
                failing = true;
            }
        }
    }
}

/// Renews the leases of the sends in flight and the planner's role (or
/// takes it, if it is free); returns whether this node planned before and
/// whether it plans now.
fn renew(scheduler: &Scheduler) -> Result<(Planning, Planning), OutboxError> {
    scheduler.outbox().renew_leases()?;
    let before = scheduler.planning();
    let fingerprint = scheduler.loaded().fingerprint.clone();
    let now = scheduler.take_planning(&fingerprint)?;
    Ok((before, now))
}
