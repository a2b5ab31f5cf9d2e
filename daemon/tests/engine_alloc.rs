//! The media engine's tick must not allocate in steady state: a counting global allocator
//! (per thread, so the recording writer thread does not count) watches every tick of a busy
//! engine: bridged calls, a conference, tones, prompts (one-shot and repeating), recording,
//! every detector (DTMF with clamping, call progress, fax tones, caller ID), echo cancellers,
//! caller ID sending, fax ports (audio to and from the fax worker's rings, attached and
//! detached while it runs), card events and commands arriving while it runs.

use cardpbx::engine::fake::FakeCard;
use cardpbx::engine::{
    CidFrame, ConfId, ConfMode, Detectors, Engine, EngineCommand, EngineConfig, FaxSlot, FskBurst,
    PromptId, PromptLibrary, RecSlot, RecordingWriter, Source,
};
use cardpbx_dsp::callerid::{self, CallerIdMessage, Format, FskStandard};
use cardpbx_dsp::mfr2::MfDirection;
use cardpbx_dsp::progress::ProgressEvent;
use cardpbx_dsp::tone::{Segment, ToneSpec};
use cardpbx_dsp::toneplan::ProgressTone;
use cardpbx_hal::{ChannelId, HalEvent, Law};
use ringbuf::traits::{Consumer, Observer, Producer};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

struct Counting;

thread_local! {
    static ALLOCS: Cell<u64> = const { Cell::new(0) };
}

fn bump() {
    let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
}

