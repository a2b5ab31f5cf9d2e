//! `cardpbx fax send|receive`: a fax terminal over two audio streams, the interface of the
//! SpanDSP reference peer `fax_peer`.
//!
//! The audio is raw signed 16-bit little-endian 8 kHz PCM exchanged in lock-step blocks of
//! 160 samples (20 ms): for each block we first write the block we generated to `--out`,
//! then read one block from `--in` and give it to the fax session. `send` is the calling
//! terminal (CNG), `receive` the answering one (CED).
//!
//! Opening: `--out`, when it is a FIFO, is opened read-write, which neither blocks nor needs
//! a reader yet (a regular file is created or truncated); then `--in` is opened in a helper
//! thread (opening a FIFO for reading blocks until the far end opens it for writing). So the
//! far end may open the two FIFOs in either order (`sim/src/extaudio.rs` does the same).
//! End of file on `--in` ends the exchange; the session then runs on silence for up to 10 s
//! so that it can reach phase E (as `fax_peer` does), e.g. a receiver waiting for DCN after
//! the last page.
//!
//! The last line on stdout is `fax summary: role=send|recv status=<status> pages=<n>
//! bit_rate=<bps> ecm=<0|1>`; `pages` counts pages confirmed (send) or received (recv),
//! `bit_rate` is the rate of the last DCS (0 if none), `ecm` whether that DCS chose error
//! correction mode (offered with `--ecm`). The exit status is 0 only on success.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use cardpbx_dsp::fax::audio_modem::SoftModem;
use cardpbx_dsp::fax::pdf::write_pdf;
use cardpbx_dsp::fax::session::{FaxSession, ImageModem};
use cardpbx_dsp::fax::t30::{FaxStatus, ModemFamily, Role, T30Config, T30Event, T30};
use cardpbx_dsp::fax::t4::Coding;
use cardpbx_dsp::fax::tiff::{read_tiff, to_fax_page, write_tiff, FaxPage, WriteOptions};
use clap::{Args, Subcommand};

/// Samples per exchanged block (20 ms).
pub const BLOCK: usize = 160;
/// Blocks per second.
const BLOCKS_PER_SEC: u64 = 8000 / BLOCK as u64;
/// Audio exchanged after the session ends, so the far end hears our last signal out.
const TAIL_BLOCKS: u64 = 25;
/// Silence the session may run on after the far end left, to reach phase E.
const DRAIN_BLOCKS: u64 = 10 * BLOCKS_PER_SEC;
/// Audio exchanged after `--max-sec` so our DCN gets out.
const ABORT_BLOCKS: u64 = 5 * BLOCKS_PER_SEC;
/// Transmit level of V.21 and tones (dBm0).
const LEVEL_DBM0: f32 = -13.0;

