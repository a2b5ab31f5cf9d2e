//! End-to-end fax through the daemon on the simulator's virtual clock: a simulated fax machine
//! (`SimFax`, our T.30 terminal on the soft modems) is the remote party of an FXO exchange
//! line or a PRI bearer; the daemon detects its calling tone, receives the fax through a fax
//! port of the media engine into the spool directory, and records it in the store. And the
//! other way: `fax_send` places a call through the PRI trunk group, or seizes an FXO line and
//! dials in DTMF, retries after busy, and sends the document to a simulated fax machine that
//! answers.
//!
//! The fax worker runs synchronously after every tick (`Stepped`), so every run is the same.

use cardpbx::config::Config;
use cardpbx::pbx::FaxSendRequest;
use cardpbx::runner::Stepped;
use cardpbx::service::sim_config;
use cardpbx::store::{FaxRecord, Store, StoreHandle, StoreWriter};
use cardpbx_dsp::fax::t30::{FaxStatus, ModemFamily};
use cardpbx_dsp::fax::t4::Bitmap;
use cardpbx_dsp::fax::tiff::{read_tiff, FaxPage};
use cardpbx_hal::{ChannelId, HookState};
use cardpbx_signalling::r2::BSignal;
use cardpbx_sim::{ClockMode, CoState, SimCard, SimFax};
use std::path::Path;
use std::time::Duration;

fn config(spool: &Path) -> String {
    format!(
        r#"
[system]
name = "e2e-fax"
spool_dir = "{}"

[fax]
station_id = "+86 10 5555 0100"
retry_delay_s = 5

[[card]]
name = "sim0"
driver = "sim"
fxs_ports = 2
fxo_ports = 2
e1_spans = 1
  [card.sim]
  seed = 11
  clock = "virtual"
  co_disconnect = "polarity"
  co_answer_delay_ms = 1500

[[extension]]
number = "2001"
port = "sim0/fxs1"

[[trunk_group]]
name = "pstn"
ports = ["sim0/fxo1", "sim0/fxo2"]
incoming = "2001"
fax_destination = "receive"

[[trunk_group]]
name = "isdn"
signalling = "pri_cpe"
ports = ["sim0/span1"]
incoming = "2001"
fax_destination = "receive"

[[route]]
prefix = "0"
trunk_group = "isdn"
strip = 1
min_digits = 3

[[route]]
prefix = "9"
trunk_group = "pstn"
strip = 1
min_digits = 3
"#,
        spool.display()
    )
}

const MODEMS: &[ModemFamily] = &[ModemFamily::V27ter, ModemFamily::V29];
const REMOTE_ID: &str = "+86 10 5555 0199";
const OUR_ID: &str = "+86 10 5555 0100";

/// Two distinct pages at standard resolution.
fn document() -> Vec<FaxPage> {
    (0..2)
        .map(|n| {
            let mut b = Bitmap::new(1728, 120);
            for y in 0..b.height {
                for x in 0..b.width {
                    let on = if n == 0 { (x / 64 + y / 16) % 2 == 0 } else { (x + 3 * y) % 97 < 9 };
                    b.set(x, y, on);
                }
            }
            FaxPage::new(b, false)
        })
        .collect()
}

fn pbx(spool: &Path) -> Stepped<SimCard> {
    pbx_with(spool, &[])
}

/// The PBX on the test configuration; the simulated exchange answers `busy` on the FXO lines
/// with busy tone.
fn pbx_with(spool: &Path, busy: &[&str]) -> Stepped<SimCard> {
    let text = config(spool);
    let cfg = Config::parse_str(&text, "e2e-fax.toml").expect("test config is valid");
    let mut sc = sim_config(&cfg, &cfg.cards[0], Some(ClockMode::Virtual));
    sc.co.busy_numbers = busy.iter().map(|b| b.to_string()).collect();
    let card = SimCard::new(sc).expect("simulated card");
    let mut p = Stepped::new(card, &cfg, "sim0").expect("pbx");
    let up = p.run_until(5000, |s| s.card().pri_link_up(1)).unwrap();
    assert!(up, "the D-channel comes up");
    p.run_ms(500).unwrap();
    p
}

