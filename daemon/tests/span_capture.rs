//! D-channel capture of a PRI span on the simulator: the `dchannel_capture` config switch, the
//! `span_capture` control request (start, stop, `--duration`), what `span show` reports, and
//! (ignored, run by `.ci/interop`) tshark decoding the file without malformed packets.
//!
//! The daemon's call control runs stepped on the simulator's virtual clock; its span 1 is a
//! `pri_cpe` trunk facing the simulated exchange (network side).

use cardpbx::ctl::proto::SpanCaptureArgs;
use cardpbx::ctl::span::{span_capture, span_data};
use cardpbx::runner::Stepped;
use cardpbx_hal::SpanId;
use cardpbx_sim::SimCard;
use std::path::Path;

fn config(boot_capture: Option<&Path>) -> cardpbx::config::Config {
    let capture = boot_capture
        .map(|p| format!("dchannel_capture = \"{}\"\n", p.display()))
        .unwrap_or_default();
    let text = format!(
        r#"
[system]
name = "capture"

[[card]]
name = "sim0"
driver = "sim"
fxs_ports = 2
fxo_ports = 0
e1_spans = 2

[[span]]
card = "sim0"
span = 1
{capture}
[[trunk_group]]
name = "isdn"
signalling = "pri_cpe"
ports = ["sim0/span1"]
incoming = "2001"

[[route]]
prefix = "0"
trunk_group = "isdn"
strip = 1
min_digits = 3

[[extension]]
number = "2001"
port = "sim0/fxs1"

[[extension]]
number = "2002"
port = "sim0/fxs2"

[dialplan]
inter_digit_timeout_ms = 1000
"#
    );
    cardpbx::config::Config::parse_str(&text, "capture.toml").expect("valid config")
}

fn daemon(boot_capture: Option<&Path>) -> Stepped<SimCard> {
    let cfg = config(boot_capture);
    let mut sc = cardpbx::service::sim_config(&cfg, &cfg.cards[0], None);
    sc.phone.auto_answer_ms = Some(300);
    sc.exchange.answer_delay_ms = 500;
    let card = SimCard::new(sc).expect("simulated card");
    Stepped::new(card, &cfg, "sim0").expect("call control")
}

fn link_up(p: &Stepped<SimCard>) -> bool {
    p.pbx().pri_span_info(SpanId(1)).is_some_and(|i| i.link_up)
}

fn capture_args(span: &str, file: Option<&Path>, stop: bool, ms: Option<u64>) -> SpanCaptureArgs {
    SpanCaptureArgs {
        span: span.into(),
        file: file.map(|f| f.display().to_string()),
        stop,
        duration_ms: ms,
    }
}

/// What a captured frame is, as far as these tests care.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum What {
    Sabme,
    Ua,
    /// A Q.931 message of this type in an I frame.
    Q931(u8),
    Other,
}

const SETUP: u8 = 0x05;
const CONNECT: u8 = 0x07;
const DISCONNECT: u8 = 0x45;
const RELEASE: u8 = 0x4d;

/// Whether the frame was received (`false`) or sent (`true`) by the daemon, and what it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Rec {
    sent: bool,
    network: bool,
    ts_us: u64,
    what: What,
}

