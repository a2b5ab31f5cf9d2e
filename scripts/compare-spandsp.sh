#!/usr/bin/env bash
# Compare cardpbx's DTMF detector with SpanDSP's (the reference peer `dtmf_detect`, SpanDSP
# 0.0.6 dtmf_rx with default settings) on the same test battery: quality (hits, misses,
# false digits, timing) and speed (samples/s on the same input, in the same run).
#
# Usage: scripts/compare-spandsp.sh [WORK_DIR]        (default: target/compare-spandsp)
# Environment:
#   PEERS_DIR      source of the reference peers (default: ../shared/peers beside the repo)
#   SPANDSP_DTMF   use this dtmf_detect binary instead of building one
#   OURS           command used for our detector (default: the release `cardpbx dsp dtmf-detect`)
#   BENCH_ITERS    iterations of each --bench run (default 20)
#
# Both detectors read raw s16le 8 kHz mono files and print `<digit> <start_ms>` per digit;
# `--bench N FILE` prints `<name> samples_per_sec=<float>`. SpanDSP's start_ms is the instant
# its detector fires (about 20-35 ms after the tone onset); ours is the estimated tone onset.
# Needs python3 (scoring) and, to build the peer, libspandsp-dev (installed with apt-get when
# run as root and missing).
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
work=${1:-$repo/target/compare-spandsp}
mkdir -p "$work"
work=$(cd "$work" && pwd)
peers_src=${PEERS_DIR:-$repo/../shared/peers}
iters=${BENCH_ITERS:-20}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$repo/target}

log() { echo "== $*" >&2; }

# 1. SpanDSP's dtmf_detect.
spandsp=${SPANDSP_DTMF:-}
if [[ -z $spandsp ]]; then
  if [[ -x $peers_src/dtmf_detect ]]; then
    spandsp=$peers_src/dtmf_detect
  else
    [[ -f $peers_src/dtmf_detect.c ]] || { echo "no peers at $peers_src (set PEERS_DIR)" >&2; exit 1; }
    if ! pkg-config --exists spandsp 2>/dev/null && [[ ! -f /usr/include/spandsp.h ]]; then
      if [[ $(id -u) == 0 ]]; then
        log "installing libspandsp-dev"
        apt-get install -y libspandsp-dev >/dev/null || { apt-get update >/dev/null && apt-get install -y libspandsp-dev >/dev/null; }
      else
        echo "libspandsp-dev is missing (apt-get install -y libspandsp-dev as root)" >&2
        exit 1
      fi
    fi
    log "building dtmf_detect in $work/peers"
    rm -rf "$work/peers"
    cp -a "$peers_src" "$work/peers"
    make -s -C "$work/peers" dtmf_detect >&2
    spandsp=$work/peers/dtmf_detect
  fi
fi

# 2. Our detector.
if [[ -z ${OURS:-} ]]; then
  log "building cardpbx (release)"
  (cd "$repo" && cargo build --release -q -p cardpbx)
  OURS="$CARGO_TARGET_DIR/release/cardpbx dsp dtmf-detect"
fi
read -r -a ours <<<"$OURS"

# 3. The battery.
log "generating the battery"
(cd "$repo" && cargo run --release -q -p cardpbx-dsp --example dtmf_battery -- "$work/battery")
"${ours[@]}" "$work/battery/nominal_m10.raw" >/dev/null || { echo "our detector failed: $OURS" >&2; exit 1; }

# 4. Run both on every file.
log "running both detectors"
mkdir -p "$work/out/spandsp" "$work/out/ours"
while IFS=$'\t' read -r name _; do
  "$spandsp" "$work/battery/$name.raw" >"$work/out/spandsp/$name.txt"
  "${ours[@]}" "$work/battery/$name.raw" >"$work/out/ours/$name.txt"
done <"$work/battery/manifest.tsv"