fn with_store(p: &mut Stepped<SimCard>, dir: &Path) -> (StoreHandle, std::path::PathBuf) {
    let db = dir.join("cardpbx.db");
    let (store, _writer) = StoreWriter::spawn(&db).unwrap();
    p.set_store(store.clone());
    (store, db)
}

fn assert_same_pages(got: &[FaxPage], want: &[FaxPage]) {
    assert_eq!(got.len(), want.len(), "page count");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert_eq!(
            (g.bitmap.width, g.bitmap.height),
            (w.bitmap.width, w.bitmap.height),
            "page {i}"
        );
        assert_eq!(g.bitmap.bits, w.bitmap.bits, "page {i} pixels");
        assert_eq!(g.bad_rows, 0, "page {i} decoded cleanly");
    }
}

/// The daemon received `want`: the store row, the spool files, the events.
fn check_received(
    p: &mut Stepped<SimCard>,
    store: &StoreHandle,
    db: &Path,
    want: &[FaxPage],
) -> FaxRecord {
    assert!(store.flush(Duration::from_secs(30)));
    let s = Store::open_read_only(db).unwrap();
    let rows = s.faxes(10).unwrap();
    assert_eq!(rows.len(), 1, "one fax row: {rows:?}");
    let r = rows[0].clone();
    assert_eq!((r.direction.as_str(), r.status.as_str(), r.pages), ("received", "success", 2));
    assert!(r.bit_rate >= 4800, "{r:?}");
    assert_eq!(r.remote_ident.as_deref(), Some(REMOTE_ID));
    let file = r.file.clone().expect("a TIFF was written");
    let pages = read_tiff(&std::fs::read(&file).unwrap()).expect("our reader takes the TIFF");
    assert_same_pages(&pages, want);
    let pdf = Path::new(&file).with_extension("pdf");
    assert!(std::fs::read(&pdf).unwrap().starts_with(b"%PDF-"), "PDF copy written");
    assert_eq!(s.fax(r.id).unwrap().as_ref(), Some(&r));
    let kinds: Vec<&str> =
        std::iter::from_fn(|| p.pbx_mut().pop_fax_event()).map(|e| e.event).collect();
    assert_eq!(kinds, ["receiving", "received"]);
    r
}

fn fax_over(s: &Stepped<SimCard>, chan: ChannelId) -> bool {
    s.card().fax(chan).is_some_and(SimFax::is_finished) && s.pbx().active_calls() == 0
}

#[test]
fn fax_from_an_fxo_line_is_received_into_the_spool() {
    let dir = tempfile::tempdir().unwrap();
    let mut p = pbx(dir.path());
    let (store, db) = with_store(&mut p, dir.path());
    let want = document();
    let chan = p.card().fxo_channel(1).unwrap();
    assert!(p.card_mut().co_line_mut(1).unwrap().ring_in(Some("01055550199")));
    // After the caller ID, the daemon answers at once to listen for fax: the fax machine's
    // audio reaches the line from then on.
    let off_hook =
        |s: &Stepped<SimCard>| s.card().co_line(1).unwrap().our_hook() == HookState::OffHook;
    assert!(p.run_until(15_000, off_hook).unwrap(), "the daemon answers the line");
    p.card_mut().attach_fax(chan, SimFax::sender(want.clone(), REMOTE_ID, MODEMS)).unwrap();
    // CNG is heard, the call moves to the fax service, two pages come, the daemon clears.
    let done = p.run_until(120_000, |s| fax_over(s, chan)).unwrap();
    let f = p.card().fax(chan).unwrap();
    assert!(done, "fax over and call cleared: {f:?}");
    assert_eq!(f.status(), Some(FaxStatus::Success));
    assert_eq!(f.pages_sent(), 2);
    assert_eq!(f.remote_ident(), Some(OUR_ID), "our CSI");
    assert_eq!(p.pbx().counters().fax_calls, 1);
    p.run_ms(200).unwrap();
    let r = check_received(&mut p, &store, &db, &want);
    assert_eq!(r.remote_number, "01055550199");
    assert_eq!(r.trunk_group.as_deref(), Some("pstn"));
    assert_eq!(p.pbx().fax_sessions(), 0, "the fax port is free again");
    let s = p.engine_stats().snapshot();
    assert_eq!((s.rejected_commands, s.event_overruns), (0, 0));
}

