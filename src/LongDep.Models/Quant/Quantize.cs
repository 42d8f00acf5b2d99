using System.Buffers.Binary;

namespace LongDep.Models.Quant;

/// <summary>
/// Float32 to GGML blocks, for writers (<c>make-model</c>, tests): every type <see cref="Dequantize"/> reads.
/// Q8_0, Q4_0, Q4_1, Q5_0 and Q5_1 follow ggml's reference quantizers (<c>quantize_row_*_ref</c>, what
/// llama-quantize runs without an importance matrix) operation for operation, so their blocks are byte-identical to
/// ggml's. The K types and the IQ4 types are quantized by a plain round-to-nearest on per-sub-block ranges (ggml
/// searches for better scales): valid blocks of the same layout, a little less accurate than llama-quantize's.
/// Values must be finite.
/// </summary>
public static class Quantize
{
    /// <summary>True for the types <see cref="FromF32"/> writes (every readable block type; F32/F16/BF16 are converted, not quantized).</summary>
    public static bool IsBlockType(TensorType type) => type is TensorType.Q8_0 or TensorType.Q4_0 or TensorType.Q4_1
        or TensorType.Q5_0 or TensorType.Q5_1 or TensorType.Q2_K or TensorType.Q3_K or TensorType.Q4_K or TensorType.Q5_K
        or TensorType.Q6_K or TensorType.IQ4_NL or TensorType.IQ4_XS;

    /// <summary>
    /// The type llama-quantize falls back to when a row of <paramref name="rowLength"/> values is not a whole number
    /// of <paramref name="type"/>'s blocks: Q2_K, Q3_K and IQ4_XS to IQ4_NL, Q4_K to Q5_0, Q5_K to Q5_1, Q6_K to Q8_0,
    /// and F16 when not even 32-value blocks fit. Types whose blocks fit are returned unchanged.
    /// </summary>
    public static TensorType FitRow(TensorType type, long rowLength)
    {
        if (rowLength % Dequantize.BlockElements(type) == 0) return type;
        var fallback = type switch
        {
            TensorType.Q2_K or TensorType.Q3_K or TensorType.IQ4_XS => TensorType.IQ4_NL,
            TensorType.Q4_K => TensorType.Q5_0,
            TensorType.Q5_K => TensorType.Q5_1,
            TensorType.Q6_K => TensorType.Q8_0,
            _ => TensorType.F16,
        };
        return rowLength % Dequantize.BlockElements(fallback) == 0 ? fallback : TensorType.F16;
    }

    /// <summary>
    /// Quantizes <paramref name="src"/> into <paramref name="dst"/>, which must be exactly
    /// <see cref="Dequantize.ByteSize"/> of <paramref name="src"/>'s length in <paramref name="type"/>.
    /// </summary>
    /// <exception cref="ArgumentException">Not a block type, not whole blocks, or the wrong destination size.</exception>
    public static void FromF32(TensorType type, ReadOnlySpan<float> src, Span<byte> dst)
    {
        if (!IsBlockType(type)) throw new ArgumentException($"{type} is not a block-quantized type", nameof(type));
        long need = Dequantize.ByteSize(type, src.Length);
        if (dst.Length != need)
            throw new ArgumentException($"{src.Length} values of {type} take {need} bytes, the destination holds {dst.Length}", nameof(dst));
        var info = GgmlTypes.Of(type);
        int blocks = src.Length / info.BlockElements;
        for (int b = 0; b < blocks; b++)
        {
            var x = src.Slice(b * info.BlockElements, info.BlockElements);
            var y = dst.Slice(b * info.BlockBytes, info.BlockBytes);
            y.Clear();
            switch (type)
            {
                case TensorType.Q8_0: Q8_0(x, y); break;
                case TensorType.Q4_0: Q4_0(x, y); break;
                case TensorType.Q4_1: Q4_1(x, y); break;
                case TensorType.Q5_0: Q5_0(x, y); break;
                case TensorType.Q5_1: Q5_1(x, y); break;
                case TensorType.IQ4_NL: IQ4_NL(x, y); break;
                case TensorType.Q2_K: Q2_K(x, y); break;
                case TensorType.Q3_K: Q3_K(x, y); break;
                case TensorType.Q4_K: Q45_K(x, y, fifthBit: false); break;
                case TensorType.Q5_K: Q45_K(x, y, fifthBit: true); break;
                case TensorType.Q6_K: Q6_K(x, y); break;
                case TensorType.IQ4_XS: IQ4_XS(x, y); break;
            }
        }
    }

