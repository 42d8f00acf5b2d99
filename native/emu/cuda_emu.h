// CPU emulation of the CUDA features the LongDep kernels use, so that the kernel source itself (kernels/*.cu)
// compiles as plain C++ and runs on the host: see kernel_emu.cpp. Included by kernels/common.cuh in place of the
// CUDA headers when LONGDEP_EMULATE is defined; never part of the fatbin.
//
// Model: one launch runs its blocks one after another on the calling OS thread; the threads of a block are
// cooperative fibers (ucontext) switched only at __syncthreads, warp shuffles and mma.sync, so results do not
// depend on any scheduling. Shared memory (static __shared__ and the dynamic buffer) is per OS thread, so
// launches from different OS threads are independent.
#pragma once

#include <math.h>

#include <cmath>
#include <cstdint>
#include <cstring>

// Qualifiers that mean nothing on the host.
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __align__(n) alignas(n)
// Static shared arrays: one copy per OS thread, reused by every block of a launch (blocks run one at a time).
#define __shared__ static thread_local

struct uint3 { unsigned int x, y, z; };
struct dim3 { unsigned int x, y, z; };
struct alignas(8) float2 { float x, y; };
struct alignas(16) uint4 { unsigned int x, y, z, w; };

inline float2 make_float2(float x, float y) { return float2{x, y}; }

extern thread_local uint3 threadIdx;
extern thread_local uint3 blockIdx;
extern thread_local dim3 blockDim;
extern thread_local dim3 gridDim;

inline int min(int a, int b) { return a < b ? a : b; }
inline int max(int a, int b) { return a > b ? a : b; }
// expf, exp2f, logf, sqrtf, fmaxf: the C library's (math.h), within float32 rounding of the GPU's.

inline float __int_as_float(int v)
{
    float f;
    std::memcpy(&f, &v, 4);
    return f;
}

inline int __float_as_int(float f)
{
    int v;
    std::memcpy(&v, &f, 4);
    return v;
}

// ---- f16 and bf16: storage types with round-to-nearest-even conversions (as cvt.rn on the GPU) ----
#include "half_bits.h"

struct __half { uint16_t bits; };
struct __nv_bfloat16 { uint16_t bits; };
struct alignas(4) __half2 { __half x, y; };

inline __half __float2half_rn(float f) { return __half{longdep_emu::f32_to_f16_bits(f)}; }
inline float __half2float(__half h) { return longdep_emu::f16_bits_to_f32(h.bits); }
inline __half2 __floats2half2_rn(float lo, float hi) { return __half2{__float2half_rn(lo), __float2half_rn(hi)}; }
inline __nv_bfloat16 __float2bfloat16_rn(float f) { return __nv_bfloat16{longdep_emu::f32_to_bf16_bits(f)}; }
inline float __bfloat162float(__nv_bfloat16 b) { return longdep_emu::bf16_bits_to_f32(b.bits); }

// ---- Block and warp synchronization, implemented by the fiber scheduler in kernel_emu.cpp ----

namespace longdep_emu {

// What a warp-wide call exchanges: each lane's words are visible to every lane of its warp after the call.
enum class WarpOp : int { Shuffle = 1, Mma = 2, Ldmatrix = 3 };

// Writes this lane's `words` 32-bit words, waits for all 32 lanes of the warp (all must make the same kind of
// call), and returns the warp's table: lane l's words at [l * 16, l * 16 + words).
const uint32_t* warp_exchange(WarpOp op, const uint32_t* mine, int words);

void sync_block();

// Ends the launch with an error naming the block and thread (kernel misuse the GPU would not report).
[[noreturn]] void fail(const char* what);

// Dynamic shared memory of the running block (the launch's sharedBytes, filled with 0xFF at each block start).
extern thread_local unsigned char* dynamic_smem;

// mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 for the warp, from the PTX ISA fragment layout:
// g = lane >> 2, t = lane & 3; A regs {A[g][2t..], A[g+8][2t..], A[g][2t+8..], A[g+8][2t+8..]},
// B regs {B[2t..][g], B[2t+8..][g]}, C/D {C[g][2t], C[g][2t+1], C[g+8][2t], C[g+8][2t+1]}.
void mma_16816(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1);

// ldmatrix.sync.aligned.m8n8.x4.shared.b16, from the PTX ISA: lane l gives the address of row l % 8 of matrix l / 8
// (16 bytes, 16-byte aligned, inside the block's dynamic shared memory); register m of lane l receives the 32-bit
// word (l % 4) of row l / 4 of matrix m. Rows are read when the last lane of the warp arrives.
void ldsm_x4(uint32_t (&r)[4], const void* row);

// cp.async: the source is read at issue, the destination written only when a wait retires its group (the latest
// moment the GPU may write it), so a tile read before its wait and barrier shows the previous contents.
void cp_async16(void* smem, const void* gmem);
void cp_async_commit();
void cp_async_wait(int newerGroupsLeft);

} // namespace longdep_emu

inline void __syncthreads() { longdep_emu::sync_block(); }

namespace longdep_emu {

// Every lane offers `value`; returns the value lane `srcLane` offered (a 32-bit warp shuffle over the full warp).
template <typename T>
inline T shuffle(unsigned mask, T value, int srcLane, const char* what)
{
    static_assert(sizeof(T) == 4, "32-bit shuffles only");
    if (mask != 0xffffffffu) fail(what);
    uint32_t mine;
    std::memcpy(&mine, &value, 4);
    const uint32_t* all = warp_exchange(WarpOp::Shuffle, &mine, 1);
    T result;
    std::memcpy(&result, all + (srcLane & 31) * 16, 4);
    return result;
}

} // namespace longdep_emu

template <typename T>
inline T __shfl_xor_sync(unsigned mask, T value, int laneMask)
{
    return longdep_emu::shuffle(mask, value, (int)(threadIdx.x & 31u) ^ laneMask,
                                "__shfl_xor_sync with a partial mask (the emulator runs full warps only)");
}

template <typename T>
inline T __shfl_sync(unsigned mask, T value, int srcLane)
{
    return longdep_emu::shuffle(mask, value, srcLane, "__shfl_sync with a partial mask (the emulator runs full warps only)");
}
