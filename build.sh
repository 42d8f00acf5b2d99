#!/usr/bin/env bash
# LongDepEngine build.
#   ./build.sh            the whole set-up: what the kernels and tests need (installed with apt-get when root on
#                         Debian/Ubuntu; otherwise one line says what is skipped), the CUDA kernels when nvcc is there,
#                         the kernel emulator, restore + Release build
#   ./build.sh deps       only install what the build and tests need; fails when it cannot (not root, no apt-get)
#   ./build.sh kernels    build only the kernels (build/native/longdep_kernels.fatbin) and their CPU emulator
#   ./build.sh test       build, then run the test suite (the README's test command)
#   ./build.sh bundle     self-contained trimmed longdep + kernels for a GPU node: dist/longdep-linux-x64/
# LONGDEP_NO_INSTALL=1 never installs anything (it only says what is missing).
# Idempotent: a second run only rebuilds what changed.
set -euo pipefail
cd "$(dirname "$0")"
ROOT=$PWD
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1

say() { printf '[build] %s\n' "$*" >&2; }
die() { printf 'build.sh: %s\n' "$*" >&2; exit 1; }

need_dotnet() {
  command -v dotnet >/dev/null 2>&1 || die "the .NET SDK (10.0) is not on PATH; install it (https://dot.net) and run ./build.sh again"
  local major
  major=$(dotnet --version 2>/dev/null | cut -d. -f1)
  [ "${major:-0}" -ge 10 ] || die "the .NET SDK 10 or newer is needed; found $(dotnet --version 2>/dev/null || echo none)"
}

# The nvcc native/build-kernels.sh would use ("path version"), or nothing when none runs.
find_nvcc() { bash native/build-kernels.sh --find-nvcc 2>/dev/null || true; }

have_cxx() {
  [ -n "${CXX:-}" ] || command -v g++ >/dev/null 2>&1 || command -v clang++ >/dev/null 2>&1 || command -v clang++-14 >/dev/null 2>&1
}

have_font() { [ -n "${LONGDEP_FONT:-}" ] || [ -n "$(find /usr/share/fonts /usr/local/share/fonts -name '*.ttf' 2>/dev/null | head -1)" ]; }

# Fills MISSING_PACKAGES (Debian names) and MISSING_WHAT (what each gap costs) from what this machine lacks.
check_deps() {
  MISSING_PACKAGES=(); MISSING_WHAT=()
  local nvcc; nvcc=$(find_nvcc)
  if [ -z "$nvcc" ]; then
    MISSING_PACKAGES+=(nvidia-cuda-toolkit nvidia-cuda-dev); MISSING_WHAT+=("the CUDA kernels (no nvcc)")
  fi
  # nvcc 11.x rejects gcc newer than 11: Debian 12's toolkit (11.8) builds with clang-14.
  local gcc_major; gcc_major=$( (gcc -dumpversion 2>/dev/null || echo 0) | cut -d. -f1)
  if [ -z "${NVCC_CCBIN:-}" ] && ! command -v clang-14 >/dev/null 2>&1 && [ "$gcc_major" -gt 11 ] \
     && { [ -z "$nvcc" ] || [ "${nvcc##* }" \< "12" ]; }; then
    MISSING_PACKAGES+=(clang-14); [ -n "$nvcc" ] && MISSING_WHAT+=("the CUDA kernels (nvcc ${nvcc##* } needs clang-14 as host compiler)")
  fi
  if ! have_cxx; then MISSING_PACKAGES+=(g++); MISSING_WHAT+=("the kernel emulator and emulated GPU (no C++ compiler)"); fi
  if ! command -v chromium >/dev/null 2>&1 && ! command -v chromium-browser >/dev/null 2>&1; then
    MISSING_PACKAGES+=(chromium); MISSING_WHAT+=("the report's browser test (no chromium)")
  fi
  if ! have_font; then MISSING_PACKAGES+=(fonts-dejavu-core); MISSING_WHAT+=("chart text (no TrueType font)"); fi
  # llama.cpp (LLamaSharp.Backend.Cpu, the model tests' reference) links OpenMP's runtime.
  if [ -z "$(find /lib /usr/lib -name 'libgomp.so.1' 2>/dev/null | head -1)" ]; then
    MISSING_PACKAGES+=(libgomp1); MISSING_WHAT+=("the llama.cpp reference tests (no libgomp.so.1)")
  fi
}

