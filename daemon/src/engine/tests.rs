//! Engine tests on the in-memory [`FakeCard`](super::fake::FakeCard).
//!
//! Timing reminder: what the engine computes in tick `t` goes out in the exchange of tick
//! `t + 1`, so after `tick()` number `t + 1` the card's `tx` holds the output computed from the
//! audio received in tick `t`.

use super::fake::FakeCard;
use super::*;
use cardpbx_dsp::g711::{alaw_decode, alaw_encode, ulaw_decode, ulaw_encode};
use cardpbx_dsp::tone::Segment;
use cardpbx_hal::{FxsCommand, Law as HLaw};

fn engine(laws: &[HLaw], cfg: EngineConfig) -> (Engine<FakeCard>, EngineHandle) {
    Engine::new(FakeCard::new(laws), cfg)
}

fn c(i: u32) -> ChannelId {
    ChannelId(i)
}

fn events(h: &mut EngineHandle) -> Vec<EngineEvent> {
    std::iter::from_fn(|| h.poll_event()).collect()
}

/// All 256 codes in 32 chunks.
fn all_codes() -> Vec<Chunk> {
    (0..32).map(|k| std::array::from_fn(|i| (k * 8 + i) as u8)).collect()
}

/// Feed `input` chunks to `from` one per tick and collect what `to` transmits for each.
fn pass_through(e: &mut Engine<FakeCard>, from: usize, to: usize, input: &[Chunk]) -> Vec<Chunk> {
    let mut out = Vec::new();
    for k in 0..=input.len() {
        if k < input.len() {
            e.card_mut().rx[from] = input[k];
        }
        e.tick().unwrap();
        if k > 0 {
            out.push(e.card().tx[to]);
        }
    }
    out
}

fn lin(law: cardpbx_dsp::g711::Law, chunk: &Chunk) -> Vec<i16> {
    chunk.iter().map(|&b| law.decode(b)).collect()
}

#[test]
fn alaw_decode_encode_is_identity() {
    for code in 0..=255u8 {
        assert_eq!(alaw_encode(alaw_decode(code)), code);
    }
}

#[test]
fn two_way_alaw_call_is_bit_exact() {
    let (mut e, mut h) = engine(&[HLaw::Alaw; 2], EngineConfig::default());
    h.send(EngineCommand::SetSource(c(1), Source::Channel(c(0)))).unwrap();
    h.send(EngineCommand::SetSource(c(0), Source::Channel(c(1)))).unwrap();
    let codes = all_codes();
    let reversed: Vec<Chunk> = codes.iter().rev().copied().collect();
    for k in 0..=codes.len() {
        if k < codes.len() {
            e.card_mut().rx[0] = codes[k];
            e.card_mut().rx[1] = reversed[k];
        }
        e.tick().unwrap();
        if k > 0 {
            assert_eq!(e.card().tx[1], codes[k - 1], "0 -> 1 chunk {}", k - 1);
            assert_eq!(e.card().tx[0], reversed[k - 1], "1 -> 0 chunk {}", k - 1);
        }
    }
}

#[test]
fn one_way_path_leaves_the_other_direction_idle() {
    let (mut e, mut h) = engine(&[HLaw::Alaw; 2], EngineConfig::default());
    h.send(EngineCommand::SetSource(c(1), Source::Channel(c(0)))).unwrap();
    let out = pass_through(&mut e, 0, 1, &all_codes());
    assert_eq!(out, all_codes());
    assert_eq!(e.card().tx[0], [0xD5; 8]);
}

#[test]
fn alaw_through_decode_sum_encode_is_still_bit_exact() {
    // A one-member mix decodes, sums in i32 and re-encodes: identity for every A-law code.
    let (mut e, mut h) = engine(&[HLaw::Alaw; 2], EngineConfig::default());
    h.send(EngineCommand::SetSource(c(1), Source::Mix([Some(c(0)), None, None, None]))).unwrap();
    assert_eq!(pass_through(&mut e, 0, 1, &all_codes()), all_codes());
}

#[test]
fn ulaw_switching_is_byte_transparent() {
    // Including 0x7F (negative zero), which a decode/encode would turn into 0xFF.
    let (mut e, mut h) = engine(&[HLaw::Ulaw; 2], EngineConfig::default());
    h.send(EngineCommand::SetSource(c(1), Source::Channel(c(0)))).unwrap();
    assert_eq!(pass_through(&mut e, 0, 1, &all_codes()), all_codes());
}

