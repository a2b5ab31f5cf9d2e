use super::*;
use crate::config::callcenter_routing::{HoursSpec, RuleKind};
use std::cell::RefCell;

/// A configuration parsed without the semantic checks (engine tests only; the checks have
/// their own tests in `config::callcenter_routing`).
fn router(text: &str) -> Router {
    let cfg: Config = toml::from_str(text).unwrap();
    Router::new(&cfg).unwrap()
}

fn at(y: i64, m: u32, d: u32, h: u32, min: u32) -> LocalTime {
    LocalTime::from_ymd_hm(y, m, d, h, min).unwrap()
}

fn q(name: &str, priority: u8) -> Destination {
    Destination::Queue { queue: name.into(), priority }
}

fn route(r: &Router, dnis: &str, ani: Option<&str>, now: LocalTime) -> Option<RouteDecision> {
    r.route(&InboundCall { dnis, ani }, now, &NoLastAgent)
}

const OFFICE: &str = r#"
[[schedule]]
name = "office"
hours = ["mon-fri 08:30-12:00,13:00-18:00", "sat 09:00-12:00"]

[[schedule]]
name = "night"
hours = ["mon-fri 22:00-06:00"]

[[holiday]]
date = "2026-10-01"
until = "2026-10-07"
name = "National Day"
greeting = "national_day.wav"

[[holiday]]
date = "2026-12-25"

[[inbound]]
name = "hotline"
dnis = ["80001000"]
schedule = "office"
destination = "ivr:main"
after_hours = "voicemail:hotline"
weekend = "message:closed_weekend.wav"
holiday = "voicemail:holiday"

[[inbound]]
name = "night desk"
dnis = ["80001001"]
schedule = "night"
destination = "queue:night"
after_hours = "voicemail:night"

[[inbound]]
name = "sales did"
dnis_prefix = ["8000200"]
destination = "queue:sales"
"#;

#[test]
fn local_time_calendar() {
    // 2026-11-23 is a Monday.
    let t = at(2026, 11, 23, 10, 15);
    assert_eq!(t.weekday(), Weekday::Mon);
    assert_eq!(t.minute_of_day(), 615);
    assert_eq!(t.date().to_string(), "2026-11-23");
    assert_eq!(LocalTime::new(0).weekday(), Weekday::Thu);
    assert_eq!(LocalTime::new(-1).date().to_string(), "1969-12-31");
    assert_eq!(at(2024, 2, 29, 0, 0).weekday(), Weekday::Thu);
    assert!(LocalTime::from_ymd_hm(2026, 2, 29, 0, 0).is_none());
    for days in [-800_000i64, -1, 0, 1, 59, 60, 365, 11_000, 20_000, 2_000_000] {
        let d = Date { days };
        let (y, m, dd) = d.ymd();
        assert_eq!(Date::from_ymd(y, m, dd), Some(d), "{days}");
        assert_eq!(d.to_string().parse::<Date>().ok(), (0..=9999).contains(&y).then_some(d));
    }
}

#[test]
fn working_hours_after_hours_and_lunch() {
    let r = router(OFFICE);
    let d = route(&r, "80001000", Some("1390000"), at(2026, 11, 23, 8, 30)).unwrap();
    assert_eq!((d.dest, d.time), (Destination::Ivr("main".into()), TimeOfDay::WorkingHours));
    let d = route(&r, "80001000", None, at(2026, 11, 23, 8, 29)).unwrap();
    assert_eq!((d.dest, d.time), (Destination::Voicemail("hotline".into()), TimeOfDay::AfterHours));
    // Lunch break between the two ranges.
    let d = route(&r, "80001000", None, at(2026, 11, 23, 12, 30)).unwrap();
    assert_eq!(d.time, TimeOfDay::AfterHours);
    // The end minute is closed.
    let d = route(&r, "80001000", None, at(2026, 11, 27, 18, 0)).unwrap();
    assert_eq!(d.time, TimeOfDay::AfterHours);
    let d = route(&r, "80001000", None, at(2026, 11, 27, 17, 59)).unwrap();
    assert_eq!(d.time, TimeOfDay::WorkingHours);
    assert_eq!(d.rule_name.as_deref(), Some("hotline"));
    assert_eq!(d.rule, 0);
}

