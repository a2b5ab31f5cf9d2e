//! Meet-me conference rooms (`[[conference]]`) on the media engine's conference bridges.
//!
//! - Dialling a room's number (from an extension, or an incoming trunk call whose DID or
//!   trunk group target is the room, or the routing destination `conference:<number>`) answers
//!   the call. With a `pin` the caller hears the PIN prompt (two short beeps without
//!   `pin_prompt`) and enters `<pin>#` (`*` starts over); three wrong PINs clear the call. A
//!   `moderator_pin` joins as moderator. A full room (`max_parties`) gives a reject tone and
//!   clears the call (an extension then hears congestion tone until it hangs up).
//! - In the room every party hears the others (N-1 mixing with saturation in the engine);
//!   the others hear a short beep when someone joins (`entry_tone`) or leaves (`exit_tone`); a
//!   party alone hears `music_when_alone` if configured. DTMF during the conference (clamped:
//!   the others do not hear the digits): `*6`
//!   toggles self-mute (two low beeps: muted, two high beeps: unmuted); a moderator's `*7`
//!   mutes every other party, `*8` unmutes them.
//! - Control ([`Pbx::conference_mute`], [`Pbx::conference_kick`],
//!   [`Pbx::conference_invite`]): mute and unmute a member, kick one out, and invite a number
//!   (an extension, or an outside number on its normal route): the called party joins when it
//!   answers, without PIN.
//! - Each join, leave and mute change is published once on the event stream
//!   (`conference_joined`, `conference_left`, `conference_muted`). Each party's leg is a call
//!   with its own CDR: a dial-in leg is called the room's number; an invitation is a call from
//!   the room's number to the invited number.
//!
//! Engine bridges ([`ConfId`]) are handed out by one allocator, [`ConfIds`], through
//! [`Pbx::conf_id_alloc`] and [`Pbx::conf_id_release`]: a room holds a bridge while it has
//! members. Other features that mix with conference bridges take theirs from the same
//! allocator.

use super::{CallId, CallState, CallTimer, DialResult, Direction, LineKind, Pbx};
use crate::config::conference::ConferenceConfig;
use crate::config::model::Config;
use crate::engine::api::{ConfId, ConfMode, Detectors, EngineCommand, Source};
use cardpbx_dsp::tone::{Segment, ToneSpec};
use cardpbx_dsp::toneplan::ProgressTone;
use cardpbx_hal::{ChannelId, Tick};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// Wrong PINs before the call is cleared.
const PIN_TRIES: u8 = 3;
/// Most digits collected for a PIN before it is judged (longer entries are wrong).
const MAX_PIN_DIGITS: usize = 16;

/// The engine's conference bridges, handed out one at a time.
#[derive(Debug, Clone)]
pub(super) struct ConfIds {
    used: Vec<bool>,
}

impl ConfIds {
    /// `n` bridges, all free.
    pub(super) fn new(n: usize) -> ConfIds {
        ConfIds { used: vec![false; n.min(usize::from(u16::MAX))] }
    }

    /// A free bridge, now in use.
    pub(super) fn alloc(&mut self) -> Option<ConfId> {
        let i = self.used.iter().position(|u| !u)?;
        self.used[i] = true;
        Some(ConfId(i as u16))
    }

    /// Give bridge `id` back.
    pub(super) fn release(&mut self, id: ConfId) {
        if let Some(u) = self.used.get_mut(usize::from(id.0)) {
            *u = false;
        }
    }

    /// Bridges in use.
    pub(super) fn in_use(&self) -> usize {
        self.used.iter().filter(|u| **u).count()
    }
}

/// One party in a room.
#[derive(Debug, Clone)]
struct Member {
    id: u32,
    call: CallId,
    chan: ChannelId,
    muted: bool,
    moderator: bool,
    invited: bool,
    joined: Tick,
    /// A beep plays to the party instead of the room (until it is done).
    beeping: bool,
    /// DTMF after `*`, for `*6`, `*7`, `*8`.
    star: bool,
}

/// A room and who is in it.
#[derive(Debug, Clone)]
struct Room {
    cfg: ConferenceConfig,
    bridge: Option<ConfId>,
    members: Vec<Member>,
    next_member: u32,
}

