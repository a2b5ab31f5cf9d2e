//! External audio peers and the traffic generator.

mod common;

use cardpbx_hal::{ChannelId, Law};
use cardpbx_sim::{ClockMode, EndpointId, SimCard, SimConfig, TrafficConfig};
use common::Bench;
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::Path;

/// A peer that speaks the lock-step protocol: write a block, read a block; it echoes what it
/// read one block later, for `blocks` blocks, then closes.
fn echo_peer(to_peer: &Path, from_peer: &Path, blocks: usize) -> std::thread::JoinHandle<usize> {
    let (inp, out) = (to_peer.to_path_buf(), from_peer.to_path_buf());
    std::thread::spawn(move || {
        // Wait for the card to create the FIFOs.
        while !(inp.exists() && out.exists()) {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        let mut r = File::open(&inp).unwrap();
        let mut w = OpenOptions::new().write(true).open(&out).unwrap();
        let mut block = [0u8; 320];
        let mut done = 0;
        for _ in 0..blocks {
            if w.write_all(&block).is_err() || r.read_exact(&mut block).is_err() {
                break;
            }
            done += 1;
        }
        done
    })
}

fn echo_through_peer(clock: ClockMode) {
    let dir = tempfile::tempdir().unwrap();
    let (to_peer, from_peer) = (dir.path().join("to_peer"), dir.path().join("from_peer"));
    // The peer starts first here; it waits for the FIFOs the card creates.
    let peer = echo_peer(&to_peer, &from_peer, 150);
    let mut b = Bench::new(SimConfig { clock, ..SimConfig::default() });
    let (c1, c2) = (b.card.fxs_channel(1).unwrap(), b.card.fxs_channel(2).unwrap());
    b.card.bind_external_audio(c1, to_peer.clone(), from_peer.clone()).unwrap();
    // The PBX connects phone 2 to port 1, whose far end is the echo peer: phone 2 hears itself.
    b.bridge(c1, c2);
    b.card.phone_mut(2).unwrap().off_hook();
    b.card.phone_mut(2).unwrap().expect_peer(Some(EndpointId::Phone(2)));
    b.run(2000);
    let chk = b.card.phone(2).unwrap().audio_check();
    if clock == ClockMode::Virtual {
        assert!(chk.ok_blocks >= 85, "{chk:?}");
        assert_eq!(chk.error_blocks, 0, "{chk:?}");
    } else {
        // Real time: blocks may be late on a loaded machine; the path must still work.
        assert!(chk.ok_blocks > 0, "{chk:?}");
    }
    // The peer stops after 150 blocks: the binding ends and the line goes silent.
    for _ in 0..60 {
        b.run(500);
        if b.card.external_audio_stats(c1).unwrap().ended {
            break;
        }
    }
    let st = b.card.external_audio_stats(c1).unwrap();
    assert!(st.ended, "{st:?}");
    assert_eq!(peer.join().unwrap(), 150);
    assert!(st.blocks_in >= 140, "{st:?}");
    assert!(st.end_reason.unwrap().contains("end of file"));
    let before = b.card.phone(2).unwrap().audio_check();
    b.run(1000);
    let after = b.card.phone(2).unwrap().audio_check().since(&before);
    assert_eq!(after.ok_blocks, 0);
    assert!(after.error_blocks >= 40);
}

#[test]
fn external_echo_peer_virtual_clock() {
    echo_through_peer(ClockMode::Virtual);
}

#[test]
fn external_echo_peer_real_time_clock() {
    echo_through_peer(ClockMode::RealTime);
}

#[test]
fn external_audio_needs_an_audio_channel() {
    let mut card = SimCard::new(SimConfig { e1_spans: 1, ..SimConfig::default() }).unwrap();
    let d = card.timeslot_channel(1, 16).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let e = card.bind_external_audio(d, dir.path().join("a"), dir.path().join("b")).unwrap_err();
    assert_eq!(e.kind(), cardpbx_hal::ErrorKind::WrongSignalling);
    let e = card
        .bind_external_audio(ChannelId(500), dir.path().join("a"), dir.path().join("b"))
        .unwrap_err();
    assert_eq!(e.kind(), cardpbx_hal::ErrorKind::NotFound);
}

/// The fax peer from the verification workshop as the far end of an FXS port, looped to
/// another external fax peer through the bench's bridge: a whole fax crosses the card.
#[test]
fn fax_peer_crosses_the_card_if_built() {
    let peers = Path::new("/work/shared/peers");
    let bin = peers.join("fax_peer");
    let tif = peers.join("test/test.tif");
    if !bin.exists() || !tif.exists() {
        eprintln!(
            "skipped: {} or {} not built (make -C /work/shared/peers)",
            bin.display(),
            tif.display()
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let p = |n: &str| dir.path().join(n);
    let mut b = Bench::new(SimConfig::default());
    let (c1, c2) = (b.card.fxs_channel(1).unwrap(), b.card.fxs_channel(2).unwrap());
    b.card.bind_external_audio(c1, p("s_in"), p("s_out")).unwrap();
    b.card.bind_external_audio(c2, p("r_in"), p("r_out")).unwrap();
    let spawn =
        |args: &[&std::ffi::OsStr]| std::process::Command::new(&bin).args(args).spawn().unwrap();
    let mut send = spawn(&[
        "send".as_ref(),
        tif.as_os_str(),
        "--in".as_ref(),
        p("s_in").as_os_str(),
        "--out".as_ref(),
        p("s_out").as_os_str(),
        "--max-sec".as_ref(),
        "120".as_ref(),
    ]);
    let rx_tif = p("rx.tif");
    let mut recv = spawn(&[
        "recv".as_ref(),
        rx_tif.as_os_str(),
        "--in".as_ref(),
        p("r_in").as_os_str(),
        "--out".as_ref(),
        p("r_out").as_os_str(),
        "--max-sec".as_ref(),
        "120".as_ref(),
    ]);
    b.bridge(c1, c2);
    for _ in 0..200 {
        b.run(1000);
        let (s1, s2) =
            (b.card.external_audio_stats(c1).unwrap(), b.card.external_audio_stats(c2).unwrap());
        if s1.ended && s2.ended {
            break;
        }
    }
    assert!(send.wait().unwrap().success(), "fax sender failed");
    assert!(recv.wait().unwrap().success(), "fax receiver failed");
}

fn traffic_trace(seed: u64) -> (Vec<(u64, cardpbx_hal::HalEvent)>, cardpbx_sim::TrafficSnapshot) {
    let mut card = SimCard::new(SimConfig {
        seed,
        fxs_ports: 6,
        fxo_ports: 2,
        law: Law::Alaw,
        ..SimConfig::default()
    })
    .unwrap();
    card.start_traffic(TrafficConfig {
        extensions: (1..=6).map(|p| (p, format!("80{p}"))).collect(),
        inbound_fxo_ports: vec![1, 2],
        inbound_target_ports: vec![5, 6],
        outgoing_prefix: Some("9".into()),
        mean_interarrival_ms: 3000,
        ..TrafficConfig::default()
    })
    .unwrap();
    let mut trace = Vec::new();
    card.run_idle(600_000, |t, e| trace.push((t, e))).unwrap();
    (trace, card.traffic_stats().snapshot())
}

/// Without a PBX nothing completes, but the generator's choices (who lifts, which line rings,
/// when) depend only on the seed.
#[test]
fn same_seed_same_trace() {
    let (a, sa) = traffic_trace(7);
    let (b, sb) = traffic_trace(7);
    let (c, _) = traffic_trace(8);
    assert!(a.len() > 100, "{} events", a.len());
    assert_eq!(a, b);
    assert_eq!(sa, sb);
    assert_ne!(a, c);
    assert!(sa.attempted > 50, "{sa:?}");
    assert_eq!(sa.completed, 0);
    assert!(sa.no_dial_tone > 0 && sa.no_ring > 0, "{sa:?}");
    assert_eq!(sa.attempted, sa.failed + sa.in_progress, "{sa:?}");
}

#[test]
fn traffic_config_is_checked() {
    let mut card = SimCard::new(SimConfig::default()).unwrap();
    let bad = TrafficConfig { extensions: vec![(9, "801".into())], ..TrafficConfig::default() };
    assert_eq!(
        card.start_traffic(bad).unwrap_err().kind(),
        cardpbx_hal::ErrorKind::InvalidArgument
    );
    let bad = TrafficConfig { extensions: vec![(1, "80x".into())], ..TrafficConfig::default() };
    assert!(card.start_traffic(bad).is_err());
}
