//! End-to-end voicemail on the simulator's virtual clock: messages left after hours, on queue
//! overflow and on a busy extension (WAV files checked by the caller's signature, store rows,
//! events), message waiting by stutter dial tone, retrieval with a PIN (the phone hears the
//! caller's signature played back), deletion, greetings recorded over the phone and played to
//! the next caller, full mailboxes, short messages, and the index surviving a restart.

use cardpbx::config::Config;
use cardpbx::pbx::events::EventBody;
use cardpbx::store::{QueueEventKind, Record, VoicemailRecord};
use cardpbx_dsp::toneplan::ProgressTone;
use cardpbx_sim::signature::{BlockClass, SignaturePlan};
use cardpbx_sim::EndpointId;
use std::path::Path;

mod support;
use support::{goertzel, local, Rig};

const BASE: &str = r#"
[system]
name = "e2e-vm"

[[card]]
name = "sim0"
driver = "sim"
fxs_ports = 4
fxo_ports = 1
e1_spans = 1
  [card.sim]
  seed = 7
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

[[trunk_group]]
name = "isdn"
signalling = "pri_cpe"
ports = ["sim0/span1"]
incoming = "2004"

[[queue]]
number = "600"
name = "sales"
max_wait_s = 2
overflow = "voicemail"

[[schedule]]
name = "office"
hours = ["mon-fri 08:00-18:00"]

[[inbound]]
dnis = ["80001000"]
schedule = "office"
destination = "queue:sales"
after_hours = "voicemail:600"

[[mailbox]]
number = "600"
pin = "4321"
extension = "2001"
"#;

struct Vm {
    r: Rig,
    dir: tempfile::TempDir,
    text: String,
}

impl std::ops::Deref for Vm {
    type Target = Rig;
    fn deref(&self) -> &Rig {
        &self.r
    }
}

impl std::ops::DerefMut for Vm {
    fn deref_mut(&mut self) -> &mut Rig {
        &mut self.r
    }
}

/// A PBX with `BASE` plus `extra`, voicemail under a temporary directory.
fn pbx(extra: &str) -> Vm {
    let dir = tempfile::tempdir().unwrap();
    let text = format!("{BASE}\n{extra}\n[voicemail]\ndir = {:?}\n", dir.path().join("vm"));
    let mut r = Rig::new(&text, |_| {});
    r.wait_pri_up();
    Vm { r, dir, text }
}

fn caller_sig(ts: u8) -> EndpointId {
    EndpointId::Bearer { span: 1, ts }
}

impl Vm {
    /// Make it Monday `hour`:00 now.
    fn at_hour(&mut self, hour: u32) {
        let elapsed_s = self.p.now() as i64 / 1000;
        self.p.pbx_mut().set_wall_clock(local(hour) - elapsed_s);
    }

    /// A PRI caller from `ani` reaches the PBX and waits until it records (after the beep).
    fn caller_recording(&mut self, ani: &str) -> (u32, u8) {
        let (h, ts) = self.pri_call_answered(ani, "80001000");
        self.until(6000, "the message is being recorded", |s| {
            s.pbx().cc_calls().iter().any(|id| s.pbx().voicemail_step(*id) == Some("recording"))
        });
        (h, ts)
    }

    fn cleared(&mut self, h: u32, what: &str) {
        self.until(4000, what, |s| {
            s.card().pri_calls(1).iter().any(|c| c.handle == h && c.cause.is_some())
        });
        // The writer closes the file on the next steps.
        self.run(300);
    }

    fn messages(&self) -> Vec<VoicemailRecord> {
        self.records
            .iter()
            .filter_map(|r| if let Record::Voicemail(v) = r { Some(v.clone()) } else { None })
            .collect()
    }

    fn events(&mut self) -> Vec<EventBody> {
        std::iter::from_fn(|| self.p.pbx_mut().pop_event()).map(|e| e.body).collect()
    }