/// A caller on the way in: entering the PIN, or hearing the reject tone before being cleared.
#[derive(Debug, Clone)]
enum Entry {
    /// Collecting `<pin>#`.
    Pin { room: usize, digits: String, tries: u8 },
    /// The reject tone plays; then the call is cleared for this reason.
    Rejecting(&'static str),
}

/// Conference state of call control.
#[derive(Debug)]
pub(super) struct ConfCtl {
    rooms: Vec<Room>,
    entries: HashMap<CallId, Entry>,
    /// Member calls: call → room index.
    members: HashMap<CallId, usize>,
    /// Invitations not yet answered: call → room index.
    invites: HashMap<CallId, usize>,
    /// The engine's conference bridges.
    pub(super) ids: ConfIds,
}

impl ConfCtl {
    /// The rooms of `cfg`, for an engine with `bridges` conference bridges.
    pub(super) fn new(cfg: &Config, bridges: usize) -> ConfCtl {
        ConfCtl {
            rooms: cfg
                .conferences
                .iter()
                .map(|c| Room { cfg: c.clone(), bridge: None, members: Vec::new(), next_member: 1 })
                .collect(),
            entries: HashMap::new(),
            members: HashMap::new(),
            invites: HashMap::new(),
            ids: ConfIds::new(bridges),
        }
    }

    fn room(&self, number: &str) -> Option<usize> {
        self.rooms.iter().position(|r| r.cfg.number == number)
    }
}

/// A member as `conference show` reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberInfo {
    /// The member number in the room (from 1, in order of joining).
    pub member: u32,
    /// The member's call.
    pub call: CallId,
    /// The line (port) the party is on.
    pub line: String,
    /// The party's number as known (caller ID, extension, or the invited number).
    pub number: String,
    /// The party is muted (listens only).
    pub muted: bool,
    /// Joined with the moderator PIN.
    pub moderator: bool,
    /// Joined by invitation.
    pub invited: bool,
    /// Milliseconds in the room.
    pub in_room_ms: u64,
}

/// A room as `conference list` and `show` report it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConferenceInfo {
    /// The room's number.
    pub number: String,
    /// The room's name.
    pub name: String,
    /// A PIN is asked for.
    pub pin: bool,
    /// Most parties.
    pub max_parties: u32,
    /// The parties in the room.
    pub members: Vec<MemberInfo>,
}

fn beeps(freq: f32, n: usize, on_ms: u32, off_ms: u32) -> ToneSpec {
    let on = Segment { ms: on_ms, freqs: [freq, 0.0], level_dbm0: -13.0 };
    let off = Segment::silence(off_ms);
    let segs: Vec<Segment> = (0..n).flat_map(|_| [on, off]).collect();
    ToneSpec::new(&segs, false).expect("beeps are a valid tone")
}

/// Asks for the PIN (without `pin_prompt`): two short 1400 Hz beeps.
fn pin_tone() -> ToneSpec {
    beeps(1400.0, 2, 150, 100)
}
/// To the others when a party joins: one 1200 Hz beep.
fn entry_tone() -> ToneSpec {
    beeps(1200.0, 1, 200, 50)
}
/// To the others when a party leaves: one 800 Hz beep.
fn exit_tone() -> ToneSpec {
    beeps(800.0, 1, 200, 50)
}
/// Muted: two low beeps; unmuted: two high beeps.
fn mute_tone(muted: bool) -> ToneSpec {
    beeps(if muted { 800.0 } else { 1200.0 }, 2, 100, 100)
}
/// Wrong PIN (retry), room full or rejected: three 700 Hz beeps.
fn reject_tone() -> ToneSpec {
    beeps(700.0, 3, 250, 150)
}

impl Pbx {
    /// A free conference bridge of the engine, now in use (rooms, and any other feature that
    /// mixes on a bridge, take theirs here so that no two share one).
    pub(super) fn conf_id_alloc(&mut self) -> Option<ConfId> {
        self.conf.ids.alloc()
    }

    /// Give conference bridge `id` back (after every channel left it).
    pub(super) fn conf_id_release(&mut self, id: ConfId) {
        self.conf.ids.release(id);
    }

