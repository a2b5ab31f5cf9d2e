use super::*;

// ---- exact bytes, built by hand from Table 2/T.30 ---------------------------------------
//
// FIF octet k holds bits 8k+1 .. 8k+8, bit 8k+1 in the least significant position (it is sent
// first). Octet 1: bit 10 = 0x02, 11 = 0x04, 12 = 0x08, 13 = 0x10, 14 = 0x20, 15 = 0x40,
// 16 = 0x80. Octet 2: 17 = 0x01, 18 = 0x02, 19 = 0x04, 20 = 0x08, 21 = 0x10, 22 = 0x20,
// 23 = 0x40, 24 (extend) = 0x80.

fn default_dis() -> Dis {
    Dis {
        ready_to_transmit: false,
        can_receive: true,
        modems: DisModems::V27terV29,
        fine: true,
        mr: true,
        max_width: PageWidth::A4,
        max_length: PageLength::Unlimited,
        min_scan: ScanTime::Ms0,
        uncompressed: false,
        ecm: false,
        t6: false,
        superfine: false,
    }
}

#[test]
fn dis_exact_bytes() {
    // bit 10 receive, bits 11-14 = 1100 (V.27 ter and V.29), bit 15 fine, bit 16 MR:
    // 0x02 | 0x04 | 0x08 | 0x40 | 0x80 = 0xCE. Bits 19-20 = 01 (unlimited): 0x08;
    // bits 21-23 = 111 (0 ms): 0x70.
    let dis = default_dis();
    assert_eq!(frame(fcf::DIS, &dis.emit(), true), [0xFF, 0x13, 0x80, 0x00, 0xCE, 0x78]);
    assert_eq!(Dis::parse(&[0x00, 0xCE, 0x78]), Ok(dis));

    // The engine's own DIS with the default configuration is exactly that.
    let t = T30::new(Role::Called, vec![], T30Config::default());
    assert_eq!(t.local_dis(false), dis);

    // V.27 ter + V.29 + V.17 = 1101: 0x04 | 0x08 | 0x20; B4 width (bit 17) 0x01, A4+B4
    // length (bit 19) 0x04, 20 ms (000); standard resolution, MH.
    let d = Dis {
        modems: DisModems::V27terV29V17,
        fine: false,
        mr: false,
        max_width: PageWidth::B4,
        max_length: PageLength::B4,
        min_scan: ScanTime::Ms20,
        ..dis
    };
    assert_eq!(d.emit(), [0x00, 0x2E, 0x05]);
    // A3 width (bit 18) 0x02; scan line codes: 40 ms = 001 (bit 23) 0x40, 5 ms = 100 (bit 21)
    // 0x10, 10 ms = 010 (bit 22) 0x20, 10/5 ms = 011 0x60, 20/10 ms = 110 0x30,
    // 40/20 ms = 101 0x50.
    let codes = [
        (ScanTime::Ms40, 0x40),
        (ScanTime::Ms5, 0x10),
        (ScanTime::Ms10, 0x20),
        (ScanTime::Ms10Half, 0x60),
        (ScanTime::Ms20Half, 0x30),
        (ScanTime::Ms40Half, 0x50),
    ];
    for (st, b) in codes {
        let d = Dis { max_width: PageWidth::A3, max_length: PageLength::A4, min_scan: st, ..dis };
        assert_eq!(d.emit(), [0x00, 0xCE, 0x02 | b], "{st:?}");
        assert_eq!(Dis::parse(&d.emit()), Ok(d));
    }
    // Polling: bit 9 = 0x01 in octet 1.
    let d = Dis { ready_to_transmit: true, can_receive: false, ..dis };
    assert_eq!(d.emit(), [0x00, 0xCD, 0x78]);
}

#[test]
fn dis_extension_octets() {
    // ECM (bit 27) needs a fourth octet: extend bit 24 (0x80) set in octet 2, bit 27 = 0x04.
    let d = Dis { ecm: true, ..default_dis() };
    assert_eq!(d.emit(), [0x00, 0xCE, 0xF8, 0x04]);
    assert_eq!(Dis::parse(&d.emit()), Ok(d));
    // Superfine (bit 41): octets 3 and 4 carry extend bits 32 and 40, octet 5 bit 41 = 0x01.
    let d = Dis { superfine: true, t6: true, ..default_dis() };
    assert_eq!(d.emit(), [0x00, 0xCE, 0xF8, 0xC0, 0x80, 0x01]);
    assert_eq!(Dis::parse(&d.emit()), Ok(d));
    // Octets after one whose extend bit is clear are ignored.
    assert_eq!(Dis::parse(&[0x00, 0xCE, 0x78, 0x04]), Ok(default_dis()));
    assert_eq!(Dis::parse(&[0x00, 0xCE]), Err(FifError::TooShort(2)));
}

#[test]
fn dcs_exact_bytes() {
    // V.29 9600 = 1000 (bit 11, 0x04), receive 0x02, fine 0x40, MR 0x80 -> 0xC6;
    // unlimited 0x08 + 0 ms 0x70 -> 0x78. Sent by the caller: FCF 0x82 | X = 0x83.
    let dcs = Dcs {
        receive: true,
        rate: FaxRate::V29_9600,
        fine: true,
        coding: Coding::Mr,
        width: PageWidth::A4,
        length: PageLength::Unlimited,
        min_scan_ms: 0,
        ecm: false,
        frame_64: false,
        t6: false,
    };
    assert_eq!(frame(fcf::DCS | 1, &dcs.emit(), true), [0xFF, 0x13, 0x83, 0x00, 0xC6, 0x78]);
    assert_eq!(Dcs::parse(&[0x00, 0xC6, 0x78]), Ok(dcs));

    // V.27 ter 4800 = 0100 (bit 12, 0x08), standard, MH, A4 length, 20 ms (000).
    let d = Dcs {
        rate: FaxRate::V27ter4800,
        fine: false,
        coding: Coding::Mh,
        length: PageLength::A4,
        min_scan_ms: 20,
        ..dcs
    };
    assert_eq!(d.emit(), [0x00, 0x0A, 0x00]);
    // Each rate's bits 11-14 (Table 2/T.30, DCS column).
    let rates = [
        (FaxRate::V27ter2400, 0x00),
        (FaxRate::V27ter4800, 0x08),
        (FaxRate::V29_9600, 0x04),
        (FaxRate::V29_7200, 0x0C),
        (FaxRate::V17_14400, 0x20),
        (FaxRate::V17_12000, 0x28),
        (FaxRate::V17_9600, 0x24),
        (FaxRate::V17_7200, 0x2C),
    ];
    for (r, b) in rates {
        let x = Dcs { rate: r, ..d };
        assert_eq!(x.emit(), [0x00, 0x02 | b, 0x00], "{r:?}");
        assert_eq!(Dcs::parse(&x.emit()), Ok(x));
    }
    // Scan times in DCS: 40 ms 0x40, 10 ms 0x20, 5 ms 0x10; B4 width 0x01, B4 length 0x04.
    for (ms, b) in [(40, 0x40), (10, 0x20), (5, 0x10), (0, 0x70)] {
        let x = Dcs { min_scan_ms: ms, width: PageWidth::B4, length: PageLength::B4, ..d };
        assert_eq!(x.emit(), [0x00, 0x0A, 0x05 | b]);
        assert_eq!(Dcs::parse(&x.emit()), Ok(x));
    }
    // Reserved rate 0010 (bit 13) and invalid width 11 are rejected.
    assert_eq!(Dcs::parse(&[0x00, 0x12, 0x00]), Err(FifError::BadRate(0b0100)));
    assert!(Dcs::parse(&[0x00, 0x0A, 0x03]).is_err());
}

