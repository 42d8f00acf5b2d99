using System.Numerics;
using LongDep.Cuda.Twins;
using LongDep.Models;

namespace LongDep.Cuda.Tests;

/// <summary>The C# twins against hand-worked cases and straightforward float64 loops (run everywhere).</summary>
public class TwinTests
{
    private static float[] RandomFloats(Random r, int n, double scale = 1) =>
        Enumerable.Range(0, n).Select(_ => (float)((r.NextDouble() * 2 - 1) * scale)).ToArray();

    [Test]
    public void BFloat16_RoundsToNearestEven()
    {
        Assert.Multiple(() =>
        {
            Assert.That(BFloat16Bits.FromFloat(1.0f), Is.EqualTo(0x3F80));
            Assert.That(BFloat16Bits.FromFloat(-2.0f), Is.EqualTo(0xC000));
            // exactly halfway: ties go to the even mantissa
            Assert.That(BFloat16Bits.FromFloat(BitConverter.UInt32BitsToSingle(0x3F808000)), Is.EqualTo(0x3F80));
            Assert.That(BFloat16Bits.FromFloat(BitConverter.UInt32BitsToSingle(0x3F818000)), Is.EqualTo(0x3F82));
            // above halfway rounds up
            Assert.That(BFloat16Bits.FromFloat(BitConverter.UInt32BitsToSingle(0x3F808001)), Is.EqualTo(0x3F81));
            Assert.That(BFloat16Bits.FromFloat(float.PositiveInfinity), Is.EqualTo(0x7F80));
            Assert.That(float.IsNaN(BFloat16Bits.ToFloat(BFloat16Bits.FromFloat(float.NaN))), Is.True);
            Assert.That(BFloat16Bits.ToFloat(0x4049), Is.EqualTo(3.140625f));
        });
    }

    [Test]
    public void ElementTypes_RoundTripMatchesRound()
    {
        var r = new Random(1);
        var values = RandomFloats(r, 200, 1000);
        foreach (var type in new[] { CudaPrecision.F32, CudaPrecision.F16, CudaPrecision.BF16 })
        {
            var raw = new byte[values.Length * type.ElementSize()];
            ElementTypes.FromFloat(values, type, raw);
            var back = new float[values.Length];
            ElementTypes.ToFloat(raw, type, back);
            for (int i = 0; i < values.Length; i++)
                Assert.That(back[i], Is.EqualTo(ElementTypes.Round(values[i], type)), $"{type} element {i}");
            if (type == CudaPrecision.F16) Assert.That(back[7], Is.EqualTo((float)(Half)values[7]));
        }
    }

    [Test]
    public void RmsNorm_HandWorked()
    {
        // x = [3, 4]: mean square 12.5, rms = 3.5355339; w = [1, 2]
        var y = new float[2];
        RmsNormTwin.Apply([3f, 4f], [1f, 2f], y, 1, 2, 0f);
        Assert.That(y[0], Is.EqualTo(3 / Math.Sqrt(12.5)).Within(1e-6));
        Assert.That(y[1], Is.EqualTo(8 / Math.Sqrt(12.5)).Within(1e-6));
    }

    [Test]
    public void RmsNorm_RowsAreIndependent_AndEpsApplies()
    {
        var r = new Random(2);
        var x = RandomFloats(r, 3 * 5, 4);
        var w = RandomFloats(r, 5, 2);
        var y = new float[15];
        RmsNormTwin.Apply(x, w, y, 3, 5, 0.5f);
        for (int row = 0; row < 3; row++)
        {
            double ms = 0;
            for (int i = 0; i < 5; i++) ms += x[row * 5 + i] * (double)x[row * 5 + i];
            ms /= 5;
            for (int i = 0; i < 5; i++)
                Assert.That(y[row * 5 + i], Is.EqualTo(w[i] * x[row * 5 + i] / Math.Sqrt(ms + 0.5)).Within(1e-5));
        }
    }

    [Test]
    public void Rope_InverseFrequencies_HandWorked()
    {
        var f = RopeTwin.InverseFrequencies(10000f, 4);
        Assert.That(f, Is.EqualTo(new[] { 1.0, 0.01 }).Within(1e-15));
        Assert.Throws<ArgumentException>(() => RopeTwin.InverseFrequencies(10000f, 5));
    }

