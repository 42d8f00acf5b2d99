using LongDep.Core.Probes;
using LongDep.Core.Scoring;

namespace LongDep.Core.Tests;

public class ProLongTests
{
    [Test]
    public void Dsp_OneValue_IsOne_NoValue_IsZero()
    {
        Assert.Multiple(() =>
        {
            Assert.That(ProLong.Dsp([0.37]), Is.EqualTo(1.0));
            Assert.That(ProLong.Dsp([-5.0]), Is.EqualTo(1.0));
            Assert.That(ProLong.Dsp([]), Is.EqualTo(0.0));
        });
    }

    [Test]
    public void Dsp_TwoValues_HandWorked()
    {
        // softmax([1, 0]) = [e/(e+1), 1/(e+1)]; DSP = (ln 2 − H) / ln 2.
        double p0 = Math.E / (Math.E + 1), p1 = 1 / (Math.E + 1);
        double h = -(p0 * Math.Log(p0) + p1 * Math.Log(p1));
        Assert.That(ProLong.Dsp([1.0, 0.0]), Is.EqualTo((Math.Log(2) - h) / Math.Log(2)).Within(1e-15));
        // Max subtraction: shifting the row changes nothing, even far beyond exp's range.
        Assert.That(ProLong.Dsp([1001.0, 1000.0]), Is.EqualTo(ProLong.Dsp([1.0, 0.0])).Within(1e-15));
    }

    [Test]
    public void Dsp_AllEqualRow_IsZero_ClippedAtZero()
    {
        // For several m the unclipped (ln m − H) / ln m rounds to a tiny negative number: the clip makes it ≥ 0.
        for (int m = 2; m <= 40; m++)
        {
            double dsp = ProLong.Dsp(Enumerable.Repeat(0.25, m).ToArray());
            Assert.That(dsp, Is.GreaterThanOrEqualTo(0.0).And.LessThan(2e-15), $"m = {m}");
        }
    }

    [Test]
    public void Dsp_SoftmaxUnderflowToZero_TakesTheEpsilonBranch()
    {
        // exp(−800) underflows to exactly 0, so p = [1, 0] → p = (p + 1e-12) / Σ, as compute_de does.
        double q0 = (1 + 1e-12) / (1 + 2e-12), q1 = 1e-12 / (1 + 2e-12);
        double h = -(q0 * Math.Log(q0) + q1 * Math.Log(q1));
        double expected = (Math.Log(2) - h) / Math.Log(2);
        double dsp = ProLong.Dsp([0.0, -800.0]);
        Assert.Multiple(() =>
        {
            Assert.That(dsp, Is.EqualTo(expected).Within(1e-15));
            Assert.That(dsp, Is.LessThan(1.0 - 1e-11)); // without the branch H would be 0 and DSP exactly 1
        });
    }

    [Test]
    public void Dsp_NaN_Propagates()
    {
        Assert.That(double.IsNaN(ProLong.Dsp([0.1, double.NaN, 0.3])), Is.True);
    }

    [Test]
    public void Ddi_UsesWindowChunkCount_AndClips()
    {
        Assert.Multiple(() =>
        {
            Assert.That(ProLong.Ddi(5, 1, 256), Is.EqualTo(4.0 / 255).Within(1e-16));
            Assert.That(ProLong.Ddi(3, 0, 4), Is.EqualTo(1.0));
            Assert.That(ProLong.Ddi(300, 0, 256), Is.EqualTo(1.0));
            Assert.That(ProLong.Ddi(2, 1, 8), Is.EqualTo(1.0 / 7).Within(1e-16));
        });
        Assert.Throws<ArgumentOutOfRangeException>(() => ProLong.Ddi(1, 0, 1));
    }

    // Four chunks, worked by hand. single = [10, 8, 6, 5]; drawn pairs (1,0) (2,0) (2,1) (3,0) (3,2) — (3,1) not drawn.
    //   (1,0): pair 7.6 → DST 0.05 ≤ δ        (2,0): pair 4.8 → DST 0.2 > δ
    //   (2,1): pair 5.7 → DST 0.05 ≤ δ        (3,0): pair 4.5 → DST exactly 0.1, not > δ
    //   (3,2): pair 3.0 → DST 0.4 > δ
    // DSP: row 1 has one pair → 1; row 2 over dlt [1.2, 0.3]; row 3 over dlt [0.5, 2.0].
    // With W/l = N = 8: DDI(2,0) = 2/7, DDI(3,2) = 1/7.
    private static readonly double[] Single = [10, 8, 6, 5];
    private static readonly (int I, int J, double Ppl)[] Drawn = [(1, 0, 7.6), (2, 0, 4.8), (2, 1, 5.7), (3, 0, 4.5), (3, 2, 3.0)];

    private static double TwoWayDsp(double a, double b)
    {
        double m = Math.Max(a, b);
        double ea = Math.Exp(a - m), eb = Math.Exp(b - m);
        double pa = ea / (ea + eb), pb = eb / (ea + eb);
        double h = -(pa * Math.Log(pa) + pb * Math.Log(pb));
        return Math.Clamp((Math.Log(2) - h) / Math.Log(2), 0, 1);
    }

