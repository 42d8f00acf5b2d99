using System.CommandLine;
using LongDep.Cli.Runtime;
using LongDep.Core.Corpus;
using LongDep.Core.Diagnostics;
using LongDep.Core.Pipeline;
using LongDep.Core.Records;
using LongDep.Core.Scoring;
using LongDep.Models;
using Spectre.Console;

namespace LongDep.Cli.Commands;

/// <summary><c>longdep score</c>: scores every record of a corpus with LADM's CDS or ProLong's LDS (SPEC §1–3, §5).</summary>
public static class ScoreCommand
{
    public static Command Create()
    {
        var method = new Option<string>("--method") { Description = "ladm (CDS) or prolong (LDS)", Required = true };
        method.AcceptOnlyFromAmong("ladm", "prolong");
        var model = new Option<string>("--model") { Description = "a GGUF file or a Hugging Face checkpoint folder", Required = true };
        var input = new Option<string>("--input") { Description = "corpus: .jsonl, .jsonl.zst, .jsonl.gz, .parquet or an MDS dataset folder", Required = true };
        var output = new Option<string>("--output") { Description = "scores, one JSON line per input record (resumed when it exists)", Required = true };
        var device = new Option<string>("--device") { Description = "auto, cpu, cuda, cuda:N, cuda:0,1 or cuda:all", DefaultValueFactory = _ => "auto" };
        var window = new Option<int>("--window") { Description = "W: tokens per sample (LADM) / N = W/l chunks at most (ProLong)", DefaultValueFactory = _ => 32768 };
        var chunk = new Option<int>("--chunk") { Description = "l: span / chunk length in tokens", DefaultValueFactory = _ => 128 };
        var dAfs = new Option<int>("--d-afs") { Description = "LADM: interval = l * d_afs", DefaultValueFactory = _ => 4 };
        var dCds = new Option<int>("--d-cds") { Description = "LADM: stride between query spans = l * d_cds", DefaultValueFactory = _ => 4 };
        var ablation = new Option<string>("--ablation") { Description = "LADM: none, no-std or no-len-weight", DefaultValueFactory = _ => "none" };
        ablation.AcceptOnlyFromAmong("none", "no-std", "no-len-weight");
        var pairs = new Option<string>("--pairs") { Description = "ProLong: pairs drawn per record (a number or 'all')", DefaultValueFactory = _ => "5000" };
        var threshold = new Option<double>("--threshold") { Description = "ProLong: δ, DST threshold", DefaultValueFactory = _ => 0.1 };
        var seed = new Option<long>("--seed") { Description = "seed of the draws (per record: seed and record index)", DefaultValueFactory = _ => 11 };
        var addBos = new Option<bool?>("--add-bos") { Description = "prepend the model's BOS token to text records (true/false; default: as the model's tokenizer config says, no BOS for OPT as ProLong)" };
        var domainField = new Option<string>("--domain-field") { Description = "dotted path of the domain (MDS input: the domain column)", DefaultValueFactory = _ => "meta.pile_set_name" };
        var textField = new Option<string>("--text-field") { Description = "dotted path of the text", DefaultValueFactory = _ => "text" };
        var idsField = new Option<string>("--ids-field") { Description = "dotted path of pre-tokenized ids", DefaultValueFactory = _ => "input_ids" };
        var idField = new Option<string>("--id-field") { Description = "dotted path of the record id", DefaultValueFactory = _ => "id" };
        var ropeTheta = new Option<float?>("--rope-theta") { Description = "override the RoPE frequency base (LADM's calculator: 500000 at 32K)" };
        var shard = new Option<string?>("--shard") { Description = "i/N: score only records with index ≡ i (mod N)" };
        var overwrite = new Option<bool>("--overwrite") { Description = "replace an existing output instead of resuming it" };
        var detail = new Option<string?>("--detail") { Description = "also write each record's measurements to this side file" };
        var threads = new Option<int>("--threads") { Description = "CPU threads (0: all cores)", DefaultValueFactory = _ => 0 };
        var pairBatch = new Option<int>("--pair-batch") { Description = "GPU: ProLong pairs per batch", DefaultValueFactory = _ => 128 };
        var bf16 = new Option<bool>("--bf16") { Description = "GPU: keep weights in bf16 instead of f16" };
        var kernels = KernelsOption.Create();
        var profile = new Option<bool>("--profile") { Description = "print a per-phase time table at the end" };
        var progressEvery = new Option<double>("--progress-interval") { Description = "seconds between progress lines when stderr is not a terminal", DefaultValueFactory = _ => 30 };
        var flushEvery = new Option<int>("--flush-every") { Description = "records between flushes of the output", DefaultValueFactory = _ => 8 };

        var cmd = new Command("score", "Score every record of a corpus (LADM CDS or ProLong LDS); one output line per input record, in input order.")
        {
            method, model, input, output, device, window, chunk, dAfs, dCds, ablation, pairs, threshold, seed, addBos,
            domainField, textField, idsField, idField, ropeTheta, shard, overwrite, detail, threads, pairBatch, bf16, kernels, profile,
            progressEvery, flushEvery,
        };
        cmd.SetAction(r =>
        {
            var settings = new ScoreSettings
            {
                Method = r.GetValue(method) == "ladm" ? ScoreMethod.Ladm : ScoreMethod.ProLong,
                Window = r.GetValue(window),
                Chunk = r.GetValue(chunk),
                DAfs = r.GetValue(dAfs),
                DCds = r.GetValue(dCds),
                Ablation = r.GetValue(ablation) switch { "no-std" => LadmAblation.NoStd, "no-len-weight" => LadmAblation.NoLenWeight, _ => LadmAblation.None },
                Pairs = ParsePairs(r.GetValue(pairs)!),
                Threshold = r.GetValue(threshold),
                Seed = r.GetValue(seed),
            };
            if (settings.Validate() is { } bad) throw new CliException(bad, ExitCodes.Usage);
            var (shardIndex, shardCount) = ParseShard(r.GetValue(shard));
            var options = new ScoreRunOptions
            {
                InputPath = r.GetValue(input)!,
                OutputPath = r.GetValue(output)!,
                Fields = new RecordFieldOptions
                {
                    TextField = r.GetValue(textField)!,
                    IdsField = r.GetValue(idsField)!,
                    IdField = r.GetValue(idField)!,
                    DomainField = r.GetResult(domainField) is { Implicit: false }
                        ? r.GetValue(domainField)!
                        : CorpusReader.DefaultDomainField(r.GetValue(input)!, r.GetValue(domainField)!),
                },
                ShardIndex = shardIndex,
                ShardCount = shardCount,
                Overwrite = r.GetValue(overwrite),
                FlushEvery = Math.Max(1, r.GetValue(flushEvery)),
            };
            var deviceSpec = DeviceSpec.Parse(r.GetValue(device)!);
            if (!CorpusReader.InputExists(options.InputPath)) throw new CliException($"input '{options.InputPath}' does not exist");
            Phases.Timing = r.GetValue(profile);

            var stderr = Console.Error;
            stderr.WriteLine($"loading {r.GetValue(model)}");
            LoadedModel loaded;
            using (Phases.Begin("load model")) loaded = ModelLoader.Load(r.GetValue(model)!, r.GetValue(ropeTheta));
            foreach (string warning in ModelChecks.BeforeScoring(loaded.Config, settings)) stderr.WriteLine($"note: {warning}");
            var tokenizer = MakeTokenizer(loaded, r.GetValue(addBos) ?? loaded.AddBosDefault);
            var (workers, description) = Backends.Create(deviceSpec, loaded, settings,
                new BackendOptions(r.GetValue(threads), r.GetValue(pairBatch), r.GetValue(bf16), KernelsOption.Read(r, kernels)));
            stderr.WriteLine($"scoring with {settings.MethodName} on {description}");
            CancellationToken ct = CliApp.CancelOnCtrlC();
            RunSummary summary;
            try
            {
                using IDetailSink? sink = DetailSinks.Open(r.GetValue(detail), options, settings);
                summary = ProgressDisplay.Run(progress => ScoreRun.Execute(options, settings, tokenizer, workers, sink, progress, ct),
                    TimeSpan.FromSeconds(Math.Max(1, r.GetValue(progressEvery))));
            }
            finally
            {
                foreach (var w in workers) w.Dispose();
            }
            PrintSummary(summary, description, options.OutputPath);
            if (Phases.Timing) PrintPhases();
            return ExitCodes.Ok;
        });
        return cmd;
    }

