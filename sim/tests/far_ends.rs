//! The simulated far ends, driven through the HAL traits with a "PBX" made of audio copies.

mod common;

use cardpbx_dsp::dtmf::{DtmfConfig, DtmfDetector, DtmfEvent};
use cardpbx_dsp::g711;
use cardpbx_dsp::toneplan::ProgressTone;
use cardpbx_hal::{
    Alarms, Card, ChannelId, ClockSource, ErrorKind, FxoCommand, FxsCommand, HalCommand, HalEvent,
    Law, SigKind, SignallingIo, SpanConfig, SpanControl, SpanId,
};
use cardpbx_sim::{
    BlockClass, CoLineConfig, CoState, DisconnectSignal, EndpointId, PhoneConfig, PhoneState,
    SimCard, SimConfig,
};
use common::Bench;

fn cfg(law: Law) -> SimConfig {
    SimConfig { fxs_ports: 4, fxo_ports: 2, e1_spans: 1, law, ..SimConfig::default() }
}

#[test]
fn channel_layout_is_fxs_then_fxo_then_span_timeslots() {
    let card = SimCard::new(cfg(Law::Alaw)).unwrap();
    let info = card.info();
    assert_eq!(info.channels.len(), 4 + 2 + 31);
    assert_eq!(info.driver, "sim");
    assert_eq!(info.channels[0].name, "fxs1");
    assert_eq!(info.channels[0].sig, SigKind::FxsLoopStart);
    assert_eq!(info.channels[0].port, Some(1));
    assert_eq!(info.channels[4].name, "fxo1");
    assert_eq!(info.channels[4].sig, SigKind::FxoLoopStart);
    assert_eq!(info.channels[6].name, "span1/ts1");
    assert_eq!(info.channels[6].sig, SigKind::CcsBearer);
    assert_eq!(info.channels[6 + 15].name, "span1/ts16");
    assert_eq!(info.channels[6 + 15].sig, SigKind::DChannel);
    assert_eq!(info.channels[6 + 15].timeslot, Some(16));
    assert_eq!(info.channels[36].name, "span1/ts31");
    assert_eq!(card.timeslot_channel(1, 16), Some(ChannelId(21)));
    assert_eq!(card.fxo_channel(2), Some(ChannelId(5)));
    assert_eq!(info.spans.len(), 1);
    assert_eq!(info.spans[0].id, SpanId(1));
}

fn signatures_cross_both_ways(law: Law) {
    let mut b = Bench::new(cfg(law));
    let (c1, c2) = (b.card.fxs_channel(1).unwrap(), b.card.fxs_channel(2).unwrap());
    b.bridge(c1, c2);
    for p in [1, 2] {
        b.card.phone_mut(p).unwrap().off_hook();
    }
    b.card.phone_mut(1).unwrap().expect_peer(Some(EndpointId::Phone(2)));
    b.card.phone_mut(2).unwrap().expect_peer(Some(EndpointId::Phone(1)));
    b.run(2000);
    for (p, peer) in [(1, 2), (2, 1)] {
        let ph = b.card.phone(p).unwrap();
        let chk = ph.audio_check();
        assert!(chk.ok_blocks >= 85, "{law:?} phone {p}: {chk:?}");
        assert_eq!(chk.error_blocks, 0, "{law:?} phone {p}: {chk:?}");
        assert_eq!(ph.hears().now, BlockClass::Signature(EndpointId::Phone(peer)));
        assert_eq!(ph.hears().last_signature, Some(EndpointId::Phone(peer)));
    }
    let evs = b.events.iter().map(|e| e.1).collect::<Vec<_>>();
    assert_eq!(evs, vec![HalEvent::OffHook(c1), HalEvent::OffHook(c2)]);
}

#[test]
fn signatures_cross_alaw() {
    signatures_cross_both_ways(Law::Alaw);
}

#[test]
fn signatures_cross_ulaw() {
    signatures_cross_both_ways(Law::Ulaw);
}

