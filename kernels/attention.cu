// Causal grouped-query attention, flash-style: online softmax over key tiles, O(T) memory,
// float32 accumulation; the output is written in T (the element type the o-projection reads).
//
// Batch layout: nSeq sequences of seqLen rows each, stored one after another.
//   q   [nSeq * seqLen, heads   * headDim]   (post-RoPE, float32)
//   k,v [nSeq * seqLen, kvHeads * headDim]   (post-RoPE keys, float32): the sequences' own keys
//   kPrefix, vPrefix [*, kvHeads * headDim]  an optional prefix per sequence: rows
//                                            prefixStart[seq] .. prefixStart[seq] + prefixLen - 1
//   out [nSeq * seqLen, heads * headDim]
// Query t (0-based within its sequence) of head h reads kv head h / (heads / kvHeads) and the keys
//   prefix rows 0 .. prefixLen - 1, then own rows 0 .. t                (a "virtual" key index kk
//   runs over both: kk < prefixLen is a prefix row, kk >= prefixLen is own row kk - prefixLen).
// With prefixLen = 0 the prefix pointers and prefixStart are not read (they may be null).
// The model's score extras: window > 0 is a sliding window (query t, at virtual index prefixLen + t, sees only keys kk
// with prefixLen + t - kk < window; key tiles wholly before the block's earliest window are skipped), softCap > 0 turns
// each scaled score z into softCap * tanh(z / softCap) before the softmax (Gemma 2). 0 for either: none.
//
// Launch: grid = (ceil(seqLen / 16), heads, nSeq), block.x = 128 (4 warps x 4 query rows),
//         dynamic shared memory = attention_smem_bytes(headDim) = (32*(headDim+1) + 32*headDim + 16*headDim) * 4.
//         headDim must be even and at most 256.
#include "common.cuh"

namespace {
constexpr int kAttWarps = 4;
constexpr int kAttRowsPerWarp = 4;
constexpr int kAttBlockRows = kAttWarps * kAttRowsPerWarp; // 16 query rows per block
constexpr int kAttBlockKeys = 32;                           // one key per lane per tile
constexpr int kAttMaxChunks = 8;                            // headDim <= 8 * 32
}

