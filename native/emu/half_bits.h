// Bit-level f32 <-> f16/bf16 conversions with round-to-nearest-even (as cvt.rn on the GPU), shared by the kernel
// emulation (cuda_emu.h) and the emulated cuBLAS (cuda_driver_emu.cpp, typed GEMM inputs and outputs).
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

namespace longdep_emu {

inline uint16_t f32_to_f16_bits(float f)
{
    uint32_t x;
    std::memcpy(&x, &f, 4);
    const uint32_t sign = (x >> 16) & 0x8000u;
    const uint32_t mag = x & 0x7fffffffu;
    if (mag >= 0x7f800000u) return (uint16_t)(sign | (mag > 0x7f800000u ? 0x7e00u : 0x7c00u)); // NaN, inf
    if (mag >= 0x477ff000u) return (uint16_t)(sign | 0x7c00u);                                   // >= 65520: inf
    if (mag < 0x38800000u)                                                                       // below 2^-14
    {
        float v;
        std::memcpy(&v, &mag, 4);
        // Subnormal half: units of 2^-24; scaling by 2^24 is exact and nearbyint rounds to even.
        return (uint16_t)(sign | (uint32_t)std::nearbyint(v * 16777216.0f));
    }
    uint32_t h = (((mag >> 23) - 112u) << 10) | ((mag >> 13) & 0x3ffu);
    const uint32_t rest = mag & 0x1fffu;
    if (rest > 0x1000u || (rest == 0x1000u && (h & 1u))) ++h; // a carry into the exponent is still right
    return (uint16_t)(sign | h);
}

inline float f16_bits_to_f32(uint16_t h)
{
    const uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    const uint32_t exp = (h >> 10) & 0x1fu;
    const uint32_t man = h & 0x3ffu;
    uint32_t x;
    if (exp == 0x1fu) x = sign | 0x7f800000u | (man << 13);
    else if (exp != 0) x = sign | ((exp + 112u) << 23) | (man << 13);
    else
    {
        const float v = (float)man * (1.0f / 16777216.0f); // exact
        std::memcpy(&x, &v, 4);
        x |= sign;
    }
    float f;
    std::memcpy(&f, &x, 4);
    return f;
}

inline uint16_t f32_to_bf16_bits(float f)
{
    uint32_t x;
    std::memcpy(&x, &f, 4);
    if ((x & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((x >> 16) | 0x40u);
    x += 0x7fffu + ((x >> 16) & 1u);
    return (uint16_t)(x >> 16);
}

inline float bf16_bits_to_f32(uint16_t b)
{
    const uint32_t x = (uint32_t)b << 16;
    float f;
    std::memcpy(&f, &x, 4);
    return f;
}

} // namespace longdep_emu
