// Gated feed-forward activations, out[i] = act(gate[i]) * up[i], computed in float32:
//   swiglu_*:     act = silu(g) = g / (1 + exp(-g))                                   (Llama, Qwen, Mistral, Phi-3)
//   geglu_tanh_*: act = gelu_tanh(g) = 0.5 g (1 + tanh(sqrt(2/pi) (g + 0.044715 g^3)))  (Gemma)
// gate, up and out are in the type T of the next GEMM's inputs (f32, f16 or bf16): the forward's gate/up GEMMs write
// that type directly, as the reference model's layers do, so this pass reads half the bytes of float32 inputs.
// Each thread handles groups of 8 consecutive elements: 16-byte loads and stores when the three addresses are 16-byte
// aligned and the group is whole, element by element otherwise (the tail, or unaligned views).
// Launch: 1-D, any grid (grid-stride over the ceil(n/8) groups), e.g. block.x = 256.
#include "common.cuh"

struct SiluGate
{
    static __device__ __forceinline__ float apply(float g) { return g / (1.0f + expf(-g)); }
};

struct GeluTanhGate
{
    static __device__ __forceinline__ float apply(float g)
    {
        const float inner = 0.7978845608028654f * fmaf(0.044715f * g * g, g, g); // sqrt(2/pi) (g + 0.044715 g^3)
        return 0.5f * g * (1.0f + tanhf(inner));
    }
};

template <typename Act, typename T>
__device__ __forceinline__ T gated_one(T gate, T up)
{
    return longdep::from_f32<T>(Act::apply(longdep::to_f32(gate)) * longdep::to_f32(up));
}

template <typename Act, typename T>
__device__ __forceinline__ void gated_impl(const T* __restrict__ gate, const T* __restrict__ up, T* __restrict__ out,
                                           long long n)
{
    constexpr int kPerThread = 8;
    constexpr int kWords = kPerThread * (int)sizeof(T) / 16; // uint4 words per group: 1 (f16/bf16) or 2 (f32)
    const size_t total = n > 0 ? (size_t)n : 0;
    const size_t groups = (total + kPerThread - 1) / kPerThread;
    const bool aligned = (((size_t)gate | (size_t)up | (size_t)out) & 15) == 0;
    const size_t step = (size_t)gridDim.x * blockDim.x;
    for (size_t g = (size_t)blockIdx.x * blockDim.x + threadIdx.x; g < groups; g += step)
    {
        const size_t i0 = g * kPerThread;
        if (aligned && i0 + kPerThread <= total)
        {
            uint4 gw[kWords], uw[kWords], ow[kWords];
#pragma unroll
            for (int w = 0; w < kWords; ++w)
            {
                gw[w] = reinterpret_cast<const uint4*>(gate + i0)[w];
                uw[w] = reinterpret_cast<const uint4*>(up + i0)[w];
            }
            const T* gv = reinterpret_cast<const T*>(gw);
            const T* uv = reinterpret_cast<const T*>(uw);
            T* ov = reinterpret_cast<T*>(ow);
#pragma unroll
            for (int j = 0; j < kPerThread; ++j) ov[j] = gated_one<Act>(gv[j], uv[j]);
#pragma unroll
            for (int w = 0; w < kWords; ++w) reinterpret_cast<uint4*>(out + i0)[w] = ow[w];
        }
        else
        {
            const size_t end = i0 + kPerThread < total ? i0 + kPerThread : total;
            for (size_t i = i0; i < end; ++i) out[i] = gated_one<Act>(gate[i], up[i]);
        }
    }
}

extern "C" __global__ void swiglu_f32(const float* gate, const float* up, float* out, long long n)
{
    gated_impl<SiluGate, float>(gate, up, out, n);
}

extern "C" __global__ void swiglu_f16(const __half* gate, const __half* up, __half* out, long long n)
{
    gated_impl<SiluGate, __half>(gate, up, out, n);
}

extern "C" __global__ void swiglu_bf16(const __nv_bfloat16* gate, const __nv_bfloat16* up, __nv_bfloat16* out, long long n)
{
    gated_impl<SiluGate, __nv_bfloat16>(gate, up, out, n);
}

extern "C" __global__ void geglu_tanh_f32(const float* gate, const float* up, float* out, long long n)
{
    gated_impl<GeluTanhGate, float>(gate, up, out, n);
}

extern "C" __global__ void geglu_tanh_f16(const __half* gate, const __half* up, __half* out, long long n)
{
    gated_impl<GeluTanhGate, __half>(gate, up, out, n);
}

extern "C" __global__ void geglu_tanh_bf16(const __nv_bfloat16* gate, const __nv_bfloat16* up, __nv_bfloat16* out, long long n)
{
    gated_impl<GeluTanhGate, __nv_bfloat16>(gate, up, out, n);
}