#[test]
fn wrong_and_missing_audio_are_errors() {
    let mut b = Bench::new(cfg(Law::Alaw));
    let c = |b: &Bench, p| b.card.fxs_channel(p).unwrap().index();
    // Phone 2 expects phone 1 but hears phone 3; phone 4 expects phone 1 and hears nothing.
    let (c2, c3) = (c(&b, 2), c(&b, 3));
    b.copies.push((c3, c2));
    for p in 1..=4 {
        b.card.phone_mut(p).unwrap().off_hook();
    }
    b.card.phone_mut(2).unwrap().expect_peer(Some(EndpointId::Phone(1)));
    b.card.phone_mut(4).unwrap().expect_peer(Some(EndpointId::Phone(1)));
    b.run(1000);
    let w = b.card.phone(2).unwrap().audio_check();
    assert_eq!(w.ok_blocks, 0);
    assert!(w.wrong_peer_blocks >= 35, "{w:?}");
    assert_eq!(w.error_blocks, w.wrong_peer_blocks);
    let m = b.card.phone(4).unwrap().audio_check();
    assert_eq!(m.ok_blocks, 0);
    assert_eq!(m.wrong_peer_blocks, 0);
    // 50 blocks in 1 s, 10 settling, 5 of grace, the rest errors (give or take block alignment).
    assert!((33..=35).contains(&m.error_blocks), "{m:?}");
}

#[test]
fn phone_dials_dtmf_that_a_detector_decodes() {
    let mut b = Bench::new(cfg(Law::Alaw));
    let c1 = b.card.fxs_channel(1).unwrap().index();
    let ph = b.card.phone_mut(1).unwrap();
    assert!(ph.dial("1").is_err(), "on-hook phones cannot dial");
    ph.off_hook();
    ph.dial("123#0*9").unwrap();
    let mut det = DtmfDetector::new(DtmfConfig::default());
    let mut got = String::new();
    let mut pcm = [0i16; 8];
    for _ in 0..2000 {
        b.tick();
        g711::Law::Alaw.decode_block(&b.rx[c1], &mut pcm);
        det.process(&pcm, |e| {
            if let DtmfEvent::Start { digit, .. } = e {
                got.push(digit);
            }
        });
    }
    assert_eq!(got, "123#0*9");
    assert!(!b.card.phone(1).unwrap().is_dialing());
    // After dialing, the phone speaks its signature again.
    let sig = b.card.signature_of(EndpointId::Phone(1));
    assert_eq!(sig[1], 0.0);
}

#[test]
fn co_ring_cadence_on_the_virtual_clock() {
    let mut b = Bench::new(cfg(Law::Alaw));
    let fxo = b.card.fxo_channel(1).unwrap();
    b.run(10);
    assert!(b.card.co_line_mut(1).unwrap().ring_in(Some("075512345678")));
    b.run(11_000);
    let evs = b.events_of(fxo);
    assert_eq!(
        evs,
        vec![
            (11, HalEvent::RingBegin(fxo)),
            (1011, HalEvent::RingEnd(fxo)),
            (5011, HalEvent::RingBegin(fxo)),
            (6011, HalEvent::RingEnd(fxo)),
            (10011, HalEvent::RingBegin(fxo)),
        ]
    );
    assert_eq!(b.card.co_line(1).unwrap().caller(), Some("075512345678"));
    // Answer in the middle of the third burst: ringing stops, the remote party talks.
    b.card.command(HalCommand::Fxo(fxo, FxoCommand::OffHook)).unwrap();
    b.card.co_line_mut(1).unwrap().expect_peer(None);
    b.tick();
    assert_eq!(b.events.last().unwrap().1, HalEvent::RingEnd(fxo));
    assert_eq!(b.card.co_line(1).unwrap().state(), CoState::Connected);
    let c = b.card.fxo_channel(1).unwrap().index();
    let mut class = BlockClass::Silence;
    // Listen to the remote party with a phone: copy the FXO's receive to phone 1's ear.
    b.copies.push((c, b.card.fxs_channel(1).unwrap().index()));
    b.card.phone_mut(1).unwrap().off_hook();
    b.run(500);
    class = b.card.phone(1).map_or(class, |p| p.hears().now);
    assert_eq!(class, BlockClass::Signature(EndpointId::CoLine(1)));
    assert_eq!(b.card.co_line(1).unwrap().counters().calls_in_answered, 1);
}

