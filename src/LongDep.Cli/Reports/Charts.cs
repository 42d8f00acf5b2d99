using ScottPlot;
using SkiaSharp;

namespace LongDep.Cli.Reports;

/// <summary>A chart rendered to PNG, with the mapping from data coordinates to its pixels (for tests and overlays).</summary>
public sealed class RenderedChart
{
    private readonly Plot _plot;
    private readonly int _offsetY;

    internal RenderedChart(Plot plot, byte[] png, int width, int height, int offsetY = 0)
    {
        _plot = plot;
        Png = png;
        Width = width;
        Height = height;
        _offsetY = offsetY;
    }

    /// <summary>The PNG file's bytes.</summary>
    public byte[] Png { get; }
    public int Width { get; }
    public int Height { get; }

    /// <summary>Heatmaps: the pixel at (row, column) in cell units; integers are cell centres, ±0.5 cell edges.</summary>
    public (float X, float Y) CellPixel(double row, double column) =>
        CellMapper is { } map ? map(row, column) : throw new InvalidOperationException("this chart is not a heatmap");

    internal Func<double, double, (float X, float Y)>? CellMapper { get; set; }

    /// <summary>The pixel (x right, y down) where the data point (<paramref name="x"/>, <paramref name="y"/>) was drawn.</summary>
    public (float X, float Y) PixelOf(double x, double y)
    {
        Pixel p = _plot.GetPixel(new Coordinates(x, y));
        return (p.X, p.Y + _offsetY);
    }
}

/// <summary>What a heatmap shows: cell [r, c] at row r (top to bottom) and column c (left to right); NaN cells are grey.</summary>
/// <param name="Values">The matrix.</param>
/// <param name="Title">Title line.</param>
/// <param name="XLabel">Column axis label.</param>
/// <param name="YLabel">Row axis label.</param>
/// <param name="ColorLabel">Colour bar label.</param>
/// <param name="ColumnTick">Label of column c (null: the index).</param>
/// <param name="RowTick">Label of row r (null: the index).</param>
public sealed record HeatmapSpec(double[,] Values, string Title, string XLabel, string YLabel, string ColorLabel,
    Func<int, string>? ColumnTick = null, Func<int, string>? RowTick = null);

/// <summary>
/// The charts of <c>longdep plot</c> and <c>longdep report</c>, drawn with ScottPlot on Skia (headless, no display).
/// Heatmaps use viridis like ProLong's reference <c>draw</c>; cells without a value are light grey.
/// </summary>
public static class Charts
{
    /// <summary>Colour of cells without a value (undrawn ProLong pairs, LADM intervals past a span's last).</summary>
    public static readonly Color MissingCell = Color.FromHex("#D9D9D9");

    /// <summary>Colour of the median marks in domain plots.</summary>
    public static readonly Color MedianMark = Color.FromHex("#D62728");

    /// <summary>Colour of the boxes and histogram bars.</summary>
    public static readonly Color BoxFill = Color.FromHex("#9ECAE1");

    /// <summary>The colormap of heatmaps.</summary>
    public static IColormap Colormap { get; } = new ScottPlot.Colormaps.Viridis();

    /// <summary>Draws a matrix as a heatmap with a colour bar.</summary>
    public static RenderedChart Heatmap(HeatmapSpec spec, int width = 900, int height = 780)
    {
        ArgumentNullException.ThrowIfNull(spec);
        int rows = spec.Values.GetLength(0), cols = spec.Values.GetLength(1);
        if (rows == 0 || cols == 0) throw new ArgumentException("the heatmap has no cell", nameof(spec));
        ChartFonts.Ensure();
        var plot = new Plot();
        var hm = plot.Add.Heatmap(spec.Values);
        hm.Colormap = Colormap;
        hm.NaNCellColor = MissingCell;
        // ScottPlot's default placement: unit cells, row 0 at the top; row r is centred at y = rows - 1 - r, column c at x = c.
        if (AllMissing(spec.Values)) hm.ManualRange = new ScottPlot.Range(0, 1);
        else if (hm.DataRange.Min == hm.DataRange.Max) hm.ManualRange = new ScottPlot.Range(hm.DataRange.Min - 0.5, hm.DataRange.Max + 0.5);
        var bar = plot.Add.ColorBar(hm);
        bar.Label = spec.ColorLabel;

        plot.Axes.SetLimits(-0.5, cols - 0.5, -0.5, rows - 0.5);
        plot.Title(spec.Title);
        plot.XLabel(spec.XLabel);
        plot.YLabel(spec.YLabel);
        plot.Grid.IsVisible = false;
        plot.Axes.Bottom.TickGenerator = Ticks(cols, c => c, spec.ColumnTick ?? Index);
        plot.Axes.Left.TickGenerator = Ticks(rows, r => rows - 1 - r, spec.RowTick ?? Index);
        RenderedChart chart = Render(plot, width, height);
        chart.CellMapper = (r, c) => chart.PixelOf(c, rows - 1 - r);
        return chart;
    }