    // ------------------------------------------------------------------ helpers

    /// <summary>Stores <paramref name="v"/> as an IEEE half and returns the stored value, widened back.</summary>
    private static float PutHalf(Span<byte> at, float v)
    {
        var h = (Half)v;
        BinaryPrimitives.WriteUInt16LittleEndian(at, BitConverter.HalfToUInt16Bits(h));
        return (float)h;
    }

    /// <summary>The value of largest magnitude, sign kept (the first one on ties), as ggml's reference quantizers find it.</summary>
    private static float SignedMax(ReadOnlySpan<float> x)
    {
        float amax = 0, max = 0;
        foreach (float v in x)
        {
            if (amax < MathF.Abs(v))
            {
                amax = MathF.Abs(v);
                max = v;
            }
        }
        return max;
    }

    private static int Nearest(float v) => (int)MathF.Round(v, MidpointRounding.ToEven);

    private static int Clamp(int v, int lo, int hi) => v < lo ? lo : v > hi ? hi : v;

    /// <summary>Index of the IQ4 level nearest to <paramref name="v"/> (the lower one on a tie).</summary>
    private static int NearestLevel(float v)
    {
        var levels = Dequantize.IQ4Levels;
        int best = 0;
        float bestErr = MathF.Abs(v - levels[0]);
        for (int i = 1; i < levels.Length; i++)
        {
            float err = MathF.Abs(v - levels[i]);
            if (err < bestErr) (best, bestErr) = (i, err);
        }
        return best;
    }

    // ------------------------------------------------------------------ ggml's reference quantizers

    private static void Q8_0(ReadOnlySpan<float> x, Span<byte> y)
    {
        float amax = 0;
        foreach (float v in x) amax = MathF.Max(amax, MathF.Abs(v));
        float d = amax / 127;
        float id = d != 0 ? 1.0f / d : 0.0f;
        PutHalf(y, d);
        for (int j = 0; j < 32; j++) y[2 + j] = (byte)(sbyte)MathF.Round(x[j] * id, MidpointRounding.AwayFromZero);
    }

    private static void Q4_0(ReadOnlySpan<float> x, Span<byte> y)
    {
        float d = SignedMax(x) / -8;
        float id = d != 0 ? 1.0f / d : 0.0f;
        PutHalf(y, d);
        for (int j = 0; j < 16; j++)
        {
            int q0 = Math.Min(15, (int)(x[j] * id + 8.5f));
            int q1 = Math.Min(15, (int)(x[j + 16] * id + 8.5f));
            y[2 + j] = (byte)(q0 | (q1 << 4));
        }
    }

    private static (float Min, float Max) Range(ReadOnlySpan<float> x)
    {
        float min = float.MaxValue, max = -float.MaxValue;
        foreach (float v in x)
        {
            if (v < min) min = v;
            if (v > max) max = v;
        }
        return (min, max);
    }

    private static void Q4_1(ReadOnlySpan<float> x, Span<byte> y)
    {
        var (min, max) = Range(x);
        float d = (max - min) / 15;
        float id = d != 0 ? 1.0f / d : 0.0f;
        PutHalf(y, d);
        PutHalf(y.Slice(2), min);
        for (int j = 0; j < 16; j++)
        {
            int q0 = Math.Min(15, (int)((x[j] - min) * id + 0.5f));
            int q1 = Math.Min(15, (int)((x[j + 16] - min) * id + 0.5f));
            y[4 + j] = (byte)(q0 | (q1 << 4));
        }
    }

