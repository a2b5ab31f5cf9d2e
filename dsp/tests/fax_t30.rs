//! End-to-end T.30 over audio: two `FaxSession`s wired back to back, V.21 for real and a
//! perfect "bit pipe" image modem that carries bits in sample values at the right bit rate.

use std::cell::Cell;
use std::time::Duration;

use cardpbx_dsp::fax::session::{FaxSession, ImageModem, ImageRx, ImageTx};
use cardpbx_dsp::fax::t30::{FaxRate, FaxStatus, Role, T30Config, T30Event, T30};
use cardpbx_dsp::fax::t4::{Bitmap, WIDTH_A4};
use cardpbx_dsp::fax::tiff::{read_tiff, write_tiff, FaxPage, WriteOptions};

/// Samples carrying bits look like `0x5000 | n << 8 | bits` (n = 0..2 bits in the low bits);
/// V.21 at -13 dBm0 never reaches these values.
const MARK: i16 = 0x5000;
const TRAIN_SAMPLES: usize = 1600; // 200 ms of "training" before data

struct PipeTx {
    bps: u32,
    bits: std::collections::VecDeque<u8>,
    finished: bool,
    train: usize,
    clock: u32,
    corrupt: bool,
    count: u64,
}

impl ImageTx for PipeTx {
    fn push_bytes(&mut self, data: &[u8]) {
        for &b in data {
            for i in 0..8 {
                self.bits.push_back((b >> i) & 1);
            }
        }
    }
    fn finish(&mut self) {
        self.finished = true;
    }
    fn fill(&mut self, out: &mut [i16]) -> usize {
        for (i, s) in out.iter_mut().enumerate() {
            if self.train > 0 {
                self.train -= 1;
                *s = MARK;
                continue;
            }
            if self.bits.is_empty() && self.finished {
                return i;
            }
            self.clock += self.bps;
            let mut n = 0;
            let mut v = 0i16;
            while self.clock >= 8000 && n < 2 {
                self.clock -= 8000;
                let mut b = self.bits.pop_front().unwrap_or(0);
                self.count += 1;
                if self.corrupt && self.count.is_multiple_of(37) {
                    b ^= 1;
                }
                v |= i16::from(b) << n;
                n += 1;
            }
            *s = MARK | (n << 8) | v;
        }
        out.len()
    }
}

struct PipeRx {
    valid: usize,
    invalid: usize,
    carrier: bool,
}

impl ImageRx for PipeRx {
    fn process(&mut self, samples: &[i16], on_bit: &mut dyn FnMut(u8)) {
        for &s in samples {
            let n = (s >> 8) & 0x0F;
            if s & !0x0FFF == MARK && n <= 2 {
                self.valid += 1;
                self.invalid = 0;
                if self.valid >= 40 {
                    self.carrier = true;
                }
                if self.carrier {
                    for k in 0..n {
                        on_bit(((s >> k) & 1) as u8);
                    }
                }
            } else {
                self.valid = 0;
                self.invalid += 1;
                if self.invalid >= 8 {
                    self.carrier = false;
                }
            }
        }
    }
    fn carrier(&self) -> bool {
        self.carrier
    }
}

/// A perfect modem, except that it corrupts everything sent at `corrupt_rate`.
#[derive(Default)]
struct PipeModem {
    corrupt_rate: Option<FaxRate>,
}

impl ImageModem for PipeModem {
    type Tx = PipeTx;
    type Rx = PipeRx;
    fn rates(&self) -> Vec<FaxRate> {
        vec![FaxRate::V29_9600, FaxRate::V29_7200, FaxRate::V27ter4800, FaxRate::V27ter2400]
    }
    fn make_tx(&mut self, rate: FaxRate) -> PipeTx {
        PipeTx {
            bps: rate.bps(),
            bits: Default::default(),
            finished: false,
            train: TRAIN_SAMPLES,
            clock: 0,
            corrupt: self.corrupt_rate == Some(rate),
            count: 0,
        }
    }
    fn make_rx(&mut self, _rate: FaxRate) -> PipeRx {
        PipeRx { valid: 0, invalid: 0, carrier: false }
    }
}

fn page(seed: u32, height: usize, fine: bool) -> FaxPage {
    let mut b = Bitmap::new(WIDTH_A4, height);
    let mut x = seed.wrapping_mul(0x9E37_79B9) | 1;
    for y in 0..height {
        for blk in 0..50 {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            if x.is_multiple_of(4) {
                let x0 = 20 + blk * 33;
                for px in x0..(x0 + (x as usize >> 8) % 25).min(WIDTH_A4) {
                    b.set(px, y, true);
                }
            }
        }
        if y % 40 == 0 {
            for px in 0..WIDTH_A4 {
                b.set(px, y, true);
            }
        }
    }
    FaxPage::new(b, fine)
}

