//! Tests of the control protocol, server, client and CLI over real sockets in a temporary
//! directory, with a fake daemon control loop answering on the request channel.

use super::cli::*;
use super::proto::*;
use super::*;
use clap::{CommandFactory, Parser};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};

fn status() -> StatusData {
    StatusData {
        name: "Test box".into(),
        version: "0.1.0".into(),
        uptime_s: 3723.0,
        ticks: 3_723_000,
        calls_active: 2,
        calls_total: 17,
        engine: EngineSummary { ticks: 3_723_000, p50_ns: 12_000, ..EngineSummary::default() },
        realtime: "SCHED_FIFO 50, memory locked".into(),
    }
}

/// A fake daemon: answers ping, status, cards and calls; refuses the rest.
fn fake_daemon() -> (CtlRequests, std::thread::JoinHandle<usize>) {
    let (tx, rx) = crossbeam_channel::unbounded::<CtlEnvelope>();
    let handle = std::thread::spawn(move || {
        let mut served = 0;
        for (req, reply) in rx {
            served += 1;
            let resp = match req {
                CtlRequest::Ping => {
                    CtlResponse::Ok(CtlData::Ping(PingData { pong: true, version: "0.1.0".into() }))
                }
                CtlRequest::Status => CtlResponse::Ok(CtlData::Status(status())),
                CtlRequest::Cards => CtlResponse::Ok(CtlData::Cards(vec![CardData {
                    name: "sim0".into(),
                    driver: "sim".into(),
                    model: "cardpbx simulator".into(),
                    fxs: 8,
                    fxo: 4,
                    spans: 0,
                }])),
                CtlRequest::Calls => CtlResponse::Ok(CtlData::Calls(vec![CallData {
                    id: 7,
                    from: "2001".into(),
                    to: "2002".into(),
                    state: "connected".into(),
                    a_port: "sim0/fxs1".into(),
                    b_port: Some("sim0/fxs2".into()),
                    started_tick: 1000,
                    answered_tick: Some(3000),
                    duration_s: 65.0,
                }])),
                other => CtlResponse::Error(format!("{} is not available", other.name())),
            };
            let _ = reply.send(resp);
        }
        served
    });
    (tx, handle)
}

struct Fixture {
    _dir: tempfile::TempDir,
    path: PathBuf,
    server: Option<CtlServer>,
    daemon: Option<std::thread::JoinHandle<usize>>,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run").join("cardpbx.sock");
        let mut server = CtlServer::bind(&path).unwrap();
        let (tx, daemon) = fake_daemon();
        server.serve(tx).unwrap();
        Fixture { _dir: dir, path, server: Some(server), daemon: Some(daemon) }
    }

    fn client(&self) -> CtlClient {
        CtlClient::connect(&self.path).unwrap()
    }

    /// Shut the server down and return how many requests the fake daemon served.
    fn finish(mut self) -> usize {
        self.server.take().unwrap().shutdown();
        assert!(!self.path.exists(), "shutdown removes the socket file");
        self.daemon.take().unwrap().join().unwrap()
    }
}

fn error_of(answer: &str) -> String {
    let v: serde_json::Value = serde_json::from_str(answer).unwrap();
    assert_eq!(v["ok"], false, "{answer}");
    v["error"].as_str().unwrap().to_string()
}

#[test]
fn request_lines_round_trip() {
    for req in CtlRequest::ALL {
        assert_eq!(CtlRequest::parse_line(req.to_line().trim_end()), Ok(req.clone()));
        let json = serde_json::to_string(&req).unwrap();
        if !req.takes_fields() {
            assert_eq!(json, format!("{{\"cmd\":\"{}\"}}", req.name()));
        }
    }
    let line = CtlResponse::Ok(CtlData::Status(status())).to_line();
    assert!(line.starts_with("{\"ok\":true,\"data\":{\"name\":\"Test box\""), "{line}");
    assert_eq!(
        CtlResponse::parse_line(CtlRequest::Status, &line).unwrap(),
        CtlResponse::Ok(CtlData::Status(status()))
    );
    let line = CtlResponse::Error("nope".into()).to_line();
    assert_eq!(line, "{\"ok\":false,\"error\":\"nope\"}\n");
    assert!(CtlResponse::parse_line(CtlRequest::Cards, "{\"ok\":true,\"data\":{\"x\":1}}")
        .unwrap_err()
        .contains("unexpected cards data"));
}