#[test]
fn caller_gives_up() {
    let mut b = Bench::new(cfg(Law::Alaw));
    let fxo = b.card.fxo_channel(2).unwrap();
    b.card.co_line_mut(2).unwrap().ring_in(None);
    b.run(500);
    assert!(b.card.co_line(2).unwrap().is_ringing());
    assert!(b.card.co_line_mut(2).unwrap().give_up());
    b.run(10_000);
    assert_eq!(
        b.events_of(fxo),
        vec![(1, HalEvent::RingBegin(fxo)), (501, HalEvent::RingEnd(fxo))]
    );
    assert_eq!(b.card.co_line(2).unwrap().counters().calls_in_abandoned, 1);
}

/// Phone 1 bridged to FXO 1, the test seizes the line, the phone dials through.
fn outgoing_call(co: CoLineConfig) -> (Bench, ChannelId) {
    let mut b = Bench::new(SimConfig { co, ..cfg(Law::Alaw) });
    let (fxs, fxo) = (b.card.fxs_channel(1).unwrap(), b.card.fxo_channel(1).unwrap());
    b.bridge(fxs, fxo);
    b.card.phone_mut(1).unwrap().off_hook();
    b.card.command(HalCommand::Fxo(fxo, FxoCommand::OffHook)).unwrap();
    assert!(b.run_until(3000, |c| c.phone(1).unwrap().hears().tone == Some(ProgressTone::Dial)));
    assert_eq!(b.card.co_line(1).unwrap().state(), CoState::DialTone);
    b.card.phone_mut(1).unwrap().dial("88776655").unwrap();
    assert!(b.run_until(2000, |c| c.co_line(1).unwrap().state() == CoState::Dialing));
    assert_eq!(b.card.phone(1).unwrap().hears().tone, None);
    assert!(b.run_until(6000, |c| c.co_line(1).unwrap().state() == CoState::Ringback));
    assert_eq!(b.card.co_line(1).unwrap().dialed().as_deref(), Some("88776655"));
    assert!(b.run_until(3000, |c| c.phone(1).unwrap().hears().tone == Some(ProgressTone::Ringback)));
    assert!(b.run_until(3000, |c| c.co_line(1).unwrap().state() == CoState::Connected));
    b.card.phone_mut(1).unwrap().expect_peer(Some(EndpointId::CoLine(1)));
    b.card.co_line_mut(1).unwrap().expect_peer(Some(EndpointId::Phone(1)));
    b.run(2000);
    let (p, c) = (b.card.phone(1).unwrap().audio_check(), b.card.co_line(1).unwrap().audio_check());
    assert!(p.ok_blocks >= 85 && p.error_blocks == 0, "{p:?}");
    assert!(c.ok_blocks >= 85 && c.error_blocks == 0, "{c:?}");
    b.card.co_line_mut(1).unwrap().expect_peer(None);
    b.card.phone_mut(1).unwrap().expect_peer(None);
    (b, fxo)
}