fn session(
    role: Role,
    pages: Vec<FaxPage>,
    ident: &str,
    modem: PipeModem,
) -> FaxSession<PipeModem> {
    let cfg = T30Config { ident: ident.into(), rates: modem.rates(), ..T30Config::default() };
    FaxSession::new(T30::new(role, pages, cfg), modem, -13.0)
}

struct Outcome {
    a_events: Vec<T30Event>,
    b_events: Vec<T30Event>,
    end: Duration,
}

/// Runs both ends in 20 ms blocks. `line(from_a, t, samples)` may alter what crosses.
fn run(
    a: &mut FaxSession<PipeModem>,
    b: &mut FaxSession<PipeModem>,
    limit: Duration,
    mut line: impl FnMut(bool, Duration, &mut [i16]),
    mut each: impl FnMut(&mut FaxSession<PipeModem>, &mut FaxSession<PipeModem>),
) -> Outcome {
    const N: usize = 160;
    let mut a_to_b = [0i16; N];
    let mut b_to_a = [0i16; N];
    let mut out = Outcome { a_events: vec![], b_events: vec![], end: Duration::ZERO };
    while a.now() < limit {
        let (mut ta, mut tb) = ([0i16; N], [0i16; N]);
        a.process(&b_to_a, &mut ta);
        b.process(&a_to_b, &mut tb);
        line(true, a.now(), &mut ta);
        line(false, b.now(), &mut tb);
        a_to_b = ta;
        b_to_a = tb;
        // `each` sees events first; what it leaves goes into the outcome.
        each(a, b);
        while let Some(e) = a.poll_event() {
            out.a_events.push(e);
        }
        while let Some(e) = b.poll_event() {
            out.b_events.push(e);
        }
        if a.is_finished() && b.is_finished() {
            break;
        }
    }
    out.end = a.now();
    out
}

fn received(events: &[T30Event]) -> Vec<FaxPage> {
    events
        .iter()
        .filter_map(|e| if let T30Event::PageReceived(p) = e { Some(p.clone()) } else { None })
        .collect()
}

fn sent_fcfs(events: &[T30Event]) -> Vec<u8> {
    events
        .iter()
        .filter_map(|e| if let T30Event::FrameSent(f) = e { Some(*f) } else { None })
        .collect()
}

#[test]
fn multi_page_tiff_round_trip_over_audio() {
    // A three-page TIFF-F (standard, standard, fine) in, the same pages out.
    let pages = vec![page(1, 300, false), page(2, 200, false), page(3, 400, true)];
    let tiff = write_tiff(&pages, &WriteOptions::default());
    let doc = read_tiff(&tiff).unwrap();
    assert_eq!(doc.len(), 3);
    let mut a = session(Role::Calling, doc, "+86 10 6000 0001", PipeModem::default());
    let mut b = session(Role::Called, vec![], "+86 10 6000 0002", PipeModem::default());
    let o = run(&mut a, &mut b, Duration::from_secs(300), |_, _, _| {}, |_, _| {});
    assert_eq!(a.status(), Some(FaxStatus::Success), "{:?}", sent_fcfs(&o.a_events));
    assert_eq!(b.status(), Some(FaxStatus::Success));
    let got = received(&o.b_events);
    assert_eq!(got.len(), 3);
    for (g, p) in got.iter().zip(&pages) {
        assert_eq!(g.bitmap, p.bitmap);
        assert_eq!(g.y_resolution, p.y_resolution);
        assert_eq!(g.bad_rows, 0);
    }
    // Out again as TIFF and back: identical images.
    let back = read_tiff(&write_tiff(&got, &WriteOptions::default())).unwrap();
    for (g, p) in back.iter().zip(&pages) {
        assert_eq!(g.bitmap, p.bitmap);
    }
    // Page 3 changes resolution: EOM and a second phase B.
    assert_eq!(sent_fcfs(&o.a_events), [0x43, 0x83, 0x4F, 0x8F, 0x43, 0x83, 0x2F, 0xFB]);
    assert!(o.b_events.contains(&T30Event::RemoteIdent("+86 10 6000 0001".into())));
    assert!(o.a_events.contains(&T30Event::RemoteIdent("+86 10 6000 0002".into())));
    // Sanity on virtual time: 9600 bit/s pages plus handshakes take tens of seconds.
    assert!(o.end > Duration::from_secs(15) && o.end < Duration::from_secs(120), "{:?}", o.end);
}

