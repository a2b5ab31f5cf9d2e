//! `cardpbx pri probe`: our LAPD + Q.931 stack alone on an external D-channel socket, to check
//! a PRI link or another implementation (libpri's `pri_peer`) against ours.
//!
//! The probe connects to (or, with `--listen`, waits on) a SOCK_SEQPACKET socket carrying one
//! LAPD frame per message ([`cardpbx_sim::dsock`]), brings the data link up as the user or
//! network side, answers every incoming call (CALL PROCEEDING, ALERTING, CONNECT), places
//! `--calls` simultaneous calls to `--call NUMBER` once the interface is restarted, clears each
//! call `--hold` seconds after it was answered, and prints one line per Q.931 message, per
//! data-link frame that changes the link (SABME, UA, DISC, DM, FRMR) and per event. It ends
//! with `summary: placed=N answered=N completed=N failed=N`.
//!
//! Counting follows `pri_peer`: `answered` counts CONNECTs sent or received; `completed` counts
//! calls that were answered and cleared with cause 16 or 31; `failed` counts every other call,
//! including calls refused before a SETUP went out and calls still up at the end.

use super::pcap::{Dir, LapdPcap};
use anyhow::{bail, Context};
use cardpbx_signalling::lapd::{Frame, FrameKind, Supervisory, Unnumbered};
use cardpbx_signalling::pri::{PriConfig, PriEndpoint, PriOutput};
use cardpbx_signalling::q931::call::{CallEvent, CallHandle, CallParams, Side};
use cardpbx_signalling::q931::{Cause, ChannelSelection, Message, MessageType};
use cardpbx_sim::dsock::{DChannelSocket, DSockEvent, MAX_FRAME};
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Longest sleep between two looks at the socket, ms.
const MAX_SLEEP_MS: u64 = 5;
/// After the data link came up, and after the last RESTART from the far end, wait this long
/// before placing calls, ms: a far end that restarts channels when the link comes up (libpri
/// does, one channel at a time) would otherwise clear calls placed in the meantime.
const SETTLE_MS: u64 = 1_000;
/// Retry interval while the listening peer is not there yet, ms.
const CONNECT_RETRY_MS: u64 = 100;

/// What `cardpbx pri probe` was asked to do.
#[derive(Debug, Clone, PartialEq)]
pub struct ProbeOptions {
    /// The D-channel socket.
    pub socket: PathBuf,
    /// Our side of the interface.
    pub side: Side,
    /// Listen on the socket instead of connecting to it.
    pub listen: bool,
    /// Place calls to this number.
    pub call: Option<String>,
    /// How many simultaneous calls to place (with `call`).
    pub calls: u32,
    /// Clear each call this many ms after it was answered (`None`: wait for the far end).
    pub hold_ms: Option<u64>,
    /// Restart the whole interface (RESTART, class "all interfaces") each time the data link
    /// comes up, and place calls only once it is acknowledged.
    pub restart: bool,
    /// Write every frame to this pcap file.
    pub pcap: Option<PathBuf>,
    /// Linger this many ms after the last call cleared.
    pub exit_after_ms: u64,
    /// Give up after this many ms without any Q.931 message or event.
    pub idle_ms: u64,
}

/// The counts printed on the summary line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ProbeSummary {
    /// Calls we placed (SETUP sent, or refused locally before sending).
    pub placed: u32,
    /// Calls answered: CONNECT sent or received.
    pub answered: u32,
    /// Answered calls cleared with cause 16 or 31.
    pub completed: u32,
    /// Every other call, including calls still up at the end.
    pub failed: u32,
    /// Calls that came in.
    pub incoming: u32,
}

impl ProbeSummary {
    /// `summary: placed=N answered=N completed=N failed=N`.
    pub fn line(&self) -> String {
        format!(
            "summary: placed={} answered={} completed={} failed={}",
            self.placed, self.answered, self.completed, self.failed
        )
    }

