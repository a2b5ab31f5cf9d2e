//! Queueing math for staffing: Erlang B, Erlang C (M/M/N) and Erlang A (M/M/N+M).
//!
//! Pure functions, no I/O. Traffic is offered load in erlangs, `A = λ·AHT`.

/// Erlang B blocking probability for `agents` servers and `traffic_erlangs` offered load,
/// computed with the stable recursion `B(0)=1, B(n) = A·B(n−1) / (n + A·B(n−1))`.
pub fn erlang_b(agents: u32, traffic_erlangs: f64) -> f64 {
    let a = traffic_erlangs.max(0.0);
    let mut b = 1.0_f64;
    for n in 1..=agents {
        let ab = a * b;
        b = ab / (f64::from(n) + ab);
    }
    b
}

/// Erlang C probability that an arriving call has to wait, `P(W>0)`, for `agents` servers and
/// `traffic_erlangs` offered load. Returns 1.0 when `agents <= traffic` (the queue is unstable).
pub fn erlang_c(agents: u32, traffic_erlangs: f64) -> f64 {
    let a = traffic_erlangs.max(0.0);
    let n = f64::from(agents);
    if agents == 0 || n <= a {
        return 1.0;
    }
    let b = erlang_b(agents, a);
    let c = n * b / (n - a * (1.0 - b));
    c.clamp(0.0, 1.0)
}

/// Erlang C average speed of answer in seconds, `ASA = C·AHT/(N−A)`; infinite when unstable.
pub fn asa(agents: u32, traffic_erlangs: f64, aht_secs: f64) -> f64 {
    let n = f64::from(agents);
    let a = traffic_erlangs.max(0.0);
    if agents == 0 || n <= a {
        return f64::INFINITY;
    }
    erlang_c(agents, a) * aht_secs / (n - a)
}

/// Erlang C service level: fraction of calls answered within `t_secs`,
/// `SL(t) = 1 − C·exp(−(N−A)·t/AHT)`; 0 when unstable.
pub fn service_level(agents: u32, traffic_erlangs: f64, aht_secs: f64, t_secs: f64) -> f64 {
    let n = f64::from(agents);
    let a = traffic_erlangs.max(0.0);
    if agents == 0 || n <= a {
        return 0.0;
    }
    if aht_secs <= 0.0 {
        return 1.0;
    }
    let c = erlang_c(agents, a);
    (1.0 - c * (-(n - a) * t_secs.max(0.0) / aht_secs).exp()).clamp(0.0, 1.0)
}

/// Agent occupancy `A/N` (fraction of time agents are busy), capped at 1.
pub fn occupancy(agents: u32, traffic_erlangs: f64) -> f64 {
    if agents == 0 {
        return 1.0;
    }
    (traffic_erlangs.max(0.0) / f64::from(agents)).min(1.0)
}

/// Upper bound on the number of queued callers the Erlang A chain represents. With any finite
/// patience the queue's state probabilities fall off faster than geometrically once the
/// abandonment rate exceeds the arrival rate; the bound only matters for absurd inputs
/// (patience of years with an overloaded queue).
pub const MAX_QUEUE_STATES: usize = 1_000_000;

/// Relative size below which the tail of the queue-length distribution is dropped.
const TAIL_EPS: f64 = 1e-16;

/// Smallest `N` whose Erlang C service level `SL(t_secs)` reaches `target_sl` and whose
/// occupancy `A/N` is at most `max_occupancy` (if given). `None` when none does (only possible
/// for targets of 1 or more: the search stops `100·(√A + 1)` agents past the first candidate).
pub fn agents_needed(
    traffic_erlangs: f64,
    aht_secs: f64,
    t_secs: f64,
    target_sl: f64,
    max_occupancy: Option<f64>,
) -> Option<u32> {
    let a = traffic_erlangs.max(0.0);
    if a == 0.0 {
        return Some(0);
    }
    // The first stable N is floor(A) + 1; an occupancy cap m needs N ≥ A/m.
    let first = (a.floor() as u32).saturating_add(1).max(occupancy_floor(a, max_occupancy));
    (first..=first.saturating_add(search_cap(a))).find(|&n| {
        service_level(n, a, aht_secs, t_secs) >= target_sl
            && max_occupancy.is_none_or(|m| occupancy(n, a) <= m)
    })
}

