//! Audio signatures: every simulated endpoint transmits its own tone, and every endpoint
//! analyses what it receives, so a test proves the switch path and not just the signalling.
//!
//! Signature frequencies are multiples of 50 Hz between 500 and 3300 Hz that stay at least 4 %
//! away from the DTMF frequencies and from 425, 450, 950, 1400 and 1800 Hz. Listeners analyse
//! 20 ms blocks (160 samples, aligned to the card's tick count), so every signature is an
//! integer number of cycles per block and the filters are orthogonal: a signature leaks nothing
//! into the other signatures' filters. With more endpoints than frequencies, the later ones get
//! pairs of frequencies.

use cardpbx_dsp::tone::dbm0_to_peak;
use cardpbx_dsp::toneplan::ProgressTone;
use std::f64::consts::TAU;

/// Samples per analysis block (20 ms).
pub const BLOCK_SAMPLES: usize = 160;
/// Ticks per analysis block.
pub const BLOCK_TICKS: u64 = 20;
/// Milliseconds per analysis block.
const BLOCK_MS: u32 = 20;

/// The signature frequencies, in assignment order.
pub const SIGNATURE_FREQS: [f32; 37] = [
    500.0, 550.0, 600.0, 650.0, 1000.0, 1050.0, 1100.0, 1150.0, 1900.0, 1950.0, 2000.0, 2050.0,
    2100.0, 2150.0, 2200.0, 2250.0, 2300.0, 2350.0, 2400.0, 2450.0, 2500.0, 2550.0, 2600.0, 2650.0,
    2700.0, 2750.0, 2800.0, 2850.0, 2900.0, 2950.0, 3000.0, 3050.0, 3100.0, 3150.0, 3200.0, 3250.0,
    3300.0,
];

const NSIG: usize = SIGNATURE_FREQS.len();
/// Most endpoints one card can give distinct signatures: every single frequency, then pairs.
pub const MAX_ENDPOINTS: usize = NSIG + NSIG * (NSIG - 1) / 2;
/// Filters: the signatures, then the two progress-tone frequencies (425 and 450 Hz).
const MAX_BINS: usize = NSIG + 2;

/// A simulated far end on the card: the phone on FXS port `n` or the CO line on FXO port `n`
/// (ports are 1-based).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EndpointId {
    /// The phone on an FXS port.
    Phone(u32),
    /// The central office and remote party on an FXO port.
    CoLine(u32),
    /// The remote party of an E1 bearer channel: span `span` (from 1), timeslot `ts`.
    Bearer {
        /// Span number on the card, from 1.
        span: u32,
        /// Timeslot, 1..=31 without 16.
        ts: u8,
    },
}

/// Bearer channels per E1 span (timeslots 1-15 and 17-31).
pub const BEARERS_PER_SPAN: usize = 30;

/// Index of a bearer timeslot among the span's 30 (ts 1 → 0, ts 17 → 15).
fn bearer_index(ts: u8) -> usize {
    if ts > 16 {
        ts as usize - 2
    } else {
        ts as usize - 1
    }
}

impl std::fmt::Display for EndpointId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EndpointId::Phone(p) => write!(f, "phone{p}"),
            EndpointId::CoLine(p) => write!(f, "coline{p}"),
            EndpointId::Bearer { span, ts } => write!(f, "span{span}/ts{ts}-far"),
        }
    }
}

/// What one 20 ms block of received audio was.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BlockClass {
    /// Below -48 dBm0.
    #[default]
    Silence,
    /// 425 or 450 Hz dominates (dial, busy, ringback, congestion tone).
    ProgressTone,
    /// An endpoint's signature dominates.
    Signature(EndpointId),
    /// Something else: DTMF, mixed audio, a transition, noise.
    Other,
}

/// What an endpoint hears now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Heard {
    /// The class of the last complete block.
    pub now: BlockClass,
    /// The progress tone the recent cadence matches: one of dial, busy, ringback, congestion.
    pub tone: Option<ProgressTone>,
    /// The endpoint whose signature was heard last.
    pub last_signature: Option<EndpointId>,
}

/// Counters of the automatic audio path check (see [`Listener::expect_peer`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AudioCheck {
    /// Blocks that carried the expected signature.
    pub ok_blocks: u64,
    /// Blocks counted as errors: a wrong signature, or no signature for more than 100 ms.
    pub error_blocks: u64,
    /// Of the error blocks, those that carried another endpoint's signature.
    pub wrong_peer_blocks: u64,
}