#[test]
fn bad_requests_are_explained() {
    let cases = [
        ("hello", "not valid JSON"),
        ("[1,2]", "must be a JSON object"),
        ("{}", "no \"cmd\" field"),
        ("{\"cmd\":5}", "\"cmd\" must be a string"),
        ("{\"cmd\":\"reboot\"}", "unknown command \"reboot\" (commands: ping, status"),
        ("{\"cmd\":\"status\",\"x\":1}", "takes no field \"x\""),
    ];
    for (line, needle) in cases {
        let e = CtlRequest::parse_line(line).unwrap_err();
        assert!(e.contains(needle), "{line}: {e}");
    }
}

#[test]
fn server_answers_requests_over_the_socket() {
    let fx = Fixture::new();
    let mode = std::fs::metadata(&fx.path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o660);
    let mut c = fx.client();
    assert_eq!(
        c.request(CtlRequest::Ping).unwrap(),
        CtlData::Ping(PingData { pong: true, version: "0.1.0".into() })
    );
    assert_eq!(c.request(CtlRequest::Status).unwrap(), CtlData::Status(status()));
    match c.request(CtlRequest::Spans) {
        Err(ClientError::Daemon(e)) => assert_eq!(e, "spans is not available"),
        other => panic!("{other:?}"),
    }
    // A second client at the same time.
    let mut c2 = fx.client();
    assert!(matches!(c2.request(CtlRequest::Cards).unwrap(), CtlData::Cards(v) if v.len() == 1));
    assert!(matches!(c.request(CtlRequest::Ping), Ok(CtlData::Ping(_))));
    drop((c, c2));
    assert_eq!(fx.finish(), 5);
}

#[test]
fn garbage_gets_an_error_and_the_connection_keeps_working() {
    let fx = Fixture::new();
    let mut c = fx.client();
    assert!(error_of(&c.request_line("this is not json").unwrap()).contains("not valid JSON"));
    assert!(error_of(&c.request_line("{\"cmd\":\"explode\"}").unwrap())
        .contains("unknown command \"explode\""));
    // Blank lines are ignored rather than answered.
    c.send_raw(b"\n\n").unwrap();
    // Invalid UTF-8.
    c.send_raw(b"{\"cmd\":\"st\xffatus\"}\n").unwrap();
    assert!(error_of(&c.read_answer().unwrap()).contains("not valid UTF-8"));
    // An over-long line is read to its end, refused, and the next request works.
    let mut long = vec![b'x'; MAX_LINE + 10];
    long.push(b'\n');
    c.send_raw(&long).unwrap();
    assert_eq!(
        error_of(&c.read_answer().unwrap()),
        format!("request line longer than {MAX_LINE} bytes")
    );
    // A line of exactly MAX_LINE bytes is accepted.
    let mut edge = vec![b' '; MAX_LINE - 14];
    edge.extend_from_slice(b"{\"cmd\":\"ping\"}\n");
    assert_eq!(edge.len(), MAX_LINE + 1);
    c.send_raw(&edge).unwrap();
    assert!(c.read_answer().unwrap().starts_with("{\"ok\":true"));
    assert!(matches!(c.request(CtlRequest::Status), Ok(CtlData::Status(_))));
    drop(c);
    fx.finish();
}

#[test]
fn a_client_that_leaves_mid_request_is_harmless() {
    let fx = Fixture::new();
    let mut c = fx.client();
    c.send_raw(b"{\"cmd\":\"sta").unwrap();
    drop(c);
    let mut c = fx.client();
    c.send_raw(&vec![b'y'; MAX_LINE * 2]).unwrap();
    drop(c);
    let mut c = fx.client();
    assert!(matches!(c.request(CtlRequest::Ping), Ok(CtlData::Ping(_))));
    drop(c);
    // Only the complete request reached the daemon: the unterminated fragment and the endless
    // line were refused by the server itself.
    assert_eq!(fx.finish(), 1);
}

