#!/usr/bin/env bash
# Builds the Python environment ProLong's run.py needs, from source checkouts, without PyPI:
# Debian's python3-torch and friends (apt), transformers at ProLong's pinned 4.36.0, huggingface_hub 0.19.4
# (contemporary with it) and safetensors 0.3.1 (transformers' minimum; compiled with Debian's Rust crates).
#
#   bash bench/prolong-reference/setup_reference.sh \
#       --prolong DIR --transformers DIR --hub DIR --safetensors DIR
#
# Each DIR is a git repository (a clone, or a bare mirror) of October2001/ProLong, huggingface/transformers,
# huggingface/huggingface_hub and huggingface/safetensors. Sources are exported with `git archive` into
# bench/prolong-reference/.deps/src, wheels built there and installed into .deps/site (git-ignored); nothing is
# installed into the system Python except Debian packages. run_reference.sh then uses .deps.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
deps="$here/.deps"
PY=/usr/bin/python3   # Debian's Python: python3-torch lives there

prolong= transformers= hub= safetensors=
while [ $# -gt 0 ]; do
  case "$1" in
    --prolong) prolong="$2"; shift 2 ;;
    --transformers) transformers="$2"; shift 2 ;;
    --hub) hub="$2"; shift 2 ;;
    --safetensors) safetensors="$2"; shift 2 ;;
    *) echo "unknown option $1 (see the comment at the top of $0)" >&2; exit 2 ;;
  esac
done
for v in prolong transformers hub safetensors; do
  [ -n "${!v}" ] || { echo "setup_reference.sh: --$v DIR is required (a git repository; see the top of $0)" >&2; exit 2; }
done

# The refs used. transformers: the v4.36.0 tag when the repository has it; else main on 2023-12-11 (release day,
# __version__ 4.36.0.dev0), whose llama/OPT eager forward, GPT2Tokenizer and loading code match the release.
TRANSFORMERS_REFS="v4.36.0 417bb9148416651d8a59a9b211558ad329882b02"
HUB_REF=v0.19.4
SAFETENSORS_REF=v0.3.1
PROLONG_REF=HEAD

if [ "$(id -u)" = 0 ]; then
  pkgs="python3-torch python3-numpy python3-tqdm python3-matplotlib python3-regex python3-filelock python3-requests
        python3-packaging python3-yaml python3-fsspec python3-typing-extensions python3-pip python3-wheel
        python3-setuptools python3-setuptools-rust python3-dev librust-pyo3-dev librust-memmap2-dev
        librust-serde-json-dev librust-serde-dev librust-serde-derive-dev"
  command -v cargo >/dev/null || pkgs="$pkgs cargo rustc"
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $pkgs >/dev/null
fi
"$PY" -c "import torch" || { echo "setup_reference.sh: $PY cannot import torch (apt-get install python3-torch)" >&2; exit 1; }

export_ref() { # repo ref dest
  local repo="$1" ref="$2" dest="$3"
  git -C "$repo" rev-parse --verify -q "$ref^{commit}" >/dev/null || return 1
  rm -rf "$dest" && mkdir -p "$dest"
  git -C "$repo" archive "$ref" | tar -x -C "$dest"
  echo "$(git -C "$repo" rev-parse "$ref^{commit}")" > "$dest/.longdep-ref"
}

mkdir -p "$deps/src" "$deps/wheels"
rm -f "$deps/wheels"/*.whl
export_ref "$prolong" "$PROLONG_REF" "$deps/src/ProLong"
ok=
for r in $TRANSFORMERS_REFS; do
  if export_ref "$transformers" "$r" "$deps/src/transformers"; then ok=$r; break; fi
done
[ -n "$ok" ] || { echo "setup_reference.sh: $transformers has none of: $TRANSFORMERS_REFS" >&2; exit 1; }
export_ref "$hub" "$HUB_REF" "$deps/src/huggingface_hub" || { echo "setup_reference.sh: $hub has no $HUB_REF" >&2; exit 1; }
export_ref "$safetensors" "$SAFETENSORS_REF" "$deps/src/safetensors" || { echo "setup_reference.sh: $safetensors has no $SAFETENSORS_REF" >&2; exit 1; }

# safetensors' Python binding asks for pyo3 0.18.1; Debian ships 0.17.3, which compiles it unchanged.
# Cargo works offline from Debian's crate registry.
sed -i 's/pyo3 = { version = "0.18.1"/pyo3 = { version = "0.17.3"/' "$deps/src/safetensors/bindings/python/Cargo.toml"
rm -f "$deps/src/safetensors/bindings/python/Cargo.lock"
mkdir -p "$deps/cargo-home"
cat > "$deps/cargo-home/config.toml" <<'CFG'
[source.crates-io]
replace-with = "debian"
[source.debian]
directory = "/usr/share/cargo/registry"
[net]
offline = true
CFG

wheel() { (cd "$1" && CARGO_HOME="$deps/cargo-home" PYO3_PYTHON="$PY" \
  "$PY" -m pip wheel --no-build-isolation --no-deps --no-index -q -w "$deps/wheels" .); }
wheel "$deps/src/safetensors/bindings/python"
wheel "$deps/src/huggingface_hub"
wheel "$deps/src/transformers"
rm -rf "$deps/site"
"$PY" -m pip install -q --no-deps --no-index --target "$deps/site" "$deps/wheels"/*.whl

PYTHONPATH="$deps/site" "$PY" - <<'PYCHECK'
import torch, transformers, huggingface_hub, safetensors
print(f"reference environment: torch {torch.__version__}, transformers {transformers.__version__}, "
      f"huggingface_hub {huggingface_hub.__version__}, safetensors (built from 0.3.1)")
PYCHECK
echo "transformers ref: $ok ($(cat "$deps/src/transformers/.longdep-ref")); ProLong: $(cat "$deps/src/ProLong/.longdep-ref")"
