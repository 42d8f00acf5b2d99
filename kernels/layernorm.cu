// LayerNorm with weight and bias (OPT): y[r, i] = (x[r, i] - mean) * (1 / sqrt(var + eps)) * w[i] + b[i], the mean and
// the (biased) variance of row r taken in two passes in float32; x float32, y in T (the type the next GEMM reads, or
// float32 for a norm of the residual stream itself). y may be x (post-norm blocks normalize the residual in place: each
// element is read and written by the same thread, after the row's statistics are complete).
// Launch: grid.x = rows, block.x = 256 (a multiple of 32, at most 1024: block_sum needs it).
#include "common.cuh"

template <typename T>
__device__ __forceinline__ void layernorm_impl(const float* x, const float* __restrict__ w, const float* __restrict__ b,
                                               T* y, int rows, int n, float eps)
{
    const int row = blockIdx.x;
    if (row >= rows) return; // uniform for the whole block
    const float* xr = x + (size_t)row * n;
    T* yr = y + (size_t)row * n;
    float sum = 0.0f;
    for (int i = threadIdx.x; i < n; i += blockDim.x) sum += xr[i];
    const float mean = longdep::block_sum(sum) / (float)n;
    float squares = 0.0f;
    for (int i = threadIdx.x; i < n; i += blockDim.x)
    {
        const float d = xr[i] - mean;
        squares += d * d;
    }
    const float inv = 1.0f / sqrtf(longdep::block_sum(squares) / (float)n + eps);
    for (int i = threadIdx.x; i < n; i += blockDim.x) yr[i] = longdep::from_f32<T>(fmaf((xr[i] - mean) * inv, w[i], b[i]));
}

extern "C" __global__ void layernorm_f32(const float* x, const float* w, const float* b, float* y, int rows, int n, float eps)
{
    layernorm_impl<float>(x, w, b, y, rows, n, eps);
}

extern "C" __global__ void layernorm_f16(const float* x, const float* w, const float* b, __half* y, int rows, int n, float eps)
{
    layernorm_impl<__half>(x, w, b, y, rows, n, eps);
}

extern "C" __global__ void layernorm_bf16(const float* x, const float* w, const float* b, __nv_bfloat16* y, int rows, int n,
                                          float eps)
{
    layernorm_impl<__nv_bfloat16>(x, w, b, y, rows, n, eps);
}
