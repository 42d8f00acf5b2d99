using NUnit.Framework;
using System.Runtime.InteropServices;
using LongDep.Models.Quant;
using LongDep.Models.Tests.Gguf;

namespace LongDep.Models.Tests.Quant;

/// <summary>
/// Each dequantizer is checked against blocks packed by hand here, with the expected values worked out from the
/// format's definition (not from the code under test). Scales are powers of two so the expected floats are exact.
/// </summary>
public class DequantizeTests
{
    // ------------------------------------------------------------ float formats

    /// <summary>IEEE half from its fields: sign, 5-bit exponent (bias 15), 10-bit mantissa.</summary>
    private static double HalfFromFields(ushort h)
    {
        int sign = h >> 15, exp = (h >> 10) & 31, man = h & 1023;
        double s = sign == 1 ? -1 : 1;
        if (exp == 0) return s * man * Math.Pow(2, -24);                         // zero and subnormals
        if (exp == 31) return man == 0 ? s * double.PositiveInfinity : double.NaN;
        return s * (1 + man / 1024.0) * Math.Pow(2, exp - 15);
    }

    /// <summary>bfloat16 from its fields: sign, 8-bit exponent (bias 127), 7-bit mantissa.</summary>
    private static double BF16FromFields(ushort h)
    {
        int sign = h >> 15, exp = (h >> 7) & 255, man = h & 127;
        double s = sign == 1 ? -1 : 1;
        if (exp == 0) return s * (man / 128.0) * Math.Pow(2, -126);
        if (exp == 255) return man == 0 ? s * double.PositiveInfinity : double.NaN;
        return s * (1 + man / 128.0) * Math.Pow(2, exp - 127);
    }

    private static byte[] U16Bytes(IEnumerable<ushort> values) =>
        values.SelectMany(v => new[] { (byte)v, (byte)(v >> 8) }).ToArray();

    private static void AssertSameFloat(float actual, double expected, string what)
    {
        if (double.IsNaN(expected))
            Assert.That(float.IsNaN(actual), Is.True, $"{what}: expected NaN, got {actual}");
        else
        {
            Assert.That(actual, Is.EqualTo((float)expected), what);
            Assert.That(float.IsNegative(actual), Is.EqualTo(double.IsNegative(expected)), $"{what}: sign");
        }
    }

    [Test]
    public void F16_AllBitPatterns_MatchFieldDecoding()
    {
        var patterns = Enumerable.Range(0, 65536).Select(i => (ushort)i).ToArray();
        var dst = new float[patterns.Length];
        Dequantize.ToF32(TensorType.F16, U16Bytes(patterns), dst);
        for (int i = 0; i < patterns.Length; i++)
        {
            double expected = HalfFromFields(patterns[i]);
            if (double.IsNaN(expected) ? !float.IsNaN(dst[i]) : dst[i] != (float)expected || float.IsNegative(dst[i]) != double.IsNegative(expected))
                Assert.Fail($"F16 0x{patterns[i]:X4}: expected {expected}, got {dst[i]}");
        }
    }

    [TestCase(TensorType.F16)]
    [TestCase(TensorType.BF16)]
    public void SixteenBitTypes_AnyLengthAndStart_MatchValueByValue(TensorType type)
    {
        // The vector loop takes 32 values a step; lengths and starts that are not multiples of it end in the scalar tail.
        var patterns = Enumerable.Range(0, 1000).Select(i => (ushort)(i * 2654435761u >> 16)).ToArray();
        var all = new float[patterns.Length];
        Dequantize.ToF32(type, U16Bytes(patterns), all);
        foreach (var (start, count) in new[] { (0, 45), (3, 32), (7, 100), (999, 1), (31, 33) })
        {
            var part = new float[count];
            Dequantize.ToF32(type, U16Bytes(patterns.Skip(start).Take(count)), part);
            for (int i = 0; i < count; i++)
            {
                double expected = type == TensorType.F16 ? HalfFromFields(patterns[start + i]) : BF16FromFields(patterns[start + i]);
                AssertSameFloat(part[i], expected, $"{type} value {start + i}");
                Assert.That(BitConverter.SingleToUInt32Bits(part[i]), Is.EqualTo(BitConverter.SingleToUInt32Bits(all[start + i])));
            }
        }
    }

    [Test]
    public void F16_NamedValues()
    {
        ushort[] bits = [0x3C00, 0xC000, 0x7BFF, 0x0001, 0x03FF, 0x0400, 0x7C00, 0xFC00, 0x7E00, 0x8000, 0x3555];
        double[] expected =
        [
            1.0, -2.0, 65504.0, Math.Pow(2, -24), 1023 * Math.Pow(2, -24), Math.Pow(2, -14),
            double.PositiveInfinity, double.NegativeInfinity, double.NaN, -0.0, 0.333251953125,
        ];
        var dst = new float[bits.Length];
        Dequantize.ToF32(TensorType.F16, U16Bytes(bits), dst);
        for (int i = 0; i < bits.Length; i++) AssertSameFloat(dst[i], expected[i], $"F16 0x{bits[i]:X4}");
    }

