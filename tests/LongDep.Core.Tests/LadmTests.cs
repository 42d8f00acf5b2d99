using LongDep.Core.Probes;
using LongDep.Core.Scoring;

namespace LongDep.Core.Tests;

public class LadmTests
{
    // One span, worked by hand: PFS = [0.5, 0.3, 0.2, 0.1] at iv = 512, 1024, 1536, 2048; start = 3000, T = 4000.
    // mean = 0.275; squared deviations sum to 0.0875; sigma = sqrt(0.0875 / 3).
    // Σ PFS·iv/T = 0.5·0.128 + 0.3·0.256 + 0.2·0.384 + 0.1·0.512 = 0.2688; start/T = 0.75; Σ PFS = 1.1.
    private static readonly double[] Pfs = [0.5, 0.3, 0.2, 0.1];
    private static readonly int[] Intervals = [512, 1024, 1536, 2048];
    private static readonly double Sigma = Math.Sqrt(0.0875 / 3);

    [Test]
    public void Afs_None_IsWeightedSumTimesSigmaTimesContextRatio()
    {
        double afs = Ladm.Afs(Pfs, Intervals, 3000, 4000, LadmAblation.None);
        Assert.That(afs, Is.EqualTo(0.2688 * Sigma * 0.75).Within(1e-15));
    }

    [Test]
    public void Afs_NoStd_DropsSigma()
    {
        double afs = Ladm.Afs(Pfs, Intervals, 3000, 4000, LadmAblation.NoStd);
        Assert.That(afs, Is.EqualTo(0.2688 * 0.75).Within(1e-15));
    }

    [Test]
    public void Afs_NoLenWeight_DropsBothLengthWeights()
    {
        double afs = Ladm.Afs(Pfs, Intervals, 3000, 4000, LadmAblation.NoLenWeight);
        Assert.That(afs, Is.EqualTo(1.1 * Sigma).Within(1e-15));
    }

    [Test]
    public void Afs_SigmaIsTakenOfUnweightedPfs()
    {
        // Equal PFS: sigma of the unweighted values is 0 → AFS 0, although the iv-weighted values differ.
        double afs = Ladm.Afs([0.25, 0.25, 0.25, 0.25], Intervals, 3000, 4000, LadmAblation.None);
        Assert.That(afs, Is.EqualTo(0.0));
    }

    [Test]
    public void Afs_OneValue_GivesNaNLikeTorchStd()
    {
        double afs = Ladm.Afs([0.5], [512], 3000, 4000, LadmAblation.None);
        Assert.That(double.IsNaN(afs), Is.True);
        Assert.That(Ladm.Afs([0.5], [512], 3000, 4000, LadmAblation.NoStd), Is.EqualTo(0.5 * 0.128 * 0.75).Within(1e-15));
    }

    [Test]
    public void Afs_MismatchedLengths_Throws()
    {
        Assert.Throws<ArgumentException>(() => Ladm.Afs([0.1, 0.2], [512], 3000, 4000, LadmAblation.None));
    }

    [TestCase(LadmAblation.None)]
    [TestCase(LadmAblation.NoStd)]
    [TestCase(LadmAblation.NoLenWeight)]
    public void Cds_MeanOverSpansThenLayers_MatchesIndependentReference(LadmAblation ablation)
    {
        // chunk 4, d_afs 1, d_cds 1: interval 4, stride 4, keep 4, bound 4 + 4·4 = 20. T = 30:
        // start 26 (iv 4..20, 5 intervals), start 22 (iv 4..16, 4 intervals); 18 fails the bound.
        LadmSchedule schedule = LadmSchedule.Create(30, 4, 1, 1);
        Assert.That(schedule.Spans.Select(s => s.Start), Is.EqualTo(new[] { 26, 22 }));
        Assert.That(schedule.Spans[0].Intervals, Is.EqualTo(new[] { 4, 8, 12, 16, 20 }));
        Assert.That(schedule.Spans[1].Intervals, Is.EqualTo(new[] { 4, 8, 12, 16 }));

        double[][][] pfs =
        [
            [[0.9, 0.4, 0.3, 0.2, 0.05], [0.7, 0.6, 0.1, 0.3]],
            [[0.2, 0.2, 0.8, 0.1, 0.4], [0.05, 0.15, 0.25, 0.35]],
        ];
        LadmResult result = Ladm.Cds(new LadmMeasurement(schedule, pfs), ablation);

        double[] expectedLayers = pfs.Select(layer => layer.Select((span, s) =>
            ReferenceAfs(span, schedule.Spans[s].Intervals, schedule.Spans[s].Start, 30, ablation)).Average()).ToArray();
        Assert.Multiple(() =>
        {
            Assert.That(result.CdsPerLayer, Is.EqualTo(expectedLayers).Within(1e-15));
            Assert.That(result.Cds, Is.EqualTo((expectedLayers[0] + expectedLayers[1]) / 2).Within(1e-15));
            Assert.That(result.HasNonFinite, Is.False);
        });
    }