fn u16_be(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

fn u32_le(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}

/// Read a LINUX_LAPD pcap file back: every record, checked for shape.
fn read_pcap(path: &Path) -> Vec<Rec> {
    let b = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(b.len() >= 24, "no pcap header");
    assert_eq!(u32_le(&b, 0), 0xa1b2_c3d4, "pcap magic (µs, little-endian)");
    assert_eq!(u32_le(&b, 20), 177, "link type LINUX_LAPD");
    let mut at = 24;
    let mut out = Vec::new();
    while at < b.len() {
        assert!(at + 16 <= b.len(), "record header cut");
        let ts_us = u64::from(u32_le(&b, at)) * 1_000_000 + u64::from(u32_le(&b, at + 4));
        let incl = u32_le(&b, at + 8) as usize;
        assert_eq!(incl, u32_le(&b, at + 12) as usize, "whole frames");
        let rec = &b[at + 16..at + 16 + incl];
        at += 16 + incl;
        assert!(rec.len() >= 16 + 3, "LAPD pseudo header and a frame");
        assert_eq!(u16_be(rec, 2), 8445, "ARPHRD_LAPD");
        assert_eq!(u16_be(rec, 14), 0x0030, "ETH_P_LAPD");
        let sent = match u16_be(rec, 0) {
            0 => false,
            4 => true,
            t => panic!("packet type {t}"),
        };
        let f = &rec[16..];
        let c = f[2];
        let what = if c & 1 == 0 {
            // I frame: address (2), control (2), then Q.931.
            assert_eq!(f[4], 0x08, "Q.931 protocol discriminator");
            let crl = usize::from(f[5] & 0x0f);
            What::Q931(f[6 + crl])
        } else if c & 0xef == 0x6f {
            What::Sabme
        } else if c & 0xef == 0x63 {
            What::Ua
        } else {
            What::Other
        };
        out.push(Rec { sent, network: rec[6] == 1, ts_us, what });
    }
    assert_eq!(at, b.len(), "no trailing bytes");
    out
}

fn has(recs: &[Rec], sent: bool, what: What) -> bool {
    recs.iter().any(|r| r.sent == sent && r.what == what)
}

/// An incoming call (the exchange calls 2001, who answers; the exchange hangs up) and an
/// outgoing one (2002 dials out, the exchange answers, 2002 hangs up).
fn make_calls(p: &mut Stepped<SimCard>) {
    let h = p.card_mut().pri_call_in(1, Some("5551000"), "2001").expect("exchange calls in");
    assert!(
        p.run_until(5_000, |p| p.card().pri_calls(1).iter().any(|c| c.handle == h && c.answered))
            .unwrap(),
        "2001 answers"
    );
    p.run_ms(500).unwrap();
    assert!(p.card_mut().pri_hang_up(1, h));
    p.run_ms(1_000).unwrap();
    assert!(p.card_mut().phone_mut(1).unwrap().on_hook());
    p.run_ms(500).unwrap();

    assert!(p.card_mut().phone_mut(2).unwrap().off_hook());
    p.run_ms(300).unwrap();
    p.card_mut().phone_mut(2).unwrap().dial("0555123").unwrap();
    assert!(
        p.run_until(10_000, |p| p
            .card()
            .pri_calls(1)
            .iter()
            .any(|c| c.called == "555123" && c.answered))
            .unwrap(),
        "the exchange answers 555123"
    );
    p.run_ms(500).unwrap();
    assert!(p.card_mut().phone_mut(2).unwrap().on_hook());
    p.run_ms(1_000).unwrap();
    assert_eq!(p.pbx().active_calls(), 0);
}

#[test]
fn config_switch_captures_from_startup_and_command_captures_a_call() {
    let dir = tempfile::tempdir().unwrap();
    let boot = dir.path().join("boot.pcap");
    let call = dir.path().join("call.pcap");
    let mut p = daemon(Some(&boot));
    assert!(p.run_until(10_000, link_up).unwrap(), "the D-channel comes up");
    p.run_ms(1_000).unwrap();

    // The configured capture runs from startup: it has the link establishment.
    let info = p.pbx().pri_span_info(SpanId(1)).unwrap();
    assert_eq!(info.capture.as_deref(), Some(boot.to_str().unwrap()));
    assert!(info.capture_frames >= 2, "{info:?}");
    let recs = read_pcap(&boot);
    assert!(has(&recs, true, What::Sabme) || has(&recs, false, What::Sabme), "{recs:?}");
    assert!(has(&recs, true, What::Ua) || has(&recs, false, What::Ua), "{recs:?}");
    assert!(recs.iter().all(|r| !r.network), "we are the user side");
    assert!(recs.windows(2).all(|w| w[0].ts_us <= w[1].ts_us), "time goes forward");
    let now_us =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_micros()
            as u64;
    assert!(recs[0].ts_us > now_us - 3_600_000_000, "timestamps are wall-clock UTC");

    // `span capture sim0/span1 call.pcap` replaces the running capture with a new file.
    let started =
        span_capture(p.pbx_mut(), "sim0", &capture_args("sim0/span1", Some(&call), false, None))
            .expect("capture starts");
    assert!(started.capturing);
    assert_eq!(started.file, call.to_str().unwrap());
    let boot_frames = read_pcap(&boot).len();

    make_calls(&mut p);

    let stats = p.engine_stats();
    let shown = span_data(p.pbx(), &stats, "sim0", SpanId(1), None);
    let d = shown.dchannel.expect("PRI span");
    assert_eq!(d.capture.as_deref(), Some(call.to_str().unwrap()));
    assert_eq!(d.capture_frames, read_pcap(&call).len() as u64);

    let stopped = span_capture(p.pbx_mut(), "sim0", &capture_args("1", None, true, None))
        .expect("capture stops");
    assert!(!stopped.capturing);
    let recs = read_pcap(&call);
    assert_eq!(stopped.frames, recs.len() as u64);
    for (sent, m) in [
        (false, SETUP),
        (true, CONNECT),
        (false, DISCONNECT),
        (true, SETUP),
        (false, CONNECT),
        (true, DISCONNECT),
        (true, RELEASE),
        (false, RELEASE),
    ] {
        assert!(
            has(&recs, sent, What::Q931(m)),
            "{} {m:#04x}: {recs:?}",
            ["in", "out"][usize::from(sent)]
        );
    }
    assert_eq!(read_pcap(&boot).len(), boot_frames, "the replaced capture got no more frames");
    assert_eq!(p.pbx().pri_span_info(SpanId(1)).unwrap().capture, None);

    // Frames after the stop are not recorded.
    make_calls(&mut p);
    assert_eq!(read_pcap(&call).len(), recs.len());
}

/// `span show` data: line settings, the counters the card reports, the D-channel.
#[test]
fn span_data_has_counters_and_dchannel() {
    let mut p = daemon(None);
    assert!(p.run_until(10_000, link_up).unwrap());
    p.card_mut()
        .add_span_errors(
            SpanId(1),
            cardpbx_hal::SpanCounters {
                slips: 2,
                crc4_errors: 7,
                bipolar_violations: 11,
                ..Default::default()
            },
        )
        .unwrap();
    p.run_ms(1_100).unwrap();
    let stats = p.engine_stats();
    let group = ("isdn".to_string(), "pri_cpe".to_string());
    let s = span_data(p.pbx(), &stats, "sim0", SpanId(1), Some(&group));
    assert_eq!((s.slips, s.crc4_errors, s.bpv), (2, 7, 11));
    assert!(s.timing_source, "span 1 has timing priority 1");
    assert_eq!((s.framing.as_str(), s.line_code.as_str(), s.crc4), ("ccs", "hdb3", true));
    assert!(s.alarms.is_empty(), "{:?}", s.alarms);
    assert_eq!(s.signalling.as_deref(), Some("pri_cpe"));
    let d = s.dchannel.expect("PRI span");
    assert!(d.link_up && d.side == "user" && d.frames_in > 0 && d.frames_out > 0, "{d:?}");
    assert_eq!((d.bearers, d.bearers_in_use, d.capture.as_deref()), (30, 0, None));
    let s2 = span_data(p.pbx(), &stats, "sim0", SpanId(2), None);
    assert_eq!((s2.slips, s2.dchannel, s2.trunk_group), (0, None, None));
}

#[test]
fn capture_with_a_duration_stops_by_itself() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("short.pcap");
    let mut p = daemon(None);
    assert!(p.run_until(10_000, link_up).unwrap());
    p.run_ms(1_000).unwrap();
    assert_eq!(p.pbx().pri_span_info(SpanId(1)).unwrap().capture, None);
    let c =
        span_capture(p.pbx_mut(), "sim0", &capture_args("span1", Some(&file), false, Some(2_000)))
            .unwrap();
    assert_eq!(c.duration_ms, Some(2_000));
    p.card_mut().pri_call_in(1, None, "2001").unwrap();
    p.run_ms(1_000).unwrap();
    assert!(p.pbx().pri_span_info(SpanId(1)).unwrap().capture.is_some(), "still capturing");
    p.run_ms(1_100).unwrap();
    let info = p.pbx().pri_span_info(SpanId(1)).unwrap();
    assert_eq!(info.capture, None, "stopped after 2 s");
    assert_eq!(info.capture_error, None);
    let n = read_pcap(&file).len();
    assert!(has(&read_pcap(&file), false, What::Q931(SETUP)));
    p.run_ms(3_000).unwrap();
    assert_eq!(read_pcap(&file).len(), n, "nothing written after the end");
}

