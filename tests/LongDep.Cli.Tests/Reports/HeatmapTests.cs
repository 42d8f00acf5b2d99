using LongDep.Cli.Reports;
using LongDep.Core.Detail;
using LongDep.Core.Pipeline;
using LongDep.Core.Probes;
using LongDep.Core.Records;
using LongDep.Core.Scoring;
using NUnit.Framework;
using SkiaSharp;

namespace LongDep.Cli.Tests.Reports;

/// <summary>Heatmaps: the colour of each cell follows its value, rows top to bottom, grey for missing cells.</summary>
public class HeatmapTests
{
    // Viridis' two ends (matplotlib's table), written here independently of the plotting library.
    private static readonly ScottPlot.Color ViridisLow = ScottPlot.Color.FromHex("#440154");
    private static readonly ScottPlot.Color ViridisHigh = ScottPlot.Color.FromHex("#FDE725");

    [Test]
    public void OneHighCell_IsTheHighEndOfTheColormapAndOnlyThere()
    {
        var m = new double[6, 8];
        m[2, 5] = 1.0;
        m[0, 7] = double.NaN;
        RenderedChart chart = Charts.Heatmap(new HeatmapSpec(m, "one high cell", "column", "row", "value"), 700, 600);
        Png.Keep("one-high-cell.png", chart.Png);
        using SKBitmap b = Png.Decode(chart.Png);

        Assert.Multiple(() =>
        {
            Assert.That(Png.IsPng(chart.Png));
            Assert.That((b.Width, b.Height), Is.EqualTo((700, 600)));
            Assert.That(Png.Distance(b, chart.CellPixel(2, 5), ViridisHigh), Is.LessThan(12), "cell (row 2, column 5) holds the maximum");
            Assert.That(Png.Distance(b, chart.CellPixel(5, 2), ViridisLow), Is.LessThan(12), "the transposed cell is low: rows are y, columns x");
            Assert.That(Png.Distance(b, chart.CellPixel(1, 4), ViridisLow), Is.LessThan(12), "a zero cell is the low end");
            Assert.That(Png.Distance(b, chart.CellPixel(0, 7), Charts.MissingCell), Is.LessThan(12), "a NaN cell is grey");
            // The whole cell and only the cell is high: 0.4 of a cell from its centre is yellow, 0.6 is the neighbour.
            foreach (var (dr, dc) in new[] { (-0.4, -0.4), (-0.4, 0.4), (0.4, -0.4), (0.4, 0.4) })
            {
                Assert.That(Png.Distance(b, chart.CellPixel(2 + dr, 5 + dc), ViridisHigh), Is.LessThan(12), $"inside the high cell at ({dr}, {dc})");
                Assert.That(Png.Distance(b, chart.CellPixel(2 + 1.5 * dr, 5 + 1.5 * dc), ViridisLow), Is.LessThan(12), $"outside the high cell at ({1.5 * dr}, {1.5 * dc})");
            }
            // Row 0 is at the top, as in a matrix.
            Assert.That(chart.CellPixel(0, 0).Y, Is.LessThan(chart.CellPixel(5, 0).Y));
            Assert.That(chart.CellPixel(0, 0).X, Is.LessThan(chart.CellPixel(0, 7).X));
        });
    }

    [Test]
    public void Gradient_ColoursFollowTheValuesAlongTheColormap()
    {
        const int Cols = 11;
        var m = new double[3, Cols];
        for (int r = 0; r < 3; r++)
            for (int c = 0; c < Cols; c++)
                m[r, c] = 10 + 3.0 * c; // 10 .. 40
        RenderedChart chart = Charts.Heatmap(new HeatmapSpec(m, "gradient", "c", "r", "v"), 800, 400);
        using SKBitmap b = Png.Decode(chart.Png);
        double previousLuma = -1;
        for (int c = 0; c < Cols; c++)
        {
            ScottPlot.Color expected = Charts.Colormap.GetColor(c / (double)(Cols - 1));
            Assert.That(Png.Distance(b, chart.CellPixel(1, c), expected), Is.LessThan(12), $"column {c}");
            SKColor px = Png.At(b, chart.CellPixel(1, c));
            double luma = 0.2126 * px.Red + 0.7152 * px.Green + 0.0722 * px.Blue;
            Assert.That(luma, Is.GreaterThan(previousLuma), "viridis brightens with the value");
            previousLuma = luma;
        }
    }

