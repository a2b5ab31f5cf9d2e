//! Sticky routing survives a restart: the daemon reads who served whom from the store's CDRs
//! of the last `sticky_days` when it starts.

use cardpbx::config::Config;
use cardpbx::service::{open_sim_card, Daemon};
use cardpbx::store::{CdrRecord, Record, Store};

#[test]
fn the_daemon_seeds_sticky_routing_from_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("cc.db");
    let now_ms =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis()
            as i64;
    let served = |caller: &str, agent: &str, days_ago: i64| {
        let ended_ms = now_ms - days_ago * 86_400_000;
        Record::Cdr(CdrRecord {
            call_id: 1,
            started_ms: ended_ms - 60_000,
            answered_ms: Some(ended_ms - 50_000),
            ended_ms,
            direction: "inbound".into(),
            caller: caller.into(),
            called: "600".into(),
            queue: Some("sales".into()),
            agent: Some(agent.into()),
            cause: "normal_clearing".into(),
            ..CdrRecord::default()
        })
    };
    let mut store = Store::open(&db).unwrap();
    store
        .write(&[served("0301", "101", 40), served("0301", "102", 3), served("0302", "101", 45)])
        .unwrap();
    drop(store);
    let text = format!(
        r#"
[system]
spool_dir = "{d}"
database = "{d}/cc.db"
realtime = false

[[card]]
name = "sim0"
driver = "sim"
fxs_ports = 1
  [card.sim]
  clock = "realtime"

[[extension]]
number = "2001"
port = "sim0/fxs1"

[[queue]]
number = "600"
name = "sales"

[[agent]]
id = "101"
pin = "1234"
name = "Ann"
queues = ["600"]

[[agent]]
id = "102"
pin = "5678"
name = "Bob"
queues = ["600"]

[[inbound]]
dnis = ["5000"]
destination = "queue:sales"
sticky_days = 30
"#,
        d = dir.path().display()
    );
    let cfg = Config::parse_str(&text, "sticky.toml").unwrap();
    let daemon = Daemon::start(&cfg, open_sim_card(&cfg, None).unwrap(), None).unwrap();
    let known = daemon
        .runtime()
        .query(|pbx, _| (pbx.last_agent("0301", "sales"), pbx.last_agent("0302", "sales")))
        .unwrap();
    daemon.stop().unwrap();
    // 0301's latest agent within 30 days is 102; 0302 was served too long ago.
    assert_eq!(known.0.map(|(a, _)| a).as_deref(), Some("102"));
    assert_eq!(known.1, None);
}