    /// The rooms and their members.
    pub fn conferences(&self) -> Vec<ConferenceInfo> {
        self.conf
            .rooms
            .iter()
            .map(|r| ConferenceInfo {
                number: r.cfg.number.clone(),
                name: r.cfg.name.clone(),
                pin: r.cfg.pin.is_some(),
                max_parties: r.cfg.max_parties,
                members: r
                    .members
                    .iter()
                    .map(|m| {
                        let c = self.calls.get(&m.call);
                        let number = c
                            .map(|c| if m.invited { c.to.clone() } else { c.from.clone() })
                            .unwrap_or_default();
                        MemberInfo {
                            member: m.id,
                            call: m.call,
                            line: self.lines[m.chan.index()].port.clone(),
                            number,
                            muted: m.muted,
                            moderator: m.moderator,
                            invited: m.invited,
                            in_room_ms: self.now.saturating_sub(m.joined),
                        }
                    })
                    .collect(),
            })
            .collect()
    }

    /// Conference bridges of the engine in use.
    pub fn conference_bridges_in_use(&self) -> usize {
        self.conf.ids.in_use()
    }

    /// Whether `number` is a room's number.
    pub(super) fn conf_is_room(&self, number: &str) -> bool {
        self.conf.room(number).is_some()
    }

    fn room_member(&self, room: &str, member: u32) -> Result<(usize, usize), String> {
        let r = self.conf.room(room).ok_or_else(|| format!("no conference room {room}"))?;
        let m = self.conf.rooms[r]
            .members
            .iter()
            .position(|m| m.id == member)
            .ok_or_else(|| format!("room {room} has no member {member}"))?;
        Ok((r, m))
    }

    /// Mute (`true`) or unmute member `member` of room `room`.
    ///
    /// # Errors
    /// No such room or member.
    pub fn conference_mute(&mut self, room: &str, member: u32, muted: bool) -> Result<(), String> {
        let (r, m) = self.room_member(room, member)?;
        self.conf_set_mute(r, m, muted, false);
        self.conf_settle();
        Ok(())
    }

    /// Take member `member` out of room `room`: an extension hears busy tone until it hangs
    /// up, a trunk call is cleared.
    ///
    /// # Errors
    /// No such room or member.
    pub fn conference_kick(&mut self, room: &str, member: u32) -> Result<(), String> {
        let (r, m) = self.room_member(room, member)?;
        let (id, chan) = (self.conf.rooms[r].members[m].call, self.conf.rooms[r].members[m].chan);
        tracing::info!(room, member, call = id, "kicked out of the conference");
        self.conf_leave(id);
        self.cdr.note(id, "kicked from the conference");
        if matches!(self.lines[chan.index()].kind, LineKind::Fxs { .. }) {
            self.fail(id, ProgressTone::Busy, "kicked from the conference");
        } else {
            self.leg_gone(chan);
        }
        self.conf_settle();
        Ok(())
    }

    /// Call `number` (an extension, or an outside number on its route) and put the called
    /// party in room `room` when it answers. Returns the new call.
    ///
    /// # Errors
    /// No such room, the room is full, the number is unknown, a hunt group, or busy, or no
    /// line is free.
    pub fn conference_invite(&mut self, room: &str, number: &str) -> Result<CallId, String> {
        let r = self.conf.room(room).ok_or_else(|| format!("no conference room {room}"))?;
        let pending = self.conf.invites.values().filter(|i| **i == r).count();
        if self.conf.rooms[r].members.len() + pending >= self.conf.rooms[r].cfg.max_parties as usize
        {
            return Err(format!("room {room} is full"));
        }
        let from = self.conf.rooms[r].cfg.number.clone();
        let due = self.now + self.answer_timeout_ms;
        let id = match super::dial::analyse(self, number, true) {
            DialResult::Extension(phone) => {
                if !self.extension_free(phone) {
                    return Err(format!("extension {number} is busy"));
                }
                let id = self.new_call(Direction::Internal, phone, from);
                self.lines[phone.index()].call = None;
                self.set_to(id, number);
                self.start_ringing(id, &[phone], (due, CallTimer::TrunkNoAnswer));
                if !self.calls.get(&id).is_some_and(|c| c.ringing.contains(&phone)) {
                    self.drop_invite(id, phone);
                    return Err(format!("extension {number} cannot ring"));
                }
                if let Some(c) = self.calls.get_mut(&id) {
                    // The timer clears the call on leg `b` when nobody answers.
                    c.b = Some(phone);
                }
                id
            }
            DialResult::Route { route, number: out } => {
                let g = self.routes[route].group;
                let Some(first) = self.free_line(g) else {
                    return Err(format!(
                        "no free line in trunk group {}",
                        self.trunk_groups[g].name
                    ));
                };
                // The call's leg is the trunk it goes out on: start on the line the hunt
                // takes first, then follow the one it took.
                let id = self.new_call(Direction::Outbound, first, from);
                self.lines[first.index()].call = None;
                self.set_to(id, number);
                self.outbound(id, route, out);
                let Some(trunk) = self.calls.get(&id).and_then(|c| c.b) else {
                    self.drop_invite(id, first);
                    let idle = self.idle_detectors(first);
                    self.detect(first, idle);
                    return Err("no line could be seized".into());
                };
                if trunk != first {
                    let idle = self.idle_detectors(first);
                    self.detect(first, idle);
                }
                if let Some(c) = self.calls.get_mut(&id) {
                    c.a = trunk;
                    c.timer.get_or_insert((due, CallTimer::TrunkNoAnswer));
                }
                id
            }
            DialResult::HuntGroup(_) => return Err("a hunt group cannot be invited".into()),
            DialResult::Incomplete | DialResult::Unknown => {
                return Err(format!("unknown number {number}"))
            }
        };
        tracing::info!(room, number, call = id, "conference invitation");
        self.conf.invites.insert(id, r);
        self.conf_settle();
        Ok(id)
    }

