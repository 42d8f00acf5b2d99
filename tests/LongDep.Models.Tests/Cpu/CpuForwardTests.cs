using LongDep.Models;
using LongDep.Models.Cpu;
using NUnit.Framework;

namespace LongDep.Models.Tests.Cpu;

[TestFixture]
public class CpuForwardTests
{
    private static double MaxRelativeError(float[] actual, double[,] expected)
    {
        int n = expected.GetLength(0), vocab = expected.GetLength(1);
        double maxAbs = 0, maxErr = 0;
        for (int t = 0; t < n; t++)
            for (int i = 0; i < vocab; i++)
            {
                maxAbs = Math.Max(maxAbs, Math.Abs(expected[t, i]));
                maxErr = Math.Max(maxErr, Math.Abs(actual[t * vocab + i] - expected[t, i]));
            }
        return maxErr / maxAbs;
    }

    [TestCase("llama", RopeStyle.AdjacentPairs, false, false, TestName = "Logits_MatchFloat64Reference_LlamaUntied")]
    [TestCase("llama", RopeStyle.AdjacentPairs, false, true, TestName = "Logits_MatchFloat64Reference_LlamaTied")]
    [TestCase("qwen2", RopeStyle.Halves, true, false, TestName = "Logits_MatchFloat64Reference_Qwen2BiasHalvesUntied")]
    [TestCase("qwen2", RopeStyle.Halves, true, true, TestName = "Logits_MatchFloat64Reference_Qwen2BiasHalvesTied")]
    public void Logits_MatchFloat64Reference(string arch, RopeStyle rope, bool bias, bool tied)
    {
        var weights = TinyModels.Create(seed: 7, arch, rope, qkvBias: bias, tied: tied);
        var tokens = TinyModels.RandomTokens(1, 70, weights.Config.VocabSize);
        var expected = new Reference64(weights).Run(tokens)!;
        var actual = new CpuForward(weights, maxThreads: 2).Logits(tokens);

        Assert.That(actual, Has.Length.EqualTo(70 * weights.Config.VocabSize));
        double err = MaxRelativeError(actual, expected);
        TestContext.Out.WriteLine($"max |Δlogit| / max |logit| = {err:E2}");
        Assert.That(err, Is.LessThan(1e-4));
    }

    [Test]
    public void Logits_MatchFloat64Reference_WithoutGroupedQuery()
    {
        var weights = TinyModels.Create(seed: 8, heads: 4, kvHeads: 4, dim: 48, ff: 96, vocab: 100);
        var tokens = TinyModels.RandomTokens(2, 45, 100);
        var err = MaxRelativeError(new CpuForward(weights).Logits(tokens), new Reference64(weights).Run(tokens)!);
        Assert.That(err, Is.LessThan(1e-4));
    }