#[test]
fn ident_is_reversed_and_padded() {
    let f = encode_ident("+86 10 1234");
    assert_eq!(&f[..11], b"4321 01 68+");
    assert!(f[11..].iter().all(|&b| b == b' '));
    assert_eq!(decode_ident(&f), "+86 10 1234");
    let long = "123456789012345678901234";
    assert_eq!(decode_ident(&encode_ident(long)), &long[4..]);
}

#[test]
fn fallback_order_and_modem_sets() {
    let names: Vec<u32> = FaxRate::FALLBACK.iter().map(|r| r.bps()).collect();
    assert_eq!(names, [14400, 12000, 9600, 9600, 7200, 7200, 4800, 2400]);
    let v29 = [FaxRate::V29_9600, FaxRate::V29_7200, FaxRate::V27ter4800, FaxRate::V27ter2400];
    assert_eq!(DisModems::for_rates(&v29), DisModems::V27terV29);
    assert!(!DisModems::V27terV29.supports(FaxRate::V17_9600));
    assert!(DisModems::V27terFallback.supports(FaxRate::V27ter2400));
    assert!(!DisModems::V27terFallback.supports(FaxRate::V27ter4800));
}

#[test]
fn tcf_check() {
    let mut t = TcfCheck::default();
    t.push(&[0xFF, 0x00, 0x00, 0x80]);
    // 8 + 8 + 7 zeros between the last one of 0xFF and the top bit of 0x80.
    assert_eq!(t.longest_zero_run(), 23);
    let mut t = TcfCheck::default();
    t.push(&vec![0u8; 1800]); // 1.5 s at 9600
    assert!(t.passed(FaxRate::V29_9600));
    let mut t = TcfCheck::default();
    let mut noisy = vec![0u8; 1800];
    for i in (0..1800).step_by(100) {
        noisy[i] = 0x10;
    }
    t.push(&noisy);
    assert!(!t.passed(FaxRate::V29_9600));
    assert!(t.passed(FaxRate::V27ter2400) || t.longest_zero_run() < 2400);
}

// ---- a frame-level harness: two engines with idealised transmissions ----------------------

const STEP: Duration = Duration::from_millis(5);

fn tx_duration(t: &T30Tx) -> Duration {
    let ms = match t {
        T30Tx::Cng => 0,
        T30Tx::Ced { ms } | T30Tx::Tcf { ms, .. } => u64::from(*ms),
        T30Tx::Frames(f) => {
            let bits: usize = f.iter().map(|x| (x.len() + 3) * 8).sum();
            1000 + (bits as u64 * 1000).div_ceil(300)
        }
        T30Tx::Image { rate, data } => {
            200 + (data.len() as u64 * 8 * 1000).div_ceil(u64::from(rate.bps()))
        }
    };
    Duration::from_millis(ms + 75)
}

struct Side {
    t30: T30,
    current: Option<(T30Tx, Duration)>,
    events: Vec<T30Event>,
}

impl Side {
    fn new(role: Role, pages: Vec<FaxPage>, cfg: T30Config) -> Self {
        Side { t30: T30::new(role, pages, cfg), current: None, events: Vec::new() }
    }
    fn sent(&self) -> Vec<u8> {
        self.events
            .iter()
            .filter_map(|e| if let T30Event::FrameSent(f) = e { Some(*f) } else { None })
            .collect()
    }
    fn pages(&self) -> Vec<FaxPage> {
        self.events
            .iter()
            .filter_map(|e| if let T30Event::PageReceived(p) = e { Some(p.clone()) } else { None })
            .collect()
    }
}

/// What the line does to a transmission: `Some(t)` delivers `t`, `None` loses it.
type Filter<'a> = dyn FnMut(bool, T30Tx) -> Option<T30Tx> + 'a;

fn deliver(to: &mut T30, now: Duration, t: T30Tx) {
    match t {
        T30Tx::Frames(frames) => {
            for f in frames {
                to.handle_frame(now, &f);
            }
            to.handle_v21_carrier(now, false);
        }
        T30Tx::Tcf { rate, ms } => {
            if to.rx_mode() == RxMode::Image(rate) {
                to.handle_image_data(now, &vec![0u8; (rate.bps() * ms / 8000) as usize]);
                to.handle_image_carrier(now, false);
            }
        }
        T30Tx::Image { rate, data } => {
            if to.rx_mode() == RxMode::Image(rate) {
                to.handle_image_data(now, &data);
                to.handle_image_carrier(now, false);
            }
        }
        T30Tx::Cng | T30Tx::Ced { .. } => {}
    }
}

/// The image carrier reaches the far end when a transmission starts.
fn carrier_on(to: &mut T30, now: Duration, t: &T30Tx) {
    if let T30Tx::Tcf { rate, .. } | T30Tx::Image { rate, .. } = t {
        if to.rx_mode() == RxMode::Image(*rate) {
            to.handle_image_carrier(now, true);
        }
    }
}

