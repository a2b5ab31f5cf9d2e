//! End-to-end call recording on the simulator's virtual clock: the recording policy of
//! extensions (`always`, `on_demand`, `never`), the feature codes during a call, the stereo
//! WAV files (caller left, called party right, checked by the parties' signatures), their
//! index rows and the CDR's `recording` field.

use cardpbx::config::Config;
use cardpbx::runner::Stepped;
use cardpbx::service::sim_config;
use cardpbx::store::{CdrRecord, Record, RecordingRecord};
use cardpbx_dsp::toneplan::ProgressTone;
use cardpbx_sim::signature::SignaturePlan;
use cardpbx_sim::{ClockMode, EndpointId, SimCard};
use std::path::Path;

mod support;
use support::goertzel;

const CONFIG: &str = r#"
[system]
name = "e2e-rec"

[[card]]
name = "sim0"
driver = "sim"
fxs_ports = 4
fxo_ports = 1
  [card.sim]
  seed = 11
  clock = "virtual"

[[extension]]
number = "2001"
port = "sim0/fxs1"
recording = "always"
[[extension]]
number = "2002"
port = "sim0/fxs2"
[[extension]]
number = "2003"
port = "sim0/fxs3"
recording = "on_demand"
[[extension]]
number = "2004"
port = "sim0/fxs4"
"#;

struct Rig {
    p: Stepped<SimCard>,
    dir: tempfile::TempDir,
    records: Vec<Record>,
}

fn rig(extra: &str) -> Rig {
    let dir = tempfile::tempdir().unwrap();
    let text = format!("{CONFIG}\n[recording]\ndir = {:?}\n{extra}", dir.path().join("rec"));
    let cfg = Config::parse_str(&text, "e2e-rec.toml").expect("test config is valid");
    let sc = sim_config(&cfg, &cfg.cards[0], Some(ClockMode::Virtual));
    let mut p = Stepped::new(SimCard::new(sc).unwrap(), &cfg, "sim0").expect("pbx");
    // 2026-11-23 08:00:00 UTC at tick 0.
    p.pbx_mut().set_utc_base(1_795_420_800_000_000);
    p.run_ms(200).unwrap();
    Rig { p, dir, records: Vec::new() }
}

impl Rig {
    fn run(&mut self, ms: u64) {
        self.p.run_ms(ms).unwrap();
        while let Some(r) = self.p.pbx_mut().pop_record() {
            self.records.push(r);
        }
        for c in self.p.take_cdrs() {
            self.records.push(Record::Cdr(c));
        }
    }

    /// Phone `from` calls `number`, phone `to` answers; returns when they are connected.
    fn connect(&mut self, from: u32, number: &str, to: u32) {
        assert!(self.p.card_mut().phone_mut(from).unwrap().off_hook());
        let ok = self
            .p
            .run_until(2000, |s| {
                s.card().phone(from).unwrap().hears().tone == Some(ProgressTone::Dial)
            })
            .unwrap();
        assert!(ok, "dial tone");
        self.p.card_mut().phone_mut(from).unwrap().dial(number).unwrap();
        let ok = self.p.run_until(5000, |s| s.card().phone(to).unwrap().is_ringing()).unwrap();
        assert!(ok, "phone {to} rings");
        self.run(300);
        assert!(self.p.card_mut().phone_mut(to).unwrap().answer());
        self.run(300);
        assert_eq!(self.p.pbx().active_calls(), 1);
    }

    fn dial(&mut self, port: u32, digits: &str) {
        self.p.card_mut().phone_mut(port).unwrap().dial(digits).unwrap();
    }

    fn hang_up(&mut self, first: u32, second: u32) {
        assert!(self.p.card_mut().phone_mut(first).unwrap().on_hook());
        self.run(500);
        assert!(self.p.card_mut().phone_mut(second).unwrap().on_hook());
        self.run(1000);
        assert_eq!(self.p.pbx().active_calls(), 0);
    }

    fn recordings(&self) -> Vec<&RecordingRecord> {
        self.records
            .iter()
            .filter_map(|r| if let Record::Recording(r) = r { Some(r) } else { None })
            .collect()
    }

    fn cdrs(&self) -> Vec<&CdrRecord> {
        self.records
            .iter()
            .filter_map(|r| if let Record::Cdr(c) = r { Some(c) } else { None })
            .collect()
    }

