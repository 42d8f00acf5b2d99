using System.CommandLine;
using System.Text;
using LongDep.Core.Corpus;
using LongDep.Core.Detail;
using LongDep.Core.Records;

namespace LongDep.Cli.Reports;

/// <summary>
/// <c>longdep report</c>: one self-contained HTML page about a scoring run: counts by status and tokens, a table and
/// box plots by domain, a histogram, heatmaps of a few records (with <c>--detail</c>), and the highest and lowest scored
/// records with the start of their text (with <c>--input</c>, read as a stream).
/// </summary>
public static class ReportCommand
{
    /// <summary>Records listed at each end of the ranking.</summary>
    public const int Extremes = 10;

    /// <summary>Characters of text shown per listed record.</summary>
    public const int ExcerptChars = 300;

    public static Command Create()
    {
        var scores = new Option<string>("--scores") { Description = "Score file written by 'longdep score'.", Required = true };
        var detail = new Option<string?>("--detail") { Description = "Detail file of the same run: adds heatmaps of a few records." };
        var input = new Option<string?>("--input") { Description = "The scored input: adds the first 300 characters of the listed records' texts." };
        var output = new Option<string>("--output", "-o") { Description = "HTML file to write.", Required = true };
        var heatmaps = Runtime.NumericOption.Whole("--heatmaps", "Heatmaps to show with --detail (highest, median, lowest scored, ...).", 4, 0, 100);
        var command = new Command("report",
            "Write one self-contained HTML page (no external resources) summarising a score file: records by status, tokens, " +
            "scores by domain (table, box plots, histogram), heatmaps of a few records (--detail), and the 10 highest and " +
            "10 lowest scored records with the start of their text (--input).")
        {
            scores, detail, input, output, heatmaps,
        };
        command.SetAction(r =>
        {
            string path = r.GetValue(output)!;
            Runtime.OutputGuard.RefuseSameFiles([new("--scores", r.GetValue(scores)), new("--detail", r.GetValue(detail)), new("--input", r.GetValue(input))],
                [new("--output", path)]);
            var content = Collect(r.GetValue(scores)!, r.GetValue(detail), r.GetValue(input), r.GetValue(heatmaps));
            string html = HtmlReport.Build(content);
            string full = Path.GetFullPath(path);
            Directory.CreateDirectory(Path.GetDirectoryName(full)!);
            File.WriteAllText(full, html, new UTF8Encoding(false));
            r.InvocationConfiguration.Output.WriteLine(
                $"wrote {path} ({html.Length / 1024} KiB: {content.Summary.Records} records, {content.Summary.Domains.Count} domains, {content.Heatmaps.Count} heatmaps)");
            foreach (string note in content.Notes) r.InvocationConfiguration.Error.WriteLine($"note: {note}");
            PlotCommand.WarnAboutFonts(r);
            return 0;
        });
        return command;
    }

    /// <summary>Reads the files and renders the charts of a report.</summary>
    public static ReportContent Collect(string scoresPath, string? detailPath, string? inputPath, int heatmapCount = 4)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(heatmapCount);
        if (inputPath is not null) CorpusReader.DetectFormat(inputPath); // a bad extension fails before the work
        ScoreSummary summary = ScoreSummary.Read(scoresPath, Extremes);
        var notes = new List<string>();

        RenderedChart boxes = Charts.DomainBoxes(summary.Domains, summary.ScoreName);
        RenderedChart hist = Charts.Histogram(summary.AllScores, summary.ScoreName);
        var domainPlot = new ReportImage(boxes.Png, boxes.Width, boxes.Height,
            $"Ok {summary.ScoreName} by domain: box = quartiles, whiskers = furthest scores within 1.5 IQR, dots = beyond, red = median; n = ok records.");
        var histogram = new ReportImage(hist.Png, hist.Width, hist.Height, $"All {summary.AllScores.Length} ok scores; dashed red line: median.");