#[test]
fn bind_refuses_a_running_daemon_and_replaces_a_stale_socket() {
    let fx = Fixture::new();
    match CtlServer::bind(&fx.path) {
        Err(ServerError::AlreadyRunning(p)) => assert_eq!(p, fx.path),
        Err(e) => panic!("{e}"),
        Ok(_) => panic!("second bind succeeded"),
    }
    // The refused bind left the running server's socket alone.
    assert!(matches!(fx.client().request(CtlRequest::Ping), Ok(CtlData::Ping(_))));
    fx.finish();

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("stale.sock");
    drop(UnixListener::bind(&path).unwrap());
    assert!(path.exists());
    let err = CtlClient::connect(&path).err().unwrap();
    assert!(matches!(err, ClientError::Stale(_)));
    assert_eq!(
        err.to_string(),
        format!(
            "socket {} exists but nothing answers (stale): the daemon is not running",
            path.display()
        )
    );
    let mut server = CtlServer::bind(&path).unwrap();
    let (tx, _daemon) = fake_daemon();
    server.serve(tx).unwrap();
    assert!(matches!(
        CtlClient::connect(&path).unwrap().request(CtlRequest::Ping),
        Ok(CtlData::Ping(_))
    ));

    let file = dir.path().join("plain");
    std::fs::write(&file, "x").unwrap();
    assert!(matches!(CtlServer::bind(&file), Err(ServerError::NotASocket(_))));
    assert!(file.exists(), "a non-socket file is never removed");
}

#[test]
fn client_errors_name_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("none.sock");
    let err = CtlClient::connect(&path).err().unwrap();
    assert!(err.is_unreachable());
    assert_eq!(
        err.to_string(),
        format!("cardpbx daemon is not running (no socket at {})", path.display())
    );
    let err = ClientError::PermissionDenied { path: path.clone(), group: "cardpbx".into() };
    assert!(err.to_string().contains("add yourself to group cardpbx"));
}

#[test]
fn requests_fail_cleanly_when_the_daemon_loop_is_gone() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("d.sock");
    let mut server = CtlServer::bind(&path).unwrap();
    let (tx, rx) = crossbeam_channel::unbounded::<CtlEnvelope>();
    drop(rx);
    server.serve(tx).unwrap();
    let mut c = CtlClient::connect(&path).unwrap();
    match c.request(CtlRequest::Status) {
        Err(ClientError::Daemon(e)) => assert_eq!(e, "the daemon is shutting down"),
        other => panic!("{other:?}"),
    }
}

fn run(cmd: Command, socket: &Path) -> (i32, String, String) {
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = run_client_command_to(&cmd, socket, &mut out, &mut err).unwrap();
    (code, String::from_utf8(out).unwrap(), String::from_utf8(err).unwrap())
}

#[test]
fn cli_renders_tables_and_json() {
    let fx = Fixture::new();
    let (code, out, _) = run(Command::Status { json: false }, &fx.path);
    assert_eq!(code, EXIT_OK);
    assert!(out.contains("name        Test box\n"), "{out}");
    assert!(out.contains("uptime      1h 02m 03s\n"), "{out}");
    assert!(out.contains("calls       2 active, 17 total\n"), "{out}");
    assert!(out.contains("p50 12.0 µs"), "{out}");

    let (_, out, _) = run(Command::Cards { json: false }, &fx.path);
    assert_eq!(
        out,
        "CARD  DRIVER  MODEL              FXS  FXO  SPANS\n\
         sim0  sim     cardpbx simulator  8    4    0\n"
    );
    let (_, out, _) = run(Command::Calls { json: false }, &fx.path);
    assert_eq!(
        out,
        "ID  FROM  TO    STATE      A PORT     B PORT     DURATION\n\
         7   2001  2002  connected  sim0/fxs1  sim0/fxs2  1m 05s\n"
    );
    let (code, out, _) = run(Command::Cards { json: true }, &fx.path);
    assert_eq!(code, EXIT_OK);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v[0]["name"], "sim0");
    assert_eq!(v[0]["fxs"], 8);

    let (code, out, err) = run(Command::Spans { json: false }, &fx.path);
    assert_eq!((code, out.as_str()), (EXIT_FAILED, ""));
    assert_eq!(err, "cardpbx: daemon: spans is not available\n");
    fx.finish();
}

