// Causal grouped-query attention on tensor cores (mma.sync m16n8k16, f16 inputs, f32 accumulation):
// the same contract as attention.cu (batch layout, prefix keys, output type), for head dimensions 64 and
// 128. Flash-attention style: one warp owns 16 query rows, Q stays in registers as A fragments, each
// 64-key tile of K and V is staged in shared memory as f16, S = Q.K^T and O += P.V run on tensor cores
// with the online softmax in log2 units (scores pre-scaled by log2 e, exp2), P reused from the S
// accumulators as the A fragment of P.V without leaving registers.
//
// Numerics: q * scale * log2(e), k and v are rounded to f16 and P to f16 before P.V; the row sums,
// maxima and O accumulate in float32. The self-test compares against the float64-accumulating twin with
// f16-rounded inputs.
//
// Launch: grid = (ceil(seqLen / 64), heads, nSeq), block.x = 128 (4 warps x 16 rows),
//         dynamic shared memory = attention_mma_smem_bytes(D) = (64 * (D + 8) + D * 72) * 2 bytes.
//         Blocks run the longest (latest) query tiles first. q, k, v, kPrefix, vPrefix 8-byte aligned.
#include "mma.cuh"

namespace {
constexpr int kTcRows = 64;  // query rows per block (4 warps x 16)
constexpr int kTcKeys = 64;  // keys per tile
constexpr int kTcPad = 8;    // f16 padding per shared row: fragment reads hit 32 distinct banks
constexpr int kTcVtStride = kTcKeys + kTcPad;
}

