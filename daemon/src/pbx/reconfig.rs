//! Applying a changed configuration to running call control without dropping calls
//! ([`Pbx::reconfigure`]), as `cardpbx trunk add|set|remove` and the `reload` control request
//! do.
//!
//! Trunk group indices stay stable while the daemon runs (calls, lines and PRI spans refer to
//! groups by index): an unchanged group keeps its entry untouched; a changed or removed FXO
//! group's entry is *retired* (no line is hunted in it any more, no route leads to it) and a
//! changed group gets a fresh entry. Idle lines move to their new group at once; a line in a
//! call keeps the old entry, with the old settings, until the call is over (it is *draining*),
//! and moves then ([`Pbx::settle_draining`]). A retired entry nobody refers to any more is
//! reused by the next new group, so reloads do not grow the table.
//!
//! Routes, hunt groups and the dialplan timers are rebuilt. Extensions, `[analog]`, `[system]`,
//! cards and span line settings are only compared: changes there are reported as needing a
//! restart. Span trunk groups (PRI, R2) that were added, changed or removed are stopped and
//! started again with their new settings once none of their channels has a call: at once when
//! they are idle, otherwise when their last call ends (the other spans and groups are not
//! touched, so their calls go on).

use super::{HuntGroup, LineKind, Pbx, PbxError, Route, TrunkGroup};
use crate::config::model::{Config, PortKind, TrunkGroupConfig};
use cardpbx_hal::{ChannelId, SigKind};
use cardpbx_signalling::loopstart::{FxoConfig, FxoLine, FxoState};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// What [`Pbx::reconfigure`] changed, and what it could not change.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReconfigReport {
    /// FXO trunk groups that were added and are in service.
    pub added: Vec<String>,
    /// FXO trunk groups whose settings changed (idle lines use them now).
    pub changed: Vec<String>,
    /// FXO trunk groups that were removed.
    pub removed: Vec<String>,
    /// Trunk groups left exactly as they were.
    pub unchanged: Vec<String>,
    /// Lines (`sim0/fxo1`) that finish their current call with the old settings before the
    /// change applies to them.
    pub draining: Vec<String>,
    /// Span trunk groups (PRI, R2) that were added, changed or removed and are in service
    /// with their new settings (stopped, for removed ones).
    pub span_groups_applied: Vec<String>,
    /// Span trunk groups whose change waits for the calls on their channels to end.
    pub span_groups_pending: Vec<String>,
    /// Other parts of the configuration that changed but take effect only after a restart.
    pub restart_needed: Vec<String>,
    /// Routes in service after the reload.
    pub routes: usize,
    /// Hunt groups in service after the reload.
    pub hunt_groups: usize,
}

/// A line that changes group once its call is over.
struct Pending {
    chan: ChannelId,
    /// The group entry it moves to (`None`: no group any more), with the configured port name
    /// and the order of the group's lines.
    to: Option<(usize, String, Vec<ChannelId>)>,
}

/// Run-time reconfiguration state of a [`Pbx`].
pub(super) struct Reconf {
    /// The card this call control drives, by configuration name.
    card_name: String,
    /// The configuration as it is in effect: trunk groups, routes, hunt groups and dialplan
    /// from the last reload, everything else from the start.
    running: Config,
    /// Trunk group entries that are retired (removed or replaced).
    retired: BTreeSet<usize>,
    /// Draining lines.
    pending: Vec<Pending>,
    /// Span groups (by name) whose change waits for their calls to end, and the configuration
    /// to apply then.
    span_pending: Vec<String>,
    span_target: Option<Box<Config>>,
}

impl Reconf {
    /// The state for call control just built from `cfg` for card `card_name`.
    pub(super) fn new(cfg: &Config, card_name: &str) -> Reconf {
        Reconf {
            card_name: card_name.to_string(),
            running: cfg.clone(),
            retired: BTreeSet::new(),
            pending: Vec::new(),
            span_pending: Vec::new(),
            span_target: None,
        }
    }
}

