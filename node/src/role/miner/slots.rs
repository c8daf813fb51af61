//! A miner's backend slots, handed out by stake when they run short: a caller that has to wait
//! queues with its stake, and a freed slot goes to the waiting caller with the most (the earliest
//! among equals) instead of to whoever asks next.

use std::collections::BinaryHeap;
use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::oneshot;

/// A fixed number of slots.
pub(super) struct Slots {
    inner: Mutex<Inner>,
}

struct Inner {
    free: usize,
    waiting: BinaryHeap<Waiter>,
    arrivals: u64,
}

/// A caller waiting for a slot: by stake, then by arrival (earlier first).
struct Waiter {
    stake: u64,
    arrival: std::cmp::Reverse<u64>,
    handoff: oneshot::Sender<()>,
}

impl PartialEq for Waiter {
    fn eq(&self, other: &Self) -> bool {
        (self.stake, self.arrival) == (other.stake, other.arrival)
    }
}

impl Eq for Waiter {}

impl PartialOrd for Waiter {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Waiter {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.stake, self.arrival).cmp(&(other.stake, other.arrival))
    }
}

/// A slot held; dropping it hands it to the best waiting caller, or frees it.
pub(super) struct Slot<'a> {
    slots: &'a Slots,
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        let mut inner = self.slots.lock();
        // A waiter that gave up has dropped its receiver; the slot goes to the next one.
        while let Some(waiter) = inner.waiting.pop() {
            if waiter.handoff.send(()).is_ok() {
                return;
            }
        }
        inner.free += 1;
    }
}

impl Slots {
    /// `total` slots, all free.
    pub(super) fn new(total: usize) -> Self {
        Self {
            inner: Mutex::new(Inner {
                free: total,
                waiting: BinaryHeap::new(),
                arrivals: 0,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Slots free now.
    pub(super) fn available(&self) -> usize {
        self.lock().free
    }

    /// A free slot, if one is free now and nobody waits for it.
    pub(super) fn try_take(&self) -> Option<Slot<'_>> {
        let mut inner = self.lock();
        if inner.free == 0 {
            return None;
        }
        inner.free -= 1;
        Some(Slot { slots: self })
    }

    /// A slot, waiting at most `patience` for one in `stake`'s place in the queue.
    pub(super) async fn take(&self, stake: u64, patience: Duration) -> Option<Slot<'_>> {
        let mut handed = {
            let mut inner = self.lock();
            if inner.free > 0 {
                inner.free -= 1;
                return Some(Slot { slots: self });
            }
            let (handoff, handed) = oneshot::channel();
            inner.arrivals += 1;
            let arrival = std::cmp::Reverse(inner.arrivals);
            inner.waiting.push(Waiter {
                stake,
                arrival,
                handoff,
            });
            handed
        };
        if let Ok(Ok(())) = tokio::time::timeout(patience, &mut handed).await {
            return Some(Slot { slots: self });
        }
        // Given up: closed first, so a slot handed over meanwhile is taken, not lost.
        handed.close();
        handed.try_recv().ok().map(|()| Slot { slots: self })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_freed_slot_goes_to_the_most_staked_waiter_and_none_is_lost() {
        let slots = std::sync::Arc::new(Slots::new(1));
        let held = slots.try_take().expect("the one slot");
        assert!(slots.try_take().is_none());
        let order = std::sync::Arc::new(Mutex::new(Vec::new()));
        let mut waiting = Vec::new();
        for stake in [5u64, 500, 50, 500] {
            let (slots, order) = (slots.clone(), order.clone());
            waiting.push(tokio::spawn(async move {
                let slot = slots.take(stake, Duration::from_secs(5)).await;
                order.lock().expect("order").push(stake);
                tokio::time::sleep(Duration::from_millis(5)).await;
                drop(slot);
            }));
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        drop(held);
        for task in waiting {
            task.await.expect("a waiter");
        }
        assert_eq!(*order.lock().expect("order"), vec![500, 500, 50, 5]);
        assert_eq!(slots.available(), 1, "every slot came back");
        // One that gives up leaves no slot behind.
        let held = slots.try_take().expect("the slot");
        assert!(slots.take(9, Duration::from_millis(10)).await.is_none());
        drop(held);
        assert_eq!(slots.available(), 1);
    }
}