    fn wav_files(&self) -> Vec<std::path::PathBuf> {
        fn walk(d: &Path, out: &mut Vec<std::path::PathBuf>) {
            for e in std::fs::read_dir(d).into_iter().flatten().flatten() {
                let p = e.path();
                if p.is_dir() {
                    walk(&p, out);
                } else {
                    out.push(p);
                }
            }
        }
        let mut v = Vec::new();
        walk(self.dir.path(), &mut v);
        v
    }
}

/// The file's channels (left, right), or the one channel twice.
fn read_wav(path: &Path) -> (hound::WavSpec, Vec<i16>, Vec<i16>) {
    let mut r = hound::WavReader::open(path).unwrap();
    let spec = r.spec();
    let s: Vec<i16> = r.samples::<i16>().map(Result::unwrap).collect();
    if spec.channels == 2 {
        (
            spec,
            s.iter().step_by(2).copied().collect(),
            s.iter().skip(1).step_by(2).copied().collect(),
        )
    } else {
        (spec, s.clone(), s)
    }
}

/// Phone `port`'s signature's first frequency.
fn sig(port: u32) -> f32 {
    SignaturePlan::with_spans(4, 1, 0).unwrap().signature(EndpointId::Phone(port))[0]
}

/// `who`'s signature dominates `x` over the other party's.
fn assert_hears(x: &[i16], who: u32, other: u32, what: &str) {
    let (a, b) = (goertzel(x, sig(who)), goertzel(x, sig(other)));
    assert!(a > 0.2 && a > 10.0 * b, "{what}: phone {who} {a:.3} vs phone {other} {b:.3}");
}

#[test]
fn always_extension_call_gives_a_stereo_wav_a_row_and_the_cdr_field() {
    let mut r = rig("");
    r.connect(1, "2002", 2);
    r.run(3000);
    assert_eq!(r.p.pbx().recording_calls().len(), 1, "the call is being recorded");
    r.hang_up(1, 2);

    let recs = r.recordings();
    assert_eq!(recs.len(), 1, "one recording row: {recs:?}");
    let rec = recs[0];
    assert_eq!((rec.caller.as_str(), rec.called.as_str(), rec.channels), ("2001", "2002", 2));
    assert!((3000..4500).contains(&rec.duration_ms), "duration {}", rec.duration_ms);
    let file = Path::new(&rec.file);
    assert!(file.starts_with(r.dir.path().join("rec/2026/11/23")), "{}", rec.file);
    let name = file.file_name().unwrap().to_str().unwrap();
    assert!(name.starts_with(&format!("{}-20261123T08", rec.call_id)), "{name}");
    let cdrs = r.cdrs();
    assert_eq!(cdrs.len(), 1);
    assert_eq!(cdrs[0].recording.as_deref(), Some(rec.file.as_str()));

    let (spec, left, right) = read_wav(file);
    assert_eq!((spec.channels, spec.sample_rate), (2, 8000));
    assert_eq!(left.len() as i64, rec.duration_ms * 8);
    // A second in the middle of the call: the caller left, the called phone right.
    let mid = left.len() / 2;
    assert_hears(&left[mid - 4000..mid + 4000], 1, 2, "left channel");
    assert_hears(&right[mid - 4000..mid + 4000], 2, 1, "right channel");

    // The store indexes it.
    let mut st = cardpbx::store::Store::open_in_memory().unwrap();
    st.write(&r.records).unwrap();
}

#[test]
fn never_gives_nothing() {
    let mut r = rig("");
    r.connect(2, "2004", 4);
    r.dial(2, "*61");
    r.run(2000);
    assert!(r.p.pbx().recording_calls().is_empty());
    r.hang_up(2, 4);
    assert!(r.recordings().is_empty());
    assert_eq!(r.cdrs().len(), 1);
    assert_eq!(r.cdrs()[0].recording, None);
    assert!(r.wav_files().is_empty(), "{:?}", r.wav_files());
}

/// The longest run of exact zeros in both channels, in samples, and where it starts.
fn longest_silence(left: &[i16], right: &[i16]) -> (usize, usize) {
    let (mut best, mut at, mut run) = (0, 0, 0);
    for i in 0..left.len() {
        if left[i] == 0 && right[i] == 0 {
            run += 1;
            if run > best {
                best = run;
                at = i + 1 - run;
            }
        } else {
            run = 0;
        }
    }
    (best, at)
}

