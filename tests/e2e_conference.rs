//! End-to-end meet-me conferences on the simulator's virtual clock: phones and PRI callers dial
//! into rooms with PINs, hear each other mixed (checked with audio signatures: with all but two
//! parties muted, the two hear exactly each other, which also shows nobody hears themselves),
//! mute themselves with `*6`, are muted, kicked and invited through the control request
//! handler, are refused with a wrong PIN or when the room is full, and a 50-party room runs
//! on two PRI spans and the phones.

use cardpbx::ctl::conference::{serve, ConferenceArgs, ConferenceData};
use cardpbx::ctl::proto::CtlRequest;
use cardpbx::pbx::events::EventBody;
use cardpbx_dsp::toneplan::ProgressTone;
use cardpbx_sim::signature::BlockClass;
use cardpbx_sim::EndpointId;

mod support;
use support::Rig;

const CONFIG: &str = r#"
[system]
name = "e2e-conf"

[[card]]
name = "sim0"
driver = "sim"
fxs_ports = 5
fxo_ports = 1
e1_spans = 2
  [card.sim]
  seed = 11
  clock = "virtual"

[[extension]]
number = "2001"
port = "sim0/fxs1"
[[extension]]
number = "2002"
port = "sim0/fxs2"
[[extension]]
number = "2003"
port = "sim0/fxs3"
[[extension]]
number = "2004"
port = "sim0/fxs4"
[[extension]]
number = "2005"
port = "sim0/fxs5"

[[trunk_group]]
name = "isdn"
signalling = "pri_cpe"
ports = ["sim0/span1", "sim0/span2"]
incoming = "2005"

[[trunk_group]]
name = "analog"
ports = ["sim0/fxo1"]
incoming = "800"

[[route]]
prefix = "9"
trunk_group = "isdn"
strip = 1
min_digits = 3

[dialplan]
answer_timeout_s = 5

[[inbound]]
dnis = ["5550801"]
destination = "conference:801"

[[conference]]
number = "800"
name = "team"
pin = "1234"
moderator_pin = "9999"
max_parties = 5

[[conference]]
number = "801"
name = "small"
max_parties = 3
exit_tone = false

[[conference]]
number = "850"
name = "big"
max_parties = 50
entry_tone = false
exit_tone = false
"#;

fn rig() -> Rig {
    rig_answering(Some(800))
}

/// The rig with phones that answer ringing after `auto_answer_ms` (or never).
fn rig_answering(auto_answer_ms: Option<u32>) -> Rig {
    let mut r = Rig::new(CONFIG, |sc| sc.phone.auto_answer_ms = auto_answer_ms);
    r.until(8000, "both D-channels up", |s| s.card().pri_link_up(1) && s.card().pri_link_up(2));
    r.run(500);
    r
}

fn phone(n: u32) -> EndpointId {
    EndpointId::Phone(n)
}

fn bearer(span: u32, ts: u8) -> EndpointId {
    EndpointId::Bearer { span, ts }
}

/// Ask the control request handler.
fn ctl(
    r: &mut Rig,
    op: &str,
    room: Option<&str>,
    member: Option<u32>,
    number: Option<&str>,
) -> Result<ConferenceData, String> {
    let args = ConferenceArgs {
        op: op.into(),
        room: room.map(Into::into),
        member,
        number: number.map(Into::into),
    };
    // The request goes through the wire format first, as from a client.
    let line = CtlRequest::Conference(args).to_line();
    let CtlRequest::Conference(args) = CtlRequest::parse_line(line.trim_end()).unwrap() else {
        panic!("not a conference request");
    };
    let d = serve(r.p.pbx_mut(), &args);
    r.drain();
    d
}

fn members(r: &Rig, room: &str) -> usize {
    r.p.pbx().conferences().iter().find(|c| c.number == room).unwrap().members.len()
}

fn wait_members(r: &mut Rig, room: &str, n: usize) {
    let room2 = room.to_string();
    r.until(8000, &format!("room {room} has {n} parties"), move |s| {
        s.pbx().conferences().iter().find(|c| c.number == room2).unwrap().members.len() == n
    });
}

/// The member number of the party on `line` in `room`.
fn member_on(r: &Rig, room: &str, line: &str) -> u32 {
    let c = r.p.pbx().conferences().into_iter().find(|c| c.number == room).unwrap();
    c.members.iter().find(|m| m.line == line).unwrap_or_else(|| panic!("{line} in {c:?}")).member
}