    [Test]
    public void BF16_AllBitPatterns_MatchFieldDecoding()
    {
        var patterns = Enumerable.Range(0, 65536).Select(i => (ushort)i).ToArray();
        var dst = new float[patterns.Length];
        Dequantize.ToF32(TensorType.BF16, U16Bytes(patterns), dst);
        for (int i = 0; i < patterns.Length; i++)
        {
            double expected = BF16FromFields(patterns[i]);
            if (double.IsNaN(expected) ? !float.IsNaN(dst[i]) : dst[i] != (float)expected || float.IsNegative(dst[i]) != double.IsNegative(expected))
                Assert.Fail($"BF16 0x{patterns[i]:X4}: expected {expected}, got {dst[i]}");
        }
    }

    [Test]
    public void BF16_NamedValues_OddLengthTail()
    {
        // 7 values: shorter than any vector, so only the scalar tail runs; the 65536-pattern test covers the vector path.
        ushort[] bits = [0x3F80, 0xC049, 0x0001, 0x7F80, 0xFF80, 0x7FC0, 0x8000];
        double[] expected = [1.0, -3.140625, Math.Pow(2, -133), double.PositiveInfinity, double.NegativeInfinity, double.NaN, -0.0];
        var dst = new float[bits.Length];
        Dequantize.ToF32(TensorType.BF16, U16Bytes(bits), dst);
        for (int i = 0; i < bits.Length; i++) AssertSameFloat(dst[i], expected[i], $"BF16 0x{bits[i]:X4}");
    }

    [Test]
    public void F32_CopiesBitsExactly()
    {
        uint[] bits = [0x3F800000, 0x00000001, 0x7FC00001, 0xFF800000, 0x80000000, 0x12345678];
        var dst = new float[bits.Length];
        Dequantize.ToF32(TensorType.F32, MemoryMarshal.AsBytes(bits.AsSpan()), dst);
        Assert.That(MemoryMarshal.Cast<float, uint>(dst).ToArray(), Is.EqualTo(bits));
    }

    [Test]
    public void FromF32ToF16_RoundsToNearestEven()
    {
        float[] values =
        [
            1f, 1f + MathF.Pow(2, -11), 1f + 3 * MathF.Pow(2, -11), 65519f, 65520f, MathF.Pow(2, -25),
            3 * MathF.Pow(2, -25), -0f, float.NegativeInfinity,
        ];
        // 1+2^-11 ties between 1 (even) and 1+2^-10; 1+3*2^-11 ties between 1+2^-10 (odd) and 1+2^-9 (even);
        // 65520 ties between 65504 (odd mantissa 0x3FF) and 65536 (overflow: infinity); 2^-25 ties 0 vs 2^-24.
        ushort[] expected = [0x3C00, 0x3C00, 0x3C02, 0x7BFF, 0x7C00, 0x0000, 0x0002, 0x8000, 0xFC00];
        var bytes = new byte[2 * values.Length];
        Dequantize.FromF32ToF16(values, bytes);
        Assert.That(MemoryMarshal.Cast<byte, ushort>(bytes).ToArray(), Is.EqualTo(expected));

        var nan = new byte[2];
        Dequantize.FromF32ToF16([float.NaN], nan);
        ushort n = MemoryMarshal.Cast<byte, ushort>(nan)[0];
        Assert.That(n & 0x7C00, Is.EqualTo(0x7C00));
        Assert.That(n & 0x03FF, Is.Not.Zero, "NaN must keep a non-zero mantissa");
    }

    [Test]
    public void FromF32ToBF16_RoundsToNearestEven()
    {
        uint[] inBits = [0x3F800000, 0x3F808000, 0x3F818000, 0x3F808001, 0x7F7FFFFF, 0x7F800000, 0x7FC00000, 0x7F800001, 0x80000000];
        // 0x3F808000 ties to the even 0x3F80; 0x3F818000 ties to the even 0x3F82; just above a tie rounds up;
        // the largest float rounds to infinity; NaNs stay NaN (a signalling one becomes quiet, never infinity).
        ushort[] expected = [0x3F80, 0x3F80, 0x3F82, 0x3F81, 0x7F80, 0x7F80, 0x7FC0, 0x7FC0, 0x8000];
        var values = MemoryMarshal.Cast<uint, float>(inBits).ToArray();
        var bytes = new byte[2 * values.Length];
        Dequantize.FromF32ToBF16(values, bytes);
        Assert.That(MemoryMarshal.Cast<byte, ushort>(bytes).ToArray(), Is.EqualTo(expected));
    }

    // ------------------------------------------------------------ Q8_0

