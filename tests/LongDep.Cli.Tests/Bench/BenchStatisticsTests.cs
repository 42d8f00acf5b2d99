using LongDep.Cli.Bench;

namespace LongDep.Cli.Tests.Bench;

public class BenchStatisticsTests
{
    [Test]
    public void Pearson_MatchesAHandWorkedCase()
    {
        // x = 1..4, y = 2,4,5,4: means 2.5 and 3.75; Sxy = 3.5, Sxx = 5, Syy = 4.75; r = 3.5 / sqrt(23.75).
        double r = BenchStatistics.Pearson(new double[] { 1, 2, 3, 4 }, new double[] { 2, 4, 5, 4 });
        Assert.That(r, Is.EqualTo(3.5 / Math.Sqrt(23.75)).Within(1e-12));
        Assert.That(r, Is.EqualTo(0.718185).Within(1e-6));
    }

    [Test]
    public void Pearson_IsOneForALinearMapAndMinusOneForAReversal()
    {
        double[] x = [0.3, 1.7, -2.0, 5.5, 0.0];
        Assert.Multiple(() =>
        {
            Assert.That(BenchStatistics.Pearson(x, x.Select(v => 3 * v + 7).ToArray()), Is.EqualTo(1.0).Within(1e-12));
            Assert.That(BenchStatistics.Pearson(x, x.Select(v => -0.5 * v).ToArray()), Is.EqualTo(-1.0).Within(1e-12));
        });
    }

    [Test]
    public void Pearson_SkipsPairsWithAMissingSide_AndIsUndefinedWithoutVariation()
    {
        double?[] x = [1, 2, null, 3, 4, double.NaN];
        double?[] y = [2, 4, 100, 5, 4, 1];
        Assert.Multiple(() =>
        {
            Assert.That(BenchStatistics.Pearson(x, y), Is.EqualTo(3.5 / Math.Sqrt(23.75)).Within(1e-12), "null and NaN pairs are left out");
            Assert.That(BenchStatistics.Pearson(new double[] { 1, 1, 1 }, new double[] { 1, 2, 3 }), Is.NaN);
            Assert.That(BenchStatistics.Pearson(new double[] { 1 }, new double[] { 2 }), Is.NaN);
            Assert.Throws<ArgumentException>(() => BenchStatistics.Pearson(new double[] { 1, 2 }, new double[] { 1 }));
        });
    }

    [Test]
    public void Median_OfOddAndEvenCounts()
    {
        Assert.Multiple(() =>
        {
            Assert.That(BenchStatistics.Median([5, 1, 3]), Is.EqualTo(3));
            Assert.That(BenchStatistics.Median([4, 1, 3, 2]), Is.EqualTo(2.5));
            Assert.That(BenchStatistics.Median([]), Is.NaN);
        });
    }

    [Test]
    public void FoldPhases_SumsRangesThatDifferOnlyInNumbers()
    {
        var folded = BenchRunner.FoldPhases(
        [
            ("forward layer 0", TimeSpan.FromSeconds(1), 1),
            ("forward layer 12", TimeSpan.FromSeconds(2), 1),
            ("prolong pairs 0..127", TimeSpan.FromSeconds(0.5), 1),
            ("prolong pairs 128..255", TimeSpan.FromSeconds(0.25), 1),
            ("loss", TimeSpan.FromSeconds(0.1), 3),
            ("d2h", TimeSpan.FromSeconds(0.05), 2),
            ("h2d", TimeSpan.FromSeconds(0.04), 1),
        ]);
        Assert.That(folded.Select(p => (p.Name, p.Seconds, p.Count)), Is.EqualTo(new[]
        {
            ("forward layer N", 3.0, 2L),
            ("prolong pairs N", 0.75, 2L),
            ("loss", 0.1, 3L),
            ("d2h", 0.05, 2L),
            ("h2d", 0.04, 1L),
        }));
    }
}
