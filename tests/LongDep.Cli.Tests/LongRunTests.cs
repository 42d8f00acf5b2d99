using System.Diagnostics;
using System.Text;
using System.Text.RegularExpressions;

namespace LongDep.Cli.Tests;

/// <summary>
/// What a long run promises (README "Long runs"), tried as a user would: aliased paths, two writers, streams, signals,
/// a full disk, settings that differ, Slurm's array variables, model files that disagree with themselves.
/// </summary>
public class LongRunTests
{
    private static string[] Score(string model, string input, string output, params string[] extra) =>
        ["score", "--method", "prolong", "--pairs", "all", "--model", model, "--input", input, "--output", output, "--device", "cpu",
         "--chunk", "16", "--threads", "1", "--flush-every", "1", .. extra, .. extra.Contains("--window") ? Array.Empty<string>() : ["--window", "256"]];

    /// <summary>The file's text, read by another program (this process's own readers would take a shared lock, which a running writer refuses).</summary>
    private static string Peek(string path)
    {
        if (!File.Exists(path)) return "";
        using var p = Process.Start(new ProcessStartInfo("cat", [path]) { RedirectStandardOutput = true })!;
        string text = p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        return text;
    }

    private sealed class Setup : IDisposable
    {
        public readonly TempDir Dir = new();
        public string Model => Dir.File("m.gguf");
        public string Corpus => Dir.File("c.jsonl");
        public string Clean => Dir.File("clean.jsonl");

        public Setup(int records = 10, int words = 200, bool clean = true)
        {
            var w = CliHarness.TinyModel(Model);
            CliHarness.Corpus(Corpus, w, records, words);
            if (clean)
            {
                var (code, err) = CliHarness.Run(Score(Model, Corpus, Clean));
                Assert.That(code, Is.EqualTo(0), err);
            }
        }

        public void Dispose() => Dir.Dispose();
    }

    private static void OneLine(string err, string what)
    {
        string[] lines = err.TrimEnd().Split('\n').Where(l => l.StartsWith("longdep: ", StringComparison.Ordinal)).ToArray();
        Assert.That(lines, Has.Length.EqualTo(1), $"{what}: {err}");
    }

    [Test]
    public void OutputsNamingAnInput_AreRefusedBeforeAnythingIsWritten_SymlinksHardLinksAndDotPaths()
    {
        using var s = new Setup();
        byte[] corpus = File.ReadAllBytes(s.Corpus), scores = File.ReadAllBytes(s.Clean);
        string link = s.Dir.File("link.jsonl"), hard = s.Dir.File("hard.jsonl");
        File.CreateSymbolicLink(link, s.Corpus);
        Assert.That(Process.Start("ln", [s.Corpus, hard])!.WaitForExit(10_000));
        string dotted = Path.Combine(s.Dir.Path, ".", "c.jsonl");
        string png = s.Dir.File("scores-link.png");
        File.CreateSymbolicLink(png, s.Clean);
        var cases = new (string[] Args, string A, string B)[]
        {
            (Score(s.Model, s.Corpus, link), "--output", "--input"),
            (Score(s.Model, s.Corpus, hard, "--overwrite"), "--output", "--input"),
            (Score(s.Model, s.Corpus, dotted), "--output", "--input"),
            (Score(s.Model, s.Corpus, s.Dir.File("o.jsonl"), "--detail", hard), "--detail", "--input"),
            (Score(s.Model, s.Corpus, s.Dir.File("o.jsonl"), "--detail", s.Dir.File("o.jsonl")), "--detail", "--output"),
            (Score(s.Model, s.Corpus, s.Model), "--output", "--model"),
            (["select", "--scores", s.Clean, "--input", s.Corpus, "--output", hard, "--top-k", "2"], "--output", "--input"),
            (["select", "--scores", s.Clean, "--input", s.Corpus, "--output", s.Clean, "--top-k", "2"], "--output", "--scores"),
            (["merge", "-o", s.Clean, s.Clean], "--output", "a merged file"),
            (["report", "--scores", s.Clean, "-o", s.Clean], "--output", "--scores"),
            (["plot", "domains", "--scores", s.Clean, "-o", png], "--output", "--scores"),
        };
        foreach (var (args, a, b) in cases)
        {
            var (code, err) = CliHarness.Run(args);
            string what = string.Join(' ', args);
            Assert.That(code, Is.EqualTo(2), $"{what}: {err}");
            OneLine(err, what);
            Assert.That(err, Does.Contain(a).And.Contain(b).And.Contain("same file"), what);
            Assert.That(File.ReadAllBytes(s.Corpus), Is.EqualTo(corpus), $"{what}: the input is untouched");
            Assert.That(File.ReadAllBytes(s.Clean), Is.EqualTo(scores), $"{what}: the scores are untouched");
        }
    }

