using System.CommandLine;
using System.Globalization;
using LongDep.Cli.Runtime;
using LongDep.Models;
using Spectre.Console;

namespace LongDep.Cli.Commands;

/// <summary><c>longdep inspect</c>: what a model file holds, without loading its weights.</summary>
public static class InspectCommand
{
    public static Command Create()
    {
        var path = new Argument<string>("path") { Description = "a GGUF file or a Hugging Face checkpoint folder" };
        var tensors = new Option<bool>("--tensors") { Description = "list every tensor with its type and shape" };
        var window = new Option<int>("--window") { Description = "T for the GPU memory estimate", DefaultValueFactory = _ => 32768 };
        var cmd = new Command("inspect", "Model architecture, tensors, tokenizer and a GPU memory estimate for one LADM pass.") { path, tensors, window };
        cmd.SetAction(r =>
        {
            var d = ModelLoader.Describe(r.GetValue(path)!);
            var c = d.Config;
            int t = r.GetValue(window);
            if (t < 1) throw new CliException("--window must be positive", ExitCodes.Usage);
            var table = new Table().Border(TableBorder.Rounded).Title($"[bold]{Markup.Escape(d.Name ?? Path.GetFileName(d.Path))}[/]");
            table.AddColumn("property");
            table.AddColumn("value");
            void Row(string k, string v) => table.AddRow(k, Markup.Escape(v));
            Row("file", d.Path);
            Row("format", d.Format == ModelFormat.Gguf ? "GGUF" : "Hugging Face (safetensors)");
            Row("architecture", c.Architecture);
            Row("layers", c.Layers.ToString(CultureInfo.InvariantCulture));
            Row("embedding dim", c.Dim.ToString(CultureInfo.InvariantCulture));
            Row("feed-forward dim", c.FfDim.ToString(CultureInfo.InvariantCulture));
            Row("heads / KV heads", $"{c.Heads} / {c.KvHeads} (head dim {c.HeadDim})");
            Row("vocabulary", c.VocabSize.ToString("N0", CultureInfo.InvariantCulture));
            Row("RoPE", $"{(c.Rope == RopeStyle.AdjacentPairs ? "adjacent pairs" : "halves")}, base {c.RopeTheta.ToString(CultureInfo.InvariantCulture)}");
            Row("context length", c.ContextLength.ToString("N0", CultureInfo.InvariantCulture));
            Row("RMSNorm eps", c.RmsEps.ToString(CultureInfo.InvariantCulture));
            Row("QKV bias / tied output", $"{(c.QkvBias ? "yes" : "no")} / {(c.TiedEmbedding ? "yes" : "no")}");
            Row("parameters", c.ParameterCount.ToString("N0", CultureInfo.InvariantCulture));
            var types = d.Tensors.GroupBy(x => x.TypeName).Select(g => $"{g.Key}×{g.Count()}");
            Row("tensors", $"{d.Tensors.Count} ({string.Join(", ", types)})");
            Row("weights at f16", Gib(MemoryEstimate.WeightBytesF16(c)));
            Row($"GPU memory, one LADM pass at T={t:N0}", $"{Gib(MemoryEstimate.LadmGpuBytes(c, t))} (weights f16 + activations, estimate)");
            Row("tokenizer", d.Tokenizer is { } tok ? $"{tok.Kind}, {tok.VocabSize:N0} tokens, BOS {tok.BosId?.ToString(CultureInfo.InvariantCulture) ?? "none"}, EOS {tok.EosId?.ToString(CultureInfo.InvariantCulture) ?? "none"}" : $"none ({d.TokenizerProblem})");
            AnsiConsole.Write(table);
            if (r.GetValue(tensors))
            {
                var list = new Table().Border(TableBorder.Simple);
                list.AddColumn("tensor");
                list.AddColumn("type");
                list.AddColumn("shape");
                foreach (var x in d.Tensors) list.AddRow(Markup.Escape(x.Name), Markup.Escape(x.TypeName), Markup.Escape($"[{string.Join(", ", x.Shape)}]"));
                AnsiConsole.Write(list);
            }
            return ExitCodes.Ok;
        });
        return cmd;
    }

    private static string Gib(long bytes) => $"{bytes / (double)(1L << 30):F2} GiB";
}
