// Tensor-core helpers: mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 and its register fragments
// (PTX ISA, "Matrix Fragments for mma.m16n8k16 with floating point type"). With
//   g = lane >> 2 (groupID), t = lane & 3 (threadID_in_group),
// each register of a fragment holds two f16 values, the lower column (or row) in the low half:
//   A (16 x 16, row-major):  a0 = A[g][2t, 2t+1]      a1 = A[g+8][2t, 2t+1]
//                            a2 = A[g][2t+8, 2t+9]    a3 = A[g+8][2t+8, 2t+9]
//   B (16 x 8, "col"):       b0 = B[2t, 2t+1][g]      b1 = B[2t+8, 2t+9][g]
//   C/D (16 x 8, float32):   c0 = C[g][2t]  c1 = C[g][2t+1]  c2 = C[g+8][2t]  c3 = C[g+8][2t+1]
// So a row-major tile X [rows][k] gives A fragments from pairs along k, and B = X^T fragments from the
// same pairs: "B[k][n] = X[n][k]". An accumulator tile of two neighbouring n-blocks (16 columns)
// converts in registers into the A fragment of the next product (flash attention's P.V).
#pragma once

#include "common.cuh"

namespace longdep {

// Packs two floats as f16 (lo in the low half), the register format of the fragments above.
__device__ __forceinline__ uint32_t pack_half2(float lo, float hi)
{
    __half2 h = __floats2half2_rn(lo, hi);
    return *reinterpret_cast<uint32_t*>(&h);
}

// d += a * b for one 16x8x16 tile.
__device__ __forceinline__ void mma_16816(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1)
{
#ifdef LONGDEP_EMULATE
    longdep_emu::mma_16816(d, a, b0, b1);
#else
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 "
        "{%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
#endif
}

// Reads the 32-bit word (two f16) at element offset `at` (even) of a shared-memory f16 array.
__device__ __forceinline__ uint32_t lds_pair(const __half* base, int at)
{
    return *reinterpret_cast<const uint32_t*>(base + at);
}

// ldmatrix.sync.aligned.m8n8.x4.shared.b16: four 8x8 f16 matrices from shared memory in one warp-wide instruction.
// Lane l gives the address of row l % 8 of matrix l / 8 (16 contiguous bytes, 16-byte aligned); register m of lane l
// receives row l / 4 of matrix m, elements 2 (l % 4) and 2 (l % 4) + 1. With matrix rows along n and columns along
// k, that register is a B fragment register (B[2t, 2t+1][g], above): one ldmatrix gives b0 and b1 of two products.
__device__ __forceinline__ void ldsm_x4(uint32_t (&r)[4], const __half* row)
{
#ifdef LONGDEP_EMULATE
    longdep_emu::ldsm_x4(r, row);
#else
    const unsigned at = (unsigned)__cvta_generic_to_shared(row);
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(at));
#endif
}

// S = A.B^T for two 16-row tiles of A fragments (aa[m], m = 0, 1: D columns) against 64 rows of a row-major f16 tile
// `rows` [64][D + 8] in shared memory: s[m][nt] is the 16 x 8 accumulator of A tile m and rows 8nt .. 8nt + 7. One
// ldmatrix.x4 (matrices: rows 8nt.. at columns 16kk.. and 16kk+8.., then rows 8(nt+1).. likewise) gives b0, b1 of two
// row blocks for both tiles. Each accumulator takes kk in ascending order, as a per-tile loop of mma_16816 would.
template <int D>
__device__ __forceinline__ void scores_two_tiles(const __half* rows, const uint32_t (&aa)[2][D / 16][4], float (&s)[2][8][4])
{
    const int lane = threadIdx.x & 31;
    const int lrow = lane & 7; // ldmatrix: lane l names row l % 8 of matrix l / 8
    const int lmat = lane >> 3;
#pragma unroll
    for (int m = 0; m < 2; ++m)
#pragma unroll
        for (int nt = 0; nt < 8; ++nt) s[m][nt][0] = s[m][nt][1] = s[m][nt][2] = s[m][nt][3] = 0.0f;
#pragma unroll
    for (int nt = 0; nt < 8; nt += 2)
    {
        const __half* r = rows + (nt * 8 + (lmat >> 1) * 8 + lrow) * (D + 8) + (lmat & 1) * 8;
#pragma unroll
        for (int kk = 0; kk < D / 16; ++kk)
        {
            uint32_t b[4];
            ldsm_x4(b, r + kk * 16);
#pragma unroll
            for (int m = 0; m < 2; ++m)
            {
                mma_16816(s[m][nt], aa[m][kk], b[0], b[1]);
                mma_16816(s[m][nt + 1], aa[m][kk], b[2], b[3]);
            }
        }
    }
}

