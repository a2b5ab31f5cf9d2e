//! Compelled MF register signalling, China No.1 variant of MFC/R2 (as OpenR2 implements it).
//!
//! The outgoing register sends forward signals (groups I and II); the incoming register
//! answers each with a backward signal (groups A and B). Compelled cycle: the forward tone
//! stays on until the backward tone is seen; the forward side then stops; the backward side
//! stops when it sees the forward tone gone; the forward side sends the next signal when it sees
//! the backward tone gone.
//!
//! Meanings used (China overrides marked):
//! - group I: 1..=10 digits 1..9, 0; 12 ANI restricted; 15 end of ANI (China has no
//!   end-of-DNIS signal: the incoming register knows how many digits it wants, or times out);
//! - group II: the calling party category (KA after A6, KD after A3), from call control;
//! - group A: 1 next digit (China: next ANI digit while ANI is being sent, else next DNIS digit),
//!   2/7/8 resend DNIS n−1/n−2/n−3, 3 address complete → group B, 4 congestion,
//!   6 (China) send category KA then ANI; 5 (ITU "send category") is treated like 6;
//! - group B: 1 (China) free with charge, 6 free with charge, 7 free without charge, 2 busy,
//!   4 congestion, 5 unallocated number, 8 out of order.
//!
//! Neither register knows about time: the channel arms the MF timers around them.

use serde::{Serialize, Serializer};
use std::fmt;

/// Longest ANI or DNIS kept, in digits.
pub const MAX_DIGITS: usize = 32;

/// A short digit string (`0`-`9`) stored inline, so call events stay `Copy` and allocation-free.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Digits {
    buf: [u8; MAX_DIGITS],
    len: u8,
}

impl Default for Digits {
    fn default() -> Self {
        Digits { buf: [0; MAX_DIGITS], len: 0 }
    }
}

impl Digits {
    /// The empty string.
    pub fn new() -> Self {
        Digits::default()
    }

    /// Parse a string of decimal digits (at most [`MAX_DIGITS`]).
    pub fn parse(s: &str) -> Option<Self> {
        let mut d = Digits::new();
        for b in s.bytes() {
            if !b.is_ascii_digit() || !d.push(b) {
                return None;
            }
        }
        Some(d)
    }

    /// The digits as text.
    pub fn as_str(&self) -> &str {
        // Only ASCII digits are ever stored.
        std::str::from_utf8(&self.buf[..self.len as usize]).unwrap_or("")
    }

    /// Number of digits.
    pub fn len(&self) -> usize {
        self.len as usize
    }

    /// Whether there are no digits.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Append an ASCII digit; false if full.
    fn push(&mut self, b: u8) -> bool {
        if (self.len as usize) < MAX_DIGITS {
            self.buf[self.len as usize] = b;
            self.len += 1;
            true
        } else {
            false
        }
    }

    /// The group I signal of digit `i` (`0` is signal 10).
    fn signal(&self, i: usize) -> u8 {
        match self.buf[i] - b'0' {
            0 => 10,
            d => d,
        }
    }
}

impl fmt::Debug for Digits {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.as_str())
    }
}