fn step_side(
    me: &mut Side,
    other: &mut Side,
    from_a: bool,
    now: Duration,
    filter: &mut Filter<'_>,
) {
    if let Some((_, end)) = &me.current {
        if *end <= now {
            let (t, _) = me.current.take().unwrap();
            if let Some(t) = filter(from_a, t) {
                deliver(&mut other.t30, now, t);
            }
            me.t30.handle_tx_done(now);
        }
    }
    if me.current.is_none() {
        while let Some(t) = me.t30.poll_transmit() {
            if t == T30Tx::Cng {
                continue;
            }
            let end = now + tx_duration(&t);
            carrier_on(&mut other.t30, now, &t);
            me.current = Some((t, end));
            break;
        }
    }
    if me.t30.poll_timeout().is_some_and(|t| t <= now) {
        me.t30.handle_timeout(now);
    }
    while let Some(e) = me.t30.poll_event() {
        me.events.push(e);
    }
}

fn run(a: &mut Side, b: &mut Side, filter: &mut Filter<'_>, limit_s: u64) -> Duration {
    run_with(a, b, filter, limit_s, &mut |_, _| {})
}

/// [`run`] with a hook called on both sides after each step.
fn run_with(
    a: &mut Side,
    b: &mut Side,
    filter: &mut Filter<'_>,
    limit_s: u64,
    hook: &mut dyn FnMut(&mut Side, &mut Side),
) -> Duration {
    let mut now = Duration::ZERO;
    a.t30.start(now);
    b.t30.start(now);
    while now < Duration::from_secs(limit_s) {
        if std::env::var("T30_TRACE").is_ok() {
            for e in &a.events {
                if !matches!(e, T30Event::PageReceived(_)) {
                    eprintln!("A {now:?} {e:?}");
                }
            }
            for e in &b.events {
                if !matches!(e, T30Event::PageReceived(_)) {
                    eprintln!("B {now:?} {e:?}");
                }
            }
            a.events.clear();
            b.events.clear();
        }
        step_side(a, b, true, now, filter);
        step_side(b, a, false, now, filter);
        hook(a, b);
        if a.t30.is_finished() && b.t30.is_finished() && a.current.is_none() && b.current.is_none()
        {
            break;
        }
        now += STEP;
    }
    now
}

fn pass() -> impl FnMut(bool, T30Tx) -> Option<T30Tx> {
    |_, t| Some(t)
}

/// A deterministic test page: borders, stripes and pseudo-random "text" blocks.
pub(super) fn test_page(seed: u32, height: usize, fine: bool) -> FaxPage {
    let mut b = Bitmap::new(t4::WIDTH_A4, height);
    let mut x = seed.wrapping_mul(2_654_435_761).max(1);
    for y in 0..height {
        b.set(0, y, true);
        b.set(t4::WIDTH_A4 - 1, y, true);
        if y % 17 < 3 {
            for px in (100..1600).step_by(3) {
                b.set(px, y, true);
            }
        } else {
            for blk in 0..40 {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                if x.is_multiple_of(3) {
                    let x0 = 40 + blk * 40;
                    for px in x0..x0 + (x as usize % 30) {
                        b.set(px, y, true);
                    }
                }
            }
        }
    }
    FaxPage::new(b, fine)
}

fn cfg(ident: &str) -> T30Config {
    T30Config { ident: ident.into(), ..T30Config::default() }
}

fn status_of(s: &Side) -> Option<FaxStatus> {
    s.t30.status()
}

#[test]
fn two_pages_sent_and_received() {
    let pages = vec![test_page(1, 200, false), test_page(2, 150, false)];
    let mut a = Side::new(Role::Calling, pages.clone(), cfg("+86 10 5550001"));
    let mut b = Side::new(Role::Called, vec![], cfg("+86 10 5550002"));
    run(&mut a, &mut b, &mut pass(), 120);
    assert_eq!(status_of(&a), Some(FaxStatus::Success));
    assert_eq!(status_of(&b), Some(FaxStatus::Success));
    let got = b.pages();
    assert_eq!(got.len(), 2);
    for (g, p) in got.iter().zip(&pages) {
        assert_eq!(g.bitmap, p.bitmap);
        assert_eq!(g.bad_rows, 0);
    }
    // Caller: TSI, DCS, MPS, EOP, DCN with X = 1. Called: CSI, DIS, CFR, MCF, MCF.
    assert_eq!(a.sent(), [0x43, 0x83, 0x4F, 0x2F, 0xFB]);
    assert_eq!(b.sent(), [0x40, 0x80, 0x84, 0x8C, 0x8C]);
    assert!(b.events.contains(&T30Event::RemoteIdent("+86 10 5550001".into())));
    assert!(a.events.contains(&T30Event::RemoteIdent("+86 10 5550002".into())));
    assert!(a.events.contains(&T30Event::Training { rate: FaxRate::V29_9600, ok: true }));
}

/// TCF as received over a bad line: a one bit every 50 octets.
fn noisy_tcf(rate: FaxRate, ms: u32) -> T30Tx {
    let mut data = vec![0u8; (rate.bps() * ms / 8000) as usize];
    for x in data.iter_mut().step_by(50) {
        *x = 0x08;
    }
    T30Tx::Image { rate, data }
}

#[test]
fn tcf_not_heard_makes_sender_repeat_dcs() {
    let mut a = Side::new(Role::Calling, vec![test_page(22, 40, false)], cfg("1"));
    let mut b = Side::new(Role::Called, vec![], cfg("2"));
    let mut lost = 0;
    let mut f = |_: bool, t: T30Tx| match t {
        T30Tx::Tcf { .. } if lost == 0 => {
            lost += 1;
            None
        }
        t => Some(t),
    };
    run(&mut a, &mut b, &mut f, 120);
    assert_eq!(status_of(&a), Some(FaxStatus::Success));
    assert_eq!(a.sent(), [0x43, 0x83, 0x43, 0x83, 0x2F, 0xFB]);
}

#[test]
fn ftt_falls_back_one_step() {
    let pages = vec![test_page(3, 100, false)];
    let mut a = Side::new(Role::Calling, pages, cfg("1"));
    let mut b = Side::new(Role::Called, vec![], cfg("2"));
    // The line ruins training at 9600.
    let mut f = |_: bool, t: T30Tx| match t {
        T30Tx::Tcf { rate: rate @ FaxRate::V29_9600, ms } => Some(noisy_tcf(rate, ms)),
        t => Some(t),
    };
    run(&mut a, &mut b, &mut f, 120);
    assert_eq!(status_of(&a), Some(FaxStatus::Success));
    let training: Vec<_> =
        a.events.iter().filter(|e| matches!(e, T30Event::Training { .. })).cloned().collect();
    assert_eq!(
        training,
        [
            T30Event::Training { rate: FaxRate::V29_9600, ok: false },
            T30Event::Training { rate: FaxRate::V29_7200, ok: true },
        ]
    );
    assert_eq!(b.pages().len(), 1);
}

