//! Semantic checks of a merged configuration: names and numbers that must be unique, references
//! that must resolve, ports that must exist and be of the right kind, timers that must be in a
//! sensible range. Each problem comes back with the key path it concerns; [`super::load`] turns
//! that into a file position.

use super::load::{seg_string, Origins};
use super::model::{Config, Driver, PortKind, PortRef, SpanFraming, TrunkSignalling};
use std::collections::{HashMap, HashSet};

/// Tone plan names the DSP crate understands (`system.tone_plan`), for error messages; the
/// check itself asks [`cardpbx_dsp::toneplan::TonePlan::by_name`].
pub const TONE_PLANS: &[&str] = &["cn", "china", "itu", "e180", "eu", "de", "europe"];

/// Most ports (FXS + FXO + 30 per E1 span) one box is configured for.
pub const MAX_PORTS: u32 = 1000;

/// Longest extension, hunt group or route number.
pub const MAX_NUMBER_LEN: usize = 20;

/// One step of a key path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Seg {
    /// A table key.
    Key(String),
    /// An array index, from 0.
    Index(usize),
}

/// Where a problem is: file number (0 = the main file) and key path in that file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Loc {
    pub(super) file: usize,
    pub(super) path: Vec<Seg>,
}

impl Loc {
    /// A key of the main file, e.g. `["system", "tone_plan"]`.
    pub(super) fn top(keys: &[&str]) -> Loc {
        Loc { file: 0, path: keys.iter().map(|k| Seg::Key(k.to_string())).collect() }
    }

    /// Keys inside the `index`th `[[section]]` entry of the main file, e.g.
    /// `item("queue", 2, &["overflow"])` for `queue[2].overflow`.
    pub(super) fn item(section: &str, index: usize, keys: &[&str]) -> Loc {
        let mut path = vec![Seg::Key(section.to_string()), Seg::Index(index)];
        path.extend(keys.iter().map(|k| Seg::Key((*k).to_string())));
        Loc { file: 0, path }
    }

    /// A key inside the `index`th `[[section]]` entry of file `file`.
    fn entry(section: &str, (file, index): (usize, usize), key: &str) -> Loc {
        let mut path = vec![Seg::Key(section.to_string()), Seg::Index(index)];
        if !key.is_empty() {
            path.push(Seg::Key(key.to_string()));
        }
        Loc { file, path }
    }

    /// The same location, one array element deeper.
    fn at(mut self, index: usize) -> Loc {
        self.path.push(Seg::Index(index));
        self
    }

    /// The dotted key path, `extension[2].port`.
    pub(super) fn key_string(&self) -> String {
        seg_string(&self.path)
    }
}

type Problems = Vec<(Loc, String)>;

/// Run every check; an empty result means the configuration is usable.
pub(super) fn check(cfg: &Config, origins: &Origins) -> Problems {
    let mut p = Problems::new();
    check_system(cfg, &mut p);
    check_cards(cfg, origins, &mut p);
    check_spans(cfg, origins, &mut p);
    check_trunk_signalling(cfg, origins, &mut p);
    check_timers(cfg, &mut p);
    check_numbers(cfg, origins, &mut p);
    check_ports(cfg, origins, &mut p);
    check_references(cfg, origins, &mut p);
    check_routes(cfg, origins, &mut p);
    super::callcenter::check(cfg, &mut p);
    super::callcenter_routing::check(cfg, &mut p);
    super::fax::check(cfg, &mut p);
    super::recording::check(cfg, &mut p);
    super::callback::check(cfg, &mut p);
    super::voicemail::check(cfg, &mut p);
    super::conference::check(cfg, &mut p);
    p
}

fn range(p: &mut Problems, loc: Loc, value: u64, lo: u64, hi: u64, unit: &str) {
    if value < lo || value > hi {
        p.push((loc, format!("{value} {unit} is out of range (allowed {lo}..={hi} {unit})")));
    }
}