/// Lift phone `port` and dial `digits` after dial tone (it stays off-hook).
fn dial_in(r: &mut Rig, port: u32, digits: &str) {
    r.lift(port);
    r.phone(port).dial(digits).unwrap();
}

/// A PRI call into `room` on `span`, answered; returns (handle, timeslot).
fn pri_in(r: &mut Rig, span: u32, ani: &str, room: &str) -> (u32, u8) {
    let h = r.p.card_mut().pri_call_in(span, Some(ani), room).unwrap();
    r.until(5000, "the PBX answers the PRI call", |s| {
        s.card().pri_calls(span).iter().any(|c| c.handle == h && c.answered)
    });
    let ts = r.p.card().pri_calls(span).into_iter().find(|c| c.handle == h).unwrap().ts.unwrap();
    (h, ts)
}

/// Expect, for `ms`, each listener to hear its given peer; returns the checks in order.
fn check_all(
    r: &mut Rig,
    pairs: &[(EndpointId, EndpointId)],
    ms: u64,
) -> Vec<cardpbx_sim::signature::AudioCheck> {
    for (who, peer) in pairs {
        r.p.card_mut().expect_peer(*who, Some(*peer));
    }
    let before: Vec<_> = pairs.iter().map(|(w, _)| r.p.card().audio_check(*w).unwrap()).collect();
    r.run(ms);
    let out = pairs
        .iter()
        .zip(before)
        .map(|((w, _), b)| r.p.card().audio_check(*w).unwrap().since(&b))
        .collect();
    for (who, _) in pairs {
        r.p.card_mut().expect_peer(*who, None);
    }
    out
}

/// `a` and `b` hear each other cleanly for `ms`.
fn talking(r: &mut Rig, a: EndpointId, b: EndpointId, ms: u64) {
    r.assert_talking(a, b, ms);
}

fn heard_now(r: &Rig, port: u32) -> BlockClass {
    r.p.card().phone(port).unwrap().hears().now
}

