using System.Text;
using LongDep.Cli.Reports;
using LongDep.Core.Corpus;
using LongDep.Core.Records;
using NUnit.Framework;
using SkiaSharp;

namespace LongDep.Cli.Tests.Reports;

/// <summary>Score statistics by domain, the box plots and the histogram.</summary>
public class DomainPlotTests
{
    /// <summary>A score file: ArXiv 1..5 (+ one too_short), Wiki 10, 20, 30, 40 (+ one bad), no-domain 7, one numeric_error.</summary>
    internal static string WriteScores(TempDir dir, string name = "scores.jsonl")
    {
        string path = dir.File(name);
        var records = new List<ScoreRecord>();
        long index = 0;
        ScoreRecord Ok(string? domain, double score) => new()
        {
            Index = index++, Id = $"r{index}", Method = "ladm", Status = ScoreStatus.Ok, Score = score, Tokens = 100 * index, Domain = domain,
        };
        foreach (double s in new[] { 3.0, 1, 5, 2, 4 }) records.Add(Ok("ArXiv", s));
        records.Add(new ScoreRecord { Index = index++, Method = "ladm", Status = ScoreStatus.TooShort, Tokens = 50, Domain = "ArXiv", Error = "short" });
        foreach (double s in new[] { 40.0, 10, 30, 20 }) records.Add(Ok("Wiki", s));
        records.Add(new ScoreRecord { Index = index++, Method = "ladm", Status = ScoreStatus.BadRecord, Domain = "Wiki", Error = "bad" });
        records.Add(Ok(null, 7));
        records.Add(new ScoreRecord { Index = index++, Method = "ladm", Status = ScoreStatus.NumericError, Tokens = 900, Domain = "ArXiv", Error = "nan" });
        using (var w = new ScoreWriter(path, append: false)) foreach (var r in records) w.Write(r);
        return path;
    }

    [Test]
    public void Summary_CountsAndMediansByHand()
    {
        using var dir = new TempDir();
        ScoreSummary s = ScoreSummary.Read(WriteScores(dir), extremes: 3);
        Assert.Multiple(() =>
        {
            Assert.That(s.Records, Is.EqualTo(13));
            Assert.That(s.Count(ScoreStatus.Ok), Is.EqualTo(10));
            Assert.That(s.Count(ScoreStatus.TooShort), Is.EqualTo(1));
            Assert.That(s.Count(ScoreStatus.BadRecord), Is.EqualTo(1));
            Assert.That(s.Count(ScoreStatus.NumericError), Is.EqualTo(1));
            Assert.That(s.ScoreName, Is.EqualTo("CDS"));
            // Tokens: ok records have 100 × (index + 1): indices 0-4, 6-9, 11 → 100 × (15 + 34 + 12).
            Assert.That(s.OkTokens, Is.EqualTo(100L * (1 + 2 + 3 + 4 + 5 + 7 + 8 + 9 + 10 + 12)));
            Assert.That(s.Tokens, Is.EqualTo(s.OkTokens + 50 + 900));
            // Domains by median, highest first: Wiki (25), no domain (7), ArXiv (3).
            Assert.That(s.Domains.Select(d => d.Domain), Is.EqualTo(new[] { "Wiki", ScoreSummary.NoDomain, "ArXiv" }));
            Assert.That(s.Domains[0].Median, Is.EqualTo(25.0));
            Assert.That(s.Domains[0].Q1, Is.EqualTo(17.5), "numpy: 10 + 0.75 × (20 − 10)");
            Assert.That(s.Domains[0].Q3, Is.EqualTo(32.5));
            Assert.That(s.Domains[0].Records, Is.EqualTo(5));
            Assert.That(s.Domains[2].Median, Is.EqualTo(3.0));
            Assert.That(s.Domains[2].Mean, Is.EqualTo(3.0));
            Assert.That(s.Domains[2].Ok, Is.EqualTo(5));
            Assert.That(s.Domains[2].Records, Is.EqualTo(7));
            Assert.That((s.Domains[2].Min, s.Domains[2].Max), Is.EqualTo((1.0, 5.0)));
            Assert.That(s.Top.Select(r => r.Score), Is.EqualTo(new double?[] { 40, 30, 20 }));
            Assert.That(s.Bottom.Select(r => r.Score), Is.EqualTo(new double?[] { 1, 2, 3 }));
            Assert.That(s.AllScores, Is.Ordered.Ascending);
            Assert.That(s.AllScores, Has.Length.EqualTo(10));
        });
    }

    [Test]
    public void Summary_TiesInTheRankingGoToTheLowerIndex()
    {
        using var dir = new TempDir();
        string path = dir.File("ties.jsonl");
        using (var w = new ScoreWriter(path, append: false))
            for (int i = 0; i < 30; i++)
                w.Write(new ScoreRecord { Index = i, Method = "prolong", Status = ScoreStatus.Ok, Score = i % 3, Domain = "D" });
        ScoreSummary s = ScoreSummary.Read(path, extremes: 4);
        Assert.That(s.Top.Select(r => r.Index), Is.EqualTo(new long[] { 2, 5, 8, 11 }));
        Assert.That(s.Bottom.Select(r => r.Index), Is.EqualTo(new long[] { 0, 3, 6, 9 }));
        Assert.That(s.ScoreName, Is.EqualTo("LDS"));
    }