#[test]
fn mixed_laws_are_transcoded() {
    let (mut e, mut h) = engine(&[HLaw::Alaw, HLaw::Ulaw], EngineConfig::default());
    h.send(EngineCommand::SetSource(c(1), Source::Channel(c(0)))).unwrap();
    h.send(EngineCommand::SetSource(c(0), Source::Channel(c(1)))).unwrap();
    let codes = all_codes();
    for k in 0..=codes.len() {
        if k < codes.len() {
            e.card_mut().rx[0] = codes[k];
            e.card_mut().rx[1] = codes[k];
        }
        e.tick().unwrap();
        if k > 0 {
            for (i, &code) in codes[k - 1].iter().enumerate() {
                assert_eq!(e.card().tx[1][i], ulaw_encode(alaw_decode(code)), "A->µ {code:#x}");
                assert_eq!(e.card().tx[0][i], alaw_encode(ulaw_decode(code)), "µ->A {code:#x}");
            }
        }
    }
}

/// A constant-level chunk in A-law and the exact linear value it decodes to.
fn level(x: i16) -> (Chunk, i32) {
    let code = alaw_encode(x);
    ([code; 8], i32::from(alaw_decode(code)))
}

fn sat_code(x: i32) -> u8 {
    alaw_encode(x.clamp(-32768, 32767) as i16)
}

#[test]
fn conference_is_n_minus_one_and_saturates() {
    let (mut e, mut h) = engine(&[HLaw::Alaw; 5], EngineConfig::default());
    let conf = ConfId(3);
    for i in 0..3 {
        h.send(EngineCommand::ConfJoin(conf, c(i), ConfMode::TalkListen)).unwrap();
    }
    h.send(EngineCommand::ConfJoin(conf, c(3), ConfMode::ListenOnly)).unwrap();
    h.send(EngineCommand::ConfJoin(conf, c(4), ConfMode::TalkOnly)).unwrap();
    h.send(EngineCommand::SetSource(c(4), Source::Channel(c(0)))).unwrap();
    let (a, la) = level(1000);
    let (b, lb) = level(-3000);
    let (d, ld) = level(500);
    let (w, lw) = level(200);
    let (l, _) = level(-7000);
    let card = e.card_mut();
    card.rx[0] = a;
    card.rx[1] = b;
    card.rx[2] = d;
    card.rx[3] = l; // listen-only: must not be heard
    card.rx[4] = w; // talk-only (whisper into the conference)
    e.tick().unwrap();
    e.tick().unwrap();
    let tx = &e.card().tx;
    assert_eq!(tx[0], [sat_code(lb + ld + lw); 8]);
    assert_eq!(tx[1], [sat_code(la + ld + lw); 8]);
    assert_eq!(tx[2], [sat_code(la + lb + lw); 8]);
    assert_eq!(tx[3], [sat_code(la + lb + ld + lw); 8]);
    assert_eq!(tx[4], a, "talk-only member keeps its own source");

    // Saturation: two loud talkers, the third hears the clipped sum.
    let (loud, _) = level(30000);
    e.card_mut().rx[0] = loud;
    e.card_mut().rx[1] = loud;
    e.card_mut().rx[4] = level(0).0;
    e.tick().unwrap();
    e.tick().unwrap();
    assert_eq!(e.card().tx[2], [alaw_encode(i16::MAX); 8]);

    // Leaving silences the leaver's output and removes its voice from the others.
    h.send(EngineCommand::ConfLeave(conf, c(1))).unwrap();
    e.tick().unwrap();
    e.tick().unwrap();
    assert_eq!(e.card().tx[1], [0xD5; 8]);
    let l0 = i32::from(alaw_decode(loud[0]));
    let l4 = i32::from(alaw_decode(level(0).0[0]));
    assert_eq!(e.card().tx[2], [sat_code(l0 + l4); 8]);
}