    [TestCase(RopeStyle.AdjacentPairs)]
    [TestCase(RopeStyle.Halves)]
    public void Rope_MatchesComplexRotation_AtLargePositions(RopeStyle style)
    {
        const int heads = 2, d = 8, stride = 20, rows = 3;
        var r = new Random(3);
        var x = RandomFloats(r, rows * stride);
        int[] positions = [0, 5, 131071];
        var y = (float[])x.Clone();
        RopeTwin.Apply(y, positions, RopeTwin.InverseFrequencies(500000f, d), rows, heads, d, stride, style);
        for (int row = 0; row < rows; row++)
        {
            for (int i = heads * d; i < stride; i++) Assert.That(y[row * stride + i], Is.EqualTo(x[row * stride + i]), "padding untouched");
            for (int h = 0; h < heads; h++)
                for (int k = 0; k < d / 2; k++)
                {
                    int i0 = style == RopeStyle.AdjacentPairs ? 2 * k : k;
                    int i1 = style == RopeStyle.AdjacentPairs ? 2 * k + 1 : k + d / 2;
                    int b = row * stride + h * d;
                    double angle = positions[row] * Math.Pow(500000.0, -2.0 * k / d);
                    var z = new Complex(x[b + i0], x[b + i1]) * Complex.FromPolarCoordinates(1, angle);
                    Assert.That(y[b + i0], Is.EqualTo(z.Real).Within(2e-6), $"row {row} head {h} pair {k}");
                    Assert.That(y[b + i1], Is.EqualTo(z.Imaginary).Within(2e-6));
                }
        }
    }

    [Test]
    public void Rope_AdjacentAndHalvesAreTheSameRotationUnderPermutation()
    {
        const int d = 8;
        var r = new Random(4);
        var x = RandomFloats(r, d);
        // put adjacent pair k = (2k, 2k+1) at (k, k + d/2)
        var permuted = new float[d];
        for (int k = 0; k < d / 2; k++)
        {
            permuted[k] = x[2 * k];
            permuted[k + d / 2] = x[2 * k + 1];
        }
        var inv = RopeTwin.InverseFrequencies(10000f, d);
        RopeTwin.Apply(x, [77], inv, 1, 1, d, d, RopeStyle.AdjacentPairs);
        RopeTwin.Apply(permuted, [77], inv, 1, 1, d, d, RopeStyle.Halves);
        for (int k = 0; k < d / 2; k++)
        {
            Assert.That(permuted[k], Is.EqualTo(x[2 * k]));
            Assert.That(permuted[k + d / 2], Is.EqualTo(x[2 * k + 1]));
        }
    }

    [Test]
    public void SwiGlu_And_AddBias_HandWorked()
    {
        var output = new float[3];
        ElementwiseTwin.SwiGlu([0f, 2f, -30f], [5f, 3f, 1f], output, 3);
        Assert.That(output[0], Is.EqualTo(0f));
        Assert.That(output[1], Is.EqualTo(2 / (1 + Math.Exp(-2)) * 3).Within(1e-6));
        Assert.That(output[2], Is.EqualTo(-30 / (1 + Math.Exp(30))).Within(1e-15));
        var x = new float[] { 1, 2, 3, 4, 5, 6 };
        ElementwiseTwin.AddBias(x, [10f, 20f, 30f], 2, 3);
        Assert.That(x, Is.EqualTo(new float[] { 11, 22, 33, 14, 25, 36 }));
    }

    [Test]
    public void Embedding_GathersRows_AndMarksBadTokensWithNaN()
    {
        var table = new float[] { 0, 1, 10, 11, 20, 21 };
        var output = new float[6];
        EmbeddingTwin.Gather([2, 0, 3], table, output, 3, 2, 3);
        Assert.That(output[..4], Is.EqualTo(new float[] { 20, 21, 0, 1 }));
        Assert.That(float.IsNaN(output[4]) && float.IsNaN(output[5]), Is.True);
    }