    [Test]
    public void Q8_0_TwoHandPackedBlocks()
    {
        // Block layout: f16 d, then 32 int8 quants; x = d * q.
        float[] d = [0.5f, -0.25f];
        var q = new int[2, 32];
        for (int j = 0; j < 32; j++)
        {
            q[0, j] = j - 16;
            q[1, j] = (j * 37 % 256) - 128;
        }
        q[0, 0] = -128;
        q[0, 31] = 127;
        var bytes = new byte[2 * 34];
        for (int b = 0; b < 2; b++)
        {
            Bits.PutU16(bytes, 34 * b, Bits.Half(d[b]));
            for (int j = 0; j < 32; j++) bytes[34 * b + 2 + j] = (byte)(sbyte)q[b, j];
        }
        Assert.That(Bits.Half(0.5f), Is.EqualTo(0x3800), "test's own half encoding");

        var dst = new float[64];
        Dequantize.ToF32(TensorType.Q8_0, bytes, dst);
        Assert.Multiple(() =>
        {
            for (int b = 0; b < 2; b++)
                for (int j = 0; j < 32; j++)
                    Assert.That(dst[32 * b + j], Is.EqualTo((double)d[b] * q[b, j]).Within(1e-9), $"block {b} value {j}");
        });
        Assert.That(dst[0], Is.EqualTo(-64.0f));
        Assert.That(dst[31], Is.EqualTo(63.5f));
    }

    // ------------------------------------------------------------ Q4_0

    [Test]
    public void Q4_0_TwoHandPackedBlocks()
    {
        // Block layout: f16 d, then 16 bytes; byte j = value j in the low nibble, value j+16 in the high nibble.
        // x = d * (q - 8).
        float[] d = [2.0f, 0.0625f];
        var q = new int[2, 32];
        for (int j = 0; j < 32; j++)
        {
            q[0, j] = (j * 5 + 3) % 16;
            q[1, j] = 15 - j % 16;
        }
        var bytes = new byte[2 * 18];
        for (int b = 0; b < 2; b++)
        {
            Bits.PutU16(bytes, 18 * b, Bits.Half(d[b]));
            for (int j = 0; j < 16; j++) bytes[18 * b + 2 + j] = (byte)(q[b, j] | (q[b, j + 16] << 4));
        }
        var dst = new float[64];
        Dequantize.ToF32(TensorType.Q4_0, bytes, dst);
        Assert.Multiple(() =>
        {
            for (int b = 0; b < 2; b++)
                for (int j = 0; j < 32; j++)
                    Assert.That(dst[32 * b + j], Is.EqualTo((double)d[b] * (q[b, j] - 8)).Within(1e-9), $"block {b} value {j}");
        });
        Assert.That(dst[0], Is.EqualTo(2.0f * (3 - 8)), "first value, worked by hand");
        Assert.That(dst[16], Is.EqualTo(2.0f * ((16 * 5 + 3) % 16 - 8)), "value 16 is the high nibble of byte 0");
    }

    // ------------------------------------------------------------ Q4_K

    /// <summary>
    /// Packs 8 six-bit scales and 8 six-bit mins into Q4_K's 12 bytes. Sub-blocks 0..3: scale in bytes 0..3 and min
    /// in bytes 4..7, low 6 bits. Sub-blocks 4..7: low 4 bits in bytes 8..11 (scale low nibble, min high nibble) and
    /// top 2 bits in bits 6..7 of bytes 0..3 (scales) and 4..7 (mins).
    /// </summary>
    private static byte[] PackQ4KScales(int[] sc, int[] m)
    {
        var s = new byte[12];
        for (int j = 0; j < 4; j++)
        {
            s[j] = (byte)(sc[j] | ((sc[j + 4] >> 4) << 6));
            s[j + 4] = (byte)(m[j] | ((m[j + 4] >> 4) << 6));
            s[j + 8] = (byte)((sc[j + 4] & 15) | ((m[j + 4] & 15) << 4));
        }
        return s;
    }