    [Test]
    public void Lds_FourChunks_HandWorked_ThresholdExcludesPairs()
    {
        var measurement = new ProLongMeasurement(Single, Drawn.Select(d => new ChunkPair(d.I, d.J)).ToArray(), Drawn.Select(d => d.Ppl).ToArray());
        ProLongResult result = ProLong.Lds(measurement, chunkCountN: 8, threshold: 0.1);

        double dsp2 = TwoWayDsp(6 - 4.8, 6 - 5.7);
        double dsp3 = TwoWayDsp(5 - 4.5, 5 - 3.0);
        double expected = ((6 - 4.8) / 6 + 2.0 / 7) * dsp2 + ((5 - 3.0) / 5 + 1.0 / 7) * dsp3;

        Assert.Multiple(() =>
        {
            Assert.That(result.Lds, Is.EqualTo(expected).Within(1e-14));
            Assert.That(result.PairsUsed, Is.EqualTo(5));
            Assert.That(result.PairsAboveThreshold, Is.EqualTo(2));
            Assert.That(result.Dsp[0], Is.EqualTo(0.0));
            Assert.That(result.Dsp[1], Is.EqualTo(1.0));
            Assert.That(result.Dsp[2], Is.EqualTo(dsp2).Within(1e-15));
            Assert.That(result.Dsp[3], Is.EqualTo(dsp3).Within(1e-15));
            Assert.That(result.Dst, Is.EqualTo(new[] { 0.05, 0.2, 0.05, 0.1, 0.4 }).Within(1e-15));
            Assert.That(result.HasNonFinite, Is.False);
        });

        // DDI's N is the window's chunk count, not the record's 4: with N = 4 the result differs.
        double withN4 = ((6 - 4.8) / 6 + 2.0 / 3) * dsp2 + ((5 - 3.0) / 5 + 1.0 / 3) * dsp3;
        Assert.That(ProLong.Lds(measurement, 4, 0.1).Lds, Is.EqualTo(withN4).Within(1e-14));
    }

    [Test]
    public void Lds_PairOrderInMeasurement_DoesNotMatter()
    {
        var ordered = new ProLongMeasurement(Single, Drawn.Select(d => new ChunkPair(d.I, d.J)).ToArray(), Drawn.Select(d => d.Ppl).ToArray());
        var shuffled = Drawn.Reverse().ToArray();
        var reversed = new ProLongMeasurement(Single, shuffled.Select(d => new ChunkPair(d.I, d.J)).ToArray(), shuffled.Select(d => d.Ppl).ToArray());
        ProLongResult a = ProLong.Lds(ordered, 8, 0.1), b = ProLong.Lds(reversed, 8, 0.1);
        Assert.Multiple(() =>
        {
            Assert.That(b.Lds, Is.EqualTo(a.Lds));
            Assert.That(b.Pairs, Is.EqualTo(a.Pairs));
            Assert.That(b.Dlt, Is.EqualTo(a.Dlt));
        });
    }

    [Test]
    public void Lds_DenseDlt_HasDrawnMask()
    {
        var measurement = new ProLongMeasurement(Single, Drawn.Select(d => new ChunkPair(d.I, d.J)).ToArray(), Drawn.Select(d => d.Ppl).ToArray());
        double[,] dense = ProLong.Lds(measurement, 8, 0.1).DenseDlt(out bool[,] drawn);
        Assert.Multiple(() =>
        {
            Assert.That(drawn[3, 1], Is.False);
            Assert.That(drawn[3, 2], Is.True);
            Assert.That(drawn[0, 0], Is.False);
            Assert.That(dense[3, 2], Is.EqualTo(2.0));
            Assert.That(dense[2, 0], Is.EqualTo(6 - 4.8));
            Assert.That(dense[3, 1], Is.EqualTo(0.0));
        });
    }

    [Test]
    public void Lds_NonFinitePerplexity_IsReported()
    {
        var nanPair = new ProLongMeasurement([10, 8], [new ChunkPair(1, 0)], [double.NaN]);
        var infSingle = new ProLongMeasurement([10, double.PositiveInfinity], [new ChunkPair(1, 0)], [5]);
        Assert.Multiple(() =>
        {
            Assert.That(ProLong.Lds(nanPair, 8, 0.1).HasNonFinite, Is.True);
            Assert.That(ProLong.Lds(infSingle, 8, 0.1).HasNonFinite, Is.True);
        });
    }

    [Test]
    public void Lds_InvalidPairs_Throw()
    {
        Assert.Multiple(() =>
        {
            Assert.Throws<ArgumentException>(() => ProLong.Lds(new ProLongMeasurement([1, 2], [new ChunkPair(0, 1)], [1]), 8, 0.1));
            Assert.Throws<ArgumentException>(() => ProLong.Lds(new ProLongMeasurement([1, 2], [new ChunkPair(2, 1)], [1]), 8, 0.1));
            Assert.Throws<ArgumentException>(() => ProLong.Lds(new ProLongMeasurement([1, 2], [new ChunkPair(1, 0), new ChunkPair(1, 0)], [1, 1]), 8, 0.1));
            Assert.Throws<ArgumentException>(() => ProLong.Lds(new ProLongMeasurement([1, 2], [new ChunkPair(1, 0)], []), 8, 0.1));
        });
    }
}