template <int D, typename T>
__device__ __forceinline__ void attention_mma_impl(
    const float* __restrict__ q, const float* __restrict__ k, const float* __restrict__ v,
    const float* __restrict__ kPrefix, const float* __restrict__ vPrefix, const int* __restrict__ prefixStart,
    T* __restrict__ out, int nSeq, int seqLen, int prefixLen, int heads, int kvHeads, float scale)
{
    static_assert(D % 16 == 0, "head dimension must be a multiple of 16");
    const int seq = blockIdx.z;
    const int head = blockIdx.y;
    const int t0 = (gridDim.x - 1 - blockIdx.x) * kTcRows;
    if (seq >= nSeq || head >= heads || t0 >= seqLen) return; // uniform per block

    const int kvHead = head / (heads / kvHeads);
    const size_t qStride = (size_t)heads * D;
    const size_t kvStride = (size_t)kvHeads * D;
    const size_t seqRow0 = (size_t)seq * seqLen;
    const size_t prefixRow0 = prefixLen > 0 ? (size_t)prefixStart[seq] : 0;

    __half* ks = reinterpret_cast<__half*>(longdep_dynamic_smem); // [64][D + 8]  key j, dim c
    __half* vt = ks + kTcKeys * (D + kTcPad);                      // [D][64 + 8]  dim c, key j

    const int warp = threadIdx.x >> 5;
    const int lane = threadIdx.x & 31;
    const int g = lane >> 2;
    const int tq = lane & 3;
    const int rowA = t0 + warp * 16 + g; // this thread's two accumulator rows
    const int rowB = rowA + 8;

    // Q as A fragments, in log2 units. Rows past the sequence read its last row and are never written.
    uint32_t qa[D / 16][4];
    {
        const float qScale = scale * longdep::kLog2e;
        const float* qA = q + (seqRow0 + min(rowA, seqLen - 1)) * qStride + (size_t)head * D;
        const float* qB = q + (seqRow0 + min(rowB, seqLen - 1)) * qStride + (size_t)head * D;
        longdep::load_a_fragments<D>(qA, qB, qScale, qa);
    }

    float o[D / 8][4];
#pragma unroll
    for (int nd = 0; nd < D / 8; ++nd) o[nd][0] = o[nd][1] = o[nd][2] = o[nd][3] = 0.0f;
    float mA = longdep::neg_inf(), mB = longdep::neg_inf();
    float lA = 0.0f, lB = 0.0f; // this thread's share of the row sums (summed over the quad at the end)

    const int tLast = min(t0 + kTcRows, seqLen) - 1;
    const int keyCount = prefixLen + tLast + 1; // virtual keys [0, keyCount) cover every row of the block

    for (int kb = 0; kb < keyCount; kb += kTcKeys)
    {
        __syncthreads(); // the previous tile is consumed
        // K tile: pairs along the dimension, one half2 store each.
        for (int idx = threadIdx.x; idx < kTcKeys * (D / 2); idx += blockDim.x)
        {
            const int j = idx / (D / 2);
            const int c = (idx - j * (D / 2)) * 2;
            const int kk = kb + j;
            float2 kv = make_float2(0.0f, 0.0f);
            if (kk < keyCount)
            {
                const float* src = kk < prefixLen ? kPrefix + (prefixRow0 + kk) * kvStride
                                                  : k + (seqRow0 + (kk - prefixLen)) * kvStride;
                kv = *reinterpret_cast<const float2*>(src + (size_t)kvHead * D + c);
            }
            *reinterpret_cast<uint32_t*>(ks + j * (D + kTcPad) + c) = longdep::pack_half2(kv.x, kv.y);
        }
        // V tile, transposed: pairs of keys at one dimension, one half2 store each. Keys past the end are
        // zero (their P is zero, and 0 * garbage could be NaN).
        for (int idx = threadIdx.x; idx < (kTcKeys / 2) * D; idx += blockDim.x)
        {
            const int jp = idx / D;
            const int c = idx - jp * D;
            float pair[2];
#pragma unroll
            for (int e = 0; e < 2; ++e)
            {
                const int kk = kb + 2 * jp + e;
                pair[e] = 0.0f;
                if (kk < keyCount)
                {
                    const float* src = kk < prefixLen ? vPrefix + (prefixRow0 + kk) * kvStride
                                                      : v + (seqRow0 + (kk - prefixLen)) * kvStride;
                    pair[e] = src[(size_t)kvHead * D + c];
                }
            }
            *reinterpret_cast<uint32_t*>(vt + c * kTcVtStride + 2 * jp) = longdep::pack_half2(pair[0], pair[1]);
        }
        __syncthreads();

        // S = Q.K^T: 16 rows x 64 keys per warp, eight 16x8 accumulators.
        float s[kTcKeys / 8][4];
#pragma unroll
        for (int nt = 0; nt < kTcKeys / 8; ++nt)
        {
            s[nt][0] = s[nt][1] = s[nt][2] = s[nt][3] = 0.0f;
            const __half* kr = ks + (nt * 8 + g) * (D + kTcPad) + 2 * tq;
#pragma unroll
            for (int kk = 0; kk < D / 16; ++kk)
                longdep::mma_16816(s[nt], qa[kk], longdep::lds_pair(kr, kk * 16), longdep::lds_pair(kr, kk * 16 + 8));
        }

        // Causal and end-of-keys mask, then the online softmax of rows A (c0, c1) and B (c2, c3).
        float tileA = longdep::neg_inf(), tileB = longdep::neg_inf();
#pragma unroll
        for (int nt = 0; nt < kTcKeys / 8; ++nt)
        {
#pragma unroll
            for (int e = 0; e < 2; ++e)
            {
                const int key = kb + nt * 8 + 2 * tq + e;
                if (key >= keyCount || key > prefixLen + rowA) s[nt][e] = longdep::neg_inf();
                if (key >= keyCount || key > prefixLen + rowB) s[nt][2 + e] = longdep::neg_inf();
                tileA = fmaxf(tileA, s[nt][e]);
                tileB = fmaxf(tileB, s[nt][2 + e]);
            }
        }
        const float mNewA = fmaxf(mA, longdep::quad_max(tileA));
        const float mNewB = fmaxf(mB, longdep::quad_max(tileB));
        const float baseA = mNewA == longdep::neg_inf() ? 0.0f : mNewA; // exp2(-inf - 0) = 0
        const float baseB = mNewB == longdep::neg_inf() ? 0.0f : mNewB;
        const float alphaA = exp2f(mA - baseA);
        const float alphaB = exp2f(mB - baseB);
        mA = mNewA;
        mB = mNewB;
        lA *= alphaA;
        lB *= alphaB;
#pragma unroll
        for (int nd = 0; nd < D / 8; ++nd)
        {
            o[nd][0] *= alphaA;
            o[nd][1] *= alphaA;
            o[nd][2] *= alphaB;
            o[nd][3] *= alphaB;
        }
#pragma unroll
        for (int nt = 0; nt < kTcKeys / 8; ++nt)
        {
            s[nt][0] = exp2f(s[nt][0] - baseA);
            s[nt][1] = exp2f(s[nt][1] - baseA);
            s[nt][2] = exp2f(s[nt][2] - baseB);
            s[nt][3] = exp2f(s[nt][3] - baseB);
            lA += s[nt][0] + s[nt][1];
            lB += s[nt][2] + s[nt][3];
        }

        // O += P.V: keys 16*kp .. 16*kp + 15 are the accumulators of key blocks 2kp and 2kp + 1.
#pragma unroll
        for (int kp = 0; kp < kTcKeys / 16; ++kp)
        {
            const uint32_t pa[4] = {
                longdep::pack_half2(s[2 * kp][0], s[2 * kp][1]),
                longdep::pack_half2(s[2 * kp][2], s[2 * kp][3]),
                longdep::pack_half2(s[2 * kp + 1][0], s[2 * kp + 1][1]),
                longdep::pack_half2(s[2 * kp + 1][2], s[2 * kp + 1][3]),
            };
#pragma unroll
            for (int nd = 0; nd < D / 8; ++nd)
            {
                const __half* vr = vt + (nd * 8 + g) * kTcVtStride + kp * 16 + 2 * tq;
                longdep::mma_16816(o[nd], pa, longdep::lds_pair(vr, 0), longdep::lds_pair(vr, 8));
            }
        }
    }

    lA = longdep::quad_sum(lA);
    lB = longdep::quad_sum(lB);
    const float invA = 1.0f / lA;
    const float invB = 1.0f / lB;
#pragma unroll
    for (int nd = 0; nd < D / 8; ++nd)
    {
        const int c = nd * 8 + 2 * tq;
        if (rowA < seqLen)
        {
            T* dst = out + (seqRow0 + rowA) * qStride + (size_t)head * D + c;
            dst[0] = longdep::from_f32<T>(o[nd][0] * invA);
            dst[1] = longdep::from_f32<T>(o[nd][1] * invA);
        }
        if (rowB < seqLen)
        {
            T* dst = out + (seqRow0 + rowB) * qStride + (size_t)head * D + c;
            dst[0] = longdep::from_f32<T>(o[nd][2] * invB);
            dst[1] = longdep::from_f32<T>(o[nd][3] * invB);
        }
    }
}

