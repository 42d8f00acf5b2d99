using System.CommandLine;
using System.Text;
using System.Text.Json;
using LongDep.Cli.Runtime;
using LongDep.Core.Corpus;
using LongDep.Core.Pipeline;
using LongDep.Core.Records;
using LongDep.Core.Selection;
using LongDep.Models;
using LongDep.Models.Synthetic;
using Spectre.Console;

namespace LongDep.Cli.Commands;

/// <summary>
/// <c>longdep demo</c>: the whole flow with no download — a tiny random Llama GGUF and a small corpus, scored with
/// both methods on the CPU, then the top half selected per domain. Random weights give meaningless scores.
/// </summary>
public static class DemoCommand
{
    public static Command Create()
    {
        var dir = new Option<string?>("--dir") { Description = "folder for the model, corpus and outputs (default: a new temporary folder, kept)" };
        var records = NumericOption.Whole("--records", "documents in the demo corpus", 8, 2, 1000);
        var cmd = new Command("demo", "Score and select a small synthetic corpus with a tiny random model: the main job, end to end, no download.") { dir, records };
        cmd.SetAction(r =>
        {
            int n = r.GetValue(records);
            if (n < 2 || n > 1000) throw new CliException("--records must be between 2 and 1000", ExitCodes.Usage);
            string folder = r.GetValue(dir) ?? Directory.CreateTempSubdirectory("longdep-demo-").FullName;
            Directory.CreateDirectory(folder);
            Run(folder, n, Console.Out);
            return ExitCodes.Ok;
        });
        return cmd;
    }

    /// <summary>Runs the demo in <paramref name="folder"/>; returns the paths it wrote.</summary>
    public static (string Model, string Corpus, string Ladm, string ProLong, string Selected) Run(string folder, int records, TextWriter log)
    {
        var console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(log) });
        string model = Path.Combine(folder, "tiny-random.gguf");
        string corpus = Path.Combine(folder, "corpus.jsonl");
        string ladm = Path.Combine(folder, "scores-ladm.jsonl");
        string prolong = Path.Combine(folder, "scores-prolong.jsonl");
        string selected = Path.Combine(folder, "selected.jsonl");

        var cfg = RandomModel.Shape("tiny", vocabSize: 600, contextLength: 8192);
        var weights = RandomModel.Create(cfg, seed: 7);
        var vocab = MakeModelCommand.Vocabulary(cfg);
        Models.Gguf.GgufModel.Save(model, weights, TensorType.F32, vocab, "longdep demo (random weights)");
        log.WriteLine($"1. wrote a tiny random Llama model: {model} ({cfg.Layers} layers, {cfg.Dim} dims, {cfg.VocabSize} tokens)");

        string[] words = vocab.Tokens.Where(t => t.StartsWith('▁') && t.Length > 3).Select(t => t[1..]).Distinct().Take(300).ToArray();
        using (var w = new StreamWriter(corpus, false, new UTF8Encoding(false)))
        {
            for (int i = 0; i < records; i++)
            {
                bool longRange = i % 2 == 0;
                string text = SyntheticText.Document(words, 2200 + 150 * (i % 3), longRange, seed: i + 1);
                var rec = new Dictionary<string, object>
                {
                    ["id"] = $"doc-{i}",
                    ["text"] = text,
                    ["meta"] = new Dictionary<string, string> { ["pile_set_name"] = longRange ? "RecurringTopics" : "Shuffled" },
                };
                w.WriteLine(JsonSerializer.Serialize(rec, DemoJson.Default.DictionaryStringObject));
            }
            w.WriteLine("{\"id\":\"short\",\"text\":\"Too short to score.\",\"meta\":{\"pile_set_name\":\"Shuffled\"}}");
            w.WriteLine("this line is not JSON");
        }
        log.WriteLine($"2. wrote a corpus of {records + 2} records (one too short, one not JSON): {corpus}");

        var loaded = ModelLoader.Load(model);
        var tokenizer = ScoreCommand.MakeTokenizer(loaded, addBos: false);
        foreach (var (method, output) in new[] { (ScoreMethod.Ladm, ladm), (ScoreMethod.ProLong, prolong) })
        {
            var settings = new ScoreSettings { Method = method };
            var (workers, device) = Backends.Create(DeviceSpec.Parse("cpu"), loaded, settings, new BackendOptions());
            RunSummary s;
            try
            {
                s = ScoreRun.Execute(new ScoreRunOptions { InputPath = corpus, OutputPath = output, Overwrite = true }, settings, tokenizer, workers);
            }
            finally
            {
                foreach (var wk in workers) wk.Dispose();
            }
            log.WriteLine($"3. scored with {settings.MethodName} on {device}: {s}");
        }

        var table = new Table().Border(TableBorder.Rounded).Title("[bold]scores (random weights: the numbers mean nothing)[/]");
        foreach (var c in new[] { "index", "id", "domain", "tokens", "LADM CDS", "ProLong LDS", "status" }) table.AddColumn(c);
        foreach (var (a, b) in ScoreReader.Read(ladm).Zip(ScoreReader.Read(prolong)))
            table.AddRow(a.Index.ToString(), Markup.Escape(a.Id ?? "-"), Markup.Escape(a.Domain ?? "-"), a.Tokens?.ToString() ?? "-",
                a.Score?.ToString("G5") ?? "-", b.Score?.ToString("G5") ?? "-",
                Markup.Escape(a.Status == b.Status ? a.Status.ToJsonName() : $"{a.Status.ToJsonName()} / {b.Status.ToJsonName()}"));
        console.Write(table);

        var items = ScoreReader.Read(ladm).Select(ScoredItem.From).ToList();
        var result = Selector.Select(items, SelectionOptions.TopPercent(50, perDomain: true));
        using (var stream = File.Create(selected))
            SelectionCopier.Copy(corpus, result.SelectedIndices, stream, items.Count);
        log.WriteLine($"4. selected the top 50% per domain by LADM CDS: {result.SelectedIndices.Length} records -> {selected} (indexes {string.Join(", ", result.SelectedIndices)})");
        log.WriteLine();
        log.WriteLine("With a real model (e.g. a TinyLlama GGUF, or LADM's Long-Attn-Calculator checkpoint):");
        log.WriteLine("  ./longdep score --method ladm --model tinyllama-1.1b.Q8_0.gguf --input pile.jsonl.zst --output scores.jsonl");
        log.WriteLine("  ./longdep select --scores scores.jsonl --input pile.jsonl.zst --output selected.jsonl --top-percent 50 --per-domain");
        return (model, corpus, ladm, prolong, selected);
    }
}

[System.Text.Json.Serialization.JsonSerializable(typeof(Dictionary<string, object>))]
[System.Text.Json.Serialization.JsonSerializable(typeof(Dictionary<string, string>))]
internal sealed partial class DemoJson : System.Text.Json.Serialization.JsonSerializerContext;