impl fmt::Display for Digits {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Digits {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// The ASCII digit of a group I digit signal 1..=10.
fn digit_of(signal: u8) -> Option<u8> {
    match signal {
        1..=9 => Some(b'0' + signal),
        10 => Some(b'0'),
        _ => None,
    }
}

/// Group I signal 12: calling number restricted.
pub const I_ANI_RESTRICTED: u8 = 12;
/// Group I signal 15: end of ANI.
pub const I_END_OF_ANI: u8 = 15;
/// Group A 1: send next digit.
pub const A_NEXT_DIGIT: u8 = 1;
/// Group A 2: send DNIS digit n−1.
pub const A_RESEND_N1: u8 = 2;
/// Group A 3: address complete, change to group B.
pub const A_ADDRESS_COMPLETE: u8 = 3;
/// Group A 4: congestion.
pub const A_CONGESTION: u8 = 4;
/// Group A 5: (ITU) send calling party category.
pub const A_SEND_CATEGORY: u8 = 5;
/// Group A 6: (China) send calling party category KA, then ANI.
pub const A_SEND_KA_AND_ANI: u8 = 6;
/// Group A 7: send DNIS digit n−2.
pub const A_RESEND_N2: u8 = 7;
/// Group A 8: send DNIS digit n−3.
pub const A_RESEND_N3: u8 = 8;

/// The group B signal with which the incoming side ends register signalling.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BSignal {
    /// B1 (China): subscriber free, call charged.
    FreeCharge,
    /// B2 (China): subscriber busy.
    Busy,
    /// B4: congestion.
    Congestion,
    /// B5: unallocated (vacant) number.
    Unallocated,
    /// B6: subscriber free, charged (ITU meaning).
    FreeChargeItu,
    /// B7: subscriber free, no charge.
    FreeNoCharge,
    /// B8: subscriber line out of order.
    OutOfOrder,
    /// Any other group B signal (3, 9..15).
    Other(u8),
}

impl BSignal {
    /// The signal number 1..=15.
    pub fn signal(self) -> u8 {
        match self {
            BSignal::FreeCharge => 1,
            BSignal::Busy => 2,
            BSignal::Congestion => 4,
            BSignal::Unallocated => 5,
            BSignal::FreeChargeItu => 6,
            BSignal::FreeNoCharge => 7,
            BSignal::OutOfOrder => 8,
            BSignal::Other(s) => s,
        }
    }

    /// The meaning of signal `s` in group B.
    pub fn from_signal(s: u8) -> Self {
        match s {
            1 => BSignal::FreeCharge,
            2 => BSignal::Busy,
            4 => BSignal::Congestion,
            5 => BSignal::Unallocated,
            6 => BSignal::FreeChargeItu,
            7 => BSignal::FreeNoCharge,
            8 => BSignal::OutOfOrder,
            s => BSignal::Other(s),
        }
    }

    /// Whether the signal accepts the call (the called party is being alerted).
    pub fn is_accept(self) -> bool {
        matches!(self, BSignal::FreeCharge | BSignal::FreeChargeItu | BSignal::FreeNoCharge)
    }
}

/// How the outgoing register ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OutResult {
    /// A group B signal arrived (accepting or not).
    GroupB(BSignal),
    /// A-4 congestion arrived.
    Congestion,
    /// A backward signal that makes no sense now (the number is the signal).
    BadSignal(u8),
}

/// A tone change the register wants: `Some(Some(s))` on, `Some(None)` off, `None` no change.
pub type ToneChange = Option<Option<u8>>;

/// The outgoing (forward) register.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutgoingRegister {
    dnis: Digits,
    ani: Digits,
    category: u8,
    next_dnis: usize,
    last_dnis: Option<usize>,
    ani_phase: bool,
    ani_idx: usize,
    group_b: bool,
    tone: Option<u8>,
    back: Option<u8>,
    pending: Option<u8>,
    finished: bool,
}

impl OutgoingRegister {
    /// A register that will send `dnis` (not empty), `ani` and the category signal `category`.
    pub fn new(dnis: Digits, ani: Digits, category: u8) -> Self {
        OutgoingRegister {
            dnis,
            ani,
            category,
            next_dnis: 0,
            last_dnis: None,
            ani_phase: false,
            ani_idx: 0,
            group_b: false,
            tone: None,
            back: None,
            pending: None,
            finished: false,
        }
    }

    /// Start: the first DNIS digit goes on.
    pub fn start(&mut self) -> ToneChange {
        let s = self.dnis_digit(0)?;
        self.tone = Some(s);
        Some(Some(s))
    }

    /// The forward tone sounding now.
    pub fn tone(&self) -> Option<u8> {
        self.tone
    }

    /// Whether a group B signal or an error ended signalling.
    pub fn finished(&self) -> bool {
        self.finished
    }

    /// Whether the register has switched to group B (A-3 seen).
    pub fn in_group_b(&self) -> bool {
        self.group_b
    }