#[test]
fn weekend_and_saturday_morning() {
    let r = router(OFFICE);
    // Saturday has short hours: open in the morning, after hours in the afternoon.
    let d = route(&r, "80001000", None, at(2026, 11, 28, 10, 0)).unwrap();
    assert_eq!(d.time, TimeOfDay::WorkingHours);
    let d = route(&r, "80001000", None, at(2026, 11, 28, 15, 0)).unwrap();
    assert_eq!(d.time, TimeOfDay::AfterHours);
    // Sunday has no hours: weekend.
    let d = route(&r, "80001000", None, at(2026, 11, 29, 10, 0)).unwrap();
    assert_eq!(d.time, TimeOfDay::Weekend);
    assert_eq!(d.dest, Destination::Message("closed_weekend.wav".into()));
}

#[test]
fn schedules_across_midnight() {
    let r = router(OFFICE);
    let night = |t| route(&r, "80001001", None, t).unwrap();
    // Friday 23:00 and Saturday 05:59 belong to Friday's 22:00-06:00.
    assert_eq!(night(at(2026, 11, 27, 23, 0)).time, TimeOfDay::WorkingHours);
    assert_eq!(night(at(2026, 11, 28, 5, 59)).time, TimeOfDay::WorkingHours);
    assert_eq!(night(at(2026, 11, 28, 5, 59)).dest, q("night", 0));
    // Saturday 06:00 is closed, and Saturday has no hours of its own.
    assert_eq!(night(at(2026, 11, 28, 6, 0)).time, TimeOfDay::Weekend);
    assert_eq!(night(at(2026, 11, 28, 23, 0)).time, TimeOfDay::Weekend);
    // Monday 03:00: Sunday had no night shift, Monday's starts at 22:00.
    assert_eq!(night(at(2026, 11, 30, 3, 0)).time, TimeOfDay::AfterHours);
    // Tuesday 03:00: Monday's shift runs past midnight.
    assert_eq!(night(at(2026, 12, 1, 3, 0)).time, TimeOfDay::WorkingHours);
    // Weekend defaults to after_hours when not set.
    assert_eq!(night(at(2026, 11, 29, 12, 0)).dest, Destination::Voicemail("night".into()));
}

#[test]
fn holidays_with_greeting_and_ranges() {
    let r = router(OFFICE);
    // 2026-10-05 is a Monday inside the National Day week, during office hours.
    let d = route(&r, "80001000", None, at(2026, 10, 5, 10, 0)).unwrap();
    assert_eq!(d.time, TimeOfDay::Holiday { name: Some("National Day".into()) });
    assert_eq!(d.dest, Destination::Voicemail("holiday".into()));
    assert_eq!(d.greeting, Some(PathBuf::from("national_day.wav")));
    assert!(d.reason().contains("holiday \"National Day\""), "{}", d.reason());
    let d = route(&r, "80001000", None, at(2026, 10, 8, 10, 0)).unwrap();
    assert_eq!(d.time, TimeOfDay::WorkingHours);
    // A holiday without greeting; the night rule has no holiday key: after_hours.
    let d = route(&r, "80001001", None, at(2026, 12, 25, 23, 0)).unwrap();
    assert_eq!(d.time, TimeOfDay::Holiday { name: None });
    assert_eq!((d.dest, d.greeting), (Destination::Voicemail("night".into()), None));
    // A rule without schedule ignores holidays.
    let d = route(&r, "80002001", None, at(2026, 12, 25, 23, 0)).unwrap();
    assert_eq!((d.dest, d.time), (q("sales", 0), TimeOfDay::Always));
}

#[test]
fn dnis_exact_and_prefix_and_no_match() {
    let r = router(OFFICE);
    let t = at(2026, 11, 23, 10, 0);
    assert_eq!(route(&r, "80002005", None, t).unwrap().dest, q("sales", 0));
    assert_eq!(route(&r, "8000200", None, t).unwrap().dest, q("sales", 0));
    assert!(route(&r, "800020", None, t).is_none());
    assert!(route(&r, "800010000", None, t).is_none(), "exact match only");
    assert!(route(&r, "", None, t).is_none());
}

