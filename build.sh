#!/usr/bin/env bash
# LongDepEngine build.
#   ./build.sh            restore + Release build of the solution, and the CUDA kernels when nvcc is present
#   ./build.sh deps       install what the build and tests need on Debian (CUDA toolkit, clang-14, chromium, a font; root)
#   ./build.sh kernels    build only the kernels (build/native/longdep_kernels.fatbin) and their CPU emulator
#   ./build.sh test       build, then run the test suite (the README's test command)
#   ./build.sh bundle     self-contained trimmed longdep + kernels for a GPU node: dist/longdep-linux-x64/
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

deps() {
  # What the full build and test suite need beyond the .NET SDK: the CUDA toolkit (kernels, cuobjdump), clang-14 (nvcc
  # 11.8's host compiler on Debian 12), chromium (the report test renders headless), a TrueType font (chart text) and
  # libgomp1 (llama.cpp's OpenMP runtime, for the model tests).
  local missing=()
  command -v nvcc >/dev/null 2>&1 || missing+=(nvidia-cuda-toolkit nvidia-cuda-dev)
  command -v clang-14 >/dev/null 2>&1 || missing+=(clang-14)
  command -v g++ >/dev/null 2>&1 || command -v clang++ >/dev/null 2>&1 || missing+=(g++) # the kernel emulator
  command -v chromium >/dev/null 2>&1 || missing+=(chromium)
  # llama.cpp (LLamaSharp.Backend.Cpu, the model tests' reference) links OpenMP's runtime.
  [ -n "$(find /lib /usr/lib -name 'libgomp.so.1' 2>/dev/null | head -1)" ] || missing+=(libgomp1)
  [ -n "$(find /usr/share/fonts -name '*.ttf' 2>/dev/null | head -1)" ] || missing+=(fonts-dejavu-core)
  if [ ${#missing[@]} = 0 ]; then say "dependencies present: $(nvcc --version | tail -1)"; return 0; fi
  command -v apt-get >/dev/null 2>&1 || die "missing ${missing[*]} and this is not a Debian/Ubuntu machine: install them by hand"
  [ "$(id -u)" = 0 ] || die "missing ${missing[*]}; run './build.sh deps' as root to install them"
  say "installing ${missing[*]}"
  local src=/etc/apt/sources.list.d/debian.sources
  if [ -f "$src" ] && ! grep -q 'non-free' "$src"; then
    sed -i 's/^Components: main$/Components: main contrib non-free non-free-firmware/' "$src"
  fi
  if [ -f /etc/apt/sources.list ] && grep -q '^deb .*debian' /etc/apt/sources.list && ! grep -q non-free /etc/apt/sources.list; then
    sed -i '/^deb .*debian/ s/ main$/ main contrib non-free non-free-firmware/' /etc/apt/sources.list
  fi
  apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
  command -v nvcc >/dev/null 2>&1 || die "nvidia-cuda-toolkit installed but nvcc is still not on PATH"
  say "nvcc: $(nvcc --version | tail -1)"
}

kernels() {
  if ! command -v nvcc >/dev/null 2>&1; then
    say "nvcc not found: skipping the CUDA kernels (run './build.sh deps' as root to install it); the CPU path builds without them"
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
  local lib="$ROOT/build/native/liblongdep_kernel_emu.so" driver="$ROOT/build/native/emu-cuda/lib64/liblongdep_nvtx_recorder.so"
  if [ -f "$lib" ] && [ -f "$driver" ] && [ -z "$(find kernels native -newer "$driver" -type f 2>/dev/null | head -1)" ]; then
    say "kernel emulator up to date ($lib)"
    return 0
  fi
  if ! command -v g++ >/dev/null 2>&1 && ! command -v clang++ >/dev/null 2>&1 && ! command -v clang++-14 >/dev/null 2>&1 && [ -z "${CXX:-}" ]; then
    say "no C++ compiler: skipping the kernel emulator (its tests will say so)"
    return 0
  fi
  bash native/build-emulator.sh "$ROOT/build/native"
}

build() {
  need_dotnet
  kernels
  emulator
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
  deps) deps ;;
  kernels) kernels; emulator ;;
  test) build; run_tests ;;
  bundle) bundle ;;
  *) die "unknown command '$1' (expected: build, deps, kernels, test, bundle)" ;;
esac