/// The FXO line settings of a configuration (as [`Pbx::new`] builds them).
fn fxo_config(cfg: &Config) -> FxoConfig {
    let a = &cfg.analog;
    FxoConfig {
        ring_min_ms: a.fxo_ring_min_ms,
        ring_gap_timeout_ms: a.fxo_ring_gap_timeout_ms,
        answer_on_polarity: a.fxo_answer_on_polarity,
        hangup_on_polarity: a.fxo_hangup_on_polarity,
        ..FxoConfig::default()
    }
}

/// A trunk group entry for FXO group `g` with lines `lines`.
fn fxo_group(g: &TrunkGroupConfig, lines: Vec<ChannelId>) -> TrunkGroup {
    TrunkGroup {
        name: g.name.clone(),
        lines,
        hunt: g.hunt,
        incoming: g.incoming.clone(),
        fax_destination: g.fax_destination.clone(),
        fax_detect_ms: u64::from(g.fax_detect_s) * 1000,
        next: 0,
        pri: false,
        restricted: g.presentation == crate::config::model::Presentation::Restricted,
    }
}

impl Pbx {
    /// Apply `cfg` (already validated by the loader) to the running call control, keeping
    /// every call in progress. See the module documentation for what changes at once, what
    /// waits for calls to end, and what needs a restart.
    ///
    /// # Errors
    /// A port of a new or changed FXO trunk group is not on the card; nothing is changed then.
    pub fn reconfigure(&mut self, cfg: &Config) -> Result<ReconfigReport, PbxError> {
        let mut report = ReconfigReport::default();
        let card_name = self.reconf.card_name.clone();
        let old = self.reconf.running.clone();

        // 1. Resolve the FXO ports of every FXO group of the new configuration, before
        // anything is touched.
        let mut wanted: Vec<(usize, Vec<(ChannelId, String)>)> = Vec::new();
        for (ci, g) in cfg.trunk_groups.iter().enumerate() {
            if g.signalling.uses_spans() {
                continue;
            }
            let mut chans = Vec::new();
            for p in g.ports.iter().filter(|p| p.card == card_name && p.kind == PortKind::Fxo) {
                let name = format!("fxo{}", p.index);
                let chan = self
                    .card
                    .channels
                    .iter()
                    .find(|c| c.sig == SigKind::FxoLoopStart && c.name == name)
                    .map(|c| c.id)
                    .ok_or_else(|| PbxError::Port {
                        port: p.to_string(),
                        problem: format!("trunk group {}: no such FXO port on the card", g.name),
                    })?;
                if matches!(self.lines[chan.index()].kind, LineKind::Fxs { .. }) {
                    return Err(PbxError::Port {
                        port: p.to_string(),
                        problem: format!("trunk group {}: the port is an extension", g.name),
                    });
                }
                chans.push((chan, p.to_string()));
            }
            wanted.push((ci, chans));
        }

        // 2. Span groups: restarted with their new settings now if idle, else when idle.
        self.reconf.span_pending.clear();
        for name in self.reconfigure_span_groups(cfg) {
            if self.span_group_idle(&name) {
                self.apply_span_group(&name, cfg);
                report.span_groups_applied.push(name);
            } else {
                report.span_groups_pending.push(name.clone());
                self.reconf.span_pending.push(name);
            }
        }
        self.reconf.span_target =
            (!self.reconf.span_pending.is_empty()).then(|| Box::new(cfg.clone()));

        // 3. FXO group entries: keep the unchanged, retire the changed and removed, add new.
        let old_fxo = |name: &str| {
            old.trunk_groups.iter().find(|t| t.name == name && !t.signalling.uses_spans())
        };
        let mut entry_of: Vec<(usize, usize)> = Vec::new(); // (config index, entry index)
        let mut new_entries: Vec<(usize, usize)> = Vec::new();
        for (ci, _) in &wanted {
            let g = &cfg.trunk_groups[*ci];
            let live = self.live_group(&g.name);
            match (old_fxo(&g.name), live) {
                (Some(o), Some(e)) if o == g => {
                    report.unchanged.push(g.name.clone());
                    entry_of.push((*ci, e));
                }
                (before, live) => {
                    if let Some(e) = live {
                        self.retire(e);
                    }
                    let e = self.new_entry(fxo_group(g, Vec::new()));
                    if before.is_some() {
                        report.changed.push(g.name.clone());
                    } else {
                        report.added.push(g.name.clone());
                    }
                    entry_of.push((*ci, e));
                    new_entries.push((*ci, e));
                }
            }
        }
        for o in old.trunk_groups.iter().filter(|t| !t.signalling.uses_spans()) {
            let still =
                cfg.trunk_groups.iter().any(|t| t.name == o.name && !t.signalling.uses_spans());
            if !still {
                if let Some(e) = self.live_group(&o.name) {
                    self.retire(e);
                }
                report.removed.push(o.name.clone());
            }
        }
        for t in cfg.trunk_groups.iter().filter(|t| t.signalling.uses_spans()) {
            let moved = report.span_groups_pending.contains(&t.name)
                || report.span_groups_applied.contains(&t.name);
            if !moved {
                report.unchanged.push(t.name.clone());
            }
        }

        // 4. Lines: where each FXO channel belongs now.
        let mut target: Vec<Option<(usize, String, Vec<ChannelId>)>> = vec![None; self.lines.len()];
        for (ci, chans) in &wanted {
            let e = entry_of.iter().find(|(c, _)| c == ci).map(|(_, e)| *e).expect("entry made");
            let order: Vec<ChannelId> = chans.iter().map(|(c, _)| *c).collect();
            for (chan, port) in chans {
                target[chan.index()] = Some((e, port.clone(), order.clone()));
            }
        }
        self.reconf.pending.clear();
        for (i, target) in target.iter_mut().enumerate() {
            let chan = ChannelId(i as u32);
            let is_fxo_port =
                self.card.channels.get(i).is_some_and(|c| c.sig == SigKind::FxoLoopStart);
            let current = match self.lines[i].kind {
                LineKind::Fxo { group, .. } => Some(group),
                LineKind::None if is_fxo_port => None,
                _ => continue,
            };
            let to = target.take();
            let same = match (&to, current) {
                (Some((e, _, _)), Some(g)) => *e == g,
                (None, None) => true,
                _ => false,
            };
            if same {
                continue;
            }
            if self.line_idle(chan) {
                self.assign(chan, to);
            } else {
                report.draining.push(self.lines[i].port.clone());
                self.reconf.pending.push(Pending { chan, to });
            }
        }

        // 5. Routes, hunt groups, dialplan timers.
        self.routes = Vec::new();
        for r in &cfg.routes {
            match self.live_group(&r.trunk_group) {
                Some(group) => self.routes.push(Route {
                    prefix: r.prefix.clone(),
                    group,
                    strip: r.strip as usize,
                    min_digits: r.min_digits as usize,
                }),
                None => report.restart_needed.push(format!(
                    "route {} (its trunk group {} is not in service until the span group is \
                     started)",
                    r.prefix, r.trunk_group
                )),
            }
        }
        report.routes = self.routes.len();
        self.rebuild_hunt_groups(cfg);
        report.hunt_groups = self.hunt_groups.len();
        self.first_digit_ms = u64::from(cfg.dialplan.first_digit_timeout_ms);
        self.inter_digit_ms = u64::from(cfg.dialplan.inter_digit_timeout_ms);
        self.answer_timeout_ms = u64::from(cfg.dialplan.answer_timeout_s) * 1000;

        // 6. What needs a restart.
        let mut restart = |what: &str, differs: bool| {
            if differs {
                report.restart_needed.push(what.to_string());
            }
        };
        restart("[system]", cfg.system != old.system);
        restart("[[card]]", cfg.cards != old.cards);
        restart("[analog]", cfg.analog != old.analog);
        restart("[[extension]]", cfg.extensions != old.extensions);
        restart("[[span]] line settings", cfg.spans != old.spans);
        // The call center (its prompts are in the media engine's library) starts with the
        // daemon.
        restart("[[queue]]", cfg.queues != old.queues);
        restart("[[agent]]", cfg.agents != old.agents);
        restart("[[inbound]]", cfg.inbound != old.inbound);
        restart("[[schedule]]", cfg.schedules != old.schedules);
        restart("[[holiday]]", cfg.holidays != old.holidays);
        restart("[[ivr]]", cfg.ivr != old.ivr);
        restart("[callback]", cfg.callback != old.callback);
        restart("[fax]", cfg.fax != old.fax);
        restart("[recording]", cfg.recording != old.recording);
        restart("[voicemail]", cfg.voicemail != old.voicemail);
        restart("[[mailbox]]", cfg.mailboxes != old.mailboxes);
        restart("[[conference]]", cfg.conferences != old.conferences);

        let mut running = old;
        running.trunk_groups = cfg.trunk_groups.clone();
        running.routes = cfg.routes.clone();
        running.hunt_groups = cfg.hunt_groups.clone();
        running.dialplan = cfg.dialplan.clone();
        self.reconf.running = running;
        self.release_unused_retired();
        tracing::info!(?report, "configuration reloaded");
        Ok(report)
    }

