// Shared device helpers for the LongDep kernels: element conversion, warp and block reductions.
//
// Conventions used by every kernel file:
//  - Kernels are `extern "C" __global__` so the host finds them by their plain names (see
//    src/LongDep.Cuda/KernelNames.cs, the one list of every name the host launches).
//  - Element indices are computed in size_t: rows * width can pass 2^31 at long windows.
//  - Every block-level reduction requires blockDim.x to be a multiple of 32 and at most 1024;
//    the host launches 128 or 256 threads.
#pragma once

#ifdef LONGDEP_EMULATE
#include "../native/emu/cuda_emu.h" // the CPU kernel emulator (native/emu), not the fatbin
#else
#include <cuda_fp16.h>
#include <cuda_bf16.h>
#endif
#include <stdint.h>

namespace longdep {

__device__ __forceinline__ float neg_inf() { return __int_as_float(0xff800000); }
__device__ __forceinline__ float quiet_nan() { return __int_as_float(0x7fc00000); }

__device__ __forceinline__ float to_f32(float v) { return v; }
__device__ __forceinline__ float to_f32(__half v) { return __half2float(v); }
__device__ __forceinline__ float to_f32(__nv_bfloat16 v) { return __bfloat162float(v); }

template <typename T> __device__ __forceinline__ T from_f32(float v);
template <> __device__ __forceinline__ float from_f32<float>(float v) { return v; }
template <> __device__ __forceinline__ __half from_f32<__half>(float v) { return __float2half_rn(v); }
template <> __device__ __forceinline__ __nv_bfloat16 from_f32<__nv_bfloat16>(float v) { return __float2bfloat16_rn(v); }

__device__ __forceinline__ float warp_sum(float v)
{
#pragma unroll
    for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_xor_sync(0xffffffffu, v, offset);
    return v;
}

__device__ __forceinline__ float warp_max(float v)
{
#pragma unroll
    for (int offset = 16; offset > 0; offset >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, offset));
    return v;
}

// Sum of v over the whole block; every thread of the block must call it and gets the total.
__device__ __forceinline__ float block_sum(float v)
{
    __shared__ float partial[32];
    __shared__ float total;
    const int lane = threadIdx.x & 31;
    const int warp = threadIdx.x >> 5;
    const int warps = (blockDim.x + 31) >> 5;
    v = warp_sum(v);
    if (lane == 0) partial[warp] = v;
    __syncthreads();
    if (warp == 0)
    {
        float t = lane < warps ? partial[lane] : 0.0f;
        t = warp_sum(t);
        if (lane == 0) total = t;
    }
    __syncthreads();
    const float result = total;
    __syncthreads(); // the scratch may be reused by the next reduction
    return result;
}

// Maximum of v over the whole block; same contract as block_sum.
__device__ __forceinline__ float block_max(float v)
{
    __shared__ float partial[32];
    __shared__ float total;
    const int lane = threadIdx.x & 31;
    const int warp = threadIdx.x >> 5;
    const int warps = (blockDim.x + 31) >> 5;
    v = warp_max(v);
    if (lane == 0) partial[warp] = v;
    __syncthreads();
    if (warp == 0)
    {
        float t = lane < warps ? partial[lane] : neg_inf();
        t = warp_max(t);
        if (lane == 0) total = t;
    }
    __syncthreads();
    const float result = total;
    __syncthreads();
    return result;
}

// LADM pass 2's key tiles (pfs.cu, pfs_mma.cu): with a tile list, span `span`'s row of tileList (tileStride ints) holds
// its count n, then the n 16-key tiles (keys [16 t, 16 t + 16)) one of its PFS windows reads, in increasing order, all
// below the span's start; pass 2 computes and writes only their key columns, its blocks taking the listed tiles in
// order. Without a list (null) a span's tiles are all those below its start: tile i is keys [16 i, 16 i + 16).
constexpr int kPfsKeyTile = 16;
__device__ __forceinline__ int pfs_tile_count(const int* tileList, int tileStride, int span, int start)
{
    return tileList == nullptr ? (start + kPfsKeyTile - 1) / kPfsKeyTile : tileList[(size_t)span * tileStride];
}
__device__ __forceinline__ int pfs_tile(const int* tileList, int tileStride, int span, int i)
{
    return tileList == nullptr ? i : tileList[(size_t)span * tileStride + 1 + i];
}

} // namespace longdep

// Dynamic shared memory, declared once with one type for the whole unity build.
#ifdef LONGDEP_EMULATE
#define longdep_dynamic_smem (longdep_emu::dynamic_smem)
#else
extern __shared__ __align__(16) unsigned char longdep_dynamic_smem[];
#endif