#[test]
fn cli_reports_a_missing_daemon_with_exit_code_3() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("none.sock");
    let (code, out, err) = run(Command::Status { json: false }, &path);
    assert_eq!(code, EXIT_UNREACHABLE);
    assert!(out.is_empty());
    assert!(err.starts_with("cardpbx: cardpbx daemon is not running (no socket at "), "{err}");
}

#[test]
fn cli_config_check() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("demo.toml");
    std::fs::write(&good, include_str!("../../config/demo.toml")).unwrap();
    let (code, out, err) =
        run(Command::Config(ConfigCmd::Check { file: good.clone() }), Path::new("/x"));
    assert_eq!(code, EXIT_OK, "{err}");
    assert_eq!(
        out,
        format!(
            "{}: OK (1 card, 12 analog ports, 1 E1 span, 8 extensions, 1 hunt group, \
             2 trunk groups, 2 routes)\n",
            good.display()
        )
    );
    let bad = dir.path().join("bad.toml");
    let text = include_str!("../../config/demo.toml")
        .replace("port = \"sim0/fxs2\"", "port = \"sim9/fxs2\"")
        .replace("incoming = \"6000\"", "incoming = \"6001\"");
    std::fs::write(&bad, text).unwrap();
    let (code, out, err) =
        run(Command::Config(ConfigCmd::Check { file: bad.clone() }), Path::new("/x"));
    assert_eq!(code, EXIT_FAILED);
    assert!(out.is_empty());
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 4, "{err}");
    assert!(lines[0].contains("extension[1].port: card \"sim9\" does not exist (cards: sim0)"));
    assert!(lines[1].contains("trunk_group[0].incoming"));
    assert!(lines[2].contains("trunk_group[1].incoming"));
    assert_eq!(lines[3], format!("{}: 3 errors", bad.display()));
}

#[test]
fn cli_arguments_parse() {
    Cli::command().debug_assert();
    let cli = Cli::try_parse_from(["cardpbx", "status", "--json", "--socket", "/s"]).unwrap();
    assert_eq!(cli.cmd, Command::Status { json: true });
    assert_eq!(cli.socket.as_deref(), Some(Path::new("/s")));
    assert_eq!(resolve_socket(cli.socket.as_deref()), PathBuf::from("/s"));
    let cli = Cli::try_parse_from(["cardpbx", "bench", "engine"]).unwrap();
    assert_eq!(
        cli.cmd,
        Command::Bench(BenchCmd::Engine { channels: 1000, seconds: 10.0, json: false })
    );
    let cli = Cli::try_parse_from(["cardpbx", "config", "check", "a.toml"]).unwrap();
    assert_eq!(cli.cmd, Command::Config(ConfigCmd::Check { file: "a.toml".into() }));
    assert!(cli.cmd.is_client_command());
    let cli = Cli::try_parse_from(["cardpbx", "demo", "--duration", "2.5", "--seed", "9"]).unwrap();
    assert_eq!(
        cli.cmd,
        Command::Demo { duration: Some(2.5), json: false, config: None, seed: Some(9) }
    );
    assert!(!cli.cmd.is_client_command());
    let cli = Cli::try_parse_from(["cardpbx", "daemon", "-c", "/etc/cardpbx.toml"]).unwrap();
    assert_eq!(cli.cmd, Command::Daemon { config: "/etc/cardpbx.toml".into() });
    assert!(Cli::try_parse_from(["cardpbx", "daemon"]).is_err());
    assert!(Cli::try_parse_from(["cardpbx", "frobnicate"]).is_err());
}

// ----- config_file, reload and `cardpbx trunk` -----

const TRUNK_CONF: &str = r#"# test box
[system]
name = "t"