#[test]
fn ftt_at_every_rate_fails_training() {
    let mut a = Side::new(Role::Calling, vec![test_page(4, 50, false)], cfg("1"));
    let mut b = Side::new(Role::Called, vec![], cfg("2"));
    let mut f = |_: bool, t: T30Tx| match t {
        T30Tx::Tcf { rate, ms } => Some(noisy_tcf(rate, ms)),
        t => Some(t),
    };
    run(&mut a, &mut b, &mut f, 200);
    assert_eq!(status_of(&a), Some(FaxStatus::TrainingFailed));
    let rates: Vec<u32> = a
        .events
        .iter()
        .filter_map(|e| if let T30Event::Negotiated(d) = e { Some(d.rate.bps()) } else { None })
        .collect();
    assert_eq!(rates, [9600, 7200, 4800, 2400]);
    assert_eq!(*a.sent().last().unwrap(), fcf::DCN | 1);
    assert_eq!(status_of(&b), Some(FaxStatus::RemoteDisconnected));
}

#[test]
fn lost_response_makes_sender_repeat_command() {
    let pages = vec![test_page(5, 60, false), test_page(6, 60, false)];
    let mut a = Side::new(Role::Calling, pages, cfg("1"));
    let mut b = Side::new(Role::Called, vec![], cfg("2"));
    let mut dropped = 0;
    // Lose the receiver's first MCF.
    let mut f = |from_a: bool, t: T30Tx| {
        if !from_a && dropped == 0 {
            if let T30Tx::Frames(fr) = &t {
                if fr[0][2] & 0xFE == fcf::MCF {
                    dropped += 1;
                    return None;
                }
            }
        }
        Some(t)
    };
    run(&mut a, &mut b, &mut f, 120);
    assert_eq!(status_of(&a), Some(FaxStatus::Success));
    assert_eq!(a.sent(), [0x43, 0x83, 0x4F, 0x4F, 0x2F, 0xFB]);
    assert_eq!(b.sent(), [0x40, 0x80, 0x84, 0x8C, 0x8C, 0x8C]);
    assert_eq!(b.pages().len(), 2, "the repeated MPS must not duplicate a page");
}

#[test]
fn no_response_after_three_repeats() {
    let mut a = Side::new(Role::Calling, vec![test_page(7, 40, false)], cfg("1"));
    let mut b = Side::new(Role::Called, vec![], cfg("2"));
    // The receiver is deaf after its first DIS: nothing from A reaches it.
    let mut f = |from_a: bool, t: T30Tx| if from_a { None } else { Some(t) };
    run(&mut a, &mut b, &mut f, 120);
    assert_eq!(status_of(&a), Some(FaxStatus::NoResponse));
    let dcs = a.sent().iter().filter(|&&x| x == 0x83).count();
    assert_eq!(dcs, 1 + MAX_REPEATS as usize);
    // The called side kept repeating DIS until T1.
    assert_eq!(status_of(&b), Some(FaxStatus::NoAnswer));
    assert!(b.sent().iter().filter(|&&x| x == fcf::DIS).count() >= 5);
}

#[test]
fn t1_expires_without_answer() {
    let mut a = Side::new(Role::Calling, vec![test_page(8, 40, false)], cfg("1"));
    let mut b = Side::new(Role::Called, vec![], cfg("2"));
    let mut f = |_: bool, _: T30Tx| None;
    let end = run(&mut a, &mut b, &mut f, 120);
    assert_eq!(status_of(&a), Some(FaxStatus::NoAnswer));
    assert_eq!(status_of(&b), Some(FaxStatus::NoAnswer));
    assert!(end >= Duration::from_secs(35) && end < Duration::from_secs(40), "{end:?}");
}

#[test]
fn bad_page_gets_rtn_and_is_resent() {
    let page = test_page(9, 120, false);
    let mut a = Side::new(Role::Calling, vec![page.clone()], cfg("1"));
    let mut b = Side::new(Role::Called, vec![], cfg("2"));
    let mut n = 0;
    let mut f = |_: bool, t: T30Tx| match t {
        T30Tx::Image { rate, mut data } if n == 0 => {
            n += 1;
            // A bit error in every 8th byte of the middle half of the page.
            let len = data.len();
            for x in data[len / 4..3 * len / 4].iter_mut().step_by(8) {
                *x ^= 0x10;
            }
            Some(T30Tx::Image { rate, data })
        }
        t => Some(t),
    };
    run(&mut a, &mut b, &mut f, 120);
    assert_eq!(status_of(&a), Some(FaxStatus::Success));
    assert!(a.events.contains(&T30Event::PageSent { index: 0, accepted: false }));
    assert!(a.events.contains(&T30Event::PageSent { index: 0, accepted: true }));
    assert_eq!(b.sent(), [0x40, 0x80, 0x84, 0x4C, 0x84, 0x8C]);
    assert_eq!(b.pages().len(), 1);
    assert_eq!(b.pages()[0].bitmap, page.bitmap);
}

#[test]
fn page_rejected_after_retries() {
    let mut a = Side::new(Role::Calling, vec![test_page(10, 80, false)], cfg("1"));
    let mut b = Side::new(Role::Called, vec![], cfg("2"));
    let mut f = |_: bool, t: T30Tx| match t {
        T30Tx::Image { rate, data } => Some(T30Tx::Image { rate, data: vec![0x55; data.len()] }),
        t => Some(t),
    };
    run(&mut a, &mut b, &mut f, 200);
    assert_eq!(status_of(&a), Some(FaxStatus::PageRejected));
    let rtn = b.sent().iter().filter(|&&x| x == fcf::RTN).count();
    assert_eq!(rtn, 3); // first try + max_page_retries (2)
}