#[test]
fn a_room_where_everyone_is_muted_is_silent() {
    let (mut e, mut h) = engine(&[HLaw::Alaw; 2], EngineConfig::default());
    for i in 0..2 {
        h.send(EngineCommand::ConfJoin(ConfId(1), c(i), ConfMode::TalkListen)).unwrap();
    }
    e.card_mut().rx[0] = level(5000).0;
    e.card_mut().rx[1] = level(5000).0;
    e.tick().unwrap();
    e.tick().unwrap();
    assert_ne!(e.card().tx[0], [alaw_encode(0); 8]);
    // Mute both (rejoin listen-only): the last mix must not linger.
    for i in 0..2 {
        h.send(EngineCommand::ConfJoin(ConfId(1), c(i), ConfMode::ListenOnly)).unwrap();
    }
    e.tick().unwrap();
    e.tick().unwrap();
    assert_eq!(e.card().tx[0], [alaw_encode(0); 8]);
    assert_eq!(e.card().tx[1], [alaw_encode(0); 8]);
}

#[test]
fn lone_member_never_hears_itself() {
    let (mut e, mut h) = engine(&[HLaw::Alaw; 2], EngineConfig::default());
    h.send(EngineCommand::ConfJoin(ConfId(0), c(0), ConfMode::TalkListen)).unwrap();
    e.card_mut().rx[0] = level(12000).0;
    e.tick().unwrap();
    e.tick().unwrap();
    assert_eq!(e.card().tx[0], [alaw_encode(0); 8]);
}

#[test]
fn supervisor_listen_and_whisper_are_mixes() {
    // 0 caller, 1 agent, 2 supervisor.
    let (mut e, mut h) = engine(&[HLaw::Alaw; 3], EngineConfig::default());
    h.send(EngineCommand::SetSource(c(0), Source::Channel(c(1)))).unwrap();
    h.send(EngineCommand::SetSource(c(1), Source::Mix([Some(c(0)), Some(c(2)), None, None])))
        .unwrap();
    h.send(EngineCommand::SetSource(c(2), Source::Mix([Some(c(0)), Some(c(1)), None, None])))
        .unwrap();
    let (a, la) = level(-1200);
    let (b, lb) = level(2500);
    let (s, ls) = level(700);
    e.card_mut().rx[0] = a;
    e.card_mut().rx[1] = b;
    e.card_mut().rx[2] = s;
    e.tick().unwrap();
    e.tick().unwrap();
    assert_eq!(e.card().tx[0], b, "caller hears only the agent");
    assert_eq!(e.card().tx[1], [sat_code(la + ls); 8], "agent hears caller + whisper");
    assert_eq!(e.card().tx[2], [sat_code(la + lb); 8], "supervisor hears both");
}

/// Energy of `x` at `f` Hz relative to its total energy (a DFT bin at `f`).
fn energy_fraction_at(x: &[i16], f: f64) -> f64 {
    let w = std::f64::consts::TAU * f / 8000.0;
    let (mut re, mut im) = (0.0, 0.0);
    for (n, &s) in x.iter().enumerate() {
        re += f64::from(s) * (w * n as f64).cos();
        im -= f64::from(s) * (w * n as f64).sin();
    }
    let bin = (re * re + im * im) * 2.0 / x.len() as f64;
    let total: f64 = x.iter().map(|&s| f64::from(s) * f64::from(s)).sum();
    bin / total
}

#[test]
fn tone_source_plays_the_tone_and_reports_the_end() {
    let (mut e, mut h) = engine(&[HLaw::Alaw; 2], EngineConfig::default());
    let spec =
        ToneSpec::new(&[Segment { ms: 200, freqs: [1000.0, 0.0], level_dbm0: -10.0 }], false)
            .unwrap();
    h.send(EngineCommand::SetSource(c(1), Source::Tone(spec))).unwrap();
    let mut got = Vec::new();
    let mut done_at = None;
    for _ in 0..400 {
        e.tick().unwrap();
        got.extend(lin(cardpbx_dsp::g711::Law::Alaw, &e.card().tx[1]));
        for ev in events(&mut h) {
            if let EngineEvent::PlayDone(ch, t) = ev {
                assert_eq!(ch, c(1));
                done_at = Some(t);
            }
        }
    }
    // 200 ms tone starting at tick 1 ends in tick 200.
    assert_eq!(done_at, Some(200));
    let tone = &got[8..8 + 1600];
    assert!(energy_fraction_at(tone, 1000.0) > 0.95);
    assert!(energy_fraction_at(tone, 1500.0) < 0.01);
    let rms = (tone.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / 1600.0).sqrt();
    let expect = f64::from(cardpbx_dsp::tone::dbm0_to_peak(-10.0)) / 2f64.sqrt();
    assert!((rms / expect - 1.0).abs() < 0.05, "rms {rms} vs {expect}");
    assert!(got[1608 + 8..].iter().all(|&s| s == alaw_decode(0xD5)), "idle after the tone");
    assert_eq!(e.out_active.len(), 0, "idle channel costs nothing");
}

