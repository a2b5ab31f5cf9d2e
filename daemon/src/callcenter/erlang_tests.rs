//! Erlang B/C/A tests: against exact small cases, textbook values, closed forms computed here
//! independently, a brute-force birth–death chain, a seeded simulation, and properties.

use super::*;
use proptest::prelude::*;

fn close(a: f64, b: f64, tol: f64) -> bool {
    (a - b).abs() <= tol
}

/// `A^k/k!` for k = 0..=n, by direct products (fine for the small n used here).
fn poisson_terms(a: f64, n: u32) -> Vec<f64> {
    let mut t = vec![1.0];
    for k in 1..=n {
        let last = t[t.len() - 1];
        t.push(last * a / f64::from(k));
    }
    t
}

/// Erlang C from its textbook closed form.
fn erlang_c_direct(n: u32, a: f64) -> f64 {
    let t = poisson_terms(a, n);
    let top = t[n as usize] * f64::from(n) / (f64::from(n) - a);
    top / (t[..n as usize].iter().sum::<f64>() + top)
}

/// P(wait) of M/M/N from a brute-force birth–death chain truncated at `n + 5000`.
fn erlang_c_chain(n: u32, a: f64) -> f64 {
    let mut w = vec![1.0_f64];
    for k in 1..(n as usize + 5000) {
        let death = (k.min(n as usize)) as f64;
        let last = w[k - 1];
        w.push(last * a / death);
    }
    let total: f64 = w.iter().sum();
    w[n as usize..].iter().sum::<f64>() / total
}

#[test]
fn erlang_b_small_cases_and_direct_formula() {
    assert_eq!(erlang_b(0, 3.0), 1.0);
    assert!(close(erlang_b(1, 1.0), 0.5, 1e-15));
    // B(2, 1) = (1/2) / (1 + 1 + 1/2) = 0.2
    assert!(close(erlang_b(2, 1.0), 0.2, 1e-15));
    for (n, a) in [(10, 10.0), (5, 2.5), (30, 22.0)] {
        let t = poisson_terms(a, n);
        let direct = t[n as usize] / t.iter().sum::<f64>();
        assert!(close(erlang_b(n, a), direct, 1e-12), "B({n},{a})");
    }
    // Textbook: B(10, 10) ≈ 0.2146.
    assert!(close(erlang_b(10, 10.0), 0.2146, 5e-5));
    // Large N does not overflow.
    let b = erlang_b(5000, 4900.0);
    assert!(b > 0.0 && b < 0.1, "{b}");
}

#[test]
fn erlang_c_exact_and_textbook_values() {
    // C(3, 2) = 4/9, C(2, 1) = 1/3 exactly.
    assert!(close(erlang_c(3, 2.0), 4.0 / 9.0, 1e-14));
    assert!(close(erlang_c(2, 1.0), 1.0 / 3.0, 1e-14));
    // Textbook: A = 10 erl, N = 12: 0.4494 (often quoted truncated as 0.4493).
    assert!(close(erlang_c(12, 10.0), 0.4494, 5e-5), "{}", erlang_c(12, 10.0));
    for (n, a) in [(12, 10.0), (5, 3.7), (25, 20.0), (50, 49.5), (8, 0.3)] {
        let c = erlang_c(n, a);
        assert!(close(c, erlang_c_direct(n, a), 1e-12), "C({n},{a})");
        assert!(close(c, erlang_c_chain(n, a), 1e-9), "chain C({n},{a})");
    }
    // Unstable: everyone waits.
    assert_eq!(erlang_c(10, 10.0), 1.0);
    assert_eq!(erlang_c(9, 10.0), 1.0);
    assert_eq!(erlang_c(0, 0.0), 1.0);
    assert_eq!(erlang_c(3, 0.0), 0.0);
}