#[test]
fn fax_from_a_pri_bearer_is_received_into_the_spool() {
    let dir = tempfile::tempdir().unwrap();
    let mut p = pbx(dir.path());
    let (store, db) = with_store(&mut p, dir.path());
    let want = document();
    let handle = p.card_mut().pri_call_in(1, Some("01055550199"), "5000").unwrap();
    // The exchange picked a timeslot: put the fax machine on it once the PBX answered.
    let answered = p
        .run_until(5000, |s| s.card().pri_calls(1).iter().any(|c| c.handle == handle && c.answered))
        .unwrap();
    assert!(answered, "the PBX answers to listen for fax: {:?}", p.card().pri_calls(1));
    let ts = p.card().pri_calls(1).into_iter().find(|c| c.handle == handle).unwrap().ts.unwrap();
    let chan = p.card().timeslot_channel(1, ts).unwrap();
    p.card_mut().attach_fax(chan, SimFax::sender(want.clone(), REMOTE_ID, MODEMS)).unwrap();
    let done = p.run_until(120_000, |s| fax_over(s, chan)).unwrap();
    let f = p.card().fax(chan).unwrap();
    assert!(done, "fax over and call cleared: {f:?}");
    assert_eq!(f.status(), Some(FaxStatus::Success));
    assert_eq!(f.pages_sent(), 2);
    assert_eq!(p.pbx().counters().fax_calls, 1, "moved to the fax service on CNG");
    p.run_ms(500).unwrap();
    let r = check_received(&mut p, &store, &db, &want);
    assert_eq!(r.remote_number, "01055550199");
    assert_eq!(r.trunk_group.as_deref(), Some("isdn"));
    let c = p.card().pri_calls(1).into_iter().find(|c| c.handle == handle).unwrap();
    assert!(c.cause.is_some(), "the call was cleared on the exchange: {c:?}");
}