/// How many agents past the first candidate the searches look: `A + 100·(√A + 1)`.
fn search_cap(a: f64) -> u32 {
    to_u32(a + 100.0 * (a.sqrt() + 1.0))
}

/// `floor(A/m)`: no fewer agents keep the occupancy `A/N` at most `m` (0 without a cap).
fn occupancy_floor(a: f64, max_occupancy: Option<f64>) -> u32 {
    max_occupancy.filter(|m| *m > 0.0).map_or(0, |m| to_u32((a / m).floor()))
}

fn to_u32(x: f64) -> u32 {
    if x >= f64::from(u32::MAX) {
        u32::MAX
    } else {
        x.max(0.0).ceil() as u32
    }
}

/// The Erlang A (M/M/N+M) figures for one number of agents.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ErlangA {
    /// Probability an arriving caller has to wait (finds all agents busy).
    pub p_wait: f64,
    /// Probability an arriving caller abandons before being answered.
    pub p_abandon: f64,
    /// Fraction of all arriving callers answered within the threshold (abandons count as
    /// missed), the same definition as the `queues` report's service level.
    pub service_level: f64,
    /// Average speed of answer: mean wait of the answered callers, s (infinite with no agents).
    pub asa_s: f64,
    /// Mean time in queue over all callers, answered or abandoned, s.
    pub avg_wait_s: f64,
    /// Occupancy: carried traffic `λ·(1−P(abandon))·AHT` over `N`.
    pub occupancy: f64,
}