impl AudioCheck {
    /// Counters accumulated since `earlier`.
    pub fn since(&self, earlier: &AudioCheck) -> AudioCheck {
        AudioCheck {
            ok_blocks: self.ok_blocks - earlier.ok_blocks,
            error_blocks: self.error_blocks - earlier.error_blocks,
            wrong_peer_blocks: self.wrong_peer_blocks - earlier.wrong_peer_blocks,
        }
    }
}

/// Which endpoints exist on the card and the filters that recognise their signatures.
#[derive(Debug, Clone)]
pub struct SignaturePlan {
    phones: u32,
    co_lines: u32,
    endpoints: usize,
    /// Signature filters in use (all 37 once pairs are needed).
    nsig: usize,
    /// 2·cos(ω) per filter: `nsig` signature filters, then 425 Hz and 450 Hz.
    coeff: [f32; MAX_BINS],
}

impl SignaturePlan {
    /// A plan for `phones` phones and `co_lines` CO lines, or `None` when there are more than
    /// [`MAX_ENDPOINTS`].
    pub fn new(phones: u32, co_lines: u32) -> Option<Self> {
        Self::with_spans(phones, co_lines, 0)
    }

    /// A plan that also has the remote parties of `spans` E1 spans (30 bearers each), or
    /// `None` when there are more than [`MAX_ENDPOINTS`] endpoints.
    pub fn with_spans(phones: u32, co_lines: u32, spans: u32) -> Option<Self> {
        let endpoints = phones as usize + co_lines as usize + spans as usize * BEARERS_PER_SPAN;
        if endpoints > MAX_ENDPOINTS {
            return None;
        }
        let nsig = endpoints.min(NSIG);
        let mut coeff = [0f32; MAX_BINS];
        for (k, c) in coeff.iter_mut().take(nsig).enumerate() {
            *c = goertzel_coeff(SIGNATURE_FREQS[k]);
        }
        coeff[nsig] = goertzel_coeff(425.0);
        coeff[nsig + 1] = goertzel_coeff(450.0);
        Some(SignaturePlan { phones, co_lines, endpoints, nsig, coeff })
    }

    /// Dense index of an endpoint: phones first, then CO lines, then E1 remote parties.
    pub fn index(&self, id: EndpointId) -> usize {
        match id {
            EndpointId::Phone(p) => p as usize - 1,
            EndpointId::CoLine(p) => self.phones as usize + p as usize - 1,
            EndpointId::Bearer { span, ts } => {
                self.phones as usize
                    + self.co_lines as usize
                    + (span as usize - 1) * BEARERS_PER_SPAN
                    + bearer_index(ts)
            }
        }
    }

    /// The endpoint with a dense index.
    pub fn endpoint(&self, index: usize) -> Option<EndpointId> {
        if index >= self.endpoints {
            None
        } else if index < self.phones as usize {
            Some(EndpointId::Phone(index as u32 + 1))
        } else if index < (self.phones + self.co_lines) as usize {
            Some(EndpointId::CoLine((index - self.phones as usize) as u32 + 1))
        } else {
            let k = index - (self.phones + self.co_lines) as usize;
            let (span, b) = (k / BEARERS_PER_SPAN, k % BEARERS_PER_SPAN);
            let ts = if b >= 15 { b as u8 + 2 } else { b as u8 + 1 };
            Some(EndpointId::Bearer { span: span as u32 + 1, ts })
        }
    }

    /// The frequencies of an endpoint's signature (second 0 for a single tone).
    pub fn signature(&self, id: EndpointId) -> [f32; 2] {
        let i = self.index(id);
        if i < NSIG {
            return [SIGNATURE_FREQS[i], 0.0];
        }
        let (a, b) = pair_of(i - NSIG);
        [SIGNATURE_FREQS[a], SIGNATURE_FREQS[b]]
    }

    /// The signature as a continuous tone at `level_dbm0` (each component; pairs 3 dB lower).
    pub fn signature_tone(&self, id: EndpointId, level_dbm0: f32) -> cardpbx_dsp::tone::ToneSpec {
        let f = self.signature(id);
        let level = if f[1] == 0.0 { level_dbm0 } else { level_dbm0 - 3.0 };
        cardpbx_dsp::tone::ToneSpec::continuous(f, level).expect("signature frequencies are valid")
    }

    fn bins(&self) -> usize {
        self.nsig + 2
    }

    fn pairs_in_use(&self) -> bool {
        self.endpoints > NSIG
    }
}

fn goertzel_coeff(f: f32) -> f32 {
    (2.0 * (TAU * f64::from(f) / 8000.0).cos()) as f32
}

