// RMSNorm: y[r, i] = w[i] * (x[r, i] / sqrt(mean_i(x[r, :]^2) + eps)), float32 in, T out.
// T is the element type the next GEMM reads (f32, f16 or bf16); statistics are float32.
// Launch: grid.x = rows, block.x = 256 (a multiple of 32, at most 1024: block_sum needs it).
#include "common.cuh"

template <typename T>
__device__ __forceinline__ void rmsnorm_impl(const float* __restrict__ x, const float* __restrict__ w,
                                             T* __restrict__ y, int rows, int n, float eps)
{
    const int row = blockIdx.x;
    if (row >= rows) return; // uniform for the whole block
    const float* xr = x + (size_t)row * n;
    T* yr = y + (size_t)row * n;
    float squares = 0.0f;
    for (int i = threadIdx.x; i < n; i += blockDim.x)
    {
        const float v = xr[i];
        squares += v * v;
    }
    squares = longdep::block_sum(squares);
    const float inv = 1.0f / sqrtf(squares / (float)n + eps);
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