#[test]
fn fax_send_goes_out_through_pri_and_retries_after_busy() {
    let dir = tempfile::tempdir().unwrap();
    let mut p = pbx(dir.path());
    let (store, db) = with_store(&mut p, dir.path());
    p.card_mut().set_busy_numbers(1, vec!["55550123".into()]).unwrap();
    let doc = document();
    let job = p
        .pbx_mut()
        .fax_send(FaxSendRequest {
            number: "055550123".into(),
            group: None,
            file: "/tmp/order.tif".into(),
            pages: doc.clone(),
            retries: Some(2),
        })
        .unwrap();
    // First attempt: busy; the job waits for its retry.
    let retried = p
        .run_until(10_000, |s| {
            s.pbx()
                .fax_jobs()
                .iter()
                .any(|j| j.job == job && j.state == "waiting" && j.attempts == 1)
        })
        .unwrap();
    assert!(retried, "busy, then waiting: {:?}", p.pbx().fax_jobs());
    let jobs = p.pbx().fax_jobs();
    assert_eq!(jobs[0].last_error.as_deref(), Some("the far end is busy"));
    assert_eq!(jobs[0].retries_left, 1);
    assert_eq!(p.card().pri_calls(1)[0].cause, Some(17), "cleared user busy");
    p.card_mut().set_busy_numbers(1, Vec::new()).unwrap();
    // Second attempt: the exchange answers; a fax machine takes the bearer.
    let up = |s: &Stepped<SimCard>| {
        s.card().pri_calls(1).into_iter().find(|c| c.answered && c.cause.is_none())
    };
    let answered = p.run_until(20_000, |s| up(s).is_some()).unwrap();
    assert!(answered, "{:?}", p.card().pri_calls(1));
    let c = up(&p).unwrap();
    assert_eq!(c.called, "55550123");
    let chan = p.card().timeslot_channel(1, c.ts.unwrap()).unwrap();
    receive_on(&mut p, chan, &doc);
    let c = p.card().pri_calls(1).into_iter().find(|x| x.handle == c.handle).unwrap();
    assert!(c.cause.is_some(), "the daemon cleared the call: {c:?}");
    assert!(store.flush(Duration::from_secs(30)));
    let rows = Store::open_read_only(&db).unwrap().faxes(10).unwrap();
    assert_eq!(rows.len(), 1, "{rows:?}");
    let r = &rows[0];
    assert_eq!(
        (r.direction.as_str(), r.status.as_str(), r.pages, r.attempts),
        ("sent", "success", 2, 2)
    );
    assert_eq!(r.remote_number, "55550123");
    assert_eq!(r.remote_ident.as_deref(), Some("+86 21 5555 0123"));
    assert_eq!(r.file.as_deref(), Some("/tmp/order.tif"));
    assert_eq!(r.job, job);
    let kinds: Vec<&str> =
        std::iter::from_fn(|| p.pbx_mut().pop_fax_event()).map(|e| e.event).collect();
    assert_eq!(kinds, ["queued", "dialing", "retry", "dialing", "sending", "sent"]);
    // The bearer is free again: a new fax job could use it.
    let free = (1..=31u8).filter(|&ts| ts != 16).all(|ts| {
        let ch = p.card().timeslot_channel(1, ts).unwrap();
        p.pbx().channel_source(ch).0 == "silence"
    });
    assert!(free, "no channel left on a fax port");
}

#[test]
fn fax_send_refuses_what_it_cannot_do() {
    let dir = tempfile::tempdir().unwrap();
    let mut p = pbx(dir.path());
    let req = |number: &str, group: Option<&str>, pages: Vec<FaxPage>| FaxSendRequest {
        number: number.into(),
        group: group.map(Into::into),
        file: "x.tif".into(),
        pages,
        retries: None,
    };
    let e = p.pbx_mut().fax_send(req("2001", None, document())).unwrap_err();
    assert!(e.contains("internal number"), "{e}");
    let e = p.pbx_mut().fax_send(req("123", None, document())).unwrap_err();
    assert!(e.contains("no route"), "{e}");
    let e = p.pbx_mut().fax_send(req("5550", Some("nope"), document())).unwrap_err();
    assert!(e.contains("no trunk group"), "{e}");
    let e = p.pbx_mut().fax_send(req("5550", Some("isdn"), Vec::new())).unwrap_err();
    assert!(e.contains("no pages"), "{e}");
    assert!(p.pbx().fax_jobs().is_empty());
}

