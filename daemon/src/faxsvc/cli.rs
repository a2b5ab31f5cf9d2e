//! The daemon side of `cardpbx fax`: `fax send --to` (a `fax_send` control request),
//! `fax list` and `fax show` (read the store). `fax send|receive --in/--out` stay in
//! [`crate::faxcli`].

use crate::ctl::cli::{EXIT_FAILED, EXIT_UNREACHABLE};
use crate::ctl::client::CtlClient;
use crate::ctl::proto::{CtlData, CtlRequest, FaxJobData, FaxSendArgs};
use crate::faxcli::FaxCmd;
use crate::pbx::FaxSendRequest;
use crate::runner::Realtime;
use crate::store::{FaxRecord, Store};
use anyhow::Context;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Run `cardpbx fax ...`: the daemon forms here, the rest in [`crate::faxcli::run`].
///
/// # Errors
/// A file that cannot be read, a store that cannot be opened, output that cannot be written.
pub fn run(cmd: &FaxCmd, socket: &Path) -> anyhow::Result<i32> {
    let stdout = std::io::stdout();
    let stderr = std::io::stderr();
    run_with(cmd, socket, &mut stdout.lock(), &mut stderr.lock())
}

/// [`run`] with explicit output streams.
///
/// # Errors
/// As [`run`].
pub fn run_with(
    cmd: &FaxCmd,
    socket: &Path,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> anyhow::Result<i32> {
    match cmd {
        FaxCmd::Send { file, to: Some(to), retries, group, .. } => {
            let file = std::path::absolute(file).unwrap_or_else(|_| file.clone());
            let req = CtlRequest::FaxSend(FaxSendArgs {
                to: to.clone(),
                file: file.display().to_string(),
                retries: *retries,
                group: group.clone(),
            });
            match CtlClient::connect(socket).and_then(|mut c| c.request(req)) {
                Ok(CtlData::FaxJob(j)) => {
                    write!(out, "{}", render_job(&j))?;
                    Ok(0)
                }
                Ok(other) => {
                    writeln!(err, "cardpbx: unexpected answer {other:?}")?;
                    Ok(EXIT_FAILED)
                }
                Err(e) => {
                    writeln!(err, "cardpbx: {e}")?;
                    Ok(if e.is_unreachable() { EXIT_UNREACHABLE } else { EXIT_FAILED })
                }
            }
        }
        FaxCmd::List { limit, db, config, json } => {
            let store = open(db.as_ref(), config.as_ref())?;
            let rows = store.faxes(*limit)?;
            if *json {
                writeln!(out, "{}", serde_json::to_string_pretty(&rows)?)?;
            } else {
                write!(out, "{}", render_list(&rows))?;
            }
            Ok(0)
        }
        FaxCmd::Show { id, db, config, json } => {
            let store = open(db.as_ref(), config.as_ref())?;
            let Some(r) = store.fax(*id)? else {
                writeln!(err, "cardpbx: no fax {id} in {}", store.path().display())?;
                return Ok(EXIT_FAILED);
            };
            if *json {
                writeln!(out, "{}", serde_json::to_string_pretty(&r)?)?;
            } else {
                write!(out, "{}", render_one(&r))?;
            }
            Ok(0)
        }
        other => crate::faxcli::run_with(other, out, err),
    }
}

fn open(db: Option<&PathBuf>, config: Option<&PathBuf>) -> anyhow::Result<Store> {
    let path = match (db, config) {
        (Some(p), _) => p.clone(),
        (None, Some(c)) => crate::config::Config::load(c)
            .map_err(|e| anyhow::anyhow!("{e}"))?
            .system
            .database_path(),
        (None, None) => crate::config::model::SystemConfig::default().database_path(),
    };
    Store::open_read_only(&path).with_context(|| "opening the store".to_string())
}

/// The daemon's side of `fax_send`: read the document, queue the job on the control thread.
///
/// # Errors
/// What is wrong, for the client: an unreadable document, a refused job, or a stopped
/// control thread.
pub fn serve_send(rt: &Realtime, args: &FaxSendArgs) -> Result<FaxJobData, String> {
    let pages =
        crate::faxcli::load_document(Path::new(&args.file)).map_err(|e| format!("{e:#}"))?;
    let n = pages.len() as u32;
    let req = FaxSendRequest {
        number: args.to.clone(),
        group: args.group.clone(),
        file: args.file.clone(),
        pages,
        retries: args.retries,
    };
    match rt.query_mut(move |pbx, _| pbx.fax_send(req)) {
        Some(Ok(job)) => Ok(FaxJobData { job, pages: n }),
        Some(Err(e)) => Err(e),
        None => Err("call control is not running".into()),
    }
}

/// `fax send --to`'s answer as text.
pub fn render_job(j: &FaxJobData) -> String {
    format!(
        "fax job {} queued ({} page{}); `cardpbx fax list` shows the result when it is done\n",
        j.job,
        j.pages,
        if j.pages == 1 { "" } else { "s" }
    )
}

fn time(ms: i64) -> String {
    let offset = crate::runner::utc_offset_s(ms / 1000);
    crate::store::time::format_datetime(ms, offset)
}

/// `fax list` as a table.
pub fn render_list(rows: &[FaxRecord]) -> String {
    if rows.is_empty() {
        return "no faxes\n".into();
    }
    let mut t =
        vec![["ID", "STARTED", "DIR", "NUMBER", "IDENT", "PAGES", "RATE", "STATUS", "FILE"]
            .map(String::from)
            .to_vec()];
    for r in rows {
        t.push(vec![
            r.id.to_string(),
            time(r.started_ms),
            r.direction.clone(),
            r.remote_number.clone(),
            r.remote_ident.clone().unwrap_or_else(|| "-".into()),
            r.pages.to_string(),
            r.bit_rate.to_string(),
            r.status.clone(),
            r.file.clone().unwrap_or_else(|| "-".into()),
        ]);
    }
    let widths: Vec<usize> = (0..t[0].len())
        .map(|c| t.iter().map(|row| row[c].chars().count()).max().unwrap_or(0))
        .collect();
    let mut s = String::new();
    for row in &t {
        let cells: Vec<String> = row.iter().zip(&widths).map(|(v, w)| format!("{v:<w$}")).collect();
        s.push_str(cells.join("  ").trim_end());
        s.push('\n');
    }
    s
}

/// `fax show` as key/value lines.
pub fn render_one(r: &FaxRecord) -> String {
    let or = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
    let rows = [
        ("id", r.id.to_string()),
        ("direction", r.direction.clone()),
        ("number", r.remote_number.clone()),
        ("remote ident", or(&r.remote_ident)),
        ("pages", r.pages.to_string()),
        ("bit rate", format!("{} bit/s", r.bit_rate)),
        ("status", r.status.clone()),
        ("error", or(&r.error)),
        ("file", or(&r.file)),
        ("attempts", r.attempts.to_string()),
        ("trunk group", or(&r.trunk_group)),
        ("job", r.job.to_string()),
        ("started", time(r.started_ms)),
        ("ended", time(r.ended_ms)),
        ("duration", format!("{:.1} s", (r.ended_ms - r.started_ms) as f64 / 1000.0)),
    ];
    rows.iter().map(|(k, v)| format!("{k:<13} {v}\n")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec() -> FaxRecord {
        FaxRecord {
            id: 7,
            direction: "received".into(),
            remote_number: "01055550199".into(),
            remote_ident: Some("+86 10 5555 0199".into()),
            pages: 2,
            bit_rate: 9600,
            status: "success".into(),
            error: None,
            file: Some("/var/spool/cardpbx/fax/20261123-071643-1.tif".into()),
            attempts: 1,
            trunk_group: Some("pstn".into()),
            job: 1,
            started_ms: 1_795_418_203_000,
            ended_ms: 1_795_418_233_500,
        }
    }

    #[test]
    fn list_and_show_render() {
        let t = render_list(&[rec()]);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 2, "{t}");
        assert!(lines[0].starts_with("ID  STARTED"), "{t}");
        assert!(lines[1].contains("received") && lines[1].contains("01055550199"), "{t}");
        assert!(lines[1].contains("9600") && lines[1].contains("success"), "{t}");
        assert_eq!(render_list(&[]), "no faxes\n");
        let s = render_one(&rec());
        assert!(s.contains("pages         2\n"), "{s}");
        assert!(s.contains("duration      30.5 s\n"), "{s}");
        assert!(s.contains("error         -\n"), "{s}");
    }

    #[test]
    fn list_and_show_read_the_store() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("cardpbx.db");
        let mut store = Store::open(&db).unwrap();
        store.write(&[crate::store::Record::Fax(rec())]).unwrap();
        drop(store);
        let cmd = FaxCmd::List { limit: 10, db: Some(db.clone()), config: None, json: true };
        let (mut out, mut err) = (Vec::new(), Vec::new());
        assert_eq!(run_with(&cmd, Path::new("/nonexistent"), &mut out, &mut err).unwrap(), 0);
        let rows: Vec<FaxRecord> = serde_json::from_slice(&out).unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].id, 1, "the store assigns ids");
        assert_eq!(FaxRecord { id: 7, ..rows[0].clone() }, rec());
        let show = |id| {
            let cmd = FaxCmd::Show { id, db: Some(db.clone()), config: None, json: false };
            let (mut out, mut err) = (Vec::new(), Vec::new());
            let code = run_with(&cmd, Path::new("/nonexistent"), &mut out, &mut err).unwrap();
            (code, String::from_utf8(out).unwrap(), String::from_utf8(err).unwrap())
        };
        let (code, out, _) = show(1);
        assert_eq!(code, 0);
        assert!(out.contains("number        01055550199\n"), "{out}");
        let (code, _, err) = show(2);
        assert_eq!(code, EXIT_FAILED);
        assert!(err.contains("no fax 2"), "{err}");
    }

    #[test]
    fn send_to_without_a_daemon_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let cmd = FaxCmd::Send {
            file: dir.path().join("doc.tif"),
            to: Some("012345".into()),
            retries: None,
            group: None,
            link: crate::faxcli::LinkArgs {
                input: PathBuf::new(),
                output: PathBuf::new(),
                ..clap_link_defaults()
            },
        };
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let code = run_with(&cmd, &dir.path().join("none.sock"), &mut out, &mut err).unwrap();
        assert_eq!(code, EXIT_UNREACHABLE, "{}", String::from_utf8_lossy(&err));
    }

    /// `LinkArgs` with clap's defaults.
    fn clap_link_defaults() -> crate::faxcli::LinkArgs {
        use clap::Parser;
        #[derive(Parser)]
        struct P {
            #[command(flatten)]
            link: crate::faxcli::LinkArgs,
        }
        P::parse_from(["p"]).link
    }
}
