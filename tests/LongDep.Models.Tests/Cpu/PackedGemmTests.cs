using LongDep.Models.Cpu;
using NUnit.Framework;

namespace LongDep.Models.Tests.Cpu;

[TestFixture]
public class PackedGemmTests
{
    [TestCase(45, 37, 13)]   // partial panel, odd depth, weight rows not whole 8-row tiles
    [TestCase(64, 16, 8)]
    [TestCase(1, 5, 3)]
    [TestCase(70, 130, 32)]
    public void Multiply_IsTheFusedMultiplyAddChainInKOrder(int n, int len, int cols)
    {
        if (!PackedGemm.Supported) Assert.Ignore("this processor has no 512-bit vectors; the packed product is not used");
        var rng = new Random(n * 1000 + len);
        var x = Enumerable.Range(0, n * len).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();
        int padded = (cols + PackedGemm.TileCols - 1) / PackedGemm.TileCols * PackedGemm.TileCols;
        var w = new float[padded * len];
        for (int i = 0; i < cols * len; i++) w[i] = (float)(rng.NextDouble() * 2 - 1);
        var packed = new float[PackedGemm.PackedLength(n, len)];
        for (int p = 0; p < (n + PackedGemm.PanelRows - 1) / PackedGemm.PanelRows; p++)
            PackedGemm.PackPanel(x, 0, len, n, len, p, packed);

        // y has room for 3 more columns on each side of the block: they must stay untouched.
        int ldy = cols + 6;
        var y = Enumerable.Repeat(-7f, n * ldy).ToArray();
        PackedGemm.Multiply(packed, 0, (n + PackedGemm.PanelRows - 1) / PackedGemm.PanelRows, n, len, w, cols, y, 0, ldy, 3);
        for (int r = 0; r < n; r++)
            for (int c = -3; c < cols + 3; c++)
            {
                float got = y[r * ldy + 3 + c];
                if (c < 0 || c >= cols)
                {
                    Assert.That(got, Is.EqualTo(-7f), $"({r}, {c}) is outside the block");
                    continue;
                }
                float chain = 0f;
                for (int k = 0; k < len; k++) chain = MathF.FusedMultiplyAdd(x[r * len + k], w[c * len + k], chain);
                Assert.That(got, Is.EqualTo(chain), $"y[{r}, {c}]");
            }
    }

    [Test]
    public void FastForward_MatchesTheFloat64Reference_AndAnyThreadCount()
    {
        var weights = TinyModels.Create(seed: 77, "qwen2", RopeStyle.Halves, qkvBias: true, vocab: 97);
        var tokens = TinyModels.RandomTokens(4, 75, 97);
        var expected = new Reference64(weights).Run(tokens)!;
        var fast = new CpuForward(weights, maxThreads: 2, CpuMath.Fast).Logits(tokens);
        var fastOne = new CpuForward(weights, maxThreads: 1, CpuMath.Fast).Logits(tokens);
        Assert.That(fastOne, Is.EqualTo(fast), "bit for bit on 1 and 2 threads");
        double worst = 0, spread = 0;
        for (int t = 0; t < tokens.Length; t++)
            for (int v = 0; v < 97; v++)
            {
                worst = Math.Max(worst, Math.Abs(fast[t * 97 + v] - expected[t, v]));
                spread = Math.Max(spread, Math.Abs(expected[t, v]));
            }
        Assert.That(worst, Is.LessThan(1e-4 * spread), "max |fast − float64| relative to the largest logit");
    }
}