fn check_system(cfg: &Config, p: &mut Problems) {
    let s = &cfg.system;
    if s.name.trim().is_empty() {
        p.push((Loc::top(&["system", "name"]), "the name must not be empty".into()));
    }
    if cardpbx_dsp::toneplan::TonePlan::by_name(&s.tone_plan).is_none() {
        p.push((
            Loc::top(&["system", "tone_plan"]),
            format!("unknown tone plan {:?} (allowed: {})", s.tone_plan, TONE_PLANS.join(", ")),
        ));
    }
    if !(1..=99).contains(&s.rt_priority) {
        p.push((
            Loc::top(&["system", "rt_priority"]),
            format!("{} is not a SCHED_FIFO priority (allowed 1..=99)", s.rt_priority),
        ));
    }
    if s.control_socket.as_os_str().is_empty() {
        p.push((Loc::top(&["system", "control_socket"]), "the path must not be empty".into()));
    }
    if s.spool_dir.as_os_str().is_empty() {
        p.push((Loc::top(&["system", "spool_dir"]), "the path must not be empty".into()));
    }
}

fn check_cards(cfg: &Config, o: &Origins, p: &mut Problems) {
    let mut seen: HashMap<&str, usize> = HashMap::new();
    let mut total: u32 = 0;
    let mut reported_total = false;
    for (i, card) in cfg.cards.iter().enumerate() {
        let at = |key: &str| Loc::entry("card", o.cards[i], key);
        if card.name.is_empty()
            || !card.name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            p.push((
                at("name"),
                format!(
                    "card name {:?} must be letters, digits, '_' or '-' (it is used in port \
                     references like sim0/fxs1)",
                    card.name
                ),
            ));
        }
        if seen.insert(&card.name, i).is_some() {
            p.push((at("name"), format!("card {:?} is defined twice", card.name)));
        }
        match card.driver {
            Driver::Sim => {
                if card.fxs_ports == 0 && card.fxo_ports == 0 && card.e1_spans == 0 {
                    p.push((
                        at(""),
                        format!(
                            "sim card {:?} has no ports: set fxs_ports, fxo_ports or e1_spans",
                            card.name
                        ),
                    ));
                }
                if let Some(sim) = &card.sim {
                    let loc = Loc::entry("card", o.cards[i], "sim");
                    let mut l = loc.clone();
                    l.path.push(Seg::Key("co_answer_delay_ms".into()));
                    range(p, l, sim.co_answer_delay_ms.into(), 0, 120_000, "ms");
                }
            }
            Driver::Dahdi => p.push((
                at("driver"),
                "driver dahdi is not built into this binary (available: sim)".into(),
            )),
        }
        if card.sim.is_some() && card.driver != Driver::Sim {
            p.push((
                at("sim"),
                format!(
                    "[card.sim] applies only to driver = \"sim\", not {:?}",
                    card.driver.as_str()
                ),
            ));
        }
        let ports =
            u64::from(card.fxs_ports) + u64::from(card.fxo_ports) + 30 * u64::from(card.e1_spans);
        total = total.saturating_add(u32::try_from(ports).unwrap_or(u32::MAX));
        if total > MAX_PORTS && !reported_total {
            reported_total = true;
            p.push((
                at(""),
                format!(
                    "with this card the box has {total} ports (FXS + FXO + 30 per E1 span); \
                     at most {MAX_PORTS} are supported"
                ),
            ));
        }
    }
}