    [Test]
    public void ProLongEntry_DrawsDltWithUndrawnPairsGrey()
    {
        // Three chunks; pairs (1,0) and (2,1) drawn, (2,0) not; dlt(2,1) is the largest.
        double[] single = [10, 12, 20];
        ChunkPair[] pairs = [new(1, 0), new(2, 1)];
        double[] pairPpl = [11, 5];
        var m = new ProLongMeasurement(single, pairs, pairPpl);
        ProLongResult r = ProLong.Lds(m, 8, 0.1);
        var record = new ScoreRecord { Index = 4, Method = "prolong", Status = ScoreStatus.Ok, Score = r.Lds };
        using var dir = new TempDir();
        string path = dir.File("d.lddt");
        var settings = new ScoreSettings { Method = ScoreMethod.ProLong, Window = 256, Chunk = 32 };
        using (var w = new DetailWriter(path, settings, append: false)) w.Write(new ScoreOutcome(record, ProLong: r, ProLongMeasurement: m));

        using var reader = DetailReader.Open(path);
        RenderedChart chart = DetailCharts.Heatmap(reader.Find(4)!, width: 600, height: 520);
        Png.Keep("prolong-3x3.png", chart.Png);
        using SKBitmap b = Png.Decode(chart.Png);
        Assert.Multiple(() =>
        {
            Assert.That(Png.Distance(b, chart.CellPixel(2, 1), ViridisHigh), Is.LessThan(12), "dlt(2,1) = 15 is the maximum");
            Assert.That(Png.Distance(b, chart.CellPixel(1, 0), ViridisLow), Is.LessThan(12), "dlt(1,0) = 1 is the minimum");
            Assert.That(Png.Distance(b, chart.CellPixel(2, 0), Charts.MissingCell), Is.LessThan(12), "(2,0) was not drawn");
            Assert.That(Png.Distance(b, chart.CellPixel(0, 2), Charts.MissingCell), Is.LessThan(12), "j >= i is never a pair");
        });
    }

    [Test]
    public void LadmEntry_MeanOverLayersAndOneLayerFollowThePfs()
    {
        var schedule = LadmSchedule.Create(1400, 32, 4, 4);
        int spans = schedule.Spans.Count;
        // Layer 0: PFS 1 everywhere except 9 at the latest span's first interval; layer 1: all 1.
        double[][][] pfs = new double[2][][];
        for (int y = 0; y < 2; y++)
            pfs[y] = schedule.Spans.Select(s => s.Intervals.Select(_ => 1.0).ToArray()).ToArray();
        pfs[0][0][0] = 9; // Spans[0] is the latest span (the reference's order)
        var m = new LadmMeasurement(schedule, pfs);
        LadmResult res = Ladm.Cds(m, LadmAblation.None);
        var record = new ScoreRecord { Index = 0, Method = "ladm", Status = ScoreStatus.Ok, Score = res.Cds, Layers = res.CdsPerLayer };
        using var dir = new TempDir();
        string path = dir.File("d.lddt");
        using (var w = new DetailWriter(path, new ScoreSettings { Method = ScoreMethod.Ladm }, append: false)) w.Write(new ScoreOutcome(record, Ladm: m));

        using var reader = DetailReader.Open(path);
        DetailEntry entry = reader.Find(0)!;
        RenderedChart mean = DetailCharts.Heatmap(entry, width: 700, height: 600);
        RenderedChart layer1 = DetailCharts.Heatmap(entry, layer: 1, width: 700, height: 600);
        Png.Keep("ladm-mean.png", mean.Png);
        using SKBitmap bm = Png.Decode(mean.Png);
        using SKBitmap b1 = Png.Decode(layer1.Png);
        int lastRow = spans - 1; // rows are spans by start ascending: the latest span is the bottom row
        Assert.Multiple(() =>
        {
            Assert.That(Png.Distance(bm, mean.CellPixel(lastRow, 0), ViridisHigh), Is.LessThan(12), "mean of 9 and 1 is the maximum");
            Assert.That(Png.Distance(bm, mean.CellPixel(0, 0), ViridisLow), Is.LessThan(12));
            Assert.That(Png.Distance(bm, mean.CellPixel(0, entry.Ladm!.MaxIntervals - 1), Charts.MissingCell), Is.LessThan(12),
                "the earliest span has fewer intervals than the latest: its last columns are grey");
            // Layer 1 is constant: no cell stands out (the colour of (0, lastRow) equals that of (0, 0)).
            Assert.That(Png.Distance(b1, layer1.CellPixel(lastRow, 0), new ScottPlot.Color(Png.At(b1, layer1.CellPixel(0, 0)).Red,
                Png.At(b1, layer1.CellPixel(0, 0)).Green, Png.At(b1, layer1.CellPixel(0, 0)).Blue)), Is.LessThan(3));
        });
        var e = Assert.Throws<ArgumentException>(() => DetailCharts.Heatmap(entry, layer: 2))!;
        Assert.That(e.Message, Does.Contain("layers 0..1"));
    }