const CLASSES: &str = r#"
[[schedule]]
name = "office"
hours = ["mon-fri 09:00-17:00"]

[[inbound]]
name = "main"
schedule = "office"
destination = "queue:support"
after_hours = "voicemail:support"
sticky_days = 30

[[inbound]]
name = "gold customers"
kind = "vip"
ani = ["13911112222", "13911113333"]
destination = "agent:1001:support:9"

[[inbound]]
name = "repair vips"
kind = "vip"
ani_prefix = ["0755"]
dnis = ["80001000"]
destination = "queue:support:5"

[[inbound]]
name = "nuisance"
kind = "blacklist"
ani = ["13911112222", "13800000000"]
ani_prefix = ["0900"]
destination = "busy"

[[inbound]]
name = "polite no"
kind = "blacklist"
ani = ["13700000000"]
destination = "message:blocked.wav"

[[inbound]]
name = "hospital line"
kind = "emergency"
dnis = ["80001119"]
destination = "queue:repair:9"

[[inbound]]
name = "hospital caller"
kind = "emergency"
ani = ["13800000000"]
destination = "extension:200"
"#;

#[test]
fn blacklist_rejects_busy_or_message() {
    let r = router(CLASSES);
    let t = at(2026, 11, 23, 10, 0);
    let d = route(&r, "80001000", Some("09001234"), t).unwrap();
    assert_eq!((d.dest, d.kind), (Destination::Busy, RuleKind::Blacklist));
    let d = route(&r, "80001000", Some("13700000000"), t).unwrap();
    assert_eq!(d.dest, Destination::Message("blocked.wav".into()));
    assert_eq!(d.rule_name.as_deref(), Some("polite no"));
    // Blacklist beats VIP: 13911112222 is on both.
    let d = route(&r, "80001000", Some("13911112222"), t).unwrap();
    assert_eq!(d.kind, RuleKind::Blacklist);
    // No ANI never matches an ANI list.
    let d = route(&r, "80001000", None, t).unwrap();
    assert_eq!(d.kind, RuleKind::Normal);
}

#[test]
fn vip_skips_ivr_to_agent_or_priority() {
    let r = router(CLASSES);
    let t = at(2026, 11, 23, 10, 0);
    let d = route(&r, "80009999", Some("13911113333"), t).unwrap();
    assert_eq!(d.kind, RuleKind::Vip);
    assert_eq!(
        d.dest,
        Destination::Agent { agent: "1001".into(), queue: Some("support".into()), priority: 9 }
    );
    // DNIS and ANI prefix must both match.
    let d = route(&r, "80001000", Some("07551234567"), t).unwrap();
    assert_eq!((d.dest, d.kind), (q("support", 5), RuleKind::Vip));
    let d = route(&r, "80001001", Some("07551234567"), t).unwrap();
    assert_eq!(d.kind, RuleKind::Normal);
    // VIP rules without schedule apply at night too.
    let d = route(&r, "80009999", Some("13911113333"), at(2026, 11, 23, 3, 0)).unwrap();
    assert_eq!(d.time, TimeOfDay::Always);
}

#[test]
fn emergency_first_even_for_blacklisted_callers() {
    let r = router(CLASSES);
    let t = at(2026, 11, 29, 3, 0); // Sunday night
    let d = route(&r, "80001119", Some("09001234"), t).unwrap();
    assert_eq!((d.dest, d.kind), (q("repair", 9), RuleKind::Emergency));
    // Blacklisted number that is also an emergency caller gets through.
    let d = route(&r, "80001000", Some("13800000000"), t).unwrap();
    assert_eq!(d.dest, Destination::Extension("200".into()));
    assert!(d.reason().starts_with("emergency rule \"hospital caller\""), "{}", d.reason());
}