    [Test]
    public void TwoWriters_TheSecondStopsAtOnceNamingTheFirst_AndAKilledHolderDoesNotBlockTheRerun()
    {
        using var s = new Setup(records: 400, words: 400); // long enough that the first run is still writing after both checks
        string output = s.Dir.File("o.jsonl");
        using var first = CliHarness.Start(Score(s.Model, s.Corpus, output));
        _ = first.StandardOutput.ReadToEndAsync();
        _ = first.StandardError.ReadToEndAsync();
        var clock = Stopwatch.StartNew();
        while (!Peek(output).Contains("\"index\":0,") && clock.Elapsed < TimeSpan.FromSeconds(60)) Thread.Sleep(50);
        Assume.That(first.HasExited, Is.False, "the first run ended before the second could start");

        var timer = Stopwatch.StartNew();
        var (code, _, err) = CliHarness.RunChild(Score(s.Model, s.Corpus, output));
        Assert.That(code, Is.EqualTo(1), err);
        OneLine(err, "second writer");
        Assert.That(err, Does.Contain("is being written by process " + first.Id).And.Contain("longdep.dll score"));
        Assert.That(timer.Elapsed, Is.LessThan(TimeSpan.FromSeconds(20)), "refused before the model is loaded");

        // A reader of the file while it is being written is told who writes it, in one line.
        Assume.That(first.HasExited, Is.False, "the first run ended before the reader could start");
        var (rc, _, rerr) = CliHarness.RunChild("plot", "domains", "--scores", output, "-o", s.Dir.File("d.png"));
        Assert.That(rc, Is.EqualTo(1), rerr);
        OneLine(rerr, "reader");
        Assert.That(rerr, Does.Contain("is being written by process " + first.Id));

        first.Kill(entireProcessTree: true); // SIGKILL: the kernel drops its lock
        first.WaitForExit();
        (code, _, err) = CliHarness.RunChild(Score(s.Model, s.Corpus, output));
        Assert.That(code, Is.EqualTo(0), err);
        Assert.That(File.ReadAllBytes(output), Is.EqualTo(File.ReadAllBytes(s.Clean)));
    }

    [TestCase("TERM", 143)]
    [TestCase("HUP", 129)]
    [TestCase("INT", 130)]
    public void Signals_StopLikeCtrlC_WithTheirExitCode_AndTheRerunIsByteIdentical(string signal, int exitCode)
    {
        using var s = new Setup(records: 400, words: 400); // long enough that the first run is still writing after both checks
        string output = s.Dir.File("o.jsonl");
        using var p = CliHarness.Start(Score(s.Model, s.Corpus, output));
        var stderr = p.StandardError.ReadToEndAsync();
        _ = p.StandardOutput.ReadToEndAsync();
        var clock = Stopwatch.StartNew();
        while (!Peek(output).Contains("\"index\":1,") && clock.Elapsed < TimeSpan.FromSeconds(60)) Thread.Sleep(50);
        Assume.That(p.HasExited, Is.False, "the run ended before the signal");
        Process.Start("kill", [$"-{signal}", p.Id.ToString()])!.WaitForExit();
        Assert.That(p.WaitForExit(60_000), "the run stops after the record in flight");
        string err = stderr.Result;
        Assert.That(p.ExitCode, Is.EqualTo(exitCode), err);
        Assert.That(err, Does.Contain($"stopped by SIG{signal}").And.Contain("rerun the same command to resume"));
        int kept = File.ReadAllLines(output).Length - 1;
        Assert.That(kept, Is.GreaterThanOrEqualTo(2).And.LessThan(33));

        var (code, _, err2) = CliHarness.RunChild(Score(s.Model, s.Corpus, output));
        Assert.That(code, Is.EqualTo(0), err2);
        Assert.That(File.ReadAllBytes(output), Is.EqualTo(File.ReadAllBytes(s.Clean)));
    }