fn prompt_cfg(samples: Vec<i16>) -> EngineConfig {
    EngineConfig {
        prompts: PromptLibrary::from_samples(vec![("p".into(), samples)]).unwrap(),
        ..EngineConfig::default()
    }
}

#[test]
fn prompt_plays_once_then_reports_done() {
    let samples: Vec<i16> = (0..20).map(|i| i * 500 - 5000).collect();
    let (mut e, mut h) = engine(&[HLaw::Alaw; 1], prompt_cfg(samples.clone()));
    h.send(EngineCommand::SetSource(c(0), Source::Prompt { prompt: PromptId(0), repeat: false }))
        .unwrap();
    let mut out = Vec::new();
    let mut done = Vec::new();
    for _ in 0..6 {
        e.tick().unwrap();
        out.extend_from_slice(&e.card().tx[0]);
        done.extend(events(&mut h));
    }
    // Computed in ticks 1..=3 (24 samples: 20 of prompt, 4 zero), sent in exchanges 2..=4.
    let want: Vec<u8> = samples.iter().copied().chain([0; 4]).map(alaw_encode).collect();
    assert_eq!(&out[8..32], &want[..]);
    assert_eq!(&out[32..], &[0xD5; 16]);
    assert_eq!(done, vec![EngineEvent::PlayDone(c(0), 3)]);
}

#[test]
fn repeating_prompt_wraps_around() {
    let samples: Vec<i16> = vec![100, 200, 300, 400, 500];
    let (mut e, mut h) = engine(&[HLaw::Ulaw; 1], prompt_cfg(samples.clone()));
    h.send(EngineCommand::SetSource(c(0), Source::Prompt { prompt: PromptId(0), repeat: true }))
        .unwrap();
    let mut out = Vec::new();
    for _ in 0..5 {
        e.tick().unwrap();
        out.extend_from_slice(&e.card().tx[0]);
    }
    let want: Vec<u8> = samples.iter().cycle().take(32).map(|&s| ulaw_encode(s)).collect();
    assert_eq!(&out[8..40], &want[..]);
    assert!(events(&mut h).is_empty());
}

#[test]
fn invalid_commands_are_rejected_and_counted() {
    let (mut e, mut h) =
        engine(&[HLaw::Alaw; 2], EngineConfig { conferences: 1, ..Default::default() });
    h.send(EngineCommand::SetSource(c(9), Source::Silence)).unwrap();
    h.send(EngineCommand::SetSource(c(0), Source::Channel(c(7)))).unwrap();
    h.send(EngineCommand::SetSource(c(0), Source::Prompt { prompt: PromptId(0), repeat: false }))
        .unwrap();
    h.send(EngineCommand::ConfJoin(ConfId(1), c(0), ConfMode::TalkListen)).unwrap();
    h.send(EngineCommand::RecordStart(c(0), RecSlot(0))).unwrap(); // slot not opened
    e.tick().unwrap();
    let ev = events(&mut h);
    assert_eq!(ev.len(), 5);
    assert!(ev.iter().all(|e| matches!(e, EngineEvent::CommandFailed(_, 1))));
    assert_eq!(h.stats().snapshot().rejected_commands, 5);
}

#[test]
fn hal_commands_reach_the_card_and_failures_are_reported() {
    let (mut e, mut h) = engine(&[HLaw::Alaw; 2], EngineConfig::default());
    let cmd = HalCommand::Fxs(c(1), FxsCommand::RingOn);
    h.send(EngineCommand::Hal(cmd)).unwrap();
    e.tick().unwrap();
    assert_eq!(e.card().commands, vec![cmd]);
    e.card_mut().fail_commands = true;
    h.send(EngineCommand::Hal(cmd)).unwrap();
    e.tick().unwrap();
    assert_eq!(events(&mut h), vec![EngineEvent::CommandFailed(c(1), 2)]);
    assert_eq!(h.stats().snapshot().card_errors, 1);
}