    fn dnis_digit(&mut self, i: usize) -> Option<u8> {
        if i < self.dnis.len() {
            self.last_dnis = Some(i);
            self.next_dnis = i + 1;
            Some(self.dnis.signal(i))
        } else {
            None
        }
    }

    /// What to send for backward signal `a` (group A), or how signalling ends.
    fn interpret_a(&mut self, a: u8) -> Result<Option<u8>, OutResult> {
        match a {
            A_NEXT_DIGIT if self.ani_phase => {
                if self.ani_idx < self.ani.len() {
                    self.ani_idx += 1;
                    Ok(Some(self.ani.signal(self.ani_idx - 1)))
                } else {
                    self.ani_phase = false;
                    Ok(Some(I_END_OF_ANI))
                }
            }
            // China: nothing more to send; the incoming side times out and pulses A-3.
            A_NEXT_DIGIT => Ok(self.dnis_digit(self.next_dnis)),
            A_RESEND_N1 | A_RESEND_N2 | A_RESEND_N3 => {
                let back = match a {
                    A_RESEND_N1 => 1,
                    A_RESEND_N2 => 2,
                    _ => 3,
                };
                match self.last_dnis.and_then(|l| l.checked_sub(back)) {
                    Some(i) => Ok(self.dnis_digit(i)),
                    None => Err(OutResult::BadSignal(a)),
                }
            }
            A_ADDRESS_COMPLETE => {
                self.group_b = true;
                Ok(Some(self.category))
            }
            A_CONGESTION => Err(OutResult::Congestion),
            A_SEND_CATEGORY | A_SEND_KA_AND_ANI => {
                self.ani_phase = true;
                Ok(Some(self.category))
            }
            _ => Err(OutResult::BadSignal(a)),
        }
    }

    /// A change of the backward tone. Returns the forward tone change and, when signalling
    /// ends, how.
    pub fn on_back(&mut self, sig: Option<u8>) -> (ToneChange, Option<OutResult>) {
        if sig == self.back {
            return (None, None);
        }
        self.back = sig;
        if self.finished {
            return (None, None);
        }
        match sig {
            Some(a) => {
                let off = self.tone.take().map(|_| None);
                self.pending = None;
                let result = if self.group_b {
                    Err(OutResult::GroupB(BSignal::from_signal(a)))
                } else {
                    self.interpret_a(a)
                };
                match result {
                    Ok(next) => {
                        self.pending = next;
                        (off, None)
                    }
                    Err(r) => {
                        self.finished = true;
                        (off, Some(r))
                    }
                }
            }
            None => match self.pending.take() {
                Some(p) => {
                    self.tone = Some(p);
                    (Some(Some(p)), None)
                }
                None => (None, None),
            },
        }
    }

    /// Stop sending (call torn down); returns the tone change.
    pub fn stop(&mut self) -> ToneChange {
        self.finished = true;
        self.pending = None;
        self.tone.take().map(|_| None)
    }
}

/// What the incoming register expects next from the forward side.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Expect {
    /// A DNIS digit (group I).
    DnisDigit,
    /// The calling party category KA (after A-6).
    Ka,
    /// An ANI digit, I-12 or I-15 (group I).
    AniDigit,
    /// The group II category KD (after A-3).
    GroupII,
    /// Nothing more: signalling is over or failed.
    Nothing,
}

/// How the incoming register progressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum InResult {
    /// All digits and the category are in: offer the call, then [`IncomingRegister::accept`].
    Offered,
    /// The final group B (or A-4) cycle completed; the register is done.
    Finished,
    /// A forward signal that makes no sense now; A-4 congestion is sent in answer.
    BadSignal(u8),
}

/// The incoming (backward) register.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IncomingRegister {
    max_dnis: usize,
    get_ani_first: bool,
    dnis: Digits,
    ani: Digits,
    ani_restricted: bool,
    ka: Option<u8>,
    category: Option<u8>,
    expect: Expect,
    ani_requested: bool,
    fwd: Option<u8>,
    tone: Option<u8>,
    /// Our tone is a pulse (no forward tone to compel it); the channel times it.
    pulsing: bool,
    /// Waiting for call control with the group II tone on.
    offered: bool,
    /// The tone now on is the last one (B, or A-4).
    final_tone: bool,
    done: bool,
}

