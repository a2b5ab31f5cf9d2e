//! `cardpbx sim busy-hour`: the what-if call center on the virtual clock, through the real
//! daemon code. Determinism, event-driven jumps that change no outcome, the store's queue
//! report against the simulator's own counts, Erlang C, and a run with audio checked.

use cardpbx::callcenter::erlang;
use cardpbx::store::report::{self, ReportOptions};
use cardpbx::store::{Record, Store};
use cardpbx::whatif::{run, BusyHour, BusyHourReport};

fn sim(p: &BusyHour) -> BusyHourReport {
    run(p, &mut |_| {}).expect("busy-hour run")
}

/// A small call center where some callers wait, some abandon and some are blocked.
fn small() -> BusyHour {
    BusyHour {
        agents: 4,
        trunks: 6,
        calls_per_hour: 500.0,
        mean_talk_s: 25.0,
        patience_s: Some(20.0),
        wrapup_s: 2,
        hours: 0.25,
        seed: 11,
        audio: false,
        ..BusyHour::default()
    }
}

#[test]
fn same_seed_same_report_and_records() {
    let a = sim(&small());
    let b = sim(&small());
    assert_eq!(a, b);
    assert_eq!(a.render(), b.render());
    assert!(a.arrivals > 50 && a.answered > 0 && a.abandoned > 0 && a.blocked > 0, "{a:#?}");
    assert!(a.is_clean(), "{}", a.render());
    let c = sim(&BusyHour { seed: 12, ..small() });
    assert_ne!(a.records, c.records, "another seed, other calls");
}

#[test]
fn event_driven_jumps_change_no_outcome() {
    let jump = sim(&BusyHour { hours: 0.05, ..small() });
    let tick = sim(&BusyHour { hours: 0.05, event_driven: false, ..small() });
    assert!(jump.answered > 0 && jump.abandoned + jump.blocked > 0, "{}", jump.render());
    // Every record, with its timestamp to the millisecond.
    assert_eq!(jump.records, tick.records);
    let tick = BusyHourReport { params: jump.params.clone(), records: Vec::new(), ..tick };
    assert_eq!(BusyHourReport { records: Vec::new(), ..jump }, tick);
}

#[test]
fn queue_report_from_the_store_agrees_with_the_simulator() {
    let r = sim(&small());
    let mut store = Store::open_in_memory().unwrap();
    r.write_records(&mut store).unwrap();
    let o = ReportOptions {
        from_ms: 0,
        to_ms: i64::MAX / 2,
        now_ms: i64::MAX / 2,
        offset_s: 0,
        sl_seconds: r.params.sl_s,
    };
    let rows = report::queues(&store, &o).unwrap();
    assert_eq!(rows.len(), 1, "{rows:?}");
    let q = &rows[0];
    assert_eq!(q.offered, r.offered);
    assert_eq!(q.answered, r.answered);
    assert_eq!(q.abandoned, r.abandoned);
    assert_eq!(q.answered_in_sl, r.answered_in_sl);
    assert_eq!(q.waiting, r.unfinished);
    assert_eq!(r.unfinished, 0);
    assert_eq!(q.service_level, r.service_level);
    assert_eq!(q.abandon_rate, r.abandon_rate);
    let (qa, ra) = (q.asa_s.unwrap(), r.asa_s.unwrap());
    assert!((qa - ra).abs() < 1e-9, "ASA {qa} vs {ra}");
    // One inbound CDR per caller that got a trunk; the blocked ones never reached the PBX.
    let cdrs = store.cdrs(0, i64::MAX / 2).unwrap();
    let inbound = cdrs.iter().filter(|c| c.caller.starts_with("139")).count() as u64;
    assert_eq!(inbound, r.arrivals - r.blocked);
    let talked = cdrs.iter().filter(|c| c.caller.starts_with("139") && c.agent.is_some()).count();
    assert_eq!(talked as u64, r.answered);
    let n = r.records.iter().filter(|x| matches!(x, Record::Cdr(_))).count();
    assert_eq!(cdrs.len(), n);
}

/// Infinite patience, one skill, no wrap-up, enough trunks: P(wait) and the mean wait for an
/// agent agree with Erlang C within the run's confidence interval.
#[test]
fn erlang_c_agrees_within_confidence_intervals() {
    // (agents, calls per hour, mean talk s, hours)
    let configs = [(2u32, 80.0, 45.0, 12.0), (4, 300.0, 30.0, 6.0), (8, 700.0, 30.0, 3.0)];
    println!("  N      A  P(wait) sim ± CI95   Erlang C   wait sim ± CI95   Erlang C");
    for (agents, cph, talk, hours) in configs {
        let p = BusyHour {
            agents,
            trunks: 30,
            calls_per_hour: cph,
            mean_talk_s: talk,
            patience_s: None,
            wrapup_s: 0,
            hours,
            seed: 7,
            audio: false,
            ..BusyHour::default()
        };
        let r = sim(&p);
        let a = p.offered_erlangs();
        let pw = r.p_wait.unwrap();
        let w = r.wait_to_agent_s.unwrap();
        let (pw_ci, w_ci) = (pw.ci95.unwrap(), w.ci95.unwrap());
        let ec = erlang::erlang_c(agents, a);
        let ea = erlang::asa(agents, a, p.handle_s());
        println!(
            "{agents:3} {a:6.2}  {:6.3} ± {:5.3}       {ec:6.3}    {:6.2} ± {:5.2}    {ea:6.2}",
            pw.mean, pw_ci, w.mean, w_ci
        );
        assert_eq!(r.blocked, 0);
        assert_eq!(r.answered, r.offered);
        // A 99 % interval (t 2.861 for 19 degrees of freedom) from the 95 % one.
        let k = 2.861 / 2.093;
        assert!((pw.mean - ec).abs() <= k * pw_ci, "P(wait) {pw:?} vs Erlang C {ec}");
        assert!((w.mean - ea).abs() <= k * w_ci, "wait {w:?} vs Erlang C {ea}");
    }
}