#[test]
fn card_events_are_forwarded_with_their_tick() {
    let (mut e, mut h) = engine(&[HLaw::Alaw; 4], EngineConfig::default());
    e.tick().unwrap();
    e.tick().unwrap();
    e.card_mut().events.push_back(HalEvent::OffHook(c(3)));
    e.card_mut().events.push_back(HalEvent::RingBegin(c(2)));
    e.tick().unwrap();
    assert_eq!(
        events(&mut h),
        vec![
            EngineEvent::Hal(3, HalEvent::OffHook(c(3))),
            EngineEvent::Hal(3, HalEvent::RingBegin(c(2)))
        ]
    );
}

#[test]
fn heartbeat_every_thousand_ticks() {
    let (mut e, mut h) = engine(&[HLaw::Alaw; 1], EngineConfig::default());
    for _ in 0..2500 {
        e.tick().unwrap();
    }
    assert_eq!(events(&mut h), vec![EngineEvent::Heartbeat(1000), EngineEvent::Heartbeat(2000)]);
    assert_eq!(h.stats().snapshot().ticks, 2500);
}

#[test]
fn full_command_ring_is_counted() {
    let (_e, mut h) =
        engine(&[HLaw::Alaw; 1], EngineConfig { cmd_capacity: 4, ..Default::default() });
    for _ in 0..4 {
        h.send(EngineCommand::SetSource(c(0), Source::Silence)).unwrap();
    }
    let extra = EngineCommand::Detect(c(0), Detectors::DTMF);
    assert_eq!(h.send(extra), Err(Full(extra)));
    assert_eq!(h.stats().snapshot().command_overruns, 1);
}

#[test]
fn full_event_ring_is_counted_not_blocking() {
    let (mut e, mut h) =
        engine(&[HLaw::Alaw; 1], EngineConfig { event_capacity: 2, ..Default::default() });
    for _ in 0..5 {
        e.card_mut().events.push_back(HalEvent::OffHook(c(0)));
    }
    e.tick().unwrap();
    assert_eq!(events(&mut h).len(), 2);
    assert_eq!(h.stats().snapshot().event_overruns, 3);
}

#[test]
fn skipped_ticks_count_as_late() {
    let (mut e, h) = engine(&[HLaw::Alaw; 1], EngineConfig::default());
    e.tick().unwrap();
    e.card_mut().skip_ticks = 3;
    e.tick().unwrap();
    assert_eq!(e.now(), 5);
    assert_eq!(h.stats().snapshot().late_ticks, 1);
}

#[test]
fn dtmf_digits_are_reported_with_their_start_tick() {
    // Channel 1 plays digits; the card loops them back into channel 0, which listens.
    let (mut e, mut h) = engine(&[HLaw::Alaw; 2], EngineConfig::default());
    e.card_mut().loopback[0] = Some(c(1));
    h.send(EngineCommand::Detect(c(0), Detectors::DTMF)).unwrap();
    for _ in 0..10 {
        e.tick().unwrap();
    }
    let mut starts = Vec::new();
    for (digit, freqs) in [('1', [697.0, 1209.0]), ('#', [941.0, 1477.0]), ('8', [852.0, 1336.0])] {
        let spec = ToneSpec::new(
            &[Segment { ms: 70, freqs, level_dbm0: -12.0 }, Segment::silence(80)],
            false,
        )
        .unwrap();
        h.send(EngineCommand::SetSource(c(1), Source::Tone(spec))).unwrap();
        // Set in tick T, first samples computed in T, sent and looped back in T + 1.
        starts.push((digit, e.now() + 2));
        for _ in 0..160 {
            e.tick().unwrap();
        }
    }
    let digits: Vec<(char, Tick)> = events(&mut h)
        .into_iter()
        .filter_map(|ev| match ev {
            EngineEvent::Digit { chan, digit, at } => {
                assert_eq!(chan, c(0));
                Some((digit, at))
            }
            _ => None,
        })
        .collect();
    assert_eq!(digits.len(), 3, "{digits:?}");
    for ((d, at), (want, start)) in digits.iter().zip(&starts) {
        assert_eq!(d, want);
        assert!(at.abs_diff(*start) <= 3, "digit {d} at tick {at}, tone began in {start}");
    }
    h.send(EngineCommand::Detect(c(0), Detectors::NONE)).unwrap();
    e.tick().unwrap();
    assert_eq!(e.rx_active.len(), 0, "no decoding left for an idle channel");
}