// Same parameters as attention_fwd_*; headDim must equal the kernel's D (the host checks it; a mismatch writes nothing).
extern "C" __global__ __launch_bounds__(128) void attention_mma64_f32(
    const float* q, const float* k, const float* v, const float* kPrefix, const float* vPrefix, const int* prefixStart,
    float* out, int nSeq, int seqLen, int prefixLen, int heads, int kvHeads, int headDim, float scale)
{
    if (headDim != 64) return;
    attention_mma_impl<64, float>(q, k, v, kPrefix, vPrefix, prefixStart, out, nSeq, seqLen, prefixLen, heads, kvHeads, scale);
}

extern "C" __global__ __launch_bounds__(128) void attention_mma64_f16(
    const float* q, const float* k, const float* v, const float* kPrefix, const float* vPrefix, const int* prefixStart,
    __half* out, int nSeq, int seqLen, int prefixLen, int heads, int kvHeads, int headDim, float scale)
{
    if (headDim != 64) return;
    attention_mma_impl<64, __half>(q, k, v, kPrefix, vPrefix, prefixStart, out, nSeq, seqLen, prefixLen, heads, kvHeads, scale);
}

extern "C" __global__ __launch_bounds__(128) void attention_mma64_bf16(
    const float* q, const float* k, const float* v, const float* kPrefix, const float* vPrefix, const int* prefixStart,
    __nv_bfloat16* out, int nSeq, int seqLen, int prefixLen, int heads, int kvHeads, int headDim, float scale)
{
    if (headDim != 64) return;
    attention_mma_impl<64, __nv_bfloat16>(q, k, v, kPrefix, vPrefix, prefixStart, out, nSeq, seqLen, prefixLen, heads, kvHeads, scale);
}

extern "C" __global__ __launch_bounds__(128) void attention_mma128_f32(
    const float* q, const float* k, const float* v, const float* kPrefix, const float* vPrefix, const int* prefixStart,
    float* out, int nSeq, int seqLen, int prefixLen, int heads, int kvHeads, int headDim, float scale)
{
    if (headDim != 128) return;
    attention_mma_impl<128, float>(q, k, v, kPrefix, vPrefix, prefixStart, out, nSeq, seqLen, prefixLen, heads, kvHeads, scale);
}

extern "C" __global__ __launch_bounds__(128) void attention_mma128_f16(
    const float* q, const float* k, const float* v, const float* kPrefix, const float* vPrefix, const int* prefixStart,
    __half* out, int nSeq, int seqLen, int prefixLen, int heads, int kvHeads, int headDim, float scale)
{
    if (headDim != 128) return;
    attention_mma_impl<128, __half>(q, k, v, kPrefix, vPrefix, prefixStart, out, nSeq, seqLen, prefixLen, heads, kvHeads, scale);
}

extern "C" __global__ __launch_bounds__(128) void attention_mma128_bf16(
    const float* q, const float* k, const float* v, const float* kPrefix, const float* vPrefix, const int* prefixStart,
    __nv_bfloat16* out, int nSeq, int seqLen, int prefixLen, int heads, int kvHeads, int headDim, float scale)
{
    if (headDim != 128) return;
    attention_mma_impl<128, __nv_bfloat16>(q, k, v, kPrefix, vPrefix, prefixStart, out, nSeq, seqLen, prefixLen, heads, kvHeads, scale);
}