    /// Span trunk groups (PRI, R2) whose configuration differs between the running
    /// configuration and `new`: added, changed (signalling, switch type, spans, channels, hunt,
    /// presentation, incoming...) or removed, by name.
    fn reconfigure_span_groups(&mut self, new: &crate::config::Config) -> Vec<String> {
        let old = &self.reconf.running.trunk_groups;
        let spans = |list: &[TrunkGroupConfig]| -> Vec<TrunkGroupConfig> {
            list.iter().filter(|t| t.signalling.uses_spans()).cloned().collect()
        };
        let (before, after) = (spans(old), spans(&new.trunk_groups));
        let mut names = Vec::new();
        for t in &after {
            if before.iter().find(|o| o.name == t.name) != Some(t) {
                names.push(t.name.clone());
            }
        }
        for o in &before {
            if !after.iter().any(|t| t.name == o.name) {
                names.push(o.name.clone());
            }
        }
        // An FXO group that became a span group (or back) is also a span change.
        for t in &after {
            let was_fxo = old.iter().any(|o| o.name == t.name && !o.signalling.uses_spans());
            if was_fxo && !names.contains(&t.name) {
                names.push(t.name.clone());
            }
        }
        names
    }

    /// Whether no channel of the span group `name` (as running) has a call, Q.931 or R2
    /// signalling in progress.
    fn span_group_idle(&self, name: &str) -> bool {
        let Some(e) = self.live_group(name) else { return true };
        self.trunk_groups[e].lines.iter().all(|c| {
            let l = &self.lines[c.index()];
            l.call.is_none()
                && l.q931.is_none()
                && match l.kind {
                    LineKind::R2 { r2 } => !self.r2[r2].ch.state().in_call(),
                    _ => true,
                }
        })
    }