    /// Lift phone `port` and count the tone bursts it hears in the first 2.4 s (stutter dial
    /// tone gives ten; plain dial tone one); then wait for steady dial tone.
    fn lift_counting_bursts(&mut self, port: u32) -> u32 {
        assert!(self.phone(port).off_hook());
        let mut bursts = 0;
        let mut was_tone = false;
        for _ in 0..120 {
            self.run(20);
            let tone = self.p.card().phone(port).unwrap().hears().now == BlockClass::ProgressTone;
            if tone && !was_tone {
                bursts += 1;
            }
            was_tone = tone;
        }
        self.until(3000, "steady dial tone", |s| {
            s.card().phone(port).unwrap().hears().tone == Some(ProgressTone::Dial)
        });
        bursts
    }

    /// Phone `port` dials `digits` and lets the PBX act on them.
    fn keys(&mut self, port: u32, digits: &str) {
        self.phone(port).dial(digits).unwrap();
        self.run(200 * digits.len() as u64 + 300);
    }

    /// The voicemail step of the call phone `port` makes.
    fn step_of(&self, port: u32) -> Option<&'static str> {
        let p = self.p.pbx();
        let line = format!("sim0/fxs{port}");
        p.calls().iter().find(|c| c.a_port == line).and_then(|c| p.voicemail_step(c.id))
    }
}

/// The middle second of a mono WAV carries `sig`'s first frequency, and not `other`'s.
fn assert_wav_carries(path: &Path, sig: EndpointId, other: EndpointId) {
    let mut r = hound::WavReader::open(path).unwrap();
    assert_eq!((r.spec().channels, r.spec().sample_rate), (1, 8000), "mono 8 kHz");
    let s: Vec<i16> = r.samples::<i16>().map(Result::unwrap).collect();
    assert!(s.len() >= 16_000, "at least 2 s: {}", s.len());
    let mid = &s[s.len() / 2 - 4000..s.len() / 2 + 4000];
    let plan = SignaturePlan::with_spans(4, 1, 1).unwrap();
    let (a, b) = (goertzel(mid, plan.signature(sig)[0]), goertzel(mid, plan.signature(other)[0]));
    assert!(a > 0.2 && a > 10.0 * b, "{sig} {a:.3} vs {other} {b:.3}");
}

#[test]
fn after_hours_message_mwi_retrieval_with_pin_and_delete() {
    let mut vm = pbx("");
    vm.at_hour(20);
    let (h, ts) = vm.caller_recording("13900005555");
    vm.run(3000);
    // `#` ends the message; the caller hears the closing beeps and is cleared.
    vm.p.card_mut().pri_remote_dtmf(1, h, "#").unwrap();
    vm.cleared(h, "the PBX clears after the message");

    let msgs = vm.messages();
    assert_eq!(msgs.len(), 1, "{:?}", vm.records);
    let m = &msgs[0];
    assert_eq!((m.mailbox.as_str(), m.caller.as_str(), m.heard), ("600", "13900005555", false));
    assert!((2500..4500).contains(&m.duration_ms), "duration {}", m.duration_ms);
    assert!(Path::new(&m.file).starts_with(vm.dir.path().join("vm/600")), "{}", m.file);
    assert_wav_carries(Path::new(&m.file), caller_sig(ts), EndpointId::Phone(1));
    assert_eq!(vm.store().voicemails("600").unwrap(), msgs);
    let cdr = vm.cdrs().into_iter().find(|c| c.direction == "inbound").unwrap().clone();
    assert_eq!(cdr.called, "voicemail:600");
    let mwi: Vec<EventBody> =
        vm.events().into_iter().filter(|e| matches!(e, EventBody::Mwi { .. })).collect();
    assert_eq!(
        mwi,
        vec![EventBody::Mwi { mailbox: "600".into(), extension: "2001".into(), unheard: 1 }]
    );

    // The index survives a restart: a new PBX on the same directory knows the message.
    let again = Rig::new(&vm.text, |_| {});
    assert_eq!(again.p.pbx().message_waiting("2001"), 1);
    assert_eq!(again.p.pbx().voicemail_messages("600"), msgs);
    drop(again);

    // Message waiting: the owner's phone gets stutter dial tone, another phone does not.
    assert_eq!(vm.p.pbx().message_waiting("2001"), 1);
    let bursts = vm.lift_counting_bursts(1);
    assert!((9..=11).contains(&bursts), "stutter dial tone: {bursts} bursts");
    assert_eq!(vm.lift_counting_bursts(2), 1, "plain dial tone on 2002");
    vm.hang_up(2);

    // Retrieval: a wrong PIN, then the right one; the message plays.
    vm.keys(1, "*98");
    assert_eq!(vm.step_of(1), Some("pin"));
    vm.keys(1, "1111#");
    assert_eq!(vm.step_of(1), Some("pin"), "a wrong PIN may be tried again");
    vm.keys(1, "4321#");
    assert_eq!(vm.step_of(1), Some("playing"));
    let heard = vm.blocks_heard(EndpointId::Phone(1), caller_sig(ts), 2000);
    assert!(heard >= 50, "the phone hears the caller's message: {heard} blocks");
    // `7` deletes it: the row goes, the file goes, message waiting goes off.
    vm.keys(1, "7");
    assert_eq!(vm.step_of(1), Some("menu"));
    assert!(vm.records.iter().any(|r| matches!(r, Record::VoicemailDeleted(id) if *id == m.id)));
    assert!(vm.store().voicemails("600").unwrap().is_empty());
    assert!(!Path::new(&m.file).exists());
    assert_eq!(vm.p.pbx().message_waiting("2001"), 0);
    vm.hang_up(1);
    assert_eq!(vm.lift_counting_bursts(1), 1, "plain dial tone once all are heard");
    vm.hang_up(1);
}