    /// <summary>The reference's formula, written out independently (two-pass variance, LINQ).</summary>
    private static double ReferenceAfs(double[] pfs, int[] ivs, int start, int t, LadmAblation ablation)
    {
        double mean = pfs.Average();
        double std = Math.Sqrt(pfs.Sum(x => (x - mean) * (x - mean)) / (pfs.Length - 1));
        double[] weighted = ablation == LadmAblation.NoLenWeight ? pfs : pfs.Select((x, k) => x * ivs[k] / (double)t).ToArray();
        double afs = weighted.Sum();
        if (ablation != LadmAblation.NoStd) afs *= std;
        if (ablation != LadmAblation.NoLenWeight) afs *= start / (double)t;
        return afs;
    }

    [Test]
    public void Cds_NaNInAnyLayer_IsReportedAsNonFinite()
    {
        LadmSchedule schedule = LadmSchedule.Create(30, 4, 1, 1);
        double[][][] pfs =
        [
            [[0.9, 0.4, 0.3, 0.2, 0.05], [0.7, 0.6, 0.1, 0.3]],
            [[0.2, double.NaN, 0.8, 0.1, 0.4], [0.05, 0.15, 0.25, 0.35]],
        ];
        Assert.That(Ladm.Cds(new LadmMeasurement(schedule, pfs), LadmAblation.None).HasNonFinite, Is.True);
    }

    [Test]
    public void Cds_TooShortSchedule_IsFlaggedAndRefused()
    {
        LadmSchedule schedule = LadmSchedule.Create(20, 4, 1, 1);
        Assert.That(Ladm.IsTooShort(schedule), Is.True);
        Assert.Throws<ArgumentException>(() => Ladm.Cds(new LadmMeasurement(schedule, [[]]), LadmAblation.None));
    }

    [Test]
    public void Cds_WrongSpanCount_Throws()
    {
        LadmSchedule schedule = LadmSchedule.Create(30, 4, 1, 1);
        Assert.Throws<ArgumentException>(() => Ladm.Cds(new LadmMeasurement(schedule, [[[0.1, 0.2, 0.3, 0.4, 0.5]]]), LadmAblation.None));
    }

    [TestCase(128, 4)]
    [TestCase(128, 2)]
    [TestCase(128, 8)]
    [TestCase(16, 3)]
    public void Schedule_MinimumTokens_IsExactlyWhereTheFirstSpanAppears(int chunk, int dAfs)
    {
        int min = LadmSchedule.MinimumTokens(chunk, dAfs);
        // The bound uses the literal 4: start = T − l must exceed keep + 4·(l·d_afs) = l + 4·l·d_afs.
        Assert.That(min, Is.EqualTo(chunk + 4 * chunk * dAfs + chunk + 1));
        Assert.Multiple(() =>
        {
            Assert.That(LadmSchedule.Create(min - 1, chunk, dAfs, 4).Spans, Is.Empty);
            Assert.That(LadmSchedule.Create(min, chunk, dAfs, 4).Spans, Has.Count.EqualTo(1));
        });
    }

    [Test]
    public void Schedule_DafsTwo_UsesLiteralFourNotDafs()
    {
        // l = 128, d_afs = 2: interval 256; bound 128 + 4·256 = 1152 → T ≥ 1281. With d_afs in place of 4 the
        // bound would be 640 and T = 1000 would already have a span.
        Assert.Multiple(() =>
        {
            Assert.That(LadmSchedule.Create(1000, 128, 2, 4).Spans, Is.Empty);
            Assert.That(LadmSchedule.Create(1280, 128, 2, 4).Spans, Is.Empty);
            LadmSpan span = LadmSchedule.Create(1281, 128, 2, 4).Spans.Single();
            Assert.That(span.Start, Is.EqualTo(1153));
            // iv = 256·k while 1153 − iv ≥ 128: k ≤ 4.
            Assert.That(span.Intervals, Is.EqualTo(new[] { 256, 512, 768, 1024 }));
        });
    }

    [Test]
    public void Schedule_SpansStepByStrideAndEndAtMostT()
    {
        LadmSchedule schedule = LadmSchedule.Create(32768, 128, 4, 4);
        Assert.Multiple(() =>
        {
            Assert.That(schedule.Spans[0].Start, Is.EqualTo(32768 - 128));
            Assert.That(schedule.Spans[0].End, Is.EqualTo(32768));
            for (int s = 1; s < schedule.Spans.Count; s++)
                Assert.That(schedule.Spans[s].Start, Is.EqualTo(schedule.Spans[s - 1].Start - 512));
            Assert.That(schedule.Spans.All(s => s.End == Math.Min(s.Start + 128, 32768)), Is.True);
            Assert.That(schedule.Spans[^1].Start, Is.GreaterThan(128 + 4 * 512));
            Assert.That(schedule.Spans[^1].Start - 512, Is.LessThanOrEqualTo(128 + 4 * 512));
            Assert.That(schedule.Spans.All(s => s.Intervals.Length >= 4), Is.True);
            Assert.That(schedule.Spans.All(s => s.Start - s.Intervals[^1] >= 128 && s.Start - s.Intervals[^1] - 512 < 128), Is.True);
        });
    }
}
