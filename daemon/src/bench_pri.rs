//! `cardpbx bench pri`: PRI calls per second through the whole stack on the simulator.
//!
//! One E1 span of a simulated card faces the simulated exchange (network side of our own
//! LAPD/Q.931); the daemon's call control runs the user side with the real media engine on the
//! virtual clock. The exchange keeps `parallel` calls in flight to a hunt group of extensions
//! whose phones answer after 20 ms and hang up 10 ms later (the flash window is set to 20–50
//! ms, so the hang-up is recognised after 50 ms). A call counts as completed when it was
//! answered and then released. Everything a call needs
//! runs: SETUP … RELEASE COMPLETE with every LAPD acknowledgement on both sides, hunting,
//! ringing, answer detection, bridging the bearer to the phone, and the tones and audio of the
//! tick — so the figure is the whole stack's, measured in wall time, with the virtual clock
//! running as fast as the work allows.

use crate::config::Config;
use crate::runner::Stepped;
use crate::service::sim_config;
use cardpbx_sim::{ClockMode, SimCard};
use serde::Serialize;
use std::time::Instant;

/// What `bench pri` measured.
#[derive(Debug, Clone, Serialize)]
pub struct PriBenchReport {
    /// Calls asked for.
    pub calls: u32,
    /// Calls kept in flight at once.
    pub parallel: u32,
    /// Calls answered and released.
    pub completed: u64,
    /// Calls released without being answered.
    pub failed: u64,
    /// Wall time, seconds.
    pub wall_seconds: f64,
    /// Simulated time, seconds.
    pub simulated_seconds: f64,
    /// Completed calls per wall-clock second.
    pub calls_per_second: f64,
    /// Ticks (1 ms of simulated time) per completed call.
    pub ticks_per_call: f64,
}

impl PriBenchReport {
    /// A human-readable summary.
    pub fn render(&self) -> String {
        format!(
            "PRI through the whole stack (simulated span, {} calls in flight): {} completed, {} \
             failed in {:.2} s wall ({:.1} s simulated)\n  {:.0} call setups/s (setup, answer, \
             release), {:.1} ticks per call\n",
            self.parallel,
            self.completed,
            self.failed,
            self.wall_seconds,
            self.simulated_seconds,
            self.calls_per_second,
            self.ticks_per_call
        )
    }
}

/// The configuration the benchmark runs: `phones` extensions 3001.. in hunt group 6000, one
/// PRI span (user side) whose incoming calls ring the group.
fn config(phones: u32) -> String {
    let mut t = format!(
        "[system]\nname = \"bench-pri\"\n\n[[card]]\nname = \"sim0\"\ndriver = \"sim\"\n\
         fxs_ports = {phones}\nfxo_ports = 0\ne1_spans = 1\n  [card.sim]\n  clock = \"virtual\"\n\n\
         [[trunk_group]]\nname = \"isdn\"\nsignalling = \"pri_cpe\"\nports = [\"sim0/span1\"]\n\
         incoming = \"6000\"\n\n[analog]\nflash_min_ms = 20\nflash_max_ms = 50\n"
    );
    let members: Vec<String> = (1..=phones).map(|n| format!("\"{}\"", 3000 + n)).collect();
    t.push_str(&format!(
        "\n[[hunt_group]]\nnumber = \"6000\"\nmembers = [{}]\n",
        members.join(", ")
    ));
    for n in 1..=phones {
        t.push_str(&format!(
            "\n[[extension]]\nnumber = \"{}\"\nport = \"sim0/fxs{n}\"\n",
            3000 + n
        ));
    }
    t
}

/// Run `calls` calls, `parallel` (1..=30) at a time.
///
/// # Errors
/// The simulated card or the call control could not be built or run (a bug).
pub fn bench_pri(calls: u32, parallel: u32) -> anyhow::Result<PriBenchReport> {
    let parallel = parallel.clamp(1, 30);
    let cfg = Config::parse_str(&config(parallel), "bench-pri.toml")
        .map_err(|e| anyhow::anyhow!("bench configuration: {e}"))?;
    let mut sc = sim_config(&cfg, &cfg.cards[0], Some(ClockMode::Virtual));
    sc.phone.auto_answer_ms = Some(20);
    let card = SimCard::new(sc)?;
    let mut p = Stepped::new(card, &cfg, "sim0")?;
    // Bring the data link up and let the restart on link up finish.
    if !p.run_until(10_000, |s| s.card().pri_link_up(1))? {
        anyhow::bail!("the simulated span's data link did not come up");
    }
    p.run_ms(1_000)?;
    let counters = |p: &Stepped<SimCard>| p.card().exchange_counters(1).unwrap_or_default();
    let (start_ticks, begin) = (p.now(), Instant::now());
    let base = counters(&p);
    let mut placed = 0u32;
    let mut off_since = vec![None; parallel as usize + 1];
    loop {
        // Each phone hangs up 10 ms after it answered.
        let now = p.now();

        for (n, since) in off_since.iter_mut().enumerate().skip(1) {
            let off = p
                .card()
                .phone(n as u32)
                .is_some_and(|ph| ph.state() == cardpbx_sim::PhoneState::OffHook);
            match (*since, off) {
                (None, true) => *since = Some(now),
                (Some(t), true) if now >= t + 10 => {
                    if let Some(ph) = p.card_mut().phone_mut(n as u32) {
                        ph.on_hook();
                    }
                    *since = None;
                }
                (_, false) => *since = None,
                _ => {}
            }
        }
        let c = counters(&p);
        let released = c.released - base.released;
        if released >= u64::from(calls) {
            break;
        }
        let in_flight = u64::from(placed) - released;
        if placed < calls && in_flight < u64::from(parallel) {
            // Refused only when the exchange has no channel left; try again next tick.
            if p.card_mut().pri_call_in(1, Some("5551234"), "6000").is_ok() {
                placed += 1;
            }
        }
        p.step()?;
        if p.now() - start_ticks > 3_600_000 {
            let stuck: Vec<_> =
                p.card().pri_calls(1).into_iter().filter(|c| c.cause.is_none()).collect();
            anyhow::bail!(
                "calls did not complete within an hour of simulated time (placed {placed}, \
                 released {released}); the exchange still has {stuck:?}; call control has {:?}",
                p.pbx().calls()
            );
        }
    }
    let wall = begin.elapsed().as_secs_f64();
    let c = counters(&p);
    let completed = c.answered_by_pbx - base.answered_by_pbx;
    let ticks = p.now() - start_ticks;
    Ok(PriBenchReport {
        calls,
        parallel,
        completed,
        failed: (c.released - base.released).saturating_sub(completed),
        wall_seconds: wall,
        simulated_seconds: ticks as f64 / 1000.0,
        calls_per_second: completed as f64 / wall.max(1e-9),
        ticks_per_call: ticks as f64 / completed.max(1) as f64,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_few_calls_complete_and_none_fail() {
        let r = bench_pri(12, 4).unwrap();
        assert_eq!((r.completed, r.failed), (12, 0), "{r:?}");
        assert!(r.simulated_seconds > 0.0 && r.ticks_per_call > 0.0);
        assert!(r.render().contains("12 completed, 0 failed"));
        // One phone answering call after call (a phone answered by auto-answer once showed
        // as idle while off-hook, and the next call stuck).
        let r = bench_pri(100, 1).unwrap();
        assert_eq!((r.completed, r.failed), (100, 0), "{r:?}");
    }
}