impl IncomingRegister {
    /// A register collecting up to `max_dnis` DNIS digits (0: until timeout), asking for the
    /// ANI first (after the first DNIS digit) or after the DNIS.
    pub fn new(max_dnis: usize, get_ani_first: bool) -> Self {
        IncomingRegister {
            max_dnis: max_dnis.min(MAX_DIGITS),
            get_ani_first,
            dnis: Digits::new(),
            ani: Digits::new(),
            ani_restricted: false,
            ka: None,
            category: None,
            expect: Expect::DnisDigit,
            ani_requested: false,
            fwd: None,
            tone: None,
            pulsing: false,
            offered: false,
            final_tone: false,
            done: false,
        }
    }

    /// DNIS collected so far.
    pub fn dnis(&self) -> Digits {
        self.dnis
    }

    /// ANI collected so far.
    pub fn ani(&self) -> Digits {
        self.ani
    }

    /// Whether the caller sent I-12 (presentation restricted).
    pub fn ani_restricted(&self) -> bool {
        self.ani_restricted
    }

    /// The group II category (KD) once received.
    pub fn category(&self) -> Option<u8> {
        self.category
    }

    /// What the register expects next.
    pub fn expect(&self) -> Expect {
        self.expect
    }

    /// Our backward tone now.
    pub fn tone(&self) -> Option<u8> {
        self.tone
    }

    /// Whether the register has finished (last cycle complete).
    pub fn done(&self) -> bool {
        self.done
    }

    /// Whether the call has been offered and waits for [`IncomingRegister::accept`].
    pub fn offered(&self) -> bool {
        self.offered
    }

    /// Whether our tone is a timed pulse.
    pub fn pulsing(&self) -> bool {
        self.pulsing
    }

    fn dnis_full(&self) -> bool {
        self.max_dnis > 0 && self.dnis.len() >= self.max_dnis
    }

    /// The response once DNIS is complete: ask for ANI if not yet done, else go to group B.
    fn after_dnis(&mut self) -> u8 {
        if !self.ani_requested {
            self.ani_requested = true;
            self.expect = Expect::Ka;
            A_SEND_KA_AND_ANI
        } else {
            self.expect = Expect::GroupII;
            A_ADDRESS_COMPLETE
        }
    }

    /// The response to forward signal `s`, or `Err` if `s` is out of place.
    fn respond(&mut self, s: u8) -> Result<Option<u8>, u8> {
        match self.expect {
            Expect::DnisDigit => {
                if let Some(d) = digit_of(s) {
                    self.dnis.push(d);
                    if self.dnis_full() {
                        Ok(Some(self.after_dnis()))
                    } else if self.get_ani_first && !self.ani_requested {
                        self.ani_requested = true;
                        self.expect = Expect::Ka;
                        Ok(Some(A_SEND_KA_AND_ANI))
                    } else {
                        Ok(Some(A_NEXT_DIGIT))
                    }
                } else if s == I_END_OF_ANI && !self.dnis.is_empty() {
                    // ITU end of DNIS; China does not send it, but accept it.
                    Ok(Some(self.after_dnis()))
                } else {
                    Err(s)
                }
            }
            Expect::Ka => {
                self.ka = Some(s);
                self.expect = Expect::AniDigit;
                Ok(Some(A_NEXT_DIGIT))
            }
            Expect::AniDigit => {
                if let Some(d) = digit_of(s) {
                    self.ani.push(d);
                    Ok(Some(A_NEXT_DIGIT))
                } else if s == I_ANI_RESTRICTED {
                    self.ani_restricted = true;
                    Ok(Some(A_NEXT_DIGIT))
                } else if s == I_END_OF_ANI {
                    if self.dnis_full() || !self.get_ani_first {
                        // DNIS was complete before the ANI was asked for.
                        self.expect = Expect::GroupII;
                        Ok(Some(A_ADDRESS_COMPLETE))
                    } else {
                        self.expect = Expect::DnisDigit;
                        Ok(Some(A_NEXT_DIGIT))
                    }
                } else {
                    Err(s)
                }
            }
            Expect::GroupII => {
                self.category = Some(s);
                self.offered = true;
                Ok(None)
            }
            Expect::Nothing => Err(s),
        }
    }