#[test]
fn save_marks_heard_and_three_wrong_pins_clear() {
    let mut vm = pbx("");
    vm.at_hour(20);
    let (h, _) = vm.caller_recording("13900006666");
    vm.run(2000);
    assert!(vm.p.card_mut().pri_hang_up(1, h), "hanging up keeps the message");
    vm.run(800);
    assert_eq!(vm.messages().len(), 1);
    assert_eq!(vm.p.pbx().message_waiting("2001"), 1);

    // Three wrong PINs: congestion tone.
    vm.lift_counting_bursts(1);
    vm.keys(1, "*98");
    vm.keys(1, "1#2#3#");
    vm.until(2000, "congestion after three wrong PINs", |s| {
        s.card().phone(1).unwrap().hears().tone == Some(ProgressTone::Congestion)
    });
    vm.hang_up(1);

    // `*99600#` reaches the mailbox from any extension; `9` saves (marks heard).
    vm.lift_counting_bursts(3);
    vm.keys(3, "*99600#");
    vm.keys(3, "4321#");
    assert_eq!(vm.step_of(3), Some("playing"));
    vm.keys(3, "9");
    assert_eq!(vm.step_of(3), Some("menu"));
    let last = vm.messages().last().cloned().unwrap();
    assert!(last.heard, "saved: {last:?}");
    assert!(vm.store().voicemails("600").unwrap()[0].heard);
    assert_eq!(vm.p.pbx().message_waiting("2001"), 0);
    assert!(vm.p.pbx().voicemail_messages("600")[0].heard);
    vm.hang_up(3);
}

#[test]
fn greeting_recorded_over_the_phone_is_played_to_the_next_caller() {
    let mut vm = pbx("");
    vm.lift_counting_bursts(1);
    vm.keys(1, "*98");
    vm.keys(1, "4321#");
    // No messages: the menu. `0`: beep, then the greeting is recorded until `#`.
    assert_eq!(vm.step_of(1), Some("menu"));
    vm.keys(1, "0");
    vm.until(2000, "greeting recording", |s| {
        s.pbx().calls().iter().any(|c| s.pbx().voicemail_step(c.id) == Some("greeting_recording"))
    });
    vm.run(2500);
    vm.keys(1, "#");
    assert_eq!(vm.step_of(1), Some("menu"));
    vm.hang_up(1);
    vm.run(300);
    let index = std::fs::read_to_string(vm.dir.path().join("vm/600/index.json")).unwrap();
    assert!(index.contains("greeting-"), "{index}");

    vm.at_hour(20);
    let (h, ts) = vm.pri_call_answered("13900007777", "80001000");
    let heard = vm.blocks_heard(caller_sig(ts), EndpointId::Phone(1), 1500);
    assert!(heard >= 40, "the caller hears the recorded greeting: {heard} blocks");
    vm.until(4000, "recording after the greeting", |s| {
        s.pbx().cc_calls().iter().any(|id| s.pbx().voicemail_step(*id) == Some("recording"))
    });
    assert!(vm.p.card_mut().pri_hang_up(1, h));
    vm.run(500);
}