#[test]
fn receiver_min_scan_time_pads_lines() {
    let page = test_page(11, 80, false);
    let mut a = Side::new(Role::Calling, vec![page.clone()], cfg("1"));
    let mut rcfg = cfg("2");
    rcfg.min_scan = ScanTime::Ms20;
    let mut b = Side::new(Role::Called, vec![], rcfg);
    let mut images = Vec::new();
    let mut f = |_: bool, t: T30Tx| {
        if let T30Tx::Image { data, .. } = &t {
            images.push(data.clone());
        }
        Some(t)
    };
    run(&mut a, &mut b, &mut f, 120);
    assert_eq!(status_of(&a), Some(FaxStatus::Success));
    let dcs = a.t30.dcs().unwrap();
    assert_eq!(dcs.min_scan_ms, 20);
    // Every line (EOL to EOL, before RTC) is at least 20 ms at 9600 bit/s = 192 bits.
    let bits: Vec<u8> = images[0].iter().flat_map(|b| (0..8).map(move |i| (b >> i) & 1)).collect();
    let mut eols = Vec::new();
    let mut zeros = 0;
    for (i, &b) in bits.iter().enumerate() {
        if b == 1 && zeros >= 11 {
            eols.push(i);
        }
        zeros = if b == 0 { zeros + 1 } else { 0 };
    }
    assert!(eols.len() >= 80 + 6);
    let lines = &eols[..81];
    for w in lines.windows(2) {
        assert!(w[1] - w[0] >= 192, "line of {} bits", w[1] - w[0]);
    }
    assert_eq!(b.pages()[0].bitmap, page.bitmap);
    // Without the request, lines are shorter.
    let mut a2 = Side::new(Role::Calling, vec![page], cfg("1"));
    let mut b2 = Side::new(Role::Called, vec![], cfg("2"));
    let mut sizes = Vec::new();
    let mut f2 = |_: bool, t: T30Tx| {
        if let T30Tx::Image { data, .. } = &t {
            sizes.push(data.len());
        }
        Some(t)
    };
    run(&mut a2, &mut b2, &mut f2, 120);
    assert!(sizes[0] < images[0].len());
}

#[test]
fn remote_dcn_mid_call() {
    let pages = vec![test_page(12, 60, false), test_page(13, 60, false), test_page(14, 60, false)];
    let mut a = Side::new(Role::Calling, pages, cfg("1"));
    let mut b = Side::new(Role::Called, vec![], cfg("2"));
    let mut now = Duration::ZERO;
    a.t30.start(now);
    b.t30.start(now);
    let mut f = pass();
    while now < Duration::from_secs(120) {
        step_side(&mut a, &mut b, true, now, &mut f);
        step_side(&mut b, &mut a, false, now, &mut f);
        if b.pages().len() == 1 && !b.t30.is_finished() && b.current.is_none() {
            b.t30.abort(now);
        }
        if a.t30.is_finished() && b.t30.is_finished() && b.current.is_none() {
            break;
        }
        now += STEP;
    }
    assert_eq!(status_of(&b), Some(FaxStatus::LocalAbort));
    assert_eq!(status_of(&a), Some(FaxStatus::RemoteDisconnected));
    assert_eq!(*b.sent().last().unwrap(), fcf::DCN);
}

#[test]
fn eom_between_resolutions_returns_to_phase_b() {
    let pages = vec![test_page(15, 60, false), test_page(16, 120, true)];
    let mut a = Side::new(Role::Calling, pages.clone(), cfg("1"));
    let mut b = Side::new(Role::Called, vec![], cfg("2"));
    run(&mut a, &mut b, &mut pass(), 120);
    assert_eq!(status_of(&a), Some(FaxStatus::Success));
    assert_eq!(a.sent(), [0x43, 0x83, 0x8F, 0x43, 0x83, 0x2F, 0xFB]);
    let got = b.pages();
    assert_eq!(got.len(), 2);
    assert!(!page_is_fine(&got[0]) && page_is_fine(&got[1]));
    assert_eq!(got[1].bitmap, pages[1].bitmap);
}

#[test]
fn fine_page_to_standard_only_receiver_drops_rows() {
    let page = test_page(17, 100, true);
    let mut a = Side::new(Role::Calling, vec![page.clone()], cfg("1"));
    let mut b = Side::new(Role::Called, vec![], T30Config { fine: false, mr: false, ..cfg("2") });
    run(&mut a, &mut b, &mut pass(), 120);
    assert_eq!(status_of(&a), Some(FaxStatus::Success));
    let got = &b.pages()[0];
    assert_eq!(got.bitmap.height, 50);
    assert_eq!(got.bitmap.row(1), page.bitmap.row(2));
    assert_eq!(a.t30.dcs().unwrap().coding, Coding::Mh);
}

#[test]
fn polling_caller_receives_from_called() {
    let page = test_page(18, 80, false);
    let mut a = Side::new(Role::Calling, vec![], cfg("poller"));
    let mut b = Side::new(Role::Called, vec![page.clone()], cfg("holder"));
    run(&mut a, &mut b, &mut pass(), 120);
    assert_eq!(status_of(&a), Some(FaxStatus::Success));
    assert_eq!(status_of(&b), Some(FaxStatus::Success));
    // Called: CSI, DIS (bit 9), then as sender TSI, DCS, EOP, DCN (X = 0).
    assert_eq!(b.sent(), [0x40, 0x80, 0x42, 0x82, 0x2E, 0xFA]);
    // Calling: CIG, DTC, CFR, MCF (X = 1).
    assert_eq!(a.sent(), [0x41, 0x81, 0x85, 0x8D]);
    assert_eq!(a.pages()[0].bitmap, page.bitmap);
}

#[test]
fn polling_refused_when_nothing_to_send() {
    let mut a = Side::new(Role::Calling, vec![], cfg("poller"));
    let mut b = Side::new(Role::Called, vec![], cfg("receiver"));
    run(&mut a, &mut b, &mut pass(), 60);
    assert_eq!(status_of(&a), Some(FaxStatus::PollingRefused));
    assert_eq!(status_of(&b), Some(FaxStatus::RemoteDisconnected));
}

#[test]
fn incompatible_width() {
    let mut wide = test_page(19, 20, false);
    wide.bitmap = Bitmap::new(t4::WIDTH_B4, 20);
    let mut a = Side::new(Role::Calling, vec![wide], cfg("1"));
    let mut b = Side::new(Role::Called, vec![], cfg("2"));
    run(&mut a, &mut b, &mut pass(), 60);
    assert_eq!(status_of(&a), Some(FaxStatus::Incompatible));
}

#[test]
fn lost_command_is_repeated_after_t4() {
    let mut a = Side::new(Role::Calling, vec![test_page(20, 40, false)], cfg("1"));
    let mut b = Side::new(Role::Called, vec![], cfg("2"));
    let mut once = false;
    // The first EOP never arrives.
    let mut f = |from_a: bool, t: T30Tx| {
        if let T30Tx::Frames(fr) = &t {
            if from_a && !once && fr[0][2] == 0x2F {
                once = true;
                return None;
            }
        }
        Some(t)
    };
    run(&mut a, &mut b, &mut f, 60);
    assert_eq!(status_of(&a), Some(FaxStatus::Success));
    assert_eq!(a.sent(), [0x43, 0x83, 0x2F, 0x2F, 0xFB]);
    assert_eq!(b.pages().len(), 1);
}

