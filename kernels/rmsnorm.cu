// RMSNorm: y[r, i] = w[i] * (x[r, i] / sqrt(mean_i(x[r, :]^2) + eps)), float32 in, T out.
// T is the element type the next GEMM reads (f32, f16 or bf16); statistics are float32.
//   rmsnorm_*:       the pre-norms and the final norm.
//   rmsnorm_add_f32: h[r, :] += RMSNorm(x[r, :]): a sandwich block's norm of its sub-block output, added to the residual.
//   qk_rmsnorm:      per-head RMSNorm of q and k in place (Qwen3, Gemma 3), one warp per head vector.
// Launch (rmsnorm_*, rmsnorm_add_f32): grid.x = rows, block.x = 256 (a multiple of 32, at most 1024: block_sum needs it).
#include "common.cuh"

// 1 / sqrt(mean(xr[0..n)^2) + eps) of one row, summed by the whole block (every thread gets it).
__device__ __forceinline__ float inverse_rms(const float* __restrict__ xr, int n, float eps)
{
    float squares = 0.0f;
    for (int i = threadIdx.x; i < n; i += blockDim.x)
    {
        const float v = xr[i];
        squares += v * v;
    }
    squares = longdep::block_sum(squares);
    return 1.0f / sqrtf(squares / (float)n + eps);
}

template <typename T>
__device__ __forceinline__ void rmsnorm_impl(const float* __restrict__ x, const float* __restrict__ w,
                                             T* __restrict__ y, int rows, int n, float eps)
{
    const int row = blockIdx.x;
    if (row >= rows) return; // uniform for the whole block
    const float* xr = x + (size_t)row * n;
    T* yr = y + (size_t)row * n;
    const float inv = inverse_rms(xr, n, eps);
    for (int i = threadIdx.x; i < n; i += blockDim.x) yr[i] = longdep::from_f32<T>(w[i] * (xr[i] * inv));
}

extern "C" __global__ void rmsnorm_f32(const float* x, const float* w, float* y, int rows, int n, float eps)
{
    rmsnorm_impl<float>(x, w, y, rows, n, eps);
}

extern "C" __global__ void rmsnorm_f16(const float* x, const float* w, __half* y, int rows, int n, float eps)
{
    rmsnorm_impl<__half>(x, w, y, rows, n, eps);
}

extern "C" __global__ void rmsnorm_bf16(const float* x, const float* w, __nv_bfloat16* y, int rows, int n, float eps)
{
    rmsnorm_impl<__nv_bfloat16>(x, w, y, rows, n, eps);
}

// h[r, i] += w[i] * (x[r, i] * inv), inv = 1 / sqrt(mean(x[r, :]^2) + eps): x is a sub-block's output (float32), h the
// residual stream. x and h are different buffers.
extern "C" __global__ void rmsnorm_add_f32(const float* x, const float* w, float* h, int rows, int n, float eps)
{
    const int row = blockIdx.x;
    if (row >= rows) return; // uniform for the whole block
    const float* xr = x + (size_t)row * n;
    float* hr = h + (size_t)row * n;
    const float inv = inverse_rms(xr, n, eps);
    for (int i = threadIdx.x; i < n; i += blockDim.x) hr[i] += w[i] * (xr[i] * inv);
}

// Per-head RMSNorm in place: every head vector v (headDim floats) of the rows of q (heads of them at qStride) and of k
// (kvHeads at kStride; k may be null) becomes w * (u / sqrt(mean(u^2) + eps)) with u = v * pre, where pre is qScale for
// q (a model that scales its queries before the norm) and 1 for k; wq, wk [headDim].
// Launch: grid.x = ceil(rows * (heads + kvHeads) / (block.x / 32)), block.x = 128; one warp per head vector,
// headDim <= 256.
extern "C" __global__ void qk_rmsnorm(float* q, float* k, const float* wq, const float* wk, int rows, int heads, int kvHeads,
                                      int headDim, int qStride, int kStride, float eps, float qScale)
{
    const int warps = blockDim.x >> 5;
    const long long vec = (long long)blockIdx.x * warps + (threadIdx.x >> 5);
    const int lane = threadIdx.x & 31;
    const int kHeads = k != nullptr ? kvHeads : 0;
    const int perRow = heads + kHeads;
    if (vec >= (long long)rows * perRow) return; // uniform per warp
    const int row = (int)(vec / perRow);
    const int h = (int)(vec - (long long)row * perRow);
    const bool isQ = h < heads;
    float* v = isQ ? q + (size_t)row * qStride + (size_t)h * headDim : k + (size_t)row * kStride + (size_t)(h - heads) * headDim;
    const float* w = isQ ? wq : wk;
    const float pre = isQ ? qScale : 1.0f;
    float u[8];
    float squares = 0.0f;
#pragma unroll
    for (int j = 0; j < 8; ++j)
    {
        const int i = lane + 32 * j;
        u[j] = i < headDim ? v[i] * pre : 0.0f;
        squares += u[j] * u[j];
    }
    squares = longdep::warp_sum(squares);
    const float inv = 1.0f / sqrtf(squares / (float)headDim + eps);
#pragma unroll
    for (int j = 0; j < 8; ++j)
    {
        const int i = lane + 32 * j;
        if (i < headDim) v[i] = w[i] * (u[j] * inv);
    }
}