    [Test]
    public void Attention_SingleHeadTwoKeys_HandWorked()
    {
        // q = [1, 0]; keys [1, 0] and [0, 1]; scale 1: scores for row 1 are (q1·k0, q1·k1)
        float[] q = [0, 0, 1, 0];
        float[] k = [1, 0, 0, 1];
        float[] v = [2, 4, 6, 8];
        var output = new float[4];
        AttentionTwin.Forward(q, k, v, default, default, default, output, 1, 2, 0, 1, 1, 2, 1f);
        // row 0 sees only key 0
        Assert.That(output[0], Is.EqualTo(2f));
        Assert.That(output[1], Is.EqualTo(4f));
        double p0 = Math.Exp(1) / (Math.Exp(1) + Math.Exp(0));
        Assert.That(output[2], Is.EqualTo(p0 * 2 + (1 - p0) * 6).Within(1e-6));
        Assert.That(output[3], Is.EqualTo(p0 * 4 + (1 - p0) * 8).Within(1e-6));
    }

    [Test]
    public void Attention_MatchesExplicitSoftmaxMatrix_WithGqa()
    {
        const int T = 9, heads = 4, kvHeads = 2, d = 6;
        var r = new Random(5);
        var q = RandomFloats(r, T * heads * d, 2);
        var k = RandomFloats(r, T * kvHeads * d, 2);
        var v = RandomFloats(r, T * kvHeads * d);
        var output = new float[T * heads * d];
        float scale = 0.37f;
        AttentionTwin.Forward(q, k, v, default, default, default, output, 1, T, 0, heads, kvHeads, d, scale);
        for (int h = 0; h < heads; h++)
        {
            int g = h / (heads / kvHeads);
            for (int t = 0; t < T; t++)
            {
                var scores = new double[t + 1];
                for (int s = 0; s <= t; s++)
                    for (int c = 0; c < d; c++) scores[s] += (double)q[t * heads * d + h * d + c] * k[s * kvHeads * d + g * d + c] * scale;
                var p = ReferenceModel.Softmax(scores);
                for (int c = 0; c < d; c++)
                {
                    double expected = 0;
                    for (int s = 0; s <= t; s++) expected += p[s] * v[s * kvHeads * d + g * d + c];
                    Assert.That(output[t * heads * d + h * d + c], Is.EqualTo(expected).Within(1e-6));
                }
            }
        }
    }

    [Test]
    public void Attention_WithPrefix_EqualsAttentionOverTheConcatenation()
    {
        // Two sequences of 5 rows, each reading a 4-row prefix from a shared buffer at different rows.
        const int nSeq = 2, seqLen = 5, prefixLen = 4, heads = 2, kvHeads = 1, d = 4;
        var r = new Random(6);
        var q = RandomFloats(r, nSeq * seqLen * heads * d);
        var k = RandomFloats(r, nSeq * seqLen * kvHeads * d);
        var v = RandomFloats(r, nSeq * seqLen * kvHeads * d);
        var kp = RandomFloats(r, 12 * kvHeads * d);
        var vp = RandomFloats(r, 12 * kvHeads * d);
        int[] starts = [8, 3];
        var output = new float[nSeq * seqLen * heads * d];
        AttentionTwin.Forward(q, k, v, kp, vp, starts, output, nSeq, seqLen, prefixLen, heads, kvHeads, d, 0.5f);
        for (int b = 0; b < nSeq; b++)
        {
            // the same sequence with its prefix written as its first rows, no prefix buffer
            int len = prefixLen + seqLen;
            var qc = new float[len * heads * d];
            var kc = new float[len * kvHeads * d];
            var vc = new float[len * kvHeads * d];
            Array.Copy(kp, starts[b] * kvHeads * d, kc, 0, prefixLen * kvHeads * d);
            Array.Copy(vp, starts[b] * kvHeads * d, vc, 0, prefixLen * kvHeads * d);
            Array.Copy(k, b * seqLen * kvHeads * d, kc, prefixLen * kvHeads * d, seqLen * kvHeads * d);
            Array.Copy(v, b * seqLen * kvHeads * d, vc, prefixLen * kvHeads * d, seqLen * kvHeads * d);
            Array.Copy(q, b * seqLen * heads * d, qc, prefixLen * heads * d, seqLen * heads * d);
            var oc = new float[len * heads * d];
            AttentionTwin.Forward(qc, kc, vc, default, default, default, oc, 1, len, 0, heads, kvHeads, d, 0.5f);
            for (int i = 0; i < seqLen * heads * d; i++)
                Assert.That(output[b * seqLen * heads * d + i], Is.EqualTo(oc[prefixLen * heads * d + i]).Within(1e-6), $"seq {b} value {i}");
        }
    }