    [Test]
    public void Q4_K_TwoHandPackedSuperBlocks()
    {
        // Super-block: f16 d, f16 dmin, 12 scale bytes, 128 quant bytes. Value e belongs to sub-block e/32;
        // it sits in byte 32*(e/64) + e%32, low nibble when (e%64) < 32, else high nibble. x = d*sc*q - dmin*m.
        float[] d = [0.5f, 2.0f], dmin = [0.25f, 0.125f];
        int[][] sc = [[1, 17, 33, 63, 5, 20, 47, 62], [63, 0, 16, 31, 32, 48, 15, 1]];
        int[][] mn = [[0, 63, 2, 40, 31, 16, 50, 7], [9, 10, 60, 0, 63, 17, 33, 48]];
        var q = new int[2, 256];
        for (int b = 0; b < 2; b++)
            for (int e = 0; e < 256; e++)
                q[b, e] = (e * 7 + e / 16 + b * 3) % 16;

        var bytes = new byte[2 * 144];
        for (int b = 0; b < 2; b++)
        {
            int o = 144 * b;
            Bits.PutU16(bytes, o, Bits.Half(d[b]));
            Bits.PutU16(bytes, o + 2, Bits.Half(dmin[b]));
            PackQ4KScales(sc[b], mn[b]).CopyTo(bytes, o + 4);
            for (int e = 0; e < 256; e++)
            {
                int at = o + 16 + 32 * (e / 64) + e % 32;
                bytes[at] |= (byte)((e % 64) < 32 ? q[b, e] : q[b, e] << 4);
            }
        }

        var dst = new float[512];
        Dequantize.ToF32(TensorType.Q4_K, bytes, dst);
        Assert.Multiple(() =>
        {
            for (int b = 0; b < 2; b++)
                for (int e = 0; e < 256; e++)
                {
                    int sub = e / 32;
                    double expected = (double)d[b] * sc[b][sub] * q[b, e] - (double)dmin[b] * mn[b][sub];
                    Assert.That(dst[256 * b + e], Is.EqualTo(expected).Within(1e-9), $"super-block {b} value {e}");
                }
        });
        // One value worked fully by hand: block 0, value 200 is sub-block 6 (scale 47, min 50), q = (1400 + 12) % 16 = 4.
        Assert.That(dst[200], Is.EqualTo(0.5 * 47 * 4 - 0.25 * 50).Within(1e-9));
    }

    // ------------------------------------------------------------ Q6_K

    [Test]
    public void Q6_K_TwoHandPackedSuperBlocks()
    {
        // Super-block: ql[128], qh[64], int8 scales[16], f16 d. Value e (6-bit q, x = d * scale[e/16] * (q - 32)):
        // half h = e/128, r = e%128, group g = r/32, l = r%32; low 4 bits in ql[64h + l + 32*(g%2)] (low nibble for
        // g < 2, high nibble otherwise); high 2 bits in qh[32h + l] at bit 2g.
        float[] d = [0.125f, -1.0f];
        int[][] scales =
        [
            [1, -2, 3, -4, 5, -6, 7, -8, 127, -128, 64, -64, 10, 0, -1, 33],
            [-3, 7, 0, 1, 2, 3, 4, 5, -100, 100, 6, 7, 8, 9, -10, 11],
        ];
        var q = new int[2, 256];
        for (int b = 0; b < 2; b++)
            for (int e = 0; e < 256; e++)
                q[b, e] = (e * 11 + b * 5 + e / 64) % 64;
        q[0, 0] = 0;
        q[0, 255] = 63;

        var bytes = new byte[2 * 210];
        for (int b = 0; b < 2; b++)
        {
            int o = 210 * b;
            for (int e = 0; e < 256; e++)
            {
                int h = e / 128, r = e % 128, g = r / 32, l = r % 32;
                int low = q[b, e] & 15, high = q[b, e] >> 4;
                int ql = o + 64 * h + l + 32 * (g % 2);
                bytes[ql] |= (byte)(g < 2 ? low : low << 4);
                bytes[o + 128 + 32 * h + l] |= (byte)(high << (2 * g));
            }
            for (int s = 0; s < 16; s++) bytes[o + 192 + s] = (byte)(sbyte)scales[b][s];
            Bits.PutU16(bytes, o + 208, Bits.Half(d[b]));
        }

        var dst = new float[512];
        Dequantize.ToF32(TensorType.Q6_K, bytes, dst);
        Assert.Multiple(() =>
        {
            for (int b = 0; b < 2; b++)
                for (int e = 0; e < 256; e++)
                {
                    double expected = (double)d[b] * scales[b][e / 16] * (q[b, e] - 32);
                    Assert.That(dst[256 * b + e], Is.EqualTo(expected).Within(1e-9), $"super-block {b} value {e}");
                }
        });
        Assert.That(dst[0], Is.EqualTo(0.125 * 1 * -32).Within(1e-9), "q=0 is the most negative");
        Assert.That(dst[255], Is.EqualTo(0.125 * 33 * 31).Within(1e-9), "q=63 is the most positive");
    }

    // ------------------------------------------------------------ Q4_1, Q5_0, Q5_1, IQ4_NL (32 values a block)

    [Test]
    public void Q4_1_TwoHandPackedBlocks()
    {
        // Block: f16 d, f16 m, 16 bytes; byte j = value j (low nibble) and value j+16 (high nibble). x = d*q + m.
        float[] d = [0.25f, 4.0f], m = [-1.5f, 0.125f];
        var q = new int[2, 32];
        for (int j = 0; j < 32; j++)
        {
            q[0, j] = (j * 7 + 1) % 16;
            q[1, j] = 15 - (j * 3) % 16;
        }
        var bytes = new byte[2 * 20];
        for (int b = 0; b < 2; b++)
        {
            Bits.PutU16(bytes, 20 * b, Bits.Half(d[b]));
            Bits.PutU16(bytes, 20 * b + 2, Bits.Half(m[b]));
            for (int j = 0; j < 16; j++) bytes[20 * b + 4 + j] = (byte)(q[b, j] | (q[b, j + 16] << 4));
        }
        var dst = new float[64];
        Dequantize.ToF32(TensorType.Q4_1, bytes, dst);
        for (int b = 0; b < 2; b++)
            for (int j = 0; j < 32; j++)
                Assert.That(dst[32 * b + j], Is.EqualTo((double)d[b] * q[b, j] + m[b]), $"block {b} value {j}");
        Assert.That(dst[16], Is.EqualTo(0.25 * ((16 * 7 + 1) % 16) - 1.5), "value 16 is byte 0's high nibble: q = 1");
    }