fn check_spans(cfg: &Config, o: &Origins, p: &mut Problems) {
    let mut seen: HashMap<(&str, u32), usize> = HashMap::new();
    for (i, s) in cfg.spans.iter().enumerate() {
        let at = |key: &str| Loc::entry("span", o.spans[i], key);
        match cfg.cards.iter().find(|c| c.name == s.card) {
            None => p.push((at("card"), no_such_card(cfg, &s.card))),
            Some(card) if s.span == 0 || s.span > card.e1_spans => p.push((
                at("span"),
                match card.e1_spans {
                    0 => format!("card {:?} has no E1 spans (e1_spans = 0)", card.name),
                    n => format!(
                        "card {:?} has no span {} (its spans are 1..={n})",
                        card.name, s.span
                    ),
                },
            )),
            Some(_) => {}
        }
        if seen.insert((&s.card, s.span), i).is_some() {
            p.push((at("span"), format!("span {}/span{} is configured twice", s.card, s.span)));
        }
    }
}

fn check_timers(cfg: &Config, p: &mut Problems) {
    let a = &cfg.analog;
    let an = |k: &str| Loc::top(&["analog", k]);
    range(p, an("flash_min_ms"), a.flash_min_ms.into(), 20, 1000, "ms");
    range(p, an("flash_max_ms"), a.flash_max_ms.into(), 50, 2000, "ms");
    if a.flash_min_ms >= a.flash_max_ms {
        p.push((
            an("flash_min_ms"),
            format!(
                "flash_min_ms ({}) must be less than flash_max_ms ({})",
                a.flash_min_ms, a.flash_max_ms
            ),
        ));
    }
    range(p, an("fxo_ring_min_ms"), a.fxo_ring_min_ms.into(), 20, 2000, "ms");
    range(p, an("fxo_ring_gap_timeout_ms"), a.fxo_ring_gap_timeout_ms.into(), 1000, 30_000, "ms");
    if a.fxo_ring_gap_timeout_ms <= a.fxo_ring_min_ms {
        p.push((
            an("fxo_ring_gap_timeout_ms"),
            format!(
                "fxo_ring_gap_timeout_ms ({}) must be greater than fxo_ring_min_ms ({})",
                a.fxo_ring_gap_timeout_ms, a.fxo_ring_min_ms
            ),
        ));
    }
    range(p, an("echo_tail_ms"), a.echo_tail_ms.into(), 1, 128, "ms");
    let d = &cfg.dialplan;
    let dp = |k: &str| Loc::top(&["dialplan", k]);
    range(p, dp("first_digit_timeout_ms"), d.first_digit_timeout_ms.into(), 1000, 120_000, "ms");
    range(p, dp("inter_digit_timeout_ms"), d.inter_digit_timeout_ms.into(), 500, 60_000, "ms");
    range(p, dp("answer_timeout_s"), d.answer_timeout_s.into(), 5, 600, "s");
}

/// Why `number` is not a dialable number, if it is not one.
fn bad_number(number: &str) -> Option<String> {
    if number.is_empty() {
        Some("the number must not be empty".into())
    } else if number.len() > MAX_NUMBER_LEN {
        Some(format!("{number:?} is longer than {MAX_NUMBER_LEN} digits"))
    } else if !number.chars().all(|c| c.is_ascii_digit() || c == '*' || c == '#') {
        Some(format!("{number:?} is not a number (allowed characters: 0-9 * #)"))
    } else {
        None
    }
}