    /// <summary>The text→ids function of a loaded model; records with text fail as bad_record when it has no tokenizer.</summary>
    public static ScoreRun.Tokenizer MakeTokenizer(LoadedModel model, bool addBos)
    {
        var tok = model.Tokenizer;
        if (addBos && tok is not null && tok.BosId is null)
            throw new CliException($"--add-bos: the model's tokenizer has no BOS token");
        Func<string, int[]> encode = tok is null
            ? _ => throw new InvalidOperationException($"the model has no usable tokenizer ({model.TokenizerProblem}); give input_ids")
            : text => tok.Encode(text, addBos);
        return new ScoreRun.Tokenizer(encode, model.Config.VocabSize);
    }

    public static int ParsePairs(string text)
    {
        if (text.Equals("all", StringComparison.OrdinalIgnoreCase)) return -1;
        if (int.TryParse(text, out int n) && n > 0) return n;
        throw new CliException($"--pairs '{text}' must be a positive number or 'all'", ExitCodes.Usage);
    }

    public static (int Index, int Count) ParseShard(string? text)
    {
        if (string.IsNullOrEmpty(text)) return (0, 1);
        var parts = text.Split('/');
        if (parts.Length == 2 && int.TryParse(parts[0], out int i) && int.TryParse(parts[1], out int n) && n >= 1 && i >= 0 && i < n)
            return (i, n);
        throw new CliException($"--shard '{text}' must be i/N with 0 <= i < N (e.g. 0/8; for Slurm arrays: $SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT)", ExitCodes.Usage);
    }