        var heatmaps = new List<ReportImage>();
        if (detailPath is not null)
        {
            using DetailReader reader = DetailReader.Open(detailPath);
            CheckSameRun(scoresPath, detailPath, reader);
            foreach (var (header, why) in PickHeatmaps(reader.Latest().Values, heatmapCount))
            {
                DetailEntry entry = reader.Read(header);
                RenderedChart chart = DetailCharts.Heatmap(entry, width: 760, height: 660);
                heatmaps.Add(new ReportImage(chart.Png, chart.Width, chart.Height, $"{why}: record {entry.Index}"));
            }
            if (heatmaps.Count == 0) notes.Add($"{detailPath} has no ok record with measurements: no heatmap.");
            if (reader.TornTailBytes > 0) notes.Add($"{detailPath} ends with {reader.TornTailBytes} bytes of an entry cut short (an interrupted run); they were skipped.");
        }

        Dictionary<long, string>? texts = null;
        if (inputPath is not null)
        {
            var wanted = summary.Top.Concat(summary.Bottom).GroupBy(x => x.Index).ToDictionary(g => g.Key, g => g.First());
            texts = ReadTexts(inputPath, wanted, notes);
        }
        return new ReportContent(summary, domainPlot, histogram, heatmaps, texts, detailPath, inputPath, notes);
    }

    /// <summary>Refuses a detail file written under other settings than the score file (a report never mixes two runs).</summary>
    internal static void CheckSameRun(string scoresPath, string detailPath, DetailReader reader)
    {
        ScoreHeader? scores = ScoreReader.ReadHeader(scoresPath);
        if (scores is null || reader.Settings is null) return;
        var diffs = scores.Differences(reader.Settings, "in --scores", "in --detail");
        if (diffs.Count > 0)
            throw new ArgumentException($"--detail '{detailPath}' was written by a run with other settings than --scores '{scoresPath}' ({string.Join("; ", diffs)}); give the detail file of the same run");
    }

    /// <summary>Ok entries with measurements to draw: highest, lowest, median, second highest, ... (no repeats).</summary>
    internal static IEnumerable<(DetailEntryHeader Header, string Why)> PickHeatmaps(IEnumerable<DetailEntryHeader> latest, int count)
    {
        var ok = latest.Where(h => h.HasPayload && h.Status == ScoreStatus.Ok && h.Score is not null)
            .OrderByDescending(h => h.Score).ThenBy(h => h.Index).ToArray();
        if (ok.Length == 0 || count == 0) yield break;
        var picks = new List<(int Rank, string Why)> { (0, "Highest score"), (ok.Length - 1, "Lowest score"), (ok.Length / 2, "Median score") };
        for (int k = 1; picks.Count < count + 3 && k < ok.Length; k++) picks.Add((k, $"Rank {k + 1} of {ok.Length}"));
        var used = new HashSet<int>();
        int given = 0;
        foreach (var (rank, why) in picks)
        {
            if (given == count) yield break;
            if (!used.Add(rank)) continue;
            given++;
            yield return (ok[rank], why);
        }
    }

    /// <summary>Streams the input once and keeps the first characters of the wanted records' texts.</summary>
    private static Dictionary<long, string> ReadTexts(string inputPath, Dictionary<long, ScoreRecord> wanted, List<string> notes)
    {
        var texts = new Dictionary<long, string>();
        if (wanted.Count == 0) return texts;
        long last = wanted.Keys.Max();
        var parser = new RecordParser();
        foreach (RawRecord raw in CorpusReader.Open(inputPath))
        {
            if (raw.Index > last) break;
            if (!wanted.TryGetValue(raw.Index, out ScoreRecord? scored)) continue;
            InputRecord rec = parser.Parse(raw);
            if (scored.InputHash is { } expected && rec.Hash != expected)
                throw new ArgumentException($"record {raw.Index} of --input '{inputPath}' is not the one that was scored (its hash {rec.Hash:x16} differs from the score file's input_hash {expected:x16}); give the input file the run scored");
            texts[raw.Index] = rec.Text is { } text
                ? HtmlReport.Excerpt(text, ExcerptChars)
                : rec.InputIds is { } ids ? $"(token ids only: {ids.Length} ids)" : $"(no text: {rec.Error})";
            if (texts.Count == wanted.Count) break;
        }
        if (texts.Count < wanted.Count)
            notes.Add($"{wanted.Count - texts.Count} listed records are not in --input '{inputPath}' (it has fewer records than the score file names).");
        return texts;
    }
}