// SAFETY: every method forwards its arguments unchanged to the system allocator, which
// upholds the GlobalAlloc contract; the counter is a const-initialised thread-local Cell.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        bump();
        unsafe { System.alloc(l) }
    }
    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        bump();
        unsafe { System.alloc_zeroed(l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        bump();
        unsafe { System.realloc(p, l, n) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        bump();
        unsafe { System.dealloc(p, l) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocs() -> u64 {
    ALLOCS.with(Cell::get)
}

fn c(i: u32) -> ChannelId {
    ChannelId(i)
}

/// The fax worker's side of the ports: answer every 160 samples heard with 160 to send.
/// Returns how many non-zero samples it heard.
fn play_fax_worker(fax: &mut cardpbx::engine::FaxPortRings) -> usize {
    let mut heard = 0;
    for p in &mut fax.ports {
        while p.from_engine.occupied_len() >= 160 && p.to_engine.vacant_len() >= 160 {
            let mut block = [0i16; 160];
            p.from_engine.pop_slice(&mut block);
            heard += block.iter().filter(|&&s| s != 0).count();
            let tone: [i16; 160] = std::array::from_fn(|i| if i % 8 < 4 { 4000 } else { -4000 });
            p.to_engine.push_slice(&tone);
        }
    }
    heard
}

#[test]
fn steady_state_ticks_do_not_allocate() {
    let n = 64;
    let mut laws = vec![Law::Alaw; n];
    for l in laws.iter_mut().skip(48) {
        *l = Law::Ulaw;
    }
    let mut card = FakeCard::new(&laws);
    // Audio on every channel: a different code per channel; channel 40 hears channel 41.
    for (i, rx) in card.rx.iter_mut().enumerate() {
        *rx = [(i * 3 + 17) as u8; 8];
    }
    card.loopback[40] = Some(c(41));
    // Channel 47 hears channel 42's busy tone; channel 61 hears the caller ID 60 sends.
    card.loopback[47] = Some(c(42));
    card.loopback[61] = Some(c(60));
    let prompts = PromptLibrary::from_samples(vec![
        ("short".into(), (0..300).map(|i| (i * 37 % 2000) as i16).collect()),
        ("moh".into(), (0..1000).map(|i| (i * 11 % 3000) as i16 - 1500).collect()),
    ])
    .unwrap();
    let cfg = EngineConfig {
        conferences: 4,
        recording_slots: 4,
        prompts,
        echo_channels: (0..8).map(c).collect(),
        ..Default::default()
    };
    let (mut e, mut h) = Engine::new(card, cfg);
    let (writer, rec) = RecordingWriter::spawn(h.take_recordings().unwrap()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    rec.open(RecSlot(0), dir.path().join("a.wav")).unwrap();
    rec.open(RecSlot(1), dir.path().join("b.wav")).unwrap();
    // The fax worker's ends of the ports; this thread plays the worker between ticks.
    let mut fax = h.take_fax_ports().unwrap();

    let busy = cardpbx_dsp::toneplan::TonePlan::china().tone(ProgressTone::Busy);
    let beep = ToneSpec::new(&[Segment { ms: 30, freqs: [1000.0, 0.0], level_dbm0: -10.0 }], false)
        .unwrap();
    let digit = ToneSpec::new(
        &[Segment { ms: 60, freqs: [770.0, 1336.0], level_dbm0: -10.0 }, Segment::silence(60)],
        false,
    )
    .unwrap();
    let mut cmds = vec![];
    for i in (0..32).step_by(2) {
        cmds.push(EngineCommand::SetSource(c(i), Source::Channel(c(i + 1))));
        cmds.push(EngineCommand::SetSource(c(i + 1), Source::Channel(c(i))));
    }
    // A-law <-> µ-law calls.
    cmds.push(EngineCommand::SetSource(c(33), Source::Channel(c(50))));
    cmds.push(EngineCommand::SetSource(c(50), Source::Channel(c(33))));
    for i in 34..38 {
        cmds.push(EngineCommand::ConfJoin(ConfId(1), c(i), ConfMode::TalkListen));
    }
    cmds.push(EngineCommand::ConfJoin(ConfId(1), c(38), ConfMode::ListenOnly));
    cmds.push(EngineCommand::SetSource(c(39), Source::Mix([Some(c(0)), Some(c(1)), None, None])));
    cmds.push(EngineCommand::SetSource(c(42), Source::Tone(busy)));
    cmds.push(EngineCommand::SetSource(
        c(43),
        Source::Prompt { prompt: PromptId(1), repeat: true },
    ));
    for i in 0..64 {
        let all = Detectors {
            dtmf: true,
            clamp_dtmf: i % 2 == 0,
            progress: true,
            fax: true,
            callerid: Some(FskStandard::Bell202),
            mfr2: Some(if i % 2 == 0 { MfDirection::Forward } else { MfDirection::Backward }),
        };
        cmds.push(EngineCommand::Detect(c(i), all));
    }
    for i in 0..8 {
        cmds.push(EngineCommand::EchoCancel(c(i), true));
    }
    // An A-law and a µ-law channel on fax ports.
    cmds.push(EngineCommand::SetSource(c(46), Source::FaxPort(FaxSlot(0))));
    cmds.push(EngineCommand::SetSource(c(57), Source::FaxPort(FaxSlot(1))));
    cmds.push(EngineCommand::RecordStart(c(0), RecSlot(0)));
    cmds.push(EngineCommand::RecordStart(c(50), RecSlot(1)));
    for cmd in cmds {
        h.send(cmd).unwrap();
    }
    // Warm up: first use of everything, plus a heartbeat.
    for _ in 0..1100 {
        e.tick().unwrap();
        while h.poll_event().is_some() {}
        play_fax_worker(&mut fax);
    }

    let msg = CallerIdMessage {
        date_time: Some("11231005".into()),
        number: Some("13800138000".into()),
        name: Some("Zhang San".into()),
        ..Default::default()
    };
    let frame = CidFrame::new(&callerid::encode(Format::Mdmf, &msg).unwrap()).unwrap();
    let cid = FskBurst { standard: FskStandard::Bell202, level_dbm0: -13.0, frame };
    let mut during = 0;
    let mut digits = 0;
    let mut done = 0;
    let mut cids = 0;
    let mut busy_heard = 0;
    let mut fax_heard = 0;
    let mut fax_sent = 0;
    for t in 0..3000u32 {
        if t % 1000 == 0 {
            h.send(EngineCommand::SetSource(c(60), Source::Fsk(cid))).unwrap();
        }
        // Things the control plane does during calls, all through the preallocated rings.
        match t % 500 {
            0 => h.send(EngineCommand::SetSource(c(41), Source::Tone(digit))).unwrap(),
            100 => h.send(EngineCommand::SetSource(c(44), Source::Tone(beep))).unwrap(),
            200 => h
                .send(EngineCommand::SetSource(
                    c(45),
                    Source::Prompt { prompt: PromptId(0), repeat: false },
                ))
                .unwrap(),
            300 => h.send(EngineCommand::ConfJoin(ConfId(2), c(45), ConfMode::TalkListen)).unwrap(),
            400 => h.send(EngineCommand::ConfLeave(ConfId(2), c(45))).unwrap(),
            // A fax call ends and the next one takes the port.
            250 => h.send(EngineCommand::SetSource(c(57), Source::Silence)).unwrap(),
            260 => h.send(EngineCommand::SetSource(c(57), Source::FaxPort(FaxSlot(1)))).unwrap(),
            // A new MF R2 detector (the direction flips).
            450 => {
                let dir = if t % 1000 < 500 { MfDirection::Backward } else { MfDirection::Forward };
                let d = Detectors { mfr2: Some(dir), ..Detectors::NONE };
                h.send(EngineCommand::Detect(c(62), d)).unwrap()
            }
            _ => {}
        }
        if t % 250 == 0 {
            e.card_mut().events.push_back(HalEvent::OffHook(c(5)));
        }
        let before = allocs();
        e.tick().unwrap();
        during += allocs() - before;
        fax_heard += play_fax_worker(&mut fax);
        let tx46 = e.card().tx[46];
        if tx46 != [tx46[0]; 8] {
            fax_sent += 1;
        }
        while let Some(ev) = h.poll_event() {
            match ev {
                cardpbx::engine::EngineEvent::Digit { chan, digit, .. } => {
                    assert_eq!((chan, digit), (c(40), '5'));
                    digits += 1;
                }
                cardpbx::engine::EngineEvent::PlayDone(..) => done += 1,
                cardpbx::engine::EngineEvent::CallerId(ch, Ok(f), _) if ch == c(61) => {
                    assert_eq!(f.decode().unwrap().1, msg);
                    cids += 1;
                }
                cardpbx::engine::EngineEvent::Progress(
                    ch,
                    ProgressEvent::Detected { tone: ProgressTone::Busy, .. },
                    _,
                ) if ch == c(47) => busy_heard += 1,
                _ => {}
            }
        }
    }
    assert_eq!(during, 0, "allocations on the tick path in 3000 ticks");
    // The workload really ran: digits heard, one-shot plays finished.
    assert_eq!(digits, 6);
    assert_eq!(done, 18 + 3, "one-shot plays and caller ID bursts");
    assert_eq!(cids, 3, "caller ID messages decoded");
    assert!(busy_heard >= 1, "busy tone recognised");
    assert!(fax_heard > 0, "the fax ports carried the channels' audio to the worker");
    assert!(fax_sent > 2000, "the worker's audio went out on the channel ({fax_sent} ticks)");
    for p in &fax.ports[..2] {
        let c = &p.counters;
        assert_eq!(c.overruns.load(std::sync::atomic::Ordering::Relaxed), 0);
        assert_eq!(c.underruns.load(std::sync::atomic::Ordering::Relaxed), 0);
    }
    h.send(EngineCommand::RecordStop(RecSlot(0))).unwrap();
    h.send(EngineCommand::RecordStop(RecSlot(1))).unwrap();
    e.tick().unwrap();
    for _ in 0..2 {
        let f = rec.finished().recv_timeout(std::time::Duration::from_secs(20)).unwrap();
        assert_eq!(f.overruns, 0);
        assert!(f.frames >= 4100 * 8);
    }
    writer.shutdown();
    let s = h.stats().snapshot();
    assert_eq!((s.event_overruns, s.rejected_commands, s.recording_overruns), (0, 0, 0));
}