#[test]
fn three_parties_with_pin_mix_mute_kick_and_invite() {
    let mut r = rig();
    // Two phones and a PRI caller dial in with the PIN; phone 1 as moderator.
    dial_in(&mut r, 1, "8009999#");
    wait_members(&mut r, "800", 1);
    dial_in(&mut r, 2, "80055*1234#");
    wait_members(&mut r, "800", 2);
    let (h, ts) = pri_in(&mut r, 1, "13900001111", "800");
    r.run(500);
    assert_eq!(members(&r, "800"), 2, "the PRI caller waits for its PIN");
    r.p.card_mut().pri_remote_dtmf(1, h, "1234#").unwrap();
    wait_members(&mut r, "800", 3);
    let caller = bearer(1, ts);
    let info = ctl(&mut r, "show", Some("800"), None, None).unwrap();
    let room = &info.rooms[0];
    assert!(room.members[0].moderator && !room.members[1].moderator, "{room:?}");
    assert_eq!(room.members[2].number, "13900001111");
    r.run(1000);

    // Everyone hears a mix of the other two.
    for port in [1, 2] {
        assert_eq!(heard_now(&r, port), BlockClass::Other, "phone {port} hears a mix");
    }
    // (The caller's classifier may take the mix of the two phones' neighbouring signature
    // frequencies for one of them; the pairs below check each path on its own.)
    let d = check_all(&mut r, &[(caller, phone(1))], 1000);
    assert!(d[0].ok_blocks < 5 && d[0].error_blocks > 30, "the caller hears a mix: {d:?}");

    // Muting one party leaves the other two hearing exactly each other (no own voice), and
    // the muted party still hears both.
    let m1 = member_on(&r, "800", "sim0/fxs1");
    let m2 = member_on(&r, "800", "sim0/fxs2");
    let m3 = member_on(&r, "800", &format!("sim0/span1/ts{ts}"));
    ctl(&mut r, "mute", Some("800"), Some(m3), None).unwrap();
    r.run(300);
    talking(&mut r, phone(1), phone(2), 1500);
    let d = check_all(&mut r, &[(caller, phone(1))], 1000);
    assert!(d[0].ok_blocks < 5 && d[0].error_blocks > 30, "muted caller hears both: {d:?}");
    ctl(&mut r, "unmute", Some("800"), Some(m3), None).unwrap();
    ctl(&mut r, "mute", Some("800"), Some(m1), None).unwrap();
    r.run(300);
    talking(&mut r, phone(2), caller, 1500);
    ctl(&mut r, "unmute", Some("800"), Some(m1), None).unwrap();

    // *6 from phone 2 mutes it: phone 1 and the caller hear each other; *6 again unmutes.
    r.phone(2).dial("*6").unwrap();
    r.run(800);
    let info = ctl(&mut r, "show", Some("800"), None, None).unwrap();
    assert!(info.rooms[0].members.iter().any(|m| m.member == m2 && m.muted), "{info:?}");
    talking(&mut r, phone(1), caller, 1500);
    r.phone(2).dial("*6").unwrap();
    r.run(1000);
    assert_eq!(heard_now(&r, 1), BlockClass::Other, "phone 2 is heard again");
    // The moderator's *7 mutes the others, *8 unmutes them.
    r.phone(1).dial("*7").unwrap();
    r.run(800);
    let info = ctl(&mut r, "show", Some("800"), None, None).unwrap();
    let muted: Vec<bool> = info.rooms[0].members.iter().map(|m| m.muted).collect();
    assert_eq!(muted, [false, true, true]);
    r.phone(1).dial("*8").unwrap();
    r.run(800);
    let info = ctl(&mut r, "show", Some("800"), None, None).unwrap();
    assert!(info.rooms[0].members.iter().all(|m| !m.muted));

    // Kick phone 2: it hears busy tone; phone 1 and the caller hear each other.
    ctl(&mut r, "kick", Some("800"), Some(m2), None).unwrap();
    r.until(3000, "the kicked phone hears busy tone", |s| {
        s.card().phone(2).unwrap().hears().tone == Some(ProgressTone::Busy)
    });
    assert_eq!(members(&r, "800"), 2);
    r.run(500);
    talking(&mut r, phone(1), caller, 1500);
    r.hang_up(2);

    // Invite extension 2004 (auto-answers) and an outside number on the PRI.
    let d = ctl(&mut r, "invite", Some("800"), None, Some("2004")).unwrap();
    assert!(d.call.is_some());
    wait_members(&mut r, "800", 3);
    let d = ctl(&mut r, "invite", Some("800"), None, Some("913800002222")).unwrap();
    let out_call = d.call.unwrap();
    r.until(5000, "the exchange gets the invitation", |s| {
        s.card()
            .pri_dialed(1)
            .iter()
            .chain(s.card().pri_dialed(2).iter())
            .any(|n| n == "13800002222")
    });
    wait_members(&mut r, "800", 4);
    let info = ctl(&mut r, "show", Some("800"), None, None).unwrap();
    let invited: Vec<_> = info.rooms[0].members.iter().filter(|m| m.invited).collect();
    assert_eq!(invited.len(), 2, "{info:?}");
    assert_eq!(invited[0].line, "sim0/fxs4");
    assert_eq!(invited[1].call, out_call);
    let out_line = invited[1].line.clone();
    let (span, ots) = parse_bearer(&out_line);
    // Only the two invitees talk: they hear exactly each other.
    for m in [m1, m3] {
        ctl(&mut r, "mute", Some("800"), Some(m), None).unwrap();
    }
    r.run(1000);
    talking(&mut r, phone(4), bearer(span, ots), 1500);
    assert_eq!(heard_now(&r, 1), BlockClass::Other, "the muted moderator hears both");

    // Errors of the handler.
    let e = ctl(&mut r, "kick", Some("800"), Some(99), None).unwrap_err();
    assert!(e.contains("no member 99"), "{e}");
    let e = ctl(&mut r, "show", Some("899"), None, None).unwrap_err();
    assert!(e.contains("no conference room 899"), "{e}");
    let e = ctl(&mut r, "invite", Some("800"), None, Some("2001")).unwrap_err();
    assert!(e.contains("busy"), "{e}");
    let e = ctl(&mut r, "invite", Some("800"), None, Some("77")).unwrap_err();
    assert!(e.contains("unknown number"), "{e}");
    let e = ctl(&mut r, "mute", Some("800"), None, None).unwrap_err();
    assert!(e.contains("needs the field \"member\""), "{e}");

    // Everybody leaves; the bridge is given back; CDRs name the room.
    assert!(r.p.card_mut().pri_hang_up(1, h));
    r.hang_up(1);
    r.hang_up(4);
    r.run(500);
    let oh = parse_handle(&r, span, ots);
    assert!(r.p.card_mut().pri_hang_up(span, oh));
    wait_members(&mut r, "800", 0);
    r.run(500);
    assert_eq!(r.p.pbx().conference_bridges_in_use(), 0);
    let cdrs = r.cdrs();
    let dial_in = cdrs.iter().filter(|c| c.called == "800").count();
    assert_eq!(dial_in, 3, "three dial-in legs: {cdrs:#?}");
    let pri = cdrs.iter().find(|c| c.caller == "13900001111").unwrap();
    assert_eq!((pri.called.as_str(), pri.answered_ms.is_some()), ("800", true));
    let inv = cdrs.iter().find(|c| c.called == "913800002222").unwrap();
    assert_eq!((inv.caller.as_str(), inv.direction.as_str()), ("800", "outbound"));
    assert_eq!(inv.trunk_group.as_deref(), Some("isdn"));
    let kicked = cdrs.iter().find(|c| c.why.as_deref() == Some("kicked from the conference"));
    assert!(kicked.is_some(), "{cdrs:#?}");
    // Events: one per transition.
    let events: Vec<EventBody> =
        std::iter::from_fn(|| r.p.pbx_mut().pop_event()).map(|e| e.body).collect();
    let joined = events.iter().filter(|e| matches!(e, EventBody::ConferenceJoined { .. })).count();
    let left = events.iter().filter(|e| matches!(e, EventBody::ConferenceLeft { .. })).count();
    let mutes = events.iter().filter(|e| matches!(e, EventBody::ConferenceMuted { .. })).count();
    assert_eq!((joined, left), (5, 5), "{events:#?}");
    // m3, m1 muted+unmuted, *6 twice, *7/*8 on two others, and the last two mutes.
    assert_eq!(mutes, 2 + 2 + 2 + 4 + 2, "{events:#?}");
}