// Max and sum over the four threads of a group (the threads that share an accumulator row).
__device__ __forceinline__ float quad_max(float v)
{
    v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, 1));
    return fmaxf(v, __shfl_xor_sync(0xffffffffu, v, 2));
}

__device__ __forceinline__ float quad_sum(float v)
{
    v += __shfl_xor_sync(0xffffffffu, v, 1);
    return v + __shfl_xor_sync(0xffffffffu, v, 2);
}

// Sum over the eight groups (threads with the same threadID_in_group): an accumulator column.
__device__ __forceinline__ float column_sum8(float v)
{
    v += __shfl_xor_sync(0xffffffffu, v, 4);
    v += __shfl_xor_sync(0xffffffffu, v, 8);
    return v + __shfl_xor_sync(0xffffffffu, v, 16);
}

// A fragments of a 16 x D row-major tile whose rows g and g + 8 (this thread's, see above) start at rowA and rowB
// (float32, 8-byte aligned), each value times `scale` and rounded to f16: frag[kk] covers columns 16kk .. 16kk + 15.
template <int D>
__device__ __forceinline__ void load_a_fragments(const float* rowA, const float* rowB, float scale, uint32_t (&frag)[D / 16][4])
{
    const int tq = threadIdx.x & 3;
#pragma unroll
    for (int kk = 0; kk < D / 16; ++kk)
    {
        const int c = kk * 16 + 2 * tq;
        const float2 a0 = *reinterpret_cast<const float2*>(rowA + c);
        const float2 a1 = *reinterpret_cast<const float2*>(rowB + c);
        const float2 a2 = *reinterpret_cast<const float2*>(rowA + c + 8);
        const float2 a3 = *reinterpret_cast<const float2*>(rowB + c + 8);
        frag[kk][0] = pack_half2(a0.x * scale, a0.y * scale);
        frag[kk][1] = pack_half2(a1.x * scale, a1.y * scale);
        frag[kk][2] = pack_half2(a2.x * scale, a2.y * scale);
        frag[kk][3] = pack_half2(a3.x * scale, a3.y * scale);
    }
}

// Asynchronous 16-byte global -> shared copy (cp.async.cg, sm_80+): `smem` and `gmem` 16-byte aligned. The copies a
// thread issued become visible to it after cp_async_wait<N>() leaves at most N newer groups pending, and to the
// block after a __syncthreads that follows that wait.
__device__ __forceinline__ void cp_async16(void* smem, const void* gmem)
{
#ifdef LONGDEP_EMULATE
    longdep_emu::cp_async16(smem, gmem);
#else
    const unsigned dst = (unsigned)__cvta_generic_to_shared(smem);
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(dst), "l"(gmem));
#endif
}

// Closes the group of copies issued since the last commit (an empty group is allowed).
__device__ __forceinline__ void cp_async_commit()
{
#ifdef LONGDEP_EMULATE
    longdep_emu::cp_async_commit();
#else
    asm volatile("cp.async.commit_group;\n" ::);
#endif
}

// Waits until at most N of this thread's committed groups are still in flight.
template <int N>
__device__ __forceinline__ void cp_async_wait()
{
#ifdef LONGDEP_EMULATE
    longdep_emu::cp_async_wait(N);
#else
    asm volatile("cp.async.wait_group %0;\n" ::"n"(N));
#endif
}

constexpr float kLog2e = 1.4426950408889634f;
constexpr float kLn2 = 0.6931471805599453f;

} // namespace longdep