    /// A line of trunk group `g` a new outgoing call would take first, if one is free.
    fn free_line(&self, g: usize) -> Option<ChannelId> {
        use cardpbx_signalling::loopstart::FxoState;
        self.hunt_order(g).into_iter().find(|chan| {
            let l = &self.lines[chan.index()];
            l.call.is_none()
                && match &l.kind {
                    LineKind::Fxo { line, .. } => line.state() == FxoState::Idle,
                    LineKind::Bchan { .. } => l.q931.is_none(),
                    LineKind::R2 { .. } => true,
                    _ => false,
                }
        })
    }

    /// Forget invitation call `id` that never went out (no record).
    fn drop_invite(&mut self, id: CallId, leg: ChannelId) {
        if let Some(c) = self.calls.remove(&id) {
            self.stop_ringing(&c.ringing);
            for l in c.ringing.iter().chain([&c.a]).chain(c.b.iter()) {
                if self.lines[l.index()].call == Some(id) {
                    self.lines[l.index()].call = None;
                }
            }
            self.counters.calls_total = self.counters.calls_total.saturating_sub(1);
        }
        if self.lines[leg.index()].call == Some(id) {
            self.lines[leg.index()].call = None;
        }
    }

    /// Publish what the last control request changed and hand the lines' commands on.
    fn conf_settle(&mut self) {
        self.collect();
        self.cc_pump();
        self.flush_call_events();
    }

    /// Handle `digits` dialled on call `id` as a room number; true when they are one (or the
    /// start of one and nothing else).
    pub(super) fn conf_dial(&mut self, id: CallId, digits: &str, complete: bool) -> bool {
        if let Some(r) = self.conf.room(digits) {
            self.conf_enter(id, r);
            return true;
        }
        !complete
            && self.conf.rooms.iter().any(|r| r.cfg.number.starts_with(digits))
            && super::dial::analyse(self, digits, false) == DialResult::Unknown
    }

    /// Routing destination `conference:<number>` for call `id`.
    pub(super) fn conf_goto(&mut self, id: CallId, number: &str) {
        match self.conf.room(number) {
            Some(r) => self.conf_enter(id, r),
            None => {
                self.set_to(id, number);
                let a = self.calls.get(&id).map(|c| c.a);
                self.cdr.note(id, "unknown conference room");
                if let Some(a) = a {
                    self.leg_gone(a);
                }
            }
        }
    }