#[test]
fn outgoing_call_then_far_end_clears_with_polarity_reversal() {
    let co =
        CoLineConfig { disconnect: DisconnectSignal::PolarityReversal, ..CoLineConfig::default() };
    let (mut b, fxo) = outgoing_call(co);
    assert!(b.card.co_line_mut(1).unwrap().hang_up());
    let t = b.now();
    b.run(3000);
    let rev: Vec<_> = b
        .events_of(fxo)
        .into_iter()
        .filter(|e| matches!(e.1, HalEvent::PolarityReversal(_)))
        .collect();
    assert_eq!(rev, vec![(t + 1, HalEvent::PolarityReversal(fxo))]);
    assert_eq!(b.card.phone(1).unwrap().hears().now, BlockClass::Silence);
    assert_eq!(b.card.phone(1).unwrap().hears().tone, None);
    b.card.command(HalCommand::Fxo(fxo, FxoCommand::OnHook)).unwrap();
    assert_eq!(b.card.co_line(1).unwrap().state(), CoState::Idle);
    assert_eq!(b.card.co_line(1).unwrap().counters().far_end_clears, 1);
}

#[test]
fn outgoing_call_then_far_end_clears_with_busy_tone() {
    let co = CoLineConfig {
        disconnect: DisconnectSignal::BusyTone,
        answer_polarity_reversal: true,
        ..CoLineConfig::default()
    };
    let (mut b, fxo) = outgoing_call(co);
    let revs = |b: &Bench| {
        b.events_of(fxo)
            .into_iter()
            .filter(|e| matches!(e.1, HalEvent::PolarityReversal(_)))
            .count()
    };
    assert_eq!(revs(&b), 1, "reversal at answer");
    b.card.co_line_mut(1).unwrap().hang_up();
    assert!(b.run_until(3000, |c| c.phone(1).unwrap().hears().tone == Some(ProgressTone::Busy)));
    assert_eq!(revs(&b), 1, "no reversal at clear");
    assert_eq!(b.card.co_line(1).unwrap().state(), CoState::Cleared);
}

#[test]
fn busy_number_gives_busy_tone() {
    let co = CoLineConfig {
        busy_numbers: vec!["555".into()],
        expected_digits: Some(3),
        ..CoLineConfig::default()
    };
    let mut b = Bench::new(SimConfig { co, ..cfg(Law::Ulaw) });
    let (fxs, fxo) = (b.card.fxs_channel(2).unwrap(), b.card.fxo_channel(2).unwrap());
    b.bridge(fxs, fxo);
    b.card.phone_mut(2).unwrap().off_hook();
    b.card.command(HalCommand::Fxo(fxo, FxoCommand::OffHook)).unwrap();
    assert!(b.run_until(3000, |c| c.phone(2).unwrap().hears().tone == Some(ProgressTone::Dial)));
    b.card.phone_mut(2).unwrap().dial("555").unwrap();
    assert!(b.run_until(1000, |c| c.co_line(2).unwrap().state() == CoState::RemoteBusy));
    assert!(b.run_until(3000, |c| c.phone(2).unwrap().hears().tone == Some(ProgressTone::Busy)));
}

#[test]
fn phone_rings_auto_answers_and_flashes() {
    let phone = PhoneConfig { auto_answer_ms: Some(2500), ..PhoneConfig::default() };
    let mut b = Bench::new(SimConfig { phone, ..cfg(Law::Alaw) });
    let fxs = b.card.fxs_channel(3).unwrap();
    b.run(100);
    b.card.command(HalCommand::Fxs(fxs, FxsCommand::RingOn)).unwrap();
    assert_eq!(b.card.phone(3).unwrap().state(), PhoneState::Ringing { bursts: 1 });
    b.run(1000);
    b.card.command(HalCommand::Fxs(fxs, FxsCommand::RingOff)).unwrap();
    b.run(1000);
    b.card.command(HalCommand::Fxs(fxs, FxsCommand::RingOn)).unwrap();
    assert_eq!(b.card.phone(3).unwrap().ring_count(), 2);
    b.run(1000);
    assert_eq!(b.events_of(fxs), vec![(2600, HalEvent::OffHook(fxs))]);
    assert_eq!(b.card.phone(3).unwrap().state(), PhoneState::OffHook);
    assert!(b.card.phone_mut(3).unwrap().flash(300));
    b.run(1000);
    let t = 3100;
    assert_eq!(
        b.events_of(fxs),
        vec![
            (2600, HalEvent::OffHook(fxs)),
            (t + 1, HalEvent::OnHook(fxs)),
            (t + 301, HalEvent::OffHook(fxs))
        ]
    );
    // Commands for the wrong kind of port are refused.
    let fxo = b.card.fxo_channel(1).unwrap();
    let e = b.card.command(HalCommand::Fxs(fxo, FxsCommand::RingOn)).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::WrongSignalling);
    let e = b.card.command(HalCommand::Fxo(ChannelId(999), FxoCommand::OffHook)).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);
}