    [Test]
    public void HeatmapCommand_WritesAPngOfTheRequestedSize()
    {
        using var dir = new TempDir();
        string detail = dir.File("run.lddt"), png = dir.File("out/heat.png");
        WriteProLongRun(detail);
        var (code, output, _) = CliRunner.Run("plot", "heatmap", "--detail", detail, "--index", "1", "-o", png, "--width", "640", "--height", "560");
        Assert.That(code, Is.EqualTo(0));
        Assert.That(output, Does.Contain("wrote"));
        byte[] bytes = File.ReadAllBytes(png);
        Png.Keep("command-heatmap.png", bytes);
        using SKBitmap b = Png.Decode(bytes);
        Assert.That((b.Width, b.Height), Is.EqualTo((640, 560)));
        Assert.That(Png.GreyVariance(b), Is.GreaterThan(200), "the image is not blank");
    }

    [Test]
    public void HeatmapCommand_ExplainsWhatIsWrong()
    {
        using var dir = new TempDir();
        string detail = dir.File("run.lddt"), png = dir.File("x.png");
        WriteProLongRun(detail);
        var missing = Assert.Throws<ArgumentException>(() => CliRunner.Run("plot", "heatmap", "--detail", detail, "--index", "99", "-o", png))!;
        Assert.That(missing.Message, Does.Contain("record 99 is not in"));
        var noPayload = Assert.Throws<ArgumentException>(() => CliRunner.Run("plot", "heatmap", "--detail", detail, "--index", "0", "-o", png))!;
        Assert.That(noPayload.Message, Does.Contain("no measurements").And.Contain("too_short"));
        var layer = Assert.Throws<ArgumentException>(() => CliRunner.Run("plot", "heatmap", "--detail", detail, "--index", "1", "--layer", "0", "-o", png))!;
        Assert.That(layer.Message, Does.Contain("LADM"));
        Assert.That(File.Exists(png), Is.False);
    }

    /// <summary>Record 0 too short, records 1 and 2 scored with ProLong (16 chunks).</summary>
    internal static void WriteProLongRun(string path)
    {
        var settings = new ScoreSettings { Method = ScoreMethod.ProLong, Window = 512, Chunk = 32 };
        using var w = new DetailWriter(path, settings, append: false);
        w.Write(new ScoreOutcome(new ScoreRecord { Index = 0, Method = "prolong", Status = ScoreStatus.TooShort }));
        for (int index = 1; index <= 2; index++)
        {
            var rng = new Random(index);
            int n = 16;
            double[] single = Enumerable.Range(0, n).Select(_ => 8 + 10 * rng.NextDouble()).ToArray();
            var pairs = new List<ChunkPair>();
            for (int i = 1; i < n; i++) for (int j = 0; j < i; j++) if (rng.NextDouble() < 0.7) pairs.Add(new ChunkPair(i, j));
            double[] pairPpl = pairs.Select(p => single[p.I] * (1 - 0.5 * Math.Exp(-(p.I - p.J) / 4.0) * rng.NextDouble())).ToArray();
            var m = new ProLongMeasurement(single, pairs, pairPpl);
            ProLongResult r = ProLong.Lds(m, n, 0.1);
            w.Write(new ScoreOutcome(new ScoreRecord { Index = index, Method = "prolong", Status = ScoreStatus.Ok, Score = r.Lds }, ProLong: r, ProLongMeasurement: m));
        }
    }
}