#[test]
fn on_demand_start_pause_resume_stop_with_feature_codes() {
    let mut r = rig("");
    r.connect(3, "2004", 4);
    r.run(1000);
    assert!(r.p.pbx().recording_calls().is_empty(), "on demand: not recorded before *61");
    r.dial(3, "*61");
    r.run(1500);
    assert_eq!(r.p.pbx().recording_calls().len(), 1, "*61 starts recording");
    r.dial(3, "*63");
    r.run(2000);
    r.dial(3, "*64");
    r.run(1500);
    r.dial(3, "*62");
    r.run(1000);
    assert!(r.p.pbx().recording_calls().is_empty(), "*62 stops recording");
    assert_eq!(r.recordings().len(), 1, "the stopped recording is indexed at once");
    r.run(1000);
    r.hang_up(4, 3);

    let recs = r.recordings();
    assert_eq!(recs.len(), 1);
    let rec = recs[0];
    assert_eq!((rec.caller.as_str(), rec.called.as_str()), ("2003", "2004"));
    assert_eq!(r.cdrs()[0].recording.as_deref(), Some(rec.file.as_str()));
    // From *61 to *62 (each acted on when its last digit is heard): about 1.5 + 2 + 1.5 s.
    assert!((4500..6500).contains(&rec.duration_ms), "duration {}", rec.duration_ms);
    let (_, left, right) = read_wav(Path::new(&rec.file));
    // The pause (*63 .. *64, 2 s plus the *64 digits) is silence in both channels.
    let (len, at) = longest_silence(&left, &right);
    assert!((15_000..19_000).contains(&len), "silence of {len} samples");
    // Before and after it both parties are there.
    let before = at.saturating_sub(8000)..at;
    let after = at + len + 400..at + len + 8400;
    assert_hears(&left[before.clone()], 3, 4, "left before the pause");
    assert_hears(&right[before], 4, 3, "right before the pause");
    assert_hears(&left[after.clone()], 3, 4, "left after the pause");
    assert_hears(&right[after], 4, 3, "right after the pause");
}

#[test]
fn mono_mixes_both_parties() {
    let mut r = rig("format = \"mono\"\n");
    r.connect(1, "2004", 4);
    r.run(2000);
    r.hang_up(4, 1);
    let recs = r.recordings();
    assert_eq!(recs.len(), 1);
    assert_eq!(recs[0].channels, 1);
    let (spec, x, _) = read_wav(Path::new(&recs[0].file));
    assert_eq!(spec.channels, 1);
    let mid = x.len() / 2;
    let m = &x[mid - 4000..mid + 4000];
    assert!(goertzel(m, sig(1)) > 0.1 && goertzel(m, sig(4)) > 0.1, "both parties in the mix");
}

const CENTER: &str = r#"
[system]
name = "e2e-rec-cc"

[[card]]
name = "sim0"
driver = "sim"
fxs_ports = 2
fxo_ports = 0
e1_spans = 1
  [card.sim]
  seed = 5
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
recording = "on_demand"

[[agent]]
id = "101"
pin = "1234"
name = "Ann"
queues = ["600"]

[[queue]]
number = "600"
name = "sales"
recording = "always"

[[inbound]]
dnis = ["80001000"]
destination = "queue:sales"
"#;