    [Test]
    public void StandardOutput_AndAFifo_CarryExactlyTheRecords_MessagesGoToStderr()
    {
        using var s = new Setup();
        byte[] expected = File.ReadAllBytes(s.Clean);
        var (code, stdout, err) = CliHarness.RunChild(Score(s.Model, s.Corpus, "-"));
        Assert.That(code, Is.EqualTo(0), err);
        Assert.That(Encoding.UTF8.GetBytes(stdout), Is.EqualTo(expected), "stdout holds the settings line and every record, nothing else");
        Assert.That(err, Does.Contain("records written"), "the summary table goes to stderr");

        (code, _, err) = CliHarness.RunChild(Score(s.Model, s.Corpus, "-", "--detail", s.Dir.File("d.lddt")));
        Assert.That(code, Is.EqualTo(2), err);
        OneLine(err, "--detail with a stream");

        string fifo = s.Dir.File("fifo");
        Assert.That(Process.Start("mkfifo", [fifo])!.WaitForExit(10_000));
        var reader = Task.Run(() => File.ReadAllBytes(fifo));
        (code, stdout, err) = CliHarness.RunChild(Score(s.Model, s.Corpus, fifo));
        Assert.That(code, Is.EqualTo(0), err);
        Assert.That(reader.Wait(30_000));
        Assert.That(reader.Result, Is.EqualTo(expected));
        Assert.That(stdout, Does.Contain("records written"));
    }

    [Test]
    public void FullDisk_IsOneLineAndExit1_Quickly()
    {
        using var s = new Setup(clean: false);
        var clock = Stopwatch.StartNew();
        var (code, stdout, err) = CliHarness.RunChild(Score(s.Model, s.Corpus, "/dev/full"));
        Assert.That(code, Is.EqualTo(1), err);
        OneLine(err, "/dev/full");
        Assert.That(err, Does.Contain("No space left on device"));
        Assert.That(clock.Elapsed, Is.LessThan(TimeSpan.FromSeconds(30)));
        Assert.That(err, Does.Not.Contain("internal error"));
    }

    [Test]
    public void OtherSettings_AreRefusedOnResume_InMerge_AndInSelect_NamingWhatDiffers()
    {
        using var s = new Setup();
        string output = s.Dir.File("o.jsonl");
        File.Copy(s.Clean, output);
        byte[] before = File.ReadAllBytes(output);

        var (code, err) = CliHarness.Run(Score(s.Model, s.Corpus, output, "--window", "512"));
        Assert.That(code, Is.EqualTo(1), err);
        OneLine(err, "window");
        Assert.That(err, Does.Contain("window: 256 in the file, 512 now").And.Contain("--overwrite"));

        string other = s.Dir.File("other.gguf");
        CliHarness.TinyModel(other, seed: 4);
        (code, err) = CliHarness.Run(Score(other, s.Corpus, output));
        Assert.That(code, Is.EqualTo(1), err);
        Assert.That(err, Does.Contain("model: "));
        Assert.That(File.ReadAllBytes(output), Is.EqualTo(before));

        // Shards of two settings do not merge.
        string a = s.Dir.File("a.jsonl"), b = s.Dir.File("b.jsonl");
        Assert.That(CliHarness.Run(Score(s.Model, s.Corpus, a, "--shard", "0/2")).Code, Is.EqualTo(0));
        Assert.That(CliHarness.Run(Score(s.Model, s.Corpus, b, "--shard", "1/2", "--seed", "12")).Code, Is.EqualTo(0));
        (code, err) = CliHarness.Run("merge", "-o", s.Dir.File("m.jsonl"), a, b);
        Assert.That(code, Is.EqualTo(1), err);
        Assert.That(err, Does.Contain("seed: 11 in a.jsonl, 12 in b.jsonl"));

        // A report never draws the detail of another run.
        string detail = s.Dir.File("d.lddt");
        Assert.That(CliHarness.Run(Score(s.Model, s.Corpus, s.Dir.File("w512.jsonl"), "--window", "512", "--detail", detail)).Code, Is.EqualTo(0));
        (code, err) = CliHarness.Run("report", "--scores", s.Clean, "--detail", detail, "-o", s.Dir.File("r.html"));
        Assert.That(code, Is.EqualTo(1), err);
        Assert.That(err, Does.Contain("window: 256 in --scores, 512 in --detail"));

        // Scores of another input are refused instead of selecting other records.
        string changed = s.Dir.File("changed.jsonl");
        var lines = File.ReadAllLines(s.Corpus);
        lines[3] = lines[3].Replace("\"id\":\"d3\"", "\"id\":\"d3x\"");
        File.WriteAllLines(changed, lines);
        (code, err) = CliHarness.Run("select", "--scores", s.Clean, "--input", changed, "--output", s.Dir.File("sel.jsonl"), "--top-k", "3");
        Assert.That(code, Is.EqualTo(1), err);
        Assert.That(err, Does.Contain("record 3 of changed.jsonl is not the record that was scored"));
        Assert.That(File.Exists(s.Dir.File("sel.jsonl")), Is.False);
    }