template <typename T>
__device__ __forceinline__ void attention_fwd_impl(
    const float* __restrict__ q, const float* __restrict__ k, const float* __restrict__ v,
    const float* __restrict__ kPrefix, const float* __restrict__ vPrefix, const int* __restrict__ prefixStart,
    T* __restrict__ out, int nSeq, int seqLen, int prefixLen, int heads, int kvHeads, int headDim, float scale, int window,
    float softCap)
{
    const int seq = blockIdx.z;
    const int head = blockIdx.y;
    const int t0 = blockIdx.x * kAttBlockRows;
    if (seq >= nSeq || head >= heads || t0 >= seqLen) return; // uniform per block

    const int d = headDim;
    const int kvHead = head / (heads / kvHeads);
    const size_t qStride = (size_t)heads * d;
    const size_t kvStride = (size_t)kvHeads * d;
    const size_t seqRow0 = (size_t)seq * seqLen;
    const size_t prefixRow0 = prefixLen > 0 ? (size_t)prefixStart[seq] : 0;

    float* ks = reinterpret_cast<float*>(longdep_dynamic_smem); // [32][d + 1] (padded: no bank conflicts)
    float* vs = ks + kAttBlockKeys * (d + 1);                    // [32][d]
    float* qs = vs + kAttBlockKeys * d;                          // [16][d], pre-scaled

    const int warp = threadIdx.x >> 5;
    const int lane = threadIdx.x & 31;
    const int chunks = (d + 31) >> 5;

    for (int idx = threadIdx.x; idx < kAttBlockRows * d; idx += blockDim.x)
    {
        const int r = idx / d;
        const int c = idx - r * d;
        const int t = t0 + r;
        qs[idx] = t < seqLen ? q[(seqRow0 + t) * qStride + (size_t)head * d + c] * scale : 0.0f;
    }

    float m[kAttRowsPerWarp];
    float l[kAttRowsPerWarp];
    float acc[kAttRowsPerWarp][kAttMaxChunks];
#pragma unroll
    for (int i = 0; i < kAttRowsPerWarp; ++i)
    {
        m[i] = longdep::neg_inf();
        l[i] = 0.0f;
#pragma unroll
        for (int j = 0; j < kAttMaxChunks; ++j) acc[i][j] = 0.0f;
    }

    const int tLast = min(t0 + kAttBlockRows, seqLen) - 1;
    const int keyCount = prefixLen + tLast + 1; // virtual keys [0, keyCount) cover every row of the block
    // With a window the block's first row sees keys from prefixLen + t0 - window + 1 on; earlier tiles are all masked.
    const int keyFirst = window > 0 ? max(0, prefixLen + t0 - window + 1) / kAttBlockKeys * kAttBlockKeys : 0;
    const float capInv = softCap > 0.0f ? 1.0f / softCap : 0.0f;
    __syncthreads();

    for (int kb = keyFirst; kb < keyCount; kb += kAttBlockKeys)
    {
        for (int idx = threadIdx.x; idx < kAttBlockKeys * d; idx += blockDim.x)
        {
            const int j = idx / d;
            const int c = idx - j * d;
            const int kk = kb + j;
            float kval = 0.0f, vval = 0.0f;
            if (kk < keyCount)
            {
                size_t offset;
                if (kk < prefixLen)
                {
                    offset = (prefixRow0 + kk) * kvStride + (size_t)kvHead * d + c;
                    kval = kPrefix[offset];
                    vval = vPrefix[offset];
                }
                else
                {
                    offset = (seqRow0 + (kk - prefixLen)) * kvStride + (size_t)kvHead * d + c;
                    kval = k[offset];
                    vval = v[offset];
                }
            }
            ks[j * (d + 1) + c] = kval;
            vs[j * d + c] = vval;
        }
        __syncthreads();

        float s[kAttRowsPerWarp];
#pragma unroll
        for (int i = 0; i < kAttRowsPerWarp; ++i) s[i] = 0.0f;
        const float* krow = ks + lane * (d + 1);
        for (int c = 0; c < d; ++c)
        {
            const float kc = krow[c];
#pragma unroll
            for (int i = 0; i < kAttRowsPerWarp; ++i) s[i] += qs[(warp * kAttRowsPerWarp + i) * d + c] * kc;
        }

        const int kk = kb + lane;
#pragma unroll
        for (int i = 0; i < kAttRowsPerWarp; ++i)
        {
            const int t = t0 + warp * kAttRowsPerWarp + i;
            const bool valid = t < seqLen && kk < keyCount && kk <= prefixLen + t && (window <= 0 || kk > prefixLen + t - window);
            const float z = softCap > 0.0f ? softCap * tanhf(s[i] * capInv) : s[i];
            const float score = valid ? z : longdep::neg_inf();
            const float mNew = fmaxf(m[i], longdep::warp_max(score));
            const float p = valid ? expf(score - mNew) : 0.0f;
            const float alpha = m[i] == longdep::neg_inf() ? 0.0f : expf(m[i] - mNew);
            l[i] = l[i] * alpha + longdep::warp_sum(p);
#pragma unroll
            for (int cc = 0; cc < kAttMaxChunks; ++cc) acc[i][cc] *= alpha;
            for (int j = 0; j < kAttBlockKeys; ++j)
            {
                const float pj = __shfl_sync(0xffffffffu, p, j);
#pragma unroll
                for (int cc = 0; cc < kAttMaxChunks; ++cc)
                {
                    const int c = lane + 32 * cc;
                    if (cc < chunks && c < d) acc[i][cc] += pj * vs[j * d + c];
                }
            }
            m[i] = mNew;
        }
        __syncthreads();
    }

#pragma unroll
    for (int i = 0; i < kAttRowsPerWarp; ++i)
    {
        const int t = t0 + warp * kAttRowsPerWarp + i;
        if (t >= seqLen) continue;
        const float inv = 1.0f / l[i];
        T* dst = out + (seqRow0 + t) * qStride + (size_t)head * d;
#pragma unroll
        for (int cc = 0; cc < kAttMaxChunks; ++cc)
        {
            const int c = lane + 32 * cc;
            if (cc < chunks && c < d) dst[c] = longdep::from_f32<T>(acc[i][cc] * inv);
        }
    }
}

extern "C" __global__ void attention_fwd_f32(const float* q, const float* k, const float* v, const float* kPrefix,
                                      const float* vPrefix, const int* prefixStart, float* out, int nSeq, int seqLen,
                                      int prefixLen, int heads, int kvHeads, int headDim, float scale, int window, float softCap)
{
    attention_fwd_impl<float>(q, k, v, kPrefix, vPrefix, prefixStart, out, nSeq, seqLen, prefixLen, heads, kvHeads,
                            headDim, scale, window, softCap);
}

extern "C" __global__ void attention_fwd_f16(const float* q, const float* k, const float* v, const float* kPrefix,
                                      const float* vPrefix, const int* prefixStart, __half* out, int nSeq, int seqLen,
                                      int prefixLen, int heads, int kvHeads, int headDim, float scale, int window, float softCap)
{
    attention_fwd_impl<__half>(q, k, v, kPrefix, vPrefix, prefixStart, out, nSeq, seqLen, prefixLen, heads, kvHeads,
                            headDim, scale, window, softCap);
}

extern "C" __global__ void attention_fwd_bf16(const float* q, const float* k, const float* v, const float* kPrefix,
                                      const float* vPrefix, const int* prefixStart, __nv_bfloat16* out, int nSeq, int seqLen,
                                      int prefixLen, int heads, int kvHeads, int headDim, float scale, int window, float softCap)
{
    attention_fwd_impl<__nv_bfloat16>(q, k, v, kPrefix, vPrefix, prefixStart, out, nSeq, seqLen, prefixLen, heads, kvHeads,
                            headDim, scale, window, softCap);
}