#[test]
fn queue_overflow_leaves_a_message_in_the_queue_mailbox() {
    let mut vm = pbx("");
    // Office hours: the queue; nobody is logged in; after max_wait_s it overflows.
    let (h, ts) = vm.caller_recording("13900008888");
    vm.run(2500);
    assert!(vm.p.card_mut().pri_hang_up(1, h));
    vm.run(800);
    let msgs = vm.messages();
    assert_eq!(msgs.len(), 1, "{:?}", vm.records);
    assert_eq!(msgs[0].caller, "13900008888");
    assert_wav_carries(Path::new(&msgs[0].file), caller_sig(ts), EndpointId::Phone(1));
    let kinds: Vec<_> = vm.queue_events().iter().map(|e| e.event).collect();
    assert_eq!(
        kinds,
        [QueueEventKind::Enter, QueueEventKind::Timeout],
        "it left the queue by timeout"
    );
}

#[test]
fn full_mailbox_and_short_messages() {
    let mut vm = pbx("");
    let text =
        vm.text.replace("extension = \"2001\"\n", "extension = \"2001\"\nmax_messages = 1\n");
    vm.r = Rig::new(&text, |_| {});
    vm.wait_pri_up();
    vm.at_hour(20);
    // Hanging up right after the beep: too short, discarded.
    let (h, _) = vm.caller_recording("13900001111");
    vm.run(300);
    assert!(vm.p.card_mut().pri_hang_up(1, h));
    vm.run(800);
    assert!(vm.messages().is_empty(), "{:?}", vm.messages());
    assert_eq!(std::fs::read_dir(vm.dir.path().join("vm/600")).map_or(0, |d| d.count()), 0);
    // One message fills the mailbox.
    let (h, _) = vm.caller_recording("13900002222");
    vm.run(1500);
    assert!(vm.p.card_mut().pri_hang_up(1, h));
    vm.run(800);
    assert_eq!(vm.messages().len(), 1);
    // The next caller hears the information tone and is cleared without a message.
    let (h, _) = vm.pri_call_answered("13900003333", "80001000");
    vm.cleared(h, "a full mailbox clears the call");
    assert_eq!(vm.messages().len(), 1);
    let cdr = vm.cdrs().into_iter().rev().find(|c| c.direction == "inbound").unwrap().clone();
    assert_eq!(cdr.why.as_deref(), Some("mailbox full"));
}

#[test]
fn busy_extension_diverts_to_its_mailbox() {
    let mut vm = pbx("");
    let text = vm.text.replace("extension = \"2001\"\n", "extension = \"2001\"\non_busy = true\n");
    vm.r = Rig::new(&text, |_| {});
    vm.run(300);
    // 2001 is off-hook; 2002 calls it and leaves a message instead of hearing busy tone.
    vm.lift_counting_bursts(1);
    vm.lift_counting_bursts(2);
    vm.keys(2, "2001");
    vm.until(3000, "the busy call records", |s| {
        s.pbx().calls().iter().any(|c| s.pbx().voicemail_step(c.id) == Some("recording"))
    });
    vm.run(2500);
    vm.hang_up(2);
    vm.run(500);
    let msgs = vm.messages();
    assert_eq!(msgs.len(), 1, "{:?}", vm.records);
    assert_eq!((msgs[0].mailbox.as_str(), msgs[0].caller.as_str()), ("600", "2002"));
    assert_wav_carries(Path::new(&msgs[0].file), EndpointId::Phone(2), EndpointId::Phone(1));
    vm.hang_up(1);
}

