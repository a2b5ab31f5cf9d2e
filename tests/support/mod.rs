//! Scaffolding shared by the end-to-end tests: a PBX on the simulator's virtual clock with its
//! records collected, prompt files made of signature tones, and the steps most tests take
//! (lifting a phone, dialling a code, logging an agent in, a PRI call answered, checking that
//! two endpoints hear each other).
//!
//! Each test binary includes this with `mod support;` and uses a part of it.
#![allow(dead_code)]

use cardpbx::callcenter::acd::AgentState;
use cardpbx::config::Config;
use cardpbx::runner::Stepped;
use cardpbx::service::sim_config;
use cardpbx::store::{CdrRecord, QueueEvent, Record, Store};
use cardpbx_dsp::tone::dbm0_to_peak;
use cardpbx_dsp::toneplan::ProgressTone;
use cardpbx_sim::{ClockMode, EndpointId, SimCard, SimConfig};
use std::path::Path;

/// Write an 8 kHz mono WAV of the tone `freqs` (0 = unused) lasting `ms`, at −15 dBm0.
pub fn tone_wav(path: &Path, freqs: [f32; 2], ms: u32) {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 8000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(path, spec).unwrap();
    let amp = dbm0_to_peak(-15.0);
    for i in 0..ms * 8 {
        let t = f64::from(i) / 8000.0;
        let s: f64 = freqs
            .iter()
            .filter(|f| **f > 0.0)
            .map(|f| (std::f64::consts::TAU * f64::from(*f) * t).sin())
            .sum();
        w.write_sample((f64::from(amp) * s) as i16).unwrap();
    }
    w.finalize().unwrap();
}

/// Monday 2026-11-23 at `hour`:00 local time, seconds since 1970.
pub fn local(hour: u32) -> i64 {
    cardpbx::callcenter::routing::LocalTime::from_ymd_hm(2026, 11, 23, hour, 0).unwrap().secs
}

/// A PBX on a simulated card on the virtual clock, with the records it produced.
pub struct Rig {
    /// Engine and call control, stepped.
    pub p: Stepped<SimCard>,
    /// Records drained so far (CDRs, queue, agent and IVR records).
    pub records: Vec<Record>,
}

impl Rig {
    /// A PBX from configuration `text` on the simulated card `sim0`, whose settings `tune`
    /// adjusts first. The local time at tick 0 is Monday 2026-11-23 10:00.
    pub fn new(text: &str, tune: impl FnOnce(&mut SimConfig)) -> Rig {
        let cfg = Config::parse_str(text, "e2e.toml").expect("test config is valid");
        let mut sc = sim_config(&cfg, &cfg.cards[0], Some(ClockMode::Virtual));
        tune(&mut sc);
        let mut p = Stepped::new(SimCard::new(sc).unwrap(), &cfg, "sim0").expect("pbx");
        p.pbx_mut().set_wall_clock(local(10));
        p.pbx_mut().set_utc_base(1_000_000_000_000);
        Rig { p, records: Vec::new() }
    }

    /// Wait until the D-channel of span 1 is up, then half a second more.
    pub fn wait_pri_up(&mut self) {
        self.until(5000, "D-channel up", |s| s.card().pri_link_up(1));
        self.run(500);
    }

    /// Run `ms` ticks and collect the records.
    pub fn run(&mut self, ms: u64) {
        self.p.run_ms(ms).unwrap();
        self.drain();
    }

    /// Run until `f` holds, failing the test with `what` after `max_ms`.
    pub fn until(&mut self, max_ms: u64, what: &str, f: impl FnMut(&Stepped<SimCard>) -> bool) {
        let ok = self.p.run_until(max_ms, f).unwrap();
        self.drain();
        assert!(ok, "{what} (within {max_ms} ms)");
    }

    /// Collect the records and CDRs produced so far.
    pub fn drain(&mut self) {
        while let Some(r) = self.p.pbx_mut().pop_record() {
            self.records.push(r);
        }
        for c in self.p.take_cdrs() {
            self.records.push(Record::Cdr(c));
        }
    }

    /// The events published since the last call, oldest first.
    pub fn events(&mut self) -> Vec<cardpbx::pbx::events::PbxEvent> {
        std::iter::from_fn(|| self.p.pbx_mut().pop_event()).collect()
    }

    /// The simulated phone on FXS port `port`.
    pub fn phone(&mut self, port: u32) -> &mut cardpbx_sim::SimPhone {
        self.p.card_mut().phone_mut(port).expect("phone exists")
    }

    /// What phone `port` hears now.
    pub fn hears_tone(&self, port: u32) -> Option<ProgressTone> {
        self.p.card().phone(port).unwrap().hears().tone
    }

    /// Lift phone `port` and wait for dial tone.
    pub fn lift(&mut self, port: u32) {
        assert!(self.phone(port).off_hook(), "phone {port} was on-hook");
        self.until(2000, &format!("phone {port} hears dial tone"), |s| {
            s.card().phone(port).unwrap().hears().tone == Some(ProgressTone::Dial)
        });
    }

    /// Hang phone `port` up and wait until call control has it idle (or ringing) again.
    pub fn hang_up(&mut self, port: u32) {
        self.phone(port).on_hook();
        let idx = port as usize - 1;
        self.until(3000, &format!("phone {port} is on-hook again"), |s| {
            matches!(s.pbx().ports()[idx].state.as_str(), "idle" | "ringing")
        });
    }