    /// A change of the forward tone. Returns our tone change and any progress.
    pub fn on_fwd(&mut self, sig: Option<u8>) -> (ToneChange, Option<InResult>) {
        if sig == self.fwd {
            return (None, None);
        }
        let was = self.fwd;
        self.fwd = sig;
        if self.done || self.pulsing {
            return (None, None);
        }
        match sig {
            Some(s) => {
                if self.offered {
                    // Call control is deciding; the II tone changed under us.
                    return (None, Some(InResult::BadSignal(s)));
                }
                if was.is_some() && self.tone.is_some() {
                    // A new forward signal without a gap; wait for it to drop.
                    return (None, None);
                }
                match self.respond(s) {
                    Ok(Some(a)) => {
                        self.tone = Some(a);
                        (Some(Some(a)), None)
                    }
                    Ok(None) => (None, Some(InResult::Offered)),
                    Err(bad) => {
                        self.expect = Expect::Nothing;
                        self.final_tone = true;
                        self.tone = Some(A_CONGESTION);
                        (Some(Some(A_CONGESTION)), Some(InResult::BadSignal(bad)))
                    }
                }
            }
            None => {
                if self.offered {
                    // The forward side gave up its II tone before we decided.
                    self.offered = false;
                    self.done = true;
                    self.expect = Expect::Nothing;
                    return (None, Some(InResult::BadSignal(0)));
                }
                match self.tone.take() {
                    Some(_) => {
                        if self.final_tone {
                            self.done = true;
                            (Some(None), Some(InResult::Finished))
                        } else {
                            (Some(None), None)
                        }
                    }
                    None => (None, None),
                }
            }
        }
    }

    /// Call control's decision on an offered call: the group B signal goes on.
    /// Returns `None` if the call is not waiting for a decision.
    pub fn accept(&mut self, b: BSignal) -> ToneChange {
        if !self.offered || self.fwd.is_none() {
            return None;
        }
        self.offered = false;
        self.final_tone = true;
        self.expect = Expect::Nothing;
        let s = b.signal().clamp(1, 15);
        self.tone = Some(s);
        Some(Some(s))
    }

    /// The forward side went quiet while we wait for a DNIS digit and the timer ran out: if
    /// some DNIS is in, take it as complete and pulse A-6 or A-3 (China has no end-of-DNIS
    /// signal). Returns the pulse tone, or `None` if this is a plain timeout.
    pub fn dnis_timeout(&mut self) -> ToneChange {
        let waiting_digit = matches!(self.expect, Expect::DnisDigit);
        if self.done || self.tone.is_some() || self.fwd.is_some() || !waiting_digit {
            return None;
        }
        if self.dnis.is_empty() {
            return None;
        }
        let a = self.after_dnis();
        self.pulsing = true;
        self.tone = Some(a);
        Some(Some(a))
    }

    /// End a pulse started by [`IncomingRegister::dnis_timeout`].
    pub fn pulse_over(&mut self) -> (ToneChange, Option<InResult>) {
        if !self.pulsing {
            return (None, None);
        }
        self.pulsing = false;
        let off = self.tone.take().map(|_| None);
        // A forward tone that started during the pulse is answered now.
        if let Some(s) = self.fwd {
            self.fwd = None;
            let (t, r) = self.on_fwd(Some(s));
            return (t.or(off), r);
        }
        (off, None)
    }