#[test]
fn bad_voicemail_configuration_is_refused_naming_the_key() {
    let bad = |from: &str, to: &str| {
        let text = BASE.replace(from, to);
        Config::parse_str(&text, "vm.toml").unwrap_err().to_string()
    };
    let e = bad("pin = \"4321\"", "pin = \"43x1\"");
    assert!(e.contains("mailbox[0].pin"), "{e}");
    let e = bad("extension = \"2001\"\n", "extension = \"2999\"\n");
    assert!(e.contains("mailbox[0].extension") && e.contains("2999"), "{e}");
    let e = bad("after_hours = \"voicemail:600\"", "after_hours = \"voicemail:601\"");
    assert!(e.contains("inbound[0].after_hours") && e.contains("601"), "{e}");
    let e = bad("overflow = \"voicemail\"", "overflow = \"voicemail:77\"");
    assert!(e.contains("queue[0].overflow") && e.contains("77"), "{e}");
    let e = Config::parse_str(
        &format!("{BASE}[[mailbox]]\nnumber = \"600\"\npin = \"1\"\n"),
        "vm.toml",
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("mailbox[1].number"), "{e}");
}

#[test]
fn unanswered_extension_diverts_but_a_hunt_group_call_does_not() {
    let mut vm = pbx("[dialplan]\nanswer_timeout_s = 5\n\n[[hunt_group]]\nnumber = \"500\"\nmembers = [\"2001\"]\nstrategy = \"ring_all\"\nring_timeout_s = 5\n");
    let text =
        vm.text.replace("extension = \"2001\"\n", "extension = \"2001\"\non_no_answer = true\n");
    vm.r = Rig::new(&text, |_| {});
    vm.run(300);
    // Through the hunt group: no voicemail, busy tone after the ring timeout.
    vm.lift_counting_bursts(2);
    vm.keys(2, "500");
    vm.until(8000, "busy tone after the hunt group", |s| {
        s.card().phone(2).unwrap().hears().tone == Some(ProgressTone::Busy)
    });
    assert_eq!(vm.step_of(2), None);
    vm.hang_up(2);
    // Dialled directly: after answer_timeout_s the caller leaves a message.
    vm.lift_counting_bursts(2);
    vm.keys(2, "2001");
    assert!(vm.p.card().phone(1).unwrap().is_ringing());
    vm.until(8000, "the unanswered call records", |s| {
        s.pbx().calls().iter().any(|c| s.pbx().voicemail_step(c.id) == Some("recording"))
    });
    // The owner's port stops ringing (the simulated phone notices only after its ring-gone
    // time).
    assert_eq!(vm.p.pbx().ports()[0].state, "idle");
    vm.run(2000);
    vm.keys(2, "#");
    vm.until(2000, "busy tone after the message", |s| {
        s.card().phone(2).unwrap().hears().tone == Some(ProgressTone::Busy)
    });
    vm.hang_up(2);
    vm.run(300);
    let msgs = vm.messages();
    assert_eq!(msgs.len(), 1, "{:?}", vm.records);
    assert_eq!(msgs[0].caller, "2002");
    assert!(vm.p.pbx().message_waiting("2001") == 1);
}

#[test]
fn a_message_ends_at_the_longest_length() {
    let mut vm = pbx("");
    let text = vm.text.replace("pin = \"4321\"\n", "pin = \"4321\"\nmax_message_s = 5\n");
    vm.r = Rig::new(&text, |_| {});
    vm.wait_pri_up();
    vm.at_hour(20);
    let (h, ts) = vm.caller_recording("13900004444");
    // The caller keeps talking: after 5 s the closing beeps play and the call is cleared.
    vm.run(3000);
    assert_eq!(vm.messages().len(), 0, "still recording");
    vm.cleared(h, "cleared after the longest message");
    let msgs = vm.messages();
    assert_eq!(msgs.len(), 1, "{:?}", vm.records);
    assert!((4500..=5200).contains(&msgs[0].duration_ms), "{}", msgs[0].duration_ms);
    assert_wav_carries(Path::new(&msgs[0].file), caller_sig(ts), EndpointId::Phone(1));
}