/// `cardpbx fax ...`
#[derive(Debug, Clone, PartialEq, Subcommand)]
pub enum FaxCmd {
    /// Send a TIFF (class F, or any bilevel TIFF: converted to 1728 pels at fax resolution)
    /// as the calling terminal, over raw s16le 8 kHz audio streams.
    ///
    /// With `--to NUMBER` instead of `--in/--out`, the running daemon sends it: it places a
    /// call through a trunk group (the route the number matches, or `--group`), retrying on
    /// busy, no answer or a failed fax; the result goes to the store (`cardpbx fax list`).
    Send {
        /// The document: multi-page TIFF.
        file: PathBuf,
        /// Have the daemon send it to this number (through its dialplan's routes).
        #[arg(long, value_name = "NUMBER", conflicts_with_all = ["input", "output"])]
        to: Option<String>,
        /// With --to: attempts after the first (default: `[fax] retries`).
        #[arg(long, value_name = "N", requires = "to")]
        retries: Option<u32>,
        /// With --to: the trunk group to send through, the number going out as given.
        #[arg(long, value_name = "TRUNKGROUP", requires = "to")]
        group: Option<String>,
        /// Audio options.
        #[command(flatten)]
        link: LinkArgs,
    },
    /// Faxes the daemon received and sent, newest first (from the store).
    List {
        /// At most this many.
        #[arg(long, default_value_t = 50)]
        limit: u32,
        /// The database file (default: `system.database` of --config, else ./spool/cardpbx.db).
        #[arg(long, value_name = "PATH")]
        db: Option<PathBuf>,
        /// Configuration file naming the database.
        #[arg(short, long, value_name = "FILE")]
        config: Option<PathBuf>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// One fax from the store.
    Show {
        /// Its id (`fax list`).
        id: i64,
        /// The database file (default: `system.database` of --config, else ./spool/cardpbx.db).
        #[arg(long, value_name = "PATH")]
        db: Option<PathBuf>,
        /// Configuration file naming the database.
        #[arg(short, long, value_name = "FILE")]
        config: Option<PathBuf>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Receive a fax as the answering terminal and write it as TIFF-F (and PDF).
    Receive {
        /// Where to write the pages (TIFF class F, MH, 204 × 98/196 dpi).
        file: PathBuf,
        /// Also write the pages as PDF (G3 data under the CCITT fax filter).
        #[arg(long, value_name = "OUT.pdf")]
        pdf: Option<PathBuf>,
        /// Audio options.
        #[command(flatten)]
        link: LinkArgs,
    },
}

/// Audio streams and session settings shared by `send` and `receive`.
#[derive(Debug, Clone, PartialEq, Args)]
pub struct LinkArgs {
    /// Audio from the far end (FIFO or file): raw s16le 8 kHz PCM.
    #[arg(long = "in", id = "input", value_name = "PATH", default_value = "",
          hide_default_value = true, value_parser = path_or_empty())]
    pub input: PathBuf,
    /// Audio to the far end (FIFO or file): raw s16le 8 kHz PCM.
    #[arg(long = "out", id = "output", value_name = "PATH", default_value = "",
          hide_default_value = true, value_parser = path_or_empty())]
    pub output: PathBuf,
    /// Image modems offered, comma-separated: v27ter (4800/2400), v29 (9600/7200), v17
    /// (14400 down to 7200).
    #[arg(long, default_value = "v27ter,v29", value_name = "LIST")]
    pub modems: String,
    /// Give up (DCN) after this many seconds of exchanged audio.
    #[arg(long, default_value_t = 300, value_name = "N",
          value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub max_sec: u64,
    /// Offer and use error correction mode (T.30 Annex A; T.6 coding when both ends have it).
    #[arg(long)]
    pub ecm: bool,
    /// Our identity (CSI/TSI, up to 20 characters).
    #[arg(long, default_value = "cardpbx", value_name = "ID")]
    pub ident: String,
    /// Log T.30 progress on stderr.
    #[arg(short, long)]
    pub verbose: bool,
}

/// A path argument that may be left empty (`--in`/`--out` default to empty: not given).
fn path_or_empty() -> impl clap::builder::TypedValueParser<Value = PathBuf> {
    clap::builder::TypedValueParser::map(clap::builder::OsStringValueParser::new(), PathBuf::from)
}

/// Parses `--modems`.
pub fn parse_modems(list: &str) -> anyhow::Result<Vec<ModemFamily>> {
    let mut out = Vec::new();
    for m in list.split(',').map(str::trim).filter(|m| !m.is_empty()) {
        let f = match m.to_ascii_lowercase().as_str() {
            "v27ter" | "v27" => ModemFamily::V27ter,
            "v29" => ModemFamily::V29,
            "v17" => ModemFamily::V17,
            _ => bail!("--modems: unknown modem {m:?} (expected v27ter, v29, v17)"),
        };
        if !out.contains(&f) {
            out.push(f);
        }
    }
    if out.is_empty() {
        bail!("--modems: no modem given");
    }
    Ok(out)
}

