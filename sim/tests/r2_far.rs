//! The simulated MFC/R2 exchange seen through the HAL alone: CAS bits on a CAS span's
//! timeslots reach it and its answers come back as `CasBits`, a few milliseconds later.

use cardpbx_hal::{
    Abcd, ErrorKind, Framing, HalCommand, HalEvent, SignallingIo, SpanConfig, SpanControl, SpanId,
};
use cardpbx_signalling::r2::LineState;
use cardpbx_sim::{SimCard, SimConfig, SpanFarEnd};

/// China No.1: C and D are fixed at 1; AB 00 seizes, AB 11 acknowledges the seizure.
const SEIZE: u8 = 0b0011;
const SEIZE_ACK: u8 = 0b1111;

fn card() -> SimCard {
    SimCard::new(SimConfig {
        fxs_ports: 0,
        fxo_ports: 0,
        e1_spans: 1,
        span_far: vec![SpanFarEnd::R2Exchange],
        ..SimConfig::default()
    })
    .unwrap()
}

/// Run `ms` idle ticks and return the CAS events with their ticks.
fn run(card: &mut SimCard, ms: u64) -> Vec<(u64, HalEvent)> {
    let mut v = Vec::new();
    card.run_idle(ms, |t, ev| {
        if matches!(ev, HalEvent::CasBits(..)) {
            v.push((t, ev));
        }
    })
    .unwrap();
    v
}

#[test]
fn seizure_on_a_cas_span_is_acknowledged_by_the_exchange() {
    let mut card = card();
    let ts5 = card.timeslot_channel(1, 5).unwrap();
    let cas = SpanConfig { framing: Framing::Cas, ..SpanConfig::default() };
    card.configure_span(SpanId(1), cas).unwrap();
    run(&mut card, 10);
    let t0 = cardpbx_hal::ClockSource::now(&card);
    card.command(HalCommand::SetCas(ts5, Abcd::new(SEIZE))).unwrap();
    let evs = run(&mut card, 100);
    assert_eq!(evs.len(), 1, "{evs:?}");
    let (t, ev) = evs[0];
    assert_eq!(ev, HalEvent::CasBits(ts5, Abcd::new(SEIZE_ACK)));
    // Two line delays plus the exchange's 20 ms debounce.
    assert!(t >= t0 + 20 && t <= t0 + 40, "acknowledged at {t} (seized at {t0})");
    assert_eq!(card.r2_line_state(1, 5), Some(LineState::InSeized));
    assert_eq!(card.r2_counters(1).unwrap().cas_in, 1);
}

#[test]
fn cas_bits_need_a_cas_span() {
    let mut card = card();
    let ts5 = card.timeslot_channel(1, 5).unwrap();
    card.configure_span(SpanId(1), SpanConfig::default()).unwrap();
    let e = card.command(HalCommand::SetCas(ts5, Abcd::new(SEIZE))).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::WrongSignalling);
    let dchan = card.timeslot_channel(1, 16).unwrap();
    let e = card.command(HalCommand::SetCas(dchan, Abcd::new(SEIZE))).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::WrongSignalling);
    assert!(card.r2_call_in(1, "1", "2").is_err(), "no calls while the span is not CAS");
}