    /// <summary>
    /// Horizontal box plots of the ok scores of each domain (box: quartiles; whiskers: the furthest scores within
    /// 1.5 IQR; dots: scores beyond), the median marked in red and written out, the ok count in each label.
    /// Domains are drawn top to bottom in the given order; domains without an ok record are left out.
    /// </summary>
    public static RenderedChart DomainBoxes(IReadOnlyList<DomainScores> domains, string scoreName, int width = 1000, int? height = null)
    {
        ArgumentNullException.ThrowIfNull(domains);
        var shown = domains.Where(d => d.Ok > 0).ToArray();
        ChartFonts.Ensure();
        var plot = new Plot();
        int n = shown.Length;
        int h = height ?? Math.Clamp(140 + 34 * n, 320, 2400);
        if (n == 0)
        {
            plot.Title($"{scoreName} by domain: no ok record");
            return Render(plot, width, h);
        }

        var tickPositions = new double[n];
        var tickLabels = new string[n];
        for (int k = 0; k < n; k++)
        {
            DomainScores d = shown[k];
            double y = k; // row k from the top (the y axis is inverted below)
            double q1 = d.Q1, q3 = d.Q3, iqr = q3 - q1;
            double lowFence = q1 - 1.5 * iqr, highFence = q3 + 1.5 * iqr;
            double whiskerLow = d.Scores.First(v => v >= lowFence);
            double whiskerHigh = d.Scores.Last(v => v <= highFence);
            // Whiskers with end caps, then the box over them (ScottPlot's own boxes are vertical only).
            foreach (var (x1, x2) in new[] { (whiskerLow, q1), (q3, whiskerHigh) })
            {
                var whisker = plot.Add.Line(x1, y, x2, y);
                whisker.LineColor = Colors.Black;
                whisker.LineWidth = 1.5f;
            }
            foreach (double cap in new[] { whiskerLow, whiskerHigh })
            {
                var capLine = plot.Add.Line(cap, y - 0.15, cap, y + 0.15);
                capLine.LineColor = Colors.Black;
                capLine.LineWidth = 1.5f;
            }
            var box = plot.Add.Rectangle(q1, q3, y - 0.3, y + 0.3);
            box.FillColor = BoxFill;
            box.LineColor = Colors.Black;
            box.LineWidth = 1;
            double[] outliers = Thin(d.Scores.Where(v => v < lowFence || v > highFence).ToArray(), 1000);
            if (outliers.Length > 0)
                plot.Add.Markers(outliers, Enumerable.Repeat(y, outliers.Length).ToArray(), MarkerShape.OpenCircle, 5, Colors.Gray);
            tickPositions[k] = y;
            tickLabels[k] = $"{d.Domain} (n={d.Ok})";
        }
        // The median: a red bar across the box and its value written beside the box.
        for (int k = 0; k < n; k++)
        {
            var line = plot.Add.Line(shown[k].Median, k - 0.32, shown[k].Median, k + 0.32);
            line.LineColor = MedianMark;
            line.LineWidth = 3;
            var text = plot.Add.Text($"{shown[k].Median:G4}", shown[k].Max, k);
            text.LabelFontSize = 11;
            text.LabelFontColor = MedianMark;
            text.LabelAlignment = Alignment.MiddleLeft;
            text.OffsetX = 6;
        }

        double min = shown.Min(d => d.Min), max = shown.Max(d => d.Max);
        double span = max > min ? max - min : Math.Max(Math.Abs(max), 1);
        plot.Axes.SetLimits(min - 0.04 * span, max + 0.16 * span, n - 0.4, -0.6);
        plot.Axes.Left.TickGenerator = new ScottPlot.TickGenerators.NumericManual(tickPositions, tickLabels);
        plot.Axes.Left.MajorTickStyle.Length = 0;
        plot.Title($"{scoreName} by domain (ok records; red: median)");
        plot.XLabel(scoreName);
        return Render(plot, width, h);
    }

