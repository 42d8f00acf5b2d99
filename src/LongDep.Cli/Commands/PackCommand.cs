using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using LongDep.Cli.Runtime;
using LongDep.Core.Corpus;
using LongDep.Core.Corpus.Mds;
using LongDep.Core.Packing;
using LongDep.Core.Records;
using LongDep.Models;
using Spectre.Console;

namespace LongDep.Cli.Commands;

/// <summary>
/// <c>longdep pack</c>: composes sources by token share into fixed-length sequences (BOS/EOS around each document,
/// <c>indices</c> for document masking) and writes an MDS dataset a <c>StreamingDataset</c> trainer reads (SPEC §7).
/// </summary>
public static class PackCommand
{
    public static Command Create()
    {
        var source = new Option<string[]>("--source")
        {
            Description = "[NAME=]PATH:SHARE, repeated: a corpus (any input format, or an MDS folder) and its token share; NAME (default: the path's stem) is the sequences' domain",
            Required = true,
        };
        var seqLen = NumericOption.WholeOrNone("--seq-len", "tokens per sequence (e.g. 65536, 524288)", 2, 1 << 30, required: true);
        var model = new Option<string?>("--model") { Description = "GGUF file or Hugging Face folder: its tokenizer (text records; BOS/EOS ids); only the tokenizer is read" };
        var output = new Option<string>("--output") { Description = "the MDS dataset folder to write", Required = true };
        var tokens = NumericOption.WholeOrNone("--tokens", "token budget of the mixture (whole sequences)", 1L, long.MaxValue, absent: "default: until a source runs out");
        var seed = NumericOption.Whole("--seed", "seed of --shuffle", 42L, long.MinValue, long.MaxValue);
        var bos = NumericOption.WholeOrNone("--bos", "BOS id added before each document", 0, int.MaxValue, absent: "default: the model's");
        var eos = NumericOption.WholeOrNone("--eos", "EOS id added after each document", 0, int.MaxValue, absent: "default: the model's");
        var shuffle = new Option<bool>("--shuffle") { Description = "shuffle each source's documents (seeded): MDS shard order and samples in each shard; other formats through a window" };
        var bins = NumericOption.Whole("--bins", "open sequences per source: 1 = one buffer in document order; N > 1 = best-fit-decreasing over N", 1, 1, 1 << 16);
        var minLength = NumericOption.Whole("--min-length", "drop the continuation of a split document when shorter than this", 1, 0, int.MaxValue);
        var compression = new Option<string>("--compression") { Description = "shard compression: none, zstd or zstd:LEVEL", DefaultValueFactory = _ => "none" };
        var shardSize = NumericOption.Whole("--shard-size", "shard size limit in bytes (MDSWriter's size_limit)", MdsWriterOptions.DefaultSizeLimit, 1024L, int.MaxValue);
        var overwrite = new Option<bool>("--overwrite") { Description = "replace a dataset already in --output" };
        var summaryJson = new Option<string?>("--summary") { Description = $"also write the summary JSON here (it is always written to OUTPUT/{PackRun.SummaryFileName})" };
        var textField = new Option<string>("--text-field") { Description = "dotted path (MDS: column) of the text", DefaultValueFactory = _ => "text" };
        var idsField = new Option<string>("--ids-field") { Description = "dotted path (MDS: column) of pre-tokenized ids", DefaultValueFactory = _ => "input_ids" };
        var progressEvery = NumericOption.Real("--progress-interval", "seconds between progress lines when stderr is not a terminal", 30, 0.1, 86400);
        var cmd = new Command("pack", "Pack sources by token share into fixed-length sequences (BOS/EOS, indices, domain) and write an MDS dataset.")
        {
            source, seqLen, model, output, tokens, seed, bos, eos, shuffle, bins, minLength, compression, shardSize, overwrite, summaryJson,
            textField, idsField, progressEvery,
        };
        cmd.SetAction(r =>
        {
            PackSource[] sources;
            try
            {
                sources = r.GetValue(source)!.Select(PackSource.Parse).ToArray();
            }
            catch (ArgumentException e)
            {
                throw new CliException(e.Message, ExitCodes.Usage);
            }
            string comp = r.GetValue(compression)!;
            var options = new PackOptions
            {
                Sources = sources,
                SeqLen = r.GetValue(seqLen)!.Value,
                OutputPath = r.GetValue(output)!,
                TokenBudget = r.GetValue(tokens),
                Seed = r.GetValue(seed),
                Shuffle = r.GetValue(shuffle),
                Bins = r.GetValue(bins),
                MinLength = r.GetValue(minLength),
                Bos = r.GetValue(bos),
                Eos = r.GetValue(eos),
                Overwrite = r.GetValue(overwrite),
                Writer = new MdsWriterOptions { Compression = comp == "none" ? null : comp, SizeLimit = r.GetValue(shardSize) },
                Fields = new RecordFieldOptions { TextField = r.GetValue(textField)!, IdsField = r.GetValue(idsField)! },
            };
            if (options.Validate() is { } bad) throw new CliException(bad, ExitCodes.Usage);
            foreach (PackSource s in sources)
                if (!CorpusReader.InputExists(s.Path)) throw new CliException($"source '{s.Name}': '{s.Path}' does not exist");

            var stderr = Console.Error;
            PackTokenizer tokenizer = new(null, null);
            if (r.GetValue(model) is { } modelPath)
            {
                ModelDescription described = ModelLoader.Describe(modelPath);
                var tok = described.Tokenizer;
                if (tok is null && (options.Bos is null || options.Eos is null))
                    stderr.WriteLine($"longdep pack: {modelPath} has no usable tokenizer ({described.TokenizerProblem}): text records will be skipped");
                options = options with { Bos = options.Bos ?? tok?.BosId, Eos = options.Eos ?? tok?.EosId };
                tokenizer = new PackTokenizer(tok is null ? null : text => tok.Encode(text, addBos: false), described.Config.VocabSize);
                if (options.Bos is { } b && b >= described.Config.VocabSize || options.Eos is { } e && e >= described.Config.VocabSize)
                    throw new CliException($"--bos/--eos must be ids of {modelPath}'s vocabulary (0..{described.Config.VocabSize - 1})", ExitCodes.Usage);
            }
            else if (options.Bos is null || options.Eos is null)
            {
                throw new CliException("give --model (its tokenizer's BOS/EOS ids) or both --bos and --eos", ExitCodes.Usage);
            }
            stderr.WriteLine($"packing {sources.Length} source(s) into {options.SeqLen:N0}-token sequences " +
                             $"(BOS {options.Bos?.ToString(CultureInfo.InvariantCulture) ?? "none"}, EOS {options.Eos?.ToString(CultureInfo.InvariantCulture) ?? "none"}, " +
                             $"{(options.Bins == 1 ? "one buffer" : $"best-fit-decreasing over {options.Bins} bins")}{(options.Shuffle ? $", shuffled with seed {options.Seed}" : "")})");

            CancellationToken ct = CliApp.CancelOnSignals();
            PackSummary summary;
            try
            {
                summary = RunWithProgress(p => PackRun.Execute(options, tokenizer, p, ct), TimeSpan.FromSeconds(Math.Max(1, r.GetValue(progressEvery))));
            }
            catch (OperationCanceledException)
            {
                throw new CliException("interrupted; the partial dataset was removed: rerun the same command to start again (it gives the same bytes)", ExitCodes.Interrupted);
            }
            Print(summary);
            if (r.GetValue(summaryJson) is { } json) File.WriteAllText(json, summary.ToJson());
            return ExitCodes.Ok;
        });
        return cmd;
    }