/// `sim0/spanN/tsM` → (N, M).
fn parse_bearer(line: &str) -> (u32, u8) {
    let rest = line.strip_prefix("sim0/span").unwrap();
    let (s, t) = rest.split_once("/ts").unwrap();
    (s.parse().unwrap(), t.parse().unwrap())
}

fn parse_handle(r: &Rig, span: u32, ts: u8) -> u32 {
    r.p.card()
        .pri_calls(span)
        .into_iter()
        .find(|c| c.ts == Some(ts) && c.cause.is_none())
        .unwrap()
        .handle
}

#[test]
fn wrong_pin_three_times_and_a_full_room_are_refused() {
    let mut r = rig();
    // Wrong PIN three times: reject tone, then congestion tone; nobody joined.
    dial_in(&mut r, 3, "8001111#");
    r.run(1500);
    r.phone(3).dial("2222#").unwrap();
    r.run(1500);
    assert_eq!(members(&r, "800"), 0);
    r.phone(3).dial("3333#").unwrap();
    r.until(5000, "congestion tone after three wrong PINs", |s| {
        s.card().phone(3).unwrap().hears().tone == Some(ProgressTone::Congestion)
    });
    assert_eq!(members(&r, "800"), 0);
    r.hang_up(3);
    // A wrong PIN from a PRI caller clears the call.
    let (h, _) = pri_in(&mut r, 1, "13900003333", "800");
    r.p.card_mut().pri_remote_dtmf(1, h, "1#2#3#").unwrap();
    r.until(8000, "the PRI caller is cleared", |s| {
        s.card().pri_calls(1).iter().any(|c| c.handle == h && c.cause.is_some())
    });
    let cdrs = r.cdrs();
    assert_eq!(cdrs.iter().filter(|c| c.why.as_deref() == Some("wrong conference PIN")).count(), 2);

    // Room 801 takes three: the fourth hears the reject tone and is cleared.
    for port in [1, 2, 4] {
        dial_in(&mut r, port, "801");
    }
    wait_members(&mut r, "801", 3);
    dial_in(&mut r, 5, "801");
    r.until(5000, "the fourth party hears congestion tone", |s| {
        s.card().phone(5).unwrap().hears().tone == Some(ProgressTone::Congestion)
    });
    assert_eq!(members(&r, "801"), 3);
    let h = r.p.card_mut().pri_call_in(2, Some("13900004444"), "801").unwrap();
    r.until(8000, "the PRI caller is refused", |s| {
        s.card().pri_calls(2).iter().any(|c| c.handle == h && c.cause.is_some())
    });
    let e = ctl(&mut r, "invite", Some("801"), None, Some("2003")).unwrap_err();
    assert!(e.contains("full"), "{e}");
    r.hang_up(5);
    // One leaves (no exit tone in 801): the other two hear each other.
    r.hang_up(4);
    wait_members(&mut r, "801", 2);
    r.run(500);
    talking(&mut r, phone(1), phone(2), 1500);
    // The routing destination conference:801 brings a PRI caller in.
    let (h, _) = pri_in(&mut r, 1, "13900005555", "5550801");
    wait_members(&mut r, "801", 3);
    r.run(500);
    assert_eq!(heard_now(&r, 1), BlockClass::Other, "phone 1 hears phone 2 and the caller");
    assert!(r.p.card_mut().pri_hang_up(1, h));
    wait_members(&mut r, "801", 2);
    let cdrs = r.cdrs();
    assert!(cdrs.iter().any(|c| c.why.as_deref() == Some("conference full") && c.called == "801"));
    let list = ctl(&mut r, "list", None, None, None).unwrap();
    let sizes: Vec<(String, usize)> =
        list.rooms.iter().map(|c| (c.number.clone(), c.members.len())).collect();
    assert_eq!(sizes, [("800".into(), 0), ("801".into(), 2), ("850".into(), 0)]);
}