    /// <summary>Q5_0/Q5_1 quants: 16 bytes of nibbles (as Q4_0) and a little-endian 32-bit word whose bit j is value j's fifth bit.</summary>
    private static (uint Qh, byte[] Qs) PackQ5(int[] q)
    {
        uint qh = 0;
        var qs = new byte[16];
        for (int j = 0; j < 32; j++)
        {
            if ((q[j] & 16) != 0) qh |= 1u << j;
            qs[j % 16] |= (byte)(j < 16 ? q[j] & 15 : (q[j] & 15) << 4);
        }
        return (qh, qs);
    }

    [Test]
    public void Q5_0_TwoHandPackedBlocks()
    {
        // Block: f16 d, u32 qh, 16 bytes of nibbles. x = d*(q - 16), q in 0..31.
        float[] d = [0.5f, -0.0625f];
        var q = new int[2][];
        q[0] = Enumerable.Range(0, 32).Select(j => j).ToArray();          // 0..31: every 5-bit value once
        q[1] = Enumerable.Range(0, 32).Select(j => (j * 13 + 5) % 32).ToArray();
        var bytes = new byte[2 * 22];
        for (int b = 0; b < 2; b++)
        {
            var (qh, qs) = PackQ5(q[b]);
            Bits.PutU16(bytes, 22 * b, Bits.Half(d[b]));
            BitConverter.TryWriteBytes(bytes.AsSpan(22 * b + 2, 4), qh);
            qs.CopyTo(bytes, 22 * b + 6);
        }
        var dst = new float[64];
        Dequantize.ToF32(TensorType.Q5_0, bytes, dst);
        for (int b = 0; b < 2; b++)
            for (int j = 0; j < 32; j++)
                Assert.That(dst[32 * b + j], Is.EqualTo((double)d[b] * (q[b][j] - 16)), $"block {b} value {j}");
        Assert.That(dst[0], Is.EqualTo(-8.0f), "q = 0 is the most negative: 0.5 * -16");
        Assert.That(dst[31], Is.EqualTo(7.5f), "q = 31 (fifth bit is bit 31 of qh): 0.5 * 15");
    }

    [Test]
    public void Q5_1_TwoHandPackedBlocks()
    {
        // Block: f16 d, f16 m, u32 qh, 16 bytes of nibbles. x = d*q + m.
        float[] d = [0.125f, 2.0f], m = [3.0f, -0.5f];
        var q = new int[2][];
        q[0] = Enumerable.Range(0, 32).Select(j => 31 - j).ToArray();
        q[1] = Enumerable.Range(0, 32).Select(j => (j * 9 + 17) % 32).ToArray();
        var bytes = new byte[2 * 24];
        for (int b = 0; b < 2; b++)
        {
            var (qh, qs) = PackQ5(q[b]);
            Bits.PutU16(bytes, 24 * b, Bits.Half(d[b]));
            Bits.PutU16(bytes, 24 * b + 2, Bits.Half(m[b]));
            BitConverter.TryWriteBytes(bytes.AsSpan(24 * b + 4, 4), qh);
            qs.CopyTo(bytes, 24 * b + 8);
        }
        var dst = new float[64];
        Dequantize.ToF32(TensorType.Q5_1, bytes, dst);
        for (int b = 0; b < 2; b++)
            for (int j = 0; j < 32; j++)
                Assert.That(dst[32 * b + j], Is.EqualTo((double)d[b] * q[b][j] + m[b]), $"block {b} value {j}");
        Assert.That(dst[0], Is.EqualTo(0.125 * 31 + 3.0), "worked by hand");
    }

    /// <summary>ggml's kvalues_iq4nl, written out here from ggml-quants.c.</summary>
    private static readonly int[] IQ4Levels = [-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113];

