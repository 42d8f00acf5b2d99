using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using LongDep.Cli.Runtime;
using LongDep.Core.Corpus;
using LongDep.Core.Corpus.Mds;
using LongDep.Core.Selection;
using Spectre.Console;
using SelectionMode = LongDep.Core.Selection.SelectionMode;

namespace LongDep.Cli.Commands;

/// <summary><c>longdep select</c>: keeps the best-scored records of a corpus (SPEC §4).</summary>
public static class SelectCommand
{
    public static Command Create()
    {
        var scores = new Option<string>("--scores") { Description = "the output of longdep score", Required = true };
        var input = new Option<string>("--input") { Description = "the corpus that was scored (a file or an MDS dataset folder)", Required = true };
        var output = new Option<string>("--output") { Description = "the chosen input records, unchanged, in input order (JSON lines, or an MDS folder)", Required = true };
        var format = new Option<string>("--format") { Description = "output format: auto (MDS for an MDS input, else JSON lines), jsonl or mds", DefaultValueFactory = _ => "auto" };
        format.AcceptOnlyFromAmong("auto", "jsonl", "mds");
        var compression = new Option<string>("--compression") { Description = "MDS output: none, zstd or zstd:LEVEL", DefaultValueFactory = _ => "none" };
        var topPercent = NumericOption.RealOrNone("--top-percent", "keep the top X percent (floor of count × X / 100)", 0, 100, minExclusive: true);
        var topK = NumericOption.WholeOrNone("--top-k", "keep the top N records", 0L, long.MaxValue);
        var budget = NumericOption.WholeOrNone("--token-budget", "keep the best records up to N tokens", 0L, long.MaxValue);
        var perDomain = new Option<bool>("--per-domain") { Description = "every domain keeps its share (LADM's filter)" };
        var summaryJson = new Option<string?>("--summary") { Description = "also write the summary as JSON to this file" };
        var cmd = new Command("select", "Select the best-scored records: --top-percent X | --top-k N | --token-budget N, optionally --per-domain.")
        {
            scores, input, output, topPercent, topK, budget, perDomain, summaryJson, format, compression,
        };
        cmd.SetAction(r =>
        {
            int modes = (r.GetValue(topPercent) is null ? 0 : 1) + (r.GetValue(topK) is null ? 0 : 1) + (r.GetValue(budget) is null ? 0 : 1);
            if (modes != 1) throw new CliException("give exactly one of --top-percent, --top-k, --token-budget", ExitCodes.Usage);
            bool pd = r.GetValue(perDomain);
            SelectionOptions options;
            try
            {
                options = r.GetValue(topPercent) is { } x ? SelectionOptions.TopPercent(x, pd)
                    : r.GetValue(topK) is { } k ? SelectionOptions.TopK(k, pd)
                    : SelectionOptions.TokenBudget(r.GetValue(budget)!.Value, pd);
            }
            catch (ArgumentException e)
            {
                throw new CliException(e.Message.Split(" (Parameter")[0], ExitCodes.Usage);
            }
            string inputPath = r.GetValue(input)!, outputPath = r.GetValue(output)!, scoresPath = r.GetValue(scores)!;
            if (!CorpusReader.InputExists(inputPath)) throw new CliException($"input '{inputPath}' does not exist");
            bool mds = r.GetValue(format) == "mds" || (r.GetValue(format) == "auto" && MdsIndex.IsDataset(inputPath));
            string comp = r.GetValue(compression)!;
            var writerOptions = new MdsWriterOptions { Compression = comp == "none" ? null : comp };
            if (mds && writerOptions.Validate() is { } badWriter) throw new CliException($"--compression: {badWriter}", ExitCodes.Usage);
            if (!mds) OutputGuard.RequireFile("--output", outputPath);
            OutputGuard.RefuseSameFiles([new("--scores", scoresPath), new("--input", inputPath)], [new("--output", outputPath), new("--summary", r.GetValue(summaryJson))]);
            var hashes = new Dictionary<long, ulong>();
            var items = ScoreReader.Read(scoresPath).Select(rec =>
            {
                if (rec.InputHash is { } h) hashes[rec.Index] = h;
                return ScoredItem.From(rec);
            }).ToList();
            var result = Selector.Select(items, options);
            string tmp = outputPath + ".tmp";
            long written;
            if (mds)
            {
                try
                {
                    (_, written) = MdsSelectionCopier.Copy(inputPath, result.SelectedIndices, outputPath, writerOptions, items.Count,
                        expectedHash: index => hashes.TryGetValue(index, out ulong h) ? h : null);
                }
                catch (InvalidOperationException e)
                {
                    throw new CliException(e.Message);
                }
            }
            else try
            {
                using (var stream = new FileStream(tmp, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 16))
                    (_, written) = SelectionCopier.Copy(inputPath, result.SelectedIndices, stream, items.Count,
                        expectedHash: index => hashes.TryGetValue(index, out ulong h) ? h : null);
                File.Move(tmp, outputPath, overwrite: true);
            }
            catch (InvalidOperationException e)
            {
                File.Delete(tmp);
                throw new CliException($"{e.Message} (are --scores and --input from the same run?)");
            }
            Print(result.Summary, written, outputPath);
            if (r.GetValue(summaryJson) is { } json) File.WriteAllText(json, ToJson(result.Summary));
            return ExitCodes.Ok;
        });
        return cmd;
    }

