//! A fixed-capacity FIFO for the commands and events a line machine emits.
//!
//! Storage is an inline array sized at compile time, so pushing and popping never allocate.
//! The machines emit at most three items per input and the caller drains them after every
//! input, so the queue does not fill in practice; if a caller stops draining, the oldest item
//! is dropped and counted rather than growing or panicking.

/// A first-in first-out queue of at most `N` items, stored inline.
#[derive(Debug, Clone)]
pub(crate) struct Fifo<T: Copy, const N: usize> {
    buf: [Option<T>; N],
    head: usize,
    len: usize,
    dropped: u32,
}

impl<T: Copy, const N: usize> Fifo<T, N> {
    /// An empty queue.
    pub(crate) fn new() -> Self {
        Fifo { buf: [None; N], head: 0, len: 0, dropped: 0 }
    }

    /// Append `item`; when full, the oldest item is discarded to make room and counted.
    pub(crate) fn push(&mut self, item: T) {
        if N == 0 {
            self.dropped = self.dropped.saturating_add(1);
            return;
        }
        if self.len == N {
            self.buf[self.head] = None;
            self.head = (self.head + 1) % N;
            self.len -= 1;
            self.dropped = self.dropped.saturating_add(1);
        }
        let tail = (self.head + self.len) % N;
        self.buf[tail] = Some(item);
        self.len += 1;
    }

    /// Remove and return the oldest item.
    pub(crate) fn pop(&mut self) -> Option<T> {
        if self.len == 0 {
            return None;
        }
        let item = self.buf[self.head].take();
        self.head = (self.head + 1) % N;
        self.len -= 1;
        item
    }

    /// Number of items waiting.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// How many items were discarded because the queue was full.
    pub(crate) fn dropped(&self) -> u32 {
        self.dropped
    }
}

#[cfg(test)]
mod tests {
    use super::Fifo;

    #[test]
    fn keeps_order_and_wraps() {
        let mut q: Fifo<u8, 3> = Fifo::new();
        for round in 0..5u8 {
            q.push(round);
            q.push(round + 10);
            assert_eq!(q.len(), 2);
            assert_eq!(q.pop(), Some(round));
            assert_eq!(q.pop(), Some(round + 10));
            assert_eq!(q.pop(), None);
        }
        assert_eq!(q.dropped(), 0);
    }

    #[test]
    fn full_queue_drops_oldest_and_counts() {
        let mut q: Fifo<u8, 2> = Fifo::new();
        q.push(1);
        q.push(2);
        q.push(3);
        assert_eq!(q.dropped(), 1);
        assert_eq!(q.len(), 2);
        assert_eq!(q.pop(), Some(2));
        assert_eq!(q.pop(), Some(3));
        assert_eq!(q.pop(), None);
    }
}