#[test]
fn with_audio_every_answered_call_hears_its_peer() {
    let p = BusyHour {
        agents: 3,
        trunks: 4,
        calls_per_hour: 300.0,
        mean_talk_s: 8.0,
        patience_s: Some(30.0),
        hours: 0.03,
        seed: 5,
        audio: true,
        ..BusyHour::default()
    };
    let r = sim(&p);
    let a = r.audio.expect("audio checked");
    assert!(a.calls_checked >= 3, "{}", r.render());
    assert_eq!(a.error_blocks, 0, "{}", r.render());
    assert!(a.ok_blocks > 0);
    assert!(r.is_clean());
    // The same calls as without audio: audio changes no outcome.
    let q = sim(&BusyHour { audio: false, ..p });
    assert_eq!(r.records, q.records);
}

#[test]
fn options_are_checked_and_the_scenario_is_a_valid_configuration() {
    let ok = BusyHour::default();
    assert!(ok.validate().is_ok());
    for bad in [
        BusyHour { agents: 0, ..ok.clone() },
        BusyHour { trunks: 0, ..ok.clone() },
        BusyHour { calls_per_hour: 0.0, ..ok.clone() },
        BusyHour { mean_talk_s: f64::NAN, ..ok.clone() },
        BusyHour { patience_s: Some(-1.0), ..ok.clone() },
        BusyHour { hours: 0.0, ..ok.clone() },
    ] {
        assert!(bad.validate().is_err(), "{bad:?}");
    }
    let p = BusyHour { agents: 25, trunks: 45, wrapup_s: 10, ..ok };
    assert_eq!(p.spans(), 2);
    let cfg = cardpbx::config::Config::parse_str(&p.config_toml(), "busy-hour.toml").unwrap();
    assert_eq!(cfg.cards[0].fxs_ports, 25);
    assert_eq!(cfg.cards[0].e1_spans, 2);
}

#[test]
fn staffing_advice_from_a_simulated_busy_hour_measures_what_was_simulated() {
    use cardpbx::store::staffing::{staffing, StaffingArgs};
    let p = BusyHour {
        agents: 20,
        trunks: 30,
        calls_per_hour: 360.0,
        mean_talk_s: 180.0,
        patience_s: Some(120.0),
        hours: 1.0,
        seed: 1,
        audio: false,
        ..BusyHour::default()
    };
    let r = sim(&p);
    let mut store = Store::open_in_memory().unwrap();
    r.write_records(&mut store).unwrap();
    let first = r
        .records
        .iter()
        .filter_map(|x| if let Record::Cdr(c) = x { Some(c.started_ms) } else { None })
        .min()
        .unwrap();
    let from_ms = first - first.rem_euclid(3_600_000);
    let o = ReportOptions {
        from_ms,
        to_ms: from_ms + 7_200_000,
        now_ms: from_ms + 7_200_000,
        offset_s: 0,
        sl_seconds: 20,
    };
    let rows = staffing(&store, &o, &StaffingArgs::default()).unwrap();
    // What was measured is what was simulated (a caller arriving in the last moment of the
    // hour may enter the queue in the next).
    let sum =
        |f: fn(&cardpbx::store::staffing::StaffingRow) -> u64| rows.iter().map(f).sum::<u64>();
    assert_eq!(sum(|x| x.offered), r.offered, "{rows:?}");
    assert_eq!((sum(|x| x.answered), sum(|x| x.abandoned)), (r.answered, r.abandoned));
    let row = rows.iter().max_by_key(|x| x.offered).unwrap();
    assert!(row.offered as f64 >= 0.98 * r.offered as f64, "{rows:?}");
    assert!((row.calls_per_hour - row.offered as f64).abs() < 1e-6, "{row:?}");
    let aht = row.aht_s.unwrap();
    assert!((aht - 180.0).abs() < 0.25 * 180.0, "handling time {aht} s for a mean talk of 180 s");
    let patience = row.patience_s.unwrap();
    assert!((60.0..=240.0).contains(&patience), "patience {patience} s for a mean of 120 s");
    // The advice is Erlang C's for the measured load, and enough agents for the load.
    let traffic = row.traffic_erl.unwrap();
    let need = erlang::agents_needed(traffic, aht, 20.0, 0.8, None).unwrap();
    assert_eq!(row.agents_c, Some(need), "{row:?}");
    assert!(f64::from(need) > traffic, "{need} agents for {traffic:.1} erlangs");
    assert!(row.sl_c.unwrap() >= 0.8, "{row:?}");
    assert!(row.agents_a.is_some_and(|a| a <= need), "impatient callers need no more: {row:?}");
}