/// The `j`-th pair (a < b) in the order (0,1), (0,2), ..., (1,2), ...
fn pair_of(mut j: usize) -> (usize, usize) {
    let mut a = 0;
    loop {
        let row = NSIG - 1 - a;
        if j < row {
            return (a, a + 1 + j);
        }
        j -= row;
        a += 1;
    }
}

/// Inverse of [`pair_of`].
fn pair_index(a: usize, b: usize) -> usize {
    let (a, b) = if a < b { (a, b) } else { (b, a) };
    a * (2 * NSIG - a - 1) / 2 + (b - a - 1)
}

/// Mean square of a -48 dBm0 sine: the silence threshold per sample.
fn silence_mean_square() -> f32 {
    let a = dbm0_to_peak(-48.0);
    a * a / 2.0
}

/// Settle time after a path is expected or the endpoint becomes active, in blocks (200 ms).
const SETTLE_BLOCKS: u32 = 10;
/// A missing signature becomes an error after this many blocks in a row (100 ms).
const MISSING_GRACE_BLOCKS: u32 = 5;

/// Analyses what an endpoint receives, block by block: classification, progress-tone cadence
/// and the audio path check.
#[derive(Debug, Clone)]
pub struct Listener {
    s1: [f32; MAX_BINS],
    s2: [f32; MAX_BINS],
    energy: f32,
    filled: usize,
    silence_energy: f32,
    heard: Heard,
    // Progress tone cadence, in ms.
    tone_on: bool,
    run_ms: u32,
    last_on_ms: u32,
    last_off_ms: u32,
    // Audio path check.
    active: bool,
    expect: Option<EndpointId>,
    settle: u32,
    missing: u32,
    check: AudioCheck,
}

impl Default for Listener {
    fn default() -> Self {
        Listener::new()
    }
}

impl Listener {
    /// A listener that has heard nothing.
    pub fn new() -> Self {
        Listener {
            s1: [0.0; MAX_BINS],
            s2: [0.0; MAX_BINS],
            energy: 0.0,
            filled: 0,
            silence_energy: silence_mean_square() * BLOCK_SAMPLES as f32,
            heard: Heard::default(),
            tone_on: false,
            run_ms: 0,
            last_on_ms: 0,
            last_off_ms: 0,
            active: false,
            expect: None,
            settle: SETTLE_BLOCKS,
            missing: 0,
            check: AudioCheck::default(),
        }
    }

    /// What was heard recently.
    pub fn heard(&self) -> Heard {
        self.heard
    }

    /// The audio path check counters.
    pub fn check(&self) -> AudioCheck {
        self.check
    }

    /// The endpoint expected at the other end of the path.
    pub fn expected(&self) -> Option<EndpointId> {
        self.expect
    }

    /// Expect `peer`'s signature in every block while the endpoint is active (after 200 ms
    /// settling), or stop checking with `None`.
    pub fn expect_peer(&mut self, peer: Option<EndpointId>) {
        if self.expect != peer {
            self.expect = peer;
            self.settle = SETTLE_BLOCKS;
            self.missing = 0;
        }
    }

    /// Tell whether the endpoint is in a state where it should hear its peer (off-hook,
    /// answered). Becoming active restarts the settle time; an inactive listener analyses
    /// nothing.
    pub fn set_active(&mut self, active: bool) {
        if active && !self.active {
            self.settle = SETTLE_BLOCKS;
            self.missing = 0;
            self.forget_tone();
            self.heard.now = BlockClass::Silence;
            self.filled = 0;
            self.energy = 0.0;
            self.s1 = [0.0; MAX_BINS];
            self.s2 = [0.0; MAX_BINS];
        }
        self.active = active;
    }

    /// Whether the listener analyses audio.
    pub fn is_active(&self) -> bool {
        self.active
    }

    /// Forget the progress tone cadence seen so far (when the endpoint starts dialing).
    pub fn forget_tone(&mut self) {
        self.heard.tone = None;
        self.tone_on = false;
        self.run_ms = 0;
        self.last_on_ms = 0;
        self.last_off_ms = 0;
    }

    /// Feed received samples; returns the class of a block completed by them, if any.
    ///
    /// # Real-time
    /// Per sample: one filter update per signature in use plus two; per 160 samples a fixed
    /// classification. No allocation.
    pub fn push(&mut self, plan: &SignaturePlan, samples: &[i16]) -> Option<BlockClass> {
        if !self.active {
            return None;
        }
        let bins = plan.bins();
        let mut done = None;
        for &x in samples {
            let x = f32::from(x);
            self.energy += x * x;
            for k in 0..bins {
                let s = x + plan.coeff[k] * self.s1[k] - self.s2[k];
                self.s2[k] = self.s1[k];
                self.s1[k] = s;
            }
            self.filled += 1;
            if self.filled == BLOCK_SAMPLES {
                done = Some(self.finish_block(plan));
            }
        }
        done
    }