    [Test]
    public void Pfs_ThreePasses_MatchMaterializedProbabilities()
    {
        const int T = 40, heads = 4, kvHeads = 2, d = 6;
        var r = new Random(7);
        var q = RandomFloats(r, T * heads * d, 2);
        var k = RandomFloats(r, T * kvHeads * d, 2);
        int[] starts = [30, 21];
        int[] ends = [36, 25];
        const int maxSpanLen = 6;
        float scale = (float)(1 / Math.Sqrt(d));
        var rowMax = new float[2 * heads * maxSpanLen];
        var rowSum = new float[2 * heads * maxSpanLen];
        var col = new float[2 * T];
        PfsTwin.RowStats(q, k, starts, ends, rowMax, rowSum, 2, maxSpanLen, heads, kvHeads, d, scale);
        PfsTwin.ColumnMass(q, k, starts, ends, rowMax, rowSum, col, 2, maxSpanLen, T, heads, kvHeads, d, scale);
        int[] itemSpan = [0, 0, 1];
        int[] lo = [30 - 8, 30 - 16, 21 - 8];
        int[] hi = [36 - 8, 36 - 16, 25 - 8];
        var pfs = new double[3];
        PfsTwin.WindowSum(col, itemSpan, lo, hi, pfs, 3, T);

        for (int sp = 0; sp < 2; sp++)
        {
            var expectedCol = new double[starts[sp]];
            for (int h = 0; h < heads; h++)
                for (int t = starts[sp]; t < ends[sp]; t++)
                {
                    var scores = new double[starts[sp]];
                    for (int s = 0; s < starts[sp]; s++)
                        for (int c = 0; c < d; c++) scores[s] += (double)q[t * heads * d + h * d + c] * scale * k[s * kvHeads * d + h / 2 * d + c];
                    var p = ReferenceModel.Softmax(scores);
                    for (int s = 0; s < starts[sp]; s++) expectedCol[s] += p[s] / heads;
                }
            for (int s = 0; s < starts[sp]; s++) Assert.That(col[sp * T + s], Is.EqualTo(expectedCol[s]).Within(1e-6), $"span {sp} col {s}");
            Assert.That(expectedCol.Sum(), Is.EqualTo(ends[sp] - starts[sp]).Within(1e-9), "each row's probabilities sum to 1");
            for (int i = 0; i < 3; i++)
            {
                if (itemSpan[i] != sp) continue;
                double expected = 0;
                for (int s = lo[i]; s < hi[i]; s++) expected += expectedCol[s];
                Assert.That(pfs[i], Is.EqualTo(expected).Within(1e-6), $"item {i}");
            }
        }
    }

    [Test]
    public void LayerNorm_HandWorked_AndInPlace()
    {
        // x = [1, 3]: mean 2, variance 1; w = [2, 0.5], b = [1, -1] → [(−1)·2 + 1, 1·0.5 − 1] = [−1, −0.5]
        var y = new float[2];
        LayerNormTwin.Apply([1f, 3f], [2f, 0.5f], [1f, -1f], y, 1, 2, 0f);
        Assert.That(y, Is.EqualTo(new[] { -1f, -0.5f }).Within(1e-6));
        // eps enters under the root: var 1 + eps 3 → 1/2
        float[] x = [1f, 3f];
        LayerNormTwin.Apply(x, [1f, 1f], [0f, 0f], x, 1, 2, 3f);
        Assert.That(x, Is.EqualTo(new[] { -0.5f, 0.5f }).Within(1e-6), "y may be x");
    }