    private static string Pct(double x) => (100 * x).ToString("F2", CultureInfo.InvariantCulture) + "%";

    private static void Print(PackSummary s)
    {
        var table = new Table().Border(TableBorder.Rounded)
            .Title($"[bold]longdep pack[/]: {s.Sequences:N0} sequences × {s.SeqLen:N0} tokens = {s.Tokens:N0} tokens");
        foreach (var c in new[] { "source", "share", "got", "seqs", "tokens", "docs", "split", "bad", "dropped" })
            table.AddColumn(c == "source" ? new TableColumn(c) : new TableColumn(c).RightAligned());
        foreach (PackSourceSummary src in s.Sources)
            table.AddRow(Markup.Escape(src.Name), Pct(src.Share), Pct(src.AchievedShare), src.Sequences.ToString("N0"), src.Tokens.ToString("N0"),
                src.Documents.ToString("N0"), src.DocumentsSplit.ToString("N0"), src.BadRecords.ToString("N0"),
                (src.TokensDroppedShort + src.TokensLeftOver).ToString("N0"));
        AnsiConsole.Write(table);
        foreach (PackSourceSummary src in s.Sources.Where(x => x.FirstBad is not null))
            AnsiConsole.MarkupLine($"[yellow]{Markup.Escape(src.Name)}[/]: {src.BadRecords:N0} records skipped; the first: {Markup.Escape(src.FirstBad!)}");
        AnsiConsole.MarkupLine($"stopped: {Markup.Escape(s.Stopped)}; dropped {s.TokensDropped:N0} tokens (short continuations, unfinished sequences); " +
                               $"{s.TokensPerMinute / 1e6:F1} M tokens/minute");
        AnsiConsole.MarkupLine($"wrote {s.Output.Samples:N0} sequences in {s.Output.Shards:N0} shard{(s.Output.Shards == 1 ? "" : "s")} ({s.Output.FileBytes / 1048576.0:F1} MiB) to " +
                               $"{Markup.Escape(s.Output.Directory)}; summary: {Markup.Escape(Path.Combine(s.Output.Directory, PackRun.SummaryFileName))}");
    }

