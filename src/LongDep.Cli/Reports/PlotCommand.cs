using System.CommandLine;
using LongDep.Core.Detail;

namespace LongDep.Cli.Reports;

/// <summary>
/// <c>longdep plot heatmap</c>: one record's dlt (ProLong) or PFS (LADM) matrix from a detail file.
/// <c>longdep plot domains</c>: per-domain box plots of the ok scores above a histogram of all of them, in one PNG.
/// </summary>
public static class PlotCommand
{
    public static Command Create()
    {
        var plot = new Command("plot", "Draw PNG charts from a detail file or a score file.");
        plot.Subcommands.Add(CreateHeatmap());
        plot.Subcommands.Add(CreateDomains());
        return plot;
    }

    private static Command CreateHeatmap()
    {
        var detail = new Option<string>("--detail") { Description = "Detail file written by 'longdep score --detail'.", Required = true };
        var index = Runtime.NumericOption.WholeOrNone("--index", "0-based input index of the record to draw.", 0L, long.MaxValue, required: true);
        var output = new Option<string>("--output", "-o") { Description = "PNG file to write.", Required = true };
        var layer = Runtime.NumericOption.WholeOrNone("--layer", "LADM: draw this layer's PFS (0-based) instead of the mean over layers.", 0, 4096, absent: "default: the mean");
        var width = Runtime.NumericOption.Whole("--width", "Image width in pixels.", 900, 100, 10000);
        var height = Runtime.NumericOption.Whole("--height", "Image height in pixels.", 780, 100, 10000);
        var command = new Command("heatmap",
            "Heatmap of one record's measurements. ProLong: dlt[i][j] = single_ppl[i] - pair_ppl[i][j] for the drawn pairs " +
            "(undrawn cells grey), titled with LDS. LADM: PFS by query span and interval, averaged over layers (or --layer K), titled with CDS.")
        {
            detail, index, output, layer, width, height,
        };
        command.SetAction(r =>
        {
            string path = r.GetValue(detail)!;
            long idx = r.GetValue(index)!.Value;
            Runtime.OutputGuard.RefuseSameFiles([new("--detail", path)], [new("--output", r.GetValue(output))]);
            using var reader = DetailReader.Open(path);
            DetailEntry entry = reader.Find(idx)
                ?? throw new ArgumentException($"record {idx} is not in '{path}' ({reader.Latest().Count} records there); give an index the scoring run wrote");
            RenderedChart chart = DetailCharts.Heatmap(entry, r.GetValue(layer), r.GetValue(width), r.GetValue(height));
            string file = WritePng(r.GetValue(output)!, chart.Png);
            r.InvocationConfiguration.Output.WriteLine($"wrote {file} ({chart.Width} x {chart.Height}, record {idx}, {entry.Method})");
            WarnAboutFonts(r);
            return 0;
        });
        return command;
    }

    private static Command CreateDomains()
    {
        var scores = new Option<string>("--scores") { Description = "Score file written by 'longdep score'.", Required = true };
        var output = new Option<string>("--output", "-o") { Description = "PNG file to write.", Required = true };
        var width = Runtime.NumericOption.Whole("--width", "Image width in pixels.", 1000, 100, 10000);
        var command = new Command("domains",
            "Per-domain box plots of the ok scores (median in red, ok count in each label, domains by median, highest first) " +
            "above a histogram of all ok scores, in one PNG.")
        {
            scores, output, width,
        };
        command.SetAction(r =>
        {
            Runtime.OutputGuard.RefuseSameFiles([new("--scores", r.GetValue(scores))], [new("--output", r.GetValue(output))]);
            ScoreSummary summary = ScoreSummary.Read(r.GetValue(scores)!, extremes: 0);
            int w = r.GetValue(width);
            RenderedChart boxes = Charts.DomainBoxes(summary.Domains, summary.ScoreName, w);
            RenderedChart hist = Charts.Histogram(summary.AllScores, summary.ScoreName, w);
            string file = WritePng(r.GetValue(output)!, Charts.Stack(boxes, hist));
            r.InvocationConfiguration.Output.WriteLine(
                $"wrote {file} ({w} x {boxes.Height + hist.Height}: {summary.Domains.Count(d => d.Ok > 0)} domains, {summary.AllScores.Length} ok scores)");
            WarnAboutFonts(r);
            return 0;
        });
        return command;
    }

    internal static string WritePng(string path, byte[] png)
    {
        string full = Path.GetFullPath(path);
        Directory.CreateDirectory(Path.GetDirectoryName(full)!);
        File.WriteAllBytes(full, png);
        return path;
    }

    internal static void WarnAboutFonts(ParseResult r)
    {
        if (ChartFonts.Problem is { } problem)
            r.InvocationConfiguration.Error.WriteLine($"warning: charts have no text: {problem}");
    }
}