    [Test]
    public void RopeStyles_InterleavedPermutationOfHalvesModel_GivesSameLogits()
    {
        var halves = TinyModels.Create(seed: 11, "qwen2", RopeStyle.Halves, qkvBias: true);
        var c = halves.Config;
        int d = c.HeadDim, half = d / 2, dim = c.Dim;

        // New row 2i of each head comes from old row i, new row 2i+1 from old row i + d/2 (bias entries too).
        float[] PermuteRows(float[] m, int heads, int cols)
        {
            var r = new float[m.Length];
            for (int h = 0; h < heads; h++)
                for (int i = 0; i < half; i++)
                {
                    Array.Copy(m, (h * d + i) * cols, r, (h * d + 2 * i) * cols, cols);
                    Array.Copy(m, (h * d + i + half) * cols, r, (h * d + 2 * i + 1) * cols, cols);
                }
            return r;
        }
        var adjacent = new ModelWeights
        {
            Config = c with { Rope = RopeStyle.AdjacentPairs },
            TokenEmbedding = halves.TokenEmbedding,
            OutputNorm = halves.OutputNorm,
            Output = halves.Output,
            Layers = halves.Layers.Select(l => new LayerWeights
            {
                AttnNorm = l.AttnNorm,
                Wq = PermuteRows(l.Wq.ToFloat32(), c.Heads, dim),
                Wk = PermuteRows(l.Wk.ToFloat32(), c.KvHeads, dim),
                Wv = l.Wv,
                Wo = l.Wo,
                Bq = PermuteRows(l.Bq!, c.Heads, 1),
                Bk = PermuteRows(l.Bk!, c.KvHeads, 1),
                Bv = l.Bv,
                FfnNorm = l.FfnNorm,
                WGate = l.WGate,
                WUp = l.WUp,
                WDown = l.WDown,
            }).ToArray(),
        };
        Assert.That(adjacent.Layers[0].Wq.ToFloat32(), Is.Not.EqualTo(halves.Layers[0].Wq.ToFloat32()), "the permutation must change the weights");

        var tokens = TinyModels.RandomTokens(3, 90, c.VocabSize);
        var a = new CpuForward(halves).Logits(tokens);
        var b = new CpuForward(adjacent).Logits(tokens);
        double maxAbs = a.Max(Math.Abs);
        double maxDiff = a.Zip(b, (x, y) => Math.Abs(x - y)).Max();
        TestContext.Out.WriteLine($"max |Δ| = {maxDiff:E2} (max |logit| {maxAbs:F3})");
        Assert.That(maxDiff / maxAbs, Is.LessThan(1e-5));

        // And the Halves model run as if it were AdjacentPairs gives different logits: the style matters.
        var wrong = new CpuForward(new ModelWeights
        {
            Config = c with { Rope = RopeStyle.AdjacentPairs },
            TokenEmbedding = halves.TokenEmbedding, OutputNorm = halves.OutputNorm, Output = halves.Output, Layers = halves.Layers,
        }).Logits(tokens);
        Assert.That(a.Zip(wrong, (x, y) => Math.Abs(x - y)).Max() / maxAbs, Is.GreaterThan(1e-3));
    }

    [Test]
    public void TokenNll_OnChunkCache_EqualsConcatenatedForward()
    {
        var weights = TinyModels.Create(seed: 21, "qwen2", RopeStyle.Halves, qkvBias: true);
        int l = 40, vocab = weights.Config.VocabSize;
        var chunkJ = TinyModels.RandomTokens(4, l, vocab);
        var chunkI = TinyModels.RandomTokens(5, l, vocab);
        var forward = new CpuForward(weights, maxThreads: 2);

        var targetsJ = chunkJ.Skip(1).Append(-1).ToArray();
        forward.TokenNll(chunkJ, targetsJ, prefix: null, out var cache, keepCache: true);
        Assert.That(cache, Is.Not.Null);
        Assert.That(cache!.Length, Is.EqualTo(l));

        var targetsI = chunkI.Skip(1).Append(-1).ToArray();
        var onCache = forward.TokenNll(chunkI, targetsI, cache, out var longer, keepCache: true);
        Assert.That(longer!.Length, Is.EqualTo(2 * l));
        Assert.That(double.IsNaN(onCache[l - 1]), "the last position has no target and is not scored");

        var concat = chunkJ.Concat(chunkI).ToArray();
        var logits = new Reference64(weights).Run(concat)!;
        var concatTargets = Enumerable.Repeat(-1, l).Concat(targetsI).ToArray();
        var direct = forward.TokenNll(concat, concatTargets, null, out _, keepCache: false);
        Assert.Multiple(() =>
        {
            for (int t = 0; t < l - 1; t++)
            {
                double expected = Reference64.Nll(logits, l + t, chunkI[t + 1]);
                Assert.That(onCache[t], Is.EqualTo(expected).Within(1e-5), $"position {l + t} vs float64 reference");
                Assert.That(onCache[t], Is.EqualTo(direct[l + t]).Within(1e-5), $"position {l + t} vs one float32 pass");
            }
        });

        // The cache kept by the pair run holds chunk j's rows unchanged, then chunk i's.
        for (int layer = 0; layer < weights.Config.Layers; layer++)
            Assert.That(longer.Keys(layer)[..(l * weights.Config.KvDim)].ToArray(), Is.EqualTo(cache.Keys(layer).ToArray()));
    }