#[test]
fn service_level_asa_and_occupancy() {
    // A = 10, N = 12, AHT 180 s, 20 s: SL = 1 − 0.4493·e^{−2·20/180} ≈ 0.6402; ASA ≈ 40.4 s.
    let c = erlang_c(12, 10.0);
    let sl = service_level(12, 10.0, 180.0, 20.0);
    assert!(close(sl, 1.0 - c * (-40.0_f64 / 180.0).exp(), 1e-14));
    assert!(close(sl, 0.6402, 5e-4), "{sl}");
    assert!(close(asa(12, 10.0, 180.0), c * 90.0, 1e-12));
    assert!(close(asa(12, 10.0, 180.0), 40.44, 0.01));
    assert!(close(occupancy(12, 10.0), 10.0 / 12.0, 1e-15));
    // SL at 0 s is 1 − C; unstable gives 0 and an infinite ASA.
    assert!(close(service_level(12, 10.0, 180.0, 0.0), 1.0 - c, 1e-15));
    assert_eq!(service_level(10, 10.0, 180.0, 20.0), 0.0);
    assert!(asa(10, 10.0, 180.0).is_infinite());
    assert_eq!(occupancy(0, 1.0), 1.0);
}

#[test]
fn agents_needed_is_the_smallest_n_that_meets_the_target() {
    // 200 calls an hour, AHT 180 s: A = 10 erl. 80/20 needs 14 agents (13 gives < 80 %).
    let n = agents_needed(10.0, 180.0, 20.0, 0.8, None).unwrap();
    assert!(service_level(n, 10.0, 180.0, 20.0) >= 0.8);
    assert!(service_level(n - 1, 10.0, 180.0, 20.0) < 0.8);
    assert_eq!(n, 14, "SL(13) = {}", service_level(13, 10.0, 180.0, 20.0));
    // The occupancy cap raises it: 10/0.6 → 17.
    assert_eq!(agents_needed(10.0, 180.0, 20.0, 0.8, Some(0.6)), Some(17));
    assert_eq!(agents_needed(0.0, 180.0, 20.0, 0.8, None), Some(0));
    // An unreachable target.
    assert_eq!(agents_needed(10.0, 180.0, 20.0, 1.01, None), None);
    // A tight occupancy cap is always reachable: 10/0.01 = 1000 agents.
    assert_eq!(agents_needed(10.0, 180.0, 20.0, 0.8, Some(0.01)), Some(1000));
    let (n, r) = agents_needed_a(10.0 / 180.0, 180.0, 60.0, 20.0, 0.8, Some(0.01)).unwrap();
    assert!(n <= 1000 && r.occupancy <= 0.01, "{n} {r:?}");
}