[[card]]
name = "sim0"
driver = "sim"
fxs_ports = 2
fxo_ports = 3

[[extension]]
number = "2001"
port = "sim0/fxs1"

# Lines to the exchange.
[[trunk_group]]
name = "pstn"      # main lines
ports = ["sim0/fxo1", "sim0/fxo2"]
incoming = "2001"

[[route]]
prefix = "9"
trunk_group = "pstn"
"#;

fn reload_data(file: &str) -> ReloadData {
    ReloadData {
        file: file.into(),
        report: crate::pbx::ReconfigReport {
            changed: vec!["pstn".into()],
            draining: vec!["sim0/fxo1".into()],
            routes: 1,
            ..Default::default()
        },
    }
}

/// A fake daemon started with `file`: answers config_file, reload, ports and calls, and
/// counts reloads.
fn trunk_daemon(file: PathBuf) -> (CtlServer, PathBuf, std::thread::JoinHandle<usize>) {
    let dir = file.parent().unwrap().join("run");
    let path = dir.join("cardpbx.sock");
    let mut server = CtlServer::bind(&path).unwrap();
    let (tx, rx) = crossbeam_channel::unbounded::<CtlEnvelope>();
    server.serve(tx).unwrap();
    let handle = std::thread::spawn(move || {
        let mut reloads = 0;
        for (req, reply) in rx {
            let resp = match req {
                CtlRequest::ConfigFile => CtlResponse::Ok(CtlData::ConfigFile(ConfigFileData {
                    path: file.display().to_string(),
                })),
                CtlRequest::Reload => {
                    reloads += 1;
                    CtlResponse::Ok(CtlData::Reload(reload_data(&file.display().to_string())))
                }
                CtlRequest::Ports => CtlResponse::Ok(CtlData::Ports(
                    [("sim0/fxo1", "connected"), ("sim0/fxo2", "idle")]
                        .iter()
                        .map(|(p, s)| PortData {
                            port: p.to_string(),
                            kind: crate::config::PortKind::Fxo,
                            state: s.to_string(),
                            extension: None,
                            trunk_group: Some("pstn".into()),
                        })
                        .collect(),
                )),
                CtlRequest::Calls => CtlResponse::Ok(CtlData::Calls(vec![CallData {
                    id: 3,
                    from: "2001".into(),
                    to: "95551234".into(),
                    state: "connected".into(),
                    a_port: "sim0/fxs1".into(),
                    b_port: Some("sim0/fxo1".into()),
                    started_tick: 0,
                    answered_tick: Some(100),
                    duration_s: 12.0,
                }])),
                other => CtlResponse::Error(format!("{} is not available", other.name())),
            };
            let _ = reply.send(resp);
        }
        reloads
    });
    (server, path, handle)
}

#[test]
fn reload_and_config_file_answers_round_trip() {
    let line = CtlResponse::Ok(CtlData::Reload(reload_data("/etc/c.toml"))).to_line();
    assert!(line.contains("\"file\":\"/etc/c.toml\",\"added\":[]"), "flattened report: {line}");
    assert_eq!(
        CtlResponse::parse_line(CtlRequest::Reload, &line).unwrap(),
        CtlResponse::Ok(CtlData::Reload(reload_data("/etc/c.toml")))
    );
    let d = CtlData::ConfigFile(ConfigFileData { path: "/x.toml".into() });
    let line = CtlResponse::Ok(d.clone()).to_line();
    assert_eq!(CtlResponse::parse_line(CtlRequest::ConfigFile, &line).unwrap(), CtlResponse::Ok(d));
    assert_eq!(CtlRequest::parse_line("{\"cmd\":\"reload\"}"), Ok(CtlRequest::Reload));
}

