//! The callback attendant: it answers a caller who is to be called back (a `callback:`
//! destination, a queue's `overflow = "callback"` after too long a wait, or a queue whose trunk
//! group is busier than `callback_trunk_busy_percent`), confirms the number to call (the
//! caller's own, or one keyed in), registers the callback with the ACD and hangs up.
//!
//! The dialogue, with the words of `[callback] prompts` (beeps without them):
//! - with a caller number: "we will call you back on 0 3 0 …; press 1 to confirm, 2 to give
//!   another number";
//! - `2`, or no caller number: "key in your number and press the hash key": digits, `#` (or
//!   the longest number, or a pause after enough digits) ends; `*` starts again; the number is
//!   then read back for confirmation;
//! - `1`: "thank you", the callback is registered and the call cleared.
//!
//! Keys interrupt the prompts. No key within `timeout_s` asks again, up to `attempts` times;
//! then the call is cleared and nothing is registered (the CDR says why).

use super::cc::Mode;
use super::{dialable, CallId, Pbx};
use crate::callcenter::acd::QueueId;
use crate::config::callback::CallbackConfig;
use crate::engine::api::{PromptId, Source};
use cardpbx_dsp::tone::{Segment, ToneSpec};
use cardpbx_hal::Tick;
use std::collections::{HashMap, VecDeque};
use std::path::Path;

/// Where the dialogue is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// The number is read back; `1` confirms, `2` asks for another.
    Confirm,
    /// The caller keys in a number.
    Enter,
    /// Thanks, then the call is cleared.
    Thanks,
}

/// One caller talking to the attendant.
#[derive(Debug)]
pub(super) struct Attendant {
    queue: QueueId,
    /// The number to call back: the caller's own until another is keyed in.
    number: Option<String>,
    step: Step,
    /// Digits keyed in so far (step `Enter`).
    keyed: String,
    /// Times the current question was asked without a usable answer.
    tries: u32,
    /// Prompts still to say in this step.
    script: VecDeque<PromptId>,
    /// The attendant is speaking (a prompt or beep plays).
    speaking: bool,
    /// When the wait for a key runs out.
    due: Option<Tick>,
}

/// The attendant's settings and recorded words.
pub(super) struct Attendants {
    cfg: CallbackConfig,
    /// `intro`, `confirm`, `enter`, `thanks`, then the digits 0-9, when all are loaded.
    words: Option<Words>,
    pub(super) calls: HashMap<CallId, Attendant>,
}

struct Words {
    intro: PromptId,
    confirm: PromptId,
    enter: PromptId,
    thanks: PromptId,
    digits: [PromptId; 10],
}

impl Attendants {
    /// The attendant for `cfg`, with the prompts `prompt` finds loaded (the words are used
    /// only when every one of them is).
    pub(super) fn new(cfg: &CallbackConfig, prompt: impl Fn(&Path) -> Option<PromptId>) -> Self {
        let words = cfg.prompts.as_ref().and_then(|dir| {
            let p = |name: &str| prompt(&dir.join(name));
            let mut digits = [PromptId(0); 10];
            for (d, slot) in digits.iter_mut().enumerate() {
                *slot = p(&format!("{d}.wav"))?;
            }
            Some(Words {
                intro: p("intro.wav")?,
                confirm: p("confirm.wav")?,
                enter: p("enter.wav")?,
                thanks: p("thanks.wav")?,
                digits,
            })
        });
        if cfg.prompts.is_some() && words.is_none() {
            tracing::warn!("callback attendant: prompts did not all load; it speaks in beeps");
        }
        Attendants { cfg: cfg.clone(), words, calls: HashMap::new() }
    }

    /// The earliest wait for a key.
    pub(super) fn next_due(&self) -> Option<Tick> {
        self.calls.values().filter_map(|a| a.due).min()
    }
}

