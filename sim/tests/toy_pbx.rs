//! The traffic generator against a toy PBX written here: dial tone, DTMF collection, ringing
//! with cadence, ringback, busy, and bridging. Internal calls must all complete with the audio
//! checked both ways.

use cardpbx_dsp::dtmf::{DtmfConfig, DtmfDetector, DtmfEvent};
use cardpbx_dsp::g711;
use cardpbx_dsp::tone::{ToneGen, ToneSpec};
use cardpbx_hal::{Chunk, FxsCommand, HalCommand, HalEvent, MediaIo, SignallingIo};
use cardpbx_sim::{CallMix, SimCard, SimConfig, TrafficConfig};

#[derive(Debug, Clone, Copy, PartialEq)]
enum St {
    Idle,
    Dialing,
    Calling(usize),
    RungBy(usize),
    Talking(usize),
    Busy,
}

struct Port {
    st: St,
    tone: Option<ToneGen>,
    det: DtmfDetector,
    digits: String,
    ring_next: u64,
    ring_on: bool,
}

const LAW: g711::Law = g711::Law::Alaw;

fn tone(cad: &[u32]) -> Option<ToneGen> {
    let spec = if cad.is_empty() {
        ToneSpec::continuous([450.0, 0.0], -10.0)
    } else {
        ToneSpec::cadenced([450.0, 0.0], -10.0, cad)
    };
    Some(ToneGen::new(spec.unwrap()))
}

fn run_toy_pbx(card: &mut SimCard, n: usize, ticks: u64) {
    let mut ports: Vec<Port> = (0..n)
        .map(|_| Port {
            st: St::Idle,
            tone: None,
            det: DtmfDetector::new(DtmfConfig::default()),
            digits: String::new(),
            ring_next: 0,
            ring_on: false,
        })
        .collect();
    let count = card.channel_count();
    let mut tx: Vec<Chunk> = vec![[LAW.silence(); 8]; count];
    let mut rx: Vec<Chunk> = vec![[LAW.silence(); 8]; count];
    let mut pcm = [0i16; 8];
    let ch = |i: usize| cardpbx_hal::ChannelId(i as u32);
    for _ in 0..ticks {
        for i in 0..n {
            tx[i] = match (ports[i].st, ports[i].tone.as_mut()) {
                (St::Talking(p), _) => rx[p],
                (_, Some(g)) => {
                    g.fill(&mut pcm);
                    let mut c = [0u8; 8];
                    LAW.encode_block(&pcm, &mut c);
                    c
                }
                _ => [LAW.silence(); 8],
            };
        }
        let now = card.step(&tx, &mut rx).unwrap();
        let mut cmds = Vec::new();
        for i in 0..n {
            if ports[i].st == St::Dialing {
                LAW.decode_block(&rx[i], &mut pcm);
                let mut got = None;
                ports[i].det.process(&pcm, |e| {
                    if let DtmfEvent::Start { digit, .. } = e {
                        got = Some(digit);
                    }
                });
                if let Some(d) = got {
                    ports[i].tone = None;
                    ports[i].digits.push(d);
                    if ports[i].digits.len() == 3 {
                        let target = ports[i].digits[2..]
                            .parse::<usize>()
                            .ok()
                            .map(|p| p - 1)
                            .filter(|&t| t < n && t != i);
                        match target {
                            Some(t) if ports[t].st == St::Idle => {
                                ports[i].st = St::Calling(t);
                                ports[i].tone = tone(&[1000, 4000]);
                                ports[t].st = St::RungBy(i);
                                ports[t].ring_next = now;
                                ports[t].ring_on = false;
                            }
                            _ => {
                                ports[i].st = St::Busy;
                                ports[i].tone = tone(&[350, 350]);
                            }
                        }
                    }
                }
            }
            if let St::RungBy(_) = ports[i].st {
                if now >= ports[i].ring_next {
                    ports[i].ring_on = !ports[i].ring_on;
                    ports[i].ring_next = now + if ports[i].ring_on { 1000 } else { 4000 };
                    cmds.push(HalCommand::Fxs(
                        ch(i),
                        if ports[i].ring_on { FxsCommand::RingOn } else { FxsCommand::RingOff },
                    ));
                }
            }
        }
        while let Some(ev) = card.poll_event() {
            match ev {
                HalEvent::OffHook(c) => {
                    let i = c.index();
                    match ports[i].st {
                        St::Idle => {
                            ports[i].st = St::Dialing;
                            ports[i].digits.clear();
                            ports[i].det.reset();
                            ports[i].tone = tone(&[]);
                        }
                        St::RungBy(caller) => {
                            cmds.push(HalCommand::Fxs(c, FxsCommand::RingOff));
                            ports[i].st = St::Talking(caller);
                            ports[caller].st = St::Talking(i);
                            ports[caller].tone = None;
                        }
                        _ => {}
                    }
                }
                HalEvent::OnHook(c) => {
                    let i = c.index();
                    match ports[i].st {
                        St::Talking(p) => {
                            ports[p].st = St::Busy;
                            ports[p].tone = tone(&[350, 350]);
                        }
                        St::Calling(t) => {
                            cmds.push(HalCommand::Fxs(ch(t), FxsCommand::RingOff));
                            ports[t].st = St::Idle;
                        }
                        _ => {}
                    }
                    ports[i].st = St::Idle;
                    ports[i].tone = None;
                }
                other => panic!("unexpected event {other:?}"),
            }
        }
        for c in cmds {
            card.command(c).unwrap();
        }
    }
}

#[test]
fn internal_calls_complete_through_a_toy_pbx() {
    let n = 5;
    let mut card = SimCard::new(SimConfig {
        fxs_ports: n as u32,
        fxo_ports: 0,
        seed: 42,
        ..SimConfig::default()
    })
    .unwrap();
    card.start_traffic(TrafficConfig {
        extensions: (1..=n as u32).map(|p| (p, format!("80{p}"))).collect(),
        mix: CallMix { internal: 1, inbound: 0, outbound: 0, pri_inbound: 0, pri_outbound: 0 },
        mean_interarrival_ms: 2000,
        mean_hold_ms: 30_000,
        ..TrafficConfig::default()
    })
    .unwrap();
    let stats = card.traffic_stats();
    run_toy_pbx(&mut card, n, 20 * 60 * 1000);
    let s = stats.snapshot();
    assert!(s.completed >= 50, "{s:?}");
    assert_eq!(s.failed, 0, "{s:?}");
    assert_eq!(s.audio_error_blocks, 0, "{s:?}");
    assert_eq!(s.attempted, s.completed + s.busy + s.in_progress, "{s:?}");
}
