//! The callback attendant on the simulator: a caller routed to `callback:`, overflowing from a
//! queue, or arriving while the trunks are busier than the queue's threshold hears the number
//! read back from recorded words, confirms it or keys in another, and is called back; without
//! a confirmation nothing is registered.

mod support;

use cardpbx::store::{CallbackRecord, Record};
use cardpbx_sim::EndpointId;
use support::{tone_wav, Rig};

/// The words' signatures: endpoints no call uses here.
const INTRO: EndpointId = EndpointId::Bearer { span: 1, ts: 30 };
const DIGIT: EndpointId = EndpointId::Bearer { span: 1, ts: 29 };
const CONFIRM: EndpointId = EndpointId::Bearer { span: 1, ts: 28 };
const ENTER: EndpointId = EndpointId::Bearer { span: 1, ts: 27 };
const THANKS: EndpointId = EndpointId::Bearer { span: 1, ts: 26 };

const CONFIG: &str = r#"
[system]
name = "e2e-callback"

[[card]]
name = "sim0"
driver = "sim"
fxs_ports = 2
fxo_ports = 0
e1_spans = 1
  [card.sim]
  seed = 4
  clock = "virtual"

[[extension]]
number = "2001"
port = "sim0/fxs1"
[[extension]]
number = "2002"
port = "sim0/fxs2"

[[trunk_group]]
name = "isdn"
signalling = "pri_cpe"
ports = ["sim0/span1"]
incoming = "2002"

[[route]]
prefix = "0"
trunk_group = "isdn"
min_digits = 4

[[queue]]
number = "600"
name = "sales"
callback_trunk_busy_percent = 5

[[agent]]
id = "101"
pin = "1234"
name = "Ann"
queues = ["600"]

[[inbound]]
dnis = ["7000"]
destination = "callback:sales"

[[inbound]]
dnis = ["7100"]
destination = "queue:sales"

[callback]
timeout_s = 4
attempts = 2
min_digits = 6
"#;

struct Cb {
    r: Rig,
    _dir: tempfile::TempDir,
}

/// The PBX, with the attendant's words recorded as signature tones when `words`.
fn rig(words: bool) -> Cb {
    let dir = tempfile::tempdir().unwrap();
    let mut text = CONFIG.to_string();
    if words {
        let plan = cardpbx_sim::signature::SignaturePlan::with_spans(2, 0, 1).unwrap();
        let w = dir.path();
        for (name, sig, ms) in [
            ("intro.wav", INTRO, 800),
            ("confirm.wav", CONFIRM, 800),
            ("enter.wav", ENTER, 800),
            ("thanks.wav", THANKS, 800),
        ] {
            tone_wav(&w.join(name), plan.signature(sig), ms);
        }
        for d in 0..10 {
            tone_wav(&w.join(format!("{d}.wav")), plan.signature(DIGIT), 300);
        }
        text.push_str(&format!("prompts = \"{}\"\n", w.display()));
    }
    let mut r = Rig::new(&text, |_| {});
    r.wait_pri_up();
    Cb { r, _dir: dir }
}

impl Cb {
    fn callbacks(&self) -> Vec<CallbackRecord> {
        self.r
            .records
            .iter()
            .filter_map(|x| if let Record::Callback(c) = x { Some(c.clone()) } else { None })
            .collect()
    }

    /// Blocks of `sig` the caller on `ts` hears in the next `ms`.
    fn hears(&mut self, ts: u8, sig: EndpointId, ms: u64) -> u64 {
        self.r.blocks_heard(EndpointId::Bearer { span: 1, ts }, sig, ms)
    }

    /// Callers waiting in the queue.
    fn waiting(&self) -> u32 {
        let acd = self.r.p.pbx().acd();
        acd.queue(acd.queue_by_number("600").unwrap(), self.r.p.now()).unwrap().waiting
    }

    /// Run until the caller on `ts` starts hearing `sig`.
    fn wait_for(&mut self, ts: u8, sig: EndpointId, max_ms: u64) {
        let who = EndpointId::Bearer { span: 1, ts };
        self.r.p.card_mut().expect_peer(who, Some(sig));
        let start = self.r.p.card().audio_check(who).unwrap();
        self.r.until(max_ms, &format!("the caller hears {sig}"), |s| {
            s.card().audio_check(who).unwrap().since(&start).ok_blocks >= 3
        });
        self.r.p.card_mut().expect_peer(who, None);
    }

    fn key(&mut self, h: u32, digits: &str) {
        self.r.p.card_mut().pri_remote_dtmf(1, h, digits).unwrap();
    }

    fn cleared(&mut self, h: u32, max_ms: u64) {
        self.r.until(max_ms, "the PBX clears the call", |s| {
            s.card().pri_calls(1).iter().all(|c| c.handle != h || c.cause.is_some())
        });
    }