    [Test]
    public void RmsNormAdd_AndHeadNorm_AreRmsNormsOfTheirParts()
    {
        // h += RMSNorm([3, 4]) with w = [1, 2]: 3 / sqrt(12.5), 8 / sqrt(12.5)
        float[] h = [10f, 20f];
        RmsNormTwin.ApplyAdd([3f, 4f], [1f, 2f], h, 1, 2, 0f);
        Assert.That(h[0], Is.EqualTo(10 + 3 / Math.Sqrt(12.5)).Within(1e-5));
        Assert.That(h[1], Is.EqualTo(20 + 8 / Math.Sqrt(12.5)).Within(1e-5));
        // two heads of 2 in a row of stride 5 (the fifth value untouched); each head normed alone; pre-scale cancels
        float[] x = [3f, 4f, 0f, 2f, 9f];
        RmsNormTwin.HeadNorm(x, [1f, 1f], 1, 2, 2, 5, 0f, preScale: 10f);
        Assert.That(x[0], Is.EqualTo(3 / Math.Sqrt(12.5)).Within(1e-6));
        Assert.That(x[1], Is.EqualTo(4 / Math.Sqrt(12.5)).Within(1e-6));
        Assert.That(x[2..4], Is.EqualTo(new[] { 0f, (float)Math.Sqrt(2) }).Within(1e-6));
        Assert.That(x[4], Is.EqualTo(9f));
    }

    [Test]
    public void Embedding_Scale_AndLearnedPositions()
    {
        var output = new float[4];
        EmbeddingTwin.Gather([1, 0], [1f, 2f, 3f, 4f], output, 2, 2, 2, scale: 0.5f);
        Assert.That(output, Is.EqualTo(new[] { 1.5f, 2f, 0.5f, 1f }));
        // table rows offset + position: positions 0 and 2 with offset 2 read rows 2 and 4
        float[] table = [0, 0, 0, 0, 10, 11, 0, 0, 40, 41];
        EmbeddingTwin.AddPositions([0, 2], table, output, 2, 2, 2, 5);
        Assert.That(output, Is.EqualTo(new[] { 11.5f, 13f, 40.5f, 42f }));
        EmbeddingTwin.AddPositions([3], table, output, 1, 2, 2, 5);
        Assert.That(float.IsNaN(output[0]) && float.IsNaN(output[1]), Is.True, "a position past the table is a NaN row");
    }

    [Test]
    public void GeGlu_And_BiasRelu_HandWorked()
    {
        // gelu_tanh(1) = 0.5 (1 + tanh(sqrt(2/pi) · 1.044715)) = 0.8411920; gelu_tanh(0) = 0
        var y = new float[2];
        ElementwiseTwin.GeGluTanh([1f, 0f], [2f, 5f], y, 2);
        Assert.That(y[0], Is.EqualTo(2 * 0.5 * (1 + Math.Tanh(Math.Sqrt(2 / Math.PI) * 1.044715))).Within(1e-6));
        Assert.That(y[0], Is.EqualTo(2 * 0.841192f).Within(1e-5));
        Assert.That(y[1], Is.EqualTo(0f));
        var r = new float[4];
        ElementwiseTwin.BiasRelu([1f, -1f, -3f, 0.5f], [0.5f, 2f], r, 2, 2);
        Assert.That(r, Is.EqualTo(new[] { 1.5f, 1f, 0f, 2.5f }));
        ElementwiseTwin.BiasRelu([1f, -1f], default, r, 1, 2);
        Assert.That(r[..2], Is.EqualTo(new[] { 1f, 0f }));
    }

    [Test]
    public void Rope_AttentionFactor_ScalesTheRotation()
    {
        // position 1, invFreq 0: no rotation, so the factor multiplies the pair
        float[] x = [3f, 4f];
        RopeTwin.Apply(x, [1], [0.0], 1, 1, 2, 2, RopeStyle.Halves, scale: 1.5f);
        Assert.That(x, Is.EqualTo(new[] { 4.5f, 6f }).Within(1e-6));
    }

