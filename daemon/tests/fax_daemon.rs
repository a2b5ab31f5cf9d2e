//! `cardpbx fax send --to` against a running daemon (real-time runner, fax worker thread,
//! control socket): the request reaches call control, which queues the job or says why not.

use cardpbx::config::Config;
use cardpbx::faxcli::{FaxCmd, LinkArgs};
use cardpbx::service::{open_sim_card, Daemon};
use cardpbx_dsp::fax::t4::{Bitmap, Coding};
use cardpbx_dsp::fax::tiff::{write_tiff, FaxPage, WriteOptions};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

fn config(dir: &Path) -> String {
    format!(
        r#"
[system]
name = "fax-daemon"
spool_dir = "{d}"
control_socket = "{d}/ctl.sock"
realtime = false

[[card]]
name = "sim0"
driver = "sim"
fxs_ports = 1
fxo_ports = 0
e1_spans = 1
  [card.sim]
  clock = "realtime"

[[extension]]
number = "2001"
port = "sim0/fxs1"

[[trunk_group]]
name = "isdn"
signalling = "pri_cpe"
ports = ["sim0/span1"]
incoming = "2001"

[[route]]
prefix = "0"
trunk_group = "isdn"
strip = 1
min_digits = 3
"#,
        d = dir.display()
    )
}

fn send(file: &Path, to: &str, socket: &Path) -> (i32, String, String) {
    let cmd = FaxCmd::Send {
        file: file.to_path_buf(),
        to: Some(to.into()),
        retries: Some(0),
        group: None,
        link: LinkArgs { input: PathBuf::new(), output: PathBuf::new(), ..link_defaults() },
    };
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = cardpbx::faxsvc::cli::run_with(&cmd, socket, &mut out, &mut err).unwrap();
    (code, String::from_utf8(out).unwrap(), String::from_utf8(err).unwrap())
}

fn link_defaults() -> LinkArgs {
    use clap::Parser;
    #[derive(Parser)]
    struct P {
        #[command(flatten)]
        link: LinkArgs,
    }
    P::parse_from(["p"]).link
}

#[test]
fn fax_send_to_reaches_the_daemon() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = Config::parse_str(&config(dir.path()), "fax.toml").unwrap();
    let doc = dir.path().join("order.tif");
    let page = FaxPage::new(Bitmap::new(1728, 40), false);
    let opts = WriteOptions { coding: Coding::Mh, ..WriteOptions::default() };
    std::fs::write(&doc, write_tiff(&[page.clone(), page], &opts)).unwrap();
    let ctl = Daemon::bind_socket(&cfg).unwrap();
    let card = open_sim_card(&cfg, None).unwrap();
    let daemon = Daemon::start(&cfg, card, Some(ctl)).unwrap();
    let socket = cfg.system.control_socket.clone();
    let finished = Arc::new(AtomicBool::new(false));
    let f2 = finished.clone();
    let client = std::thread::spawn(move || {
        let r = (
            send(&doc, "123", &socket),
            send(&dir.path().join("missing.tif"), "055550123", &socket),
            send(&doc, "055550123", &socket),
        );
        f2.store(true, Ordering::Relaxed);
        (r, dir)
    });
    while !finished.load(Ordering::Relaxed) {
        daemon.serve_once(Duration::from_millis(20));
    }
    let ((unrouted, missing, queued), _dir) = client.join().unwrap();
    assert_eq!(unrouted.0, 1, "{unrouted:?}");
    assert!(unrouted.2.contains("no route takes 123"), "{unrouted:?}");
    assert_eq!(missing.0, 1, "{missing:?}");
    assert!(missing.2.contains("missing.tif"), "{missing:?}");
    assert_eq!(queued.0, 0, "{queued:?}");
    assert_eq!(
        queued.1,
        "fax job 1 queued (2 pages); `cardpbx fax list` shows the result when it is done\n"
    );
    let jobs = daemon.runtime().query(|pbx, _| pbx.fax_jobs()).unwrap();
    assert_eq!(jobs.len(), 1, "{jobs:?}");
    assert_eq!(
        (jobs[0].job, jobs[0].number.as_str(), jobs[0].trunk_group.as_str()),
        (1, "55550123", "isdn")
    );
    daemon.stop().unwrap();
}
