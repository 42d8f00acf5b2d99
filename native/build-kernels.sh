#!/usr/bin/env bash
# Builds the LongDep CUDA kernels with plain nvcc (no CMake needed; the GPU node may lack it):
#   native/longdep_kernels.cu (includes kernels/*.cu) -> <outdir>/longdep_kernels.fatbin
#   native/nvtx_shim.c (when NVTX3 headers are found)  -> <outdir>/liblongdep_nvtx.so
# Usage: native/build-kernels.sh [outdir]          (default: <repo>/build/native)
#        native/build-kernels.sh --find-nvcc       prints the nvcc it would use and its CUDA version; exit 1 if none runs
# Environment: NVCC (compiler path), CUDA_HOME / CUDA_PATH (toolkit root), NVCC_CCBIN (host compiler),
#              CC (C compiler for the NVTX shim), LONGDEP_NVCC_FLAGS (extra nvcc flags).
# Targets sm_90 SASS + compute_90 PTX (JIT for newer GPUs); nvcc >= 12 adds sm_90a SASS.
# The same choices are made by cmake/CudaArch.cmake and cmake/HostCompiler.cmake.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"
find_only=0
if [[ "${1:-}" == "--find-nvcc" ]]; then find_only=1; shift; fi
outdir="${1:-$repo/build/native}"

find_nvcc() {
    if [[ -n "${NVCC:-}" ]]; then echo "$NVCC"; return 0; fi
    local root
    for root in "${CUDA_HOME:-}" "${CUDA_PATH:-}"; do
        if [[ -n "$root" && -x "$root/bin/nvcc" ]]; then echo "$root/bin/nvcc"; return 0; fi
    done
    if command -v nvcc >/dev/null 2>&1; then command -v nvcc; return 0; fi
    local candidate
    for candidate in /usr/local/cuda/bin/nvcc $(ls -d /usr/local/cuda-*/bin/nvcc 2>/dev/null | sort -rV); do
        if [[ -x "$candidate" ]]; then echo "$candidate"; return 0; fi
    done
    return 1
}

if ! nvcc_bin="$(find_nvcc)"; then
    echo "build-kernels: nvcc not found (looked at \$NVCC, \$CUDA_HOME/bin, \$CUDA_PATH/bin, PATH, /usr/local/cuda*/bin)." >&2
    echo "build-kernels: install the CUDA toolkit or set CUDA_HOME." >&2
    exit 1
fi

version="$( ("$nvcc_bin" --version 2>/dev/null || true) | sed -n 's/.*release \([0-9][0-9]*\)\.\([0-9][0-9]*\).*/\1.\2/p' | head -n1)"
if [[ -z "$version" ]]; then
    echo "build-kernels: could not read the version from '$nvcc_bin --version'." >&2
    exit 1
fi
major="${version%%.*}"
if (( find_only )); then echo "$nvcc_bin $version"; exit 0; fi
mkdir -p "$outdir"
outdir="$(cd "$outdir" && pwd)"

# Architectures: SASS for Hopper, PTX so newer GPUs can JIT; sm_90a (wgmma/TMA features) needs nvcc 12+.
arch_flags=(-gencode "arch=compute_90,code=sm_90" -gencode "arch=compute_90,code=compute_90")
if (( major >= 12 )); then
    arch_flags+=(-gencode "arch=compute_90a,code=sm_90a")
fi

# Host compiler: nvcc 11.x rejects gcc newer than 11; use clang-14 (supported by 11.8) when it is there.
ccbin_flags=()
if [[ -n "${NVCC_CCBIN:-}" ]]; then
    ccbin_flags=(-ccbin "$NVCC_CCBIN")
elif (( major < 12 )); then
    gcc_major="$( (gcc -dumpversion 2>/dev/null || echo 0) | cut -d. -f1)"
    if (( gcc_major > 11 )); then
        if command -v clang-14 >/dev/null 2>&1; then
            ccbin_flags=(-ccbin clang-14)
        else
            echo "build-kernels: nvcc $version does not support gcc $gcc_major; install clang-14 or set NVCC_CCBIN." >&2
            exit 1
        fi
    fi
fi

extra_flags=()
if [[ -n "${LONGDEP_NVCC_FLAGS:-}" ]]; then
    read -r -a extra_flags <<< "$LONGDEP_NVCC_FLAGS"
fi

echo "build-kernels: $nvcc_bin (CUDA $version) ${ccbin_flags[*]:-} -> $outdir"
"$nvcc_bin" "${ccbin_flags[@]}" -std=c++17 -O3 -lineinfo -fatbin "${arch_flags[@]}" "${extra_flags[@]}" \
    -o "$outdir/longdep_kernels.fatbin" "$here/longdep_kernels.cu"
echo "build-kernels: wrote $outdir/longdep_kernels.fatbin"

# NVTX shim: header-only NVTX3 from the toolkit (or the distribution's /usr/include/nvtx3).
cuda_root="$(cd "$(dirname "$nvcc_bin")/.." && pwd)"
nvtx_include=""
for dir in "$cuda_root/include" "$cuda_root/targets/x86_64-linux/include" /usr/include /usr/local/cuda/include; do
    if [[ -f "$dir/nvtx3/nvToolsExt.h" ]]; then nvtx_include="$dir"; break; fi
done
cc_bin="${CC:-}"
if [[ -z "$cc_bin" ]]; then
    for candidate in cc gcc clang; do
        if command -v "$candidate" >/dev/null 2>&1; then cc_bin="$candidate"; break; fi
    done
fi
if [[ -z "$nvtx_include" ]]; then
    echo "build-kernels: NVTX3 headers not found; skipping liblongdep_nvtx.so (NVTX ranges become no-ops)."
elif [[ -z "$cc_bin" ]]; then
    echo "build-kernels: no C compiler found; skipping liblongdep_nvtx.so (NVTX ranges become no-ops)."
else
    "$cc_bin" -O2 -shared -fPIC -I"$nvtx_include" -o "$outdir/liblongdep_nvtx.so" "$here/nvtx_shim.c" -ldl
    echo "build-kernels: wrote $outdir/liblongdep_nvtx.so"
fi