# Why this machine cannot install packages, or nothing when it can.
cannot_install() {
  if [ "${LONGDEP_NO_INSTALL:-0}" = 1 ]; then echo "LONGDEP_NO_INSTALL=1, so nothing is installed"
  elif ! command -v apt-get >/dev/null 2>&1; then echo "no apt-get here, so nothing is installed"
  elif [ "$(id -u)" != 0 ]; then echo "not root, so nothing is installed"
  fi
}

apt_install() {
  local log; log=$(mktemp -t longdep-apt.XXXXXX)
  local src=/etc/apt/sources.list.d/debian.sources
  # Debian's nvidia-cuda-toolkit is in non-free.
  if [ -f "$src" ] && ! grep -q 'non-free' "$src"; then
    sed -i 's/^Components: main$/Components: main contrib non-free non-free-firmware/' "$src"
  fi
  if [ -f /etc/apt/sources.list ] && grep -q '^deb .*debian' /etc/apt/sources.list && ! grep -q non-free /etc/apt/sources.list; then
    sed -i '/^deb .*debian/ s/ main$/ main contrib non-free non-free-firmware/' /etc/apt/sources.list
  fi
  if apt-get update -q >"$log" 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@" >>"$log" 2>&1; then
    rm -f "$log"; return 0
  fi
  say "apt-get could not install $* (its output: $log)"
  return 1
}