    /// Stop (call torn down); returns the tone change.
    pub fn stop(&mut self) -> ToneChange {
        self.done = true;
        self.pulsing = false;
        self.offered = false;
        self.expect = Expect::Nothing;
        self.tone.take().map(|_| None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Run a register pair by hand through the compelled cycles; returns what the incoming
    /// register collected.
    fn exchange(dnis: &str, ani: &str, max_dnis: usize, ani_first: bool) -> (String, String) {
        let mut o =
            OutgoingRegister::new(Digits::parse(dnis).unwrap(), Digits::parse(ani).unwrap(), 1);
        let mut i = IncomingRegister::new(max_dnis, ani_first);
        let mut fwd = o.start().unwrap();
        for _ in 0..200 {
            // Forward tone on: backward responds.
            let (t, r) = i.on_fwd(fwd);
            if r == Some(InResult::Offered) {
                let b = i.accept(BSignal::FreeCharge).unwrap();
                let (t2, r2) = o.on_back(b);
                assert_eq!(t2, Some(None));
                assert_eq!(r2, Some(OutResult::GroupB(BSignal::FreeCharge)));
                let (t3, r3) = i.on_fwd(None);
                assert_eq!((t3, r3), (Some(None), Some(InResult::Finished)));
                return (i.dnis().to_string(), i.ani().to_string());
            }
            let back = t.expect("backward tone");
            let (t, _) = o.on_back(back);
            assert_eq!(t, Some(None), "forward off");
            let (t, _) = i.on_fwd(None);
            assert_eq!(t, Some(None), "backward off");
            let (t, _) = o.on_back(None);
            match t {
                Some(next) => fwd = next,
                None => {
                    // Out of DNIS digits: the incoming side times out and pulses.
                    let p = i.dnis_timeout().expect("pulse");
                    let (t, _) = o.on_back(p);
                    assert_eq!(t, None);
                    let (t, _) = i.pulse_over();
                    assert_eq!(t, Some(None));
                    let (t, _) = o.on_back(None);
                    fwd = t.expect("next after pulse");
                }
            }
        }
        panic!("did not finish");
    }

    #[test]
    fn ani_first_and_dnis_first() {
        assert_eq!(exchange("12345", "88776655", 5, true), ("12345".into(), "88776655".into()));
        assert_eq!(exchange("12345", "88776655", 5, false), ("12345".into(), "88776655".into()));
        assert_eq!(exchange("2", "", 1, true), ("2".into(), "".into()));
        assert_eq!(exchange("2", "", 1, false), ("2".into(), "".into()));
        // Unknown length: ends on timeout.
        assert_eq!(
            exchange("10086", "13900001111", 0, true),
            ("10086".into(), "13900001111".into())
        );
        assert_eq!(exchange("10086", "139", 0, false), ("10086".into(), "139".into()));
        // More digits offered than wanted: the rest are never asked for.
        assert_eq!(exchange("123456", "9", 4, true), ("1234".into(), "9".into()));
    }

    #[test]
    fn resend_requests() {
        let mut o = OutgoingRegister::new(Digits::parse("4567").unwrap(), Digits::new(), 1);
        assert_eq!(o.start(), Some(Some(4)));
        for (a, want) in [(1, 5), (1, 6), (2, 5), (1, 6), (8, 10)] {
            // (8 = n-3 from digit index 2 is out of range → error, checked below)
            let (_, r) = o.on_back(Some(a));
            if a == 8 {
                assert_eq!(r, Some(OutResult::BadSignal(8)));
                return;
            }
            assert_eq!(r, None);
            assert_eq!(o.on_back(None).0, Some(Some(want)));
        }
    }

    #[test]
    fn bad_forward_signal_gets_congestion() {
        let mut i = IncomingRegister::new(4, false);
        let (t, r) = i.on_fwd(Some(13));
        assert_eq!(t, Some(Some(A_CONGESTION)));
        assert_eq!(r, Some(InResult::BadSignal(13)));
        assert_eq!(i.on_fwd(None), (Some(None), Some(InResult::Finished)));
        assert!(i.done());
    }

    #[test]
    fn digits_parse() {
        assert_eq!(Digits::parse("0123").unwrap().as_str(), "0123");
        assert!(Digits::parse("12a").is_none());
        assert!(Digits::parse(&"1".repeat(MAX_DIGITS + 1)).is_none());
        assert_eq!(Digits::parse("0").unwrap().signal(0), 10);
    }
}