# 5. Speed on the same input, same run (alternating, best of two each).
log "benchmarking ($iters iterations over bench.raw)"
rate() { sed -n 's/.*samples_per_sec=\([0-9.]*\).*/\1/p' | head -1; }
best() { python3 -c 'import sys; print(max(float(x) for x in sys.argv[1:]))' "$@"; }
s1=$("$spandsp" --bench "$iters" "$work/battery/bench.raw" 2>/dev/null | rate)
o1=$("${ours[@]}" "$work/battery/bench.raw" --bench "$iters" 2>/dev/null | rate)
s2=$("$spandsp" --bench "$iters" "$work/battery/bench.raw" 2>/dev/null | rate)
o2=$("${ours[@]}" "$work/battery/bench.raw" --bench "$iters" 2>/dev/null | rate)
sp_rate=$(best "$s1" "$s2")
our_rate=$(best "$o1" "$o2")

# 6. Score and print.
python3 - "$work" "$sp_rate" "$our_rate" <<'PY'
import sys, os
work, sp_rate, our_rate = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
dets = ["spandsp", "ours"]

def reported(det, name):
    out = []
    with open(os.path.join(work, "out", det, name + ".txt")) as f:
        for line in f:
            p = line.split()
            if len(p) >= 2:
                out.append((p[0], float(p[1])))
    return out

def score(exp, ons, on_ms, rep):
    """Greedy in-order match: a report hits the next expected digit with the same key whose
    onset is within [-20 ms, on_ms + 60 ms] of it."""
    hits, misses, false, deltas, j = 0, 0, 0, [], 0
    for d, t in rep:
        k = j
        while k < len(exp) and not (exp[k] == d and ons[k] - 20 <= t <= ons[k] + on_ms + 60):
            k += 1
        if k < len(exp):
            hits += 1
            misses += k - j
            deltas.append(t - ons[k])
            j = k + 1
        else:
            false += 1
    misses += len(exp) - j
    return hits, misses, false, deltas

rows, totals = [], {}
with open(os.path.join(work, "battery", "manifest.tsv")) as f:
    for line in f:
        name, kind, digits, onsets, on_ms = line.rstrip("\n").split("\t")
        exp = [] if digits == "-" else list(digits)
        ons = [] if onsets == "-" else [float(x) for x in onsets.split(",")]
        res = {d: score(exp, ons, float(on_ms), reported(d, name)) for d in dets}
        rows.append((name, kind, len(exp), res))
        for d in dets:
            t = totals.setdefault((kind, d), [0, 0, 0, 0, []])
            h, m, fa, dl = res[d]
            t[0] += len(exp); t[1] += h; t[2] += m; t[3] += fa; t[4] += dl

def cell(r):
    h, m, fa, _ = r
    return f"{h:3d}/{m:2d}/{fa:2d}"

print(f"{'file':34s} {'kind':8s} {'want':>4s}  {'SpanDSP h/m/f':>13s}  {'ours h/m/f':>10s}")
for name, kind, n, res in rows:
    flag = ""
    (sh, sm, sf, _), (oh, om, of, _) = res["spandsp"], res["ours"]
    if om + of > sm + sf:
        flag = "  <-- ours worse"
    elif om + of < sm + sf:
        flag = "  (ours better)"
    print(f"{name:34s} {kind:8s} {n:4d}  {cell(res['spandsp']):>13s}  {cell(res['ours']):>10s}{flag}")

print()
print("summary (h = hits, m = misses, f = false digits; t = reported time - true onset, ms)")
for kind in ["accept", "reject", "talkoff", "talkdown"]:
    for d in dets:
        if (kind, d) not in totals:
            continue
        want, h, m, fa, dl = totals[(kind, d)]
        tim = ""
        if dl:
            dl = sorted(dl)
            tim = f"  t mean {sum(dl)/len(dl):6.1f}  min {dl[0]:6.1f}  max {dl[-1]:6.1f}"
        print(f"  {kind:8s} {d:8s} want {want:4d}  hits {h:4d}  misses {m:4d}  false {fa:3d}{tim}")
print()
print(f"speed on bench.raw: SpanDSP {sp_rate:,.0f} samples/s, ours {our_rate:,.0f} samples/s, "
      f"ratio ours/SpanDSP = {our_rate / sp_rate:.2f}")
PY
