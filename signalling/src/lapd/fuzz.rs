//! Fuzzing entry point: frame round trip plus a data link driven by arbitrary input.
//!
//! [`fuzz_check`] is called by `fuzz/fuzz_targets/lapd.rs` and, on stable, by the corpus replay
//! test, so both check the same invariants.
//!
//! Input language for the link part, one operation per tag byte `t` (`t & 7` selects, `t >> 3`
//! is a parameter `p`):
//! - 0, 1: receive a raw frame whose length is the next byte, taken from the input;
//! - 2: receive a well-formed peer frame chosen by `p`, numbered from the link's own state;
//! - 3: advance time by `p × 100` ms and run timers;
//! - 4: jump to the next timer deadline and run it;
//! - 5: send an I-frame payload of `p` octets;
//! - 6: establish; 7: release (`p` even) or send unit data (`p` odd).

use super::frame::{CommandResponse, Frame, FrameKind, Role, Supervisory, Unnumbered};
use super::link::{DataLink, LinkAction, LinkConfig, LinkState};

/// Check `data` as a frame (parse → emit gives the same bytes) and as a script for a
/// [`DataLink`] in each role, asserting the link invariants after every step.
///
/// # Panics
/// When an invariant is broken; that is the point.
pub fn fuzz_check(data: &[u8]) {
    if let Ok(frame) = Frame::parse(data) {
        assert_eq!(frame.to_vec(), data, "parse/emit round trip");
    }
    for role in [Role::User, Role::Network] {
        run_script(role, data);
    }
}

fn peer_frame(link: &DataLink, p: u8, arg: u8) -> Vec<u8> {
    let peer = link.role().peer();
    let snap = link.snapshot();
    let cmd = peer.cr_for(CommandResponse::Command);
    let rsp = peer.cr_for(CommandResponse::Response);
    let u = |kind, pf, cr| (cr, FrameKind::U { kind, pf });
    let s = |kind, nr, pf, cr| (cr, FrameKind::S { kind, nr, pf });
    let (cr, kind) = match p % 16 {
        0 => u(Unnumbered::Sabme, true, cmd),
        1 => u(Unnumbered::Ua, true, rsp),
        2 => u(Unnumbered::Disc, true, cmd),
        3 => u(Unnumbered::Dm, p & 16 != 0, rsp),
        4 => u(Unnumbered::Frmr, false, rsp),
        5 => s(Supervisory::Rr, snap.vs, false, rsp),
        6 => s(Supervisory::Rr, snap.vs, true, cmd),
        7 => s(Supervisory::Rr, snap.vs, true, rsp),
        8 => s(Supervisory::Rnr, snap.va, p & 16 != 0, rsp),
        9 => s(Supervisory::Rej, snap.va, p & 16 != 0, rsp),
        10 => (cmd, FrameKind::I { ns: snap.vr, nr: snap.vs, p: p & 16 != 0 }),
        11 => (cmd, FrameKind::I { ns: (snap.vr + 1) % 128, nr: snap.va, p: false }),
        12 => (cmd, FrameKind::I { ns: arg % 128, nr: arg / 2, p: arg & 1 != 0 }),
        13 => u(Unnumbered::Ui, false, cmd),
        14 => s(Supervisory::Rr, arg % 128, arg & 128 != 0, p & 16 != 0),
        _ => u(Unnumbered::Ua, false, rsp),
    };
    let info: &[u8] = match kind {
        FrameKind::I { .. } | FrameKind::U { kind: Unnumbered::Ui, .. } => {
            &[0x08, 0x02, 0x00, 0x01]
        }
        _ => &[],
    };
    let cfg = link.config();
    Frame { sapi: cfg.sapi, tei: cfg.tei, cr, kind, info }.to_vec()
}

fn run_script(role: Role, data: &[u8]) {
    let mut link = DataLink::new(role, LinkConfig::default());
    let mut now = 0u64;
    let mut i = 0usize;
    let next = |i: &mut usize| {
        let b = data.get(*i).copied().unwrap_or(0);
        *i += 1;
        b
    };
    while i < data.len() {
        let tag = next(&mut i);
        let p = tag >> 3;
        match tag & 7 {
            0 | 1 => {
                let len = usize::from(next(&mut i));
                let start = i.min(data.len());
                let end = (start + len).min(data.len());
                i = end;
                link.receive(now, &data[start..end]);
            }
            2 => {
                let arg = next(&mut i);
                let frame = peer_frame(&link, p, arg);
                link.receive(now, &frame);
            }
            3 => {
                now += u64::from(p) * 100;
                link.poll(now);
            }
            4 => {
                if let Some(t) = link.next_timeout() {
                    now = now.max(t);
                }
                link.poll(now);
            }
            5 => {
                link.send(now, vec![tag; usize::from(p)]).expect("short payload accepted");
            }
            6 => link.establish(now),
            _ => {
                if p & 1 == 0 {
                    link.release(now);
                } else {
                    link.send_unit_data(now, &[p]).expect("short UI accepted");
                }
            }
        }
        check_invariants(&mut link, now);
    }
}

fn check_invariants(link: &mut DataLink, now: u64) {
    let snap = link.snapshot();
    let cfg = *link.config();
    assert!((4..=8).contains(&snap.state.number()));
    assert!(snap.outstanding <= usize::from(cfg.k), "window exceeded");
    assert_eq!(
        usize::from((snap.vs + 128 - snap.va) % 128),
        snap.outstanding,
        "V(S) - V(A) equals the frames outstanding"
    );
    assert!(snap.vs < 128 && snap.va < 128 && snap.vr < 128);
    match snap.state {
        LinkState::TeiAssigned => assert!(snap.t200.is_none() && snap.t203.is_none()),
        LinkState::MultipleFrameEstablished => assert!(snap.t200.is_some() || snap.t203.is_some()),
        _ => assert!(snap.t200.is_some(), "T200 runs in states 5, 6 and 8"),
    }
    if snap.state != LinkState::MultipleFrameEstablished && snap.state != LinkState::TimerRecovery {
        assert_eq!(snap.outstanding, 0, "nothing outstanding while not established");
    }
    if let Some(t) = link.next_timeout() {
        assert!(t > now, "a due timer was left unhandled");
    }
    let role = link.role();
    while let Some(action) = link.poll_action() {
        match action {
            LinkAction::Transmit(bytes) => {
                let frame = Frame::parse_with_n201(&bytes, cfg.n201).expect("we emit valid frames");
                assert_eq!((frame.sapi, frame.tei), (cfg.sapi, cfg.tei));
                if let Some(dir) = frame.kind.direction() {
                    assert_eq!(frame.cr, role.cr_for(dir), "C/R bit for {dir:?}");
                }
            }
            LinkAction::Data(info) | LinkAction::UiData(info) => assert!(info.len() <= cfg.n201),
            LinkAction::Established | LinkAction::Released | LinkAction::Error(_) => {}
        }
    }
}
