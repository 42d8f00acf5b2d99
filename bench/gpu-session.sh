#!/usr/bin/env bash
# The GPU session in one command (issue 5): build the kernels with this node's nvcc, self-test, make the random
# TinyLlama-shape model, run `longdep bench`, the PyTorch baseline on the same samples and the comparison; or profile
# (ncu on the hot kernels, nsys when present, GPU busy over a 200-sample run, memory at 32K/64K/128K).
#
#   bash dist/longdep-linux-x64/bench/gpu-session.sh main       # ~5 min: kernels, selftest --quick, model, smoke, bench, baseline, compare
#   bash dist/longdep-linux-x64/bench/gpu-session.sh profile    # ~6 min: kernels, model, ncu, GPU busy, memory scaling, nsys
#   bash dist/longdep-linux-x64/bench/gpu-session.sh selftest   # the full selftest alone (a few minutes)
#   bash dist/longdep-linux-x64/bench/gpu-session.sh sanitize   # compute-sanitizer memcheck, racecheck, initcheck over selftest --quick
#   bash dist/longdep-linux-x64/bench/gpu-session.sh mlp        # ~3 min: ProLong with feed-forward tiles of 4096, 8192, 16384 rows
#
# Everything it prints goes to $OUT/session.log; results are JSON/CSV/ncu files beside it (at most 8 files, the
# device tool's limit). Each step has its own time box and the whole call a budget (BUDGET, seconds): a step that no
# longer fits is skipped and says so. Work files (models, samples, kernels) go to $WORK and are reused while the
# machine stays warm.
#
# Parameters (environment): BUDGET (540), WORK (/tmp/longdep-bench), SHAPE (tinyllama), TOKENS (32768),
# SAMPLES (16, LADM: the reference batch), PROLONG_SAMPLES (3), PAIRS (5000), LADM_BATCH (16, the reference's), SELFTEST (quick|full|skip),
# UTIL_SAMPLES (200), SCALE_TOKENS ("32768 65536 131072"), DEVICE (cuda; cpu for a dry run of the script without a GPU), LONGDEP (the longdep executable;
# default: the bundle's).
set -uo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PART="${1:-main}"
OUT="${OUT:-$PWD/gpu-session-out}"
WORK="${WORK:-/tmp/longdep-bench}"
BUDGET="${BUDGET:-540}"
SHAPE="${SHAPE:-tinyllama}"
TOKENS="${TOKENS:-32768}"
SAMPLES="${SAMPLES:-16}"
PROLONG_SAMPLES="${PROLONG_SAMPLES:-3}"
PAIRS="${PAIRS:-5000}"
LADM_BATCH="${LADM_BATCH:-16}"
SELFTEST="${SELFTEST:-quick}"
UTIL_SAMPLES="${UTIL_SAMPLES:-200}"
SCALE_TOKENS="${SCALE_TOKENS:-32768 65536 131072}"
DEVICE="${DEVICE:-cuda}"
MODEL_SEED=1234
START=$(date +%s)
mkdir -p "$OUT" "$WORK"
LOG="$OUT/session.log"
export PYTHONUNBUFFERED=1 DOTNET_CLI_TELEMETRY_OPTOUT=1

# The bundle (bench/ inside dist/longdep-linux-x64) or a repository checkout with a bundle built beside it.
if [[ -z "${LONGDEP:-}" ]]; then
  for candidate in "$HERE/../longdep" "$HERE/../dist/longdep-linux-x64/longdep"; do
    if [[ -x "$candidate" && -f "$(dirname "$candidate")/build-kernels.sh" ]]; then LONGDEP="$(cd "$(dirname "$candidate")" && pwd)/longdep"; break; fi
  done
fi
if [[ -z "${LONGDEP:-}" ]]; then
  echo "gpu-session: no longdep bundle found next to $HERE (run ./build.sh bundle and carry dist/longdep-linux-x64)" | tee -a "$LOG" >&2
  exit 2
fi
BUNDLE="$(dirname "$LONGDEP")"
BASELINE="$HERE/baseline"

say() { printf '\n[%s +%ss] %s\n' "$(date +%H:%M:%S)" "$(( $(date +%s) - START ))" "$*" | tee -a "$LOG"; }
left() { echo $(( BUDGET - ($(date +%s) - START) )); }