fn check_numbers(cfg: &Config, o: &Origins, p: &mut Problems) {
    // Every dialable number: (number, what it is, location).
    let mut numbers: Vec<(&str, String, Loc)> = Vec::new();
    for (i, e) in cfg.extensions.iter().enumerate() {
        let loc = Loc::entry("extension", o.extensions[i], "number");
        numbers.push((&e.number, format!("the extension on {}", e.port), loc));
    }
    for (i, h) in cfg.hunt_groups.iter().enumerate() {
        let loc = Loc::entry("hunt_group", o.hunt_groups[i], "number");
        let what = match &h.name {
            Some(name) => format!("hunt group {name:?}"),
            None => "a hunt group".to_string(),
        };
        numbers.push((&h.number, what, loc));
        range(
            p,
            Loc::entry("hunt_group", o.hunt_groups[i], "ring_timeout_s"),
            h.ring_timeout_s.into(),
            5,
            600,
            "s",
        );
    }
    let mut seen: HashMap<&str, &String> = HashMap::new();
    for (number, what, loc) in &numbers {
        if let Some(why) = bad_number(number) {
            p.push((loc.clone(), why));
            continue;
        }
        if let Some(first) = seen.get(number) {
            p.push((loc.clone(), format!("number {number} is already used by {first}")));
        } else {
            seen.insert(number, what);
        }
        for route in &cfg.routes {
            if !route.prefix.is_empty()
                && (number.starts_with(route.prefix.as_str()) || route.prefix.starts_with(number))
            {
                p.push((
                    loc.clone(),
                    format!(
                        "number {number} overlaps route prefix {} (trunk group {:?}): dialling \
                         it would be ambiguous",
                        route.prefix, route.trunk_group
                    ),
                ));
            }
        }
    }
    for (i, t) in cfg.trunk_groups.iter().enumerate() {
        let at = |k: &str| Loc::entry("trunk_group", o.trunk_groups[i], k);
        if t.name.trim().is_empty() {
            p.push((at("name"), "the name must not be empty".into()));
        }
        if cfg.trunk_groups[..i].iter().any(|u| u.name == t.name) {
            p.push((at("name"), format!("trunk group {:?} is defined twice", t.name)));
        }
    }
}

fn no_such_card(cfg: &Config, card: &str) -> String {
    let names: Vec<&str> = cfg.cards.iter().map(|c| c.name.as_str()).collect();
    if names.is_empty() {
        format!("card {card:?} does not exist (no [[card]] is defined)")
    } else {
        format!("card {card:?} does not exist (cards: {})", names.join(", "))
    }
}

/// Why `port` cannot be used on this configuration's cards, if it cannot.
fn bad_port(cfg: &Config, port: &PortRef) -> Option<String> {
    let Some(card) = cfg.cards.iter().find(|c| c.name == port.card) else {
        return Some(no_such_card(cfg, &port.card));
    };
    let n = card.port_count(port.kind);
    if port.index > n {
        let what = match port.kind {
            PortKind::Fxs => "FXS ports",
            PortKind::Fxo => "FXO ports",
            PortKind::Span => "E1 spans",
        };
        return Some(if n == 0 {
            format!("card {:?} has no {what}", card.name)
        } else {
            format!(
                "{port} does not exist: card {:?} has {n} {what} ({}/{}1..{}/{}{n})",
                card.name, card.name, port.kind, card.name, port.kind
            )
        });
    }
    None
}

fn check_ports(cfg: &Config, o: &Origins, p: &mut Problems) {
    let mut users: HashMap<&PortRef, String> = HashMap::new();
    for (i, e) in cfg.extensions.iter().enumerate() {
        if e.pickup_group.as_deref().is_some_and(|g| g.trim().is_empty()) {
            let loc = Loc::entry("extension", o.extensions[i], "pickup_group");
            p.push((loc, "a pickup group needs a name".into()));
        }
        let loc = Loc::entry("extension", o.extensions[i], "port");
        if e.port.kind != PortKind::Fxs {
            p.push((
                loc,
                format!(
                    "an extension needs an FXS port (card/fxsN); {} is an {} port",
                    e.port,
                    match e.port.kind {
                        PortKind::Fxo => "FXO (exchange line)",
                        _ => "E1 span",
                    }
                ),
            ));
            continue;
        }
        if let Some(why) = bad_port(cfg, &e.port) {
            p.push((loc, why));
            continue;
        }
        let me = format!("extension {}", e.number);
        if let Some(first) = users.get(&e.port) {
            p.push((loc, format!("port {} is already used by {first}", e.port)));
        } else {
            users.insert(&e.port, me);
        }
    }
    for (i, t) in cfg.trunk_groups.iter().enumerate() {
        let base = Loc::entry("trunk_group", o.trunk_groups[i], "ports");
        if t.ports.is_empty() {
            p.push((base.clone(), "a trunk group needs at least one port".into()));
        }
        for (j, port) in t.ports.iter().enumerate() {
            let loc = base.clone().at(j);
            if port.kind == PortKind::Fxs {
                p.push((
                    loc,
                    format!(
                        "a trunk group needs FXO ports or E1 spans (card/fxoN, card/spanN); {port} \
                         is an FXS (phone) port"
                    ),
                ));
                continue;
            }
            let sig = t.signalling;
            if (port.kind == PortKind::Span) != sig.uses_spans() {
                let why = if sig.uses_spans() {
                    format!(
                        "signalling {} runs on E1 spans (card/spanN); {port} is an FXO port",
                        sig.as_str()
                    )
                } else {
                    format!(
                        "{port} is an E1 span: set signalling = \"pri_cpe\", \"pri_net\" or \
                         \"r2_china\" for this trunk group"
                    )
                };
                p.push((loc, why));
                continue;
            }
            if let Some(why) = bad_port(cfg, port) {
                p.push((loc, why));
                continue;
            }
            if let Some(first) = users.get(port) {
                p.push((loc, format!("port {port} is already used by {first}")));
            } else {
                users.insert(port, format!("trunk group {:?}", t.name));
            }
        }
    }
}