#[test]
fn crp_both_ways() {
    // A sender told CRP repeats its last command at once (DCS, then TCF again).
    let mut t = T30::new(Role::Calling, vec![test_page(21, 10, false)], cfg("1"));
    let now = Duration::ZERO;
    t.start(now);
    assert_eq!(t.poll_transmit(), Some(T30Tx::Cng));
    t.handle_frame(now, &frame(fcf::DIS, &default_dis().emit(), true));
    assert!(matches!(t.poll_transmit(), Some(T30Tx::Frames(_))));
    t.handle_tx_done(now);
    assert_eq!(t.poll_transmit(), Some(T30Tx::Tcf { rate: FaxRate::V29_9600, ms: TCF_MS }));
    t.handle_tx_done(now);
    t.handle_frame(now, &frame(fcf::CRP, &[], true));
    match t.poll_transmit() {
        Some(T30Tx::Frames(f)) => assert_eq!(f[1], [0xFF, 0x13, 0x83, 0x00, 0x86, 0x78]),
        other => panic!("{other:?}"),
    }
    t.handle_tx_done(now);
    assert!(matches!(t.poll_transmit(), Some(T30Tx::Tcf { .. })));

    // A receiver that gets a garbled post-page command answers CRP.
    let mut r = T30::new(Role::Called, vec![], cfg("2"));
    r.start(now);
    let _ = r.poll_transmit(); // CED
    r.handle_tx_done(now);
    let _ = r.poll_transmit(); // CSI + DIS
    r.handle_tx_done(now);
    r.handle_frame(now, &frame(fcf::DCS | 1, &[0x00, 0xC6, 0x78], true));
    assert_eq!(r.rx_mode(), RxMode::Image(FaxRate::V29_9600));
    r.handle_image_carrier(now, true);
    r.handle_image_data(now, &[0u8; 1800]);
    r.handle_image_carrier(now, false);
    assert_eq!(r.poll_transmit(), Some(T30Tx::Frames(vec![frame(fcf::CFR, &[], true)])));
    r.handle_tx_done(now);
    r.handle_image_carrier(now, true);
    let data =
        t4::reverse_bit_order(&t4::encode_page(&test_page(1, 10, false).bitmap, Coding::Mr, 4));
    r.handle_image_data(now, &data);
    r.handle_image_carrier(now, false);
    r.handle_bad_frame(now);
    assert_eq!(r.poll_transmit(), Some(T30Tx::Frames(vec![frame(fcf::CRP, &[], true)])));
    r.handle_tx_done(now);
    r.handle_frame(now, &frame(fcf::EOP | 1, &[], true));
    assert_eq!(r.poll_transmit(), Some(T30Tx::Frames(vec![frame(fcf::MCF, &[], true)])));
}

// ---- error correction mode ----------------------------------------------------------------

#[test]
fn ecm_fields_exact_bytes() {
    // DCS with ECM (bit 27 = 0x04 of octet 4), 64-octet frames (bit 28 = 0x08) and T.6
    // (bit 31 = 0x40): octet 3 gets its extend bit (0x80).
    let dcs = Dcs {
        receive: true,
        rate: FaxRate::V29_9600,
        fine: false,
        coding: Coding::Mh,
        width: PageWidth::A4,
        length: PageLength::A4,
        min_scan_ms: 0,
        ecm: true,
        frame_64: false,
        t6: true,
    };
    assert_eq!(dcs.emit(), [0x00, 0x06, 0xF0, 0x44]);
    assert_eq!(Dcs::parse(&dcs.emit()), Ok(dcs));
    let small = Dcs { frame_64: true, t6: false, ..dcs };
    assert_eq!(small.emit(), [0x00, 0x06, 0xF0, 0x0C]);
    assert_eq!(Dcs::parse(&small.emit()), Ok(small));
    // DIS with ECM offers T.6 too.
    let t = T30::new(Role::Called, vec![], T30Config { ecm: true, ..cfg("x") });
    let dis = t.local_dis(false);
    assert!(dis.ecm && dis.t6);
    assert_eq!(dis.emit(), [0x00, 0xCE, 0xF8, 0x44]);

    // PPS: post-page FCF with X, page, block, frames - 1; NULL stays 0.
    let pps = ecm::Pps { post: fcf::MPS, page: 2, block: 1, frames: 256 };
    assert_eq!(pps.emit(1), [0x4F, 2, 1, 255]);
    assert_eq!(ecm::Pps::parse(&pps.emit(1)), Some(pps));
    let null = ecm::Pps { post: ecm::NULL, page: 0, block: 0, frames: 1 };
    assert_eq!(null.emit(1), [0, 0, 0, 0]);
    assert_eq!(ecm::Pps::parse(&[0, 0, 0]), None);
    // PPR map: frame n is bit n % 8 of octet n / 8.
    let mut m = ecm::FrameMap::default();
    m.set(0);
    m.set(9);
    m.set(255);
    assert_eq!((m.0[0], m.0[1], m.0[31]), (0x01, 0x02, 0x80));
    assert_eq!(m.count(256), 3);
    assert_eq!(m.count(9), 1);
    assert_eq!(ecm::FrameMap::parse(&m.0), Some(m));
    assert_eq!(ecm::FrameMap::parse(&[0; 31]), None);
    // CTC carries DCS bits 11-14 in its second octet: V.29 7200 = 1100 -> 0x0C.
    assert_eq!(ecm::ctc_fif(FaxRate::V29_7200), [0x00, 0x0C]);
    assert_eq!(ecm::parse_ctc(&[0x00, 0x0C]), Some(FaxRate::V29_7200));
}

/// The FCD frames (number, data) in an ECM burst, and how many RCP frames follow.
fn burst_frames(data: &[u8]) -> (Vec<(u8, Vec<u8>)>, usize) {
    let mut rx = crate::fax::hdlc::HdlcRx::new();
    let (mut fcd, mut rcp) = (Vec::new(), 0);
    for &o in data {
        for i in 0..8 {
            if let Some(crate::fax::hdlc::HdlcEvent::Frame(f)) = rx.push_bit((o >> i) & 1) {
                match f[2] {
                    fcf::FCD => fcd.push((f[3], f[4..].to_vec())),
                    fcf::RCP => rcp += 1,
                    _ => panic!("unexpected frame {f:02x?}"),
                }
            }
        }
    }
    (fcd, rcp)
}