    [Test]
    public void TokenNll_EqualsNegativeLogSoftmaxOfLogits()
    {
        var weights = TinyModels.Create(seed: 31);
        int n = 64, vocab = weights.Config.VocabSize;
        var tokens = TinyModels.RandomTokens(6, n, vocab);
        var targets = TinyModels.RandomTokens(7, n, vocab);
        targets[5] = -1;
        var forward = new CpuForward(weights);
        var logits = forward.Logits(tokens);
        var nll = forward.TokenNll(tokens, targets, null, out var cache, keepCache: false);
        Assert.That(cache, Is.Null);
        Assert.Multiple(() =>
        {
            for (int t = 0; t < n; t++)
            {
                if (targets[t] < 0) { Assert.That(double.IsNaN(nll[t])); continue; }
                double max = double.NegativeInfinity, sum = 0;
                for (int i = 0; i < vocab; i++) max = Math.Max(max, logits[t * vocab + i]);
                for (int i = 0; i < vocab; i++) sum += Math.Exp(logits[t * vocab + i] - max);
                double expected = max + Math.Log(sum) - logits[t * vocab + targets[t]];
                Assert.That(nll[t], Is.EqualTo(expected).Within(1e-5), $"row {t}");
            }
        });
    }

    [Test]
    public void TokenNll_1024Tokens_MatchesTheFloat64Reference()
    {
        // Long enough to cross every block boundary of the forward: 32-row attention blocks, the 64-row GEMM tiles, the
        // 512-row output-head blocks (1023 scored rows: two blocks). Speed is the benchmarks' business (bench/README.md).
        var weights = TinyModels.Create(seed: 41);
        var tokens = TinyModels.RandomTokens(8, 1024, weights.Config.VocabSize);
        var targets = tokens.Skip(1).Append(-1).ToArray();
        var nll = new CpuForward(weights).TokenNll(tokens, targets, null, out _, keepCache: false);
        var logits = new Reference64(weights).Run(tokens)!;
        int vocab = weights.Config.VocabSize;
        double worst = 0;
        for (int t = 0; t < 1023; t++)
        {
            double max = double.NegativeInfinity, sum = 0;
            for (int v = 0; v < vocab; v++) max = Math.Max(max, logits[t, v]);
            for (int v = 0; v < vocab; v++) sum += Math.Exp(logits[t, v] - max);
            double expected = max + Math.Log(sum) - logits[t, targets[t]];
            worst = Math.Max(worst, Math.Abs(nll[t] - expected));
        }
        Assert.That(double.IsNaN(nll[1023]), "the last token has no target");
        Assert.That(worst, Is.LessThan(1e-4), "max |NLL − float64 NLL|");
    }

    [Test]
    public void Logits_AreBitwiseIdentical_ForAnyThreadCount()
    {
        var weights = TinyModels.Create(seed: 51, "qwen2", RopeStyle.Halves, qkvBias: true);
        var tokens = TinyModels.RandomTokens(9, 150, weights.Config.VocabSize);
        var one = new CpuForward(weights, maxThreads: 1).Logits(tokens);
        var three = new CpuForward(weights, maxThreads: 3).Logits(tokens);
        Assert.That(three, Is.EqualTo(one));
    }

    [Test]
    public void RunLayers_ReportsPostRopeQueriesAndKeys()
    {
        var weights = TinyModels.Create(seed: 61, "qwen2", RopeStyle.Halves, qkvBias: true);
        var tokens = TinyModels.RandomTokens(10, 33, weights.Config.VocabSize);
        var reference = new Reference64(weights);
        reference.Run(tokens, keepQK: true, withLogits: false);
        var c = weights.Config;
        int calls = 0;
        new CpuForward(weights).RunLayers(tokens, null, keepCache: false, onLayer: (layer, q, k, n) =>
        {
            calls++;
            Assert.That(n, Is.EqualTo(33));
            Assert.That(q.Length, Is.EqualTo(n * c.QDim));
            Assert.That(k.Length, Is.EqualTo(n * c.KvDim));
            var (rq, rk) = reference.QK[layer];
            for (int t = 0; t < n; t++)
            {
                for (int i = 0; i < c.QDim; i++) Assert.That(q[t * c.QDim + i], Is.EqualTo(rq[t, i]).Within(1e-4));
                for (int i = 0; i < c.KvDim; i++) Assert.That(k[t * c.KvDim + i], Is.EqualTo(rk[t, i]).Within(1e-4));
            }
        });
        Assert.That(calls, Is.EqualTo(c.Layers));
    }

