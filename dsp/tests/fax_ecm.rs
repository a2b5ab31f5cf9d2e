//! Error correction mode end to end over audio: two `FaxSession<SoftModem>`s back to back
//! with the real V.21 and V.29 modems, ECM frames carried as HDLC on the image modem.

use std::time::Duration;

use cardpbx_dsp::fax::audio_modem::SoftModem;
use cardpbx_dsp::fax::session::{FaxSession, ImageModem};
use cardpbx_dsp::fax::t30::{FaxStatus, ModemFamily, Role, T30Config, T30Event, T30};
use cardpbx_dsp::fax::t4::{Bitmap, WIDTH_A4};
use cardpbx_dsp::fax::tiff::FaxPage;

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

fn session(role: Role, pages: Vec<FaxPage>, modem: SoftModem, t6: bool) -> FaxSession<SoftModem> {
    let cfg = T30Config {
        ident: format!("{role:?}"),
        rates: modem.rates(),
        ecm: true,
        t6,
        ..T30Config::default()
    };
    FaxSession::new(T30::new(role, pages, cfg), modem, -13.0)
}

/// A line: gain then white Gaussian noise of `noise_dbm0` (None = clean).
struct Line {
    gain: f64,
    sigma: f64,
    rng: u64,
}

impl Line {
    fn new(gain_db: f64, noise_dbm0: Option<f64>, seed: u64) -> Self {
        let sigma = noise_dbm0.map_or(0.0, |n| 22_505.0 / 2f64.sqrt() * 10f64.powf(n / 20.0));
        Line { gain: 10f64.powf(gain_db / 20.0), sigma, rng: seed | 1 }
    }

    fn uniform(&mut self) -> f64 {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        ((self.rng >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }

    fn apply(&mut self, x: &mut [i16]) {
        for s in x {
            let (u1, u2) = (self.uniform(), self.uniform());
            let g = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
            let v = f64::from(*s) * self.gain + self.sigma * g;
            *s = v.round().clamp(-32768.0, 32767.0) as i16;
        }
    }
}

fn run(
    a: &mut FaxSession<SoftModem>,
    b: &mut FaxSession<SoftModem>,
    ab: &mut Line,
) -> (Vec<T30Event>, Vec<T30Event>) {
    const N: usize = 160;
    let (mut a_to_b, mut b_to_a) = ([0i16; N], [0i16; N]);
    let (mut ea, mut eb) = (Vec::new(), Vec::new());
    while a.now() < Duration::from_secs(240) {
        let (mut ta, mut tb) = ([0i16; N], [0i16; N]);
        a.process(&b_to_a, &mut ta);
        b.process(&a_to_b, &mut tb);
        ab.apply(&mut ta);
        a_to_b = ta;
        b_to_a = tb;
        ea.extend(std::iter::from_fn(|| a.poll_event()));
        eb.extend(std::iter::from_fn(|| b.poll_event()));
        if a.is_finished() && b.is_finished() {
            break;
        }
    }
    (ea, eb)
}

fn received(events: &[T30Event]) -> Vec<FaxPage> {
    events
        .iter()
        .filter_map(|e| if let T30Event::PageReceived(p) = e { Some(p.clone()) } else { None })
        .collect()
}

fn sent(events: &[T30Event]) -> Vec<u8> {
    events
        .iter()
        .filter_map(|e| if let T30Event::FrameSent(f) = e { Some(*f) } else { None })
        .collect()
}

fn ecm_call(t6: bool, line: &mut Line) -> (Vec<T30Event>, Vec<T30Event>) {
    let pages = vec![page(1, 200, false), page(2, 150, true)];
    let modem = || SoftModem::with_families(&[ModemFamily::V29]);
    let mut a = session(Role::Calling, pages.clone(), modem(), t6);
    let mut b = session(Role::Called, vec![], modem(), t6);
    let (ea, eb) = run(&mut a, &mut b, line);
    assert_eq!(a.status(), Some(FaxStatus::Success), "{ea:?}");
    assert_eq!(b.status(), Some(FaxStatus::Success), "{eb:?}");
    let dcs = a.t30().dcs().expect("DCS");
    assert!(dcs.ecm);
    assert_eq!(dcs.t6, t6);
    assert_eq!(dcs.rate.bps(), 9600);
    let got = received(&eb);
    assert_eq!(got.len(), 2);
    for (g, p) in got.iter().zip(&pages) {
        assert_eq!(g.bitmap, p.bitmap);
        assert_eq!(g.bad_rows, 0);
    }
    eprintln!("ECM t6={t6}: {:?} of audio, sent {:02x?} / {:02x?}", a.now(), sent(&ea), sent(&eb));
    (ea, eb)
}

#[test]
fn ecm_v29_9600_t6_two_pages() {
    let (ea, eb) = ecm_call(true, &mut Line::new(0.0, None, 1));
    // Standard then fine: PPS-EOM and back to phase B, then PPS-EOP. No retransmission on
    // a clean line.
    assert_eq!(sent(&ea), [0x43, 0x83, 0xBF, 0x43, 0x83, 0xBF, 0xFB]);
    assert_eq!(sent(&eb), [0x40, 0x80, 0x84, 0x8C, 0x40, 0x80, 0x84, 0x8C]);
}

#[test]
fn ecm_v29_9600_mr_two_pages() {
    ecm_call(false, &mut Line::new(0.0, None, 3));
}

/// Noise at -30 dBm0 garbles some frames at 9600: the receiver asks for them with PPR and
/// the pages still arrive bit-exact.
#[test]
fn ecm_noisy_line_retransmits_and_pages_arrive_intact() {
    let pages = vec![page(1, 200, false), page(2, 150, false)];
    let modem = || SoftModem::with_families(&[ModemFamily::V29]);
    let mut a = session(Role::Calling, pages.clone(), modem(), true);
    let mut b = session(Role::Called, vec![], modem(), true);
    let (ea, eb) = run(&mut a, &mut b, &mut Line::new(0.0, Some(-30.0), 5));
    assert_eq!(a.status(), Some(FaxStatus::Success), "{ea:?}");
    assert_eq!(b.status(), Some(FaxStatus::Success), "{eb:?}");
    let ppr = sent(&eb).iter().filter(|&&f| f == 0xBC).count();
    assert!(ppr >= 1, "no PPR: {:02x?}", sent(&eb));
    let got = received(&eb);
    assert_eq!(got.len(), 2);
    for (g, p) in got.iter().zip(&pages) {
        assert_eq!(g.bitmap, p.bitmap);
        assert_eq!(g.bad_rows, 0);
    }
    eprintln!("noisy ECM: {ppr} PPR, {:?} of audio", a.now());
}