#[test]
fn recording_ring_overflow_is_counted() {
    let (mut prods, _rings) = record::pool(1);
    let frame = [7i16; 16];
    let fits = record::RING_SAMPLES / 16;
    for _ in 0..fits {
        assert!(prods[0].push(&frame));
    }
    assert!(!prods[0].push(&frame));
}

#[test]
fn bridged_call_is_recorded_to_a_stereo_wav() {
    let dir = tempfile::tempdir().unwrap();
    let (mut e, mut h) = engine(
        &[HLaw::Alaw, HLaw::Ulaw],
        EngineConfig { recording_slots: 2, ..Default::default() },
    );
    let (writer, rec) = RecordingWriter::spawn(h.take_recordings().unwrap()).unwrap();

    // An unwritable path is refused and leaves the slot free.
    let bad = rec.open(RecSlot(0), dir.path().join("no/such/dir/x.wav")).unwrap_err();
    assert!(matches!(bad, RecordError::Create { .. }), "{bad}");
    assert!(rec.is_free(RecSlot(0)));
    assert!(matches!(
        rec.open(RecSlot(5), dir.path().join("y.wav")),
        Err(RecordError::NoSuchSlot(5))
    ));

    let path = dir.path().join("call.wav");
    rec.open(RecSlot(1), &path).unwrap();
    assert!(matches!(rec.open(RecSlot(1), &path), Err(RecordError::Busy(1))));
    h.send(EngineCommand::SetSource(c(0), Source::Channel(c(1)))).unwrap();
    h.send(EngineCommand::SetSource(c(1), Source::Channel(c(0)))).unwrap();
    h.send(EngineCommand::RecordStart(c(0), RecSlot(1))).unwrap();
    let caller = alaw_encode(1500);
    let agent = ulaw_encode(-2500);
    e.card_mut().rx[0] = [caller; 8];
    e.card_mut().rx[1] = [agent; 8];
    for _ in 0..300 {
        e.tick().unwrap();
    }
    h.send(EngineCommand::RecordStop(RecSlot(1))).unwrap();
    e.tick().unwrap();
    e.tick().unwrap();
    let fin = rec.finished().recv_timeout(std::time::Duration::from_secs(20)).unwrap();
    assert_eq!(fin.slot, RecSlot(1));
    assert_eq!(fin.path, path);
    assert_eq!(fin.frames, 300 * 8);
    assert_eq!((fin.overruns, fin.error), (0, None));
    assert!(rec.is_free(RecSlot(1)));
    writer.shutdown();

    let mut r = hound::WavReader::open(&path).unwrap();
    let spec = r.spec();
    assert_eq!((spec.channels, spec.sample_rate, spec.bits_per_sample), (2, 8000, 16));
    let s: Vec<i16> = r.samples::<i16>().map(Result::unwrap).collect();
    assert_eq!(s.len(), 300 * 16);
    let left: Vec<i16> = s.iter().step_by(2).copied().collect();
    let right: Vec<i16> = s.iter().skip(1).step_by(2).copied().collect();
    // Left: what channel 0 received (the caller).
    assert!(left.iter().all(|&x| x == alaw_decode(caller)));
    // Right: what channel 0 transmitted, the agent transcoded to A-law (after the first tick,
    // computed before the path existed... it is set in tick 1, so every tick carries it).
    let agent_on_alaw = alaw_decode(alaw_encode(ulaw_decode(agent)));
    assert!(right.iter().all(|&x| x == agent_on_alaw), "{:?}", &right[..16]);
}

#[test]
fn run_until_stopped_ends_on_stop_or_card_gone() {
    let (e, _h) = engine(&[HLaw::Alaw; 1], EngineConfig::default());
    let stop = Arc::new(AtomicBool::new(true));
    assert!(e.run_until_stopped(stop).is_ok());

    let (mut e, mut h) = engine(&[HLaw::Alaw; 1], EngineConfig::default());
    e.card_mut().gone_at = Some(51);
    let err = e.run_until_stopped(Arc::new(AtomicBool::new(false))).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Gone);
    assert_eq!(events(&mut h), vec![EngineEvent::Hal(50, HalEvent::CardGone)]);
    assert_eq!(h.stats().snapshot().ticks, 50);
}

// ----- echo cancelling, detectors, clamping -----