#[test]
fn block_stream_round_trip() {
    let frames: Vec<(u8, Vec<u8>)> =
        (0..5u8).map(|n| (n * 3, (0..256).map(|k| (k as u8) ^ n).collect())).collect();
    let data = ecm::block_stream(frames.iter().map(|(n, d)| (*n, d.as_slice())), 9600);
    let (got, rcp) = burst_frames(&data);
    assert_eq!(got, frames);
    assert_eq!(rcp, ecm::RCP_REPEATS);
    // The preamble is 200 ms of flags at 9600 bit/s: 240 flags.
    assert!(data[..240].iter().all(|&o| o == 0x7E));
}

fn ecm_cfg(ident: &str) -> T30Config {
    T30Config { ecm: true, ..cfg(ident) }
}

fn ecm_bursts(s: &Side) -> usize {
    s.sent().iter().filter(|&&f| f & 0xFE == fcf::PPS).count()
}

/// Sends `pages` with ECM through `filter`, checks success and identical pages, and returns
/// both sides.
fn ecm_call(
    pages: &[FaxPage],
    a_cfg: T30Config,
    b_cfg: T30Config,
    filter: &mut Filter<'_>,
) -> (Side, Side) {
    let mut a = Side::new(Role::Calling, pages.to_vec(), a_cfg);
    let mut b = Side::new(Role::Called, vec![], b_cfg);
    run(&mut a, &mut b, filter, 300);
    assert_eq!(status_of(&a), Some(FaxStatus::Success));
    assert_eq!(status_of(&b), Some(FaxStatus::Success));
    let got = b.pages();
    assert_eq!(got.len(), pages.len());
    for (g, p) in got.iter().zip(pages) {
        assert_eq!(g.bitmap, p.bitmap);
        assert_eq!(g.bad_rows, 0);
    }
    (a, b)
}

#[test]
fn ecm_two_pages_with_t6() {
    let pages = vec![test_page(1, 200, false), test_page(2, 150, false)];
    let (a, b) = ecm_call(&pages, ecm_cfg("1"), ecm_cfg("2"), &mut pass());
    let dcs = a.t30.dcs().unwrap();
    assert!(dcs.ecm && dcs.t6 && !dcs.frame_64);
    assert_eq!(dcs.min_scan_ms, 0);
    // TSI, DCS, PPS-MPS, PPS-EOP, DCN; CSI, DIS, CFR, MCF, MCF.
    assert_eq!(a.sent(), [0x43, 0x83, 0xBF, 0xBF, 0xFB]);
    assert_eq!(b.sent(), [0x40, 0x80, 0x84, 0x8C, 0x8C]);
}

#[test]
fn ecm_without_t6_uses_mr_and_mh() {
    let pages = vec![test_page(3, 120, true)];
    let (a, _) =
        ecm_call(&pages, ecm_cfg("1"), T30Config { t6: false, ..ecm_cfg("2") }, &mut pass());
    let dcs = a.t30.dcs().unwrap();
    assert!(dcs.ecm && !dcs.t6);
    assert_eq!(dcs.coding, Coding::Mr);
    let (a, _) = ecm_call(
        &pages,
        T30Config { t6: false, mr: false, ..ecm_cfg("1") },
        ecm_cfg("2"),
        &mut pass(),
    );
    assert_eq!(a.t30.dcs().unwrap().coding, Coding::Mh);
}

#[test]
fn ecm_declined_when_one_side_lacks_it() {
    let pages = vec![test_page(4, 60, false)];
    let (a, _) = ecm_call(&pages, ecm_cfg("1"), cfg("2"), &mut pass());
    assert!(!a.t30.dcs().unwrap().ecm);
    assert_eq!(a.sent(), [0x43, 0x83, 0x2F, 0xFB]);
}

/// A page of random pels: hundreds of frames even in T.6.
fn noise_page(height: usize) -> FaxPage {
    let mut b = Bitmap::new(t4::WIDTH_A4, height);
    let mut x = 0x1234_5678u32;
    for y in 0..height {
        for px in 0..t4::WIDTH_A4 {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            if x & 3 == 0 {
                b.set(px, y, true);
            }
        }
    }
    FaxPage::new(b, false)
}

#[test]
fn ecm_page_of_several_blocks_with_small_frames() {
    // 64-octet frames, 256 per block: a page over 16 KiB takes several PPS-NULL blocks.
    let pages = vec![noise_page(120), test_page(5, 40, false)];
    let mut sizes = Vec::new();
    let mut f = |from_a: bool, t: T30Tx| {
        if let (true, T30Tx::Image { data, .. }) = (from_a, &t) {
            let (frames, _) = burst_frames(data);
            assert!(frames.iter().all(|(_, d)| d.len() == ecm::FRAME_SIZE_SMALL));
            sizes.push(frames.len());
        }
        Some(t)
    };
    let a_cfg = T30Config { ecm_small_frames: true, ..ecm_cfg("1") };
    let (a, b) = ecm_call(&pages, a_cfg, ecm_cfg("2"), &mut f);
    assert!(a.t30.dcs().unwrap().frame_64);
    assert!(sizes.len() >= 3, "{sizes:?}");
    assert_eq!(sizes[0], 256);
    // One PPS per block, MCF to each.
    assert_eq!(ecm_bursts(&a), sizes.len());
    assert_eq!(b.sent().iter().filter(|&&f| f == fcf::MCF).count(), sizes.len());
}

/// Re-encodes an ECM burst without the frames `drop` selects.
fn without_frames(rate: FaxRate, data: &[u8], drop: &dyn Fn(u8) -> bool) -> T30Tx {
    let (frames, _) = burst_frames(data);
    let kept = frames.iter().filter(|(n, _)| !drop(*n)).map(|(n, d)| (*n, d.as_slice()));
    T30Tx::Image { rate, data: ecm::block_stream(kept, rate.bps()) }
}

