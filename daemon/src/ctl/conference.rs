//! `cardpbx conference list|show|mute|unmute|kick|invite`: the technician's (and CTI's) control
//! of meet-me conference rooms, over the control socket's `conference` request:
//!
//! ```text
//! {"cmd":"conference","op":"list"}
//! {"cmd":"conference","op":"show","room":"800"}
//! {"cmd":"conference","op":"mute","room":"800","member":2}      (also "unmute", "kick")
//! {"cmd":"conference","op":"invite","room":"800","number":"2003"}
//! ```
//!
//! Every answer carries the rooms concerned (all for `list`, the one named otherwise) as they
//! are after the operation; `invite` also gives the new call's id.

use super::cli::{EXIT_FAILED, EXIT_OK, EXIT_UNREACHABLE, EXIT_USAGE};
use super::client::CtlClient;
use super::proto::{CtlData, CtlRequest};
use crate::pbx::conference::ConferenceInfo;
use crate::pbx::Pbx;
use clap::Subcommand;
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::Path;

/// The operations of the `conference` request.
pub const OPS: [&str; 6] = ["list", "show", "mute", "unmute", "kick", "invite"];

/// The fields of a `conference` request.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConferenceArgs {
    /// `list`, `show`, `mute`, `unmute`, `kick` or `invite`.
    pub op: String,
    /// The room's number (all but `list`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub room: Option<String>,
    /// The member number (`mute`, `unmute`, `kick`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub member: Option<u32>,
    /// The number to call (`invite`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub number: Option<String>,
}

impl ConferenceArgs {
    /// Check that the fields `op` needs are there (and no others).
    ///
    /// # Errors
    /// An unknown operation, or a missing or superfluous field, in words.
    pub fn validate(&self) -> Result<(), String> {
        let op = self.op.as_str();
        if !OPS.contains(&op) {
            return Err(format!("unknown conference op {op:?} (ops: {})", OPS.join(", ")));
        }
        let need_room = op != "list";
        let need_member = matches!(op, "mute" | "unmute" | "kick");
        let need_number = op == "invite";
        for (field, given, needed) in [
            ("room", self.room.is_some(), need_room),
            ("member", self.member.is_some(), need_member),
            ("number", self.number.is_some(), need_number),
        ] {
            if needed && !given {
                return Err(format!("conference {op} needs the field {field:?}"));
            }
            if given && !needed {
                return Err(format!("conference {op} takes no field {field:?}"));
            }
        }
        Ok(())
    }
}

/// Answer to `conference`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConferenceData {
    /// The rooms concerned, after the operation.
    pub rooms: Vec<ConferenceInfo>,
    /// `invite`: the call placed to the invited number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call: Option<u64>,
}

/// Carry out a `conference` request on call control (the daemon's control loop calls this).
///
/// # Errors
/// A malformed request, an unknown room or member, or an invitation that cannot be placed.
pub fn serve(pbx: &mut Pbx, args: &ConferenceArgs) -> Result<ConferenceData, String> {
    args.validate()?;
    let room = args.room.clone().unwrap_or_default();
    let member = args.member.unwrap_or(0);
    let mut call = None;
    match args.op.as_str() {
        "mute" => pbx.conference_mute(&room, member, true)?,
        "unmute" => pbx.conference_mute(&room, member, false)?,
        "kick" => pbx.conference_kick(&room, member)?,
        "invite" => {
            call = Some(pbx.conference_invite(&room, args.number.as_deref().unwrap_or(""))?)
        }
        _ => {}
    }
    let mut rooms = pbx.conferences();
    if args.op != "list" {
        rooms.retain(|r| r.number == room);
        if rooms.is_empty() {
            return Err(format!("no conference room {room}"));
        }
    }
    Ok(ConferenceData { rooms, call })
}

