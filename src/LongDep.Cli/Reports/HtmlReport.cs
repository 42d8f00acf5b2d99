using System.Globalization;
using System.Net;
using System.Text;
using LongDep.Core.Records;

namespace LongDep.Cli.Reports;

/// <summary>A PNG shown in the report.</summary>
/// <param name="Png">The image bytes (embedded as a data: URI).</param>
/// <param name="Caption">Plain text under the image.</param>
public sealed record ReportImage(byte[] Png, int Width, int Height, string Caption);

/// <summary>Everything one report page shows.</summary>
/// <param name="Summary">The score file's statistics.</param>
/// <param name="DomainPlot">Box plots by domain.</param>
/// <param name="Histogram">Histogram of all ok scores.</param>
/// <param name="Heatmaps">Heatmaps of a few records (empty without a detail file).</param>
/// <param name="Texts">The first characters of the text of the top and bottom records, by index (null without an input file).</param>
/// <param name="DetailPath">The detail file, when given.</param>
/// <param name="InputPath">The input file, when given.</param>
/// <param name="Notes">Lines shown under the summary (problems met while building the report).</param>
public sealed record ReportContent(ScoreSummary Summary, ReportImage DomainPlot, ReportImage Histogram, IReadOnlyList<ReportImage> Heatmaps,
    IReadOnlyDictionary<long, string>? Texts, string? DetailPath, string? InputPath, IReadOnlyList<string> Notes);