#[test]
fn queue_policy_records_agent_calls_with_agent_and_queue_in_the_row() {
    let dir = tempfile::tempdir().unwrap();
    let text = format!("{CENTER}\n[recording]\ndir = {:?}\n", dir.path());
    let cfg = Config::parse_str(&text, "e2e-rec-cc.toml").unwrap();
    let mut sc = sim_config(&cfg, &cfg.cards[0], Some(ClockMode::Virtual));
    sc.phone.auto_answer_ms = Some(1000);
    let mut p = Stepped::new(SimCard::new(sc).unwrap(), &cfg, "sim0").unwrap();
    assert!(p.run_until(5000, |s| s.card().pri_link_up(1)).unwrap(), "D-channel up");
    // Ann logs in on phone 1.
    assert!(p.card_mut().phone_mut(1).unwrap().off_hook());
    p.run_ms(500).unwrap();
    p.card_mut().phone_mut(1).unwrap().dial("*21101*1234#").unwrap();
    p.run_ms(2500).unwrap();
    assert!(p.card_mut().phone_mut(1).unwrap().on_hook());
    p.run_ms(1000).unwrap();

    let h = p.card_mut().pri_call_in(1, Some("13900001111"), "80001000").unwrap();
    let ok = p.run_until(10_000, |s| s.pbx().recording_calls().len() == 1).unwrap();
    assert!(ok, "the queue's call to Ann is recorded");
    let ts = p.card().pri_calls(1).into_iter().find(|c| c.handle == h).unwrap().ts.unwrap();
    p.run_ms(2000).unwrap();
    assert!(p.card_mut().pri_hang_up(1, h));
    p.run_ms(1000).unwrap();
    p.card_mut().phone_mut(1).unwrap().on_hook();
    p.run_ms(1000).unwrap();

    let mut records = Vec::new();
    while let Some(r) = p.pbx_mut().pop_record() {
        records.push(r);
    }
    let recs: Vec<_> = records
        .iter()
        .filter_map(|r| if let Record::Recording(r) = r { Some(r) } else { None })
        .collect();
    assert_eq!(recs.len(), 1, "{recs:?}");
    let rec = recs[0];
    assert_eq!(rec.agent.as_deref(), Some("101"));
    assert_eq!(rec.queue.as_deref(), Some("sales"));
    assert_eq!(rec.caller, "13900001111");
    let cdrs = p.take_cdrs();
    let cdr = cdrs.iter().find(|c| c.agent.as_deref() == Some("101")).expect("the call's CDR");
    assert_eq!(cdr.recording.as_deref(), Some(rec.file.as_str()));
    // The caller (the PRI bearer) left, Ann's phone right.
    let plan = SignaturePlan::with_spans(2, 0, 1).unwrap();
    let caller = plan.signature(EndpointId::Bearer { span: 1, ts })[0];
    let ann = plan.signature(EndpointId::Phone(1))[0];
    let (_, left, right) = read_wav(Path::new(&rec.file));
    let mid = left.len() / 2;
    let (l, r) = (&left[mid - 4000..mid + 4000], &right[mid - 4000..mid + 4000]);
    assert!(goertzel(l, caller) > 10.0 * goertzel(l, ann), "caller left");
    assert!(goertzel(r, ann) > 10.0 * goertzel(r, caller), "agent right");
}

#[test]
fn an_r2_trunk_group_policy_records_its_calls() {
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        r#"
[[card]]
name = "sim0"
driver = "sim"
fxs_ports = 1
e1_spans = 1
  [card.sim]
  seed = 5
  clock = "virtual"

[[span]]
card = "sim0"
span = 1
framing = "cas"

[[extension]]
number = "2001"
port = "sim0/fxs1"

[[trunk_group]]
name = "r2"
signalling = "r2_china"
ports = ["sim0/span1"]
incoming = "2001"
recording = "always"

[recording]
dir = {:?}
"#,
        dir.path().join("rec")
    );
    let cfg = Config::parse_str(&text, "r2rec.toml").unwrap();
    let mut sc = sim_config(&cfg, &cfg.cards[0], Some(ClockMode::Virtual));
    sc.phone.auto_answer_ms = Some(500);
    let p = Stepped::new(SimCard::new(sc).unwrap(), &cfg, "sim0").unwrap();
    let mut r = Rig { p, dir, records: Vec::new() };
    r.run(200);
    let h = r.p.card_mut().r2_call_in(1, "13800138000", "8800").unwrap();
    let ok =
        r.p.run_until(15_000, |s| s.card().r2_calls(1).first().is_some_and(|c| c.answered))
            .unwrap();
    assert!(ok, "the R2 call is answered by the extension");
    r.run(2000);
    assert_eq!(r.p.pbx().recording_calls().len(), 1, "the R2 call is being recorded");
    assert!(r.p.card_mut().r2_hang_up(1, h));
    r.run(1500);
    r.p.card_mut().phone_mut(1).unwrap().on_hook();
    r.run(1500);
    let recs = r.recordings();
    assert_eq!(recs.len(), 1, "{recs:?}");
    assert_eq!(recs[0].caller, "13800138000");
    assert!((1500..3500).contains(&recs[0].duration_ms), "{}", recs[0].duration_ms);
    let (_, left, right) = read_wav(Path::new(&recs[0].file));
    assert_eq!(left.len(), right.len());
    let cdr = r.cdrs().into_iter().find(|c| c.direction == "inbound").unwrap().clone();
    assert_eq!(cdr.trunk_group.as_deref(), Some("r2"), "the CDR names the R2 group");
    assert_eq!(cdr.recording.as_deref(), Some(recs[0].file.as_str()));
}