/// A seeded M/M/N+M simulation, FCFS: (P(wait), P(abandon), SL(t), ASA of answered).
fn simulate_a(n: usize, lambda: f64, aht: f64, patience: f64, t: f64, calls: usize) -> [f64; 4] {
    let mut state = 0x9E37_79B9_7F4A_7C15_u64;
    let mut unit = move || {
        // xorshift64*
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        let x = state.wrapping_mul(0x2545_F491_4F6C_DD1D);
        ((x >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    };
    let mut free = vec![0.0_f64; n];
    let (mut now, mut waited, mut abandoned, mut in_sl, mut answered, mut wait_sum) =
        (0.0, 0usize, 0usize, 0usize, 0usize, 0.0);
    for _ in 0..calls {
        now += -unit().ln() / lambda;
        let tau = -unit().ln() * patience;
        let (i, &f) = free.iter().enumerate().min_by(|x, y| x.1.partial_cmp(y.1).unwrap()).unwrap();
        let start = f.max(now);
        if start > now {
            waited += 1;
        }
        if start - now > tau {
            abandoned += 1;
            continue;
        }
        answered += 1;
        wait_sum += start - now;
        if start - now <= t {
            in_sl += 1;
        }
        free[i] = start - unit().ln() * aht;
    }
    let c = calls as f64;
    [waited as f64 / c, abandoned as f64 / c, in_sl as f64 / c, wait_sum / answered as f64]
}

/// Erlang A's P(wait) and P(abandon) from the closed forms (Mandelbaum–Zeltyn):
/// with x = Nμ/γ, y = λ/γ, S = Σ_j y^j / ((x+1)…(x+j)) and E the Erlang B of N:
/// P(W>0) = S·E / (1 + (S−1)·E), P(Ab | W>0) = 1 − 1/ρ + 1/(ρ·S), ρ = λ/(Nμ).
fn erlang_a_closed(n: u32, lambda: f64, aht: f64, patience: f64) -> (f64, f64) {
    let (x, y) = (f64::from(n) / aht * patience, lambda * patience);
    let (mut s, mut term, mut j) = (1.0, 1.0, 1.0);
    while term > 1e-18 * s || j < y {
        term *= y / (x + j);
        s += term;
        j += 1.0;
    }
    let e = erlang_b(n, lambda * aht);
    let p_wait = s * e / (1.0 + (s - 1.0) * e);
    let rho = lambda * aht / f64::from(n);
    (p_wait, p_wait * (1.0 - 1.0 / rho + 1.0 / (rho * s)))
}

#[test]
fn erlang_a_matches_the_closed_forms() {
    for (n, lambda, aht, patience) in [
        (12, 10.0 / 180.0, 180.0, 120.0),
        (5, 6.0 / 180.0, 180.0, 60.0),
        (3, 1.0 / 20.0, 60.0, 30.0),
        (40, 45.0 / 200.0, 200.0, 300.0),
        (1, 0.5, 10.0, 5.0),
    ] {
        let r = erlang_a(n, lambda, aht, patience, 20.0);
        let (pw, pa) = erlang_a_closed(n, lambda, aht, patience);
        assert!(close(r.p_wait, pw, 1e-10), "P(wait) n={n}: {} vs {pw}", r.p_wait);
        assert!(close(r.p_abandon, pa, 1e-10), "P(ab) n={n}: {} vs {pa}", r.p_abandon);
        // Little's law on the queue: abandonment rate γ·E[Lq] = λ·P(ab), E[Lq] = λ·E[wait].
        assert!(close(r.avg_wait_s / patience, r.p_abandon, 1e-10), "Little n={n}");
        assert!((0.0..=1.0).contains(&r.service_level));
        assert!(r.service_level <= 1.0 - r.p_abandon + 1e-12);
    }
}

#[test]
fn erlang_a_matches_a_simulation() {
    // N = 3, 3 calls/min, AHT 60 s (A = 3 erl, overloaded without abandonment), patience 30 s.
    let (n, lambda, aht, patience, t) = (3, 3.0 / 60.0, 60.0, 30.0, 10.0);
    let r = erlang_a(n, lambda, aht, patience, t);
    let [pw, pa, sl, asa_s] = simulate_a(n as usize, lambda, aht, patience, t, 400_000);
    assert!(close(r.p_wait, pw, 0.01), "P(wait) {} sim {pw}", r.p_wait);
    assert!(close(r.p_abandon, pa, 0.01), "P(ab) {} sim {pa}", r.p_abandon);
    assert!(close(r.service_level, sl, 0.01), "SL {} sim {sl}", r.service_level);
    assert!(close(r.asa_s, asa_s, 0.5), "ASA {} sim {asa_s}", r.asa_s);
    // And a bigger, stable one.
    let (n, lambda, aht, patience, t) = (12, 10.0 / 180.0, 180.0, 90.0, 20.0);
    let r = erlang_a(n, lambda, aht, patience, t);
    let [pw, pa, sl, asa_s] = simulate_a(n as usize, lambda, aht, patience, t, 400_000);
    assert!(close(r.p_wait, pw, 0.01), "P(wait) {} sim {pw}", r.p_wait);
    assert!(close(r.p_abandon, pa, 0.01), "P(ab) {} sim {pa}", r.p_abandon);
    assert!(close(r.service_level, sl, 0.01), "SL {} sim {sl}", r.service_level);
    assert!(close(r.asa_s, asa_s, 1.0), "ASA {} sim {asa_s}", r.asa_s);
}

#[test]
fn erlang_a_tends_to_erlang_c_with_endless_patience() {
    let (n, a, aht, t) = (12, 10.0, 180.0, 20.0);
    let lambda = a / aht;
    let r = erlang_a(n, lambda, aht, 1e9, t);
    assert!(close(r.p_wait, erlang_c(n, a), 1e-5), "{} vs {}", r.p_wait, erlang_c(n, a));
    assert!(r.p_abandon < 1e-6);
    assert!(close(r.service_level, service_level(n, a, aht, t), 1e-5));
    assert!(close(r.asa_s, asa(n, a, aht), 1e-3));
    // Infinite patience is Erlang C exactly.
    let r = erlang_a(n, lambda, aht, f64::INFINITY, t);
    assert_eq!(r.p_wait, erlang_c(n, a));
    assert_eq!(r.service_level, service_level(n, a, aht, t));
}

#[test]
fn erlang_a_edge_cases() {
    // No calls.
    let r = erlang_a(3, 0.0, 180.0, 60.0, 20.0);
    assert_eq!((r.p_wait, r.service_level, r.asa_s), (0.0, 1.0, 0.0));
    // No agents: everyone waits and abandons, after the mean patience.
    let r = erlang_a(0, 0.1, 180.0, 60.0, 20.0);
    assert_eq!(r.p_wait, 1.0);
    assert!(close(r.p_abandon, 1.0, 1e-12));
    assert_eq!(r.service_level, 0.0);
    assert!(close(r.avg_wait_s, 60.0, 1e-9));
    // Almost no patience: callers who wait abandon; SL = 1 − P(wait).
    let r = erlang_a(5, 5.0 / 180.0, 180.0, 1e-3, 20.0);
    assert!(close(r.p_abandon, r.p_wait, 1e-4));
    assert!(close(r.service_level, 1.0 - r.p_wait, 1e-4));
    // Overloaded and patient (λ = 2·Nμ): still finite, abandonment carries the excess.
    let r = erlang_a(10, 20.0 / 180.0, 180.0, 600.0, 20.0);
    assert!(r.p_abandon > 0.45 && r.p_abandon < 0.55, "{}", r.p_abandon);
    assert!(r.occupancy <= 1.0 && r.occupancy > 0.95);
    // Huge N relative to the load: nobody waits.
    let r = erlang_a(2000, 0.01, 100.0, 60.0, 20.0);
    assert_eq!((r.p_wait, r.service_level), (0.0, 1.0));
}

#[test]
fn agents_needed_a_uses_fewer_agents_when_callers_abandon() {
    let (lambda, aht, t) = (10.0 / 180.0, 180.0, 20.0);
    let (n, r) = agents_needed_a(lambda, aht, 120.0, t, 0.8, None).unwrap();
    assert!(r.service_level >= 0.8);
    assert!(erlang_a(n - 1, lambda, aht, 120.0, t).service_level < 0.8);
    let c = agents_needed(10.0, aht, t, 0.8, None).unwrap();
    assert!(n <= c, "A {n} C {c}");
    // With endless patience the two agree.
    let (n_inf, _) = agents_needed_a(lambda, aht, f64::INFINITY, t, 0.8, None).unwrap();
    assert_eq!(n_inf, c);
    assert_eq!(agents_needed_a(0.0, aht, 60.0, t, 0.8, None).map(|x| x.0), Some(0));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn erlang_c_and_sl_are_monotone_in_n(a in 0.1f64..60.0, aht in 10.0f64..600.0, t in 0.0f64..120.0) {
        let first = a.floor() as u32 + 1;
        let mut last_c = 1.0;
        let mut last_sl = 0.0;
        for n in first..first + 30 {
            let c = erlang_c(n, a);
            let sl = service_level(n, a, aht, t);
            prop_assert!((0.0..=1.0).contains(&c));
            prop_assert!((0.0..=1.0).contains(&sl));
            prop_assert!(c <= last_c + 1e-12);
            prop_assert!(sl >= last_sl - 1e-12);
            prop_assert!(asa(n, a, aht) >= 0.0);
            last_c = c;
            last_sl = sl;
        }
    }

    #[test]
    fn erlang_a_is_monotone_in_n_and_bounded(
        a in 0.1f64..30.0, aht in 30.0f64..400.0, patience in 5.0f64..600.0, t in 0.0f64..60.0
    ) {
        let lambda = a / aht;
        let mut last = erlang_a(0, lambda, aht, patience, t);
        for n in 1..(a as u32 + 12) {
            let r = erlang_a(n, lambda, aht, patience, t);
            for v in [r.p_wait, r.p_abandon, r.service_level, r.occupancy] {
                prop_assert!((0.0..=1.0).contains(&v), "{r:?}");
            }
            prop_assert!(r.p_abandon <= r.p_wait + 1e-12);
            prop_assert!(r.service_level >= last.service_level - 1e-9, "n={n} {r:?} {last:?}");
            prop_assert!(r.p_abandon <= last.p_abandon + 1e-9);
            prop_assert!(r.p_wait <= last.p_wait + 1e-9);
            last = r;
        }
    }

    #[test]
    fn erlang_a_with_huge_patience_is_erlang_c(a in 0.5f64..20.0, extra in 1u32..6, aht in 30.0f64..300.0) {
        let n = a.floor() as u32 + extra;
        // Patience reshapes the queue length j by about exp(−j²·γ/2μ) and j runs to a few
        // 1/(1−ρ): a patience of 1e7·AHT/(1−ρ)² keeps that below ~1e-6 even close to ρ = 1.
        let rho = a / f64::from(n);
        // Closer to ρ = 1 the queue lengths that matter exceed the chain's truncation
        // (`MAX_QUEUE_STATES`), which is documented; Erlang C itself is then all but useless.
        prop_assume!(rho <= 0.99);
        let patience = 1e7 * aht / ((1.0 - rho) * (1.0 - rho));
        let r = erlang_a(n, a / aht, aht, patience, 20.0);
        prop_assert!((r.p_wait - erlang_c(n, a)).abs() < 1e-4, "{r:?}");
        prop_assert!((r.service_level - service_level(n, a, aht, 20.0)).abs() < 1e-4, "{r:?}");
        prop_assert!(r.p_abandon < 2e-6, "{r:?}");
        prop_assert!((r.asa_s - asa(n, a, aht)).abs() <= 1e-4 * asa(n, a, aht) + 1e-9, "{r:?}");
    }

    #[test]
    fn agents_needed_is_minimal(a in 0.1f64..80.0, target in 0.05f64..0.99, t in 0.0f64..60.0) {
        let n = agents_needed(a, 180.0, t, target, None).unwrap();
        prop_assert!(service_level(n, a, 180.0, t) >= target);
        prop_assert!(n == 0 || service_level(n - 1, a, 180.0, t) < target);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn agents_needed_a_is_minimal(
        a in 0.2f64..25.0, patience in 10.0f64..400.0, target in 0.3f64..0.95
    ) {
        let (aht, t) = (180.0, 20.0);
        let lambda = a / aht;
        let (n, r) = agents_needed_a(lambda, aht, patience, t, target, None).unwrap();
        prop_assert!(r.service_level >= target);
        prop_assert_eq!(r, erlang_a(n, lambda, aht, patience, t));
        for m in 1..n {
            prop_assert!(erlang_a(m, lambda, aht, patience, t).service_level < target, "m={}", m);
        }
    }
}