    [Test]
    public void IQ4_NL_TwoHandPackedBlocks()
    {
        // Block: f16 d, 16 bytes of nibbles laid out as Q4_0; x = d * level[q].
        float[] d = [0.5f, -0.03125f];
        var q = new int[2, 32];
        for (int j = 0; j < 32; j++)
        {
            q[0, j] = j % 16;
            q[1, j] = (j * 5 + 2) % 16;
        }
        var bytes = new byte[2 * 18];
        for (int b = 0; b < 2; b++)
        {
            Bits.PutU16(bytes, 18 * b, Bits.Half(d[b]));
            for (int j = 0; j < 16; j++) bytes[18 * b + 2 + j] = (byte)(q[b, j] | (q[b, j + 16] << 4));
        }
        var dst = new float[64];
        Dequantize.ToF32(TensorType.IQ4_NL, bytes, dst);
        for (int b = 0; b < 2; b++)
            for (int j = 0; j < 32; j++)
                Assert.That(dst[32 * b + j], Is.EqualTo((double)d[b] * IQ4Levels[q[b, j]]), $"block {b} value {j}");
        Assert.That(dst[0], Is.EqualTo(-63.5f), "level 0 is -127");
        Assert.That(dst[15], Is.EqualTo(56.5f), "level 15 is 113");
    }

    // ------------------------------------------------------------ Q2_K, Q3_K, Q5_K, IQ4_XS (256 values a block)

    /// <summary>
    /// Where value e of a Q2_K/Q3_K super-block keeps its 2 low bits: half h = e/128 owns bytes 32h..32h+31; within the
    /// half, r = e%128 sits in byte 32h + r%32 at bit pair r/32. Its sub-block of 16 is e/16.
    /// </summary>
    private static (int Byte, int Shift) TwoBitPlace(int e) => (32 * (e / 128) + e % 32, 2 * (e % 128 / 32));

    [Test]
    public void Q2_K_TwoHandPackedSuperBlocks()
    {
        // Super-block: 16 bytes of (scale low nibble, min high nibble), 64 bytes of 2-bit q, f16 d, f16 dmin.
        // x = d*scale[e/16]*q - dmin*min[e/16].
        float[] d = [0.5f, 0.0625f], dmin = [0.25f, 1.0f];
        var sc = new int[2, 16];
        var mn = new int[2, 16];
        var q = new int[2, 256];
        for (int b = 0; b < 2; b++)
        {
            for (int k = 0; k < 16; k++)
            {
                sc[b, k] = (k * 7 + b) % 16;
                mn[b, k] = 15 - (k * 3 + b) % 16;
            }
            for (int e = 0; e < 256; e++) q[b, e] = (e * 3 + e / 64 + b) % 4;
        }
        var bytes = new byte[2 * 84];
        for (int b = 0; b < 2; b++)
        {
            int o = 84 * b;
            for (int k = 0; k < 16; k++) bytes[o + k] = (byte)(sc[b, k] | (mn[b, k] << 4));
            for (int e = 0; e < 256; e++)
            {
                var (at, shift) = TwoBitPlace(e);
                bytes[o + 16 + at] |= (byte)(q[b, e] << shift);
            }
            Bits.PutU16(bytes, o + 80, Bits.Half(d[b]));
            Bits.PutU16(bytes, o + 82, Bits.Half(dmin[b]));
        }
        var dst = new float[512];
        Dequantize.ToF32(TensorType.Q2_K, bytes, dst);
        for (int b = 0; b < 2; b++)
            for (int e = 0; e < 256; e++)
                Assert.That(dst[256 * b + e], Is.EqualTo((double)d[b] * sc[b, e / 16] * q[b, e] - (double)dmin[b] * mn[b, e / 16]),
                    $"super-block {b} value {e}");
        // Value 200 of block 0: sub-block 12 (scale 84%16 = 4, min 15 - 36%16 = 11), q = (600 + 3) % 4 = 3.
        Assert.That(dst[200], Is.EqualTo(0.5 * 4 * 3 - 0.25 * 11));
    }

    /// <summary>
    /// Packs 16 six-bit Q3_K scales into 12 bytes: the low 4 bits of scale i go to the low nibble of byte i (i &lt; 8) or
    /// the high nibble of byte i-8; the top 2 bits go to byte 8 + i%4 at bits 2*(i/4).
    /// </summary>
    private static byte[] PackQ3KScales(int[] scales)
    {
        var s = new byte[12];
        for (int i = 0; i < 16; i++)
        {
            int low = scales[i] & 15, high = scales[i] >> 4;
            if (i < 8) s[i] |= (byte)low;
            else s[i - 8] |= (byte)(low << 4);
            s[8 + i % 4] |= (byte)(high << (2 * (i / 4)));
        }
        return s;
    }