# step NAME MAX_SECONDS MIN_SECONDS COMMAND...: runs COMMAND with a time box of min(MAX, time left - 10 s); skips it
# when less than MIN seconds are left. Output goes to the log. Returns the command's status (124: timed out).
step() {
  local name="$1" max="$2" min="$3"; shift 3
  local remaining=$(( $(left) - 10 ))
  local box=$(( max < remaining ? max : remaining ))
  if (( box < min )); then
    say "SKIP $name: ${remaining}s left of the ${BUDGET}s budget, it needs at least ${min}s"
    return 125
  fi
  say "STEP $name (time box ${box}s): $*"
  local t0=$(date +%s)
  timeout --kill-after=10 "$box" "$@" >>"$LOG" 2>&1
  local rc=$?
  local took=$(( $(date +%s) - t0 ))
  if (( rc == 124 || rc == 137 )); then say "TIMEOUT $name after ${took}s"; elif (( rc != 0 )); then say "FAILED $name (exit $rc) after ${took}s"; else say "done $name in ${took}s"; fi
  return $rc
}

environment() {
  say "environment"
  {
    echo "part: $PART; budget ${BUDGET}s; shape $SHAPE, tokens $TOKENS, LADM samples $SAMPLES, ProLong samples $PROLONG_SAMPLES, pairs $PAIRS"
    echo "longdep: $LONGDEP"; uname -a
    nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv 2>&1 | head -3
    (nvcc --version 2>&1 || echo "nvcc: not found") | tail -2
    python3 -c 'import sys, torch, transformers; print("python", sys.version.split()[0], "torch", torch.__version__, "cuda", torch.version.cuda, "transformers", transformers.__version__)' 2>&1 | tail -1
    echo "ncu: $(command -v ncu || echo none)"; echo "nsys: $(find_nsys || echo none)"
    nproc; free -g | head -2
  } >>"$LOG" 2>&1
}