    /// Stop span group `name` as it runs (its D-channels released, its timeslots out of
    /// service) and start it as `cfg` has it, if it has it. Only for idle groups.
    fn apply_span_group(&mut self, name: &str, cfg: &Config) {
        let now = self.now;
        if let Some(e) = self.live_group(name) {
            let chans = self.trunk_groups[e].lines.clone();
            let mut stopped_pri = BTreeSet::new();
            for c in chans {
                match self.lines[c.index()].kind {
                    LineKind::Bchan { pri, .. } => {
                        stopped_pri.insert(pri);
                    }
                    LineKind::R2 { r2 } => self.r2[r2].span = cardpbx_hal::SpanId(0),
                    _ => {}
                }
                self.lines[c.index()].kind = LineKind::None;
                self.lines[c.index()].port = self.card.channels[c.index()].name.clone();
            }
            for p in stopped_pri {
                self.pri_retire(p, now);
            }
            self.retire(e);
            tracing::info!(group = name, "span trunk group stopped");
        }
        let card_name = self.reconf.card_name.clone();
        let Some(g) = cfg.trunk_groups.iter().find(|t| t.name == name && t.signalling.uses_spans())
        else {
            return;
        };
        let e = self.new_entry(TrunkGroup {
            lines: Vec::new(),
            pri: g.signalling.is_pri(),
            ..fxo_group(g, Vec::new())
        });
        let mut chans = Vec::new();
        for p in g.ports.iter().filter(|p| p.card == card_name && p.kind == PortKind::Span) {
            let span = cardpbx_hal::SpanId(p.index);
            let set = cfg.spans.iter().find(|s| s.card == card_name && s.span == p.index);
            let hal = set.map_or_else(
                || crate::config::model::SpanSettings::defaults(&card_name, p.index).to_hal(),
                |s| s.to_hal(),
            );
            if let Some(st) = self.spans.get_mut(&span) {
                if let Some(s) = set {
                    st.framing = crate::json_name(&s.framing);
                    st.line_code = crate::json_name(&s.line_code);
                    st.crc4 = s.crc4;
                }
            }
            self.cmd(crate::engine::api::EngineCommand::Hal(
                cardpbx_hal::HalCommand::ConfigureSpan(span, hal),
            ));
            let result = if g.signalling.is_pri() {
                self.pri_start_span(p, g, e).map(|mut c| chans.append(&mut c))
            } else {
                self.r2_start_span(p, g, &mut chans)
            };
            if let Err(err) = result {
                tracing::warn!(group = name, %err, "span trunk group not started");
            }
        }
        self.trunk_groups[e].lines = chans;
        tracing::info!(group = name, "span trunk group started");
    }