    /// Whether the run went as asked: with `--call`, all `calls` placed and every call
    /// completed; when only answering, at least one call came in and every one completed.
    pub fn success(&self, opts: &ProbeOptions) -> bool {
        let total = self.placed + self.incoming;
        let asked = if opts.call.is_some() { self.placed == opts.calls } else { total > 0 };
        asked && self.failed == 0 && self.completed == total
    }
}

/// Why the probe stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndReason {
    /// Every call is done (and `exit_after` passed).
    Done,
    /// The far end closed the socket.
    PeerClosed,
    /// Nothing happened for `idle` ms.
    Idle,
}

#[derive(Debug)]
struct ProbeCall {
    outgoing: bool,
    channel: Option<u8>,
    answered_at: Option<u64>,
    clearing: bool,
}

/// One probe run (see the module documentation).
pub struct Probe<'a> {
    opts: ProbeOptions,
    ep: PriEndpoint,
    pcap: Option<LapdPcap<BufWriter<File>>>,
    out: &'a mut dyn Write,
    calls: BTreeMap<CallHandle, ProbeCall>,
    summary: ProbeSummary,
    start: Instant,
    last_activity: u64,
    restart_done: bool,
    last_restart_rx: Option<u64>,
    link_up_at: Option<u64>,
    placed_all: bool,
    quiet_since: Option<u64>,
}

/// Milliseconds as seconds with 3 decimals.
fn secs(ms: u64) -> String {
    format!("{}.{:03}", ms / 1000, ms % 1000)
}

fn cause_text(c: Cause) -> String {
    match c.description() {
        Some(d) => format!("{} ({d})", c.0),
        None => c.0.to_string(),
    }
}

/// One line describing a LAPD frame, or `None` for frames not worth a line (RR/RNR and
/// I-frames without a Q.931 message are only counted by the data link).
pub fn describe_frame(bytes: &[u8]) -> Option<String> {
    let Ok(f) = Frame::parse(bytes) else {
        return Some(format!("undecodable frame ({} octets)", bytes.len()));
    };
    match f.kind {
        FrameKind::I { ns, nr, .. } => {
            let Ok(d) = Message::decode(f.info) else {
                return Some(format!("I N(S)={ns} N(R)={nr} (not Q.931)"));
            };
            Some(describe_message(&d.message))
        }
        FrameKind::S { kind: Supervisory::Rej, nr, .. } => Some(format!("REJ N(R)={nr}")),
        FrameKind::S { .. } => None,
        FrameKind::U { kind, pf } => {
            let name = match kind {
                Unnumbered::Sabme => "SABME",
                Unnumbered::Ua => "UA",
                Unnumbered::Disc => "DISC",
                Unnumbered::Dm => "DM",
                Unnumbered::Ui => "UI",
                Unnumbered::Frmr => "FRMR",
                Unnumbered::Xid => "XID",
            };
            Some(format!("{name}{}", if pf { " P/F" } else { "" }))
        }
    }
}

/// `SETUP cref=0x0001/o ch=5 cause=...`: name, call reference (`o`: sent by the side that
/// allocated it, `d`: towards it), channel and cause when present.
pub fn describe_message(m: &Message) -> String {
    let mut s = format!(
        "{} cref={:#06x}/{}",
        m.msg_type.name(),
        m.call_ref.value,
        if m.call_ref.flag { 'd' } else { 'o' }
    );
    if let MessageType::Unknown(t) = m.msg_type {
        s.push_str(&format!(" type={t:#04x}"));
    }
    if let Some(ci) = m.channel_id() {
        match &ci.selection {
            ChannelSelection::Channels(v) => {
                let list: Vec<String> = v.iter().map(u8::to_string).collect();
                s.push_str(&format!(
                    " ch={}{}",
                    list.join(","),
                    if ci.exclusive { " exclusive" } else { " preferred" }
                ));
            }
            ChannelSelection::Any => s.push_str(" ch=any"),
            ChannelSelection::NoChannel => s.push_str(" ch=none"),
        }
    }
    if let Some(c) = m.called_number() {
        s.push_str(&format!(" called={}", c.digits));
    }
    if let Some(c) = m.cause() {
        s.push_str(&format!(" cause={}", cause_text(c.cause)));
    }
    if let Some(c) = m.restart_class() {
        s.push_str(&format!(" class={c:?}"));
    }
    s
}