    private static string Num(double? v) => v is { } d ? d.ToString("G6", CultureInfo.InvariantCulture) : "-";

    private static void Print(SelectionSummary s, long written, string output)
    {
        var o = s.Options;
        string mode = o.Mode switch
        {
            SelectionMode.TopPercent => $"top {o.Percent}%",
            SelectionMode.TopK => $"top {o.Amount}",
            _ => $"token budget {o.Amount:N0}" + (s.Percent is { } p ? $" (per-domain: stopped at {p}%)" : ""),
        } + (o.PerDomain ? ", per domain" : "");
        var table = new Table().Border(TableBorder.Rounded).Title($"[bold]longdep select[/]: {Markup.Escape(mode)}");
        foreach (var c in new[] { "domain", "ok before", "tokens before", "kept", "tokens kept", "score cut", "not ok" })
            table.AddColumn(c == "domain" ? new TableColumn(c) : new TableColumn(c).RightAligned());
        foreach (var d in s.Domains)
            table.AddRow(Markup.Escape(d.Domain ?? "(none)"), d.CountBefore.ToString("N0"), d.TokensBefore.ToString("N0"),
                d.CountAfter.ToString("N0"), d.TokensAfter.ToString("N0"), Num(d.ScoreCut), d.NotOk.ToString("N0"));
        table.AddRow("[bold]all[/]", s.CountBefore.ToString("N0"), s.TokensBefore.ToString("N0"), s.CountAfter.ToString("N0"),
            s.TokensAfter.ToString("N0"), Num(s.ScoreCut), s.NotOk.ToString("N0"));
        AnsiConsole.Write(table);
        AnsiConsole.MarkupLine($"wrote {written:N0} records to {Markup.Escape(output)}");
    }

    /// <summary>The summary as JSON (written by hand: the trimmed bundle has no reflection-based serializer).</summary>
    private static string ToJson(SelectionSummary s)
    {
        using var stream = new MemoryStream();
        using (var w = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true }))
        {
            void Counts(long countBefore, long tokensBefore, long countAfter, long tokensAfter, double? cut, long notOk)
            {
                w.WriteNumber("count_before", countBefore);
                w.WriteNumber("tokens_before", tokensBefore);
                w.WriteNumber("count_after", countAfter);
                w.WriteNumber("tokens_after", tokensAfter);
                if (cut is { } c) w.WriteNumber("score_cut", c); else w.WriteNull("score_cut");
                w.WriteNumber("not_ok", notOk);
            }
            w.WriteStartObject();
            w.WriteString("mode", s.Options.Mode.ToString());
            w.WriteNumber("percent", s.Options.Percent);
            w.WriteNumber("amount", s.Options.Amount);
            w.WriteBoolean("per_domain", s.Options.PerDomain);
            if (s.Percent is { } p) w.WriteNumber("stopped_at_percent", p);
            Counts(s.CountBefore, s.TokensBefore, s.CountAfter, s.TokensAfter, s.ScoreCut, s.NotOk);
            w.WriteStartArray("domains");
            foreach (var d in s.Domains)
            {
                w.WriteStartObject();
                if (d.Domain is null) w.WriteNull("domain"); else w.WriteString("domain", d.Domain);
                Counts(d.CountBefore, d.TokensBefore, d.CountAfter, d.TokensAfter, d.ScoreCut, d.NotOk);
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteEndObject();
        }
        return System.Text.Encoding.UTF8.GetString(stream.ToArray());
    }
}