    /// Lines that waited for their call to end: move those whose call is over.
    pub(super) fn settle_draining(&mut self) {
        if !self.reconf.span_pending.is_empty() {
            self.settle_span_groups();
        }
        if self.reconf.pending.is_empty() {
            return;
        }
        let mut i = 0;
        while i < self.reconf.pending.len() {
            let chan = self.reconf.pending[i].chan;
            if self.line_idle(chan) {
                let p = self.reconf.pending.swap_remove(i);
                tracing::debug!(port = %self.lines[chan.index()].port, "draining line moves");
                self.assign(p.chan, p.to);
            } else {
                i += 1;
            }
        }
        if self.reconf.pending.is_empty() {
            self.release_unused_retired();
        }
    }

    /// Span groups waiting for their last call: apply those that are idle now, then point the
    /// routes at the new entries.
    fn settle_span_groups(&mut self) {
        let Some(cfg) = self.reconf.span_target.take() else { return };
        let names = std::mem::take(&mut self.reconf.span_pending);
        let mut applied = false;
        for name in names {
            if self.span_group_idle(&name) {
                self.apply_span_group(&name, &cfg);
                applied = true;
            } else {
                self.reconf.span_pending.push(name);
            }
        }
        if applied {
            self.routes = cfg
                .routes
                .iter()
                .filter_map(|r| {
                    Some(Route {
                        prefix: r.prefix.clone(),
                        group: self.live_group(&r.trunk_group)?,
                        strip: r.strip as usize,
                        min_digits: r.min_digits as usize,
                    })
                })
                .collect();
        }
        if !self.reconf.span_pending.is_empty() {
            self.reconf.span_target = Some(cfg);
        }
    }

    /// Ports that are draining (finishing a call before a reload applies to them).
    pub fn draining_ports(&self) -> Vec<String> {
        self.reconf.pending.iter().map(|p| self.lines[p.chan.index()].port.clone()).collect()
    }

    /// The entry of the trunk group in service with this name.
    fn live_group(&self, name: &str) -> Option<usize> {
        self.trunk_groups
            .iter()
            .enumerate()
            .find(|(i, g)| g.name == name && !self.reconf.retired.contains(i))
            .map(|(i, _)| i)
    }

    /// Take entry `e` out of service: no hunting, no routes (routes are rebuilt afterwards).
    fn retire(&mut self, e: usize) {
        self.reconf.retired.insert(e);
        self.trunk_groups[e].lines.clear();
    }

    /// Put `g` in a free retired slot nothing refers to, or at the end.
    fn new_entry(&mut self, g: TrunkGroup) -> usize {
        let free = self.reconf.retired.iter().copied().find(|&e| !self.entry_referenced(e));
        match free {
            Some(e) => {
                self.reconf.retired.remove(&e);
                self.trunk_groups[e] = g;
                e
            }
            None => {
                self.trunk_groups.push(g);
                self.trunk_groups.len() - 1
            }
        }
    }

