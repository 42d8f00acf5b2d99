using NUnit.Framework;
using System.Runtime.InteropServices;
using LongDep.Models.Quant;

namespace LongDep.Models.Tests.LlamaCpp;

/// <summary>
/// Every block type we read, dequantized by us and by ggml's own <c>to_float</c> (llama.cpp's library), bit for bit:
/// on blocks that ggml's quantizer wrote from random weights (what real files hold), and on random bytes (every bit
/// pattern of scales and quants, including ones no quantizer writes).
/// </summary>
public class GgmlDequantizeTests
{
    public static readonly TensorType[] BlockTypes =
    [
        TensorType.Q8_0, TensorType.Q4_0, TensorType.Q4_1, TensorType.Q5_0, TensorType.Q5_1, TensorType.Q2_K, TensorType.Q3_K,
        TensorType.Q4_K, TensorType.Q5_K, TensorType.Q6_K, TensorType.IQ4_NL, TensorType.IQ4_XS,
    ];

    public static readonly TensorType[] FloatTypes = [TensorType.F16, TensorType.BF16];

    private static void AssertSameBits(float[] ours, float[] ggml, string what)
    {
        Assert.That(ours, Has.Length.EqualTo(ggml.Length));
        var a = MemoryMarshal.Cast<float, uint>(ours);
        var b = MemoryMarshal.Cast<float, uint>(ggml);
        int differ = 0, first = -1;
        for (int i = 0; i < a.Length; i++)
        {
            // NaN payloads may differ between two correct decoders; any NaN matches any NaN.
            if (a[i] == b[i] || (float.IsNaN(ours[i]) && float.IsNaN(ggml[i]))) continue;
            if (differ++ == 0) first = i;
        }
        Assert.That(differ, Is.Zero, differ == 0 ? "" : $"{what}: {differ} of {a.Length} values differ; first at {first}: ours {ours[first]:R}, ggml {ggml[first]:R}");
    }

    private static float[] RandomWeights(int n, int seed)
    {
        var rng = new Random(seed);
        var x = new float[n];
        for (int i = 0; i < n; i++)
        {
            // Normal-ish weights with a few outliers and rows of different scales, as trained matrices have.
            double u1 = 1.0 - rng.NextDouble(), u2 = rng.NextDouble();
            double g = Math.Sqrt(-2 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2);
            double scale = 0.02 * (1 + (i / 256) % 5);
            x[i] = (float)(g * scale * (rng.Next(200) == 0 ? 8 : 1));
        }
        return x;
    }

    [TestCaseSource(nameof(BlockTypes))]
    public void GgmlQuantizedBlocks_DequantizeBitExactlyAsGgml(TensorType type)
    {
        var info = GgmlTypes.Of(type);
        const int rows = 16, perRow = 512;
        var weights = RandomWeights(rows * perRow, 11 + (int)type);
        byte[] blocks = Ggml.Quantize(info, weights, rows, perRow);

        var ours = new float[weights.Length];
        Dequantize.ToF32(type, blocks, ours);
        var ggml = Ggml.Dequantize(info, blocks, weights.Length);
        AssertSameBits(ours, ggml, $"{type} from ggml's quantizer");

        // And the round trip is close to the weights: the blocks are real quantizations, not zeros.
        double err = 0, norm = 0;
        for (int i = 0; i < weights.Length; i++)
        {
            err += (ours[i] - weights[i]) * (double)(ours[i] - weights[i]);
            norm += weights[i] * (double)weights[i];
        }
        Assert.That(Math.Sqrt(err / norm), Is.LessThan(0.5), $"{type}: relative RMS error of the round trip");
        Assert.That(Math.Sqrt(err / norm), Is.GreaterThan(0), $"{type}: a lossy type must lose something");
    }

    [TestCaseSource(nameof(BlockTypes))]
    [TestCaseSource(nameof(FloatTypes))]
    public void RandomBytes_DequantizeBitExactlyAsGgml(TensorType type)
    {
        var info = GgmlTypes.Of(type);
        int count = 64 * 256;
        var bytes = new byte[Dequantize.ByteSize(type, count)];
        new Random(5 + (int)type).NextBytes(bytes);
        if (info.BlockElements > 1)
        {
            // Keep the f16 scales finite (a random half is Inf/NaN 1 time in 32): an Inf*0 NaN is not what this checks.
            var scaleOffsets = type switch
            {
                TensorType.Q2_K => new[] { 80, 82 },
                TensorType.Q3_K => [108],
                TensorType.Q6_K => [208],
                TensorType.Q4_1 or TensorType.Q5_1 or TensorType.Q4_K or TensorType.Q5_K => [0, 2],
                _ => [0],
            };
            for (int b = 0; b < bytes.Length / info.BlockBytes; b++)
                foreach (int o in scaleOffsets)
                    bytes[b * info.BlockBytes + o + 1] &= 0xFB; // exponent below 31, sign kept
        }
        var ours = new float[count];
        Dequantize.ToF32(type, bytes, ours);
        AssertSameBits(ours, Ggml.Dequantize(info, bytes, count), $"{type} from random bytes");
    }
}