# Kernels built by this node's nvcc (CUDA 12/13 adds sm_90a) into $WORK, keyed by the kernel sources' hash; the
# carried fatbin (built elsewhere for sm_90) stays the fallback.
kernels() {
  local hash dir
  hash=$(cat "$BUNDLE"/kernels-src/kernels/* "$BUNDLE"/kernels-src/native/* 2>/dev/null | sha256sum | cut -c1-16)
  dir="$WORK/kernels-$hash"
  if [[ -f "$dir/longdep_kernels.fatbin" ]]; then
    say "kernels: reusing $dir (built earlier on this machine)"
  elif ! step "build kernels" 240 30 bash "$BUNDLE/kernels-src/native/build-kernels.sh" "$dir"; then
    say "kernels: the build failed; using the carried fatbin $BUNDLE/longdep_kernels.fatbin"
    rm -f "$dir/longdep_kernels.fatbin"
    return 0
  fi
  export LONGDEP_KERNELS="$dir"
  say "kernels: LONGDEP_KERNELS=$dir"
}

selftest() {
  local rc
  case "$1" in
    skip) say "selftest skipped (SELFTEST=skip)"; return 0 ;;
    full) step "selftest (full)" 420 120 "$LONGDEP" selftest; rc=$? ;;
    *) step "selftest --quick" 120 20 "$LONGDEP" selftest --quick; rc=$? ;;
  esac
  (( rc == 0 || rc == 125 )) && return 0
  # Something failed (a wrong result or a fault, which ends the process's GPU context). The environment pins forms away
  # (the selftest then neither uses nor checks them), from the newest to the oldest: if it passes with the wide kernels
  # at 4 warps a block only, the 8-warp forms are the cause; if it passes without the wide kernels (head dimension 64,
  # 32 rows or keys per warp, ldmatrix: attention and both PFS passes), they are: the session goes on with the 16-row
  # tensor-core kernels. Else, if the scalar kernels alone pass, the tensor-core kernels are the cause: the rest of the
  # session measures the scalar ones, so that its timings still go with correct scores.
  if LONGDEP_WIDE_WARPS=4 step "selftest --quick, LONGDEP_WIDE_WARPS=4" 120 20 "$LONGDEP" selftest --quick; then
    export LONGDEP_WIDE_WARPS=4
    say "selftest: passes with 4-warp wide kernels only: LONGDEP_WIDE_WARPS=4 for the rest of this session (see the FAIL rows above)"
  elif LONGDEP_WIDE_ATTENTION=0 step "selftest --quick, LONGDEP_WIDE_ATTENTION=0" 120 20 "$LONGDEP" selftest --quick; then
    export LONGDEP_WIDE_ATTENTION=0
    say "selftest: passes without the wide kernels: LONGDEP_WIDE_ATTENTION=0 for the rest of this session (see the FAIL rows above)"
  elif step "selftest --quick --kernel-set simple" 120 20 "$LONGDEP" selftest --quick --kernel-set simple; then
    export LONGDEP_KERNEL_SET=simple
    say "selftest: the scalar kernels pass without the tensor-core ones: LONGDEP_KERNEL_SET=simple for the rest of this session (see the FAIL rows above)"
  else
    say "selftest: the scalar kernels fail too; the session goes on with the default kernels (read the FAIL rows above)"
  fi
}

# From the kernel timing: the fastest form of the O(T^2) kernels for the rest of the session (all forms give the same
# outputs; the selftest compared them), by the sum of attention + PFS pass 1 + pass 2 as the LADM probe runs them:
# 16-row kernels (LONGDEP_WIDE_ATTENTION=0), wide with 4 warps (the default) or wide with 8 (LONGDEP_WIDE_WARPS=8).
# A form other than the default must win by 3%. A choice already made (by the caller, or the selftest's fallback) is kept.
choose_variants() {
  [[ -f "$1" ]] || { say "kernel variants: no timing file, defaults kept"; return 0; }
  if [[ -n "${LONGDEP_WIDE_ATTENTION:-}${LONGDEP_WIDE_WARPS:-}" || "${LONGDEP_KERNEL_SET:-tensor}" == simple ]]; then
    say "kernel variants: set already (LONGDEP_WIDE_ATTENTION=${LONGDEP_WIDE_ATTENTION:-} LONGDEP_WIDE_WARPS=${LONGDEP_WIDE_WARPS:-} LONGDEP_KERNEL_SET=${LONGDEP_KERNEL_SET:-}), kept"
    return 0
  fi
  local choice
  choice=$(python3 - "$1" 2>>"$LOG" <<'EOF'
import json, sys
ms = {r["kernel"].split(" + ")[-1]: r["milliseconds"] for r in json.load(open(sys.argv[1]))["kernels"] if r["set"] == "tensor"}
def total(*names):
    values = [ms.get(n) for n in names]
    return None if any(v is None for v in values) else sum(values)
forms = {
    "narrow": total("attention_mma64_kv16_f16", "pfs_row_stats_mma64", "pfs_column_mass_mma64"),
    "wide4": total("attention_mma64_kv16_wide_f16", "pfs_row_stats_mma64_kv16_wide", "pfs_column_mass_mma64_wide"),
    # a GQA group of odd size runs the 4-warp pass 1 under 8 warps too (it is then the row timed)
    "wide8": total("attention_mma64_kv16_wide8_f16", "pfs_row_stats_mma64_kv16_wide8", "pfs_column_mass_mma64_wide")
             or total("attention_mma64_kv16_wide8_f16", "pfs_row_stats_mma64_kv16_wide", "pfs_column_mass_mma64_wide"),
}
text = ", ".join(f"{k} {v:.2f} ms" for k, v in forms.items() if v is not None)
if forms["wide4"] is None or None in forms.values():
    print(f"keep (the timing has no rows for all the head-dimension-64 forms: {text or 'none'})")
else:
    best = min(forms, key=forms.get)
    if best == "wide4" or forms[best] >= 0.97 * forms["wide4"]:
        best = "wide4"
    print(f"{best} ({text})")
EOF
)
  case "$choice" in
    narrow*) export LONGDEP_WIDE_ATTENTION=0; echo "export LONGDEP_WIDE_ATTENTION=0" >"$WORK/variants.env" ;;
    wide8*) export LONGDEP_WIDE_WARPS=8; echo "export LONGDEP_WIDE_WARPS=8" >"$WORK/variants.env" ;;
    *) rm -f "$WORK/variants.env" ;;
  esac
  say "kernel variants: ${choice:-keep (the timing file was unreadable)}; LONGDEP_WIDE_ATTENTION=${LONGDEP_WIDE_ATTENTION:-} LONGDEP_WIDE_WARPS=${LONGDEP_WIDE_WARPS:-}"
}

# make_model SHAPE -> $WORK/SHAPE-hf (Hugging Face folder, f16, seed 1234), reused when already there.
make_model() {
  local shape="$1" dir="$WORK/$1-hf"
  if [[ -f "$dir/.complete" ]]; then say "model: reusing $dir"; return 0; fi
  rm -rf "$dir"
  step "make-model $shape" 180 30 "$LONGDEP" make-model --shape "$shape" --format hf --seed "$MODEL_SEED" -o "$dir" && touch "$dir/.complete"
}

find_nsys() {
  if command -v nsys >/dev/null 2>&1; then command -v nsys; return 0; fi
  local c
  for c in /usr/local/cuda/bin/nsys /opt/nvidia/nsight-systems/*/bin/nsys; do [[ -x "$c" ]] && { echo "$c"; return 0; }; done
  return 1
}

# Seconds-per-sample, Pearson and peak memory of a JSON result, into the log.
summary() { python3 - "$@" >>"$LOG" 2>&1 <<'EOF'
import json, sys
for path in sys.argv[1:]:
    try:
        d = json.load(open(path))
    except Exception as e:
        print(f"{path}: unreadable ({e})"); continue
    for m in d.get("methods", []):
        label = f"LADM {m.get('d_afs')}/{m.get('d_cds')}" if m["method"] == "ladm" else "ProLong"
        mem = m.get("peak_memory_bytes")
        print(f"{path.split('/')[-1]}: {label}: {m.get('seconds_per_sample')} s/sample, peak memory {mem / 2**30 if mem else float('nan'):.2f} GiB")
EOF
}

part_main() {
  environment
  kernels
  selftest "$SELFTEST"
  step "python unit tests (formulas; torch parts on a tiny CPU model)" 120 20 python3 -m unittest discover -s "$BASELINE" -v
  # One layer's O(T^2) kernels at TinyLlama's heads and 32K tokens, both kernel sets (unless one was forced): seconds.
  step "kernel timing ($SHAPE heads, $TOKENS tokens)" 90 20 "$LONGDEP" bench --shape "$SHAPE" --device "$DEVICE" --tokens "$TOKENS" \
    --ladm-settings 4:4 --kernel-timing --json "$OUT/kernels.json"
  choose_variants "$OUT/kernels.json"

  # Smoke: the whole chain on the tiny shape in seconds, so that a wiring problem shows before the long runs.
  make_model tiny
  step "smoke: bench (tiny shape, GPU)" 90 20 "$LONGDEP" bench --model "$WORK/tiny-hf" --device "$DEVICE" --tokens 4096 --samples 4 \
    --pairs 200 --ladm-settings 4:4,2:2 --json "$WORK/smoke-bench.json" --write-samples "$WORK/smoke-samples.jsonl"
  step "smoke: crosscheck of the formulas" 30 5 python3 "$BASELINE/crosscheck.py" --bench "$WORK/smoke-bench.json" --samples "$WORK/smoke-samples.jsonl"
  step "smoke: baseline (tiny shape)" 120 30 python3 "$BASELINE/baseline.py" --model "$WORK/tiny-hf" --samples "$WORK/smoke-samples.jsonl" \
    --out "$WORK/smoke-baseline.json" --ladm-settings 4:4,2:2 --ladm-batch 4
  step "smoke: compare" 30 5 "$LONGDEP" bench --compare "$WORK/smoke-baseline.json" --results "$WORK/smoke-bench.json"

  make_model "$SHAPE"
  step "bench ($SHAPE, $TOKENS tokens, $SAMPLES samples, ProLong $PROLONG_SAMPLES x $PAIRS pairs)" 300 60 \
    "$LONGDEP" bench --model "$WORK/$SHAPE-hf" --device "$DEVICE" --tokens "$TOKENS" --samples "$SAMPLES" --prolong-samples "$PROLONG_SAMPLES" \
    --pairs "$PAIRS" --json "$OUT/bench.json" --write-samples "$WORK/samples.jsonl"
  step "crosscheck of the formulas" 30 5 python3 "$BASELINE/crosscheck.py" --bench "$OUT/bench.json" --samples "$WORK/samples.jsonl"
  step "baseline (PyTorch, reference way)" 330 60 python3 "$BASELINE/baseline.py" --model "$WORK/$SHAPE-hf" --samples "$WORK/samples.jsonl" \
    --out "$OUT/baseline.json" --ladm-samples "$SAMPLES" --prolong-samples "$PROLONG_SAMPLES" --ladm-batch "$LADM_BATCH"
  step "compare" 30 5 "$LONGDEP" bench --compare "$OUT/baseline.json" --results "$OUT/bench.json" --compare-json "$OUT/compare.json"
  # The scalar kernels on the same samples (LADM 4:4 only), for the tensor-core speed-up; last, as it is optional.
  if [[ "${LONGDEP_KERNEL_SET:-tensor}" != simple ]]; then
    step "bench, simple kernels (LADM 4:4, 2 samples)" 120 60 "$LONGDEP" bench --model "$WORK/$SHAPE-hf" --device "$DEVICE" \
      --tokens "$TOKENS" --samples 2 --methods ladm --ladm-settings 4:4 --kernel-set simple --json "$OUT/bench-simple.json"
  fi
  summary "$OUT/bench.json" "$OUT/baseline.json" "$OUT/bench-simple.json"
}

part_profile() {
  environment
  kernels
  # The form `main` chose on this machine (when it is still warm), so that the profiles are of the kernels it measured.
  if [[ -f "$WORK/variants.env" && -z "${LONGDEP_WIDE_ATTENTION:-}${LONGDEP_WIDE_WARPS:-}" ]]; then
    source "$WORK/variants.env"
    say "kernel variants: as main chose ($(tr '\n' ' ' <"$WORK/variants.env"))"
  fi
  make_model "$SHAPE"
  local model="$WORK/$SHAPE-hf" sections=(--section SpeedOfLight --section MemoryWorkloadAnalysis --section ComputeWorkloadAnalysis
    --section Occupancy --section LaunchStats --section WarpStateStats --section SchedulerStats)
  if command -v ncu >/dev/null 2>&1; then
    # LADM, layer 0: pfs_row_stats, pfs_column_mass, pfs_window_sum, then the causal attention over 32K tokens.
    step "ncu: LADM kernels (pfs x3, attention)" 180 60 ncu --clock-control none --kernel-name "regex:pfs_|attention_" --launch-count 4 \
      "${sections[@]}" -f -o "$OUT/ncu-ladm" "$LONGDEP" bench --model "$model" --device "$DEVICE" --tokens "$TOKENS" --samples 1 \
      --methods ladm --ladm-settings 4:4 --warmup 0 --no-phases
    # ProLong: the singles' last-layer attention, both loss kernels, then the first pair batch's layer-0 attention (prefix + causal).
    local layers
    layers=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["num_hidden_layers"])' "$model/config.json" 2>/dev/null || echo 22)
    step "ncu: ProLong kernels (attention singles/pairs, loss)" 180 60 ncu --clock-control none --kernel-name "regex:loss_|attention_" \
      --launch-skip $(( layers - 1 )) --launch-count 4 "${sections[@]}" -f -o "$OUT/ncu-prolong" "$LONGDEP" bench --model "$model" --device "$DEVICE" \
      --tokens "$TOKENS" --samples 1 --methods prolong --pairs 256 --warmup 0 --no-phases
    for rep in "$OUT/ncu-ladm.ncu-rep" "$OUT/ncu-prolong.ncu-rep"; do
      [[ -f "$rep" ]] && { echo "==== $rep"; ncu --import "$rep" --page details; } >>"$OUT/ncu.txt" 2>&1
    done
  else
    say "ncu not found: no kernel profiles"
  fi

  # GPU busy over a long LADM run (issue: >= 95% in a 200-sample run), from nvidia-smi's utilization samples.
  if step "samples for the GPU-busy run" 60 10 "$LONGDEP" bench --model "$model" --tokens "$TOKENS" --samples "$UTIL_SAMPLES" \
       --write-samples "$WORK/util.jsonl" --no-run; then
    nvidia-smi --query-gpu=timestamp,utilization.gpu,memory.used --format=csv,noheader,nounits -lms 200 >"$OUT/util.csv" 2>&1 &
    local smi=$!
    step "GPU busy: longdep score ladm over $UTIL_SAMPLES samples" 240 60 "$LONGDEP" score --method ladm --model "$model" --device "$DEVICE" \
      --input "$WORK/util.jsonl" --output "$WORK/util-scores.jsonl" --overwrite --progress-interval 15
    kill "$smi" 2>/dev/null; wait "$smi" 2>/dev/null
    python3 - "$OUT/util.csv" >>"$LOG" 2>&1 <<'EOF'
import sys
rows = []
for line in open(sys.argv[1]):
    parts = [p.strip() for p in line.split(",")]
    if len(parts) >= 3 and parts[1].isdigit():
        rows.append((int(parts[1]), int(parts[2])))
busy = [i for i, (u, _) in enumerate(rows) if u > 0]
if not busy:
    print("GPU busy: no utilization sample above 0 (did the run start?)")
else:
    window = rows[busy[0]:busy[-1] + 1]
    mean = sum(u for u, _ in window) / len(window)
    print(f"GPU busy while scoring: {mean:.1f}% mean utilization over {len(window)} samples of 200 ms "
          f"(first to last busy sample; target >= 95%); max memory used {max(m for _, m in rows)} MiB")
EOF
  fi

  # Memory against T: LADM at 32K, 64K and 128K tokens (issue: linear in T).
  local t
  for t in $SCALE_TOKENS; do
    step "LADM memory at T=$t" 120 40 "$LONGDEP" bench --model "$model" --device "$DEVICE" --tokens "$t" --window "$t" --samples 1 \
      --methods ladm --ladm-settings 4:4 --warmup 0 --no-phases --json "$WORK/scale-$t.json"
  done
  python3 - "$WORK" "$OUT/scaling.json" $SCALE_TOKENS >>"$LOG" 2>&1 <<'EOF'
import json, os, sys
work, out = sys.argv[1], sys.argv[2]
rows = []
for t in map(int, sys.argv[3:]):
    path = os.path.join(work, f"scale-{t}.json")
    if not os.path.exists(path):
        continue
    m = json.load(open(path))["methods"][0]
    rows.append({"tokens": t, "seconds": m["seconds_per_sample"], "peak_memory_bytes": m["peak_memory_bytes"],
                 "peak_allocated_bytes": m["peak_allocated_bytes"]})
json.dump(rows, open(out, "w"), indent=1)
gib = lambda b: "n/a" if b is None else f"{b / 2**30:.2f} GiB"
for r in rows:
    print(f"LADM T={r['tokens']}: {r['seconds']:.3f} s, peak memory {gib(r['peak_memory_bytes'])}, our buffers {gib(r['peak_allocated_bytes'])}")
if len(rows) >= 2 and rows[0]["peak_allocated_bytes"] and rows[-1]["peak_allocated_bytes"]:
    a, b = rows[0], rows[-1]
    print(f"growth of our buffers from T={a['tokens']} to T={b['tokens']}: x{b['peak_allocated_bytes'] / a['peak_allocated_bytes']:.2f} "
          f"(T grew x{b['tokens'] / a['tokens']:.0f}; the weights are in both)")
EOF

  local nsys
  if nsys=$(find_nsys); then
    step "nsys timeline (LADM + ProLong, 2 samples)" 150 60 "$nsys" profile --trace=cuda,nvtx,cublas --sample=none --cpuctxsw=none \
      --force-overwrite=true -o "$WORK/timeline" "$LONGDEP" bench --model "$model" --device "$DEVICE" --tokens "$TOKENS" --samples 2 \
      --ladm-settings 4:4 --pairs 1000 --warmup 1 --no-phases
    if [[ -f "$WORK/timeline.nsys-rep" ]]; then
      step "nsys stats" 60 10 bash -c "'$nsys' stats --report nvtx_sum,cuda_gpu_kern_sum,cuda_gpu_mem_time_sum '$WORK/timeline.nsys-rep' > '$OUT/nsys.txt' 2>&1"
      if (( $(stat -c %s "$WORK/timeline.nsys-rep") < 15000000 )); then cp "$WORK/timeline.nsys-rep" "$OUT/"; else say "timeline.nsys-rep is over 15 MB: kept in $WORK only"; fi
    fi
  else
    say "nsys not found: no timeline (the NVTX ranges are in the bench's phase table instead)"
  fi
}