#[test]
fn fax_send_goes_out_through_r2() {
    let dir = tempfile::tempdir().unwrap();
    let text = config(dir.path()).replace("pri_cpe", "r2_china")
        + "\n[[span]]\ncard = \"sim0\"\nspan = 1\nframing = \"cas\"\n";
    let cfg = Config::parse_str(&text, "e2e-fax.toml").expect("test config is valid");
    let mut sc = sim_config(&cfg, &cfg.cards[0], Some(ClockMode::Virtual));
    sc.exchange.busy_numbers = vec!["55550111".into()];
    let mut p = Stepped::new(SimCard::new(sc).unwrap(), &cfg, "sim0").expect("pbx");
    p.run_ms(500).unwrap();
    let doc = document();
    let send = |p: &mut Stepped<SimCard>, number: &str, retries| {
        p.pbx_mut()
            .fax_send(FaxSendRequest {
                number: number.into(),
                group: None,
                file: "/tmp/order.tif".into(),
                pages: doc.clone(),
                retries: Some(retries),
            })
            .unwrap()
    };
    // Group B busy twice: one retry, then the job fails.
    send(&mut p, "055550111", 1);
    let done = p.run_until(60_000, |s| s.pbx().fax_jobs().is_empty()).unwrap();
    assert!(done, "{:?}", p.pbx().fax_jobs());
    let busy = p.card().r2_calls(1);
    assert_eq!(busy.len(), 2, "{busy:?}");
    assert!(busy.iter().all(|c| c.b_signal == Some(BSignal::Busy) && c.dnis == "55550111"));
    let kinds: Vec<&str> =
        std::iter::from_fn(|| p.pbx_mut().pop_fax_event()).map(|e| e.event).collect();
    assert_eq!(kinds, ["queued", "dialing", "retry", "dialing", "failed"]);
    // Answered: a fax machine on the timeslot receives both pages.
    send(&mut p, "055550123", 0);
    let up = |s: &Stepped<SimCard>| {
        s.card().r2_calls(1).into_iter().find(|c| c.answered && c.cleared.is_none())
    };
    let answered = p.run_until(20_000, |s| up(s).is_some()).unwrap();
    assert!(answered, "{:?}", p.card().r2_calls(1));
    let c = up(&p).unwrap();
    assert_eq!(c.dnis, "55550123");
    let chan = p.card().timeslot_channel(1, c.ts).unwrap();
    p.card_mut().attach_fax(chan, SimFax::receiver("+86 21 5555 0123", MODEMS)).unwrap();
    let done = p.run_until(120_000, |s| s.pbx().fax_jobs().is_empty()).unwrap();
    assert!(done, "the job finished: {:?}", p.pbx().fax_jobs());
    p.run_ms(2000).unwrap();
    let f = p.card().fax(chan).unwrap();
    assert_eq!(f.status(), Some(FaxStatus::Success), "{f:?}");
    assert_same_pages(f.received(), &doc);
    let c = p.card().r2_calls(1).into_iter().find(|x| x.handle == c.handle).unwrap();
    assert!(c.cleared.is_some(), "the daemon cleared the call: {c:?}");
    let kinds: Vec<&str> =
        std::iter::from_fn(|| p.pbx_mut().pop_fax_event()).map(|e| e.event).collect();
    assert_eq!(kinds, ["queued", "dialing", "sending", "sent"]);
    assert_eq!(p.pbx().channel_source(chan).0, "silence", "off the fax port");
}

/// The FXO line whose exchange connected a call to `number`.
fn fxo_connected_to(s: &Stepped<SimCard>, number: &str) -> Option<u32> {
    (1..=2).find(|&n| {
        let co = s.card().co_line(n).unwrap();
        co.state() == CoState::Connected && co.dialed_matches(number)
    })
}

