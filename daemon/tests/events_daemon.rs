//! `cardpbx events` against a running daemon (real-time runner, control socket): a client that
//! follows the stream sees each call start, change state and end, in order, and a client that
//! goes away is dropped without disturbing the daemon.

use cardpbx::config::Config;
use cardpbx::ctl::client::CtlClient;
use cardpbx::ctl::proto::{CtlData, CtlRequest};
use cardpbx::service::{open_sim_card, Daemon};
use cardpbx_sim::{CallMix, TrafficConfig};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

fn config(dir: &Path) -> String {
    format!(
        r#"
[system]
name = "events-daemon"
spool_dir = "{d}"
control_socket = "{d}/ctl.sock"
realtime = false

[[card]]
name = "sim0"
driver = "sim"
fxs_ports = 2
fxo_ports = 0
  [card.sim]
  clock = "realtime"
  seed = 3

[[extension]]
number = "2001"
port = "sim0/fxs1"
[[extension]]
number = "2002"
port = "sim0/fxs2"
"#,
        d = dir.display()
    )
}

#[test]
fn a_client_follows_calls_from_start_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = Config::parse_str(&config(dir.path()), "events.toml").unwrap();
    let ctl = Daemon::bind_socket(&cfg).unwrap();
    let mut card = open_sim_card(&cfg, None).unwrap();
    card.start_traffic(TrafficConfig {
        extensions: vec![(1, "2001".into()), (2, "2002".into())],
        mean_interarrival_ms: 300,
        mean_hold_ms: 800,
        answer_delay_ms: (200, 400),
        mix: CallMix { internal: 1, inbound: 0, outbound: 0, pri_inbound: 0, pri_outbound: 0 },
        max_calls: Some(3),
        ..TrafficConfig::default()
    })
    .unwrap();
    let daemon = Daemon::start(&cfg, card, Some(ctl)).unwrap();
    let socket = cfg.system.control_socket.clone();
    let finished = Arc::new(AtomicBool::new(false));
    let f2 = finished.clone();
    let client = std::thread::spawn(move || {
        // A client that leaves at once must not disturb the one that stays.
        let mut quitter = CtlClient::connect(&socket).unwrap();
        quitter.follow(CtlRequest::Events, |_| Ok(false)).ok();
        drop(quitter);
        let mut c = CtlClient::connect(&socket).unwrap();
        let mut seen: Vec<serde_json::Value> = Vec::new();
        let result = c.follow(CtlRequest::Events, |data| {
            let CtlData::Event(v) = data else { panic!("not an event: {data:?}") };
            let done = v["event"] == "call_ended";
            seen.push(v);
            Ok(!done)
        });
        f2.store(true, Ordering::Relaxed);
        (result.map_err(|e| e.to_string()), seen)
    });
    // Serve until the client saw a call end (the traffic makes three calls).
    let started = std::time::Instant::now();
    while !finished.load(Ordering::Relaxed) && started.elapsed() < Duration::from_secs(60) {
        daemon.serve_once(Duration::from_millis(20));
    }
    assert!(finished.load(Ordering::Relaxed), "the client saw no call end within a minute");
    let (result, seen) = client.join().unwrap();
    result.unwrap();
    daemon.stop().unwrap();
    let seqs: Vec<u64> = seen.iter().map(|v| v["seq"].as_u64().unwrap()).collect();
    assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1), "no gaps: {seqs:?}");
    let ended = seen.last().unwrap();
    let call = &ended["data"]["call"];
    let story: Vec<String> = seen
        .iter()
        .filter(|v| &v["data"]["call"] == call)
        .map(|v| match v["event"].as_str().unwrap() {
            "call_state" => v["data"]["state"].as_str().unwrap().to_string(),
            other => other.to_string(),
        })
        .collect();
    // The client may have subscribed after the call started; what it saw is in order.
    let full = ["call_started", "ringing", "connected", "call_ended"];
    let from = full.len() - story.len();
    assert_eq!(story, full[from..], "{seen:?}");
}