    [Test]
    public void Attention_WindowAndSoftCap_MatchExplicitMasks()
    {
        const int T = 12, heads = 2, kvHeads = 1, d = 4, window = 3;
        const float cap = 0.8f, scale = 0.9f;
        var r = new Random(8);
        var q = RandomFloats(r, T * heads * d, 2);
        var k = RandomFloats(r, T * kvHeads * d, 2);
        var v = RandomFloats(r, T * kvHeads * d);
        var output = new float[T * heads * d];
        AttentionTwin.Forward(q, k, v, default, default, default, output, 1, T, 0, heads, kvHeads, d, scale, window, cap);
        for (int h = 0; h < heads; h++)
            for (int t = 0; t < T; t++)
            {
                // keys t − 2 .. t only, scores cap · tanh(z / cap)
                var keys = Enumerable.Range(0, t + 1).Where(s => t - s < window).ToArray();
                var scores = keys.Select(s =>
                {
                    double z = 0;
                    for (int c = 0; c < d; c++) z += (double)q[t * heads * d + h * d + c] * k[s * d + c] * scale;
                    return cap * Math.Tanh(z / cap);
                }).ToArray();
                var p = ReferenceModel.Softmax(scores);
                for (int c = 0; c < d; c++)
                {
                    double expected = keys.Select((s, i) => p[i] * v[s * d + c]).Sum();
                    Assert.That(output[t * heads * d + h * d + c], Is.EqualTo(expected).Within(1e-6), $"head {h} row {t}");
                }
            }
    }

    [Test]
    public void Pfs_WithAWindow_IsTheSoftmaxOverTheWindowsKeys_AndRowsThatSeeNoneGiveNothing()
    {
        const int T = 30, heads = 2, kvHeads = 1, d = 4, window = 4;
        var r = new Random(9);
        var q = RandomFloats(r, T * heads * d, 2);
        var k = RandomFloats(r, T * kvHeads * d, 2);
        int[] starts = [20];
        int[] ends = [26];
        const int maxSpanLen = 6;
        var rowMax = new float[heads * maxSpanLen];
        var rowSum = new float[heads * maxSpanLen];
        var col = new float[T];
        PfsTwin.RowStats(q, k, starts, ends, rowMax, rowSum, 1, maxSpanLen, heads, kvHeads, d, 1f, window);
        PfsTwin.ColumnMass(q, k, starts, ends, rowMax, rowSum, col, 1, maxSpanLen, T, heads, kvHeads, d, 1f, default, window);
        var expected = new double[T];
        for (int h = 0; h < heads; h++)
            for (int t = 20; t < 26; t++)
            {
                // row t sees keys max(0, t − 3) .. 19: rows 20..22; rows 23..25 see none of the keys before the span
                var keys = Enumerable.Range(0, 20).Where(s => t - s < window).ToArray();
                if (t >= 23)
                {
                    Assert.That(keys, Is.Empty);
                    Assert.That(rowSum[h * maxSpanLen + t - 20], Is.Zero);
                    Assert.That(rowMax[h * maxSpanLen + t - 20], Is.EqualTo(float.NegativeInfinity));
                    continue;
                }
                var p = ReferenceModel.Softmax(keys.Select(s => Enumerable.Range(0, d).Sum(c => (double)q[t * heads * d + h * d + c] * k[s * d + c])).ToArray());
                for (int i = 0; i < keys.Length; i++) expected[keys[i]] += p[i] / heads;
            }
        for (int s = 0; s < T; s++) Assert.That(col[s], Is.EqualTo(expected[s]).Within(1e-6), $"col {s}");
        Assert.That(col.Sum(), Is.EqualTo(3).Within(1e-5), "three rows see a key");
    }

    [Test]
    public void Loss_SoftCap_CapsTheLogitsBeforeTheSoftmax()
    {
        // logits [0, 10] capped at 2: [0, 2 tanh 5]; target 0
        var nll = new float[1];
        LossTwin.RowNll([0f, 10f], [0], nll, 1, 2, softCap: 2f);
        double z = 2 * Math.Tanh(5);
        Assert.That(nll[0], Is.EqualTo(Math.Log(1 + Math.Exp(z))).Within(1e-6));
    }

