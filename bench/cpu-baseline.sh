#!/usr/bin/env bash
# longdep's CPU engine against the PyTorch baseline (bench/baseline, the reference way: float32, torch's CPU BLAS) on
# the same random model, samples and ProLong draws, in one run, and the comparison `longdep bench --compare` prints.
#
#   bash bench/cpu-baseline.sh [WORK_DIR]
#
# Environment: SHAPE (tinyllama), TOKENS (2048), CHUNK (64: LADM 4:4 has 4 query spans at 2048 tokens), SAMPLES (2,
# LADM), PROLONG_SAMPLES (1), PAIRS (60), THREADS (2), PYTHON (/usr/bin/python3, Debian's torch) and REF_SITE (the
# transformers site bench/prolong-reference/setup_reference.sh builds; default its .deps/site).
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
work="${1:-$repo/cpu-baseline}"
shape="${SHAPE:-tinyllama}" tokens="${TOKENS:-2048}" chunk="${CHUNK:-64}" samples="${SAMPLES:-2}"
prolong_samples="${PROLONG_SAMPLES:-1}" pairs="${PAIRS:-60}" threads="${THREADS:-2}"
python="${PYTHON:-/usr/bin/python3}"
site="${REF_SITE:-$repo/bench/prolong-reference/.deps/site}"
mkdir -p "$work"
log() { echo "[cpu-baseline $(date -u +%H:%M:%S)] $*" >&2; }
log "load average $(cut -d' ' -f1-3 /proc/loadavg); $(nproc) processors"
[ -d "$work/model" ] || "$repo/longdep" make-model --shape "$shape" --format hf -o "$work/model"
log "longdep bench on the CPU"
"$repo/longdep" bench --model "$work/model" --device cpu --threads "$threads" --tokens "$tokens" --chunk "$chunk" \
    --samples "$samples" --prolong-samples "$prolong_samples" --pairs "$pairs" --ladm-settings 4:4 --warmup 0 --no-phases \
    --json "$work/bench.json" --write-samples "$work/samples.jsonl" | tee "$work/bench.txt"
log "load average $(cut -d' ' -f1-3 /proc/loadavg); the baseline"
PYTHONPATH="$site${PYTHONPATH:+:$PYTHONPATH}" "$python" "$repo/bench/baseline/baseline.py" --model "$work/model" \
    --samples "$work/samples.jsonl" --out "$work/baseline.json" --device cpu --dtype float32 --threads "$threads" \
    --ladm-settings 4:4 --ladm-samples "$samples" --prolong-samples "$prolong_samples" --warmup 0 | tee "$work/baseline.txt"
log "load average $(cut -d' ' -f1-3 /proc/loadavg)"
"$repo/longdep" bench --compare "$work/baseline.json" --results "$work/bench.json" --compare-json "$work/compare.json" \
    | tee "$work/compare.txt"