/// <summary>
/// Writes the report as one self-contained HTML page: inline CSS, images as data: URIs, no script, and a
/// Content-Security-Policy that forbids loading anything else. Every text from the data is HTML-escaped.
/// </summary>
public static class HtmlReport
{
    /// <summary>The page's HTML.</summary>
    public static string Build(ReportContent c)
    {
        ArgumentNullException.ThrowIfNull(c);
        ScoreSummary s = c.Summary;
        var h = new StringBuilder(1 << 16);
        h.Append("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
        h.Append("<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; img-src data:; style-src 'unsafe-inline'\">\n");
        h.Append("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
        h.Append("<title>LongDep report: ").Append(E(Path.GetFileName(s.Path))).Append("</title>\n");
        h.Append("<style>\n").Append(Css).Append("</style>\n</head>\n<body>\n");

        h.Append("<h1>LongDep report</h1>\n<p class=\"meta\">Scores <code>").Append(E(s.Path)).Append("</code>");
        if (c.DetailPath is not null) h.Append(" · detail <code>").Append(E(c.DetailPath)).Append("</code>");
        if (c.InputPath is not null) h.Append(" · input <code>").Append(E(c.InputPath)).Append("</code>");
        h.Append(" · generated ").Append(E(DateTime.UtcNow.ToString("yyyy-MM-dd HH:mm 'UTC'", CultureInfo.InvariantCulture))).Append("</p>\n");

        // Run summary.
        h.Append("<h2>Run summary</h2>\n<table class=\"summary\">\n");
        Row(h, "Method", s.Methods.Count == 0 ? "—" : string.Join(", ", s.Methods) + $" (score: {s.ScoreName})");
        Row(h, "Records", Int(s.Records));
        foreach (ScoreStatus st in Enum.GetValues<ScoreStatus>())
            Row(h, st.ToJsonName(), $"{Int(s.Count(st))} ({Pct(s.Count(st), s.Records)})");
        Row(h, "Tokens (all records)", Int(s.Tokens));
        Row(h, "Tokens (ok records)", Int(s.OkTokens));
        if (s.AllScores.Length > 0)
        {
            Row(h, $"{s.ScoreName} median", Num(ScoreSummary.Quantile(s.AllScores, 0.5)));
            Row(h, $"{s.ScoreName} range", $"{Num(s.AllScores[0])} … {Num(s.AllScores[^1])}");
        }
        h.Append("</table>\n");
        foreach (string note in c.Notes) h.Append("<p class=\"note\">").Append(E(note)).Append("</p>\n");

        // Domains.
        h.Append("<h2>Scores by domain</h2>\n<table class=\"num\">\n<thead><tr><th>Domain</th><th>Records</th><th>ok</th>")
         .Append("<th>Median</th><th>Mean</th><th>Min</th><th>Max</th></tr></thead>\n<tbody>\n");
        foreach (DomainScores d in s.Domains)
        {
            h.Append("<tr><td class=\"text\">").Append(E(d.Domain)).Append("</td><td>").Append(Int(d.Records)).Append("</td><td>").Append(Int(d.Ok))
             .Append("</td><td>").Append(Num(d.Median)).Append("</td><td>").Append(Num(d.Mean)).Append("</td><td>").Append(Num(d.Min))
             .Append("</td><td>").Append(Num(d.Max)).Append("</td></tr>\n");
        }
        h.Append("</tbody>\n</table>\n");
        Figure(h, c.DomainPlot, $"{s.ScoreName} by domain");
        Figure(h, c.Histogram, $"Distribution of {s.ScoreName}");

        if (c.Heatmaps.Count > 0)
        {
            h.Append("<h2>Measurements of a few records</h2>\n<div class=\"grid\">\n");
            foreach (ReportImage img in c.Heatmaps) Figure(h, img, img.Caption);
            h.Append("</div>\n");
        }

        Extremes(h, $"Highest {s.ScoreName}", s.Top, c.Texts, s.ScoreName);
        Extremes(h, $"Lowest {s.ScoreName}", s.Bottom, c.Texts, s.ScoreName);
        h.Append("</body>\n</html>\n");
        return h.ToString();
    }

    /// <summary>The first <paramref name="max"/> characters of <paramref name="text"/> (never half a surrogate pair), with "…" when cut.</summary>
    public static string Excerpt(string text, int max = 300)
    {
        ArgumentNullException.ThrowIfNull(text);
        if (text.Length <= max) return text;
        int cut = max;
        if (char.IsHighSurrogate(text[cut - 1])) cut--;
        return text[..cut] + "…";
    }

    private static void Extremes(StringBuilder h, string title, IReadOnlyList<ScoreRecord> records, IReadOnlyDictionary<long, string>? texts, string scoreName)
    {
        h.Append("<h2>").Append(E(title)).Append("</h2>\n");
        if (records.Count == 0)
        {
            h.Append("<p>No ok record.</p>\n");
            return;
        }
        if (texts is null) h.Append("<p class=\"note\">Give --input to show the texts.</p>\n");
        h.Append("<table class=\"records\">\n<thead><tr><th>#</th><th>Index</th><th>Id</th><th>Domain</th><th>").Append(E(scoreName))
         .Append("</th><th>Tokens</th>");
        if (texts is not null) h.Append("<th>Text (first 300 characters)</th>");
        h.Append("</tr></thead>\n<tbody>\n");
        for (int k = 0; k < records.Count; k++)
        {
            ScoreRecord r = records[k];
            h.Append("<tr><td>").Append(k + 1).Append("</td><td>").Append(r.Index.ToString(CultureInfo.InvariantCulture)).Append("</td><td>")
             .Append(E(r.Id ?? "")).Append("</td><td>").Append(E(r.Domain ?? "")).Append("</td><td>").Append(Num(r.Score ?? double.NaN))
             .Append("</td><td>").Append(r.Tokens is { } t ? Int(t) : "").Append("</td>");
            if (texts is not null)
                h.Append("<td><div class=\"excerpt\">").Append(E(texts.TryGetValue(r.Index, out string? text) ? text : "(not found in the input)")).Append("</div></td>");
            h.Append("</tr>\n");
        }
        h.Append("</tbody>\n</table>\n");
    }

    private static void Figure(StringBuilder h, ReportImage img, string alt)
    {
        h.Append("<figure><img alt=\"").Append(E(alt)).Append("\" width=\"").Append(img.Width).Append("\" height=\"").Append(img.Height)
         .Append("\" src=\"data:image/png;base64,").Append(Convert.ToBase64String(img.Png)).Append("\"><figcaption>").Append(E(img.Caption))
         .Append("</figcaption></figure>\n");
    }

    private static void Row(StringBuilder h, string name, string value) =>
        h.Append("<tr><th>").Append(E(name)).Append("</th><td>").Append(E(value)).Append("</td></tr>\n");

    /// <summary>HTML-escapes text for element content and quoted attribute values (&amp; &lt; &gt; &quot; &#39;).</summary>
    public static string E(string text) => WebUtility.HtmlEncode(text);

    private static string Int(long v) => v.ToString("N0", CultureInfo.InvariantCulture);
    private static string Num(double v) => double.IsNaN(v) ? "—" : v.ToString("G5", CultureInfo.InvariantCulture);
    private static string Pct(long part, long whole) => whole == 0 ? "—" : (100.0 * part / whole).ToString("F1", CultureInfo.InvariantCulture) + "%";

    private const string Css = """
        body { font-family: system-ui, "DejaVu Sans", sans-serif; margin: 2em auto; max-width: 1100px; padding: 0 1em; color: #222; }
        h1 { margin-bottom: 0.2em; } h2 { margin-top: 1.6em; border-bottom: 1px solid #ddd; }
        .meta, .note { color: #555; } code { background: #f4f4f4; padding: 0 0.2em; word-break: break-all; }
        table { border-collapse: collapse; margin: 0.6em 0; } th, td { border: 1px solid #ddd; padding: 0.25em 0.6em; vertical-align: top; }
        thead th { background: #f0f0f0; } table.summary th { text-align: left; background: #fafafa; }
        table.num td, table.records td { text-align: right; } table.num td.text { text-align: left; }
        table.records td:nth-child(3), table.records td:nth-child(4), table.records td:nth-child(7) { text-align: left; }
        .excerpt { white-space: pre-wrap; font-family: ui-monospace, "DejaVu Sans Mono", monospace; font-size: 0.8em; max-width: 44em; overflow-wrap: anywhere; }
        figure { margin: 1em 0; } figure img { max-width: 100%; height: auto; border: 1px solid #eee; } figcaption { color: #555; font-size: 0.9em; }
        .grid { display: grid; grid-template-columns: repeat(auto-fit, minmax(460px, 1fr)); gap: 1em; }

        """;
}
