//! A back-to-back test bench for two R2 channels, and the fuzz entry point built on it.

use super::{BSignal, R2Action, R2Channel, R2Config, R2Event};
use cardpbx_hal::{Abcd, Tick};

/// Which end of the [`Wire`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum End {
    A,
    B,
}

/// Something in flight on the wire.
#[derive(Debug, Clone, Copy)]
enum Signal {
    Abcd(Abcd),
    Mf(Option<u8>),
}

/// Two channels joined back to back: A's ABCD and MF go to B and vice versa, with an optional
/// MF delay (the detector's latency) and switches to cut either kind of signal per direction.
#[derive(Debug, Clone)]
pub(crate) struct Wire {
    pub a: R2Channel,
    pub b: R2Channel,
    pub now: Tick,
    pub mf_delay: Tick,
    /// Cut ABCD from A to B / from B to A.
    pub cut_abcd: [bool; 2],
    /// Cut MF from A to B / from B to A.
    pub cut_mf: [bool; 2],
    pub events_a: Vec<R2Event>,
    pub events_b: Vec<R2Event>,
    /// (due, to, signal)
    flight: Vec<(Tick, End, Signal)>,
}

impl Wire {
    pub fn new(a: R2Config, b: R2Config) -> Self {
        Wire {
            a: R2Channel::new(1, a),
            b: R2Channel::new(1, b),
            now: 0,
            mf_delay: 0,
            cut_abcd: [false; 2],
            cut_mf: [false; 2],
            events_a: Vec::new(),
            events_b: Vec::new(),
            flight: Vec::new(),
        }
    }

    pub fn chan(&mut self, e: End) -> &mut R2Channel {
        match e {
            End::A => &mut self.a,
            End::B => &mut self.b,
        }
    }

    /// Move actions onto the wire and deliver what is due, until nothing moves.
    pub fn pump(&mut self) {
        for _ in 0..10_000 {
            let mut moved = false;
            for from in [End::A, End::B] {
                let to = if from == End::A { End::B } else { End::A };
                let k = from as usize;
                while let Some(act) = self.chan(from).poll_action() {
                    moved = true;
                    match act {
                        R2Action::SetAbcd(x) if !self.cut_abcd[k] => {
                            self.flight.push((self.now, to, Signal::Abcd(x)))
                        }
                        R2Action::MfTone { signal, .. } if !self.cut_mf[k] => {
                            self.flight.push((self.now + self.mf_delay, to, Signal::Mf(signal)))
                        }
                        R2Action::Event(e) => match from {
                            End::A => self.events_a.push(e),
                            End::B => self.events_b.push(e),
                        },
                        _ => {}
                    }
                }
            }
            // Deliver due signals in order.
            let now = self.now;
            if let Some(i) = self.flight.iter().position(|&(due, _, _)| due <= now) {
                let (_, to, sig) = self.flight.remove(i);
                match sig {
                    Signal::Abcd(x) => self.chan(to).abcd_received(now, x),
                    Signal::Mf(s) => self.chan(to).mf_received(now, s),
                }
                moved = true;
            }
            if !moved {
                return;
            }
        }
        panic!("wire does not settle");
    }

    /// Run for `ms` of virtual time, jumping from deadline to deadline.
    pub fn run(&mut self, ms: Tick) {
        let end = self.now + ms;
        loop {
            self.pump();
            let next = [self.a.next_timeout(), self.b.next_timeout()]
                .into_iter()
                .flatten()
                .chain(self.flight.iter().map(|f| f.0))
                .min();
            match next {
                Some(t) if t <= end => {
                    self.now = self.now.max(t);
                    self.a.poll(self.now);
                    self.b.poll(self.now);
                }
                _ => {
                    self.now = end;
                    self.a.poll(end);
                    self.b.poll(end);
                    self.pump();
                    return;
                }
            }
        }
    }

    pub fn check(&self) {
        if let Err(e) = self.a.check_invariants() {
            panic!("A: {e}: {:?}", self.a.snapshot());
        }
        if let Err(e) = self.b.check_invariants() {
            panic!("B: {e}: {:?}", self.b.snapshot());
        }
    }
}

/// Fuzz entry: interpret `data` as a script of inputs to two back-to-back channels (time
/// steps, calls, decisions, hang-ups, blocking, injected ABCD and MF, wire cuts) and check,
/// after every step, the channel invariants ([`R2Channel::check_invariants`]: sent bits
/// match the state, no MF tone, register or timer left while idle). At the end both sides
/// hang up and, on a clean wire, must both be out of any call within five minutes.
///
/// # Panics
/// On a broken invariant: that is what the fuzzer looks for.
pub fn fuzz_check(data: &[u8]) {
    run_script(data);
}

/// The body of [`fuzz_check`]; returns the bench for the tests to inspect.
pub(crate) fn run_script(data: &[u8]) -> Wire {
    let mut bytes = data.iter().copied();
    let mut cfg_b = R2Config { glare_priority: false, ..R2Config::default() };
    let cfg_a = R2Config { glare_priority: true, ..R2Config::default() };
    if let Some(first) = bytes.next() {
        cfg_b.max_dnis = first % 6;
        cfg_b.get_ani_first = first & 0x40 != 0;
        cfg_b.debounce_ms = u32::from(first >> 7) * 20;
    }
    let mut w = Wire::new(cfg_a, cfg_b);
    w.mf_delay = 30;
    let mut steps = 0;
    while let Some(op) = bytes.next() {
        steps += 1;
        if steps > 2000 {
            break;
        }
        let arg = bytes.next().unwrap_or(0);
        let end = if op & 0x80 != 0 { End::B } else { End::A };
        let now = w.now;
        match op & 0x0F {
            0 => w.run(u64::from(arg) * 8),
            1 => w.run(u64::from(arg) * 1000),
            2 => {
                let dnis = ["1", "1234", "13800138000", "0"][usize::from(arg & 3)];
                let ani = ["", "5", "88776655", "0123456789"][usize::from((arg >> 2) & 3)];
                let _ = w.chan(end).make_call(now, dnis, ani, (arg >> 4).max(1));
            }
            3 => {
                let _ = w.chan(end).accept(now, BSignal::from_signal((arg % 15) + 1));
            }
            4 => {
                let _ = w.chan(end).answer(now);
            }
            5 => w.chan(end).hangup(now),
            6 => w.chan(end).block(now),
            7 => w.chan(end).unblock(now),
            8 => w.chan(end).abcd_received(now, Abcd::new(arg)),
            9 => {
                let s = arg % 17;
                w.chan(end).mf_received(now, (s != 0).then_some(s));
            }
            10 => w.cut_abcd[end as usize] = arg & 1 != 0,
            11 => w.cut_mf[end as usize] = arg & 1 != 0,
            12 => w.chan(end).poll(now + u64::from(arg)),
            _ => w.run(1),
        }
        w.pump();
        w.check();
    }
    // Wind down on a clean wire.
    w.cut_abcd = [false; 2];
    w.cut_mf = [false; 2];
    let now = w.now;
    for e in [End::A, End::B] {
        w.chan(e).unblock(now);
        w.chan(e).hangup(now);
    }
    w.run(300_000);
    w.check();
    // A channel that was answered by an injected pattern may be hung up only now.
    let now = w.now;
    for e in [End::A, End::B] {
        w.chan(e).hangup(now);
    }
    w.run(300_000);
    w.check();
    assert!(!w.a.state().in_call(), "A stuck in {:?}", w.a.snapshot());
    assert!(!w.b.state().in_call(), "B stuck in {:?}", w.b.snapshot());
    w
}
