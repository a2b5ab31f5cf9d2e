//! The demo's generated traffic (internal, inbound and outbound calls) on the virtual clock:
//! simulated minutes of calls through the real engine and call control, every call's audio
//! checked both ways.

use cardpbx::demo::{demo_config, traffic_for};
use cardpbx::runner::Stepped;
use cardpbx::service::sim_config;
use cardpbx_sim::{ClockMode, SimCard};

fn run_traffic(
    minutes: u64,
    seed: u64,
) -> (cardpbx_sim::TrafficSnapshot, cardpbx::pbx::PbxCounters, usize) {
    let cfg = demo_config(None, Some(seed)).expect("bundled demo config");
    let mut card = SimCard::new(sim_config(&cfg, &cfg.cards[0], Some(ClockMode::Virtual))).unwrap();
    card.start_traffic(traffic_for(&cfg).unwrap()).unwrap();
    let stats = card.traffic_stats();
    let mut p = Stepped::new(card, &cfg, "sim0").unwrap();
    p.run_ms(minutes * 60_000).unwrap();
    (stats.snapshot(), p.pbx().counters(), p.pbx().active_calls())
}

#[test]
fn demo_traffic_completes_without_failures_or_audio_errors() {
    for seed in [1, 2, 3] {
        let (t, pbx, active) = run_traffic(10, seed);
        eprintln!("seed {seed}: traffic {t:?}\npbx {pbx:?}");
        assert!(t.attempted >= 60, "seed {seed}: enough calls were attempted: {t:?}");
        assert!(t.pri_attempted >= 10, "seed {seed}: calls went over the PRI span: {t:?}");
        assert_eq!(t.failed, 0, "seed {seed}: no call failed: {t:?}");
        assert_eq!(t.audio_path_errors, 0, "seed {seed}: no audio path errors: {t:?}");
        assert_eq!(t.completed + t.in_progress, t.attempted, "seed {seed}: {t:?}");
        assert_eq!(pbx.calls_failed, 0, "seed {seed}: the PBX failed no call: {pbx:?}");
        // The generator counts a call complete when its talk ends; the PBX when it is cleared.
        assert!(
            pbx.calls_completed + active as u64 >= t.completed,
            "seed {seed}: {pbx:?} ({active} active) vs {t:?}"
        );
    }
}