    fn finish_block(&mut self, plan: &SignaturePlan) -> BlockClass {
        let bins = plan.bins();
        let mut e = [0f32; MAX_BINS];
        let scale = 2.0 / BLOCK_SAMPLES as f32;
        for (k, ek) in e.iter_mut().enumerate().take(bins) {
            let (s1, s2) = (self.s1[k], self.s2[k]);
            *ek = (s1 * s1 + s2 * s2 - plan.coeff[k] * s1 * s2) * scale;
        }
        let class = classify(plan, &e[..bins], self.energy, self.silence_energy);
        self.s1 = [0.0; MAX_BINS];
        self.s2 = [0.0; MAX_BINS];
        self.energy = 0.0;
        self.filled = 0;
        self.heard.now = class;
        if let BlockClass::Signature(id) = class {
            self.heard.last_signature = Some(id);
        }
        self.track_cadence(class);
        self.track_check(class);
        class
    }

    fn track_cadence(&mut self, class: BlockClass) {
        match class {
            BlockClass::Signature(_) => {
                self.forget_tone();
                return;
            }
            BlockClass::ProgressTone => {
                if !self.tone_on {
                    self.last_off_ms = self.run_ms;
                    self.run_ms = 0;
                    self.tone_on = true;
                    if let Some(t) = cadence_tone(self.last_on_ms, self.last_off_ms) {
                        self.heard.tone = Some(t);
                    }
                }
            }
            BlockClass::Silence | BlockClass::Other => {
                if self.tone_on {
                    self.last_on_ms = self.run_ms;
                    self.run_ms = 0;
                    self.tone_on = false;
                    if self.last_on_ms > DIAL_MIN_MS {
                        // Dial tone stopped.
                        self.heard.tone = None;
                    } else if let Some(t) = cadence_tone(self.last_on_ms, self.last_off_ms) {
                        self.heard.tone = Some(t);
                    }
                }
            }
        }
        self.run_ms = self.run_ms.saturating_add(BLOCK_MS);
        if self.tone_on && self.run_ms > DIAL_MIN_MS {
            self.heard.tone = Some(ProgressTone::Dial);
        }
        if !self.tone_on {
            if (800..=1200).contains(&self.last_on_ms) && self.run_ms >= 2000 {
                self.heard.tone = Some(ProgressTone::Ringback);
            }
            if self.run_ms > TONE_GONE_MS {
                self.heard.tone = None;
            }
        }
    }

    fn track_check(&mut self, class: BlockClass) {
        let Some(peer) = self.expect else { return };
        if self.settle > 0 {
            self.settle -= 1;
            return;
        }
        match class {
            BlockClass::Signature(id) if id == peer => {
                self.check.ok_blocks += 1;
                self.missing = 0;
            }
            BlockClass::Signature(_) => {
                self.check.error_blocks += 1;
                self.check.wrong_peer_blocks += 1;
                self.missing = 0;
            }
            _ => {
                self.missing += 1;
                if self.missing > MISSING_GRACE_BLOCKS {
                    self.check.error_blocks += 1;
                }
            }
        }
    }
}

/// A continuous tone on longer than this is dial tone (ms).
const DIAL_MIN_MS: u32 = 1300;
/// Silence longer than this ends any cadence (ms).
const TONE_GONE_MS: u32 = 5000;

/// The tone a completed on/off pair of a cadence matches.
fn cadence_tone(on: u32, off: u32) -> Option<ProgressTone> {
    let near = |x: u32, nominal: u32| x * 5 >= nominal * 4 - 100 && x * 5 <= nominal * 6 + 100;
    if near(on, 350) && near(off, 350) {
        Some(ProgressTone::Busy)
    } else if near(on, 700) && near(off, 700) {
        Some(ProgressTone::Congestion)
    } else if (800..=1200).contains(&on) && off >= 2500 {
        Some(ProgressTone::Ringback)
    } else {
        None
    }
}