#[test]
fn an_unanswered_ringing_episode_ends() {
    let mut b = Bench::new(cfg(Law::Alaw));
    let fxs = b.card.fxs_channel(1).unwrap();
    b.card.command(HalCommand::Fxs(fxs, FxsCommand::RingOn)).unwrap();
    b.run(1000);
    b.card.command(HalCommand::Fxs(fxs, FxsCommand::RingOff)).unwrap();
    b.run(5000);
    assert!(b.card.phone(1).unwrap().is_ringing());
    b.run(1100);
    assert_eq!(b.card.phone(1).unwrap().state(), PhoneState::Idle);
    assert_eq!(b.card.phone(1).unwrap().counters().missed, 1);
    assert!(b.events.is_empty());
}

#[test]
fn span_alarms_configuration_and_unplug() {
    let mut b = Bench::new(cfg(Law::Alaw));
    let s = SpanId(1);
    assert_eq!(b.card.span_status(s).unwrap().alarms, Alarms::NOT_OPEN);
    b.card.configure_span(s, SpanConfig::default()).unwrap();
    assert_eq!(b.card.poll_event(), Some(HalEvent::Alarm(s, Alarms::NONE)));
    b.card.set_span_alarm(s, Alarms::LOS.union(Alarms::LOF)).unwrap();
    assert_eq!(b.card.poll_event(), Some(HalEvent::Alarm(s, Alarms::LOS.union(Alarms::LOF))));
    assert_eq!(b.card.span_status(s).unwrap().alarms, Alarms::LOS.union(Alarms::LOF));
    assert_eq!(
        b.card.set_span_alarm(SpanId(2), Alarms::AIS).unwrap_err().kind(),
        ErrorKind::NotFound
    );
    let dch = b.card.timeslot_channel(1, 16).unwrap();
    let frame = cardpbx_hal::HdlcFrame::new(&[0, 1, 0x7f]).unwrap();
    b.card.command(HalCommand::SendHdlc(dch, frame)).unwrap();
    let bearer = b.card.timeslot_channel(1, 1).unwrap();
    assert_eq!(
        b.card.command(HalCommand::SendHdlc(bearer, frame)).unwrap_err().kind(),
        ErrorKind::WrongSignalling
    );
    b.card.phone_mut(1).unwrap().off_hook();
    b.card.unplug();
    assert_eq!(b.card.wait_tick().unwrap_err().kind(), ErrorKind::Gone);
    assert_eq!(b.card.poll_event(), Some(HalEvent::CardGone));
    assert_eq!(b.card.poll_event(), None);
    assert_eq!(
        b.card.command(HalCommand::Fxo(ChannelId(4), FxoCommand::OffHook)).unwrap_err().kind(),
        ErrorKind::Gone
    );
    assert_eq!(b.card.span_status(s).unwrap_err().kind(), ErrorKind::Gone);
}

#[test]
fn one_idle_simulated_hour() {
    let mut card =
        SimCard::new(SimConfig { fxs_ports: 8, fxo_ports: 4, e1_spans: 2, ..SimConfig::default() })
            .unwrap();
    let mut events = 0;
    card.run_idle(3_600_000, |_, _| events += 1).unwrap();
    assert_eq!(card.now(), 3_600_000);
    assert_eq!(events, 0);
}