    [Test]
    public void Slurm_TheReadmeScripts_SurviveOneAndZeroBasedArraysAndSingleReruns_AndMergeNamesMissingShards()
    {
        using var s = new Setup(records: 9);
        string readme = File.ReadAllText(FindReadme());
        string Block(string marker)
        {
            var m = Regex.Match(readme, $"<!-- {marker} -->\\s*```bash\\n(.*?)```", RegexOptions.Singleline);
            Assert.That(m.Success, $"README block {marker}");
            return m.Groups[1].Value;
        }
        // The documented scripts, with this test's model and corpus and CPU settings.
        string score = Block("slurm-score").Replace("--method ladm --model model.gguf --input pile.jsonl.zst",
            "--method prolong --pairs all --model m.gguf --input c.jsonl --device cpu --chunk 16 --window 256 --threads 1");
        Assert.That(score, Does.Contain("--shards 8").And.Contain("--device cpu"));
        string merge = Block("slurm-merge");
        File.WriteAllText(s.Dir.File("score.sbatch"), score);
        File.WriteAllText(s.Dir.File("merge.sbatch"), merge);
        File.WriteAllText(s.Dir.File("longdep"), $"#!/bin/bash\nexec dotnet '{CliHarness.LongdepDll}' \"$@\"\n");
        if (!OperatingSystem.IsWindows()) File.SetUnixFileMode(s.Dir.File("longdep"), UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);

        (int Code, string Err) RunScript(string script, Dictionary<string, string> env)
        {
            var psi = new ProcessStartInfo("bash", [script]) { WorkingDirectory = s.Dir.Path, RedirectStandardError = true, RedirectStandardOutput = true };
            foreach (var (k, v) in env) psi.Environment[k] = v;
            using var p = Process.Start(psi)!;
            _ = p.StandardOutput.ReadToEndAsync();
            string err = p.StandardError.ReadToEnd();
            p.WaitForExit();
            return (p.ExitCode, err);
        }
        Dictionary<string, string> Array(int id, int count, int min) => new()
        {
            ["SLURM_ARRAY_TASK_ID"] = id.ToString(), ["SLURM_ARRAY_TASK_COUNT"] = count.ToString(),
            ["SLURM_ARRAY_TASK_MIN"] = min.ToString(), ["SLURM_ARRAY_TASK_MAX"] = (min + count - 1).ToString(),
        };

        // A 1-based array (--array=1-8) whose tasks 3 and 5 did not run: merge names those shards.
        foreach (int id in new[] { 1, 2, 4, 6, 7, 8 })
            Assert.That(RunScript("score.sbatch", Array(id, 8, 1)).Code, Is.EqualTo(0), $"task {id}");
        var (code, err) = RunScript("merge.sbatch", new() { ["RECORDS"] = "11" });
        Assert.That(code, Is.EqualTo(1), err);
        Assert.That(err, Does.Contain("no file holds shard(s) 3, 5 of 8").And.Contain("--array=3,5"));

        // The usual reruns: one task at a time (Slurm then says the array has 1 task), and task 8 again.
        Assert.That(RunScript("score.sbatch", Array(3, 1, 3)).Code, Is.EqualTo(0));
        Assert.That(RunScript("score.sbatch", Array(5, 1, 5)).Code, Is.EqualTo(0));
        Assert.That(RunScript("score.sbatch", Array(8, 1, 8)).Code, Is.EqualTo(0));
        (code, err) = RunScript("merge.sbatch", new() { ["RECORDS"] = "11" });
        Assert.That(code, Is.EqualTo(0), err);
        Assert.That(File.ReadAllBytes(s.Dir.File("scores.jsonl")), Is.EqualTo(File.ReadAllBytes(s.Clean)), "merged shards = one unsharded run");

        // A 0-based task 0 writes the same shard as 1-based task 8; merge takes the two identical copies as one.
        Assert.That(RunScript("score.sbatch", Array(0, 8, 0)).Code, Is.EqualTo(0));
        Assert.That(File.ReadAllBytes(s.Dir.File("scores/shard-0.jsonl")), Is.EqualTo(File.ReadAllBytes(s.Dir.File("scores/shard-8.jsonl"))));
        (code, err) = RunScript("merge.sbatch", new() { ["RECORDS"] = "11" });
        Assert.That(code, Is.EqualTo(0), err);
        Assert.That(File.ReadAllBytes(s.Dir.File("scores.jsonl")), Is.EqualTo(File.ReadAllBytes(s.Clean)));

        // Outside an array, or an id past the count: one clear line, exit 2.
        (code, err) = RunScript("score.sbatch", new() { ["SLURM_ARRAY_TASK_ID"] = "9" });
        Assert.That(code, Is.EqualTo(2), err);
        Assert.That(err, Does.Contain("SLURM_ARRAY_TASK_ID '9'"));
        var run = CliHarness.Run(Score(s.Model, s.Corpus, s.Dir.File("x.jsonl"), "--shards", "8"));
        if (Environment.GetEnvironmentVariable("SLURM_ARRAY_TASK_ID") is null)
        {
            Assert.That(run.Code, Is.EqualTo(2), run.Err);
            Assert.That(run.Err, Does.Contain("SLURM_ARRAY_TASK_ID, which is not set"));
        }
    }