/// Classify one block from the filter energies (each normalised so that a pure tone at the
/// filter frequency gives the block energy) and the block energy.
fn classify(plan: &SignaturePlan, e: &[f32], energy: f32, silence: f32) -> BlockClass {
    if energy < silence {
        return BlockClass::Silence;
    }
    let nsig = plan.nsig;
    let progress = e[nsig].max(e[nsig + 1]);
    let (mut a, mut ea, mut b, mut eb) = (0usize, -1f32, 0usize, -1f32);
    for (k, &v) in e.iter().enumerate().take(nsig) {
        if v > ea {
            b = a;
            eb = ea;
            a = k;
            ea = v;
        } else if v > eb {
            b = k;
            eb = v;
        }
    }
    if progress >= 0.5 * energy && progress > ea {
        return BlockClass::ProgressTone;
    }
    if ea >= 0.5 * energy && eb < 0.1 * ea {
        return plan.endpoint(a).map_or(BlockClass::Other, BlockClass::Signature);
    }
    if plan.pairs_in_use() && eb >= 0.2 * energy && ea + eb >= 0.6 * energy {
        let idx = NSIG + pair_index(a, b);
        return plan.endpoint(idx).map_or(BlockClass::Other, BlockClass::Signature);
    }
    BlockClass::Other
}

#[cfg(test)]
mod tests {
    use super::*;
    use cardpbx_dsp::tone::ToneGen;

    #[test]
    fn frequencies_keep_clear_of_dtmf_and_progress_tones() {
        let avoid = [425.0, 450.0, 950.0, 1400.0, 1800.0, 697.0, 770.0, 852.0, 941.0, 1209.0];
        let avoid2 = [1336.0, 1477.0, 1633.0];
        for f in SIGNATURE_FREQS {
            for a in avoid.iter().chain(avoid2.iter()) {
                assert!((f - a).abs() > a * 0.04, "{f} too close to {a}");
            }
        }
    }

    #[test]
    fn pair_index_inverts_pair_of() {
        for j in 0..(NSIG * (NSIG - 1) / 2) {
            let (a, b) = pair_of(j);
            assert!(a < b && b < NSIG);
            assert_eq!(pair_index(a, b), j);
            assert_eq!(pair_index(b, a), j);
        }
    }

    fn hear(plan: &SignaturePlan, spec: cardpbx_dsp::tone::ToneSpec, blocks: usize) -> BlockClass {
        let mut l = Listener::new();
        l.set_active(true);
        let mut g = ToneGen::new(spec);
        let mut buf = [0i16; BLOCK_SAMPLES];
        let mut last = BlockClass::Silence;
        for _ in 0..blocks {
            g.fill(&mut buf);
            last = l.push(plan, &buf).unwrap();
        }
        last
    }

    #[test]
    fn every_endpoint_is_recognised_singles_and_pairs() {
        let plan = SignaturePlan::new(30, 30).unwrap();
        for i in 0..60 {
            let id = plan.endpoint(i).unwrap();
            assert_eq!(hear(&plan, plan.signature_tone(id, -15.0), 2), BlockClass::Signature(id));
        }
        let small = SignaturePlan::new(2, 1).unwrap();
        let tone = small.signature_tone(EndpointId::CoLine(1), -15.0);
        assert_eq!(hear(&small, tone, 2), BlockClass::Signature(EndpointId::CoLine(1)));
        assert!(SignaturePlan::new(MAX_ENDPOINTS as u32, 1).is_none());
        let e1 = SignaturePlan::with_spans(2, 1, 2).unwrap();
        for i in 0..63 {
            let id = e1.endpoint(i).unwrap();
            assert_eq!(e1.index(id), i, "{id}");
        }
        assert_eq!(e1.endpoint(3), Some(EndpointId::Bearer { span: 1, ts: 1 }));
        assert_eq!(e1.endpoint(3 + 15), Some(EndpointId::Bearer { span: 1, ts: 17 }));
        assert_eq!(e1.endpoint(3 + 30), Some(EndpointId::Bearer { span: 2, ts: 1 }));
        assert_eq!(e1.endpoint(63), None);
    }

    #[test]
    fn progress_tone_cadences_are_told_apart() {
        let plan = SignaturePlan::new(2, 0).unwrap();
        let cases = [
            (vec![], Some(ProgressTone::Dial)),
            (vec![350, 350], Some(ProgressTone::Busy)),
            (vec![700, 700], Some(ProgressTone::Congestion)),
            (vec![1000, 4000], Some(ProgressTone::Ringback)),
            (vec![100, 100], None),
        ];
        for (cad, want) in cases {
            let spec = if cad.is_empty() {
                cardpbx_dsp::tone::ToneSpec::continuous([450.0, 0.0], -10.0).unwrap()
            } else {
                cardpbx_dsp::tone::ToneSpec::cadenced([450.0, 0.0], -10.0, &cad).unwrap()
            };
            let mut l = Listener::new();
            l.set_active(true);
            let mut g = ToneGen::new(spec);
            let mut buf = [0i16; 8];
            for _ in 0..6000 {
                g.fill(&mut buf);
                l.push(&plan, &buf);
            }
            assert_eq!(l.heard().tone, want, "cadence {cad:?}");
        }
    }
}
