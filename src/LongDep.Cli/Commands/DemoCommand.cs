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
            Run(folder, n, Console.Out, TerminalWidth());
            return ExitCodes.Ok;
        });
        return cmd;
    }

    /// <summary>
    /// The width the output is laid out for: the terminal's, else <c>COLUMNS</c> when output is redirected, else 100.
    /// </summary>
    public static int TerminalWidth()
    {
        if (!Console.IsOutputRedirected)
        {
            try
            {
                if (Console.WindowWidth > 0) return Console.WindowWidth;
            }
            catch (Exception e) when (e is IOException or PlatformNotSupportedException)
            {
            }
        }
        return int.TryParse(Environment.GetEnvironmentVariable("COLUMNS"), out int columns) && columns > 0 ? columns : DefaultWidth;
    }

    /// <summary>The width used when the output's is unknown, and the one every line and the table fit in.</summary>
    public const int DefaultWidth = 100;

    /// <summary>
    /// Runs the demo in <paramref name="folder"/>, laid out for <paramref name="width"/> columns (the table's cells never
    /// wrap at 100 or more); returns the paths it wrote.
    /// </summary>
    public static (string Model, string Corpus, string Ladm, string ProLong, string Selected) Run(string folder, int records, TextWriter log,
        int width = DefaultWidth)
    {
        var console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(log) });
        console.Profile.Width = width;
        void Say(string text, string indent = "   ")
        {
            foreach (string line in Wrap(text, width, indent)) log.WriteLine(line);
        }
        string model = Path.Combine(folder, "tiny-random.gguf");
        string corpus = Path.Combine(folder, "corpus.jsonl");
        string ladm = Path.Combine(folder, "scores-ladm.jsonl");
        string prolong = Path.Combine(folder, "scores-prolong.jsonl");
        string selected = Path.Combine(folder, "selected.jsonl");

        var cfg = RandomModel.Shape("tiny", vocabSize: 600, contextLength: 8192);
        var weights = RandomModel.Create(cfg, seed: 7);
        var vocab = MakeModelCommand.Vocabulary(cfg);
        Models.Gguf.GgufModel.Save(model, weights, TensorType.F32, vocab, "longdep demo (random weights)");
        Say($"longdep demo: the main job end to end on a tiny random model, on the CPU, in {folder}", "  ");
        Say($"1. {Path.GetFileName(model)}: a random Llama model ({cfg.Layers} layers, {cfg.Dim} dims, {cfg.VocabSize} tokens)");

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
        Say($"2. {Path.GetFileName(corpus)}: {records + 2} records in two domains (one too short, one not JSON)");

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
            string score = method == ScoreMethod.Ladm ? "CDS (LADM)" : "LDS (ProLong)";
            Say($"3. {Path.GetFileName(output)}: {score} on {device}, {s.Seconds:F1} s, {s.TokensPerSecond:F0} tokens/s");
            Say($"   {s.Records} records: {s.Count(ScoreStatus.Ok)} ok, {s.Count(ScoreStatus.TooShort)} too_short, " +
                $"{s.Count(ScoreStatus.BadRecord)} bad_record, {s.Count(ScoreStatus.NumericError)} numeric_error");
        }

        var table = new Table().Border(TableBorder.Rounded).Title("[bold]scores (random weights: the numbers mean nothing)[/]");
        foreach (var c in new[] { "index", "id", "domain", "tokens", "CDS (LADM)", "LDS (ProLong)", "status" }) table.AddColumn(c);
        foreach (var (a, b) in ScoreReader.Read(ladm).Zip(ScoreReader.Read(prolong)))
            table.AddRow(a.Index.ToString(), Markup.Escape(a.Id ?? "-"), Markup.Escape(a.Domain ?? "-"), a.Tokens?.ToString() ?? "-",
                a.Score?.ToString("G5") ?? "-", b.Score?.ToString("G5") ?? "-",
                Markup.Escape(a.Status == b.Status ? a.Status.ToJsonName() : $"{a.Status.ToJsonName()} / {b.Status.ToJsonName()}"));
        console.Write(table);

        var items = ScoreReader.Read(ladm).Select(ScoredItem.From).ToList();
        var result = Selector.Select(items, SelectionOptions.TopPercent(50, perDomain: true));
        using (var stream = File.Create(selected))
            SelectionCopier.Copy(corpus, result.SelectedIndices, stream, items.Count);
        Say($"4. {Path.GetFileName(selected)}: the top 50% of each domain by CDS, {result.SelectedIndices.Length} records" +
            (result.SelectedIndices.Length == 0 ? "" : $" (indexes {string.Join(", ", result.SelectedIndices)})"));
        log.WriteLine();
        Say("The same with a real model (the README's first run), in that folder:", "");
        log.WriteLine("  ./longdep score --method ladm --model tinyllama-1.1b-chat-v1.0.Q8_0.gguf \\");
        log.WriteLine("      --input corpus.jsonl --output scores.jsonl");
        log.WriteLine("  ./longdep select --scores scores.jsonl --input corpus.jsonl --output selected.jsonl \\");
        log.WriteLine("      --top-percent 50 --per-domain");
        return (model, corpus, ladm, prolong, selected);
    }

    /// <summary>
    /// <paramref name="text"/> broken at spaces into lines of at most <paramref name="width"/> columns, the lines after
    /// the first indented by <paramref name="indent"/>; a word longer than a line (a long path) gets a line of its own.
    /// </summary>
    public static IEnumerable<string> Wrap(string text, int width, string indent)
    {
        var line = new StringBuilder();
        bool empty = true; // no word on this line yet
        foreach (string word in text.Split(' '))
        {
            if (!empty && line.Length + 1 + word.Length > width)
            {
                yield return line.ToString();
                line.Clear().Append(indent);
                empty = true;
            }
            if (!empty) line.Append(' ');
            line.Append(word);
            empty = false;
        }
        yield return line.ToString();
    }
}

[System.Text.Json.Serialization.JsonSerializable(typeof(Dictionary<string, object>))]
[System.Text.Json.Serialization.JsonSerializable(typeof(Dictionary<string, string>))]
internal sealed partial class DemoJson : System.Text.Json.Serialization.JsonSerializerContext;