    /// Call `id` dialled (or was routed to) room `r`: answer, ask for the PIN or join.
    fn conf_enter(&mut self, id: CallId, r: usize) {
        let number = self.conf.rooms[r].cfg.number.clone();
        self.set_to(id, &number);
        if !self.cc_answer_trunk(id) {
            return;
        }
        let Some(a) = self.calls.get(&id).map(|c| c.a) else { return };
        if self.conf_full(r) {
            self.conf_reject(id, "conference full");
            return;
        }
        if self.conf.rooms[r].cfg.pin.is_none() {
            self.conf_join(id, r, false, false);
            return;
        }
        self.conf.entries.insert(id, Entry::Pin { room: r, digits: String::new(), tries: 0 });
        self.detect(a, Detectors::DTMF);
        self.conf_ask_pin(r, a);
    }

    fn conf_ask_pin(&mut self, r: usize, a: ChannelId) {
        let prompt = self.conf.rooms[r].cfg.pin_prompt.clone().and_then(|p| self.cc.prompt(&p));
        match prompt {
            Some(prompt) => self.set_source(a, Source::Prompt { prompt, repeat: false }),
            None => self.set_source(a, Source::Tone(pin_tone())),
        }
    }

    fn conf_full(&self, r: usize) -> bool {
        let room = &self.conf.rooms[r];
        room.members.len() >= room.cfg.max_parties as usize
    }

    /// Play the reject tone to call `id`, then clear it for `why`.
    fn conf_reject(&mut self, id: CallId, why: &'static str) {
        let Some(a) = self.calls.get(&id).map(|c| c.a) else { return };
        tracing::info!(call = id, why, "conference entry refused");
        self.conf.entries.insert(id, Entry::Rejecting(why));
        self.detect(a, Detectors::NONE);
        self.set_source(a, Source::Tone(reject_tone()));
    }

    /// The reject tone is over: clear call `id`.
    fn conf_clear(&mut self, id: CallId, why: &'static str) {
        self.conf.entries.remove(&id);
        let Some(a) = self.calls.get(&id).map(|c| c.a) else { return };
        if matches!(self.lines[a.index()].kind, LineKind::Fxs { .. }) {
            self.fail(id, ProgressTone::Congestion, why);
        } else {
            self.cdr.note(id, why);
            self.leg_gone(a);
        }
    }

    /// Put call `id` (its `a` leg) in room `r`.
    fn conf_join(&mut self, id: CallId, r: usize, moderator: bool, invited: bool) {
        let Some(chan) = self.calls.get(&id).map(|c| c.a) else { return };
        let bridge = match self.conf.rooms[r].bridge {
            Some(b) => b,
            None => match self.conf_id_alloc() {
                Some(b) => {
                    self.conf.rooms[r].bridge = Some(b);
                    b
                }
                None => {
                    tracing::warn!(call = id, "no conference bridge of the engine is free");
                    self.conf_reject(id, "no conference bridge free");
                    return;
                }
            },
        };
        self.conf.entries.remove(&id);
        let room = &mut self.conf.rooms[r];
        let member = room.next_member;
        room.next_member += 1;
        room.members.push(Member {
            id: member,
            call: id,
            chan,
            muted: false,
            moderator,
            invited,
            joined: self.now,
            beeping: false,
            star: false,
        });
        let entry = room.cfg.entry_tone;
        let number = room.cfg.number.clone();
        self.conf.members.insert(id, r);
        self.cmd(EngineCommand::ConfJoin(bridge, chan, ConfMode::TalkListen));
        // Clamped: the others do not hear a party's `*6`.
        self.detect(chan, Detectors { clamp_dtmf: true, ..Detectors::DTMF });
        self.echo(chan, true);
        let line = self.lines[chan.index()].port.clone();
        tracing::info!(room = %number, member, call = id, %line, moderator, "joined the conference");
        self.publish(super::events::EventBody::ConferenceJoined {
            room: number,
            member,
            call: id,
            line,
            moderator,
        });
        let n = self.conf.rooms[r].members.len();
        for i in 0..n {
            if self.conf.rooms[r].members[i].call == id || !entry {
                self.conf_listen(r, i);
            } else {
                self.conf_beep(r, i, entry_tone());
            }
        }
    }

    /// Member `i` of room `r` hears the room again (or the music when alone).
    fn conf_listen(&mut self, r: usize, i: usize) {
        let room = &mut self.conf.rooms[r];
        let Some(bridge) = room.bridge else { return };
        let m = &mut room.members[i];
        m.beeping = false;
        let chan = m.chan;
        let alone = room.members.len() == 1;
        let music = room.cfg.music_when_alone.clone().filter(|_| alone);
        match music.and_then(|p| self.cc.prompt(&p)) {
            Some(prompt) => self.set_source(chan, Source::Prompt { prompt, repeat: true }),
            None => self.set_source(chan, Source::Conference(bridge)),
        }
    }

