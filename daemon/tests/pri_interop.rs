//! Interoperability of our LAPD/Q.931 stack (through `cardpbx pri probe`) with libpri, the
//! stack Asterisk uses, through the reference peer `pri_peer` (`../shared/peers/`).
//!
//! The tests need `pri_peer` built against libpri: `.ci/interop` installs libpri, builds it
//! into `target/peers/` and runs them with `PRI_PEER` set. Each test runs the two programs
//! over a SOCK_SEQPACKET socket in a temporary directory and checks both summary lines.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long one side may run before the test gives up on it.
const RUN_LIMIT: Duration = Duration::from_secs(120);

fn pri_peer() -> PathBuf {
    let p = std::env::var_os("PRI_PEER")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/peers/pri_peer"));
    assert!(
        p.is_file(),
        "pri_peer not found at {} (build it with .ci/interop, or set PRI_PEER)",
        p.display()
    );
    p
}

fn probe() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_cardpbx"));
    c.args(["pri", "probe"]);
    c
}

struct Ran {
    name: &'static str,
    status: i32,
    stdout: String,
    stderr: String,
}

impl Ran {
    /// The numbers of the summary line (`pri_peer summary: ...` or `summary: ...`).
    fn summary(&self) -> Summary {
        let line = self
            .stdout
            .lines()
            .rev()
            .find(|l| l.contains("summary: placed="))
            .unwrap_or_else(|| panic!("{}: no summary line:\n{}", self.name, self.stdout));
        let field = |k: &str| -> u32 {
            let at = line.find(&format!("{k}=")).unwrap_or_else(|| panic!("{k} in {line}"));
            line[at + k.len() + 1..]
                .split(|c: char| !c.is_ascii_digit())
                .next()
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("{k} in {line}"))
        };
        Summary {
            placed: field("placed"),
            answered: field("answered"),
            completed: field("completed"),
            failed: field("failed"),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Summary {
    placed: u32,
    answered: u32,
    completed: u32,
    failed: u32,
}

fn spawn(name: &'static str, mut cmd: Command) -> (&'static str, Child) {
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let child = cmd.spawn().unwrap_or_else(|e| panic!("start {name}: {e}"));
    (name, child)
}

fn wait(name: &'static str, mut child: Child) -> Ran {
    let start = Instant::now();
    // Read the pipes on threads so a chatty child never blocks on a full pipe.
    let mut out = child.stdout.take().expect("piped");
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let mut err = child.stderr.take().expect("piped");
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let status = loop {
        if let Some(st) = child.try_wait().expect("wait") {
            break st;
        }
        if start.elapsed() > RUN_LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            let text = reader.join().unwrap_or_default();
            panic!("{name} still running after {RUN_LIMIT:?}:\n{text}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let stdout = reader.join().expect("reader");
    let stderr = err_reader.join().expect("reader");
    println!(
        "----- {name} (exit {:?}) -----\n{stdout}\n----- {name} stderr -----\n{stderr}",
        status.code()
    );
    Ran { name, status: status.code().unwrap_or(-1), stdout, stderr }
}

fn wait_for_socket(path: &Path) {
    let start = Instant::now();
    while !path.exists() {
        assert!(start.elapsed() < Duration::from_secs(10), "{} never appeared", path.display());
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Starts `listener` (which must create `sock`), then `connector`; waits for both.
fn run_pair(
    sock: &Path,
    listener: (&'static str, Command),
    connector: (&'static str, Command),
) -> (Ran, Ran) {
    let (ln, lc) = spawn(listener.0, listener.1);
    wait_for_socket(sock);
    let (cn, cc) = spawn(connector.0, connector.1);
    let c = wait(cn, cc);
    let l = wait(ln, lc);
    (l, c)
}

fn peer_cmd(sock: &Path, mode: &str, args: &[&str]) -> Command {
    let mut c = Command::new(pri_peer());
    c.arg(mode).arg(sock).args(args);
    c
}

fn probe_cmd(sock: &Path, args: &[&str]) -> Command {
    let mut c = probe();
    c.arg("--socket").arg(sock).args(args);
    c
}

fn all_ok(n: u32, placed: u32) -> Summary {
    Summary { placed, answered: n, completed: n, failed: 0 }
}

/// The summary is as wanted, the exit status 0, and libpri printed no complaint (it reports
/// protocol problems it sees in our messages on stderr).
fn assert_clean(r: &Ran, want: Summary) {
    assert_eq!(r.summary(), want, "{} summary:\n{}", r.name, r.stdout);
    assert_eq!(r.status, 0, "{} exit status:\n{}", r.name, r.stdout);
    let complaints: Vec<&str> = r
        .stderr
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with("listening on "))
        .collect();
    assert!(complaints.is_empty(), "{} complained:\n{}", r.name, complaints.join("\n"));
}

/// (a) libpri network side places 30 simultaneous calls to our user side and clears them.
#[test]
#[ignore = "needs pri_peer (libpri); run by .ci/interop"]
fn a_user_probe_answers_30_calls_from_libpri_network() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("d.sock");
    let (peer, ours) = run_pair(
        &sock,
        (
            "pri_peer",
            peer_cmd(&sock, "listen", &["--call", "5551234", "--calls", "30", "--hold", "2"]),
        ),
        ("probe", probe_cmd(&sock, &["--role", "user"])),
    );
    assert_clean(&peer, all_ok(30, 30));
    assert_clean(&ours, all_ok(30, 0));
}

/// (b) Our user side places 30 simultaneous calls to libpri's network side and clears them.
#[test]
#[ignore = "needs pri_peer (libpri); run by .ci/interop"]
fn b_user_probe_places_30_calls_to_libpri_network() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("d.sock");
    let (peer, ours) = run_pair(
        &sock,
        ("pri_peer", peer_cmd(&sock, "listen", &[])),
        (
            "probe",
            probe_cmd(
                &sock,
                &[
                    "--role",
                    "user",
                    "--restart",
                    "--call",
                    "5551234",
                    "--calls",
                    "30",
                    "--hold",
                    "2",
                ],
            ),
        ),
    );
    assert_clean(&ours, all_ok(30, 30));
    assert_clean(&peer, all_ok(30, 0));
}

/// (c) libpri user side (CPE) places 30 calls to our listening network side.
#[test]
#[ignore = "needs pri_peer (libpri); run by .ci/interop"]
fn c_network_probe_answers_30_calls_from_libpri_cpe() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("d.sock");
    let (ours, peer) = run_pair(
        &sock,
        ("probe", probe_cmd(&sock, &["--role", "network", "--listen"])),
        (
            "pri_peer",
            peer_cmd(
                &sock,
                "connect",
                &["--cpe", "--call", "5551234", "--calls", "30", "--hold", "2"],
            ),
        ),
    );
    assert_clean(&peer, all_ok(30, 30));
    assert_clean(&ours, all_ok(30, 0));
}

/// (d) Our network side places 30 calls (channels ascending) to libpri's user side.
#[test]
#[ignore = "needs pri_peer (libpri); run by .ci/interop"]
fn d_network_probe_places_30_calls_to_libpri_cpe() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("d.sock");
    let (ours, peer) = run_pair(
        &sock,
        (
            "probe",
            probe_cmd(
                &sock,
                &[
                    "--role",
                    "network",
                    "--listen",
                    "--restart",
                    "--call",
                    "4000",
                    "--calls",
                    "30",
                    "--hold",
                    "2",
                ],
            ),
        ),
        ("pri_peer", peer_cmd(&sock, "connect", &["--cpe"])),
    );
    assert_clean(&ours, all_ok(30, 30));
    assert_clean(&peer, all_ok(30, 0));
    // Channels were taken in ascending order: 1-15 then 17-31.
    for ch in [1, 15, 17, 31] {
        assert!(
            ours.stdout.contains(&format!("ch={ch} exclusive")),
            "channel {ch}:\n{}",
            ours.stdout
        );
    }
}

/// (e) libpri restarts every channel once the link is up (as network and as user side),
/// our side acknowledges, then the calls run.
#[test]
#[ignore = "needs pri_peer (libpri); run by .ci/interop"]
fn e_libpri_restart_then_calls() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("d.sock");
    let (peer, ours) = run_pair(
        &sock,
        (
            "pri_peer",
            peer_cmd(
                &sock,
                "listen",
                &["--restart", "--call", "5551234", "--calls", "30", "--hold", "2"],
            ),
        ),
        ("probe", probe_cmd(&sock, &["--role", "user"])),
    );
    assert_clean(&peer, all_ok(30, 30));
    assert_clean(&ours, all_ok(30, 0));
    let acks = peer
        .stdout
        .lines()
        .filter(|l| l.contains("RX") && l.contains("RESTART ACKNOWLEDGE"))
        .count();
    assert!(acks >= 30, "pri_peer got {acks} RESTART ACKNOWLEDGEs:\n{}", peer.stdout);

    let sock = dir.path().join("d2.sock");
    let (ours, peer) = run_pair(
        &sock,
        (
            "probe",
            probe_cmd(
                &sock,
                &[
                    "--role", "network", "--listen", "--call", "4000", "--calls", "30", "--hold",
                    "2",
                ],
            ),
        ),
        ("pri_peer", peer_cmd(&sock, "connect", &["--cpe", "--restart"])),
    );
    assert_clean(&ours, all_ok(30, 30));
    assert_clean(&peer, all_ok(30, 0));
    assert!(ours.stdout.contains("EV far end restarted channel"), "{}", ours.stdout);
}

/// (f) Calls cleared by whichever end holds them: our end clears (libpri does not), then
/// libpri clears (we do not), in both roles.
#[test]
#[ignore = "needs pri_peer (libpri); run by .ci/interop"]
fn f_disconnect_from_either_end() {
    let dir = tempfile::tempdir().unwrap();
    // We place and we clear; libpri network answers and never clears.
    let sock = dir.path().join("f1.sock");
    let (peer, ours) = run_pair(
        &sock,
        ("pri_peer", peer_cmd(&sock, "listen", &[])),
        (
            "probe",
            probe_cmd(&sock, &["--role", "user", "--call", "100", "--calls", "5", "--hold", "1"]),
        ),
    );
    assert_clean(&ours, all_ok(5, 5));
    assert_clean(&peer, all_ok(5, 0));
    assert!(ours.stdout.contains("TX DISCONNECT"), "{}", ours.stdout);
    assert!(!ours.stdout.contains("RX DISCONNECT"), "{}", ours.stdout);

    // We place as network side; libpri user side answers and clears.
    let sock = dir.path().join("f2.sock");
    let (ours, peer) = run_pair(
        &sock,
        (
            "probe",
            probe_cmd(&sock, &["--role", "network", "--listen", "--call", "100", "--calls", "5"]),
        ),
        ("pri_peer", peer_cmd(&sock, "connect", &["--cpe", "--hold", "1"])),
    );
    assert_clean(&ours, all_ok(5, 5));
    assert_clean(&peer, all_ok(5, 0));
    assert!(ours.stdout.contains("RX DISCONNECT"), "{}", ours.stdout);
    assert!(!ours.stdout.contains("TX DISCONNECT"), "{}", ours.stdout);

    // libpri user side places; we (network) clear.
    let sock = dir.path().join("f3.sock");
    let (ours, peer) = run_pair(
        &sock,
        ("probe", probe_cmd(&sock, &["--role", "network", "--listen", "--hold", "1"])),
        ("pri_peer", peer_cmd(&sock, "connect", &["--cpe", "--call", "200", "--calls", "5"])),
    );
    assert_clean(&peer, all_ok(5, 5));
    assert_clean(&ours, all_ok(5, 0));
    assert!(ours.stdout.contains("TX DISCONNECT"), "{}", ours.stdout);
}

/// (g) libpri refuses every call with cause 17 (user busy): our calls fail with that cause.
#[test]
#[ignore = "needs pri_peer (libpri); run by .ci/interop"]
fn g_rejected_calls_report_the_cause() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("d.sock");
    let (peer, ours) = run_pair(
        &sock,
        ("pri_peer", peer_cmd(&sock, "listen", &["--reject", "17"])),
        ("probe", probe_cmd(&sock, &["--role", "user", "--call", "123", "--calls", "3"])),
    );
    assert_eq!(
        ours.summary(),
        Summary { placed: 3, answered: 0, completed: 0, failed: 3 },
        "{}",
        ours.stdout
    );
    assert_ne!(ours.status, 0, "a refused call is a failure");
    let busy =
        ours.stdout.lines().filter(|l| l.contains("EV released") && l.contains("cause 17")).count();
    assert_eq!(busy, 3, "{}", ours.stdout);
    assert_eq!(peer.status, 0, "pri_peer rejected every call:\n{}", peer.stdout);
}

/// Our capture of a libpri session decodes in tshark without malformed packets.
#[test]
#[ignore = "needs pri_peer (libpri) and tshark; run by .ci/interop"]
fn h_probe_capture_decodes_in_tshark() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("d.sock");
    let pcap = dir.path().join("probe.pcap");
    let pcap_s = pcap.to_str().unwrap().to_string();
    let (_peer, ours) = run_pair(
        &sock,
        ("pri_peer", peer_cmd(&sock, "listen", &[])),
        (
            "probe",
            probe_cmd(
                &sock,
                &["--role", "user", "--call", "123", "--hold", "1", "--pcap", &pcap_s],
            ),
        ),
    );
    assert_eq!(ours.status, 0, "{}", ours.stdout);
    let out = Command::new("tshark").arg("-r").arg(&pcap).arg("-V").output().expect("run tshark");
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!text.contains("Malformed"), "{text}");
    for m in ["SETUP (0x05)", "CONNECT (0x07)", "DISCONNECT (0x45)", "RELEASE COMPLETE (0x5a)"] {
        assert!(text.contains(&format!("Message type: {m}")), "no {m}:\n{text}");
    }
}
