//! An R2 call between two channels whose MF register signalling goes through real audio:
//! `cardpbx_dsp::mfr2::MfGenerator` on each side, summed into 8 kHz samples, into the other
//! side's `MfDetector`. ABCD bits are exchanged directly. Virtual time, 1 ms ticks.

use cardpbx_dsp::mfr2::{self, MfDetector, MfDetectorConfig, MfGenerator};
use cardpbx_signalling::r2::{
    BSignal, ClearReason, LineState, MfDirection, R2Action, R2Channel, R2Config, R2Event,
};

fn dsp_dir(d: MfDirection) -> mfr2::MfDirection {
    match d {
        MfDirection::Forward => mfr2::MfDirection::Forward,
        MfDirection::Backward => mfr2::MfDirection::Backward,
    }
}

struct Side {
    ch: R2Channel,
    gen: [MfGenerator; 2],
    det: [MfDetector; 2],
    listen: Option<MfDirection>,
    events: Vec<R2Event>,
    abcd_out: Vec<cardpbx_hal::Abcd>,
}

impl Side {
    fn new(cfg: R2Config, level_dbm0: f32) -> Self {
        let dirs = [mfr2::MfDirection::Forward, mfr2::MfDirection::Backward];
        Side {
            ch: R2Channel::new(1, cfg),
            gen: dirs.map(|d| MfGenerator::new(d, level_dbm0)),
            det: dirs.map(|d| MfDetector::new(d, MfDetectorConfig::default())),
            listen: None,
            events: Vec::new(),
            abcd_out: Vec::new(),
        }
    }

    fn drain(&mut self) {
        while let Some(a) = self.ch.poll_action() {
            match a {
                R2Action::SetAbcd(x) => self.abcd_out.push(x),
                R2Action::MfTone { signal, direction } => {
                    let k = dsp_dir(direction) as usize;
                    self.gen[k].set_signal(signal).unwrap();
                }
                R2Action::MfListen(l) => self.listen = l,
                R2Action::Event(e) => self.events.push(e),
            }
        }
    }

    fn audio(&mut self) -> [i16; 8] {
        let mut f = [0i16; 8];
        let mut b = [0i16; 8];
        self.gen[0].fill(&mut f);
        self.gen[1].fill(&mut b);
        let mut out = [0i16; 8];
        for i in 0..8 {
            out[i] = f[i].saturating_add(b[i]);
        }
        out
    }

    fn hear(&mut self, now: u64, samples: &[i16; 8]) {
        let mut edges: [Option<Option<u8>>; 4] = [None; 4];
        let mut n = 0;
        for (k, det) in self.det.iter_mut().enumerate() {
            let wanted = self.listen.map(|l| dsp_dir(l) as usize) == Some(k);
            det.process(samples, |e| {
                if wanted && n < 4 {
                    edges[n] = Some(e.signal);
                    n += 1;
                }
            });
        }
        for e in edges.into_iter().flatten() {
            self.ch.mf_received(now, e);
        }
    }
}

/// Run both sides for `ms` 1 ms ticks.
fn run(a: &mut Side, b: &mut Side, now: &mut u64, ms: u64) {
    for _ in 0..ms {
        *now += 1;
        a.ch.poll(*now);
        b.ch.poll(*now);
        a.drain();
        b.drain();
        for x in std::mem::take(&mut a.abcd_out) {
            b.ch.abcd_received(*now, x);
        }
        for x in std::mem::take(&mut b.abcd_out) {
            a.ch.abcd_received(*now, x);
        }
        let (sa, sb) = (a.audio(), b.audio());
        b.hear(*now, &sa);
        a.hear(*now, &sb);
        a.drain();
        b.drain();
    }
}

fn offered(ev: &[R2Event]) -> Option<(String, String)> {
    ev.iter().find_map(|e| match e {
        R2Event::Offered { dnis, ani, .. } => Some((dnis.to_string(), ani.to_string())),
        _ => None,
    })
}

fn call_through_audio(b_cfg: R2Config, level: f32, dnis: &str, ani: &str, want_dnis: &str) {
    let mut a = Side::new(R2Config::default(), level);
    let mut b = Side::new(b_cfg, level);
    let mut now = 0;
    a.ch.make_call(now, dnis, ani, 1).unwrap();
    let mut waited = 0;
    while offered(&b.events).is_none() {
        run(&mut a, &mut b, &mut now, 100);
        waited += 100;
        assert!(waited < 30_000, "no offer; A {:?} B {:?}", a.events, b.events);
    }
    assert_eq!(offered(&b.events), Some((want_dnis.to_string(), ani.to_string())));
    b.ch.accept(now, BSignal::FreeCharge).unwrap();
    run(&mut a, &mut b, &mut now, 500);
    assert!(a.events.contains(&R2Event::Accepted { b: BSignal::FreeCharge }), "{:?}", a.events);
    b.ch.answer(now).unwrap();
    run(&mut a, &mut b, &mut now, 200);
    assert!(a.events.contains(&R2Event::Answered));
    assert_eq!(a.ch.mf_tone(), None);
    assert_eq!(b.ch.mf_tone(), None);
    a.ch.hangup(now);
    run(&mut a, &mut b, &mut now, 500);
    assert!(b.events.contains(&R2Event::Cleared { reason: ClearReason::RemoteHangup }));
    assert_eq!(a.ch.state(), LineState::Idle);
    assert_eq!(b.ch.state(), LineState::Idle);
    a.ch.check_invariants().unwrap();
    b.ch.check_invariants().unwrap();
}

#[test]
fn ani_first_call_through_audio() {
    call_through_audio(R2Config::default(), -11.5, "20481234", "13912345678", "2048");
}

#[test]
fn dnis_first_with_timeout_through_audio_at_low_level() {
    let cfg = R2Config {
        get_ani_first: false,
        max_dnis: 0,
        dnis_timeout_ms: 1000,
        ..R2Config::default()
    };
    call_through_audio(cfg, -30.0, "1234567890", "0755", "1234567890");
}