    [Test]
    public void AModelWhoseTokenizerOutgrowsItsEmbedding_IsRefusedAtLoad_NamingBothSizes()
    {
        using var dir = new TempDir();
        var cfg = Models.Synthetic.RandomModel.Shape("tiny", vocabSize: 300, contextLength: 512);
        var weights = Models.Synthetic.RandomModel.Create(cfg, 1);
        var vocab = Models.Synthetic.SyntheticText.Vocabulary(400, Models.Synthetic.SyntheticText.Words(60));
        string model = dir.File("bad.gguf"), corpus = dir.File("c.jsonl");
        Models.Gguf.GgufModel.Save(model, weights, Models.TensorType.F32, vocab);
        File.WriteAllText(corpus, "{\"text\":\"hello\"}\n");
        var (code, err) = CliHarness.Run(Score(model, corpus, dir.File("o.jsonl")));
        Assert.That(code, Is.EqualTo(1), err);
        OneLine(err, "tokenizer");
        Assert.That(err, Does.Contain("400 token ids").And.Contain("300 rows"));
        Assert.That(File.Exists(dir.File("o.jsonl")) ? File.ReadAllText(dir.File("o.jsonl")) : "", Is.Empty, "no record was scored");
    }

    private static string FindReadme()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "LongDepEngine.sln"))) return Path.Combine(dir.FullName, "README.md");
        throw new FileNotFoundException("README.md");
    }
}