# What the full build and tests need beyond the .NET SDK: installed when this is root with apt-get, otherwise one line
# says what is skipped and how to get it. With `strict` (./build.sh deps) a gap that cannot be filled is an error.
setup() {
  local strict=${1:-}
  check_deps
  if [ ${#MISSING_PACKAGES[@]} = 0 ]; then
    local nvcc; nvcc=$(find_nvcc)
    say "toolchain complete: nvcc ${nvcc##* } (CUDA kernels), a C++ compiler (kernel emulator), chromium, a TrueType font"
    return 0
  fi
  local why; why=$(cannot_install)
  if [ -z "$why" ]; then
    say "installing ${MISSING_PACKAGES[*]} with apt-get, for $(IFS=';'; echo "${MISSING_WHAT[*]}" | sed 's/;/, /g; s/\(.*\), /\1 and /')"
    if apt_install "${MISSING_PACKAGES[@]}"; then check_deps; [ ${#MISSING_PACKAGES[@]} = 0 ] && return 0; why="apt-get installed them but they are still missing"; fi
    [ -n "$why" ] || why="apt-get could not install them"
  fi
  local what; what=$(IFS=';'; echo "${MISSING_WHAT[*]}" | sed 's/;/, /g; s/\(.*\), /\1 and /')
  [ -z "$strict" ] || die "missing ${MISSING_PACKAGES[*]} ($why); install them (Debian/Ubuntu: run './build.sh deps' as root)"
  say "$why: skipping $what; the CPU engine and the kernel emulator build, and tests that need what is missing are skipped (to get it: ./build.sh as root on Debian/Ubuntu, or install ${MISSING_PACKAGES[*]} yourself)"
}

kernels() {
  local nvcc; nvcc=$(find_nvcc)
  if [ -z "$nvcc" ]; then
    [ "${1:-}" = quiet ] || say "nvcc not found: skipping the CUDA kernels (run ./build.sh as root on Debian/Ubuntu to install it); the CPU path builds without them"
    return 0
  fi
  local fatbin="$ROOT/build/native/longdep_kernels.fatbin"
  if [ -f "$fatbin" ] && [ -z "$(find kernels native -path native/emu -prune -o -newer "$fatbin" -type f -print 2>/dev/null | head -1)" ]; then
    say "kernels up to date ($fatbin)"
    return 0
  fi
  bash native/build-kernels.sh "$ROOT/build/native"
}

emulator() {
  # The kernels compiled as host C++ (native/emu): the tests run the kernel source on the CPU against the twins, and
  # behind an emulated CUDA driver and cuBLAS (build/native/emu-cuda) through the host's real CUDA path.
  local lib="$ROOT/build/native/liblongdep_kernel_emu.so" image="$ROOT/build/native/emu-cuda/longdep_kernels.emu"
  if [ -f "$lib" ] && [ -f "$image" ] && [ -z "$(find kernels native -newer "$image" -type f 2>/dev/null | head -1)" ]; then
    say "kernel emulator up to date ($lib)"
    return 0
  fi
  if ! have_cxx; then
    [ "${1:-}" = quiet ] || say "no C++ compiler: skipping the kernel emulator (its tests will say so)"
    return 0
  fi
  bash native/build-emulator.sh "$ROOT/build/native"
}

build() {
  need_dotnet
  setup
  kernels quiet
  emulator quiet
  say "dotnet build (Release)"
  dotnet build LongDepEngine.sln -c Release -nologo -clp:ErrorsOnly -v:q
}

run_tests() {
  # The README's test command.
  dotnet test LongDepEngine.sln -c Release --no-build -nologo
}

bundle() {
  need_dotnet
  kernels
  local out="$ROOT/dist/longdep-linux-x64"
  rm -rf "$out"
  say "dotnet publish: self-contained, trimmed, linux-x64 -> $out"
  dotnet publish src/LongDep.Cli/LongDep.Cli.csproj -c Release -r linux-x64 --self-contained true \
    -p:PublishTrimmed=true -p:TrimMode=partial -p:SuppressTrimAnalysisWarnings=true -p:TreatWarningsAsErrors=false \
    -p:InvariantGlobalization=true -p:DebugType=none \
    -p:GenerateDocumentationFile=false -o "$out" -nologo -clp:ErrorsOnly -v:q
  mkdir -p "$out/kernels-src/kernels" "$out/kernels-src/native"
  cp kernels/*.cu "$out/kernels-src/kernels/" 2>/dev/null || true
  cp kernels/*.cuh "$out/kernels-src/kernels/" 2>/dev/null || true
  cp native/*.cu native/*.c native/build-kernels.sh "$out/kernels-src/native/" 2>/dev/null || true
  if [ -f build/native/longdep_kernels.fatbin ]; then cp build/native/longdep_kernels.fatbin "$out/"; fi
  cat > "$out/build-kernels.sh" <<'EOS'
#!/usr/bin/env bash
# Rebuilds the kernels with this machine's nvcc (CUDA 12/13: adds sm_90a) next to the longdep executable.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
bash "$here/kernels-src/native/build-kernels.sh" "$here"
EOS
  chmod +x "$out/build-kernels.sh" "$out/longdep"
  # The GPU session's script (bench/gpu-session.sh), the PyTorch baseline and its tests travel with the bundle.
  if [ -d bench ]; then
    cp -r bench "$out/"
    find "$out/bench" -name __pycache__ -type d -prune -exec rm -rf {} +
    chmod +x "$out/bench/gpu-session.sh" "$out/bench/baseline/baseline.py" "$out/bench/baseline/crosscheck.py"
  fi
  du -sh "$out" >&2
}

case "${1:-build}" in
  build) build ;;
  deps) setup strict ;;
  kernels) kernels; emulator ;;
  test) build; run_tests ;;
  bundle) bundle ;;
  *) die "unknown command '$1' (expected: build, deps, kernels, test, bundle)" ;;
esac