#[test]
fn fifty_parties_on_two_spans_and_phones() {
    let mut r = rig();
    for port in 1..=5 {
        dial_in(&mut r, port, "850");
    }
    wait_members(&mut r, "850", 5);
    let mut bearers = Vec::new();
    for i in 0..45u32 {
        let span = if i < 30 { 1 } else { 2 };
        let (_, ts) = pri_in(&mut r, span, &format!("1390000{i:04}"), "850");
        bearers.push(bearer(span, ts));
    }
    wait_members(&mut r, "850", 50);
    // The 51st is refused.
    let h = r.p.card_mut().pri_call_in(2, Some("13911110000"), "850").unwrap();
    r.until(8000, "the 51st caller is refused", |s| {
        s.card().pri_calls(2).iter().any(|c| c.handle == h && c.cause.is_some())
    });
    assert_eq!(members(&r, "850"), 50);
    r.run(1000);
    // Everyone talking: a party hears the (clipped) sum of 49 signatures.
    assert_ne!(heard_now(&r, 3), BlockClass::Silence);

    let all: Vec<EndpointId> = (1..=5).map(phone).chain(bearers.iter().copied()).collect();
    let line = |e: &EndpointId| match e {
        EndpointId::Phone(p) => format!("sim0/fxs{p}"),
        EndpointId::Bearer { span, ts } => format!("sim0/span{span}/ts{ts}"),
        EndpointId::CoLine(_) => unreachable!(),
    };
    let ids: Vec<u32> = all.iter().map(|e| member_on(&r, "850", &line(e))).collect();
    // Only phone 1 talks: it hears silence (not itself), all 49 others hear it.
    for &m in &ids[1..] {
        ctl(&mut r, "mute", Some("850"), Some(m), None).unwrap();
    }
    r.run(500);
    let pairs: Vec<(EndpointId, EndpointId)> = all[1..].iter().map(|e| (*e, phone(1))).collect();
    let checks = check_all(&mut r, &pairs, 1000);
    for ((who, _), d) in pairs.iter().zip(&checks) {
        assert!(d.ok_blocks >= 38 && d.error_blocks == 0, "{who} hears phone 1: {d:?}");
    }
    assert_eq!(heard_now(&r, 1), BlockClass::Silence, "phone 1 does not hear itself");
    // Two talk (a bearer on each span): they hear exactly each other, the rest hear both.
    let (x, y) = (all[5], all[49]);
    ctl(&mut r, "mute", Some("850"), Some(ids[0]), None).unwrap();
    ctl(&mut r, "unmute", Some("850"), Some(ids[5]), None).unwrap();
    ctl(&mut r, "unmute", Some("850"), Some(ids[49]), None).unwrap();
    r.run(500);
    talking(&mut r, x, y, 1500);
    assert_eq!(heard_now(&r, 2), BlockClass::Other, "a listener hears both");
    // A party leaves: 49 remain and the last of them still hears the other talker.
    r.hang_up(5);
    wait_members(&mut r, "850", 49);
    talking(&mut r, x, y, 1000);
}

