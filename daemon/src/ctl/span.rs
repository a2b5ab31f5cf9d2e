//! `cardpbx span show|capture`: the technician's E1 span commands.
//!
//! `span show` renders the daemon's `spans` answer span by span: line settings, alarms, error
//! counters, timing, the trunk group's signalling and, on PRI spans, the D-channel (side,
//! data link state, frame counters, capture) and the bearers in use. `span capture` asks the
//! daemon (`span_capture`) to start or stop writing a PRI span's D-channel to a pcap file.

use super::cli::{EXIT_FAILED, EXIT_OK, EXIT_UNREACHABLE, EXIT_USAGE};
use super::client::CtlClient;
use super::proto::{CaptureData, CtlData, CtlRequest, SpanCaptureArgs, SpanData};
use crate::config::model::Config;
use clap::Subcommand;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

/// `cardpbx span ...`
#[derive(Debug, Clone, PartialEq, Subcommand)]
pub enum SpanCmd {
    /// Show E1 spans in detail: framing, line code, CRC-4, alarms, error counters, timing,
    /// signalling, D-channel state and capture, channels in use.
    Show {
        /// The span, `card/spanN` or `N` (default: every span).
        span: Option<String>,
        /// Print the daemon's data as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Capture a PRI span's D-channel (both directions) to a pcap file that Wireshark and
    /// tshark decode as LAPD and Q.931, or stop capturing with --stop.
    Capture {
        /// The span, `card/spanN` or `N`.
        span: String,
        /// The pcap file (created or truncated; made absolute here).
        #[arg(required_unless_present = "stop")]
        file: Option<PathBuf>,
        /// Stop the capture running on the span.
        #[arg(long, conflicts_with = "duration")]
        stop: bool,
        /// Stop by itself after this many seconds.
        #[arg(long, value_name = "S")]
        duration: Option<f64>,
        /// Print the daemon's answer as JSON.
        #[arg(long)]
        json: bool,
    },
}

/// A span reference `card/spanN` or `N`: the card name if given, and the span number.
///
/// # Errors
/// A message saying what form is expected.
pub fn parse_span_ref(s: &str) -> Result<(Option<&str>, u32), String> {
    let bad = || format!("bad span {s:?}: write it card/spanN (sim0/span1) or N (1)");
    let (card, num) = match s.rsplit_once('/') {
        Some((card, rest)) => {
            let n = rest.strip_prefix("span").ok_or_else(bad)?;
            if card.is_empty() {
                return Err(bad());
            }
            (Some(card), n)
        }
        None => (None, s.strip_prefix("span").unwrap_or(s)),
    };
    if num.is_empty() || !num.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let n: u32 = num.parse().map_err(|_| bad())?;
    if n == 0 {
        return Err(format!("bad span {s:?}: spans are numbered from 1"));
    }
    Ok((card, n))
}

/// The trunk group using each span of card `card_name` and its signalling (`pri_cpe`, ...),
/// by span number.
pub fn span_groups(cfg: &Config, card_name: &str) -> BTreeMap<u32, (String, String)> {
    let mut out = BTreeMap::new();
    for g in &cfg.trunk_groups {
        for p in &g.ports {
            if p.card == card_name && p.kind == crate::config::PortKind::Span {
                out.insert(p.index, (g.name.clone(), g.signalling.as_str().to_string()));
            }
        }
    }
    out
}

fn seconds_to_ms(s: f64) -> Result<u64, String> {
    if !(s.is_finite() && s > 0.0 && s <= 7.0 * 86_400.0) {
        return Err(format!("--duration must be between 0 and 604800 seconds, got {s}"));
    }
    Ok((s * 1000.0).round().max(1.0) as u64)
}

/// The `span_capture` request `cmd` sends, with the file made absolute.
///
/// # Errors
/// A bad span reference or duration, or no file to start capturing to.
pub fn capture_request(cmd: &SpanCmd) -> Result<CtlRequest, String> {
    let SpanCmd::Capture { span, file, stop, duration, .. } = cmd else {
        return Err("not a span capture command".into());
    };
    parse_span_ref(span)?;
    let duration_ms = duration.map(seconds_to_ms).transpose()?;
    let file = match (file, stop) {
        (_, true) => None,
        (Some(f), false) => {
            let abs = std::path::absolute(f).map_err(|e| format!("{}: {e}", f.display()))?;
            Some(abs.display().to_string())
        }
        (None, false) => return Err("name the pcap file to capture to".into()),
    };
    Ok(CtlRequest::SpanCapture(SpanCaptureArgs {
        span: span.clone(),
        file,
        stop: *stop,
        duration_ms,
    }))
}

/// Carry out `cardpbx span ...` against the daemon at `socket_path`; returns the exit code.
///
/// # Errors
/// When the output cannot be written.
pub fn run_span(
    cmd: &SpanCmd,
    socket_path: &Path,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> anyhow::Result<i32> {
    let (req, json, filter) = match cmd {
        SpanCmd::Show { span, json } => {
            let filter = match span.as_deref().map(parse_span_ref).transpose() {
                Ok(f) => f.map(|(c, n)| (c.map(str::to_string), n)),
                Err(e) => {
                    writeln!(err, "cardpbx: {e}")?;
                    return Ok(EXIT_USAGE);
                }
            };
            (CtlRequest::Spans, *json, filter)
        }
        SpanCmd::Capture { json, .. } => match capture_request(cmd) {
            Ok(req) => (req, *json, None),
            Err(e) => {
                writeln!(err, "cardpbx: {e}")?;
                return Ok(EXIT_USAGE);
            }
        },
    };
    let data = match CtlClient::connect(socket_path).and_then(|mut c| c.request(req)) {
        Ok(d) => d,
        Err(e) => {
            writeln!(err, "cardpbx: {e}")?;
            return Ok(if e.is_unreachable() { EXIT_UNREACHABLE } else { EXIT_FAILED });
        }
    };
    match data {
        CtlData::Spans(spans) => {
            let spans: Vec<SpanData> = match &filter {
                None => spans,
                Some((card, n)) => spans
                    .into_iter()
                    .filter(|s| s.span == *n && card.as_ref().is_none_or(|c| *c == s.card))
                    .collect(),
            };
            if spans.is_empty() {
                let what = match &filter {
                    Some((Some(c), n)) => format!("{c}/span{n}"),
                    Some((None, n)) => format!("span {n}"),
                    None => "any E1 span".into(),
                };
                writeln!(err, "cardpbx: the daemon has no {what}")?;
                return Ok(if filter.is_some() { EXIT_FAILED } else { EXIT_OK });
            }
            if json {
                writeln!(out, "{}", serde_json::to_string_pretty(&spans)?)?;
            } else {
                write!(out, "{}", render_span_show(&spans))?;
            }
        }
        CtlData::Capture(c) => {
            if json {
                writeln!(out, "{}", serde_json::to_string_pretty(&c)?)?;
            } else {
                write!(out, "{}", render_capture(&c))?;
            }
        }
        other => anyhow::bail!("unexpected answer {:?}", other.request().name()),
    }
    Ok(EXIT_OK)
}

/// `span capture`'s answer in words.
pub fn render_capture(c: &CaptureData) -> String {
    if c.capturing {
        let limit =
            c.duration_ms.map(|ms| format!(" for {} s", ms as f64 / 1000.0)).unwrap_or_default();
        format!(
            "span {}: capturing the D-channel to {}{limit} (stop with `cardpbx span capture {} \
             --stop`; read with `tshark -r {}`)\n",
            c.span, c.file, c.span, c.file
        )
    } else {
        format!("span {}: capture to {} stopped, {} frames written\n", c.span, c.file, c.frames)
    }
}

/// `span show` in words: one block of `key  value` lines per span.
pub fn render_span_show(spans: &[SpanData]) -> String {
    let mut out = String::new();
    for (n, s) in spans.iter().enumerate() {
        if n > 0 {
            out.push('\n');
        }
        let mut rows: Vec<(&str, String)> = vec![
            ("span", format!("{}/span{}", s.card, s.span)),
            ("framing", s.framing.clone()),
            ("line code", s.line_code.clone()),
            ("crc-4", if s.crc4 { "on" } else { "off" }.into()),
            ("alarms", if s.alarms.is_empty() { "none".into() } else { s.alarms.join(", ") }),
            (
                "counters",
                format!("slips {}, crc-4 errors {}, bpv {}", s.slips, s.crc4_errors, s.bpv),
            ),
            (
                "timing",
                if s.timing_source { "card clock source" } else { "not the clock source" }.into(),
            ),
        ];
        let group = match (&s.trunk_group, &s.signalling) {
            (Some(g), Some(sig)) => format!("{g} ({sig})"),
            (Some(g), None) => g.clone(),
            (None, _) => "none".into(),
        };
        rows.push(("trunk group", group));
        if let Some(d) = &s.dchannel {
            rows.push(("side", d.side.clone()));
            rows.push((
                "d-channel",
                format!("{} ({})", if d.link_up { "up" } else { "down" }, d.link),
            ));
            rows.push(("link changes", format!("{} up, {} down", d.link_ups, d.link_downs)));
            rows.push((
                "frames",
                format!("{} in, {} out, {} mdl errors", d.frames_in, d.frames_out, d.mdl_errors),
            ));
            let cap = match (&d.capture, &d.capture_error) {
                (Some(f), _) => format!("{f} ({} frames)", d.capture_frames),
                (None, Some(e)) => format!("stopped: {e}"),
                (None, None) => "off".into(),
            };
            rows.push(("capture", cap));
            rows.push((
                "channels",
                format!("{} configured, {} in use", d.bearers, d.bearers_in_use),
            ));
        }
        let width = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
        for (k, v) in rows {
            out.push_str(&format!("{k:<width$}  {v}\n"));
        }
    }
    out
}

/// The `spans` answer for span `id` of card `card`, from call control and the counters the
/// media engine publishes; `group`: the span's trunk group and signalling.
pub fn span_data(
    pbx: &crate::pbx::Pbx,
    stats: &crate::engine::EngineStats,
    card: &str,
    id: cardpbx_hal::SpanId,
    group: Option<&(String, String)>,
) -> SpanData {
    let st = pbx.span_state(id);
    let counters = stats.span_counters(id).unwrap_or_default();
    SpanData {
        card: card.to_string(),
        span: id.0,
        framing: st.framing,
        line_code: st.line_code,
        crc4: st.crc4,
        alarms: st.alarms.names().iter().map(|s| s.to_string()).collect(),
        slips: counters.slips,
        crc4_errors: counters.crc4_errors,
        bpv: counters.bipolar_violations,
        timing_source: counters.timing_source,
        trunk_group: group.map(|g| g.0.clone()),
        signalling: group.map(|g| g.1.clone()),
        dchannel: pbx.pri_span_info(id),
    }
}

/// Carry out a `span_capture` request on call control driving card `card`.
///
/// # Errors
/// A message for the client: a bad or unknown span, a span that is not PRI, no file, no
/// capture to stop, or a file that cannot be created.
pub fn span_capture(
    pbx: &mut crate::pbx::Pbx,
    card: &str,
    args: &SpanCaptureArgs,
) -> Result<CaptureData, String> {
    let (c, n) = parse_span_ref(&args.span)?;
    if let Some(c) = c.filter(|c| *c != card) {
        return Err(format!("there is no card {c:?} (this daemon drives card {card:?})"));
    }
    let span = cardpbx_hal::SpanId(n);
    if args.stop {
        return pbx
            .pri_capture_stop(span)?
            .ok_or_else(|| format!("span {n} is not being captured"));
    }
    let Some(file) = &args.file else {
        return Err("name the pcap file to capture to".into());
    };
    let path = Path::new(file);
    if !path.is_absolute() {
        return Err(format!(
            "the capture file must be an absolute path (the daemon's working directory is not \
             yours): {file}"
        ));
    }
    pbx.pri_capture_start(span, path, args.duration_ms)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ctl::cli::{run_client_command_to, Cli, Command};
    use crate::ctl::proto::{CtlResponse, SpanData};
    use crate::ctl::server::{CtlEnvelope, CtlServer};
    use crate::pbx::{CaptureInfo, PriSpanInfo};
    use clap::Parser;

    fn span(n: u32, pri: bool) -> SpanData {
        SpanData {
            card: "sim0".into(),
            span: n,
            framing: "ccs".into(),
            line_code: "hdb3".into(),
            crc4: true,
            alarms: if pri { vec![] } else { vec!["LOS".into()] },
            slips: 3,
            crc4_errors: 4,
            bpv: 5,
            timing_source: pri,
            trunk_group: pri.then(|| "isdn".into()),
            signalling: pri.then(|| "pri_cpe".into()),
            dchannel: pri.then(|| PriSpanInfo {
                side: "user".into(),
                link: "multiple_frame_established".into(),
                link_up: true,
                link_ups: 2,
                link_downs: 1,
                frames_in: 40,
                frames_out: 41,
                mdl_errors: 0,
                bearers: 30,
                bearers_in_use: 2,
                capture: Some("/tmp/d.pcap".into()),
                capture_frames: 17,
                capture_error: None,
            }),
        }
    }

    #[test]
    fn span_references() {
        assert_eq!(parse_span_ref("sim0/span1"), Ok((Some("sim0"), 1)));
        assert_eq!(parse_span_ref("2"), Ok((None, 2)));
        assert_eq!(parse_span_ref("span3"), Ok((None, 3)));
        for bad in ["", "sim0/1", "/span1", "sim0/span", "x", "sim0/span1x", "-1"] {
            assert!(parse_span_ref(bad).unwrap_err().contains("card/spanN"), "{bad}");
        }
        assert!(parse_span_ref("0").unwrap_err().contains("from 1"));
    }

    #[test]
    fn capture_command_lines() {
        let cli = Cli::try_parse_from([
            "cardpbx",
            "span",
            "capture",
            "sim0/span1",
            "d.pcap",
            "--duration",
            "2.5",
        ])
        .unwrap();
        let Command::Span(cmd) = cli.cmd else { panic!("span command") };
        let req = capture_request(&cmd).unwrap();
        let CtlRequest::SpanCapture(a) = &req else { panic!("{req:?}") };
        assert_eq!(a.span, "sim0/span1");
        let want = std::env::current_dir().unwrap().join("d.pcap");
        assert_eq!(a.file.as_deref(), Some(want.to_str().unwrap()), "made absolute");
        assert_eq!(a.duration_ms, Some(2_500));
        assert!(!a.stop);
        // The request goes over the wire and back unchanged.
        assert_eq!(CtlRequest::parse_line(req.to_line().trim_end()), Ok(req.clone()));

        let cli = Cli::try_parse_from(["cardpbx", "span", "capture", "1", "--stop"]).unwrap();
        let Command::Span(cmd) = cli.cmd else { panic!("span command") };
        assert_eq!(
            capture_request(&cmd).unwrap(),
            CtlRequest::SpanCapture(SpanCaptureArgs {
                span: "1".into(),
                stop: true,
                ..Default::default()
            })
        );
        assert!(Cli::try_parse_from(["cardpbx", "span", "capture", "1"]).is_err(), "no file");
        assert!(Cli::try_parse_from([
            "cardpbx",
            "span",
            "capture",
            "1",
            "--stop",
            "--duration",
            "1"
        ])
        .is_err());
        let cli = Cli::try_parse_from(["cardpbx", "span", "capture", "1", "f", "--duration", "0"])
            .unwrap();
        let Command::Span(cmd) = cli.cmd else { panic!("span command") };
        assert!(capture_request(&cmd).unwrap_err().contains("--duration"));
    }

    #[test]
    fn span_capture_request_fields_are_checked() {
        let ok = r#"{"cmd":"span_capture","span":"1","file":"/tmp/a.pcap","duration_ms":500}"#;
        assert_eq!(
            CtlRequest::parse_line(ok),
            Ok(CtlRequest::SpanCapture(SpanCaptureArgs {
                span: "1".into(),
                file: Some("/tmp/a.pcap".into()),
                stop: false,
                duration_ms: Some(500),
            }))
        );
        let e = CtlRequest::parse_line(r#"{"cmd":"span_capture","file":"/x"}"#).unwrap_err();
        assert!(e.contains("span_capture") && e.contains("missing field `span`"), "{e}");
        let e = CtlRequest::parse_line(r#"{"cmd":"span_capture","span":"1","x":1}"#).unwrap_err();
        assert!(e.contains("unknown field `x`"), "{e}");
        let e = CtlRequest::parse_line(r#"{"cmd":"span_capture","span":1}"#).unwrap_err();
        assert!(e.contains("invalid type"), "{e}");
    }

    #[test]
    fn show_renders_every_part() {
        let text = render_span_show(&[span(1, true), span(2, false)]);
        for want in [
            "span          sim0/span1",
            "framing       ccs",
            "line code     hdb3",
            "crc-4         on",
            "alarms        none",
            "counters      slips 3, crc-4 errors 4, bpv 5",
            "timing        card clock source",
            "trunk group   isdn (pri_cpe)",
            "side          user",
            "d-channel     up (multiple_frame_established)",
            "link changes  2 up, 1 down",
            "frames        40 in, 41 out, 0 mdl errors",
            "capture       /tmp/d.pcap (17 frames)",
            "channels      30 configured, 2 in use",
            "\nspan         sim0/span2",
            "alarms       LOS",
            "trunk group  none",
        ] {
            assert!(text.contains(want), "no {want:?} in\n{text}");
        }
        assert_eq!(text.matches("d-channel").count(), 1, "only PRI spans have one");
        let mut s = span(1, true);
        let d = s.dchannel.as_mut().unwrap();
        d.capture = None;
        d.capture_error = Some("writing /x.pcap: disk full; capture stopped".into());
        assert!(render_span_show(&[s]).contains("capture       stopped: writing /x.pcap"));
        // Old answers without the optional fields still decode.
        let old = r#"[{"card":"c","span":1,"framing":"ccs","line_code":"hdb3","crc4":true,
            "alarms":[],"slips":0,"crc4_errors":0,"bpv":0,"timing_source":false}]"#;
        let v: Vec<SpanData> = serde_json::from_str(old).unwrap();
        assert_eq!(v[0].dchannel, None);
    }

    /// A fake daemon answering `spans` and `span_capture` over a real socket.
    fn serve(dir: &Path) -> (CtlServer, PathBuf) {
        let path = dir.join("ctl.sock");
        let mut server = CtlServer::bind(&path).unwrap();
        let (tx, rx) = crossbeam_channel::unbounded::<CtlEnvelope>();
        std::thread::spawn(move || {
            for (req, reply) in rx {
                let resp = match req {
                    CtlRequest::Spans => {
                        CtlResponse::Ok(CtlData::Spans(vec![span(1, true), span(2, false)]))
                    }
                    CtlRequest::SpanCapture(a) if a.span == "2" => {
                        CtlResponse::Error("span 2 is not a PRI span".into())
                    }
                    CtlRequest::SpanCapture(a) => CtlResponse::Ok(CtlData::Capture(CaptureInfo {
                        span: 1,
                        file: a.file.unwrap_or_else(|| "/tmp/old.pcap".into()),
                        capturing: !a.stop,
                        frames: if a.stop { 12 } else { 0 },
                        duration_ms: a.duration_ms,
                    })),
                    other => CtlResponse::Error(format!("{} not here", other.name())),
                };
                let _ = reply.send(resp);
            }
        });
        server.serve(tx).unwrap();
        (server, path)
    }

    fn run(sock: &Path, args: &[&str]) -> (i32, String, String) {
        let mut argv = vec!["cardpbx"];
        argv.extend_from_slice(args);
        let cli = Cli::try_parse_from(argv).unwrap();
        assert!(cli.cmd.is_client_command());
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let code = run_client_command_to(&cli.cmd, sock, &mut out, &mut err).unwrap();
        (code, String::from_utf8(out).unwrap(), String::from_utf8(err).unwrap())
    }

    #[test]
    fn span_commands_over_the_socket() {
        let dir = tempfile::tempdir().unwrap();
        let (server, sock) = serve(dir.path());
        let (code, out, _) = run(&sock, &["span", "show", "sim0/span1"]);
        assert_eq!(code, EXIT_OK);
        assert!(out.contains("span          sim0/span1") && !out.contains("span2"), "{out}");
        let (code, out, _) = run(&sock, &["span", "show"]);
        assert_eq!(code, EXIT_OK);
        assert!(out.contains("sim0/span1") && out.contains("sim0/span2"), "{out}");
        let (code, out, _) = run(&sock, &["span", "show", "2", "--json"]);
        assert_eq!(code, EXIT_OK);
        let v: Vec<SpanData> = serde_json::from_str(&out).unwrap();
        assert_eq!(v, vec![span(2, false)]);
        let (code, _, err) = run(&sock, &["span", "show", "7"]);
        assert_eq!(code, EXIT_FAILED);
        assert!(err.contains("no span 7"), "{err}");
        let (code, _, err) = run(&sock, &["span", "show", "bad/1"]);
        assert_eq!(code, EXIT_USAGE);
        assert!(err.contains("card/spanN"), "{err}");
        // `spans` still answers as before.
        let (code, out, _) = run(&sock, &["spans"]);
        assert_eq!(code, EXIT_OK);
        assert!(out.starts_with("SPAN") && out.contains("sim0/span2"), "{out}");

        let (code, out, _) =
            run(&sock, &["span", "capture", "1", "/tmp/n.pcap", "--duration", "60"]);
        assert_eq!(code, EXIT_OK);
        assert!(out.contains("capturing the D-channel to /tmp/n.pcap for 60 s"), "{out}");
        let (code, out, _) = run(&sock, &["span", "capture", "1", "--stop", "--json"]);
        assert_eq!(code, EXIT_OK);
        let c: CaptureInfo = serde_json::from_str(&out).unwrap();
        assert!(!c.capturing && c.frames == 12, "{c:?}");
        let (code, _, err) = run(&sock, &["span", "capture", "2", "/tmp/n.pcap"]);
        assert_eq!(code, EXIT_FAILED);
        assert!(err.contains("span 2 is not a PRI span"), "{err}");
        server.shutdown();
        let (code, _, err) = run(&sock, &["span", "show"]);
        assert_eq!(code, EXIT_UNREACHABLE, "{err}");
    }
}