# ProLong at three heights of the feed-forward tiles (LONGDEP_MLP_TILE_ROWS; default 4096 rows): the gate/up GEMMs of a
# 4096-row tile may end on a partial wave of thread-block tiles, taller tiles cost 2 x 3 x rows x FfDim bytes more.
part_mlp() {
  environment
  kernels
  if [[ -f "$WORK/variants.env" && -z "${LONGDEP_WIDE_ATTENTION:-}${LONGDEP_WIDE_WARPS:-}" ]]; then source "$WORK/variants.env"; fi
  make_model "$SHAPE"
  local rows model="$WORK/$SHAPE-hf"
  for rows in 4096 8192 16384; do
    rm -f "$WORK/mlp-$rows.json"
    LONGDEP_MLP_TILE_ROWS=$rows step "ProLong with feed-forward tiles of $rows rows" 90 30 "$LONGDEP" bench --model "$model" --device "$DEVICE" \
      --tokens "$TOKENS" --samples 1 --methods prolong --pairs "$PAIRS" --warmup 1 --no-phases --json "$WORK/mlp-$rows.json"
  done
  python3 - "$WORK" >>"$LOG" 2>&1 <<'EOF'
import json, os, sys
for rows in (4096, 8192, 16384):
    path = os.path.join(sys.argv[1], f"mlp-{rows}.json")
    if os.path.exists(path):
        m = json.load(open(path))["methods"][0]
        mem = m.get("peak_memory_bytes")
        print(f"ProLong, feed-forward tiles of {rows} rows: {m['seconds_per_sample']:.3f} s/sample, peak memory "
              f"{mem / 2**30 if mem else float('nan'):.2f} GiB")
EOF

}

