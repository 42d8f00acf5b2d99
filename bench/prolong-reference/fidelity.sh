#!/usr/bin/env bash
# The fidelity check: a random Hugging Face model, token ids, LDS from ProLong's run.py (run_reference.sh) and from
# `longdep score --method prolong --pairs all` on the CPU, compared record by record (compare_lds.py).
#
#   bash bench/prolong-reference/fidelity.sh [--shape tiny] [--format hf|hf-bin] [--chunk 32] [--window 256]
#                                            [--records 8] [--rtol 1e-4] [--work DIR]
#
# Records hold at most W / l chunks and every pair is used, so neither side draws (the draws differ by design).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
shape=tiny format=hf chunk=32 window=256 records=8 rtol=1e-4 work=
while [ $# -gt 0 ]; do
  case "$1" in
    --shape) shape="$2"; shift 2 ;;
    --format) format="$2"; shift 2 ;;
    --chunk) chunk="$2"; shift 2 ;;
    --window) window="$2"; shift 2 ;;
    --records) records="$2"; shift 2 ;;
    --rtol) rtol="$2"; shift 2 ;;
    --work) work="$2"; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
work="${work:-$(mktemp -d)}"
mkdir -p "$work"
model="$work/$shape-$format"
"$root/longdep" make-model --shape "$shape" --format "$format" --dtype f32 -o "$model" >/dev/null
vocab=$(/usr/bin/python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['vocab_size'])" "$model/config.json")
/usr/bin/python3 "$here/make_ids.py" --output "$work/ids.jsonl" --vocab "$vocab" --chunk "$chunk" --window "$window" --records "$records"
bash "$here/run_reference.sh" --model "$model" --input "$work/ids.jsonl" --output "$work/reference.jsonl" \
  --chunk "$chunk" --window "$window" --pairs all
"$root/longdep" score --method prolong --model "$model" --input "$work/ids.jsonl" --output "$work/longdep.jsonl" \
  --chunk "$chunk" --window "$window" --pairs all --device cpu >/dev/null
/usr/bin/python3 "$here/compare_lds.py" --ours "$work/longdep.jsonl" --reference "$work/reference.jsonl" --rtol "$rtol"
