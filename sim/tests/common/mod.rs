//! Test bench: a simulated card, the tick loop, and a "PBX" that is just one-way audio copies.
#![allow(dead_code)]

use cardpbx_hal::{ChannelId, Chunk, ClockSource, HalEvent, MediaIo, SignallingIo, Tick};
use cardpbx_sim::{SimCard, SimConfig};

pub struct Bench {
    pub card: SimCard,
    pub tx: Vec<Chunk>,
    pub rx: Vec<Chunk>,
    /// One-way audio copies: (from, to) = what `from` receives is what `to` transmits.
    pub copies: Vec<(usize, usize)>,
    pub events: Vec<(Tick, HalEvent)>,
    silence: u8,
}

impl Bench {
    pub fn new(cfg: SimConfig) -> Self {
        let silence = match cfg.law {
            cardpbx_hal::Law::Alaw => 0xD5,
            cardpbx_hal::Law::Ulaw => 0xFF,
        };
        let card = SimCard::new(cfg).expect("card");
        let n = card.channel_count();
        Bench {
            card,
            tx: vec![[silence; 8]; n],
            rx: vec![[silence; 8]; n],
            copies: Vec::new(),
            events: Vec::new(),
            silence,
        }
    }

    /// Connect two channels both ways.
    pub fn bridge(&mut self, a: ChannelId, b: ChannelId) {
        self.copies.push((a.index(), b.index()));
        self.copies.push((b.index(), a.index()));
    }

    pub fn unbridge_all(&mut self) {
        self.copies.clear();
        let s = self.silence;
        self.tx.iter_mut().for_each(|c| *c = [s; 8]);
    }

    pub fn tick(&mut self) -> Tick {
        for &(from, to) in &self.copies {
            self.tx[to] = self.rx[from];
        }
        let t = self.card.step(&self.tx, &mut self.rx).expect("step");
        while let Some(ev) = self.card.poll_event() {
            self.events.push((t, ev));
        }
        t
    }

    pub fn run(&mut self, ms: u64) {
        for _ in 0..ms {
            self.tick();
        }
    }

    /// Tick until `pred` holds (checked after each tick); false after `max_ms`.
    pub fn run_until(&mut self, max_ms: u64, mut pred: impl FnMut(&SimCard) -> bool) -> bool {
        for _ in 0..max_ms {
            self.tick();
            if pred(&self.card) {
                return true;
            }
        }
        false
    }

    pub fn now(&self) -> Tick {
        self.card.now()
    }

    /// Events since tick `t` (inclusive) for channel `ch`.
    pub fn events_of(&self, ch: ChannelId) -> Vec<(Tick, HalEvent)> {
        self.events.iter().filter(|(_, e)| e.channel() == Some(ch)).copied().collect()
    }
}
