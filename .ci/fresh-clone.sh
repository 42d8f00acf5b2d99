#!/usr/bin/env bash
# A newcomer's first hour, checked: a fresh clone of this repository's HEAD into a temporary folder, then exactly the
# README's two commands (`./build.sh`, then `dotnet test LongDepEngine.sln -c Release`). Every test must pass or be
# skipped with its reason; nothing may fail.
#   .ci/fresh-clone.sh           on this machine as it is (with nvcc: the kernels are built and their tests run)
#   .ci/fresh-clone.sh --bare    on the same machine with the CUDA toolkit (nvcc, cuobjdump, ...), chromium, apt-get and
#                                the fonts hidden by a mount namespace (an overlay over /usr/bin with those names
#                                whited out): a machine where ./build.sh can neither find nor install them
# Needs git, and for --bare unshare (util-linux) as root or with user namespaces. Commits only: uncommitted changes
# are not in the clone. Takes 10-20 minutes on 2 cores (a cold build of everything). Exit 0 when nothing failed.
# Environment: KEEP=1 keeps the clone (its path is printed).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

hidden_tools=(nvcc cuobjdump nvdisasm ptxas fatbinary nvlink cudafe++ nvprune cu++filt cuda-gdb compute-sanitizer
              chromium chromium-browser google-chrome google-chrome-stable apt-get apt)

if [ "${1:-}" = --bare ] && [ -z "${LONGDEP_FRESH_CLONE_HIDDEN:-}" ]; then
  command -v unshare >/dev/null 2>&1 || { echo "fresh-clone: --bare needs unshare (util-linux)" >&2; exit 2; }
  if [ "$(id -u)" = 0 ]; then ns=(unshare -m); else ns=(unshare -r -m); fi
  exec "${ns[@]}" env LONGDEP_FRESH_CLONE_HIDDEN=1 bash "${BASH_SOURCE[0]}" --bare
fi

mode="as this machine is"
if [ "${1:-}" = --bare ]; then
  # Inside the namespace: hide the tools under /usr/bin (an overlay whose upper layer whites them out), any CUDA
  # toolkit under /usr/local, and the fonts.
  mount --make-rprivate /
  layer="$(mktemp -d -t longdep-hide.XXXXXX)"
  mount -t tmpfs tmpfs "$layer"
  mkdir "$layer/up" "$layer/work" "$layer/empty"
  for tool in "${hidden_tools[@]}"; do mknod "$layer/up/$tool" c 0 0; done
  mount -t overlay overlay -o "lowerdir=/usr/bin,upperdir=$layer/up,workdir=$layer/work" /usr/bin
  for dir in /usr/local/cuda* /usr/share/fonts /usr/local/share/fonts; do
    [ -d "$dir" ] && mount --bind "$layer/empty" "$dir"
  done
  hash -r
  for tool in nvcc chromium apt-get; do
    if command -v "$tool" >/dev/null 2>&1; then echo "fresh-clone: could not hide $tool ($(command -v "$tool"))" >&2; exit 2; fi
  done
  mode="with nvcc, the CUDA toolkit, chromium, apt-get and the fonts hidden"
elif [ -n "${1:-}" ]; then
  echo "fresh-clone: unknown option '$1' (expected: --bare or nothing)" >&2
  exit 2
fi

work="$(mktemp -d -t longdep-fresh.XXXXXX)"
[ "${KEEP:-0}" = 1 ] || trap 'rm -rf "$work"' EXIT
log="$work/log"
commit="$(git -C "$here" rev-parse --short HEAD)"
echo "fresh-clone: $commit into $work/LongDepEngine, $mode"
git clone --quiet "$here" "$work/LongDepEngine"
cd "$work/LongDepEngine"

# A newcomer's environment: none of the settings a developer or CI may have made.
clean=(env -u CI -u CUDA_HOME -u CUDA_PATH -u NVCC -u NVCC_CCBIN -u LONGDEP_KERNELS -u LONGDEP_FONT -u LONGDEP_NO_INSTALL
       -u LONGDEP_KERNEL_SET -u LONGDEP_WIDE_WARPS -u LONGDEP_WIDE_ATTENTION -u CHROMIUM -u CHROME_BIN)

start=$SECONDS
# The README's two commands:
"${clean[@]}" ./build.sh 2>&1 | tee "$log"
build_status=${PIPESTATUS[0]}
build_s=$((SECONDS - start))
[ "$build_status" = 0 ] || { echo "fresh-clone: ./build.sh failed (exit $build_status)"; exit 1; }
start=$SECONDS
# (VSTestLogger adds a results file per test project, for the skipped tests' reasons; the command is the README's.)
"${clean[@]}" VSTestLogger="trx%3BLogFileName=fresh-clone.trx" dotnet test LongDepEngine.sln -c Release 2>&1 | tee "$log.test"
test_status=${PIPESTATUS[0]}
test_s=$((SECONDS - start))

echo
echo "fresh-clone: ./build.sh ${build_s}s; its set-up line(s):"
grep -E '^\[build\] ' "$log" | grep -vE 'dotnet build|up to date' | sed 's/^/  /' || true
echo "fresh-clone: built under build/native: $(cd build/native 2>/dev/null && ls -1 longdep_kernels.fatbin liblongdep_nvtx.so \
  liblongdep_kernel_emu.so emu-cuda/longdep_kernels.emu 2>/dev/null | tr '\n' ' ')"
echo "fresh-clone: dotnet test ${test_s}s (exit $test_status):"
grep -E '^(Passed|Failed)!' "$log.test" | sed 's/^/  /'
# Each skipped test with its reason, from the results files (reasons shared by several tests are listed once).
python3 - tests/*/TestResults/fresh-clone.trx <<'PY' || true
import re, sys, xml.etree.ElementTree as ET
ns = {"t": "http://microsoft.com/schemas/VisualStudio/TeamTest/2010"}
by_reason = {}
for path in sys.argv[1:]:
    project = path.split("/")[1]
    for r in ET.parse(path).getroot().iterfind(".//t:UnitTestResult", ns):
        if r.get("outcome") != "NotExecuted": continue
        m = r.find("t:Output/t:ErrorInfo/t:Message", ns)
        reason = re.sub(r"\s+", " ", m.text if m is not None and m.text else "(no reason given)").strip()
        by_reason.setdefault(reason, []).append(f"{project}: {r.get('testName')}")
total = sum(len(v) for v in by_reason.values())
print(f"fresh-clone: {total} skipped" + (":" if total else ""))
for reason, tests in by_reason.items():
    print(f"  {len(tests)} for: {reason}")
    for t in tests[:4]: print(f"      {t}")
    if len(tests) > 4: print(f"      ... {len(tests) - 4} more")
PY
failed=$(grep -E '^(Passed|Failed)!' "$log.test" | sed -nE 's/.*Failed: *([0-9]+).*/\1/p' | awk '{ n += $1 } END { print n + 0 }')
projects=$(grep -cE '^(Passed|Failed)!' "$log.test" || true)
if [ "$test_status" = 0 ] && [ "$failed" = 0 ] && [ "$projects" -ge 5 ]; then
  echo "fresh-clone: PASS ($mode): $projects test projects, none failed"
  exit 0
fi
echo "fresh-clone: FAIL ($mode): exit $test_status, $failed failed over $projects test projects"
exit 1
