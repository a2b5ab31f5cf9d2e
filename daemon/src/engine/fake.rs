//! A minimal in-memory card on a virtual clock, for engine tests and benchmarks.
//!
//! Every `wait_tick` returns the next tick at once. `exchange` hands the engine the chunks the
//! test put in [`FakeCard::rx`] (or, for a channel with a loopback, what the looped channel
//! transmitted on this exchange) and keeps the engine's output in [`FakeCard::tx`]. Events
//! queued in [`FakeCard::events`] are delivered one per `poll_event`; commands are logged.
//! In passive mode `exchange` does nothing at all, so a benchmark measures only engine work.

use cardpbx_hal::{
    Card, CardInfo, ChannelId, ChannelInfo, Chunk, ClockSource, Error, ErrorKind, HalCommand,
    HalEvent, Law, MediaIo, SigKind, SignallingIo, SpanConfig, SpanControl, SpanId, SpanStatus,
    Tick,
};
use std::collections::VecDeque;

/// A scriptable card with `n` audio channels (see the module docs).
#[derive(Debug)]
pub struct FakeCard {
    info: CardInfo,
    tick: Tick,
    /// What each channel receives on the next exchanges (kept until changed).
    pub rx: Vec<Chunk>,
    /// What the engine transmitted on each channel in the last exchange.
    pub tx: Vec<Chunk>,
    /// `loopback[a] = Some(b)`: channel `a` receives what channel `b` transmits (same exchange).
    pub loopback: Vec<Option<ChannelId>>,
    /// Events to deliver, oldest first.
    pub events: VecDeque<HalEvent>,
    /// Commands received, oldest first (preallocated for 1024 before it grows).
    pub commands: Vec<HalCommand>,
    /// Refuse every command with `WrongSignalling`.
    pub fail_commands: bool,
    /// Skip all copying in `exchange` (benchmarks).
    pub passive: bool,
    /// Make `wait_tick` skip this many ticks once (the card came late).
    pub skip_ticks: u64,
    /// Exchanges done.
    pub exchanges: u64,
    /// From this tick on, `wait_tick` fails with `Gone` (the card was unplugged).
    pub gone_at: Option<Tick>,
}

impl FakeCard {
    /// A card whose channel `i` uses `laws[i]`; every channel starts receiving its idle code.
    pub fn new(laws: &[Law]) -> Self {
        let channels: Vec<ChannelInfo> = laws
            .iter()
            .enumerate()
            .map(|(i, &law)| ChannelInfo {
                id: ChannelId(i as u32),
                name: format!("fake{i}"),
                sig: SigKind::CcsBearer,
                law,
                span: None,
                timeslot: None,
                port: None,
            })
            .collect();
        let idle: Vec<Chunk> = laws.iter().map(|&l| [idle_code(l); 8]).collect();
        FakeCard {
            info: CardInfo {
                name: "fake".into(),
                driver: "fake".into(),
                model: "in-memory test card".into(),
                spans: Vec::new(),
                channels,
            },
            tick: 0,
            rx: idle.clone(),
            tx: idle,
            loopback: vec![None; laws.len()],
            events: VecDeque::with_capacity(64),
            commands: Vec::with_capacity(1024),
            fail_commands: false,
            passive: false,
            skip_ticks: 0,
            exchanges: 0,
            gone_at: None,
        }
    }

    /// A card of `n` channels of one law.
    pub fn uniform(n: usize, law: Law) -> Self {
        FakeCard::new(&vec![law; n])
    }

    /// Mark a channel as not carrying audio (as a D-channel would).
    pub fn set_sig(&mut self, chan: ChannelId, sig: SigKind) {
        self.info.channels[chan.index()].sig = sig;
    }
}

/// The G.711 idle (silence) code of a law.
pub fn idle_code(law: Law) -> u8 {
    match law {
        Law::Alaw => cardpbx_dsp::g711::ALAW_SILENCE,
        Law::Ulaw => cardpbx_dsp::g711::ULAW_SILENCE,
    }
}

impl ClockSource for FakeCard {
    fn wait_tick(&mut self) -> cardpbx_hal::Result<Tick> {
        if self.gone_at.is_some_and(|g| self.tick + 1 >= g) {
            return Err(Error::new(ErrorKind::Gone, "fake card unplugged"));
        }
        self.tick += 1 + std::mem::take(&mut self.skip_ticks);
        Ok(self.tick)
    }

    fn now(&self) -> Tick {
        self.tick
    }
}

impl MediaIo for FakeCard {
    fn channel_count(&self) -> usize {
        self.info.channels.len()
    }

    fn exchange(&mut self, tx: &[Chunk], rx: &mut [Chunk]) -> cardpbx_hal::Result<()> {
        self.exchanges += 1;
        if self.passive {
            return Ok(());
        }
        self.tx.copy_from_slice(tx);
        for (i, out) in rx.iter_mut().enumerate() {
            *out = match self.loopback[i] {
                Some(src) => tx[src.index()],
                None => self.rx[i],
            };
        }
        Ok(())
    }
}

impl SignallingIo for FakeCard {
    fn poll_event(&mut self) -> Option<HalEvent> {
        self.events.pop_front()
    }

    fn command(&mut self, cmd: HalCommand) -> cardpbx_hal::Result<()> {
        if self.fail_commands {
            return Err(Error::new(ErrorKind::WrongSignalling, "fake card refuses commands"));
        }
        self.commands.push(cmd);
        Ok(())
    }
}

impl SpanControl for FakeCard {
    fn configure_span(&mut self, span: SpanId, _config: SpanConfig) -> cardpbx_hal::Result<()> {
        Err(Error::new(ErrorKind::NotFound, format!("fake card has no span {span}")))
    }

    fn span_status(&self, span: SpanId) -> cardpbx_hal::Result<SpanStatus> {
        Err(Error::new(ErrorKind::NotFound, format!("fake card has no span {span}")))
    }
}

impl Card for FakeCard {
    fn info(&self) -> &CardInfo {
        &self.info
    }
}
