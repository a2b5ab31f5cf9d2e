//! The card's event queue: preallocated, never grows on the tick path.

use cardpbx_hal::HalEvent;
use std::collections::VecDeque;

/// A bounded FIFO of HAL events; events beyond its capacity are dropped and counted.
#[derive(Debug)]
pub(crate) struct EventQueue {
    q: VecDeque<HalEvent>,
    cap: usize,
    dropped: u64,
}

impl EventQueue {
    pub(crate) fn with_capacity(cap: usize) -> Self {
        EventQueue { q: VecDeque::with_capacity(cap), cap, dropped: 0 }
    }

    /// Append an event, or count it as dropped when the queue is full.
    pub(crate) fn push(&mut self, ev: HalEvent) {
        if self.q.len() < self.cap {
            self.q.push_back(ev);
        } else {
            self.dropped += 1;
        }
    }

    pub(crate) fn pop(&mut self) -> Option<HalEvent> {
        self.q.pop_front()
    }

    /// Whether no event waits.
    pub(crate) fn is_empty(&self) -> bool {
        self.q.is_empty()
    }

    pub(crate) fn dropped(&self) -> u64 {
        self.dropped
    }
}