/// Erlang A (M/M/N+M) for `agents` agents, `arrival_rate` calls/s, mean handling time
/// `aht_secs` and exponential patience with mean `patience_secs`; the service level is taken at
/// `t_secs`. An infinite (or non-finite) patience gives the Erlang C figures.
///
/// Computed exactly on the birth–death chain of the number of callers in the system (birth
/// rate λ, death rate `min(k,N)·μ + max(k−N,0)·γ`, γ = 1/patience), truncated when the tail
/// falls below 1e-16. A caller who arrives with `j` callers ahead is answered when `j+1`
/// advances (rate `N·μ + i·γ` with `i` ahead) happen before its own patience runs out, so
/// `P(answered) = Π r_i/(r_i+γ)`, `E[wait; answered] = P(answered)·Σ 1/(r_i+γ)`, and
/// `P(answered within t)` is the absorption probability of a pure-death chain, computed by
/// uniformization.
pub fn erlang_a(
    agents: u32,
    arrival_rate: f64,
    aht_secs: f64,
    patience_secs: f64,
    t_secs: f64,
) -> ErlangA {
    let lambda = arrival_rate.max(0.0);
    let t = t_secs.max(0.0);
    if lambda == 0.0 || aht_secs <= 0.0 {
        return ErlangA {
            p_wait: 0.0,
            p_abandon: 0.0,
            service_level: 1.0,
            asa_s: 0.0,
            avg_wait_s: 0.0,
            occupancy: 0.0,
        };
    }
    let a = lambda * aht_secs;
    if !patience_secs.is_finite() {
        return erlang_c_figures(agents, a, aht_secs, t);
    }
    let mu = 1.0 / aht_secs;
    let gamma = 1.0 / patience_secs.max(1e-9);
    let n = f64::from(agents);
    let nmu = n * mu;

    // Weights relative to π_N: below N the Erlang B mass 1/E − 1, in the queue w_j for j ≥ 0
    // callers waiting (w_0 = 1), kept as logarithms.
    let below = if agents == 0 {
        0.0
    } else {
        let e = erlang_b(agents, a);
        if e <= 0.0 {
            // So many agents that nobody ever waits.
            return ErlangA {
                p_wait: 0.0,
                p_abandon: 0.0,
                service_level: 1.0,
                asa_s: 0.0,
                avg_wait_s: 0.0,
                occupancy: occupancy(agents, a),
            };
        }
        1.0 / e - 1.0
    };
    let ln_lambda = lambda.ln();
    let mut ln_w: Vec<f64> = vec![0.0];
    let mut ln_sum = 0.0_f64; // log Σ w_j
    loop {
        let j = ln_w.len();
        let death = nmu + j as f64 * gamma;
        let next = ln_w[j - 1] + ln_lambda - death.ln();
        ln_w.push(next);
        ln_sum = log_add(ln_sum, next);
        let q = lambda / (death + gamma);
        if (q < 1.0 && next + (q / (1.0 - q)).ln() < ln_sum + TAIL_EPS.ln())
            || ln_w.len() >= MAX_QUEUE_STATES
        {
            break;
        }
    }
    // Normalise: total = below + Σ w (in units of π_N), all relative to the largest term.
    let m = ln_sum.max(if below > 0.0 { below.ln() } else { f64::NEG_INFINITY });
    let total_scaled = (ln_sum - m).exp() + if below > 0.0 { (below.ln() - m).exp() } else { 0.0 };
    let ln_norm = m + total_scaled.ln();
    let p: Vec<f64> = ln_w.iter().map(|l| (l - ln_norm).exp()).collect();
    let p_wait: f64 = p.iter().sum::<f64>().min(1.0);

    // Per arrival state j: the advance rates r_i = Nμ + iγ for i = j..0.
    let mut p_answered_q = 0.0; // Σ p_j·P(answered | j)
    let mut wait_answered = 0.0; // Σ p_j·E[W; answered | j]
    let mut q_j = 1.0; // Π_{i≤j} r_i/(r_i+γ)
    let mut s_j = 0.0; // Σ_{i≤j} 1/(r_i+γ)
    let mut wait_all = 0.0; // Σ p_j·E[min(S, τ) | j]
    for (j, pj) in p.iter().enumerate() {
        let r = nmu + j as f64 * gamma;
        q_j *= r / (r + gamma);
        s_j += 1.0 / (r + gamma);
        p_answered_q += pj * q_j;
        wait_answered += pj * q_j * s_j;
        // E[min(S,τ)] = (1 − P(S<τ))/γ for exponential τ.
        wait_all += pj * (1.0 - q_j) / gamma;
    }
    let p_answered = (1.0 - p_wait) + p_answered_q;
    let p_abandon = (1.0 - p_answered).clamp(0.0, 1.0);
    let asa_s = if p_answered > 0.0 { wait_answered / p_answered } else { f64::INFINITY };
    let in_sl = answered_within(&p, nmu, gamma, t);
    ErlangA {
        p_wait,
        p_abandon,
        service_level: ((1.0 - p_wait) + in_sl).clamp(0.0, 1.0),
        asa_s,
        avg_wait_s: wait_all,
        occupancy: if agents == 0 {
            1.0
        } else {
            (lambda * (1.0 - p_abandon) * aht_secs / n).min(1.0)
        },
    }
}

fn erlang_c_figures(agents: u32, a: f64, aht_secs: f64, t: f64) -> ErlangA {
    let stable = agents > 0 && f64::from(agents) > a;
    let asa_s = asa(agents, a, aht_secs);
    ErlangA {
        p_wait: erlang_c(agents, a),
        p_abandon: 0.0,
        service_level: service_level(agents, a, aht_secs, t),
        asa_s,
        avg_wait_s: asa_s,
        occupancy: if stable { occupancy(agents, a) } else { 1.0 },
    }
}

/// `ln(e^x + e^y)`.
fn log_add(x: f64, y: f64) -> f64 {
    let (hi, lo) = if x >= y { (x, y) } else { (y, x) };
    if lo == f64::NEG_INFINITY {
        return hi;
    }
    hi + (lo - hi).exp().ln_1p()
}