impl<'a> Probe<'a> {
    /// A probe writing its lines to `out`; opens the pcap file if asked.
    ///
    /// # Errors
    /// The pcap file cannot be created.
    pub fn new(opts: ProbeOptions, out: &'a mut dyn Write) -> anyhow::Result<Self> {
        let pcap = match &opts.pcap {
            Some(p) => Some(LapdPcap::create(p, opts.side == Side::Network)?),
            None => None,
        };
        let mut cfg = PriConfig::new(opts.side);
        cfg.q931.restart_on_link_up = opts.restart;
        Ok(Probe {
            ep: PriEndpoint::new(cfg),
            opts,
            pcap,
            out,
            calls: BTreeMap::new(),
            summary: ProbeSummary::default(),
            start: Instant::now(),
            last_activity: 0,
            restart_done: false,
            last_restart_rx: None,
            link_up_at: None,
            placed_all: false,
            quiet_since: None,
        })
    }

    fn now(&self) -> u64 {
        self.start.elapsed().as_millis() as u64
    }

    fn line(&mut self, now: u64, text: &str) {
        let _ = writeln!(self.out, "{:>9} {text}", secs(now));
    }

    fn record(&mut self, dir: Dir, frame: &[u8]) -> anyhow::Result<()> {
        if let Some(p) = self.pcap.as_mut() {
            let ts = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
            p.write_frame(ts.as_micros() as u64, dir, frame).context("write pcap")?;
        }
        Ok(())
    }

    fn trace(&mut self, now: u64, dir: Dir, frame: &[u8]) {
        if let Some(d) = describe_frame(frame) {
            if Frame::parse(frame).is_ok_and(|f| matches!(f.kind, FrameKind::I { .. })) {
                self.last_activity = now;
            }
            let tag = if dir == Dir::Out { "TX" } else { "RX" };
            self.line(now, &format!("{tag} {d}"));
        }
    }