#[test]
fn trunk_commands_edit_the_file_and_reload_the_daemon_that_runs_it() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("cardpbx.toml");
    std::fs::write(&file, TRUNK_CONF).unwrap();
    let (server, sock, daemon) = trunk_daemon(file.clone());
    let trunk = |args: &[&str]| {
        let mut argv = vec!["cardpbx", "trunk"];
        argv.extend_from_slice(args);
        let cli = Cli::try_parse_from(argv).unwrap();
        run(cli.cmd, &sock)
    };

    // list/show take the file from the daemon and add the live state.
    let (code, out, err) = trunk(&["list"]);
    assert_eq!(code, EXIT_OK, "{err}");
    assert_eq!(
        out,
        "NAME  SIGNALLING  PORTS                CHANNELS  HUNT       INCOMING  IN USE\n\
         pstn  fxo         sim0/fxo1,sim0/fxo2  -         ascending  2001      1/2\n"
    );
    let (_, out, _) = trunk(&["show", "pstn"]);
    assert!(out.contains("lines in use: 1 of 2\n"), "{out}");
    assert!(out.contains("sim0/fxo1  connected  #3 2001 -> 95551234 (connected)"), "{out}");
    let (_, out, _) = trunk(&["show", "pstn", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["live"]["in_use"], 1);
    assert_eq!(v["ports"][1], "sim0/fxo2");

    // set: the file changes (comments kept), the daemon reloads.
    let (code, out, err) = trunk(&["set", "pstn", "hunt=round-robin"]);
    assert_eq!(code, EXIT_OK, "{err}");
    assert!(out.starts_with("trunk group \"pstn\" changed in "), "{out}");
    assert!(out.contains("finishing their call first: sim0/fxo1"), "{out}");
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.contains("name = \"pstn\"      # main lines\n"), "{text}");
    assert!(text.contains("hunt = \"round_robin\""), "{text}");

    // add with options, --json.
    let (code, out, err) =
        trunk(&["add", "spare", "--signalling", "fxo", "--ports", "sim0/fxo3", "--json"]);
    assert_eq!(code, EXIT_OK, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["action"], "added");
    assert_eq!(v["reload"]["changed"][0], "pstn");

    // Refusals: the loader's message, the route, a bad key; the file stays.
    let before = std::fs::read_to_string(&file).unwrap();
    let (code, _, err) = trunk(&["set", "spare", "ports=sim0/fxo9"]);
    assert_eq!(code, EXIT_FAILED);
    assert!(
        err.contains("trunk_group[1].ports[0]") && err.contains("fxo9 does not exist"),
        "{err}"
    );
    let (code, _, err) = trunk(&["remove", "pstn"]);
    assert_eq!(code, EXIT_FAILED);
    assert!(err.contains("used by route with prefix 9"), "{err}");
    let (code, _, err) = trunk(&["set", "spare", "colour=red"]);
    assert_eq!(code, EXIT_USAGE);
    assert!(err.contains("unknown trunk group setting \"colour\""), "{err}");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), before);

    let (code, _, err) = trunk(&["remove", "spare"]);
    assert_eq!(code, EXIT_OK, "{err}");
    server.shutdown();
    assert_eq!(daemon.join().unwrap(), 3, "set, add and remove reloaded");
}

#[test]
fn trunk_commands_without_a_daemon_need_config() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("c.toml");
    std::fs::write(&file, TRUNK_CONF).unwrap();
    let sock = dir.path().join("none.sock");
    let cli = Cli::try_parse_from(["cardpbx", "trunk", "list"]).unwrap();
    let (code, _, err) = run(cli.cmd, &sock);
    assert_eq!(code, EXIT_UNREACHABLE);
    assert!(err.contains("Give --config FILE"), "{err}");
    let f = file.to_str().unwrap();
    let cli = Cli::try_parse_from(["cardpbx", "trunk", "list", "--config", f]).unwrap();
    let (code, out, _) = run(cli.cmd, &sock);
    assert_eq!(code, EXIT_OK);
    assert!(out.contains("(daemon not running)"), "{out}");
    let cli =
        Cli::try_parse_from(["cardpbx", "trunk", "set", "pstn", "incoming=", "-c", f]).unwrap();
    let (code, out, _) = run(cli.cmd, &sock);
    assert_eq!(code, EXIT_OK);
    assert!(out.contains("the daemon is not running: the change takes effect when it starts"));
    assert!(!std::fs::read_to_string(&file).unwrap().contains("incoming"));
}