#[test]
fn sticky_routes_to_last_agent_in_hours_only() {
    let r = router(CLASSES);
    let asked = RefCell::new(Vec::new());
    let lookup = |ani: &str, queue: &str, max_age_s: u64| {
        asked.borrow_mut().push((ani.to_string(), queue.to_string(), max_age_s));
        (ani == "13612345678").then(|| "1004".to_string())
    };
    let call = InboundCall { dnis: "80001000", ani: Some("13612345678") };
    let d = r.route(&call, at(2026, 11, 23, 10, 0), &lookup).unwrap();
    assert!(d.sticky);
    assert_eq!(
        d.dest,
        Destination::Agent { agent: "1004".into(), queue: Some("support".into()), priority: 0 }
    );
    assert_eq!(asked.borrow()[0], ("13612345678".into(), "support".into(), 30 * 86_400));
    // Unknown caller: the queue.
    let other = InboundCall { dnis: "80001000", ani: Some("13600000000") };
    let d = r.route(&other, at(2026, 11, 23, 10, 0), &lookup).unwrap();
    assert_eq!((d.dest, d.sticky), (q("support", 0), false));
    // After hours: no lookup at all, voicemail.
    let n = asked.borrow().len();
    let d = r.route(&call, at(2026, 11, 23, 20, 0), &lookup).unwrap();
    assert_eq!(d.dest, Destination::Voicemail("support".into()));
    assert_eq!(asked.borrow().len(), n);
    // Anonymous caller: no lookup.
    let anon = InboundCall { dnis: "80001000", ani: None };
    let d = r.route(&anon, at(2026, 11, 23, 10, 0), &lookup).unwrap();
    assert_eq!(d.dest, q("support", 0));
    assert_eq!(asked.borrow().len(), n);
}

#[test]
fn unknown_schedule_is_an_error() {
    let cfg: Config = toml::from_str(
        "[[inbound]]\nschedule = \"x\"\ndestination = \"busy\"\nafter_hours = \"busy\"\n",
    )
    .unwrap();
    assert_eq!(
        Router::new(&cfg).unwrap_err(),
        RouterError::UnknownSchedule { rule: 0, schedule: "x".into() }
    );
}

#[test]
fn hours_spec_parse_and_display() {
    let h: HoursSpec = "mon-fri 08:30-12:00,13:00-24:00".parse().unwrap();
    assert_eq!(h.days, 0b0001_1111);
    assert_eq!(h.ranges, vec![(510, 720), (780, 1440)]);
    assert_eq!(h.to_string(), "mon,tue,wed,thu,fri 08:30-12:00,13:00-24:00");
    let h: HoursSpec = "fri-mon 22:00-02:00".parse().unwrap();
    assert_eq!(h.days, 0b111_0001);
    assert_eq!(h.ranges, vec![(1320, 1560)]);
    assert_eq!(h.to_string().parse::<HoursSpec>().unwrap(), h);
    let h: HoursSpec = "daily 00:00-24:00".parse().unwrap();
    assert_eq!(h.days, 0x7f);
    for bad in [
        "mon",
        "mon-fry 08:00-09:00",
        "mon 8-9",
        "mon 09:00-09:00",
        "mon 24:00-01:00",
        "mon 08:60-09:00",
        "mon 08:00-09:00 x",
    ] {
        assert!(bad.parse::<HoursSpec>().is_err(), "{bad}");
    }
}

#[test]
fn destination_parse_and_display_round_trip() {
    for s in [
        "ivr:main",
        "queue:sales",
        "queue:sales:9",
        "extension:201",
        "agent:1001",
        "agent:1001:sales",
        "agent:1001:sales:3",
        "voicemail:200",
        "fax:300",
        "callback:sales",
        "busy",
        "message:closed.wav",
        "hangup",
    ] {
        let d: Destination = s.parse().unwrap();
        assert_eq!(d.to_string(), s);
    }
    for bad in [
        "",
        "queue",
        "queue:",
        "queue:a:10",
        "queue:a:x",
        "ivr:a:b",
        "busy:1",
        "ring:1",
        "agent::q",
    ] {
        assert!(bad.parse::<Destination>().is_err(), "{bad}");
    }
}