#[test]
fn an_invitation_nobody_answers_is_given_up() {
    let mut r = rig_answering(None);
    dial_in(&mut r, 1, "801");
    wait_members(&mut r, "801", 1);
    let call = ctl(&mut r, "invite", Some("801"), None, Some("2003")).unwrap().call.unwrap();
    r.until(3000, "extension 2003 rings", |s| s.card().phone(3).unwrap().is_ringing());
    r.until(8000, "the invitation is given up", |s| s.pbx().calls().iter().all(|c| c.id != call));
    r.run(7000);
    assert!(!r.p.card().phone(3).unwrap().is_ringing());
    assert_eq!(members(&r, "801"), 1);
    let cdr = r.cdrs().into_iter().find(|c| c.call_id == call).cloned().unwrap();
    assert_eq!((cdr.caller.as_str(), cdr.called.as_str()), ("801", "2003"));
    assert_eq!((cdr.cause.as_str(), cdr.answered_ms), ("no_answer", None), "{cdr:?}");
    r.hang_up(1);
    wait_members(&mut r, "801", 0);
    assert_eq!(r.p.pbx().conference_bridges_in_use(), 0);
}

#[test]
fn an_analog_trunk_caller_joins_with_its_pin_and_is_kicked() {
    let mut r = rig();
    dial_in(&mut r, 1, "8001234#");
    wait_members(&mut r, "800", 1);
    assert!(r.p.card_mut().co_line_mut(1).unwrap().ring_in(Some("13900006666")));
    r.until(8000, "the PBX answers the analog line", |s| {
        s.card().co_line(1).unwrap().state() == cardpbx_sim::CoState::Connected
    });
    r.run(1000);
    r.p.card_mut().co_line_mut(1).unwrap().remote_dtmf("1234#").unwrap();
    wait_members(&mut r, "800", 2);
    r.run(500);
    talking(&mut r, phone(1), EndpointId::CoLine(1), 1500);
    let m = member_on(&r, "800", "sim0/fxo1");
    ctl(&mut r, "kick", Some("800"), Some(m), None).unwrap();
    r.until(5000, "the analog line is released", |s| {
        s.card().co_line(1).unwrap().state() != cardpbx_sim::CoState::Connected
    });
    assert_eq!(members(&r, "800"), 1);
    let cdr = r.cdrs().into_iter().find(|c| c.caller == "13900006666").cloned().unwrap();
    assert_eq!(cdr.called, "800");
    assert_eq!(cdr.why.as_deref(), Some("kicked from the conference"));
    assert_eq!(cdr.trunk_group.as_deref(), Some("analog"));
}

#[test]
fn a_party_alone_hears_the_music_until_someone_joins() {
    // The music plays the signature of a bearer no call uses, so the phone recognises it.
    let music_sig = bearer(2, 31);
    let dir = tempfile::tempdir().unwrap();
    let plan = cardpbx_sim::signature::SignaturePlan::with_spans(5, 1, 2).unwrap();
    let wav = dir.path().join("alone.wav");
    support::tone_wav(&wav, plan.signature(music_sig), 1000);
    let text = format!(
        "{CONFIG}\n[[conference]]\nnumber = \"802\"\nname = \"music\"\nmusic_when_alone = \"{}\"\n",
        wav.display()
    );
    let mut r = Rig::new(&text, |_| {});
    dial_in(&mut r, 1, "802");
    wait_members(&mut r, "802", 1);
    r.run(300);
    let n = r.blocks_heard(phone(1), music_sig, 1000);
    assert!(n >= 35, "the lone party hears the music: {n}");
    dial_in(&mut r, 2, "802");
    wait_members(&mut r, "802", 2);
    r.run(500);
    talking(&mut r, phone(1), phone(2), 1500);
    r.hang_up(2);
    wait_members(&mut r, "802", 1);
    r.run(500);
    let n = r.blocks_heard(phone(1), music_sig, 1000);
    assert!(n >= 35, "alone again, the music is back: {n}");
}
