#!/usr/bin/env bash
# Runs ProLong's own LDS code (prolong/run.py) through prolong_driver.py on token ids, float32, CPU:
#
#   bash bench/prolong-reference/run_reference.sh --model HF_FOLDER --input ids.jsonl --output ref.jsonl \
#       [--chunk 128] [--window 32768] [--pairs all|N] [--threshold 0.1] [--seed 11] [--batch 256]
#
# Needs the environment setup_reference.sh builds (.deps/site and .deps/src/ProLong), or REF_SITE and
# PROLONG_SRC pointing at equivalents.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
site="${REF_SITE:-$here/.deps/site}"
prolong="${PROLONG_SRC:-$here/.deps/src/ProLong}"
[ -f "$prolong/prolong/run.py" ] || { echo "run_reference.sh: no ProLong checkout at $prolong (run setup_reference.sh, or set PROLONG_SRC)" >&2; exit 1; }
[ -d "$site/transformers" ] || { echo "run_reference.sh: no transformers in $site (run setup_reference.sh, or set REF_SITE)" >&2; exit 1; }
export PYTHONPATH="$site:$prolong/prolong"
export MPLBACKEND=Agg TRANSFORMERS_OFFLINE=1 HF_HUB_OFFLINE=1
exec /usr/bin/python3 "$here/prolong_driver.py" "$@"