/// `Σ_j p_j · P(answered within t | j callers ahead)`: a caller with `i` ahead moves up at rate
/// `r_i = Nμ + iγ` (answered after moving up from `i = 0`) and abandons at rate γ. By
/// uniformization at rate Λ = max(r_i) + γ: the absorbed-into-answered mass after `k` jumps,
/// weighted by the Poisson(Λt) probability of `k` jumps.
fn answered_within(p: &[f64], nmu: f64, gamma: f64, t: f64) -> f64 {
    if p.is_empty() || t <= 0.0 || nmu <= 0.0 {
        return 0.0;
    }
    // Jumps enough to cover the Poisson(x) mass to ~1e-15.
    let horizon = |x: f64| (x + 12.0 * x.sqrt() + 40.0).ceil() as usize;
    // A caller with i ahead needs i+1 moves, each at a rate at most the largest one; callers
    // further back than the Poisson horizon of that rate are not answered within t (< 1e-15),
    // so only the states up to it are followed (the chain only moves down).
    let jmax = (p.len() - 1).min(horizon((nmu + p.len() as f64 * gamma) * t));
    let big = nmu + jmax as f64 * gamma + gamma;
    let lt = big * t;
    let mut v: Vec<f64> = p[..=jmax].to_vec();
    let mut answered = 0.0;
    let mut result = 0.0;
    // Poisson weights in logs (e^{−Λt} underflows for Λt > ~700).
    let ln_lt = lt.ln();
    let mut ln_pk = -lt;
    let mut cum = 0.0;
    let kmax = horizon(lt);
    let total: f64 = v.iter().sum();
    for k in 0..=kmax {
        let pk = ln_pk.exp();
        result += pk * answered;
        cum += pk;
        if 1.0 - cum < 1e-15 || answered >= total * (1.0 - 1e-15) {
            // The remaining Poisson mass sees at least `answered` (non-decreasing).
            result += (1.0 - cum).max(0.0) * answered;
            break;
        }
        // One uniformized jump.
        answered += v[0] * nmu / big;
        for i in 0..=jmax {
            let r = nmu + i as f64 * gamma;
            let stay = 1.0 - (r + gamma) / big;
            let from_above =
                if i < jmax { v[i + 1] * (nmu + (i + 1) as f64 * gamma) / big } else { 0.0 };
            v[i] = v[i] * stay + from_above;
        }
        ln_pk += ln_lt - ((k + 1) as f64).ln();
    }
    result
}

/// The smallest number of agents whose Erlang A service level at `t_secs` reaches `target_sl`
/// and whose occupancy is at most `max_occupancy` (if given), with its figures. `None` when none
/// does (targets of 1 or more).
pub fn agents_needed_a(
    arrival_rate: f64,
    aht_secs: f64,
    patience_secs: f64,
    t_secs: f64,
    target_sl: f64,
    max_occupancy: Option<f64>,
) -> Option<(u32, ErlangA)> {
    let a = arrival_rate.max(0.0) * aht_secs.max(0.0);
    if a == 0.0 {
        return Some((0, erlang_a(0, arrival_rate, aht_secs, patience_secs, t_secs)));
    }
    // Agents answer at most N·μ calls per second, so the share answered (let alone answered in
    // time) is at most N/A: no N below target·A can do.
    let first = ((target_sl.max(0.0) * a).floor() as u32).max(1);
    // Erlang A's occupancy is at most A/N, so N = A/m meets any cap m.
    let last = search_cap(a).saturating_add(occupancy_floor(a, max_occupancy)).saturating_add(1);
    (first..=last).find_map(|n| {
        let r = erlang_a(n, arrival_rate, aht_secs, patience_secs, t_secs);
        (r.service_level >= target_sl && max_occupancy.is_none_or(|m| r.occupancy <= m))
            .then_some((n, r))
    })
}

#[cfg(test)]
#[path = "erlang_tests.rs"]
mod tests;
