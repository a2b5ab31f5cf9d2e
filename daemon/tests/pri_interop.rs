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

fn wait(name: &'static str, child: Child) -> Ran {
    wait_with(name, child, || std::thread::sleep(Duration::from_millis(50)))
}

/// As [`wait`], calling `while_running` (which should take about 50 ms) until the child exits.
fn wait_with(name: &'static str, mut child: Child, mut while_running: impl FnMut()) -> Ran {
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
        while_running();
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

// ----- through the daemon: a simulated span bound to the D-channel socket -----

/// A daemon configuration whose span 1 speaks `signalling` with its D-channel on `sock`:
/// 30 extensions 3001..3030 in hunt group 6000 (linear), route 0 out on the span.
fn daemon_config(signalling: &str, sock: &Path, restart: bool) -> String {
    let mut t = format!(
        r#"
[system]
name = "interop"

[[card]]
name = "sim0"
driver = "sim"
fxs_ports = 30
fxo_ports = 0
e1_spans = 1

[[span]]
card = "sim0"
span = 1
sim_peer_socket = "{}"

[[trunk_group]]
name = "isdn"
signalling = "{signalling}"
ports = ["sim0/span1"]
incoming = "6000"
restart_on_link_up = {restart}

[[route]]
prefix = "0"
trunk_group = "isdn"
strip = 1
min_digits = 3

[dialplan]
inter_digit_timeout_ms = 2000
"#,
        sock.display()
    );
    let members: Vec<String> = (1..=30).map(|n| format!("\"{}\"", 3000 + n)).collect();
    t.push_str(&format!(
        "\n[[hunt_group]]\nnumber = \"6000\"\nmembers = [{}]\n",
        members.join(", ")
    ));
    for n in 1..=30 {
        t.push_str(&format!(
            "\n[[extension]]\nnumber = \"{}\"\nport = \"sim0/fxs{n}\"\n",
            3000 + n
        ));
    }
    t
}

/// The daemon's call control on a simulated card paced by the real-time clock (the peer runs
/// in real time), its span listening on `sock`; phones answer after 200 ms.
fn daemon(
    signalling: &str,
    sock: &Path,
    restart: bool,
) -> cardpbx::runner::Stepped<cardpbx_sim::SimCard> {
    let text = daemon_config(signalling, sock, restart);
    let cfg = cardpbx::config::Config::parse_str(&text, "interop.toml").expect("valid config");
    let mut sc =
        cardpbx::service::sim_config(&cfg, &cfg.cards[0], Some(cardpbx_sim::ClockMode::RealTime));
    sc.phone.auto_answer_ms = Some(200);
    let card = cardpbx_sim::SimCard::new(sc).expect("card listens on the socket");
    cardpbx::runner::Stepped::new(card, &cfg, "sim0").expect("pbx")
}

fn link_up(p: &cardpbx::runner::Stepped<cardpbx_sim::SimCard>) -> bool {
    p.pbx().pri_span_info(cardpbx_hal::SpanId(1)).is_some_and(|i| i.link_up)
}

/// libpri places 30 simultaneous calls into the daemon; the daemon's extensions answer.
///
/// pri_peer places its calls the moment its data link is up and never retries, so a RESTART
/// from us crossing them would clear them (cause 44): the daemon runs without restart on link
/// up here, as it would towards such a peer.
fn daemon_answers_30(signalling: &str, peer_args: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("span1.sock");
    let mut p = daemon(signalling, &sock, false);
    let mut args = vec!["--call", "6000", "--calls", "30", "--hold", "2"];
    args.extend_from_slice(peer_args);
    let (name, child) = spawn("pri_peer", peer_cmd(&sock, "connect", &args));
    let peer = wait_with(name, child, || p.run_ms(50).expect("card runs"));
    assert_clean(&peer, all_ok(30, 30));
    assert!(p.pbx().counters().calls_completed >= 30, "{:?}", p.pbx().counters());
}

/// The daemon's extensions place 30 simultaneous calls out on the span to libpri.
fn daemon_places_30(signalling: &str, peer_args: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("span1.sock");
    let mut p = daemon(signalling, &sock, true);
    let mut args = vec!["--hold", "2", "--exit-after", "3"];
    args.extend_from_slice(peer_args);
    let (name, child) = spawn("pri_peer", peer_cmd(&sock, "connect", &args));
    assert!(p.run_until(10_000, link_up).unwrap(), "the D-channel comes up");
    // Let the restart we send on link up finish before calling.
    p.run_ms(1500).unwrap();
    for n in 1..=30 {
        assert!(p.card_mut().phone_mut(n).unwrap().off_hook());
    }
    p.run_ms(500).unwrap();
    for n in 1..=30 {
        p.card_mut().phone_mut(n).unwrap().dial(&format!("0555{n:04}")).unwrap();
    }
    let peer = wait_with(name, child, || p.run_ms(50).expect("card runs"));
    assert_clean(&peer, all_ok(30, 0));
}

/// (i) The daemon as user side (pri_cpe) answers 30 calls from libpri's network side.
#[test]
#[ignore = "needs pri_peer (libpri); run by .ci/interop"]
fn i_daemon_cpe_answers_30_calls_from_libpri_network() {
    daemon_answers_30("pri_cpe", &[]);
}

/// (j) The daemon as user side places 30 calls to libpri's network side.
#[test]
#[ignore = "needs pri_peer (libpri); run by .ci/interop"]
fn j_daemon_cpe_places_30_calls_to_libpri_network() {
    daemon_places_30("pri_cpe", &[]);
}

/// (k) The daemon as network side (pri_net) answers 30 calls from libpri's user side.
#[test]
#[ignore = "needs pri_peer (libpri); run by .ci/interop"]
fn k_daemon_net_answers_30_calls_from_libpri_cpe() {
    daemon_answers_30("pri_net", &["--cpe"]);
}

/// (l) The daemon as network side places 30 calls to libpri's user side.
#[test]
#[ignore = "needs pri_peer (libpri); run by .ci/interop"]
fn l_daemon_net_places_30_calls_to_libpri_cpe() {
    daemon_places_30("pri_net", &["--cpe"]);
}
