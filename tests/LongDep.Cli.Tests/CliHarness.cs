using System.Diagnostics;
using System.Text;
using LongDep.Cli.Runtime;
using LongDep.Models;
using LongDep.Models.Gguf;
using LongDep.Models.Synthetic;

namespace LongDep.Cli.Tests;

/// <summary>Runs longdep in-process or as a child process, and makes tiny models and corpora.</summary>
internal static class CliHarness
{
    /// <summary>Runs the CLI in this process; returns the exit code and what went to the error writer.</summary>
    public static (int Code, string Err) Run(params string[] args)
    {
        var err = new StringWriter();
        var root = new System.CommandLine.RootCommand("test");
        foreach (var c in Program.Commands()) root.Add(c);
        TextWriter saved = Console.Error;
        Console.SetError(err);
        try
        {
            int code = CliApp.Invoke(root, args, new StringWriter(), err);
            return (code, err.ToString());
        }
        finally
        {
            Console.SetError(saved);
        }
    }

    public static string LongdepDll => Path.Combine(AppContext.BaseDirectory, "longdep.dll");

    /// <summary>Starts longdep as a child process (dotnet longdep.dll ...).</summary>
    public static Process Start(params string[] args) => StartWith(null, args);

    /// <summary>Starts longdep as a child process with extra environment variables (a null value removes one).</summary>
    public static Process StartWith(IReadOnlyDictionary<string, string?>? environment, params string[] args)
    {
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardError = true, RedirectStandardOutput = true, UseShellExecute = false };
        psi.ArgumentList.Add(LongdepDll);
        foreach (var a in args) psi.ArgumentList.Add(a);
        psi.Environment["DOTNET_TieredPGO"] = "0";
        foreach (var (name, value) in environment ?? new Dictionary<string, string?>())
        {
            if (value is null) psi.Environment.Remove(name);
            else psi.Environment[name] = value;
        }
        return Process.Start(psi) ?? throw new InvalidOperationException("could not start dotnet");
    }

    public static (int Code, string Out, string Err) RunChild(params string[] args) => RunChildWith(null, args);

    public static (int Code, string Out, string Err) RunChildWith(IReadOnlyDictionary<string, string?>? environment, params string[] args)
    {
        using var p = StartWith(environment, args);
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        // A guard against a hang, not a speed check: generous enough for a 2-core machine under load.
        if (!p.WaitForExit(600_000)) { p.Kill(true); throw new TimeoutException("longdep did not finish in 600 s"); }
        return (p.ExitCode, stdout.Result, stderr.Result);
    }

    /// <summary>A tiny random llama GGUF (2 layers, 64 dims) with a synthetic tokenizer; returns the words it spells.</summary>
    public static string[] TinyModel(string path, long seed = 3)
    {
        var cfg = RandomModel.Shape("tiny", vocabSize: 400, contextLength: 4096);
        var w = RandomModel.Create(cfg, seed);
        var vocab = SyntheticText.Vocabulary(cfg.VocabSize, SyntheticText.Words(60));
        GgufModel.Save(path, w, TensorType.F32, vocab);
        return vocab.Tokens.Where(t => t.StartsWith('▁') && t.Length > 3).Select(t => t[1..]).Distinct().ToArray();
    }

    /// <summary>A corpus with ok records of about <paramref name="words"/> words, a too-short one and a bad line.</summary>
    public static void Corpus(string path, string[] words, int records, int wordsPerDoc)
    {
        var sb = new StringBuilder();
        for (int i = 0; i < records; i++)
        {
            string text = SyntheticText.Document(words, wordsPerDoc + 13 * i, i % 2 == 0, i + 1);
            sb.Append($"{{\"id\":\"d{i}\",\"text\":\"{text}\",\"meta\":{{\"pile_set_name\":\"{(i % 2 == 0 ? "A" : "B")}\"}}}}\n");
        }
        sb.Append("{\"id\":\"tiny\",\"text\":\"short\"}\n");
        sb.Append("[1,2,3]\n");
        File.WriteAllText(path, sb.ToString());
    }
}

/// <summary>A scratch folder removed at dispose.</summary>
internal sealed class TempDir : IDisposable
{
    public string Path { get; } = Directory.CreateTempSubdirectory("longdep-cli-tests-").FullName;
    public string File(string name) => System.IO.Path.Combine(Path, name);
    public void Dispose()
    {
        try { Directory.Delete(Path, recursive: true); } catch (IOException) { }
    }
}