    /// Whether a line, a draining line's destination, a route or a PRI span uses entry `e`.
    fn entry_referenced(&self, e: usize) -> bool {
        self.lines.iter().any(|l| matches!(l.kind, LineKind::Fxo { group, .. } if group == e))
            || self.reconf.pending.iter().any(|p| p.to.as_ref().is_some_and(|t| t.0 == e))
            || self.routes.iter().any(|r| r.group == e)
            || self.pri.iter().any(|p| p.group == e && p.span.0 != 0)
    }

    /// Forget retired entries at the end of the table that nothing refers to any more.
    fn release_unused_retired(&mut self) {
        while let Some(&last) = self.reconf.retired.last() {
            if last + 1 != self.trunk_groups.len() || self.entry_referenced(last) {
                break;
            }
            self.reconf.retired.remove(&last);
            self.trunk_groups.pop();
        }
    }

    /// Whether an FXO port (or an unassigned one) has no call and is on-hook.
    fn line_idle(&self, chan: ChannelId) -> bool {
        let l = &self.lines[chan.index()];
        l.call.is_none()
            && match &l.kind {
                LineKind::Fxo { line, .. } => line.state() == FxoState::Idle,
                _ => true,
            }
    }

    /// Put idle line `chan` in group entry `to` (in the group's configured order), or take it
    /// out of every group.
    fn assign(&mut self, chan: ChannelId, to: Option<(usize, String, Vec<ChannelId>)>) {
        for (e, g) in self.trunk_groups.iter_mut().enumerate() {
            if !g.pri && to.as_ref().is_none_or(|t| t.0 != e) {
                g.lines.retain(|c| *c != chan);
            }
        }
        let i = chan.index();
        self.lines[i].cid_digits.clear();
        match to {
            None => {
                self.lines[i].kind = LineKind::None;
                self.lines[i].port = self.card.channels[i].name.clone();
                self.detect(chan, crate::engine::api::Detectors::NONE);
            }
            Some((e, port, order)) => {
                match &mut self.lines[i].kind {
                    LineKind::Fxo { group, .. } => *group = e,
                    kind => {
                        let line = FxoLine::new(chan, fxo_config(&self.reconf.running));
                        *kind = LineKind::Fxo { line, group: e };
                    }
                }
                self.lines[i].port = port;
                let lines = &mut self.trunk_groups[e].lines;
                if !lines.contains(&chan) {
                    lines.push(chan);
                    let pos =
                        |c: &ChannelId| order.iter().position(|o| o == c).unwrap_or(usize::MAX);
                    lines.sort_by_key(pos);
                }
                let d = self.idle_detectors(chan);
                self.detect(chan, d);
            }
        }
    }

    /// Rebuild the hunt groups; a hunt in progress follows its group by number (and stops
    /// hunting if the group is gone).
    fn rebuild_hunt_groups(&mut self, cfg: &Config) {
        let old_numbers: Vec<String> = self.hunt_groups.iter().map(|h| h.number.clone()).collect();
        let new: Vec<HuntGroup> = cfg
            .hunt_groups
            .iter()
            .map(|h| {
                let next = self
                    .hunt_groups
                    .iter()
                    .find(|o| o.number == h.number && o.members == h.members)
                    .map_or(0, |o| o.next);
                HuntGroup {
                    number: h.number.clone(),
                    members: h.members.clone(),
                    strategy: h.strategy,
                    ring_timeout_ms: u64::from(h.ring_timeout_s) * 1000,
                    next,
                }
            })
            .collect();
        for c in self.calls.values_mut() {
            let Some(h) = c.hunt.as_mut() else { continue };
            let number = old_numbers.get(h.group);
            match number.and_then(|n| new.iter().position(|g| &g.number == n)) {
                Some(g) => h.group = g,
                None => c.hunt = None,
            }
        }
        self.hunt_groups = new;
    }
}