    /// <summary>Stores 32 five-bit values: nibbles as Q4_0 at <paramref name="qs"/>, fifth bits in a 32-bit word at <paramref name="qh"/>.</summary>
    private static void PutQ5(Span<byte> qh, Span<byte> qs, ReadOnlySpan<int> q)
    {
        uint high = 0;
        for (int j = 0; j < 16; j++)
        {
            qs[j] = (byte)((q[j] & 15) | ((q[j + 16] & 15) << 4));
            high |= (uint)((q[j] >> 4) & 1) << j;
            high |= (uint)((q[j + 16] >> 4) & 1) << (j + 16);
        }
        BinaryPrimitives.WriteUInt32LittleEndian(qh, high);
    }

    private static void Q5_0(ReadOnlySpan<float> x, Span<byte> y)
    {
        float d = SignedMax(x) / -16;
        float id = d != 0 ? 1.0f / d : 0.0f;
        PutHalf(y, d);
        Span<int> q = stackalloc int[32];
        for (int j = 0; j < 32; j++) q[j] = Math.Min(31, (int)(x[j] * id + 16.5f));
        PutQ5(y.Slice(2, 4), y.Slice(6, 16), q);
    }

    private static void Q5_1(ReadOnlySpan<float> x, Span<byte> y)
    {
        var (min, max) = Range(x);
        float d = (max - min) / 31;
        float id = d != 0 ? 1.0f / d : 0.0f;
        PutHalf(y, d);
        PutHalf(y.Slice(2), min);
        Span<int> q = stackalloc int[32];
        for (int j = 0; j < 32; j++) q[j] = (int)((x[j] - min) * id + 0.5f);
        PutQ5(y.Slice(4, 4), y.Slice(8, 16), q);
    }

    // ------------------------------------------------------------------ round-to-nearest for the other types

    private static void IQ4_NL(ReadOnlySpan<float> x, Span<byte> y)
    {
        float d = SignedMax(x) / Dequantize.IQ4Levels[0];
        Span<int> q = stackalloc int[32];
        float dq = IQ4Block(x, d, q);
        PutHalf(y, dq);
        for (int j = 0; j < 16; j++) y[2 + j] = (byte)(q[j] | (q[j + 16] << 4));
    }

    /// <summary>
    /// Picks the nearest level for each value at scale <paramref name="d"/>, then refits the scale by least squares
    /// on those levels (a better scale for the same choice); returns the refitted scale.
    /// </summary>
    private static float IQ4Block(ReadOnlySpan<float> x, float d, Span<int> q)
    {
        var levels = Dequantize.IQ4Levels;
        float id = d != 0 ? 1.0f / d : 0.0f;
        double sxl = 0, sll = 0;
        for (int j = 0; j < x.Length; j++)
        {
            q[j] = NearestLevel(x[j] * id);
            sxl += (double)x[j] * levels[q[j]];
            sll += (double)levels[q[j]] * levels[q[j]];
        }
        return sll > 0 && d != 0 ? (float)(sxl / sll) : d;
    }

    /// <summary>Q2_K's 2-bit place of value e: byte 32*(e/128) + e%32, bit pair (e%128)/32 (as Q3_K's low bits).</summary>
    private static void PutTwoBits(Span<byte> qs, int e, int v) => qs[32 * (e / 128) + e % 32] |= (byte)((v & 3) << (2 * (e % 128 / 32)));