/// The status word of the summary line (`success`, `t2_expired`, ...).
pub fn status_name(s: FaxStatus) -> String {
    let mut out = String::new();
    for (i, c) in format!("{s:?}").chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// Reads a document to send: every page converted with [`to_fax_page`].
pub fn load_document(path: &Path) -> anyhow::Result<Vec<FaxPage>> {
    let data = std::fs::read(path).with_context(|| format!("read {}", path.display()))?;
    let pages = read_tiff(&data).with_context(|| format!("{}", path.display()))?;
    Ok(pages.iter().map(to_fax_page).collect())
}

/// Writes received pages as TIFF-F (MH, LSB first, one strip per page).
pub fn save_tiff(path: &Path, pages: &[FaxPage]) -> anyhow::Result<()> {
    let opts = WriteOptions { coding: Coding::Mh, ..WriteOptions::default() };
    std::fs::write(path, write_tiff(pages, &opts))
        .with_context(|| format!("write {}", path.display()))
}

/// The two audio streams.
struct Link {
    out: File,
    inp: File,
}

fn is_fifo(p: &Path) -> bool {
    std::fs::metadata(p).map(|m| m.file_type().is_fifo()).unwrap_or(false)
}

impl Link {
    fn open(input: &Path, output: &Path, wait: Duration) -> anyhow::Result<Link> {
        let out = if is_fifo(output) {
            OpenOptions::new().read(true).write(true).open(output)
        } else {
            OpenOptions::new().write(true).create(true).truncate(true).open(output)
        }
        .with_context(|| format!("open {}", output.display()))?;
        let (tx, rx) = std::sync::mpsc::channel();
        let path = input.to_path_buf();
        std::thread::Builder::new()
            .name("fax-open-in".into())
            .spawn(move || {
                let _ = tx.send(File::open(&path));
            })
            .context("spawn")?;
        let inp = rx
            .recv_timeout(wait)
            .map_err(|_| anyhow!("{}: nobody opened it for writing", input.display()))?
            .with_context(|| format!("open {}", input.display()))?;
        Ok(Link { out, inp })
    }

    /// Writes one block; false if the far end is gone.
    fn write(&mut self, block: &[i16; BLOCK]) -> bool {
        let mut bytes = [0u8; BLOCK * 2];
        for (k, s) in block.iter().enumerate() {
            bytes[2 * k..2 * k + 2].copy_from_slice(&s.to_le_bytes());
        }
        self.out.write_all(&bytes).is_ok()
    }

    /// Reads one block; false at end of input.
    fn read(&mut self, block: &mut [i16; BLOCK]) -> bool {
        let mut bytes = [0u8; BLOCK * 2];
        if self.inp.read_exact(&mut bytes).is_err() {
            return false;
        }
        for (k, s) in block.iter_mut().enumerate() {
            *s = i16::from_le_bytes([bytes[2 * k], bytes[2 * k + 1]]);
        }
        true
    }
}

/// What a session achieved.
#[derive(Debug, Clone, PartialEq)]
pub struct FaxOutcome {
    /// The T.30 status, or `None` if the session never reached phase E.
    pub status: Option<FaxStatus>,
    /// Pages received (receive) in order.
    pub received: Vec<FaxPage>,
    /// Pages confirmed by the far end (send).
    pub pages_sent: usize,
    /// Rate of the last DCS, bit/s (0 if none).
    pub bit_rate: u32,
    /// Whether the last DCS chose ECM.
    pub ecm: bool,
    /// Audio exchanged, seconds.
    pub seconds: f64,
    /// Why the exchange stopped.
    pub why: &'static str,
}

fn handle_events(
    s: &mut FaxSession<SoftModem>,
    o: &mut FaxOutcome,
    verbose: bool,
    err: &mut dyn Write,
) {
    let t = s.now().as_secs_f64();
    while let Some(e) = s.poll_event() {
        match &e {
            T30Event::Negotiated(d) => {
                o.bit_rate = d.rate.bps();
                o.ecm = d.ecm;
            }
            T30Event::PageSent { accepted: true, .. } => o.pages_sent += 1,
            T30Event::PageReceived(p) => o.received.push(p.clone()),
            _ => {}
        }
        if verbose {
            let e = match e {
                T30Event::PageReceived(p) => format!(
                    "PageReceived({}x{} y_res={} bad_rows={})",
                    p.bitmap.width, p.bitmap.height, p.y_resolution, p.bad_rows
                ),
                T30Event::FrameSent(f) => format!("FrameSent({f:#04x})"),
                T30Event::FrameReceived(f) => format!("FrameReceived({f:#04x})"),
                other => format!("{other:?}"),
            };
            let _ = writeln!(err, "[{t:7.2}] {e}");
        }
    }
}

/// Runs one session over the link; never fails once the link is open.
fn exchange(
    session: &mut FaxSession<SoftModem>,
    link: &mut Link,
    max_sec: u64,
    verbose: bool,
    err: &mut dyn Write,
) -> FaxOutcome {
    let mut o = FaxOutcome {
        status: None,
        received: Vec::new(),
        pages_sent: 0,
        bit_rate: 0,
        ecm: false,
        seconds: 0.0,
        why: "max time reached",
    };
    let max_blocks = max_sec * BLOCKS_PER_SEC;
    let mut rx = [0i16; BLOCK];
    let mut blocks = 0u64;
    let mut tail = 0u64;
    let mut aborted_at = None;
    let mut far_end_gone = false;
    loop {
        let mut tx = [0i16; BLOCK];
        session.process(&rx, &mut tx);
        handle_events(session, &mut o, verbose, err);
        if !link.write(&tx) {
            o.why = "output closed by far end";
            far_end_gone = true;
            break;
        }
        if !link.read(&mut rx) {
            o.why = "input ended";
            far_end_gone = true;
            break;
        }
        blocks += 1;
        if session.is_finished() {
            tail += 1;
            if tail >= TAIL_BLOCKS {
                o.why = "phase E";
                break;
            }
        }
        if blocks >= max_blocks && aborted_at.is_none() {
            if verbose {
                let _ = writeln!(err, "--max-sec {max_sec} reached: aborting");
            }
            session.abort();
            aborted_at = Some(blocks);
        }
        if aborted_at.is_some_and(|a| blocks >= a + ABORT_BLOCKS) {
            o.why = "max time reached";
            break;
        }
    }
    o.seconds = blocks as f64 / BLOCKS_PER_SEC as f64;
    if far_end_gone {
        // Let T.30 run out on silence (e.g. T2 after the last MCF).
        let silence = [0i16; BLOCK];
        for _ in 0..DRAIN_BLOCKS {
            if session.is_finished() {
                break;
            }
            let mut tx = [0i16; BLOCK];
            session.process(&silence, &mut tx);
            handle_events(session, &mut o, verbose, err);
        }
    }
    o.status = session.status();
    o
}

/// Runs `cardpbx fax ...`; returns the exit code.
pub fn run(cmd: &FaxCmd) -> anyhow::Result<i32> {
    let stdout = std::io::stdout();
    let stderr = std::io::stderr();
    run_with(cmd, &mut stdout.lock(), &mut stderr.lock())
}

/// [`run`] with explicit output streams.
pub fn run_with(cmd: &FaxCmd, out: &mut dyn Write, err: &mut dyn Write) -> anyhow::Result<i32> {
    let (link_args, role, pages) = match cmd {
        FaxCmd::Send { to: Some(_), .. } | FaxCmd::List { .. } | FaxCmd::Show { .. } => {
            bail!("`fax send --to`, `fax list` and `fax show` talk to the daemon (faxsvc::cli)")
        }
        FaxCmd::Send { file, link, .. } => (link, Role::Calling, load_document(file)?),
        FaxCmd::Receive { link, .. } => (link, Role::Called, Vec::new()),
    };
    if link_args.input.as_os_str().is_empty() || link_args.output.as_os_str().is_empty() {
        bail!(
            "--in PATH and --out PATH are required (or `fax send --to NUMBER` through the daemon)"
        );
    }
    if role == Role::Calling && pages.is_empty() {
        bail!("the document has no pages");
    }
    let modem = SoftModem::with_families(&parse_modems(&link_args.modems)?);
    let cfg = T30Config {
        ident: link_args.ident.clone(),
        rates: modem.rates(),
        ecm: link_args.ecm,
        ..T30Config::default()
    };
    let npages = pages.len();
    let mut session = FaxSession::new(T30::new(role, pages, cfg), modem, LEVEL_DBM0);
    let mut link =
        Link::open(&link_args.input, &link_args.output, Duration::from_secs(link_args.max_sec))?;
    if link_args.verbose {
        let _ =
            writeln!(err, "fax: {role:?}, {npages} page(s) to send, modems {}", link_args.modems);
    }
    let o = exchange(&mut session, &mut link, link_args.max_sec, link_args.verbose, err);
    drop(link);
    let role_name = if role == Role::Calling { "send" } else { "recv" };
    let mut ok = o.status == Some(FaxStatus::Success);
    if let FaxCmd::Receive { file, pdf, .. } = cmd {
        if !o.received.is_empty() {
            save_tiff(file, &o.received)?;
            if let Some(pdf) = pdf {
                std::fs::write(pdf, write_pdf(&o.received))
                    .with_context(|| format!("write {}", pdf.display()))?;
            }
        }
        ok &= !o.received.is_empty();
    }
    let pages = if role == Role::Calling { o.pages_sent } else { o.received.len() };
    let status = o.status.map_or_else(
        || if o.why == "max time reached" { "timeout".to_string() } else { "dropped".to_string() },
        status_name,
    );
    writeln!(out, "fax: stopped after {:.2} s of exchanged audio ({})", o.seconds, o.why)?;
    writeln!(
        out,
        "fax summary: role={role_name} status={status} pages={pages} bit_rate={} ecm={}",
        o.bit_rate,
        u8::from(o.ecm)
    )?;
    Ok(if ok { 0 } else { crate::ctl::cli::EXIT_FAILED })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modem_lists() {
        assert_eq!(parse_modems("v27ter").unwrap(), [ModemFamily::V27ter]);
        assert_eq!(
            parse_modems("v29, v27ter,v29").unwrap(),
            [ModemFamily::V29, ModemFamily::V27ter]
        );
        assert_eq!(parse_modems("v17").unwrap(), [ModemFamily::V17]);
        assert!(parse_modems("v34").is_err());
        assert!(parse_modems(",").is_err());
    }

    #[test]
    fn status_words() {
        assert_eq!(status_name(FaxStatus::Success), "success");
        assert_eq!(status_name(FaxStatus::T2Expired), "t2_expired");
        assert_eq!(status_name(FaxStatus::RemoteDisconnected), "remote_disconnected");
    }
}
