//! One ISDN PRI D-channel end: the LAPD data link ([`crate::lapd`]) under Q.931 call control
//! ([`crate::q931::call`]), joined so that an application only handles frames and calls.
//!
//! Frames in ([`PriEndpoint::receive_frame`]) and out ([`PriOutput::Frame`]) are LAPD frames
//! without flags or FCS, as the HAL's HDLC channel and the D-channel SOCK_SEQPACKET socket carry
//! them. Time is the caller's `now` in milliseconds; nothing here reads a clock.
//!
//! The data link is kept up: it is established when the physical layer comes up, and when it
//! is released (by the far end, by N200 retries, or by a link failure) it is established again
//! after [`PriConfig::reestablish_ms`] for as long as the physical layer stays up. While the
//! physical layer is down (span alarm, D-channel unplugged) nothing is sent.

use std::collections::VecDeque;

use crate::lapd::{DataLink, LinkAction, LinkConfig, LinkSnapshot, LinkState, MdlError, Role};
use crate::q931::call::{CallEvent, Q931Action, Q931Config, Q931Stack, Side};

/// Settings of one PRI D-channel end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PriConfig {
    /// User (CPE) or network side; also decides the LAPD C/R bit use.
    pub side: Side,
    /// Data link parameters.
    pub link: LinkConfig,
    /// Call control parameters.
    pub q931: Q931Config,
    /// Wait after the data link was released before establishing it again, ms.
    pub reestablish_ms: u64,
}

impl PriConfig {
    /// The standard E1 PRI settings for `side`.
    pub fn new(side: Side) -> Self {
        PriConfig {
            side,
            link: LinkConfig::default(),
            q931: Q931Config::default(),
            reestablish_ms: 1_000,
        }
    }
}

/// What the endpoint wants done or reported, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PriOutput {
    /// Send this LAPD frame on the D-channel.
    Frame(Vec<u8>),
    /// A Q.931 call event.
    Event(CallEvent),
    /// The data link reached multiple-frame operation.
    LinkUp,
    /// The data link was released.
    LinkDown,
    /// A Q.921 management error indication (for counters and logs).
    Mdl(MdlError),
}

/// One end of a PRI D-channel: LAPD + Q.931.
#[derive(Debug)]
pub struct PriEndpoint {
    cfg: PriConfig,
    link: DataLink,
    q931: Q931Stack,
    out: VecDeque<PriOutput>,
    physical_up: bool,
    retry_at: Option<u64>,
    link_ups: u64,
    link_downs: u64,
    deaf: bool,
}

fn role(side: Side) -> Role {
    match side {
        Side::User => Role::User,
        Side::Network => Role::Network,
    }
}

impl PriEndpoint {
    /// An endpoint whose physical layer is down (call [`physical_up`](Self::physical_up)).
    pub fn new(cfg: PriConfig) -> Self {
        PriEndpoint {
            link: DataLink::new(role(cfg.side), cfg.link),
            q931: Q931Stack::new(cfg.side, cfg.q931.clone()),
            cfg,
            out: VecDeque::new(),
            physical_up: false,
            retry_at: None,
            link_ups: 0,
            link_downs: 0,
            deaf: false,
        }
    }

    /// Fault injection: while deaf, layer 3 ignores every message the data link delivers
    /// (LAPD still acknowledges them), so the far end's Q.931 timers run out.
    pub fn set_deaf(&mut self, deaf: bool) {
        self.deaf = deaf;
    }

    /// The settings.
    pub fn config(&self) -> &PriConfig {
        &self.cfg
    }

    /// The side this end plays.
    pub fn side(&self) -> Side {
        self.cfg.side
    }

    /// The physical layer is up (no span alarm, D-channel present): establish the data link.
    pub fn physical_up(&mut self, now: u64) {
        if self.physical_up {
            return;
        }
        self.physical_up = true;
        self.retry_at = None;
        self.link.establish(now);
        self.pump(now);
    }

    /// The physical layer failed: the data link is released at once (no DISC can get through),
    /// and Q.931 keeps active calls for T309.
    pub fn physical_down(&mut self, now: u64) {
        if !self.physical_up {
            return;
        }
        self.physical_up = false;
        self.retry_at = None;
        let was_up = self.link_is_up();
        // Replace the link entity: frames queued for the dead line are dropped with it.
        self.link = DataLink::new(role(self.cfg.side), self.cfg.link);
        if was_up {
            self.link_downs += 1;
            self.out.push_back(PriOutput::LinkDown);
        }
        self.q931.link_down(now);
        self.pump(now);
    }