    [Test]
    public void Quantile_InterpolatesLikeNumpy()
    {
        double[] v = [1, 2, 4, 8];
        Assert.Multiple(() =>
        {
            Assert.That(ScoreSummary.Quantile(v, 0.5), Is.EqualTo(3.0));
            Assert.That(ScoreSummary.Quantile(v, 0.25), Is.EqualTo(1.75));
            Assert.That(ScoreSummary.Quantile(v, 1.0), Is.EqualTo(8.0));
            Assert.That(ScoreSummary.Quantile([5.0], 0.3), Is.EqualTo(5.0));
            Assert.That(double.IsNaN(ScoreSummary.Quantile([], 0.5)));
        });
    }

    [Test]
    public void DomainBoxes_MarkEachMedianWhereItIs()
    {
        using var dir = new TempDir();
        ScoreSummary s = ScoreSummary.Read(WriteScores(dir));
        RenderedChart chart = Charts.DomainBoxes(s.Domains, s.ScoreName, 900);
        Png.Keep("domains-boxes.png", chart.Png);
        using SKBitmap b = Png.Decode(chart.Png);
        Assert.That(b.Width, Is.EqualTo(900));
        Assert.That(Png.GreyVariance(b), Is.GreaterThan(100));
        for (int k = 0; k < s.Domains.Count; k++)
        {
            DomainScores d = s.Domains[k];
            SKColor median = Png.At(b, chart.PixelOf(d.Median, k + 0.2));
            Assert.That(median.Red > 150 && median.Green < 110 && median.Blue < 110, $"the median of {d.Domain} ({d.Median}) is red; found {median}");
            if (d.Q3 > d.Median)
            {
                // Inside the box, away from the median: the box fill, not red.
                SKColor box = Png.At(b, chart.PixelOf((d.Median + d.Q3) / 2, k + 0.2));
                Assert.That(Png.Distance(b, chart.PixelOf((d.Median + d.Q3) / 2, k + 0.2), Charts.BoxFill), Is.LessThan(20), $"inside the box of {d.Domain}; found {box}");
            }
        }
    }

    [Test]
    public void Histogram_BarHeightsFollowTheCounts()
    {
        // 30 scores in [0, 1) and 3 in [9, 10): the first bin is tall, the last one short.
        double[] scores = [.. Enumerable.Range(0, 30).Select(i => i / 40.0), 9.2, 9.5, 9.9];
        RenderedChart chart = Charts.Histogram(scores, "LDS", 800, 400);
        Png.Keep("histogram.png", chart.Png);
        using SKBitmap b = Png.Decode(chart.Png);
        int bins = 10; // sqrt(33) rounded up is 6, clamped to at least 10: bins of width 0.99
        double width = (9.9 - 0) / bins;
        double firstCentre = width / 2, lastCentre = 9.9 - width / 2, emptyCentre = 5 * width + width / 2;
        Assert.Multiple(() =>
        {
            Assert.That(Png.Distance(b, chart.PixelOf(firstCentre, 20), Charts.BoxFill), Is.LessThan(20), "30 records reach 20");
            Assert.That(Png.Distance(b, chart.PixelOf(lastCentre, 2), Charts.BoxFill), Is.LessThan(20), "3 records reach 2");
            Assert.That(Png.Distance(b, chart.PixelOf(lastCentre, 4), Charts.BoxFill), Is.GreaterThan(60), "but not 4");
            Assert.That(Png.Distance(b, chart.PixelOf(emptyCentre, 1), Charts.BoxFill), Is.GreaterThan(60), "an empty bin has no bar");
        });
    }

    [Test]
    public void DomainsCommand_WritesBoxesAboveAHistogram()
    {
        using var dir = new TempDir();
        string png = dir.File("domains.png");
        var (code, output, _) = CliRunner.Run("plot", "domains", "--scores", WriteScores(dir), "-o", png, "--width", "800");
        Assert.That(code, Is.EqualTo(0));
        Assert.That(output, Does.Contain("3 domains, 10 ok scores"));
        byte[] bytes = File.ReadAllBytes(png);
        Png.Keep("command-domains.png", bytes);
        using SKBitmap b = Png.Decode(bytes);
        ScoreSummary s = ScoreSummary.Read(WriteScores(dir, "again.jsonl"));
        int boxes = Charts.DomainBoxes(s.Domains, "CDS", 800).Height, hist = Charts.Histogram(s.AllScores, "CDS", 800).Height;
        Assert.That((b.Width, b.Height), Is.EqualTo((800, boxes + hist)));
        Assert.That(Png.GreyVariance(b), Is.GreaterThan(100));
    }

    [Test]
    public void DomainsCommand_OnAFileThatIsNotScores_SaysWhichLine()
    {
        using var dir = new TempDir();
        string bad = dir.File("bad.jsonl");
        File.WriteAllText(bad, "{\"index\":0,\"method\":\"ladm\",\"status\":\"ok\",\"score\":1}\nnot json\n", Encoding.UTF8);
        var e = Assert.Throws<CorpusFormatException>(() => CliRunner.Run("plot", "domains", "--scores", bad, "-o", dir.File("x.png")))!;
        Assert.That(e.Message, Does.Contain("line 2"));
        Assert.That(File.Exists(dir.File("x.png")), Is.False);
    }
}