    [Test]
    public void Loss_RowNll_AndSegments_HandWorked()
    {
        // row 0: logits [0, ln 3], target 1 → p = 3/4 → nll = ln(4/3); row 1 skipped; row 2: uniform over 2 → ln 2
        float[] logits = [0f, (float)Math.Log(3), 5f, 5f, 1f, 1f];
        int[] targets = [1, -1, 0];
        var nll = new float[3];
        LossTwin.RowNll(logits, targets, nll, 3, 2);
        Assert.That(nll[0], Is.EqualTo(Math.Log(4.0 / 3)).Within(1e-6));
        Assert.That(nll[1], Is.EqualTo(0f));
        Assert.That(nll[2], Is.EqualTo(Math.Log(2)).Within(1e-6));
        var sums = new double[2];
        var counts = new int[2];
        LossTwin.SegmentSum(nll, targets, [0, 1], [2, 2], sums, counts, 2);
        Assert.That(sums[0], Is.EqualTo(nll[0]).Within(1e-12));
        Assert.That(counts, Is.EqualTo(new[] { 1, 1 }));
        Assert.That(sums[1], Is.EqualTo(nll[2]).Within(1e-12));
        var bad = new float[1];
        LossTwin.RowNll([1f, 2f], [2], bad, 1, 2);
        Assert.That(float.IsNaN(bad[0]), Is.True, "a target past the vocabulary gives NaN");
    }

    [Test]
    public void Gemm_AllTransposes_MatchMatrixProduct()
    {
        const int m = 3, n = 4, k = 5;
        var r = new Random(8);
        var A = new double[m, k];
        var B = new double[k, n];
        for (int i = 0; i < m; i++) for (int p = 0; p < k; p++) A[i, p] = r.Next(-5, 6);
        for (int p = 0; p < k; p++) for (int j = 0; j < n; j++) B[p, j] = r.Next(-5, 6);
        foreach (bool ta in new[] { false, true })
            foreach (bool tb in new[] { false, true })
            {
                // store op(A) = A column-major: as stored, A is [m, k] (lda = m + 1) or its transpose [k, m] (lda = k + 2)
                int lda = ta ? k + 2 : m + 1, ldb = tb ? n + 1 : k + 3, ldc = m + 2;
                var a = new float[lda * (ta ? m : k)];
                var b = new float[ldb * (tb ? k : n)];
                for (int i = 0; i < m; i++) for (int p = 0; p < k; p++) a[ta ? p + i * lda : i + p * lda] = (float)A[i, p];
                for (int p = 0; p < k; p++) for (int j = 0; j < n; j++) b[tb ? j + p * ldb : p + j * ldb] = (float)B[p, j];
                var c = Enumerable.Repeat(1f, ldc * n).ToArray();
                GemmTwin.Gemm(ta, tb, m, n, k, 2f, a, lda, b, ldb, 0.5f, c, ldc);
                for (int i = 0; i < m; i++)
                    for (int j = 0; j < n; j++)
                    {
                        double expected = 0.5;
                        for (int p = 0; p < k; p++) expected += 2 * A[i, p] * B[p, j];
                        Assert.That(c[i + j * ldc], Is.EqualTo(expected), $"transA {ta} transB {tb} ({i},{j})");
                    }
                Assert.That(c[m], Is.EqualTo(1f), "padding rows of C untouched");
            }
    }

    [Test]
    public void Linear_IsRowMajorMatrixVector()
    {
        float[] w = [1, 2, 3, 4, 5, 6]; // [2, 3]
        float[] x = [1, 0, -1, 2, 1, 0]; // two rows of 3
        var y = new float[] { 100, 100, 100, 100 };
        GemmTwin.Linear(x, w, y, 2, 3, 2, accumulate: false);
        Assert.That(y, Is.EqualTo(new float[] { -2, -2, 4, 13 }));
        GemmTwin.Linear(x, w, y, 2, 3, 2, accumulate: true);
        Assert.That(y, Is.EqualTo(new float[] { -4, -4, 8, 26 }));
    }
}