    /// Whether the physical layer is up.
    pub fn is_physical_up(&self) -> bool {
        self.physical_up
    }

    /// Whether the data link is in multiple-frame operation.
    pub fn link_is_up(&self) -> bool {
        matches!(self.link.state(), LinkState::MultipleFrameEstablished | LinkState::TimerRecovery)
    }

    /// The data link's state and counters.
    pub fn link_snapshot(&self) -> LinkSnapshot {
        self.link.snapshot()
    }

    /// How often the data link came up and went down.
    pub fn link_transitions(&self) -> (u64, u64) {
        (self.link_ups, self.link_downs)
    }

    /// A frame arrived on the D-channel. Ignored while the physical layer is down.
    pub fn receive_frame(&mut self, now: u64, bytes: &[u8]) {
        if !self.physical_up {
            return;
        }
        self.link.receive(now, bytes);
        self.pump(now);
    }

    /// Runs the timers due at `now`.
    pub fn poll(&mut self, now: u64) {
        if self.physical_up {
            if self.retry_at.is_some_and(|t| t <= now) {
                self.retry_at = None;
                self.link.establish(now);
            }
            self.link.poll(now);
        }
        self.q931.poll(now);
        self.pump(now);
    }

    /// When [`poll`](Self::poll) is next needed.
    pub fn next_timeout(&self) -> Option<u64> {
        let link = if self.physical_up {
            [self.link.next_timeout(), self.retry_at].into_iter().flatten().min()
        } else {
            None
        };
        [link, self.q931.next_timeout()].into_iter().flatten().min()
    }

    /// The next output, oldest first.
    pub fn poll_output(&mut self) -> Option<PriOutput> {
        self.out.pop_front()
    }

    /// Read access to call control (states, channels).
    pub fn q931(&self) -> &Q931Stack {
        &self.q931
    }

    /// Runs a call-control request (`setup`, `alerting`, `connect`, `disconnect`, `restart`,
    /// ...) and passes what it sends down to the data link.
    pub fn call<R>(&mut self, now: u64, f: impl FnOnce(&mut Q931Stack, u64) -> R) -> R {
        let r = f(&mut self.q931, now);
        self.pump(now);
        r
    }