#[test]
fn fax_send_goes_out_through_an_fxo_line_and_retries_after_busy() {
    let dir = tempfile::tempdir().unwrap();
    let mut p = pbx_with(dir.path(), &["55550111"]);
    let (store, db) = with_store(&mut p, dir.path());
    let doc = document();
    let send = |p: &mut Stepped<SimCard>, number: &str, group: Option<&str>, retries| {
        p.pbx_mut()
            .fax_send(FaxSendRequest {
                number: number.into(),
                group: group.map(Into::into),
                file: "/tmp/order.tif".into(),
                pages: doc.clone(),
                retries: Some(retries),
            })
            .unwrap()
    };
    // A busy number: the line is seized, the number dialled in DTMF, busy tone heard, the
    // line released; one retry, busy again, the job fails.
    let busy_job = send(&mut p, "55550111", Some("pstn"), 1);
    let retried = p
        .run_until(30_000, |s| {
            s.pbx().fax_jobs().iter().any(|j| j.state == "waiting" && j.attempts == 1)
        })
        .unwrap();
    assert!(retried, "busy, then waiting: {:?}", p.pbx().fax_jobs());
    let jobs = p.pbx().fax_jobs();
    assert_eq!(jobs[0].trunk_group, "pstn");
    assert_eq!(jobs[0].last_error.as_deref(), Some("the far end is busy"));
    assert_eq!(jobs[0].retries_left, 0);
    p.run_ms(100).unwrap();
    let co = p.card().co_line(1).unwrap();
    assert!(co.dialed_matches("55550111"), "dialled in DTMF: {:?}", co.dialed());
    assert_eq!(co.counters().calls_out_busy, 1);
    assert_eq!(co.our_hook(), HookState::OnHook, "the line is released after busy");
    let done = p.run_until(60_000, |s| s.pbx().fax_jobs().is_empty()).unwrap();
    assert!(done, "{:?}", p.pbx().fax_jobs());
    let busy_total: u64 =
        (1..=2).map(|n| p.card().co_line(n).unwrap().counters().calls_out_busy).sum();
    assert_eq!(busy_total, 2, "the retry was busy too");
    let kinds: Vec<&str> =
        std::iter::from_fn(|| p.pbx_mut().pop_fax_event()).map(|e| e.event).collect();
    assert_eq!(kinds, ["queued", "dialing", "sending", "retry", "dialing", "sending", "failed"]);

    // A fax machine answers: the route's prefix picks the FXO group, the session starts as
    // soon as the number is dialled, both pages arrive.
    let job = send(&mut p, "955550123", None, 2);
    let connected = p.run_until(30_000, |s| fxo_connected_to(s, "55550123").is_some()).unwrap();
    assert!(connected, "the exchange connects the call: {:?}", p.pbx().fax_jobs());
    let port = fxo_connected_to(&p, "55550123").unwrap();
    assert_eq!(p.pbx().fax_jobs()[0].state, "sending", "sending from the end of dialling");
    let chan = p.card().fxo_channel(port).unwrap();
    receive_on(&mut p, chan, &doc);
    assert_eq!(p.card().co_line(port).unwrap().our_hook(), HookState::OnHook, "line released");
    assert_eq!(p.pbx().channel_source(chan).0, "silence", "off the fax port");
    assert_eq!(p.pbx().fax_sessions(), 0);
    assert!(store.flush(Duration::from_secs(30)));
    let mut rows = Store::open_read_only(&db).unwrap().faxes(10).unwrap();
    rows.sort_by_key(|r| r.job);
    assert_eq!(rows.len(), 2, "{rows:?}");
    let (b, r) = (&rows[0], &rows[1]);
    assert_eq!((b.job, b.status.as_str(), b.attempts, b.pages), (busy_job, "busy", 2, 0));
    assert_eq!(b.error.as_deref(), Some("the far end is busy"));
    assert_eq!(
        (r.job, r.direction.as_str(), r.status.as_str(), r.pages, r.attempts),
        (job, "sent", "success", 2, 1)
    );
    assert_eq!(r.remote_number, "55550123");
    assert_eq!(r.remote_ident.as_deref(), Some("+86 21 5555 0123"));
    assert_eq!(r.trunk_group.as_deref(), Some("pstn"));
    let kinds: Vec<&str> =
        std::iter::from_fn(|| p.pbx_mut().pop_fax_event()).map(|e| e.event).collect();
    assert_eq!(kinds, ["queued", "dialing", "sending", "sent"]);
    let s = p.engine_stats().snapshot();
    assert_eq!((s.rejected_commands, s.event_overruns), (0, 0));
}

/// A simulated fax machine takes `chan` and receives the daemon's job: it ends, the machine
/// got every page of `doc`, and it saw our TSI.
fn receive_on(p: &mut Stepped<SimCard>, chan: ChannelId, doc: &[FaxPage]) {
    p.card_mut().attach_fax(chan, SimFax::receiver("+86 21 5555 0123", MODEMS)).unwrap();
    let done = p.run_until(120_000, |s| s.pbx().fax_jobs().is_empty()).unwrap();
    assert!(done, "the job finished: {:?}", p.pbx().fax_jobs());
    p.run_ms(2000).unwrap();
    let f = p.card().fax(chan).unwrap();
    assert_eq!(f.status(), Some(FaxStatus::Success), "{f:?}");
    assert_same_pages(f.received(), doc);
    assert_eq!(f.remote_ident(), Some(OUR_ID), "our TSI");
}