/// Settings that depend on a trunk group's signalling and on its spans' line settings.
fn check_trunk_signalling(cfg: &Config, o: &Origins, p: &mut Problems) {
    let span_user = |card: &str, span: u32| {
        cfg.trunk_groups.iter().find(|t| {
            t.ports.iter().any(|q| q.kind == PortKind::Span && q.card == card && q.index == span)
        })
    };
    for (i, t) in cfg.trunk_groups.iter().enumerate() {
        let at = |k: &str| Loc::entry("trunk_group", o.trunk_groups[i], k);
        if t.channels.is_some() && !t.signalling.uses_spans() {
            p.push((at("channels"), "channels applies to E1 span trunk groups only".into()));
        }
        if t.channels.as_ref().is_some_and(|c| c.0.is_empty()) {
            p.push((at("channels"), "no timeslot is listed".into()));
        }
        for port in t.ports.iter().filter(|q| q.kind == PortKind::Span) {
            let set = cfg.spans.iter().find(|s| s.card == port.card && s.span == port.index);
            let framing = set.map_or(SpanFraming::Ccs, |s| s.framing);
            let want = if t.signalling == TrunkSignalling::R2China {
                SpanFraming::Cas
            } else {
                SpanFraming::Ccs
            };
            if t.signalling.uses_spans() && framing != want {
                let (need, word) = match want {
                    SpanFraming::Cas => {
                        ("cas", "MFC/R2 needs CAS framing (ABCD bits in timeslot 16)")
                    }
                    SpanFraming::Ccs => {
                        ("ccs", "ISDN PRI needs CCS framing (D-channel in timeslot 16)")
                    }
                };
                p.push((
                    at("signalling"),
                    format!("{port}: {word}; set framing = \"{need}\" in its [[span]] entry"),
                ));
            }
        }
    }
    for (i, s) in cfg.spans.iter().enumerate() {
        let at = |key: &str| Loc::entry("span", o.spans[i], key);
        let user = span_user(&s.card, s.span);
        let pri = user.is_some_and(|t| t.signalling.is_pri());
        if s.dchannel_capture.is_some() && !pri {
            p.push((
                at("dchannel_capture"),
                "only spans of a PRI trunk group (pri_cpe, pri_net) have a D-channel to capture"
                    .into(),
            ));
        }
        if s.sim_peer_socket.is_some() {
            let sim = cfg.cards.iter().any(|c| c.name == s.card && c.driver == Driver::Sim);
            if !sim {
                p.push((
                    at("sim_peer_socket"),
                    "only spans of simulator cards can have a peer socket".into(),
                ));
            } else if !pri {
                p.push((
                    at("sim_peer_socket"),
                    "the peer socket carries a D-channel: the span must be in a PRI trunk group"
                        .into(),
                ));
            }
        }
    }
}