#[test]
fn capture_requests_are_refused_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("x.pcap");
    let mut p = daemon(None);
    let mut err = |args: SpanCaptureArgs| span_capture(p.pbx_mut(), "sim0", &args).unwrap_err();
    let e = err(capture_args("2", Some(&file), false, None));
    assert!(e.contains("span 2 is not a PRI span"), "{e}");
    let e = err(capture_args("sim0/span9", Some(&file), false, None));
    assert!(e.contains("has no span 9"), "{e}");
    let e = err(capture_args("card7/span1", Some(&file), false, None));
    assert!(e.contains("no card \"card7\""), "{e}");
    let e = err(capture_args("1", Some(Path::new("rel.pcap")), false, None));
    assert!(e.contains("absolute path"), "{e}");
    let e = err(capture_args("1", None, false, None));
    assert!(e.contains("name the pcap file"), "{e}");
    let e = err(capture_args("1", None, true, None));
    assert!(e.contains("not being captured"), "{e}");
    let e = err(capture_args("x1", Some(&file), false, None));
    assert!(e.contains("card/spanN"), "{e}");
    let e = err(capture_args("1", Some(&dir.path().join("no/such/dir.pcap")), false, None));
    assert!(e.contains("no/such/dir.pcap"), "{e}");
    assert!(!file.exists(), "no file for refused requests");
}