/// `cardpbx conference ...`
#[derive(Debug, Clone, PartialEq, Eq, Subcommand)]
pub enum ConferenceCmd {
    /// List the rooms with the number of parties in each.
    List {
        /// Print the daemon's data as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show a room's members: member number, line, number, muted, moderator.
    Show {
        /// The room's number.
        room: String,
        /// Print the daemon's data as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Mute a member (it still hears the room).
    Mute {
        /// The room's number.
        room: String,
        /// The member number (see `show`).
        member: u32,
        /// Print the daemon's data as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Unmute a member.
    Unmute {
        /// The room's number.
        room: String,
        /// The member number (see `show`).
        member: u32,
        /// Print the daemon's data as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Take a member out of the room (a trunk call is cleared, a phone hears busy tone).
    Kick {
        /// The room's number.
        room: String,
        /// The member number (see `show`).
        member: u32,
        /// Print the daemon's data as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Call a number (an extension, or an outside number with its route prefix) and put the
    /// called party in the room when it answers.
    Invite {
        /// The room's number.
        room: String,
        /// The number to call.
        number: String,
        /// Print the daemon's data as JSON.
        #[arg(long)]
        json: bool,
    },
}

impl ConferenceCmd {
    /// The request this command sends and whether `--json` was given.
    pub fn request(&self) -> (CtlRequest, bool) {
        let a = |op: &str, room: Option<&String>, member: Option<u32>, number: Option<&String>| {
            ConferenceArgs { op: op.into(), room: room.cloned(), member, number: number.cloned() }
        };
        let (args, json) = match self {
            ConferenceCmd::List { json } => (a("list", None, None, None), *json),
            ConferenceCmd::Show { room, json } => (a("show", Some(room), None, None), *json),
            ConferenceCmd::Mute { room, member, json } => {
                (a("mute", Some(room), Some(*member), None), *json)
            }
            ConferenceCmd::Unmute { room, member, json } => {
                (a("unmute", Some(room), Some(*member), None), *json)
            }
            ConferenceCmd::Kick { room, member, json } => {
                (a("kick", Some(room), Some(*member), None), *json)
            }
            ConferenceCmd::Invite { room, number, json } => {
                (a("invite", Some(room), None, Some(number)), *json)
            }
        };
        (CtlRequest::Conference(args), json)
    }
}

/// Carry out `cardpbx conference ...` against the daemon at `socket_path`; returns the exit
/// code.
///
/// # Errors
/// When the output cannot be written.
pub fn run_conference(
    cmd: &ConferenceCmd,
    socket_path: &Path,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> anyhow::Result<i32> {
    let (req, json) = cmd.request();
    if let CtlRequest::Conference(a) = &req {
        if let Err(e) = a.validate() {
            writeln!(err, "cardpbx: {e}")?;
            return Ok(EXIT_USAGE);
        }
    }
    let data = match CtlClient::connect(socket_path).and_then(|mut c| c.request(req)) {
        Ok(d) => d,
        Err(e) => {
            writeln!(err, "cardpbx: {e}")?;
            return Ok(if e.is_unreachable() { EXIT_UNREACHABLE } else { EXIT_FAILED });
        }
    };
    let CtlData::Conference(d) = data else {
        anyhow::bail!("unexpected answer {:?}", data.request().name());
    };
    if json {
        writeln!(out, "{}", serde_json::to_string_pretty(&d)?)?;
    } else {
        let list = matches!(cmd, ConferenceCmd::List { .. });
        write!(out, "{}", render_conference(&d, list))?;
    }
    Ok(EXIT_OK)
}

/// The answer in words: a table of rooms (`list`), or each room with its members.
pub fn render_conference(d: &ConferenceData, list: bool) -> String {
    let mut out = String::new();
    if let Some(call) = d.call {
        out.push_str(&format!("invitation placed: call {call}\n"));
    }
    if list {
        if d.rooms.is_empty() {
            return out + "no conference rooms are configured\n";
        }
        out.push_str(&format!("{:<8} {:<20} {:>7} {:>4}\n", "ROOM", "NAME", "PARTIES", "PIN"));
        for r in &d.rooms {
            out.push_str(&format!(
                "{:<8} {:<20} {:>3}/{:<3} {:>4}\n",
                r.number,
                r.name,
                r.members.len(),
                r.max_parties,
                if r.pin { "yes" } else { "no" }
            ));
        }
        return out;
    }
    for r in &d.rooms {
        out.push_str(&format!(
            "room {} ({}): {} of {} parties\n",
            r.number,
            r.name,
            r.members.len(),
            r.max_parties
        ));
        if r.members.is_empty() {
            continue;
        }
        out.push_str(&format!(
            "  {:>6} {:<18} {:<16} {:>6} {:<5} {}\n",
            "MEMBER", "LINE", "NUMBER", "SECS", "MUTED", "ROLE"
        ));
        for m in &r.members {
            let role = match (m.moderator, m.invited) {
                (true, _) => "moderator",
                (_, true) => "invited",
                _ => "party",
            };
            out.push_str(&format!(
                "  {:>6} {:<18} {:<16} {:>6} {:<5} {role}\n",
                m.member,
                m.line,
                m.number,
                m.in_room_ms / 1000,
                if m.muted { "yes" } else { "no" }
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(
        op: &str,
        room: Option<&str>,
        member: Option<u32>,
        number: Option<&str>,
    ) -> ConferenceArgs {
        ConferenceArgs {
            op: op.into(),
            room: room.map(Into::into),
            member,
            number: number.map(Into::into),
        }
    }

    #[test]
    fn requests_need_their_fields() {
        assert_eq!(args("list", None, None, None).validate(), Ok(()));
        assert_eq!(args("mute", Some("800"), Some(2), None).validate(), Ok(()));
        assert_eq!(args("invite", Some("800"), None, Some("2003")).validate(), Ok(()));
        let e = args("mute", Some("800"), None, None).validate().unwrap_err();
        assert!(e.contains("needs the field \"member\""), "{e}");
        let e = args("list", Some("800"), None, None).validate().unwrap_err();
        assert!(e.contains("takes no field \"room\""), "{e}");
        let e = args("invite", Some("800"), None, None).validate().unwrap_err();
        assert!(e.contains("\"number\""), "{e}");
        let e = args("dance", None, None, None).validate().unwrap_err();
        assert!(e.contains("unknown conference op") && e.contains("invite"), "{e}");
    }

    #[test]
    fn protocol_lines_parse_and_round_trip() {
        let line = r#"{"cmd":"conference","op":"kick","room":"800","member":3}"#;
        let req = CtlRequest::parse_line(line).unwrap();
        assert_eq!(req, CtlRequest::Conference(args("kick", Some("800"), Some(3), None)));
        assert_eq!(CtlRequest::parse_line(req.to_line().trim_end()), Ok(req));
        let e =
            CtlRequest::parse_line(r#"{"cmd":"conference","op":"kick","colour":1}"#).unwrap_err();
        assert!(e.contains("conference") && e.contains("colour"), "{e}");
        let e = CtlRequest::parse_line(r#"{"cmd":"conference","room":"800"}"#).unwrap_err();
        assert!(e.contains("op"), "{e}");
        let e =
            CtlRequest::parse_line(r#"{"cmd":"conference","op":"mute","member":"x"}"#).unwrap_err();
        assert!(e.contains("member") || e.contains("invalid type"), "{e}");
    }

    #[test]
    fn commands_build_their_requests_and_render() {
        let (req, json) =
            ConferenceCmd::Invite { room: "800".into(), number: "2003".into(), json: true }
                .request();
        assert!(json);
        assert_eq!(req, CtlRequest::Conference(args("invite", Some("800"), None, Some("2003"))));
        let d = ConferenceData {
            rooms: vec![ConferenceInfo {
                number: "800".into(),
                name: "weekly".into(),
                pin: true,
                max_parties: 10,
                members: vec![crate::pbx::conference::MemberInfo {
                    member: 1,
                    call: 7,
                    line: "sim0/fxs1".into(),
                    number: "2001".into(),
                    muted: true,
                    moderator: false,
                    invited: false,
                    in_room_ms: 65_000,
                }],
            }],
            call: Some(9),
        };
        let text = render_conference(&d, false);
        assert!(text.contains("invitation placed: call 9"), "{text}");
        assert!(text.contains("room 800 (weekly): 1 of 10 parties"), "{text}");
        assert!(text.contains("sim0/fxs1") && text.contains("yes"), "{text}");
        let text = render_conference(&d, true);
        assert!(text.contains("800") && text.contains("1/10"), "{text}");
        let back: ConferenceData =
            serde_json::from_str(&serde_json::to_string(&d).unwrap()).unwrap();
        assert_eq!(back, d);
    }

    /// The CLI over a real socket, against a fake daemon loop that answers `conference`.
    #[test]
    fn cli_talks_to_the_daemon_and_reports_errors() {
        use super::super::proto::CtlResponse;
        use super::super::server::{CtlEnvelope, CtlServer};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cardpbx.sock");
        let mut server = CtlServer::bind(&path).unwrap();
        let (tx, rx) = crossbeam_channel::unbounded::<CtlEnvelope>();
        server.serve(tx).unwrap();
        let seen = std::thread::spawn(move || {
            let mut seen = Vec::new();
            for (req, reply) in rx {
                let resp = match &req {
                    CtlRequest::Conference(a) if a.room.as_deref() == Some("899") => {
                        CtlResponse::Error("no conference room 899".into())
                    }
                    CtlRequest::Conference(_) => {
                        CtlResponse::Ok(CtlData::Conference(ConferenceData {
                            rooms: vec![ConferenceInfo {
                                number: "800".into(),
                                name: "weekly".into(),
                                pin: false,
                                max_parties: 5,
                                members: Vec::new(),
                            }],
                            call: None,
                        }))
                    }
                    _ => CtlResponse::Error("unexpected".into()),
                };
                seen.push(req);
                let _ = reply.send(resp);
            }
            seen
        });
        let run = |cmd: ConferenceCmd| {
            let (mut out, mut err) = (Vec::new(), Vec::new());
            let code = run_conference(&cmd, &path, &mut out, &mut err).unwrap();
            (code, String::from_utf8(out).unwrap(), String::from_utf8(err).unwrap())
        };
        let (code, out, _) = run(ConferenceCmd::List { json: false });
        assert_eq!(code, EXIT_OK);
        assert!(out.contains("ROOM") && out.contains("weekly") && out.contains("0/5"), "{out}");
        let (code, out, _) = run(ConferenceCmd::Mute { room: "800".into(), member: 2, json: true });
        assert_eq!(code, EXIT_OK);
        let back: ConferenceData = serde_json::from_str(&out).unwrap();
        assert_eq!(back.rooms[0].number, "800");
        let (code, _, err) = run(ConferenceCmd::Show { room: "899".into(), json: false });
        assert_eq!(code, EXIT_FAILED);
        assert!(err.contains("no conference room 899"), "{err}");
        server.shutdown();
        let (code, _, _) = run(ConferenceCmd::List { json: false });
        assert_eq!(code, EXIT_UNREACHABLE);
        let seen = seen.join().unwrap();
        assert_eq!(seen.len(), 3);
        assert_eq!(seen[1], CtlRequest::Conference(args("mute", Some("800"), Some(2), None)));
    }
}