/// Beeps in place of words: one short for "confirm?", one long for "key in", three for thanks.
fn beeps(step: Step) -> ToneSpec {
    let beep = |ms| Segment { ms, freqs: [1400.0, 0.0], level_dbm0: -13.0 };
    let gap = Segment::silence(150);
    let segs: Vec<Segment> = match step {
        Step::Confirm => vec![beep(150), gap, beep(150), gap],
        Step::Enter => vec![beep(600), gap],
        Step::Thanks => vec![beep(100), gap, beep(100), gap, beep(100), gap],
    };
    ToneSpec::new(&segs, false).expect("beeps are a valid tone")
}

impl Pbx {
    /// Hand call `id` (a trunk call) to the attendant for a callback from queue `q`.
    pub(super) fn cba_start(&mut self, id: CallId, q: QueueId) {
        if !self.cc_answer_trunk(id) {
            return;
        }
        let name = self.cc.acd.queue_config(q).map(|c| c.name.clone()).unwrap_or_default();
        self.set_to(id, &format!("callback:{name}"));
        let ani = self.calls.get(&id).map(|c| c.from.clone()).unwrap_or_default();
        let number = dialable(&ani).then_some(ani);
        let step = if number.is_some() { Step::Confirm } else { Step::Enter };
        if let Some(cc) = self.cc.calls.get_mut(&id) {
            cc.mode = Mode::Attendant;
        }
        tracing::info!(call = id, queue = %name, "callback attendant answers");
        self.cc.attendants.calls.insert(
            id,
            Attendant {
                queue: q,
                number,
                step,
                keyed: String::new(),
                tries: 0,
                script: VecDeque::new(),
                speaking: false,
                due: None,
            },
        );
        self.cc_dtmf(id, true);
        self.cba_say(id);
    }

    /// Whether the incoming trunk group of call `id` is at least `pct` percent busy.
    pub(super) fn cba_trunks_busy(&self, id: CallId, pct: u8) -> bool {
        let Some(a) = self.calls.get(&id).map(|c| c.a) else { return false };
        let Some(g) = self.trunk_group_of(a).map(|g| &self.trunk_groups[g]) else {
            return false;
        };
        let busy = g.lines.iter().filter(|l| self.lines[l.index()].call.is_some()).count();
        busy * 100 >= usize::from(pct) * g.lines.len()
    }

    /// Say what the current step says: the words, or beeps.
    fn cba_say(&mut self, id: CallId) {
        let Some(a) = self.calls.get(&id).map(|c| c.a) else { return };
        let Some(att) = self.cc.attendants.calls.get_mut(&id) else { return };
        att.due = None;
        att.speaking = true;
        let Some(w) = &self.cc.attendants.words else {
            let tone = beeps(att.step);
            self.set_source(a, Source::Tone(tone));
            return;
        };
        att.script = match att.step {
            Step::Confirm => {
                let number = att.number.as_deref().unwrap_or_default();
                let digits = number.bytes().map(|b| w.digits[usize::from(b - b'0')]);
                std::iter::once(w.intro).chain(digits).chain([w.confirm]).collect()
            }
            Step::Enter => [w.enter].into(),
            Step::Thanks => [w.thanks].into(),
        };
        let first = att.script.pop_front().expect("a step says something");
        self.set_source(a, Source::Prompt { prompt: first, repeat: false });
    }

    /// A prompt or beep ended on call `id`'s trunk leg: whether it was the attendant's.
    pub(super) fn cba_play_done(&mut self, id: CallId) -> bool {
        let Some(a) = self.calls.get(&id).map(|c| c.a) else { return false };
        let Some(att) = self.cc.attendants.calls.get_mut(&id) else { return false };
        if !att.speaking {
            return true;
        }
        if let Some(next) = att.script.pop_front() {
            self.set_source(a, Source::Prompt { prompt: next, repeat: false });
            return true;
        }
        att.speaking = false;
        if att.step == Step::Thanks {
            self.cc_clear(id, "callback registered");
        } else {
            att.due = Some(self.now + u64::from(self.cc.attendants.cfg.timeout_s) * 1000);
        }
        true
    }