    private static void Q2_K(ReadOnlySpan<float> x, Span<byte> y)
    {
        Span<float> scale = stackalloc float[16];
        Span<float> min = stackalloc float[16];
        float maxScale = 0, maxMin = 0;
        for (int k = 0; k < 16; k++)
        {
            var (lo, hi) = Range(x.Slice(16 * k, 16));
            lo = MathF.Min(lo, 0);
            scale[k] = (hi - lo) / 3;
            min[k] = -lo;
            maxScale = MathF.Max(maxScale, scale[k]);
            maxMin = MathF.Max(maxMin, min[k]);
        }
        float d = PutHalf(y.Slice(80), maxScale / 15);
        float dmin = PutHalf(y.Slice(82), maxMin / 15);
        var qs = y.Slice(16, 64);
        for (int k = 0; k < 16; k++)
        {
            int sc = d > 0 ? Clamp(Nearest(scale[k] / d), 0, 15) : 0;
            int m = dmin > 0 ? Clamp(Nearest(min[k] / dmin), 0, 15) : 0;
            y[k] = (byte)(sc | (m << 4));
            float dl = d * sc, ml = dmin * m;
            for (int l = 0; l < 16; l++)
            {
                int e = 16 * k + l;
                int q = dl > 0 ? Clamp(Nearest((x[e] + ml) / dl), 0, 3) : 0;
                PutTwoBits(qs, e, q);
            }
        }
    }

    private static void Q3_K(ReadOnlySpan<float> x, Span<byte> y)
    {
        Span<float> scale = stackalloc float[16];
        float superMax = 0, superAbs = 0;
        for (int k = 0; k < 16; k++)
        {
            scale[k] = SignedMax(x.Slice(16 * k, 16)) / -4;
            if (MathF.Abs(scale[k]) > superAbs) (superAbs, superMax) = (MathF.Abs(scale[k]), scale[k]);
        }
        float d = PutHalf(y.Slice(108), superMax / -32);
        var hmask = y.Slice(0, 32);
        var qs = y.Slice(32, 64);
        var packed = y.Slice(96, 12);
        for (int k = 0; k < 16; k++)
        {
            int l = d != 0 ? Clamp(Nearest(scale[k] / d), -32, 31) : 0;
            int stored = l + 32;
            if (k < 8) packed[k] |= (byte)(stored & 15);
            else packed[k - 8] |= (byte)((stored & 15) << 4);
            packed[8 + k % 4] |= (byte)((stored >> 4) << (2 * (k / 4)));
            float dl = d * l;
            for (int j = 0; j < 16; j++)
            {
                int e = 16 * k + j;
                int q = (dl != 0 ? Clamp(Nearest(x[e] / dl), -4, 3) : 0) + 4;
                PutTwoBits(qs, e, q);
                if (q >= 4) hmask[e % 32] |= (byte)(1 << (e / 32));
            }
        }
    }

    /// <summary>Packs Q4_K/Q5_K's 8 six-bit scales and mins into 12 bytes (the inverse of Dequantize's unpacking).</summary>
    private static void PutScaleMins(Span<byte> s, ReadOnlySpan<int> sc, ReadOnlySpan<int> m)
    {
        for (int j = 0; j < 4; j++)
        {
            s[j] = (byte)(sc[j] | ((sc[j + 4] >> 4) << 6));
            s[j + 4] = (byte)(m[j] | ((m[j + 4] >> 4) << 6));
            s[j + 8] = (byte)((sc[j + 4] & 15) | ((m[j + 4] & 15) << 4));
        }
    }