/// White-ish noise, rms about `rms`, from a fixed seed.
fn noise(n: usize, rms: f64, seed: u64) -> Vec<i16> {
    let mut s = seed | 1;
    (0..n)
        .map(|_| {
            let mut acc = 0.0;
            for _ in 0..4 {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                acc += (s >> 11) as f64 / (1u64 << 53) as f64 - 0.5;
            }
            // Sum of 4 uniforms: variance 4/12.
            (acc * rms / (4.0f64 / 12.0).sqrt()) as i16
        })
        .collect()
}

#[test]
fn echo_canceller_removes_a_hybrids_echo_from_what_listeners_hear() {
    use cardpbx_sim::{EchoPath, Hybrid};
    let prompts =
        PromptLibrary::from_samples(vec![("far".into(), noise(8000 * 4, 3000.0, 9))]).unwrap();
    let cfg = EngineConfig { prompts, echo_channels: vec![c(0)], ..Default::default() };
    let (mut e, mut h) = engine(&[HLaw::Alaw; 2], cfg);
    // Channel 0 plays the far end's speech to the line; its hybrid returns an echo 10 dB down
    // after 12 ms; channel 1 listens to what channel 0 receives.
    h.send(EngineCommand::SetSource(c(0), Source::Prompt { prompt: PromptId(0), repeat: true }))
        .unwrap();
    h.send(EngineCommand::SetSource(c(1), Source::Channel(c(0)))).unwrap();
    h.send(EngineCommand::EchoCancel(c(0), true)).unwrap();
    let mut hybrid = Hybrid::new(EchoPath { delay_ms: 12, loss_db: 10.0 });
    // Run `ticks` ticks with channel 0's hybrid closing the loop; sum the echo power and the
    // power channel 1 hears (channel 0's received audio after cancelling, one tick late) over
    // the ticks from `from` on.
    let mut run = |e: &mut Engine<FakeCard>, ticks: u64, from: u64| {
        let (mut echo_pow, mut out_pow) = (0.0f64, 0.0f64);
        for t in 0..ticks {
            e.tick().unwrap();
            let mut sent = [0i16; 8];
            Law::Alaw.decode_block(&e.card().tx[0], &mut sent);
            let mut back = [0i16; 8];
            hybrid.apply(&sent, &mut back);
            let mut heard = [0i16; 8];
            Law::Alaw.decode_block(&e.card().tx[1], &mut heard);
            Law::Alaw.encode_block(&back, &mut e.card_mut().rx[0]);
            if t >= from {
                echo_pow += back.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>();
                out_pow += heard.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>();
            }
        }
        (echo_pow, out_pow)
    };
    let (echo_pow, out_pow) = run(&mut e, 6000, 4000);
    let erle = 10.0 * (echo_pow / out_pow.max(1.0)).log10();
    println!("engine echo canceller: ERLE {erle:.1} dB after 4 s");
    assert!(erle >= 30.0, "ERLE {erle:.1} dB");

    // Switched off, the echo passes.
    h.send(EngineCommand::EchoCancel(c(0), false)).unwrap();
    let (echo_pow, out_pow) = run(&mut e, 500, 0);
    let ratio = 10.0 * (echo_pow / out_pow).log10();
    assert!(ratio.abs() < 1.0, "without the canceller listeners hear the echo ({ratio:.1} dB)");
    // A channel the engine has no canceller for refuses the command.
    h.send(EngineCommand::EchoCancel(c(1), true)).unwrap();
    e.tick().unwrap();
    assert!(events(&mut h).contains(&EngineEvent::CommandFailed(c(1), e.now())));
}