    fn why(&self) -> Vec<String> {
        self.r.cdrs().iter().filter_map(|c| c.why.clone()).collect()
    }
}

#[test]
fn the_caller_hears_the_number_read_back_confirms_and_is_called_back() {
    let mut cb = rig(true);
    let (h, ts) = cb.r.pri_call_answered("0301234567", "7000");
    assert!(cb.hears(ts, INTRO, 800) >= 30, "\"we will call you back on\"");
    // Ten digits of 300 ms each.
    assert!(cb.hears(ts, DIGIT, 3000) >= 130, "the caller's number, digit by digit");
    assert!(cb.hears(ts, CONFIRM, 800) >= 30, "\"press 1 to confirm\"");
    cb.key(h, "1");
    assert!(cb.hears(ts, THANKS, 1000) >= 30, "\"thank you\"");
    cb.cleared(h, 3000);
    let regs = cb.callbacks();
    assert_eq!(regs.first().map(|c| c.number.as_str()), Some("0301234567"), "{regs:?}");
    assert_eq!(regs[0].queue, "sales");
    assert!(cb.why().iter().any(|w| w == "callback registered"), "{:?}", cb.why());
    // An agent who logs in is offered the callback, which then dials the confirmed number.
    cb.r.p.card_mut().phone_mut(1).unwrap().set_auto_answer(Some(500));
    cb.r.dial_code(1, "*21101*1234#", 2500);
    cb.r.until(20_000, "the callback is dialled on the PRI", |s| {
        s.card().pri_dialed(1).iter().any(|n| n == "0301234567")
    });
}

#[test]
fn another_number_can_be_keyed_in_interrupting_the_prompt() {
    let mut cb = rig(true);
    let (h, ts) = cb.r.pri_call_answered("0301234567", "7000");
    cb.r.run(300);
    // "2" during the number: another number, please.
    cb.key(h, "2");
    assert!(cb.hears(ts, ENTER, 800) >= 30, "\"key in your number\"");
    cb.key(h, "0209876543#");
    cb.wait_for(ts, INTRO, 5000);
    assert!(cb.hears(ts, DIGIT, 3700) >= 130, "the keyed number is read back");
    cb.wait_for(ts, CONFIRM, 2000);
    cb.key(h, "1");
    cb.cleared(h, 5000);
    let regs = cb.callbacks();
    assert_eq!(regs.first().map(|c| c.number.as_str()), Some("0209876543"), "{regs:?}");
}

#[test]
fn no_answer_registers_nothing_and_says_why() {
    let mut cb = rig(true);
    let (h, _ts) = cb.r.pri_call_answered("0301234567", "7000");
    // Two attempts: the prompts (about 5 s) and 4 s of waiting each.
    cb.cleared(h, 30_000);
    assert!(cb.callbacks().is_empty(), "{:?}", cb.callbacks());
    assert!(cb.why().iter().any(|w| w == "callback not confirmed"), "{:?}", cb.why());
}

#[test]
fn a_caller_without_a_number_is_asked_for_one_and_a_short_one_is_refused() {
    let mut cb = rig(false);
    let h = cb.r.p.card_mut().pri_call_in(1, None, "7000").unwrap();
    cb.r.until(5000, "answered", |s| {
        s.card().pri_calls(1).iter().any(|c| c.handle == h && c.answered)
    });
    cb.r.run(1500);
    // Too short (min_digits = 6): asked again; then a good one, confirmed after the beeps.
    cb.key(h, "123#");
    cb.r.run(2500);
    cb.key(h, "05551234#");
    cb.r.run(2500);
    cb.key(h, "1");
    cb.cleared(h, 5000);
    let regs = cb.callbacks();
    assert_eq!(regs.first().map(|c| c.number.as_str()), Some("05551234"), "{regs:?}");
}

#[test]
fn busy_trunks_send_new_queue_callers_to_the_attendant() {
    let mut cb = rig(false);
    // 30 channels, threshold 5 %: the first caller (1 of 30 busy) is queued.
    let (_h1, _) = cb.r.pri_call_answered("0301111111", "7100");
    cb.r.run(500);
    assert_eq!(cb.waiting(), 1);
    // The second makes 2 of 30: the attendant takes it, and the queue stays at one caller.
    let (h2, _) = cb.r.pri_call_answered("0302222222", "7100");
    cb.r.run(1500);
    assert_eq!(cb.waiting(), 1);
    cb.key(h2, "1");
    cb.cleared(h2, 5000);
    let regs = cb.callbacks();
    assert_eq!(regs.first().map(|c| c.number.as_str()), Some("0302222222"), "{regs:?}");
}