    /// Member `i` of room `r` hears `tone`, then the room again.
    fn conf_beep(&mut self, r: usize, i: usize, tone: ToneSpec) {
        let m = &mut self.conf.rooms[r].members[i];
        m.beeping = true;
        let chan = m.chan;
        self.set_source(chan, Source::Tone(tone));
    }

    /// Mute or unmute member `i` of room `r`; `beep` confirms it to the member.
    fn conf_set_mute(&mut self, r: usize, i: usize, muted: bool, beep: bool) {
        let room = &mut self.conf.rooms[r];
        let Some(bridge) = room.bridge else { return };
        let m = &mut room.members[i];
        if m.muted == muted {
            if beep {
                self.conf_beep(r, i, mute_tone(muted));
            }
            return;
        }
        m.muted = muted;
        let (chan, call, member) = (m.chan, m.call, m.id);
        let number = room.cfg.number.clone();
        let mode = if muted { ConfMode::ListenOnly } else { ConfMode::TalkListen };
        self.cmd(EngineCommand::ConfJoin(bridge, chan, mode));
        tracing::info!(room = %number, member, muted, "conference mute");
        self.publish(super::events::EventBody::ConferenceMuted {
            room: number,
            member,
            call,
            muted,
        });
        if beep {
            self.conf_beep(r, i, mute_tone(muted));
        } else {
            self.conf_listen(r, i);
        }
    }

    /// Call `id` leaves its room (hung up, kicked): the bridge lets go of its leg, the others
    /// hear the exit beep, a last party alone hears the music.
    fn conf_leave(&mut self, id: CallId) {
        let Some(r) = self.conf.members.remove(&id) else { return };
        let room = &mut self.conf.rooms[r];
        let Some(i) = room.members.iter().position(|m| m.call == id) else { return };
        let m = room.members.remove(i);
        let number = room.cfg.number.clone();
        let exit = room.cfg.exit_tone;
        if let Some(bridge) = room.bridge {
            self.cmd(EngineCommand::ConfLeave(bridge, m.chan));
        }
        let line = self.lines[m.chan.index()].port.clone();
        tracing::info!(room = %number, member = m.id, call = id, "left the conference");
        self.publish(super::events::EventBody::ConferenceLeft {
            room: number,
            member: m.id,
            call: id,
            line,
        });
        let n = self.conf.rooms[r].members.len();
        if n == 0 {
            if let Some(b) = self.conf.rooms[r].bridge.take() {
                self.conf_id_release(b);
            }
            self.conf.rooms[r].next_member = 1;
            return;
        }
        for i in 0..n {
            if exit {
                self.conf_beep(r, i, exit_tone());
            } else {
                self.conf_listen(r, i);
            }
        }
    }

    /// A call ended: it leaves its room, its entry or invitation is forgotten.
    pub(super) fn conf_call_gone(&mut self, id: CallId) {
        self.conf.entries.remove(&id);
        self.conf.invites.remove(&id);
        self.conf_leave(id);
    }

    /// Legs `a` and `b` are about to be bridged: when the call is an invitation that was
    /// answered, its party joins the room instead. True when so.
    pub(super) fn conf_bridge(&mut self, _a: ChannelId, b: ChannelId) -> bool {
        let Some(id) = self.lines[b.index()].call else { return false };
        let Some(r) = self.conf.invites.remove(&id) else { return false };
        if self.conf_full(r) {
            self.conf_reject(id, "conference full");
        } else {
            self.conf_join(id, r, false, true);
        }
        true
    }

    /// A tone or prompt ended on `chan`: the conference's when it played one there.
    pub(super) fn conf_play_done(&mut self, chan: ChannelId) -> bool {
        let Some(id) = self.lines[chan.index()].call else { return false };
        match self.conf.entries.get(&id) {
            Some(Entry::Rejecting(why)) => {
                let why = *why;
                self.conf_clear(id, why);
                return true;
            }
            Some(Entry::Pin { .. }) => return true,
            None => {}
        }
        let Some(&r) = self.conf.members.get(&id) else { return false };
        let Some(i) = self.conf.rooms[r].members.iter().position(|m| m.call == id) else {
            return false;
        };
        if self.conf.rooms[r].members[i].beeping {
            self.conf_listen(r, i);
        }
        true
    }