    /// A key from the caller of call `id`.
    pub(super) fn cba_digit(&mut self, id: CallId, digit: char) {
        let timeout_ms = u64::from(self.cc.attendants.cfg.timeout_s) * 1000;
        let max = self.cc.attendants.cfg.max_digits as usize;
        let Some(a) = self.calls.get(&id).map(|c| c.a) else { return };
        let Some(att) = self.cc.attendants.calls.get_mut(&id) else { return };
        if att.step == Step::Thanks {
            return;
        }
        if att.speaking {
            // Keys interrupt the attendant.
            att.speaking = false;
            att.script.clear();
            self.set_source(a, Source::Silence);
        }
        let att = self.cc.attendants.calls.get_mut(&id).expect("checked above");
        match (att.step, digit) {
            (Step::Confirm, '1') => {
                let (q, number) = (att.queue, att.number.clone().unwrap_or_default());
                match self.cc.acd.request_callback(q, &number, self.now) {
                    Ok(cb) => {
                        tracing::info!(call = id, %number, ?cb, "callback registered");
                        let att = self.cc.attendants.calls.get_mut(&id).expect("still here");
                        att.step = Step::Thanks;
                        self.cba_say(id);
                    }
                    Err(e) => {
                        tracing::warn!(call = id, "callback refused: {e}");
                        self.cc_clear(id, "callback refused");
                    }
                }
            }
            (Step::Confirm, '2') => {
                att.step = Step::Enter;
                att.keyed.clear();
                att.tries = 0;
                self.cba_say(id);
            }
            (Step::Confirm, _) => self.cba_again(id, "callback not confirmed"),
            (Step::Enter, '*') => {
                att.keyed.clear();
                self.cba_say(id);
            }
            (Step::Enter, '#') => self.cba_entered(id),
            (Step::Enter, d) if d.is_ascii_digit() => {
                att.keyed.push(d);
                att.due = Some(self.now + timeout_ms);
                if att.keyed.len() >= max {
                    self.cba_entered(id);
                }
            }
            (Step::Enter, _) => {}
            (Step::Thanks, _) => {}
        }
    }

    /// The caller finished keying a number: read it back, or ask again.
    fn cba_entered(&mut self, id: CallId) {
        let (min, max) = (
            self.cc.attendants.cfg.min_digits as usize,
            self.cc.attendants.cfg.max_digits as usize,
        );
        let Some(att) = self.cc.attendants.calls.get_mut(&id) else { return };
        if (min..=max).contains(&att.keyed.len()) {
            att.number = Some(std::mem::take(&mut att.keyed));
            att.step = Step::Confirm;
            att.tries = 0;
            self.cba_say(id);
        } else {
            att.keyed.clear();
            self.cba_again(id, "no callback number keyed in");
        }
    }

    /// The question got no usable answer: ask again, or give up with `why`.
    fn cba_again(&mut self, id: CallId, why: &str) {
        let attempts = self.cc.attendants.cfg.attempts;
        let Some(att) = self.cc.attendants.calls.get_mut(&id) else { return };
        att.tries += 1;
        if att.tries >= attempts {
            tracing::info!(call = id, "callback attendant gives up: {why}");
            self.cc_clear(id, why);
        } else {
            self.cba_say(id);
        }
    }

    /// Waits for keys that ran out by `now`.
    pub(super) fn cba_tick(&mut self, now: Tick) {
        let min = self.cc.attendants.cfg.min_digits as usize;
        let due: Vec<CallId> = self
            .cc
            .attendants
            .calls
            .iter()
            .filter(|(_, a)| a.due.is_some_and(|t| t <= now))
            .map(|(id, _)| *id)
            .collect();
        for id in due {
            let Some(att) = self.cc.attendants.calls.get_mut(&id) else { continue };
            att.due = None;
            match att.step {
                Step::Enter if att.keyed.len() >= min => self.cba_entered(id),
                Step::Enter => {
                    att.keyed.clear();
                    self.cba_again(id, "no callback number keyed in");
                }
                Step::Confirm => self.cba_again(id, "callback not confirmed"),
                Step::Thanks => {}
            }
        }
    }

    /// Call `id` is gone: forget its dialogue.
    pub(super) fn cba_gone(&mut self, id: CallId) {
        self.cc.attendants.calls.remove(&id);
    }
}