    [Test]
    public void RopeTables_StayAccurateAtLargePositions()
    {
        const int d = 64, n = 3, p0 = 131069;
        var cos = new float[n * d / 2];
        var sin = new float[n * d / 2];
        CpuKernels.RopeTables(p0, n, d, 500000.0, cos, sin);
        for (int t = 0; t < n; t++)
            for (int i = 0; i < d / 2; i++)
            {
                // angle = p · θ^(−2i/d), written as p / θ^(2i/d) here.
                double angle = (p0 + t) / Math.Pow(500000.0, 2.0 * i / d);
                Assert.That(cos[t * d / 2 + i], Is.EqualTo(Math.Cos(angle)).Within(1e-6));
                Assert.That(sin[t * d / 2 + i], Is.EqualTo(Math.Sin(angle)).Within(1e-6));
            }
    }

    [Test]
    public void DotRows_MatchesNaiveProduct_AndEveryElementIsTileIndependent()
    {
        var rng = new Random(3);
        float[] Rand(int n) => Enumerable.Range(0, n).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();
        const int m = 7, cols = 9, len = 21, lda = 25, ldb = 23, ldc = 11, aOff = 3, bOff = 5, cOff = 2;
        var a = Rand(aOff + m * lda);
        var b = Rand(bOff + cols * ldb);
        var c = new float[cOff + m * ldc];
        CpuKernels.DotRows(a, aOff, lda, m, b, bOff, ldb, cols, len, c, cOff, ldc);
        var single = new float[1];
        for (int i = 0; i < m; i++)
            for (int j = 0; j < cols; j++)
            {
                double expected = 0;
                for (int k = 0; k < len; k++) expected += (double)a[aOff + i * lda + k] * b[bOff + j * ldb + k];
                float got = c[cOff + i * ldc + j];
                Assert.That(got, Is.EqualTo(expected).Within(1e-5), $"C[{i},{j}]");
                CpuKernels.DotRows(a, aOff + i * lda, lda, 1, b, bOff + j * ldb, ldb, 1, len, single, 0, 1);
                Assert.That(got, Is.EqualTo(single[0]), $"C[{i},{j}] from a 4×4 tile equals the same dot product alone, bit for bit");
            }
        Assert.That(c[0], Is.Zero, "nothing is written before cOff");
        Assert.Throws<ArgumentOutOfRangeException>(() => CpuKernels.DotRows(a, aOff, lda, m + 1, b, bOff, ldb, cols, len, c, cOff, ldc));
    }

    [Test]
    public void BadInput_GivesClearExceptions()
    {
        var weights = TinyModels.Create(seed: 71);
        var forward = new CpuForward(weights);
        var ex = Assert.Throws<ArgumentOutOfRangeException>(() => forward.Logits([1, 2, 256]));
        Assert.That(ex!.Message, Does.Contain("256").And.Contain("index 2").And.Contain("vocabulary"));
        Assert.Throws<ArgumentOutOfRangeException>(() => forward.Logits([-1]));
        Assert.Throws<ArgumentException>(() => forward.TokenNll([1, 2, 3], [2, 3], null, out _, false));
        Assert.Throws<ArgumentOutOfRangeException>(() => forward.TokenNll([1, 2], [2, 999], null, out _, false));

        var other = TinyModels.Create(seed: 72, layers: 3);
        var foreignCache = new CpuForward(other).RunLayers([1, 2, 3], null, keepCache: true)!;
        var cacheEx = Assert.Throws<ArgumentException>(() => forward.Logits([4], foreignCache));
        Assert.That(cacheEx!.Message, Does.Contain("3 layers"));

        var broken = new ModelWeights
        {
            Config = weights.Config, TokenEmbedding = weights.TokenEmbedding, Layers = weights.Layers,
            OutputNorm = weights.OutputNorm, Output = new float[10],
        };
        Assert.Throws<ModelFormatException>(() => new CpuForward(broken));
    }
}