    /// A DTMF digit on `chan`: the conference's when the call enters a PIN or is in a room.
    pub(super) fn conf_digit(&mut self, chan: ChannelId, digit: char) -> bool {
        let Some(id) = self.lines[chan.index()].call else { return false };
        if self.calls.get(&id).is_none_or(|c| c.a != chan || c.state != CallState::Connected) {
            return false;
        }
        match self.conf.entries.remove(&id) {
            Some(Entry::Pin { room, digits, tries }) => {
                self.conf_pin_digit(id, chan, digit, room, digits, tries);
                return true;
            }
            Some(e @ Entry::Rejecting(_)) => {
                self.conf.entries.insert(id, e);
                return true;
            }
            None => {}
        }
        let Some(&r) = self.conf.members.get(&id) else { return false };
        let Some(i) = self.conf.rooms[r].members.iter().position(|m| m.call == id) else {
            return false;
        };
        let m = &mut self.conf.rooms[r].members[i];
        if digit == '*' {
            m.star = true;
            return true;
        }
        if !std::mem::take(&mut m.star) {
            return true;
        }
        let moderator = m.moderator;
        match digit {
            '6' => {
                let muted = !self.conf.rooms[r].members[i].muted;
                self.conf_set_mute(r, i, muted, true);
            }
            '7' | '8' if moderator => {
                let muted = digit == '7';
                for j in 0..self.conf.rooms[r].members.len() {
                    if j != i {
                        self.conf_set_mute(r, j, muted, false);
                    }
                }
                self.conf_beep(r, i, mute_tone(muted));
            }
            _ => {}
        }
        true
    }
}

impl Pbx {
    /// A digit of a PIN entry of call `id` on `chan` for room `r` (`digits` so far, `tries`
    /// wrong ones before).
    fn conf_pin_digit(
        &mut self,
        id: CallId,
        chan: ChannelId,
        digit: char,
        r: usize,
        mut digits: String,
        mut tries: u8,
    ) {
        match digit {
            '*' => digits.clear(),
            '#' => {
                let entered = std::mem::take(&mut digits);
                let cfg = &self.conf.rooms[r].cfg;
                let moderator = cfg.moderator_pin.as_deref() == Some(entered.as_str());
                if moderator || cfg.pin.as_deref() == Some(entered.as_str()) {
                    if self.conf_full(r) {
                        self.conf_reject(id, "conference full");
                    } else {
                        self.conf_join(id, r, moderator, false);
                    }
                    return;
                }
                tries += 1;
                tracing::info!(call = id, tries, "wrong conference PIN");
                if tries >= PIN_TRIES {
                    self.conf_reject(id, "wrong conference PIN");
                    return;
                }
                self.set_source(chan, Source::Tone(reject_tone()));
            }
            d => {
                // A prompt or tone still playing stops once the caller types.
                if digits.is_empty() && !matches!(self.sources[chan.index()].0, Source::Silence) {
                    self.set_source(chan, Source::Silence);
                }
                if digits.len() < MAX_PIN_DIGITS {
                    digits.push(d);
                }
            }
        }
        self.conf.entries.insert(id, Entry::Pin { room: r, digits, tries });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bridges_are_handed_out_once_and_reused() {
        let mut ids = ConfIds::new(2);
        let a = ids.alloc().unwrap();
        let b = ids.alloc().unwrap();
        assert_ne!(a, b);
        assert_eq!(ids.alloc(), None);
        assert_eq!(ids.in_use(), 2);
        ids.release(a);
        assert_eq!(ids.alloc(), Some(a));
        ids.release(ConfId(99));
        assert_eq!(ids.in_use(), 2);
    }

    #[test]
    fn tones_are_finite() {
        for t in [pin_tone(), entry_tone(), exit_tone(), mute_tone(true), reject_tone()] {
            let mut g = cardpbx_dsp::tone::ToneGen::new(t);
            let mut buf = [0i16; 16_000];
            g.fill(&mut buf);
            assert!(g.is_done(), "{t:?} ends within two seconds");
        }
    }
}