    private static void PrintSummary(RunSummary s, string device, string output)
    {
        var table = new Table().Border(TableBorder.Rounded).Title("[bold]longdep score[/]");
        table.AddColumn("what");
        table.AddColumn(new TableColumn("value").RightAligned());
        table.AddRow("records written", s.Records.ToString("N0"));
        foreach (ScoreStatus st in Enum.GetValues<ScoreStatus>()) table.AddRow($"  {st.ToJsonName()}", s.Count(st).ToString("N0"));
        table.AddRow("tokens (ok records)", s.Tokens.ToString("N0"));
        table.AddRow("seconds", s.Seconds.ToString("F1"));
        table.AddRow("records/s", s.RecordsPerSecond.ToString("F3"));
        table.AddRow("tokens/s", s.TokensPerSecond.ToString("F0"));
        table.AddRow("device", Markup.Escape(device));
        table.AddRow("peak host memory", $"{System.Diagnostics.Process.GetCurrentProcess().PeakWorkingSet64 / (1024.0 * 1024.0):F0} MiB");
        table.AddRow("output", Markup.Escape(output));
        AnsiConsole.Write(table);
    }

    public static void PrintPhases()
    {
        var table = new Table().Border(TableBorder.Rounded).Title("[bold]phases (--profile)[/]");
        table.AddColumn("phase");
        table.AddColumn(new TableColumn("total s").RightAligned());
        table.AddColumn(new TableColumn("count").RightAligned());
        table.AddColumn(new TableColumn("mean ms").RightAligned());
        foreach (var (name, total, count) in Phases.Snapshot())
            table.AddRow(Markup.Escape(name), total.TotalSeconds.ToString("F3"), count.ToString("N0"),
                (count > 0 ? total.TotalMilliseconds / count : 0).ToString("F3"));
        AnsiConsole.Write(table);
    }
}