    /// <summary>A histogram of <paramref name="scores"/> with the median as a dashed red line.</summary>
    public static RenderedChart Histogram(IReadOnlyList<double> scores, string scoreName, int width = 1000, int height = 420)
    {
        ArgumentNullException.ThrowIfNull(scores);
        ChartFonts.Ensure();
        var plot = new Plot();
        double[] values = scores.Where(double.IsFinite).ToArray();
        if (values.Length == 0)
        {
            plot.Title($"Distribution of {scoreName}: no ok record");
            return Render(plot, width, height);
        }
        double min = values.Min(), max = values.Max();
        if (max <= min) { min -= 0.5; max += 0.5; }
        int bins = Math.Clamp((int)Math.Ceiling(Math.Sqrt(values.Length)), 10, 60);
        var hist = ScottPlot.Statistics.Histogram.WithBinCount(bins, min, max);
        hist.AddRange(values);
        var bars = plot.Add.Histogram(hist);
        foreach (var bar in bars.Bars)
        {
            bar.FillColor = BoxFill;
            bar.LineColor = Colors.SteelBlue;
        }
        Array.Sort(values);
        double median = ScoreSummary.Quantile(values, 0.5);
        plot.Add.VerticalLine(median, 2, MedianMark, LinePattern.Dashed);
        double pad = 0.02 * (max - min);
        plot.Axes.SetLimits(min - pad, max + pad, 0, Math.Max(1, hist.Counts.Max()) * 1.1);
        plot.Axes.Left.TickGenerator = new ScottPlot.TickGenerators.NumericAutomatic { IntegerTicksOnly = true };
        plot.Title($"Distribution of {scoreName} ({values.Length} ok records; dashed red line: median {median.ToString("G4", System.Globalization.CultureInfo.InvariantCulture)})");
        plot.XLabel(scoreName);
        plot.YLabel("records");
        return Render(plot, width, height);
    }

    /// <summary>Draws <paramref name="charts"/> one above the other into one PNG, as wide as the widest.</summary>
    public static byte[] Stack(params RenderedChart[] charts)
    {
        int width = charts.Max(c => c.Width), height = charts.Sum(c => c.Height);
        using var surface = SKSurface.Create(new SKImageInfo(width, height, SKColorType.Rgba8888, SKAlphaType.Premul));
        SKCanvas canvas = surface.Canvas;
        canvas.Clear(SKColors.White);
        int y = 0;
        foreach (RenderedChart c in charts)
        {
            using SKImage part = SKImage.FromEncodedData(c.Png);
            canvas.DrawImage(part, 0, y, new SKSamplingOptions(SKFilterMode.Nearest), null);
            y += c.Height;
        }
        using SKImage image = surface.Snapshot();
        using SKData data = image.Encode(SKEncodedImageFormat.Png, 100);
        return data.ToArray();
    }

    private static RenderedChart Render(Plot plot, int width, int height)
    {
        if (width < 100 || height < 100 || width > 10000 || height > 10000)
            throw new ArgumentOutOfRangeException(nameof(width), $"a chart of {width} × {height} pixels: expected 100..10000 on each side");
        byte[] png = plot.GetImageBytes(width, height, ImageFormat.Png);
        return new RenderedChart(plot, png, width, height);
    }

    /// <summary>About ten labelled ticks over <paramref name="count"/> cells; cell k sits at coordinate position(k).</summary>
    private static ScottPlot.TickGenerators.NumericManual Ticks(int count, Func<int, double> position, Func<int, string> label)
    {
        int step = Math.Max(1, (int)Math.Ceiling(count / 10.0));
        var ticks = new ScottPlot.TickGenerators.NumericManual();
        for (int k = 0; k < count; k += step) ticks.AddMajor(position(k), label(k));
        return ticks;
    }

    private static string Index(int k) => k.ToString(System.Globalization.CultureInfo.InvariantCulture);

    private static bool AllMissing(double[,] values)
    {
        foreach (double v in values) if (!double.IsNaN(v)) return false;
        return true;
    }

    /// <summary>At most <paramref name="max"/> of the values, evenly spaced by rank (keeps the extremes).</summary>
    private static double[] Thin(double[] values, int max)
    {
        if (values.Length <= max) return values;
        Array.Sort(values);
        return Enumerable.Range(0, max).Select(k => values[(int)((long)k * (values.Length - 1) / (max - 1))]).ToArray();
    }
}
