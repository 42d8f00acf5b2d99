// Small element-wise kernels: bias add, float32 -> f16/bf16 conversion (weight upload), bias + ReLU (OPT's feed-forward).
// Launch: any grid.x >= 1 with block.x = 256; grid-stride loops cover every element.
#include "common.cuh"

// x[r, j] += bias[j] for r < rows, j < n.
extern "C" __global__ void add_bias_f32(float* x, const float* bias, int rows, int n)
{
    const size_t total = (size_t)rows * (size_t)n;
    const size_t step = (size_t)gridDim.x * blockDim.x;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += step)
        x[i] += bias[i % (size_t)n];
}

extern "C" __global__ void convert_f32_to_f16(const float* src, __half* dst, long long n)
{
    const size_t total = n > 0 ? (size_t)n : 0;
    const size_t step = (size_t)gridDim.x * blockDim.x;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += step)
        dst[i] = __float2half_rn(src[i]);
}

extern "C" __global__ void convert_f32_to_bf16(const float* src, __nv_bfloat16* dst, long long n)
{
    const size_t total = n > 0 ? (size_t)n : 0;
    const size_t step = (size_t)gridDim.x * blockDim.x;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += step)
        dst[i] = __float2bfloat16_rn(src[i]);
}

// The ReLU feed-forward's activation: out[r, j] = T(max(x[r, j] + bias[j], 0)) for r < rows, j < n, from fc1's float32
// output to the element type fc2 reads; bias may be null (no fc1 bias).
template <typename T>
__device__ __forceinline__ void bias_relu_impl(const float* __restrict__ x, const float* __restrict__ bias, T* __restrict__ out,
                                               int rows, int n)
{
    const size_t total = (size_t)rows * (size_t)n;
    const size_t step = (size_t)gridDim.x * blockDim.x;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += step)
    {
        const float v = bias != nullptr ? x[i] + bias[i % (size_t)n] : x[i];
        out[i] = longdep::from_f32<T>(v > 0.0f ? v : 0.0f);
    }
}

extern "C" __global__ void bias_relu_f32(const float* x, const float* bias, float* out, int rows, int n)
{
    bias_relu_impl<float>(x, bias, out, rows, n);
}

extern "C" __global__ void bias_relu_f16(const float* x, const float* bias, __half* out, int rows, int n)
{
    bias_relu_impl<__half>(x, bias, out, rows, n);
}

extern "C" __global__ void bias_relu_bf16(const float* x, const float* bias, __nv_bfloat16* out, int rows, int n)
{
    bias_relu_impl<__nv_bfloat16>(x, bias, out, rows, n);
}
