#!/usr/bin/env bash
# Builds the CPU kernel emulator: kernels/*.cu compiled as host C++ with native/emu (no nvcc needed)
#   native/emu/kernel_emu.cpp        -> <outdir>/liblongdep_kernel_emu.so
#   native/emu/cuda_driver_emu.cpp   -> <outdir>/emu-cuda/lib64/libcuda.so.1, with libcublas.so.12 a link to it: an
#                                       emulated GPU for the host's real CUDA path (CUDA_HOME=<outdir>/emu-cuda)
#   native/emu/nvtx_recorder.cpp     -> <outdir>/emu-cuda/lib64/liblongdep_nvtx_recorder.so (NVTX ranges to a file)
#   native/emu/emulator_image.cpp    -> <outdir>/emu-cuda/longdep_kernels.emu: the emulated driver's stand-in for the
#                                       fatbin where nvcc is missing (LONGDEP_KERNELS=<outdir>/emu-cuda/longdep_kernels.emu)
# Usage: native/build-emulator.sh [outdir]          (default: <repo>/build/native)
# Environment: CXX (a C++20 compiler; default g++, then clang++, clang++-14).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"
outdir="${1:-$repo/build/native}"
mkdir -p "$outdir"

cxx="${CXX:-}"
if [[ -z "$cxx" ]]; then
    for candidate in g++ clang++ clang++-14; do
        if command -v "$candidate" >/dev/null 2>&1; then cxx="$candidate"; break; fi
    done
fi
if [[ -z "$cxx" ]]; then
    echo "build-emulator: no C++ compiler found (set CXX, or install g++)." >&2
    exit 1
fi

# -fno-strict-aliasing: the kernels read f16 pairs and float2 through reinterpret_cast, as CUDA code does.
"$cxx" -std=c++20 -O2 -g0 -fPIC -shared -fno-strict-aliasing -Wall -Wno-unknown-pragmas \
    -o "$outdir/liblongdep_kernel_emu.so" "$here/emu/kernel_emu.cpp"
echo "build-emulator: wrote $outdir/liblongdep_kernel_emu.so ($cxx)"

# The emulated driver loads the emulator from two folders up ($ORIGIN/../..).
lib="$outdir/emu-cuda/lib64"
mkdir -p "$lib"
"$cxx" -std=c++20 -O2 -g0 -fPIC -shared -Wall -o "$lib/libcuda.so.1" "$here/emu/cuda_driver_emu.cpp" \
    -L"$outdir" -llongdep_kernel_emu -Wl,-rpath,'$ORIGIN/../..' -Wl,-soname,libcuda.so.1
ln -sf libcuda.so.1 "$lib/libcuda.so"
ln -sf libcuda.so.1 "$lib/libcublas.so.12"
echo "build-emulator: wrote $lib/libcuda.so.1 and libcublas.so.12 (emulated GPU: CUDA_HOME=$outdir/emu-cuda)"

# An NVTX injection library that logs range pushes and pops (NVTX_INJECTION64_PATH=..., LONGDEP_NVTX_LOG=file).
"$cxx" -std=c++20 -O2 -g0 -fPIC -shared -Wall -o "$lib/liblongdep_nvtx_recorder.so" "$here/emu/nvtx_recorder.cpp"
echo "build-emulator: wrote $lib/liblongdep_nvtx_recorder.so"

# The emulator's module image: the kernel names the emulated driver accepts in place of nvcc's fatbin.
tool="$(mktemp -d)"
trap 'rm -rf "$tool"' EXIT
"$cxx" -std=c++20 -O1 -g0 -Wall -o "$tool/emulator_image" "$here/emu/emulator_image.cpp" \
    -L"$outdir" -llongdep_kernel_emu -Wl,-rpath,"$(cd "$outdir" && pwd)"
count="$("$tool/emulator_image" "$outdir/emu-cuda/longdep_kernels.emu")"
echo "build-emulator: wrote $outdir/emu-cuda/longdep_kernels.emu ($count; the fatbin's stand-in on the emulated GPU)"