# compute-sanitizer over the quick self-test (every kernel on small inputs, compared with its twin): out-of-bounds and
# misaligned accesses (memcheck), shared-memory hazards such as a missing barrier between a stage's copies and its
# readers (racecheck), uninitialized shared memory read (initcheck). Each tool's summary line goes to the digest.
part_sanitize() {
  environment
  kernels
  local cs tool
  cs=$(command -v compute-sanitizer || ls /usr/local/cuda*/bin/compute-sanitizer 2>/dev/null | head -1)
  if [[ -z "$cs" ]]; then say "compute-sanitizer not found: nothing checked"; return 0; fi
  for tool in memcheck racecheck initcheck; do
    step "compute-sanitizer --tool $tool: selftest --quick" 240 60 "$cs" --tool "$tool" --print-limit 20 "$LONGDEP" selftest --quick
  done
}

# The device tool brings back at most 8 files of at most 16 MiB, no deeper than $OUT/a/b/file.
finish() {
  local f size
  while IFS= read -r f; do
    size=$(stat -c %s "$f")
    if (( size > 16000000 )); then say "dropping $(basename "$f") ($size bytes, over the 16 MiB limit)"; rm -f "$f"; fi
  done < <(find "$OUT" -type f)
  local count
  count=$(find "$OUT" -type f | wc -l)
  if (( count > 8 )); then
    say "$count files in \$OUT; packing the smallest extras into extras.tar.gz"
    local keep=(session.log bench.json baseline.json compare.json ncu.txt util.csv scaling.json)
    local extra=()
    while IFS= read -r f; do
      local name; name=$(basename "$f")
      [[ " ${keep[*]} " == *" $name "* ]] || extra+=("$name")
    done < <(find "$OUT" -maxdepth 1 -type f | sort)
    (cd "$OUT" && tar czf extras.tar.gz "${extra[@]}" && rm -f "${extra[@]}")
  fi
  say "finished part '$PART' in $(( $(date +%s) - START ))s; files in \$OUT: $(cd "$OUT" && ls | tr '\n' ' ')"
  # The figures that matter, at the end of the output (the device tool returns its last 12,000 characters).
  echo "==== digest of $LOG"
  grep -E '^\[.*(FAILED|TIMEOUT|SKIP) |^\[.*(kernel variants|selftest): ' "$LOG"
  sed -n '/Table 5 layout/,/^FLOP model/p' "$LOG" | tail -n 40
  sed -n '/vs the PyTorch baseline/,/^targets:/p' "$LOG" | tail -n 40
  grep -E '^(GPU busy|LADM T=|growth of our|ProLong, feed-forward tiles|selftest: all|selftest: .* FAILED|crosscheck: |========= (ERROR|RACECHECK) SUMMARY)' "$LOG"
}

case "$PART" in
  main) part_main ;;
  profile) part_profile ;;
  selftest) environment; kernels; selftest full ;;
  sanitize) part_sanitize ;;
  mlp) part_mlp ;;
  all) BUDGET=$(( BUDGET * 3 )); part_main; part_profile ;;
  *) echo "usage: gpu-session.sh main|profile|selftest|sanitize|mlp|all" >&2; exit 2 ;;
esac
finish