    /// Lift phone `port`, dial `digits` after dial tone, and hang up after `hold_ms`.
    pub fn dial_code(&mut self, port: u32, digits: &str, hold_ms: u64) {
        self.lift(port);
        self.phone(port).dial(digits).unwrap();
        self.run(hold_ms);
        self.hang_up(port);
    }

    /// Log agent `agent` in with `pin` from phone `port` (`*21<agent>*<pin>#`).
    pub fn login(&mut self, port: u32, agent: &str, pin: &str) {
        self.dial_code(port, &format!("*21{agent}*{pin}#"), 2500);
        assert_eq!(self.agent_state(agent), AgentState::Ready, "agent {agent} logged in");
    }

    /// Agent `agent`'s ACD state.
    pub fn agent_state(&self, agent: &str) -> AgentState {
        let acd = self.p.pbx().acd();
        acd.agent_state(acd.agent_by_number(agent).unwrap())
    }

    /// Wait until agent `agent` is in `state`.
    pub fn wait_agent(&mut self, agent: &str, state: AgentState, max_ms: u64) {
        let a = self.p.pbx().acd().agent_by_number(agent).unwrap();
        self.until(max_ms, &format!("agent {agent} {state:?}"), |s| {
            s.pbx().acd().agent_state(a) == state
        });
    }

    /// A PRI call on span 1 from `ani` to `dnis`; waits until the PBX answers it. Returns the
    /// exchange's handle and the bearer timeslot.
    pub fn pri_call_answered(&mut self, ani: &str, dnis: &str) -> (u32, u8) {
        let h = self.p.card_mut().pri_call_in(1, Some(ani), dnis).unwrap();
        self.until(5000, "the PBX answers the PRI call", |s| {
            s.card().pri_calls(1).iter().any(|c| c.handle == h && c.answered)
        });
        let ts = self.remote(h).ts.unwrap();
        (h, ts)
    }

    /// The exchange's view of its call `h` on span 1.
    pub fn remote(&self, h: u32) -> cardpbx_sim::RemoteCall {
        self.p.card().pri_calls(1).into_iter().find(|c| c.handle == h).unwrap()
    }

    /// Check for `ms` that endpoints `a` and `b` hear each other and nothing else.
    pub fn assert_talking(&mut self, a: EndpointId, b: EndpointId, ms: u64) {
        self.p.card_mut().expect_peer(a, Some(b));
        self.p.card_mut().expect_peer(b, Some(a));
        let check = |s: &Stepped<SimCard>, e| s.card().audio_check(e).expect("endpoint exists");
        let b0 = (check(&self.p, a), check(&self.p, b));
        self.run(ms);
        let b1 = (check(&self.p, a), check(&self.p, b));
        let blocks = ms / 20;
        for (who, d) in [(a, b1.0.since(&b0.0)), (b, b1.1.since(&b0.1))] {
            assert_eq!(d.error_blocks, 0, "{who}: audio errors {d:?}");
            assert!(d.ok_blocks >= blocks - 12, "{who} heard its peer in {d:?} of {blocks}");
        }
        self.p.card_mut().expect_peer(a, None);
        self.p.card_mut().expect_peer(b, None);
    }

    /// How many 20 ms blocks of `sig` endpoint `who` hears in the next `ms`.
    pub fn blocks_heard(&mut self, who: EndpointId, sig: EndpointId, ms: u64) -> u64 {
        self.p.card_mut().expect_peer(who, Some(sig));
        let b0 = self.p.card().audio_check(who).unwrap();
        self.run(ms);
        let d = self.p.card().audio_check(who).unwrap().since(&b0);
        self.p.card_mut().expect_peer(who, None);
        d.ok_blocks
    }

    /// The queue events collected so far.
    pub fn queue_events(&self) -> Vec<&QueueEvent> {
        self.records
            .iter()
            .filter_map(|r| if let Record::QueueEvent(e) = r { Some(e) } else { None })
            .collect()
    }

    /// The CDRs collected so far.
    pub fn cdrs(&self) -> Vec<&CdrRecord> {
        self.records
            .iter()
            .filter_map(|r| if let Record::Cdr(c) = r { Some(c) } else { None })
            .collect()
    }

    /// An in-memory store holding the records collected so far.
    pub fn store(&self) -> Store {
        let mut st = Store::open_in_memory().unwrap();
        st.write(&self.records).unwrap();
        st
    }
}

/// Relative power of `freq` in `x` (Goertzel, normalised by the block's energy).
pub fn goertzel(x: &[i16], freq: f32) -> f64 {
    let w = std::f64::consts::TAU * f64::from(freq) / 8000.0;
    let coeff = 2.0 * w.cos();
    let (mut s1, mut s2) = (0.0f64, 0.0f64);
    let mut energy = 0.0f64;
    for &v in x {
        let v = f64::from(v);
        energy += v * v;
        let s = v + coeff * s1 - s2;
        s2 = s1;
        s1 = s;
    }
    let p = s1 * s1 + s2 * s2 - coeff * s1 * s2;
    if energy == 0.0 {
        0.0
    } else {
        p / (energy * x.len() as f64 / 2.0)
    }
}