    /// <summary>A live bar when stderr is a terminal, else a plain line every <paramref name="interval"/>.</summary>
    private static T RunWithProgress<T>(Func<IProgress<PackProgress>, T> body, TimeSpan interval)
    {
        bool live = !Console.IsErrorRedirected && AnsiConsole.Profile.Capabilities.Interactive;
        if (!live) return body(new PlainLines(Console.Error, interval));
        var console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(Console.Error) });
        T result = default!;
        console.Progress().AutoClear(false)
            .Columns(new TaskDescriptionColumn { Alignment = Justify.Left }, new ProgressBarColumn(), new PercentageColumn(),
                new ElapsedTimeColumn(), new RemainingTimeColumn())
            .Start(ctx =>
            {
                var task = ctx.AddTask("starting", maxValue: 100);
                result = body(new Live(task));
                task.Value = task.MaxValue;
            });
        return result;
    }

    private static string Describe(PackProgress p)
    {
        double secs = Math.Max(p.Elapsed.TotalSeconds, 1e-9);
        string of = p.BudgetSequences is { } b ? $" of {b:N0}" : "";
        return $"{p.Sequences:N0}{of} sequences, {p.Tokens:N0} tokens, {p.Tokens / secs * 60 / 1e6:F1} M tokens/min";
    }

    private sealed class Live(ProgressTask task) : IProgress<PackProgress>
    {
        private readonly Stopwatch _since = Stopwatch.StartNew();

        public void Report(PackProgress value)
        {
            if (_since.ElapsedMilliseconds < 100) return;
            _since.Restart();
            task.Description = Markup.Escape(Describe(value));
            if (value.Fraction is { } f) task.Value = f * 100;
        }
    }

    private sealed class PlainLines(TextWriter writer, TimeSpan interval) : IProgress<PackProgress>
    {
        private readonly Stopwatch _since = Stopwatch.StartNew();

        public void Report(PackProgress value)
        {
            if (_since.Elapsed < interval) return;
            _since.Restart();
            string eta = value.Fraction is > 0.001 and < 1 and var f
                ? $", ETA {TimeSpan.FromSeconds(value.Elapsed.TotalSeconds * (1 - f) / f):hh\\:mm\\:ss} ({f:P1})"
                : "";
            writer.WriteLine($"[{DateTime.Now:HH:mm:ss}] {Describe(value)}{eta}");
        }
    }
}