    [Test]
    public void Q3_K_TwoHandPackedSuperBlocks()
    {
        // Super-block: hmask[32], qs[64] (2 low bits, as Q2_K), 12 bytes of 6-bit scales, f16 d. The high bit of value
        // e is bit (e/32) of hmask[e%32]; a clear high bit subtracts 4. x = d*(scale[e/16] - 32)*(low - (high ? 0 : 4)).
        float[] d = [0.25f, -2.0f];
        int[][] scales = [Enumerable.Range(0, 16).Select(k => k * 4 + 1).ToArray(), Enumerable.Range(0, 16).Select(k => 63 - k * 3).ToArray()];
        var q = new int[2, 256]; // 3-bit value: low 2 bits and the high bit
        for (int b = 0; b < 2; b++)
            for (int e = 0; e < 256; e++) q[b, e] = (e * 5 + e / 32 + b) % 8;
        var bytes = new byte[2 * 110];
        for (int b = 0; b < 2; b++)
        {
            int o = 110 * b;
            for (int e = 0; e < 256; e++)
            {
                if ((q[b, e] & 4) != 0) bytes[o + e % 32] |= (byte)(1 << (e / 32));
                var (at, shift) = TwoBitPlace(e);
                bytes[o + 32 + at] |= (byte)((q[b, e] & 3) << shift);
            }
            PackQ3KScales(scales[b]).CopyTo(bytes, o + 96);
            Bits.PutU16(bytes, o + 108, Bits.Half(d[b]));
        }
        var dst = new float[512];
        Dequantize.ToF32(TensorType.Q3_K, bytes, dst);
        for (int b = 0; b < 2; b++)
            for (int e = 0; e < 256; e++)
            {
                int v = (q[b, e] & 3) - ((q[b, e] & 4) != 0 ? 0 : 4);
                Assert.That(dst[256 * b + e], Is.EqualTo((double)d[b] * (scales[b][e / 16] - 32) * v), $"super-block {b} value {e}");
            }
        // Value 0 of block 0: scale 1 (1 - 32 = -31), q = 0 (high bit clear: 0 - 4). 0.25 * -31 * -4 = 31.
        Assert.That(dst[0], Is.EqualTo(31.0f));
    }

    [Test]
    public void Q5_K_TwoHandPackedSuperBlocks()
    {
        // Super-block: f16 d, f16 dmin, 12 bytes of Q4_K's (scale, min) pairs, qh[32], qs[128]. Value e of sub-block
        // k = e/32 (l = e%32): nibble in byte 32*(k/2) + l, low for even k; fifth bit is bit k of qh[l].
        // x = d*scale[k]*q - dmin*min[k].
        float[] d = [1.0f, 0.125f], dmin = [0.5f, 2.0f];
        int[][] sc = [[3, 63, 0, 17, 32, 45, 8, 60], [1, 2, 4, 8, 16, 32, 62, 63]];
        int[][] mn = [[63, 1, 5, 0, 40, 22, 9, 30], [0, 7, 14, 28, 56, 3, 6, 12]];
        var q = new int[2, 256];
        for (int b = 0; b < 2; b++)
            for (int e = 0; e < 256; e++) q[b, e] = (e * 11 + e / 32 + 7 * b) % 32;
        var bytes = new byte[2 * 176];
        for (int b = 0; b < 2; b++)
        {
            int o = 176 * b;
            Bits.PutU16(bytes, o, Bits.Half(d[b]));
            Bits.PutU16(bytes, o + 2, Bits.Half(dmin[b]));
            PackQ4KScales(sc[b], mn[b]).CopyTo(bytes, o + 4);
            for (int e = 0; e < 256; e++)
            {
                int k = e / 32, l = e % 32;
                if ((q[b, e] & 16) != 0) bytes[o + 16 + l] |= (byte)(1 << k);
                bytes[o + 48 + 32 * (k / 2) + l] |= (byte)(k % 2 == 0 ? q[b, e] & 15 : (q[b, e] & 15) << 4);
            }
        }
        var dst = new float[512];
        Dequantize.ToF32(TensorType.Q5_K, bytes, dst);
        for (int b = 0; b < 2; b++)
            for (int e = 0; e < 256; e++)
            {
                int k = e / 32;
                Assert.That(dst[256 * b + e], Is.EqualTo((double)d[b] * sc[b][k] * q[b, e] - (double)dmin[b] * mn[b][k]), $"super-block {b} value {e}");
            }
        // Value 100 of block 0: sub-block 3 (scale 17, min 0), q = (1100 + 3) % 32 = 15.
        Assert.That(dst[100], Is.EqualTo(17.0f * 15));
    }