fn check_references(cfg: &Config, o: &Origins, p: &mut Problems) {
    let extensions: HashSet<&str> = cfg.extensions.iter().map(|e| e.number.as_str()).collect();
    let hunts: HashSet<&str> = cfg.hunt_groups.iter().map(|h| h.number.as_str()).collect();
    for (i, h) in cfg.hunt_groups.iter().enumerate() {
        let base = Loc::entry("hunt_group", o.hunt_groups[i], "members");
        if h.members.is_empty() {
            p.push((base.clone(), "a hunt group needs at least one member".into()));
        }
        let mut seen = HashSet::new();
        for (j, m) in h.members.iter().enumerate() {
            if !extensions.contains(m.as_str()) {
                let why = if hunts.contains(m.as_str()) {
                    format!("member {m} is a hunt group; members must be extensions")
                } else {
                    format!("member {m} is not an extension")
                };
                p.push((base.clone().at(j), why));
            } else if !seen.insert(m) {
                p.push((base.clone().at(j), format!("member {m} is listed twice")));
            }
        }
    }
    for (i, t) in cfg.trunk_groups.iter().enumerate() {
        for (key, target) in [("incoming", &t.incoming), ("fax_destination", &t.fax_destination)] {
            let Some(target) = target else { continue };
            // `receive`: the daemon's fax service takes the call.
            let fax = target == crate::faxsvc::RECEIVE;
            let room = key == "incoming" && cfg.conferences.iter().any(|c| c.number == *target);
            if !fax
                && !room
                && !extensions.contains(target.as_str())
                && !hunts.contains(target.as_str())
            {
                p.push((
                    Loc::entry("trunk_group", o.trunk_groups[i], key),
                    format!(
                        "{target} is neither an extension nor a hunt group number (nor \"{}\")",
                        crate::faxsvc::RECEIVE
                    ),
                ));
            }
        }
        range(
            p,
            Loc::entry("trunk_group", o.trunk_groups[i], "fax_detect_s"),
            t.fax_detect_s.into(),
            0,
            120,
            "s",
        );
    }
}

fn check_routes(cfg: &Config, o: &Origins, p: &mut Problems) {
    let groups: Vec<&str> = cfg.trunk_groups.iter().map(|t| t.name.as_str()).collect();
    for (i, r) in cfg.routes.iter().enumerate() {
        let at = |k: &str| Loc::entry("route", o.routes[i], k);
        if let Some(why) = bad_number(&r.prefix) {
            p.push((at("prefix"), why));
        } else if let Some(earlier) =
            cfg.routes[..i].iter().find(|e| r.prefix.starts_with(e.prefix.as_str()))
        {
            p.push((
                at("prefix"),
                format!(
                    "prefix {} never matches: an earlier route with prefix {} takes these calls \
                     (the first matching prefix wins)",
                    r.prefix, earlier.prefix
                ),
            ));
        }
        if !groups.contains(&r.trunk_group.as_str()) {
            p.push((
                at("trunk_group"),
                if groups.is_empty() {
                    format!(
                        "trunk group {:?} does not exist (no [[trunk_group]] is defined)",
                        r.trunk_group
                    )
                } else {
                    format!(
                        "trunk group {:?} does not exist (trunk groups: {})",
                        r.trunk_group,
                        groups.join(", ")
                    )
                },
            ));
        }
        range(p, at("min_digits"), r.min_digits.into(), 0, 30, "digits");
        let most = r.prefix.len() as u64 + u64::from(r.min_digits);
        if u64::from(r.strip) > most {
            p.push((
                at("strip"),
                format!(
                    "strip = {} removes more digits than the route guarantees (prefix {} + \
                     min_digits {} = {most})",
                    r.strip,
                    r.prefix.len(),
                    r.min_digits
                ),
            ));
        }
    }
}