#[test]
fn ftt_falls_back_when_top_rate_is_corrupted() {
    let pages = vec![page(4, 100, false)];
    let modem = PipeModem { corrupt_rate: Some(FaxRate::V29_9600) };
    let mut a = session(Role::Calling, pages.clone(), "A", modem);
    let mut b = session(Role::Called, vec![], "B", PipeModem::default());
    let o = run(&mut a, &mut b, Duration::from_secs(120), |_, _, _| {}, |_, _| {});
    assert_eq!(a.status(), Some(FaxStatus::Success));
    let training: Vec<(u32, bool)> = o
        .a_events
        .iter()
        .filter_map(|e| match e {
            T30Event::Training { rate, ok } => Some((rate.bps(), *ok)),
            _ => None,
        })
        .collect();
    assert_eq!(training, [(9600, false), (7200, true)]);
    assert_eq!(received(&o.b_events)[0].bitmap, pages[0].bitmap);
    assert_eq!(b.t30().dcs().unwrap().rate, FaxRate::V29_7200);
}

#[test]
fn t1_expires_when_nobody_answers() {
    let mut a = session(Role::Calling, vec![page(5, 10, false)], "A", PipeModem::default());
    let mut silent = session(Role::Called, vec![], "B", PipeModem::default());
    // Nothing crosses the line from the called side.
    let o = run(
        &mut a,
        &mut silent,
        Duration::from_secs(60),
        |from_a, _, s| {
            if !from_a {
                s.fill(0)
            }
        },
        |_, _| {},
    );
    assert_eq!(a.status(), Some(FaxStatus::NoAnswer));
    // T1 = 35 s, then DCN (about 1.3 s of V.21).
    assert!(o.end >= Duration::from_secs(35) && o.end < Duration::from_secs(38), "{:?}", o.end);
    assert_eq!(sent_fcfs(&o.a_events), [0xFB]);
}

#[test]
fn dcn_in_the_middle() {
    let pages = vec![page(6, 80, false), page(7, 80, false), page(8, 80, false)];
    let mut a = session(Role::Calling, pages, "A", PipeModem::default());
    let mut b = session(Role::Called, vec![], "B", PipeModem::default());
    let mut got = 0;
    let mut aborted = false;
    run(
        &mut a,
        &mut b,
        Duration::from_secs(120),
        |_, _, _| {},
        |_, b| {
            // The receiver hangs up (DCN) once the first page is in.
            while let Some(e) = b.poll_event() {
                if matches!(e, T30Event::PageReceived(_)) {
                    got += 1;
                }
            }
            if got == 1 && !aborted {
                aborted = true;
                b.abort();
            }
        },
    );
    assert_eq!(b.status(), Some(FaxStatus::LocalAbort));
    assert_eq!(a.status(), Some(FaxStatus::RemoteDisconnected));
}

#[test]
fn lost_response_is_recovered_by_repeating_the_command() {
    let pages = vec![page(9, 60, false), page(10, 60, false)];
    let mut a = session(Role::Calling, pages.clone(), "A", PipeModem::default());
    let mut b = session(Role::Called, vec![], "B", PipeModem::default());
    // Mute the called side for 3 s from the moment the caller sends its first MPS: the MCF
    // is lost, the caller's T4 runs out and it repeats MPS; the receiver repeats MCF without
    // counting the page twice.
    let mps_at: Cell<Option<Duration>> = Cell::new(None);
    let mut a_log = Vec::new();
    let o = run(
        &mut a,
        &mut b,
        Duration::from_secs(120),
        |from_a, now, s| {
            if let (false, Some(t)) = (from_a, mps_at.get()) {
                if now >= t && now < t + Duration::from_millis(3000) {
                    s.fill(0);
                }
            }
        },
        |a, _| {
            while let Some(e) = a.poll_event() {
                if e == T30Event::FrameSent(0x4F) && mps_at.get().is_none() {
                    mps_at.set(Some(a.now()));
                }
                a_log.push(e);
            }
        },
    );
    assert_eq!(a.status(), Some(FaxStatus::Success));
    let fcfs = sent_fcfs(&a_log);
    assert_eq!(fcfs.iter().filter(|&&f| f == 0x4F).count(), 2, "{fcfs:02x?}");
    let b_sent = sent_fcfs(&o.b_events);
    assert_eq!(b_sent.iter().filter(|&&f| f == 0x8C).count(), 3, "{b_sent:02x?}");
    let got = received(&o.b_events);
    assert_eq!(got.len(), 2);
    assert_eq!(got[1].bitmap, pages[1].bitmap);
}