    [Test]
    public void IQ4_XS_TwoHandPackedSuperBlocks()
    {
        // Super-block: f16 d, u16 scales_h, scales_l[4], qs[128]. Sub-block k (32 values, 16 bytes laid out as IQ4_NL)
        // has a 6-bit scale: low 4 bits in nibble k%2 of scales_l[k/2], top 2 bits at bits 2k of scales_h.
        // x = d*(scale - 32)*level[q].
        float[] d = [0.5f, 0.03125f];
        int[][] ls = [[0, 63, 32, 31, 33, 16, 48, 5], [40, 41, 20, 21, 60, 1, 32, 47]];
        var q = new int[2, 256];
        for (int b = 0; b < 2; b++)
            for (int e = 0; e < 256; e++) q[b, e] = (e * 7 + e / 32 + b) % 16;
        var bytes = new byte[2 * 136];
        for (int b = 0; b < 2; b++)
        {
            int o = 136 * b;
            Bits.PutU16(bytes, o, Bits.Half(d[b]));
            ushort high = 0;
            for (int k = 0; k < 8; k++)
            {
                high |= (ushort)((ls[b][k] >> 4) << (2 * k));
                bytes[o + 4 + k / 2] |= (byte)((ls[b][k] & 15) << (4 * (k % 2)));
            }
            Bits.PutU16(bytes, o + 2, high);
            for (int e = 0; e < 256; e++)
            {
                int k = e / 32, j = e % 32;
                bytes[o + 8 + 16 * k + j % 16] |= (byte)(j < 16 ? q[b, e] : q[b, e] << 4);
            }
        }
        var dst = new float[512];
        Dequantize.ToF32(TensorType.IQ4_XS, bytes, dst);
        for (int b = 0; b < 2; b++)
            for (int e = 0; e < 256; e++)
                Assert.That(dst[256 * b + e], Is.EqualTo((double)d[b] * (ls[b][e / 32] - 32) * IQ4Levels[q[b, e]]), $"super-block {b} value {e}");
        // Value 40 of block 0: sub-block 1 (scale 63: 63 - 32 = 31), q = (280 + 1) % 16 = 9 (level 13).
        Assert.That(dst[40], Is.EqualTo(0.5f * 31 * 13));
    }

    // ------------------------------------------------------------ sizes and argument checks

    [TestCase(TensorType.F32, 3, 12)]
    [TestCase(TensorType.F16, 3, 6)]
    [TestCase(TensorType.BF16, 5, 10)]
    [TestCase(TensorType.Q8_0, 64, 68)]
    [TestCase(TensorType.Q4_0, 96, 54)]
    [TestCase(TensorType.Q4_K, 512, 288)]
    [TestCase(TensorType.Q6_K, 256, 210)]
    [TestCase(TensorType.Q6_K, 0, 0)]
    [TestCase(TensorType.Q4_1, 64, 40)]
    [TestCase(TensorType.Q5_0, 64, 44)]
    [TestCase(TensorType.Q5_1, 32, 24)]
    [TestCase(TensorType.IQ4_NL, 64, 36)]
    [TestCase(TensorType.Q2_K, 256, 84)]
    [TestCase(TensorType.Q3_K, 512, 220)]
    [TestCase(TensorType.Q5_K, 256, 176)]
    [TestCase(TensorType.IQ4_XS, 256, 136)]
    public void ByteSize_OfWholeBlocks(TensorType type, long elements, long expected) =>
        Assert.That(Dequantize.ByteSize(type, elements), Is.EqualTo(expected));

    [Test]
    public void ByteSize_RejectsPartialBlocksAndUnreadableTypes()
    {
        Assert.Throws<ArgumentException>(() => Dequantize.ByteSize(TensorType.Q8_0, 33));
        Assert.Throws<ArgumentException>(() => Dequantize.ByteSize(TensorType.Q4_K, 128));
        Assert.Throws<ArgumentException>(() => Dequantize.ByteSize(TensorType.Other, 32));
        Assert.Throws<ArgumentException>(() => Dequantize.ByteSize(TensorType.F32, -1));
        Assert.Throws<ArgumentException>(() => Dequantize.ByteSize(TensorType.Q8_0, long.MaxValue / 32 * 32));
    }

    [Test]
    public void ToF32_RejectsWrongSourceLength()
    {
        var dst = new float[32];
        var ex = Assert.Throws<ArgumentException>(() => Dequantize.ToF32(TensorType.Q8_0, new byte[33], dst));
        Assert.That(ex!.Message, Does.Contain("34"));
        Assert.Throws<ArgumentException>(() => Dequantize.ToF32(TensorType.F16, new byte[63], dst));
    }

    [TestCase(TensorType.Q8_0)]
    [TestCase(TensorType.Q4_K)]
    [TestCase(TensorType.Q6_K)]
    [TestCase(TensorType.BF16)]
    [TestCase(TensorType.Q5_1)]
    [TestCase(TensorType.Q3_K)]
    [TestCase(TensorType.IQ4_XS)]
    public void ToF32Parallel_MatchesSingleThreaded(TensorType type)
    {
        const int n = 3 * (1 << 18) + 256; // several chunks and a short last one
        var bytes = new byte[Dequantize.ByteSize(type, n)];
        new Random(7).NextBytes(bytes);
        var serial = new float[n];
        var parallel = new float[n];
        Dequantize.ToF32(type, bytes, serial);
        Dequantize.ToF32Parallel(type, bytes, parallel);
        // Random scales include NaN and infinities; equal bit patterns is the right comparison.
        Assert.That(MemoryMarshal.Cast<float, uint>(parallel).SequenceEqual(MemoryMarshal.Cast<float, uint>(serial)), Is.True);
    }
}
