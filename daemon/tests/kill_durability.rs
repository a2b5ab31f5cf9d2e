//! Killing the daemon (SIGKILL, no chance to clean up) in the middle of traffic loses nothing of
//! the calls that had ended: their CDRs are in the store, the store is intact, and their
//! recordings are complete, playable WAV files of the recorded length.
//!
//! The run is `cardpbx demo` (the daemon on the simulated card with generated traffic) as a
//! child process, with a database file and every extension recording. A client follows the
//! event stream; once several calls have ended and the store shows their rows (the writer
//! commits as records arrive, it does not wait for shutdown), the process is killed while other
//! calls are still talking.

use cardpbx::ctl::client::CtlClient;
use cardpbx::ctl::proto::{CtlData, CtlRequest};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The calls that must have ended before the kill.
const ENDED: usize = 4;

fn config(dir: &Path) -> String {
    let demo = cardpbx::demo::DEMO_CONFIG;
    let system = format!(
        "[system]\nspool_dir = \"{d}\"\ndatabase = \"{d}/cdr.db\"\ncontrol_socket = \"{d}/ctl.sock\"\nrealtime = false\n",
        d = dir.display()
    );
    let mut text = demo.replacen("[system]\n", &system, 1);
    for n in 1..=8 {
        let port = format!("port = \"sim0/fxs{n}\"\n");
        text = text.replacen(&port, &format!("{port}recording = \"always\"\n"), 1);
    }
    text
}

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Wait for the socket, then follow events until `ENDED` answered calls have ended; their ids.
fn ended_calls(socket: &Path) -> Vec<u64> {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut client = loop {
        match CtlClient::connect(socket) {
            Ok(c) => break c,
            Err(e) => {
                assert!(Instant::now() < deadline, "the daemon's socket never answered: {e}");
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    };
    let mut answered = BTreeSet::new();
    let mut ended = Vec::new();
    client
        .follow(CtlRequest::Events, |data| {
            let CtlData::Event(v) = data else { return Ok(true) };
            let call = v["data"]["call"].as_u64();
            match (v["event"].as_str(), call) {
                (Some("call_state"), Some(c)) if v["data"]["state"] == "connected" => {
                    answered.insert(c);
                }
                (Some("call_ended"), Some(c)) if answered.contains(&c) => ended.push(c),
                _ => {}
            }
            Ok(ended.len() < ENDED)
        })
        .expect("following the events");
    ended
}

fn db_calls(db: &Path, calls: &[u64]) -> (usize, usize) {
    let Ok(conn) = rusqlite::Connection::open_with_flags(
        db,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    ) else {
        return (0, 0);
    };
    let count = |table: &str| -> usize {
        calls
            .iter()
            .filter(|c| {
                conn.query_row(
                    &format!("SELECT count(*) FROM {table} WHERE call_id = ?1"),
                    [**c as i64],
                    |r| r.get::<_, i64>(0),
                )
                .is_ok_and(|n| n > 0)
            })
            .count()
    };
    (count("cdr"), count("recordings"))
}

#[test]
fn sigkill_mid_run_keeps_every_ended_call_and_its_recording() {
    let dir = tempfile::tempdir().unwrap();
    let cfg_path = dir.path().join("kill.toml");
    std::fs::write(&cfg_path, config(dir.path())).unwrap();
    let log = std::fs::File::create(dir.path().join("demo.log")).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_cardpbx"))
        .args(["demo", "--json", "--duration", "600", "--config"])
        .arg(&cfg_path)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    let mut child = Killed(child);
    let ended = ended_calls(&dir.path().join("ctl.sock"));
    let db: PathBuf = dir.path().join("cdr.db");
    // The writer commits as records arrive: wait for these calls' rows to be visible.
    let deadline = Instant::now() + Duration::from_secs(60);
    while db_calls(&db, &ended) != (ENDED, ENDED) {
        assert!(
            Instant::now() < deadline,
            "rows of {ended:?} not in the store: {:?}",
            db_calls(&db, &ended)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // Mid-run: other calls are talking and being recorded now.
    child.0.kill().unwrap();
    let status = child.0.wait().unwrap();
    assert!(!status.success(), "the daemon was killed, not stopped: {status:?}");

    // The store opens (as the daemon would on restart) and is intact.
    let conn = rusqlite::Connection::open(&db).unwrap();
    let check: String = conn.query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap();
    assert_eq!(check, "ok");
    drop(conn);
    let store = cardpbx::store::Store::open(&db).expect("the store opens after a kill");
    drop(store);
    assert_eq!(db_calls(&db, &ended), (ENDED, ENDED));

    // Each ended call's recording is a complete WAV of the recorded length.
    let conn = rusqlite::Connection::open(&db).unwrap();
    for call in &ended {
        let (file, duration_ms, channels): (String, i64, i64) = conn
            .query_row(
                "SELECT file, duration_ms, channels FROM recordings WHERE call_id = ?1",
                [*call as i64],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .unwrap();
        let mut wav = hound::WavReader::open(&file)
            .unwrap_or_else(|e| panic!("call {call}: {file} is not a playable WAV: {e}"));
        let spec = wav.spec();
        assert_eq!((spec.sample_rate, i64::from(spec.channels)), (8000, channels), "{file}");
        let frames = wav.duration();
        let samples: Vec<i16> =
            wav.samples::<i16>().map(|s| s.expect("every sample reads")).collect();
        let samples = samples.len();
        assert_eq!(samples as u64, u64::from(frames) * u64::from(spec.channels), "{file}");
        let ms = i64::from(frames) / 8;
        assert!(
            (ms - duration_ms).abs() <= 100,
            "call {call}: {ms} ms in {file}, {duration_ms} ms indexed"
        );
        assert!(ms > 0, "call {call}: empty recording");
    }
}