#[test]
fn an_unwritable_configured_capture_does_not_stop_the_span() {
    let dir = tempfile::tempdir().unwrap();
    let mut p = daemon(Some(&dir.path().join("missing/boot.pcap")));
    assert!(p.run_until(10_000, link_up).unwrap(), "the span works without its capture");
    let info = p.pbx().pri_span_info(SpanId(1)).unwrap();
    assert_eq!(info.capture, None);
    assert!(
        info.capture_error.as_deref().is_some_and(|e| e.contains("missing/boot.pcap")),
        "{info:?}"
    );
}

/// tshark decodes a capture of whole calls made by the daemon without malformed packets.
#[test]
#[ignore = "needs tshark; run by .ci/interop"]
fn tshark_decodes_a_span_capture() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("span1.pcap");
    let mut p = daemon(Some(&file));
    assert!(p.run_until(10_000, link_up).unwrap());
    p.run_ms(1_000).unwrap();
    make_calls(&mut p);
    span_capture(p.pbx_mut(), "sim0", &capture_args("1", None, true, None)).unwrap();
    let out = std::process::Command::new("tshark")
        .arg("-r")
        .arg(&file)
        .arg("-V")
        .output()
        .expect("run tshark");
    assert!(out.status.success(), "tshark: {}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!text.contains("Malformed"), "malformed packet marks:\n{text}");
    assert!(!text.contains("Expert Info (Error"), "expert errors:\n{text}");
    for m in ["SETUP (0x05)", "CONNECT (0x07)", "DISCONNECT (0x45)", "RELEASE COMPLETE (0x5a)"] {
        assert!(text.contains(&format!("Message type: {m}")), "no {m} in:\n{text}");
    }
    assert!(text.contains("[Direction: User->Network"), "{text}");
    assert!(text.contains("[Direction: Network->User"), "{text}");
}