    /// Opens the socket: listens, or connects (retrying until `idle` while nobody listens).
    fn open_socket(&mut self) -> anyhow::Result<DChannelSocket> {
        let path = &self.opts.socket;
        if self.opts.listen {
            let s = DChannelSocket::listen(path)?;
            let now = self.now();
            self.line(now, &format!("listening on {}", path.display()));
            return Ok(s);
        }
        loop {
            match DChannelSocket::connect(path) {
                Ok(s) => return Ok(s),
                Err(e) if self.now() < self.opts.idle_ms => {
                    let kind = e.kind();
                    if kind != std::io::ErrorKind::NotFound
                        && kind != std::io::ErrorKind::ConnectionRefused
                    {
                        return Err(e.into());
                    }
                    std::thread::sleep(Duration::from_millis(CONNECT_RETRY_MS));
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Runs until the calls are done, the peer closes, or nothing happens for `idle`.
    ///
    /// # Errors
    /// Socket or pcap errors.
    pub fn run(mut self) -> anyhow::Result<(ProbeSummary, EndReason)> {
        let mut sock = self.open_socket()?;
        let mut buf = [0u8; MAX_FRAME];
        let reason = loop {
            let now = self.now();
            let mut busy = false;
            let mut closed = false;
            while let Some(ev) = sock.poll_event()? {
                busy = true;
                self.last_activity = now;
                match ev {
                    DSockEvent::Connected => {
                        self.line(now, "peer connected");
                        self.ep.physical_up(now);
                    }
                    DSockEvent::Disconnected => {
                        self.line(now, "peer closed the socket");
                        self.ep.physical_down(now);
                        closed = true;
                    }
                }
            }
            while let Some(n) = sock.try_recv(&mut buf)? {
                busy = true;
                let frame = buf[..n].to_vec();
                self.trace(now, Dir::In, &frame);
                self.record(Dir::In, &frame)?;
                self.ep.receive_frame(now, &frame);
            }
            if !closed && !sock.is_connected() && sock.is_finished() {
                self.line(now, "peer closed the socket");
                closed = true;
            }
            self.ep.poll(now);
            busy |= self.drain(now, &mut sock)?;
            self.clear_held(now);
            self.place_calls(now);
            busy |= self.drain(now, &mut sock)?;
            if closed {
                break EndReason::PeerClosed;
            }
            if let Some(r) = self.finished(now) {
                break r;
            }
            let mut wake = now + MAX_SLEEP_MS;
            if let Some(t) = self.ep.next_timeout() {
                wake = wake.min(t);
            }
            if !busy && wake > now {
                std::thread::sleep(Duration::from_millis(wake - now));
            }
        };
        let now = self.now();
        // Calls still up at the end failed.
        for (h, c) in std::mem::take(&mut self.calls) {
            self.summary.failed += 1;
            let what = if c.outgoing { "outgoing" } else { "incoming" };
            self.line(now, &format!("EV call #{} ({what}) still up at exit: failed", h.0));
        }
        let why = match reason {
            EndReason::Done => "all calls done",
            EndReason::PeerClosed => "peer closed",
            EndReason::Idle => "idle timeout",
        };
        self.line(now, &format!("end: {why}"));
        if let Some(p) = self.pcap.take() {
            p.finish().context("flush pcap")?;
        }
        let _ = writeln!(self.out, "{}", self.summary.line());
        Ok((self.summary, reason))
    }

    fn finished(&mut self, now: u64) -> Option<EndReason> {
        if now.saturating_sub(self.last_activity) >= self.opts.idle_ms {
            return Some(EndReason::Idle);
        }
        let wanted_done = self.opts.call.is_none() || self.placed_all;
        let any = self.summary.placed + self.summary.incoming > 0;
        if wanted_done && any && self.calls.is_empty() {
            let since = *self.quiet_since.get_or_insert(now);
            if now - since >= self.opts.exit_after_ms {
                return Some(EndReason::Done);
            }
        } else {
            self.quiet_since = None;
        }
        None
    }

    /// Sends the endpoint's frames and handles its events. Returns whether anything moved.
    fn drain(&mut self, now: u64, sock: &mut DChannelSocket) -> anyhow::Result<bool> {
        let mut moved = false;
        while let Some(o) = self.ep.poll_output() {
            moved = true;
            match o {
                PriOutput::Frame(f) => {
                    self.trace(now, Dir::Out, &f);
                    self.record(Dir::Out, &f)?;
                    if let Err(e) = sock.send(&f) {
                        self.line(now, &format!("send failed: {e}"));
                    }
                }
                PriOutput::LinkUp => {
                    self.last_activity = now;
                    self.link_up_at = Some(now);
                    self.line(now, "EV data link up");
                }
                PriOutput::LinkDown => {
                    self.last_activity = now;
                    self.line(now, "EV data link down");
                }
                PriOutput::Mdl(e) => self.line(now, &format!("EV MDL error {e:?}")),
                PriOutput::Event(ev) => {
                    self.last_activity = now;
                    self.on_event(now, ev);
                }
            }
        }
        Ok(moved)
    }

    fn on_event(&mut self, now: u64, ev: CallEvent) {
        match ev {
            CallEvent::Incoming { call, channel, called, calling, .. } => {
                self.summary.incoming += 1;
                self.line(
                    now,
                    &format!(
                        "EV incoming call #{} ch={channel} called={called} calling={}",
                        call.0,
                        calling.as_deref().unwrap_or("-")
                    ),
                );
                self.calls.insert(
                    call,
                    ProbeCall {
                        outgoing: false,
                        channel: Some(channel),
                        answered_at: None,
                        clearing: false,
                    },
                );
                let r = self.ep.call(now, |q, t| {
                    q.proceeding(t, call)?;
                    q.alerting(t, call)?;
                    q.connect(t, call)
                });
                match r {
                    Ok(()) => {
                        self.summary.answered += 1;
                        if let Some(c) = self.calls.get_mut(&call) {
                            c.answered_at = Some(now);
                        }
                        self.line(now, &format!("EV answered call #{}", call.0));
                    }
                    Err(e) => self.line(now, &format!("EV cannot answer call #{}: {e}", call.0)),
                }
            }
            CallEvent::Proceeding { call, channel } => {
                self.set_channel(call, channel);
                self.line(now, &format!("EV proceeding call #{} ch={channel}", call.0));
            }
            CallEvent::Alerting { call, channel, inband } => {
                self.set_channel(call, channel);
                let ib = if inband { " in-band" } else { "" };
                self.line(now, &format!("EV alerting call #{} ch={channel}{ib}", call.0));
            }
            CallEvent::Progress { call, inband } => {
                self.line(now, &format!("EV progress call #{} in-band={inband}", call.0));
            }
            CallEvent::Connected { call, channel } => {
                self.set_channel(call, channel);
                self.summary.answered += 1;
                if let Some(c) = self.calls.get_mut(&call) {
                    c.answered_at = Some(now);
                }
                self.line(now, &format!("EV connected call #{} ch={channel}", call.0));
            }
            CallEvent::ConnectAck { call } => {
                self.line(now, &format!("EV connect acknowledged call #{}", call.0));
            }
            CallEvent::Disconnected { call, cause } => {
                if let Some(c) = self.calls.get_mut(&call) {
                    c.clearing = true;
                }
                self.line(
                    now,
                    &format!("EV disconnected call #{} cause {}", call.0, cause_text(cause)),
                );
            }
            CallEvent::Released { call, cause } => {
                let rec = self.calls.remove(&call);
                let answered = rec.as_ref().is_some_and(|c| c.answered_at.is_some());
                let ok = answered && matches!(cause.0, 16 | 31);
                if ok {
                    self.summary.completed += 1;
                } else {
                    self.summary.failed += 1;
                }
                let ch =
                    rec.and_then(|c| c.channel).map(|c| format!(" ch={c}")).unwrap_or_default();
                self.line(
                    now,
                    &format!(
                        "EV released call #{}{ch} cause {}: {}",
                        call.0,
                        cause_text(cause),
                        if ok { "completed" } else { "failed" }
                    ),
                );
            }
            CallEvent::Information { call, digits, .. } => {
                self.line(now, &format!("EV information call #{} digits={digits}", call.0));
            }
            CallEvent::SetupAck { call, channel } => {
                // The probe sends its numbers en bloc, so a SETUP ACKNOWLEDGE only means the
                // peer wants more digits than it got; T304 clears the call if none come.
                self.line(now, &format!("EV setup acknowledge call #{} ch={channel}", call.0));
            }
            CallEvent::DigitTimeout { call } => {
                // Not reached: the probe never acknowledges a SETUP for overlap receiving.
                self.line(now, &format!("EV digit timeout call #{}", call.0));
            }
            CallEvent::RestartDone { channel, acknowledged } => {
                if channel.is_none() {
                    self.restart_done = true;
                }
                let what = channel.map_or("interface".to_string(), |c| format!("channel {c}"));
                let ack = if acknowledged { "acknowledged" } else { "not acknowledged" };
                self.line(now, &format!("EV restart of {what} done ({ack})"));
            }
            CallEvent::RestartReceived { channel } => {
                self.last_restart_rx = Some(now);
                let what = channel.map_or("interface".to_string(), |c| format!("channel {c}"));
                self.line(now, &format!("EV far end restarted {what}"));
            }
        }
    }

    fn set_channel(&mut self, call: CallHandle, channel: u8) {
        if let Some(c) = self.calls.get_mut(&call) {
            c.channel = Some(channel);
        }
    }

    /// Clears the calls whose hold time is over.
    fn clear_held(&mut self, now: u64) {
        let Some(hold) = self.opts.hold_ms else {
            return;
        };
        let due: Vec<CallHandle> = self
            .calls
            .iter()
            .filter(|(_, c)| !c.clearing && c.answered_at.is_some_and(|t| now >= t + hold))
            .map(|(h, _)| *h)
            .collect();
        for h in due {
            if let Some(c) = self.calls.get_mut(&h) {
                c.clearing = true;
            }
            match self.ep.call(now, |q, t| q.disconnect(t, h, Cause::NORMAL_CLEARING)) {
                Ok(()) => self.line(now, &format!("EV clearing call #{} (hold over)", h.0)),
                Err(e) => self.line(now, &format!("EV cannot clear call #{}: {e}", h.0)),
            }
        }
    }

    /// Places the asked calls once the link is up, our RESTART (if any) is done, and the link
    /// has been quiet of RESTARTs from the far end for [`SETTLE_MS`].
    fn place_calls(&mut self, now: u64) {
        let Some(number) = self.opts.call.clone() else {
            return;
        };
        if self.placed_all || !self.ep.link_is_up() {
            return;
        }
        if self.ep.config().q931.restart_on_link_up && !self.restart_done {
            return;
        }
        let settled = [self.link_up_at, self.last_restart_rx].into_iter().flatten().max();
        if settled.is_some_and(|t| now < t + SETTLE_MS) {
            return;
        }
        self.placed_all = true;
        let side = self.opts.side;
        let channels = self.ep.config().q931.channels.clone();
        for _ in 0..self.opts.calls {
            // Channels are proposed in ascending order: the network side assigns them
            // (exclusive), the user side only prefers them and lets the network choose.
            let q = self.ep.q931();
            let channel = channels
                .iter()
                .copied()
                .find(|&c| q.channel_owner(c).is_none() && !q.channel_restarting(c));
            let params = CallParams {
                called: number.clone(),
                calling: None,
                channel,
                exclusive: side == Side::Network,
                calling_restricted: false,
                overlap: false,
            };
            self.summary.placed += 1;
            match self.ep.call(now, |q, t| q.setup(t, params)) {
                Ok(h) => {
                    let ch = channel.map_or("any".to_string(), |c| c.to_string());
                    self.line(now, &format!("EV placing call #{} to {number} ch={ch}", h.0));
                    self.calls.insert(
                        h,
                        ProbeCall { outgoing: true, channel, answered_at: None, clearing: false },
                    );
                }
                Err(e) => {
                    self.summary.failed += 1;
                    self.line(now, &format!("EV call to {number} refused: {e}"));
                }
            }
        }
    }
}

/// Runs a probe printing to stdout; returns the process exit status (0 only on success).
///
/// # Errors
/// Bad options, socket or pcap errors.
pub fn run_probe(opts: ProbeOptions) -> anyhow::Result<i32> {
    if opts.call.is_some() && !(1..=30).contains(&opts.calls) {
        bail!("--calls must be between 1 and 30, got {}", opts.calls);
    }
    let stdout = std::io::stdout();
    let mut lock = stdout.lock();
    let probe = Probe::new(opts.clone(), &mut lock)?;
    let (summary, _) = probe.run()?;
    Ok(if summary.success(&opts) { 0 } else { crate::ctl::cli::EXIT_FAILED })
}

#[cfg(test)]
mod tests {
    use super::*;
    use cardpbx_signalling::q931::{
        BearerCapability, CallRef, CalledNumber, CauseIe, ChannelId, Ie, Location,
    };

    fn opts(side: Side, socket: PathBuf) -> ProbeOptions {
        ProbeOptions {
            socket,
            side,
            listen: false,
            call: None,
            calls: 1,
            hold_ms: None,
            restart: false,
            pcap: None,
            exit_after_ms: 200,
            idle_ms: 20_000,
        }
    }

    #[test]
    fn describes_messages_and_frames() {
        let m = Message::setup(
            CallRef::new(1, false),
            BearerCapability::speech_alaw(),
            Some(ChannelId::exclusive(5)),
            None,
            CalledNumber::new(0, 1, "5551234"),
        );
        assert_eq!(describe_message(&m), "SETUP cref=0x0001/o ch=5 exclusive called=5551234");
        let d = Message::new(CallRef::new(0x12, true), MessageType::Disconnect)
            .with(Ie::Cause(CauseIe::new(Location::USER, Cause::USER_BUSY)));
        assert_eq!(describe_message(&d), "DISCONNECT cref=0x0012/d cause=17 (user busy)");
        let mut iframe = vec![0x00, 0x01, 0x00, 0x00];
        iframe.extend(m.to_bytes());
        assert_eq!(
            describe_frame(&iframe).unwrap(),
            "SETUP cref=0x0001/o ch=5 exclusive called=5551234"
        );
        assert_eq!(describe_frame(&[0x00, 0x01, 0x7f]).unwrap(), "SABME P/F");
        assert_eq!(describe_frame(&[0x00, 0x01, 0x01, 0x00]), None, "RR is not printed");
        assert!(describe_frame(&[0x01]).unwrap().starts_with("undecodable"));
    }

    #[test]
    fn summary_success_rules() {
        let mut o = opts(Side::User, "x".into());
        let s = ProbeSummary { incoming: 2, answered: 2, completed: 2, ..Default::default() };
        assert!(s.success(&o));
        assert!(!ProbeSummary::default().success(&o), "an answering probe needs a call");
        o.call = Some("1".into());
        o.calls = 3;
        let placed = ProbeSummary { placed: 3, answered: 3, completed: 3, ..Default::default() };
        assert!(placed.success(&o));
        assert!(!ProbeSummary { failed: 1, completed: 2, ..placed }.success(&o));
        assert!(!ProbeSummary { placed: 2, completed: 2, ..placed }.success(&o));
        assert_eq!(placed.line(), "summary: placed=3 answered=3 completed=3 failed=0");
    }

    /// Two probes over a real socket: one network side listening and answering, one user side
    /// placing calls with a hold time. Both must complete every call.
    #[test]
    fn two_probes_complete_calls_over_a_socket() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d.sock");
        let mut net = opts(Side::Network, path.clone());
        net.listen = true;
        net.pcap = Some(dir.path().join("net.pcap"));
        // The listener waits for us to close, however slow this machine is today (with a
        // short exit-after it could finish between our calls and close on us).
        net.exit_after_ms = 600_000;
        let mut user = opts(Side::User, path.clone());
        user.call = Some("5551234".into());
        user.calls = 3;
        user.hold_ms = Some(100);
        user.restart = true;
        let net_opts = net.clone();
        let server = std::thread::spawn(move || {
            let mut out = Vec::new();
            let r = Probe::new(net_opts, &mut out).unwrap().run().unwrap();
            (r, String::from_utf8(out).unwrap())
        });
        let mut out = Vec::new();
        let (us, ureason) = Probe::new(user.clone(), &mut out).unwrap().run().unwrap();
        let utext = String::from_utf8(out).unwrap();
        let ((ns, nreason), ntext) = server.join().unwrap();
        assert_eq!(ureason, EndReason::Done, "{utext}");
        assert_eq!(
            us,
            ProbeSummary { placed: 3, answered: 3, completed: 3, ..Default::default() },
            "{utext}"
        );
        assert!(us.success(&user));
        assert!(utext.ends_with("summary: placed=3 answered=3 completed=3 failed=0\n"), "{utext}");
        assert!(utext.contains("TX SETUP cref="), "{utext}");
        assert!(utext.contains("RX CONNECT cref="), "{utext}");
        // The listener ends when we close (or when its own calls are done first).
        assert!(matches!(nreason, EndReason::PeerClosed | EndReason::Done), "{ntext}");
        assert_eq!(ns.incoming, 3, "{ntext}");
        assert_eq!(ns.completed, 3, "{ntext}");
        assert!(ns.success(&net), "{ntext}");
        assert!(std::fs::metadata(dir.path().join("net.pcap")).unwrap().len() > 24);
    }

    #[test]
    fn idle_listener_gives_up() {
        let dir = tempfile::tempdir().unwrap();
        let mut o = opts(Side::Network, dir.path().join("d.sock"));
        o.listen = true;
        o.idle_ms = 50;
        let mut out = Vec::new();
        let (s, r) = Probe::new(o.clone(), &mut out).unwrap().run().unwrap();
        assert_eq!(r, EndReason::Idle);
        assert!(!s.success(&o));
    }
}
