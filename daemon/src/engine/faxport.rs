//! Fax ports: pairs of preallocated SPSC rings between the media engine and the fax worker
//! (`crate::faxsvc`), which runs the T.30 sessions off the real-time thread.
//!
//! A channel whose source is [`Source::FaxPort`](super::Source::FaxPort) sends the linear
//! audio it receives into its port's *receive* ring every tick and transmits what the worker
//! has put into the port's *transmit* ring. The engine never waits: a full receive ring drops
//! the tick's samples (an overrun), an empty transmit ring sends silence (an underrun, counted
//! once the worker has started feeding the port). Counters are per port, shared with the
//! worker's end.
//!
//! The worker primes a port with [`PREFILL_SAMPLES`] of silence when the first block of a
//! session's audio arrives, then answers every [`BLOCK`] received with a block to send, so the
//! transmit ring holds a steady jitter margin. When a channel is attached to a port the engine
//! discards what is left in the transmit ring from a previous session.

use ringbuf::traits::{Consumer, Observer, Producer, Split};
use ringbuf::{HeapCons, HeapProd, HeapRb};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use cardpbx_hal::CHUNK_SAMPLES;

/// Capacity of each ring of a port, in samples (1 s at 8 kHz).
pub const RING_SAMPLES: usize = 8000;
/// Samples the worker processes at a time (20 ms).
pub const BLOCK: usize = 160;
/// Silence the worker puts ahead of a session's first transmit block (jitter margin, 40 ms).
pub const PREFILL_SAMPLES: usize = 2 * BLOCK;

/// Counters of one port, shared by the engine and the worker.
#[derive(Debug, Default)]
pub struct PortCounters {
    /// Ticks whose received samples were dropped because the receive ring was full.
    pub overruns: AtomicU64,
    /// Ticks that sent silence because the transmit ring was empty (after priming).
    pub underruns: AtomicU64,
}

/// The engine's end of one port.
pub(crate) struct EnginePort {
    to_worker: HeapProd<i16>,
    from_worker: HeapCons<i16>,
    counters: Arc<PortCounters>,
    /// The worker has fed the port since it was attached: empty rings now count.
    primed: bool,
    /// Channel attached to the port, or `u32::MAX`.
    pub(crate) chan: u32,
}

impl EnginePort {
    /// Attach the port to a channel: forget transmit audio left from an earlier session.
    pub(crate) fn attach(&mut self, chan: u32) {
        self.chan = chan;
        self.primed = false;
        self.from_worker.clear();
    }

    /// Detach the port from its channel.
    pub(crate) fn detach(&mut self) {
        self.chan = u32::MAX;
    }

    /// One tick: hand `heard` to the worker and fill `send` from it.
    ///
    /// # Real-time
    /// Never blocks or allocates.
    #[inline]
    pub(crate) fn exchange(
        &mut self,
        heard: &[i16; CHUNK_SAMPLES],
        send: &mut [i16; CHUNK_SAMPLES],
    ) {
        if self.to_worker.vacant_len() >= CHUNK_SAMPLES {
            self.to_worker.push_slice(heard);
        } else {
            self.counters.overruns.fetch_add(1, Ordering::Relaxed);
        }
        if self.from_worker.occupied_len() >= CHUNK_SAMPLES {
            self.from_worker.pop_slice(send);
            self.primed = true;
        } else {
            *send = [0; CHUNK_SAMPLES];
            if self.primed {
                self.counters.underruns.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// The worker's end of one port.
pub struct WorkerPort {
    /// Audio the attached channel received.
    pub from_engine: HeapCons<i16>,
    /// Audio for the attached channel to send.
    pub to_engine: HeapProd<i16>,
    /// The port's counters.
    pub counters: Arc<PortCounters>,
}

impl std::fmt::Debug for WorkerPort {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkerPort")
            .field("queued_in", &self.from_engine.occupied_len())
            .field("queued_out", &self.to_engine.occupied_len())
            .field("counters", &self.counters)
            .finish()
    }
}

/// The worker's ends of all ports, from
/// [`EngineHandle::take_fax_ports`](super::EngineHandle::take_fax_ports).
#[derive(Debug)]
pub struct FaxPortRings {
    /// One per [`FaxSlot`](super::api::FaxSlot), in slot order.
    pub ports: Vec<WorkerPort>,
}

/// Build `n` ports: the engine's ends and the worker's.
pub(crate) fn pool(n: usize) -> (Vec<EnginePort>, FaxPortRings) {
    let mut eng = Vec::with_capacity(n);
    let mut ports = Vec::with_capacity(n);
    for _ in 0..n {
        let (rx_prod, rx_cons) = HeapRb::<i16>::new(RING_SAMPLES).split();
        let (tx_prod, tx_cons) = HeapRb::<i16>::new(RING_SAMPLES).split();
        let counters = Arc::new(PortCounters::default());
        eng.push(EnginePort {
            to_worker: rx_prod,
            from_worker: tx_cons,
            counters: counters.clone(),
            primed: false,
            chan: u32::MAX,
        });
        ports.push(WorkerPort { from_engine: rx_cons, to_engine: tx_prod, counters });
    }
    (eng, FaxPortRings { ports })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_count_what_they_lose() {
        let (mut e, mut rings) = pool(1);
        let w = &mut rings.ports[0];
        let heard = [7i16; CHUNK_SAMPLES];
        let mut send = [1i16; CHUNK_SAMPLES];
        e[0].attach(3);
        // Nothing from the worker yet: silence, not counted (not primed).
        e[0].exchange(&heard, &mut send);
        assert_eq!(send, [0; CHUNK_SAMPLES]);
        assert_eq!(w.counters.underruns.load(Ordering::Relaxed), 0);
        w.to_engine.push_slice(&[5i16; 2 * CHUNK_SAMPLES]);
        for _ in 0..2 {
            e[0].exchange(&heard, &mut send);
            assert_eq!(send, [5; CHUNK_SAMPLES]);
        }
        // Primed and empty: an underrun.
        e[0].exchange(&heard, &mut send);
        assert_eq!(w.counters.underruns.load(Ordering::Relaxed), 1);
        // The receive ring fills up: overruns, never a wait.
        for _ in 0..RING_SAMPLES / CHUNK_SAMPLES {
            e[0].exchange(&heard, &mut send);
        }
        assert_eq!(w.from_engine.occupied_len(), RING_SAMPLES);
        assert_eq!(w.counters.overruns.load(Ordering::Relaxed), 4);
        // Attaching again drops what the worker left for the previous channel.
        w.to_engine.push_slice(&[9i16; CHUNK_SAMPLES]);
        e[0].attach(4);
        assert_eq!(e[0].chan, 4);
        e[0].exchange(&heard, &mut send);
        assert_eq!(send, [0; CHUNK_SAMPLES]);
    }
}