#[test]
fn clamped_dtmf_is_not_heard_by_listeners_but_is_reported() {
    // Channel 0 receives speech-level noise with two DTMF digits in it; channel 1 listens.
    let mut signal = noise(8000 * 2, 300.0, 4);
    let gen_digit = |digit: char, at: usize, sig: &mut Vec<i16>| {
        let (lo, hi) = cardpbx_dsp::dtmf::key_freqs(digit).unwrap();
        for i in 0..(8 * 70) {
            let t = i as f64 / 8000.0;
            let a = 22_827.0 * 10f64.powf(-10.0 / 20.0);
            let v = a
                * ((std::f64::consts::TAU * f64::from(lo) * t).sin()
                    + (std::f64::consts::TAU * f64::from(hi) * t).sin());
            sig[at + i] = (f64::from(sig[at + i]) + v) as i16;
        }
    };
    gen_digit('5', 4000, &mut signal);
    gen_digit('#', 4000 + 8 * 150, &mut signal);
    let (mut e, mut h) = engine(&[HLaw::Alaw; 2], EngineConfig::default());
    h.send(EngineCommand::SetSource(c(1), Source::Channel(c(0)))).unwrap();
    let clamp = Detectors { clamp_dtmf: true, ..Detectors::NONE };
    h.send(EngineCommand::Detect(c(0), clamp)).unwrap();
    e.tick().unwrap();
    let mut heard = Vec::new();
    let mut digits = Vec::new();
    for chunk in signal.chunks(8) {
        let mut buf = [0i16; 8];
        buf.copy_from_slice(chunk);
        Law::Alaw.encode_block(&buf, &mut e.card_mut().rx[0]);
        e.tick().unwrap();
        let mut out = [0i16; 8];
        Law::Alaw.decode_block(&e.card().tx[1], &mut out);
        heard.extend_from_slice(&out);
        for ev in events(&mut h) {
            if let EngineEvent::Digit { digit, .. } = ev {
                digits.push(digit);
            }
        }
    }
    assert_eq!(digits, vec!['5', '#'], "clamped digits are still detected");
    // The listener hears the noise, delayed, and no trace of the tones: a DTMF detector on
    // what it heard finds nothing, and the loudest stretch is noise-level.
    let mut det = cardpbx_dsp::dtmf::DtmfDetector::new(cardpbx_dsp::dtmf::DtmfConfig::default());
    let mut leaked = Vec::new();
    det.process(&heard, |ev| leaked.push(ev));
    assert!(leaked.is_empty(), "digits leaked through the clamp: {leaked:?}");
    let peak = heard.iter().map(|s| s.unsigned_abs()).max().unwrap();
    assert!(peak < 2000, "tone energy leaked: peak {peak}");
    // The noise itself passes, CLAMP_DELAY_SAMPLES late (A-law round trip).
    let d = CLAMP_DELAY_SAMPLES + 8;
    let same = (100..3000).filter(|&i| (heard[i + d] - signal[i]).abs() <= 16).count();
    assert!(same > 2800, "audio delayed by the clamp: {same} of 2900 samples match");
}

#[test]
fn mf_r2_signals_are_reported_for_the_direction_listened_to() {
    // Channel 1 sends backward signal 6 then forward signal 3; channel 0 listens backward.
    let (mut e, mut h) = engine(&[HLaw::Alaw; 2], EngineConfig::default());
    e.card_mut().loopback[0] = Some(c(1));
    let back = Detectors { mfr2: Some(MfDirection::Backward), ..Detectors::NONE };
    h.send(EngineCommand::Detect(c(0), back)).unwrap();
    let tone = |dir, s| {
        let (f1, f2) = cardpbx_dsp::mfr2::signal_freqs(dir, s).unwrap();
        Source::Tone(ToneSpec::continuous([f1, f2], -11.5).unwrap())
    };
    let run = |e: &mut Engine<FakeCard>, ms| {
        for _ in 0..ms {
            e.tick().unwrap();
        }
    };
    h.send(EngineCommand::SetSource(c(1), tone(MfDirection::Backward, 6))).unwrap();
    run(&mut e, 150);
    h.send(EngineCommand::SetSource(c(1), Source::Silence)).unwrap();
    run(&mut e, 150);
    h.send(EngineCommand::SetSource(c(1), tone(MfDirection::Forward, 3))).unwrap();
    run(&mut e, 150);
    let mf: Vec<Option<u8>> = events(&mut h)
        .into_iter()
        .filter_map(|ev| match ev {
            EngineEvent::Mf(chan, s, _) => {
                assert_eq!(chan, c(0));
                Some(s)
            }
            _ => None,
        })
        .collect();
    assert_eq!(mf, vec![Some(6), None], "the forward signal is not listened for");
    // Listening forward now hears the forward signal still sounding.
    let fwd = Detectors { mfr2: Some(MfDirection::Forward), ..Detectors::NONE };
    h.send(EngineCommand::Detect(c(0), fwd)).unwrap();
    run(&mut e, 100);
    let mf: Vec<EngineEvent> =
        events(&mut h).into_iter().filter(|ev| matches!(ev, EngineEvent::Mf(..))).collect();
    assert!(matches!(mf.as_slice(), [EngineEvent::Mf(_, Some(3), _)]), "{mf:?}");
}