    private static void Q45_K(ReadOnlySpan<float> x, Span<byte> y, bool fifthBit)
    {
        int nmax = fifthBit ? 31 : 15;
        Span<float> scale = stackalloc float[8];
        Span<float> min = stackalloc float[8];
        float maxScale = 0, maxMin = 0;
        for (int k = 0; k < 8; k++)
        {
            var (lo, hi) = Range(x.Slice(32 * k, 32));
            lo = MathF.Min(lo, 0);
            scale[k] = (hi - lo) / nmax;
            min[k] = -lo;
            maxScale = MathF.Max(maxScale, scale[k]);
            maxMin = MathF.Max(maxMin, min[k]);
        }
        float d = PutHalf(y, maxScale / 63);
        float dmin = PutHalf(y.Slice(2), maxMin / 63);
        Span<int> sc = stackalloc int[8];
        Span<int> m = stackalloc int[8];
        for (int k = 0; k < 8; k++)
        {
            sc[k] = d > 0 ? Clamp(Nearest(scale[k] / d), 0, 63) : 0;
            m[k] = dmin > 0 ? Clamp(Nearest(min[k] / dmin), 0, 63) : 0;
        }
        PutScaleMins(y.Slice(4, 12), sc, m);
        var qh = fifthBit ? y.Slice(16, 32) : Span<byte>.Empty;
        var qs = y.Slice(fifthBit ? 48 : 16, 128);
        for (int k = 0; k < 8; k++)
        {
            float dl = d * sc[k], ml = dmin * m[k];
            for (int l = 0; l < 32; l++)
            {
                int q = dl > 0 ? Clamp(Nearest((x[32 * k + l] + ml) / dl), 0, nmax) : 0;
                qs[32 * (k / 2) + l] |= (byte)(k % 2 == 0 ? q & 15 : (q & 15) << 4);
                if (fifthBit && q > 15) qh[l] |= (byte)(1 << k);
            }
        }
    }

    private static void Q6_K(ReadOnlySpan<float> x, Span<byte> y)
    {
        Span<float> scale = stackalloc float[16];
        float superMax = 0, superAbs = 0;
        for (int k = 0; k < 16; k++)
        {
            scale[k] = SignedMax(x.Slice(16 * k, 16)) / -32;
            if (MathF.Abs(scale[k]) > superAbs) (superAbs, superMax) = (MathF.Abs(scale[k]), scale[k]);
        }
        float d = PutHalf(y.Slice(208), superMax / -128);
        var ql = y.Slice(0, 128);
        var qh = y.Slice(128, 64);
        for (int k = 0; k < 16; k++)
        {
            int sc = d != 0 ? Clamp(Nearest(scale[k] / d), -128, 127) : 0;
            y[192 + k] = (byte)(sbyte)sc;
            float dl = d * sc;
            for (int j = 0; j < 16; j++)
            {
                int e = 16 * k + j;
                int q = (dl != 0 ? Clamp(Nearest(x[e] / dl), -32, 31) : 0) + 32;
                // Half h = e/128; within it, group g = r/32 and l = r%32: low nibble in ql[64h + l + 32*(g%2)]
                // (high nibble for g >= 2), high 2 bits in qh[32h + l] at bits 2g.
                int h = e / 128, r = e % 128, g = r / 32, l = r % 32;
                ql[64 * h + l + 32 * (g % 2)] |= (byte)(g < 2 ? q & 15 : (q & 15) << 4);
                qh[32 * h + l] |= (byte)((q >> 4) << (2 * g));
            }
        }
    }

    private static void IQ4_XS(ReadOnlySpan<float> x, Span<byte> y)
    {
        Span<float> scale = stackalloc float[8];
        float superMax = 0, superAbs = 0;
        for (int k = 0; k < 8; k++)
        {
            scale[k] = SignedMax(x.Slice(32 * k, 32)) / Dequantize.IQ4Levels[0];
            if (MathF.Abs(scale[k]) > superAbs) (superAbs, superMax) = (MathF.Abs(scale[k]), scale[k]);
        }
        float d = PutHalf(y, superMax / -32);
        int high = 0;
        Span<int> q = stackalloc int[32];
        for (int k = 0; k < 8; k++)
        {
            int l = d != 0 ? Clamp(Nearest(scale[k] / d), -32, 31) : 0;
            int ls = l + 32;
            y[4 + k / 2] |= (byte)((ls & 15) << (4 * (k % 2)));
            high |= (ls >> 4) << (2 * k);
            float dl = d * l;
            float id = dl != 0 ? 1.0f / dl : 0.0f;
            for (int j = 0; j < 32; j++) q[j] = NearestLevel(x[32 * k + j] * id);
            for (int j = 0; j < 16; j++) y[8 + 16 * k + j] = (byte)(q[j] | (q[j + 16] << 4));
        }
        BinaryPrimitives.WriteUInt16LittleEndian(y.Slice(2), (ushort)high);
    }
}