#[test]
fn ecm_lost_frames_are_requested_and_only_they_are_sent_again() {
    let pages = vec![test_page(6, 300, true)];
    let mut bursts: Vec<Vec<u8>> = Vec::new();
    let mut f = |from_a: bool, t: T30Tx| match t {
        T30Tx::Image { rate, data } if from_a => {
            let (frames, _) = burst_frames(&data);
            bursts.push(frames.iter().map(|(n, _)| *n).collect());
            if bursts.len() == 1 {
                Some(without_frames(rate, &data, &|n| n == 1 || n == 4))
            } else {
                Some(T30Tx::Image { rate, data })
            }
        }
        other => Some(other),
    };
    let (a, b) = ecm_call(&pages, ecm_cfg("1"), ecm_cfg("2"), &mut f);
    assert!(bursts[0].len() > 5, "{bursts:?}");
    assert_eq!(bursts.len(), 2);
    assert_eq!(bursts[1], [1, 4]);
    // PPS-EOP twice; PPR, then MCF.
    assert_eq!(a.sent(), [0x43, 0x83, 0xBF, 0xBF, 0xFB]);
    assert_eq!(b.sent(), [0x40, 0x80, 0x84, 0xBC, 0x8C]);
}

#[test]
fn ecm_four_pprs_bring_ctc_and_a_lower_rate() {
    let pages = vec![test_page(7, 100, false)];
    let mut rates = Vec::new();
    let mut f = |from_a: bool, t: T30Tx| match t {
        T30Tx::Image { rate, data } if from_a && burst_frames(&data).1 > 0 => {
            rates.push(rate);
            // Frame 0 never gets through at 9600.
            if rate == FaxRate::V29_9600 {
                Some(without_frames(rate, &data, &|n| n == 0))
            } else {
                Some(T30Tx::Image { rate, data })
            }
        }
        other => Some(other),
    };
    let (a, b) = ecm_call(&pages, ecm_cfg("1"), ecm_cfg("2"), &mut f);
    assert_eq!(
        rates,
        [FaxRate::V29_9600; 4].iter().copied().chain([FaxRate::V29_7200]).collect::<Vec<_>>()
    );
    // Four PPS answered PPR, CTC answered CTR, PPS answered MCF.
    assert_eq!(a.sent(), [0x43, 0x83, 0xBF, 0xBF, 0xBF, 0xBF, 0x13, 0xBF, 0xFB]);
    assert_eq!(b.sent(), [0x40, 0x80, 0x84, 0xBC, 0xBC, 0xBC, 0xBC, 0xC4, 0x8C]);
    assert_eq!(a.t30.dcs().unwrap().rate, FaxRate::V29_7200);
    assert!(b.events.contains(&T30Event::Negotiated(a.t30.dcs().unwrap())));
}

#[test]
fn ecm_eor_when_nothing_gets_through() {
    // Only V.29 9600 in common and frame 0 always lost: CTC at the same rate, then EOR.
    let pages = vec![test_page(8, 50, false)];
    let only = |id: &str| T30Config { rates: vec![FaxRate::V29_9600], ..ecm_cfg(id) };
    let mut a = Side::new(Role::Calling, pages, only("1"));
    let mut b = Side::new(Role::Called, vec![], only("2"));
    let mut f = |from_a: bool, t: T30Tx| match t {
        T30Tx::Image { rate, data } if from_a && burst_frames(&data).1 > 0 => {
            Some(without_frames(rate, &data, &|n| n == 0))
        }
        other => Some(other),
    };
    run(&mut a, &mut b, &mut f, 300);
    assert_eq!(status_of(&a), Some(FaxStatus::PageRejected));
    let sent = a.sent();
    assert!(sent.contains(&0x13), "{sent:02x?}"); // CTC
    assert!(sent.contains(&0xCF), "{sent:02x?}"); // EOR
    assert!(b.sent().contains(&fcf::ERR));
}

#[test]
fn ecm_busy_receiver_answers_rnr_until_ready() {
    let pages = vec![test_page(9, 80, false), test_page(10, 80, false)];
    let mut a = Side::new(Role::Calling, pages.clone(), ecm_cfg("1"));
    let mut b = Side::new(Role::Called, vec![], ecm_cfg("2"));
    b.t30.set_receiver_busy(true);
    let mut hook = |_: &mut Side, b: &mut Side| {
        if b.sent().iter().filter(|&&f| f == fcf::RNR).count() >= 3 {
            b.t30.set_receiver_busy(false);
        }
    };
    run_with(&mut a, &mut b, &mut pass(), 300, &mut hook);
    assert_eq!(status_of(&a), Some(FaxStatus::Success));
    assert_eq!(status_of(&b), Some(FaxStatus::Success));
    assert_eq!(b.pages().len(), 2);
    assert_eq!(b.pages()[0].bitmap, pages[0].bitmap);
    // PPS-MPS, RNR, RR, RNR, RR, RNR, RR, MCF; then the second page straight through.
    assert_eq!(a.sent(), [0x43, 0x83, 0xBF, 0x77, 0x77, 0x77, 0xBF, 0xFB]);
    assert_eq!(b.sent(), [0x40, 0x80, 0x84, 0xEC, 0xEC, 0xEC, 0x8C, 0x8C]);
}

#[test]
fn ecm_t5_ends_a_call_to_a_receiver_that_stays_busy() {
    let pages = vec![test_page(11, 40, false)];
    let timers = Timers { t5: Duration::from_secs(20), ..Timers::default() };
    let mut a = Side::new(Role::Calling, pages, T30Config { timers, ..ecm_cfg("1") });
    let mut b = Side::new(Role::Called, vec![], ecm_cfg("2"));
    b.t30.set_receiver_busy(true);
    run(&mut a, &mut b, &mut pass(), 120);
    assert_eq!(status_of(&a), Some(FaxStatus::T5Expired));
    let rr = a.sent().iter().filter(|&&f| f == 0x77).count();
    assert!(rr >= 3, "{:02x?}", a.sent());
    assert_eq!(*a.sent().last().unwrap(), 0xFB);
}

#[test]
fn ecm_lost_mcf_makes_sender_repeat_pps_and_receiver_repeat_mcf() {
    let pages = vec![test_page(12, 60, false), test_page(13, 60, false)];
    let mut lost = false;
    let mut f = |from_a: bool, t: T30Tx| match &t {
        T30Tx::Frames(fr) if !from_a && !lost && fr[0][2] == fcf::MCF => {
            lost = true;
            None
        }
        _ => Some(t),
    };
    let (a, b) = ecm_call(&pages, ecm_cfg("1"), ecm_cfg("2"), &mut f);
    assert_eq!(a.sent(), [0x43, 0x83, 0xBF, 0xBF, 0xBF, 0xFB]);
    assert_eq!(b.sent(), [0x40, 0x80, 0x84, 0x8C, 0x8C, 0x8C]);
}