    /// Moves messages between the layers until both are quiet.
    fn pump(&mut self, now: u64) {
        loop {
            let mut moved = false;
            while let Some(a) = self.link.poll_action() {
                moved = true;
                match a {
                    LinkAction::Transmit(f) => {
                        if self.physical_up {
                            self.out.push_back(PriOutput::Frame(f));
                        }
                    }
                    LinkAction::Established => {
                        self.link_ups += 1;
                        self.out.push_back(PriOutput::LinkUp);
                        self.q931.link_up(now);
                    }
                    LinkAction::Released => {
                        self.link_downs += 1;
                        self.out.push_back(PriOutput::LinkDown);
                        self.q931.link_down(now);
                        if self.physical_up {
                            self.retry_at = Some(now + self.cfg.reestablish_ms);
                        }
                    }
                    LinkAction::Data(info) => {
                        if !self.deaf {
                            self.q931.receive(now, &info);
                        }
                    }
                    // Broadcast call offering is a BRI point-to-multipoint feature; a PRI
                    // network side never uses it, so UI information is not for us.
                    LinkAction::UiData(_) => {}
                    LinkAction::Error(e) => self.out.push_back(PriOutput::Mdl(e)),
                }
            }
            while let Some(a) = self.q931.poll_action() {
                moved = true;
                match a {
                    Q931Action::Send(msg) => {
                        // Refused only while the link is not established; Q.931 knows the
                        // link state and clears or keeps its calls accordingly.
                        let _ = self.link.send(now, msg);
                    }
                    Q931Action::Event(ev) => self.out.push_back(PriOutput::Event(ev)),
                }
            }
            if !moved {
                break;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::q931::call::{CallParams, CallState};
    use crate::q931::Cause;

    /// Two endpoints joined by a perfect D-channel, run on a shared clock.
    struct Pair {
        now: u64,
        a: PriEndpoint,
        b: PriEndpoint,
        ev_a: Vec<CallEvent>,
        ev_b: Vec<CallEvent>,
    }

    impl Pair {
        fn new() -> Self {
            let mut p = Pair {
                now: 0,
                a: PriEndpoint::new(PriConfig::new(Side::User)),
                b: PriEndpoint::new(PriConfig::new(Side::Network)),
                ev_a: Vec::new(),
                ev_b: Vec::new(),
            };
            p.a.physical_up(0);
            p.b.physical_up(0);
            p.settle();
            p
        }

        fn settle(&mut self) {
            loop {
                let mut moved = false;
                while let Some(o) = self.a.poll_output() {
                    moved = true;
                    match o {
                        PriOutput::Frame(f) => self.b.receive_frame(self.now, &f),
                        PriOutput::Event(e) => self.ev_a.push(e),
                        _ => {}
                    }
                }
                while let Some(o) = self.b.poll_output() {
                    moved = true;
                    match o {
                        PriOutput::Frame(f) => self.a.receive_frame(self.now, &f),
                        PriOutput::Event(e) => self.ev_b.push(e),
                        _ => {}
                    }
                }
                if !moved {
                    break;
                }
            }
        }

        fn advance(&mut self, ms: u64) {
            let end = self.now + ms;
            loop {
                let next = [self.a.next_timeout(), self.b.next_timeout()]
                    .into_iter()
                    .flatten()
                    .filter(|&t| t <= end)
                    .min();
                let Some(t) = next else { break };
                self.now = t.max(self.now);
                self.a.poll(self.now);
                self.b.poll(self.now);
                self.settle();
            }
            self.now = end;
        }
    }

    #[test]
    fn link_comes_up_restarts_and_carries_a_call() {
        let mut p = Pair::new();
        p.advance(100);
        assert!(p.a.link_is_up() && p.b.link_is_up());
        let now = p.now;
        let h = p
            .a
            .call(now, |q, t| q.setup(t, CallParams { called: "100".into(), ..Default::default() }))
            .unwrap();
        p.settle();
        let Some(CallEvent::Incoming { call, channel, called, .. }) =
            p.ev_b.iter().find(|e| matches!(e, CallEvent::Incoming { .. })).cloned()
        else {
            panic!("no incoming call: {:?}", p.ev_b)
        };
        assert_eq!(called, "100");
        p.b.call(now, |q, t| q.connect(t, call)).unwrap();
        p.settle();
        assert_eq!(p.a.q931().call_state(h), CallState::Active);
        assert_eq!(p.a.q931().call_channel(h), Some(channel));
        p.a.call(now, |q, t| q.disconnect(t, h, Cause::NORMAL_CLEARING)).unwrap();
        p.settle();
        assert!(p.ev_b.iter().any(|e| matches!(e, CallEvent::Released { .. })));
        assert_eq!(p.a.q931().call_count(), 0);
    }

    #[test]
    fn physical_loss_drops_the_link_and_it_returns_with_the_line() {
        let mut p = Pair::new();
        p.advance(100);
        assert!(p.a.link_is_up());
        let now = p.now;
        p.a.physical_down(now);
        assert!(!p.a.link_is_up());
        assert!(p.a.next_timeout().is_none() || p.a.q931().call_count() > 0);
        // The far end notices by T203/T200 and keeps trying; nothing gets through.
        p.advance(30_000);
        assert!(!p.b.link_is_up());
        let now = p.now;
        p.a.physical_up(now);
        p.settle();
        p.advance(3_000);
        assert!(p.a.link_is_up() && p.b.link_is_up());
        // Both ends re-establish at once, so the second SABME may reset the new link
        // (counted as another "up"); it went down exactly once.
        let (ups, downs) = p.a.link_transitions();
        assert!(ups >= 2, "ups {ups}");
        assert_eq!(downs, 1);
    }

    #[test]
    fn a_released_link_is_established_again() {
        let mut p = Pair::new();
        p.advance(100);
        let now = p.now;
        // The far end drops the link (DISC): we re-establish after reestablish_ms.
        p.b.physical_down(now);
        p.b.physical_up(now);
        p.settle();
        p.advance(5_000);
        assert!(p.a.link_is_up() && p.b.link_is_up());
    }
}
