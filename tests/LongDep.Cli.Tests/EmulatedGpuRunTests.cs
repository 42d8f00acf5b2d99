using System.Text;
using System.Text.RegularExpressions;

namespace LongDep.Cli.Tests;

/// <summary>
/// `score` on GPUs, run as child processes on the emulated CUDA driver (build/native/emu-cuda: the kernels' source on
/// the CPU behind the real driver and cuBLAS interface): several GPUs, a GPU that fails mid-run, a GPU too small.
/// </summary>
[NonParallelizable]
public class EmulatedGpuRunTests
{
    private static string Driver() => Prerequisites.EmulatedGpu();

    /// <summary>The emulated GPUs, loading nvcc's fatbin when it is built and the emulator's own image otherwise.</summary>
    private static Dictionary<string, string?> Gpus(int count, string? fail = null, string? memory = null) => new()
    {
        ["CUDA_HOME"] = Driver(),
        ["CUDA_PATH"] = null,
        ["LONGDEP_KERNELS"] = Prerequisites.EmulatedGpuKernels(),
        ["LONGDEP_EMU_DEVICES"] = count.ToString(),
        ["LONGDEP_EMU_FAIL"] = fail,
        ["LONGDEP_EMU_MEMORY"] = memory,
    };

    /// <summary>Records of 150–400 input_ids (the tiny model's vocabulary).</summary>
    private static void Corpus(string path, int records)
    {
        var rng = new Random(5);
        var sb = new StringBuilder();
        for (int i = 0; i < records; i++)
            sb.Append($"{{\"id\":\"d{i}\",\"input_ids\":[{string.Join(',', Enumerable.Range(0, rng.Next(150, 400)).Select(_ => rng.Next(1, 250)))}]}}\n");
        File.WriteAllText(path, sb.ToString());
    }

    private static string[] ProLong(string model, string input, string output, string device) =>
        ["score", "--method", "prolong", "--pairs", "20", "--chunk", "16", "--window", "256", "--model", model, "--input", input,
         "--output", output, "--device", device, "--flush-every", "1"];

    [Test]
    public void AllGpus_ShareTheRecords_AndWriteExactlyWhatOneGpuWrites()
    {
        using var dir = new TempDir();
        string model = dir.File("m.gguf"), corpus = dir.File("c.jsonl");
        CliHarness.TinyModel(model);
        Corpus(corpus, 10);
        var (code, _, err) = CliHarness.RunChildWith(Gpus(2), ProLong(model, corpus, dir.File("one.jsonl"), "cuda:0"));
        Assert.That(code, Is.EqualTo(0), err);
        Assert.That(err, Does.Contain("scoring with prolong on cuda:0 (").And.Contain("emulated GPU"));
        (code, _, err) = CliHarness.RunChildWith(Gpus(2), [.. ProLong(model, corpus, dir.File("all.jsonl"), "cuda:all"), "--progress-interval", "1"]);
        Assert.That(code, Is.EqualTo(0), err);
        Assert.That(err, Does.Contain("scoring with prolong on cuda:0, cuda:1 ("));
        // stderr is not a terminal here: plain progress lines for batch logs.
        Assert.That(Regex.IsMatch(err, @"^\[\d\d:\d\d:\d\d\] \d+ records, \d+ tok/s, [\d.]+ rec/s \| ok \d+", RegexOptions.Multiline), err);
        string[] lines = File.ReadAllLines(dir.File("all.jsonl"));
        Assert.That(lines[0], Does.StartWith("{\"longdep\":\"scores\"").And.Contain("\"compute\":\"cuda f16 weights, tensor kernels\""));
        lines = lines[1..];
        Assert.That(lines, Has.Length.EqualTo(10));
        Assert.That(lines.Count(l => l.Contains("\"status\":\"ok\"")), Is.EqualTo(10));
        Assert.That(File.ReadAllBytes(dir.File("all.jsonl")), Is.EqualTo(File.ReadAllBytes(dir.File("one.jsonl"))));
    }

    [Test]
    public void AFailingGpu_IsNamed_WhatWasWrittenStays_AndTheRerunCompletesIt()
    {
        using var dir = new TempDir();
        string model = dir.File("m.gguf"), corpus = dir.File("c.jsonl"), output = dir.File("out.jsonl");
        CliHarness.TinyModel(model);
        Corpus(corpus, 10);
        var (code, _, err) = CliHarness.RunChildWith(Gpus(2), ProLong(model, corpus, dir.File("full.jsonl"), "cuda:all"));
        Assert.That(code, Is.EqualTo(0), err);
        string[] full = File.ReadAllLines(dir.File("full.jsonl"));

        // GPU 1's 20th kernel faults (a sticky CUDA_ERROR_LAUNCH_FAILED, as after an Xid): the run stops naming it.
        (code, _, err) = CliHarness.RunChildWith(Gpus(2, fail: "1:20"), ProLong(model, corpus, output, "cuda:all"));
        Assert.That(code, Is.EqualTo(1), err);
        Assert.That(err, Does.Contain("cuda:1 failed on record").And.Contain("CUDA_ERROR_LAUNCH_FAILED"));
        string[] partial = File.ReadAllLines(output);
        Assert.That(partial.Length, Is.LessThan(full.Length));
        Assert.That(partial, Is.EqualTo(full.Take(partial.Length)), "the records written before the failure are kept, in order");

        (code, _, err) = CliHarness.RunChildWith(Gpus(2), ProLong(model, corpus, output, "cuda:all"));
        Assert.That(code, Is.EqualTo(0), err);
        Assert.That(File.ReadAllBytes(output), Is.EqualTo(File.ReadAllBytes(dir.File("full.jsonl"))));
    }

    [Test]
    public void DeviceAuto_TakesTheGpuWhenTheDriverAndLibrariesAreThere()
    {
        using var dir = new TempDir();
        string model = dir.File("m.gguf"), corpus = dir.File("c.jsonl");
        CliHarness.TinyModel(model);
        Corpus(corpus, 1);
        var (code, stdout, err) = CliHarness.RunChildWith(Gpus(1), ProLong(model, corpus, dir.File("o.jsonl"), "auto"));
        Assert.That(code, Is.EqualTo(0), err);
        Assert.That(err, Does.Contain("scoring with prolong on cuda:0 (CUDA device 0: LongDep emulated GPU 0"));
        Assert.That(stdout, Does.Contain("cuda:0"), "the run summary names the device");
    }

    [TestCase("opt-tiny", "hf", "prolong")]     // post-norm LayerNorm blocks, learned positions, ReLU, projections
    [TestCase("tiny-gemma2", "gguf", "ladm")]   // sandwich norms, GeGLU, soft-caps, a sliding-window layer
    public void DeviceAuto_TakesTheGpu_ForEveryFamily_AndScoresAsTheCpu(string shape, string format, string method)
    {
        using var dir = new TempDir();
        string model = dir.File(format == "hf" ? "m" : "m.gguf"), corpus = dir.File("c.jsonl");
        var (code, _, err) = CliHarness.RunChild("make-model", "--shape", shape, "--format", format, "--output", model);
        Assert.That(code, Is.EqualTo(0), err);
        var (inspectCode, inspect, _) = CliHarness.RunChild("inspect", model, "--window", "512");
        Assert.That(inspectCode, Is.EqualTo(0));
        Assert.That(inspect, Does.Contain("device paths").And.Contain("CPU and GPU"));
        Corpus(corpus, 2);
        string[] Args(string output, string device) => method == "prolong"
            ? ProLong(model, corpus, output, device)
            : ["score", "--method", "ladm", "--chunk", "16", "--d-afs", "2", "--window", "256", "--model", model, "--input", corpus,
               "--output", output, "--device", device];
        (code, _, err) = CliHarness.RunChildWith(Gpus(1), Args(dir.File("gpu.jsonl"), "auto"));
        Assert.That(code, Is.EqualTo(0), err);
        Assert.That(err, Does.Contain($"scoring with {method} on cuda:0 ("));
        if (shape == "tiny-gemma2") Assert.That(err, Does.Contain("simple kernels (the model's soft-capped scores)"));
        (code, _, err) = CliHarness.RunChild(Args(dir.File("cpu.jsonl"), "cpu"));
        Assert.That(code, Is.EqualTo(0), err);
        double[] Scores(string file) => LongDep.Core.Corpus.ScoreReader.Read(file).Select(r => r.Score!.Value).ToArray();
        var gpu = Scores(dir.File("gpu.jsonl"));
        var cpu = Scores(dir.File("cpu.jsonl"));
        Assert.That(gpu, Has.Length.EqualTo(2));
        // f16 weights on the GPU against float32 on the CPU: the SPEC's tolerance
        for (int i = 0; i < 2; i++) Assert.That(gpu[i], Is.EqualTo(cpu[i]).Within(2e-3 * Math.Abs(cpu[i]) + 1e-4), $"record {i}");
    }

    [Test]
    public void AGpuTooSmallForTheWindow_IsOneLineNamingTheSetting()
    {
        using var dir = new TempDir();
        string model = dir.File("m.gguf"), corpus = dir.File("c.jsonl");
        CliHarness.TinyModel(model);
        Corpus(corpus, 2);
        var (code, _, err) = CliHarness.RunChildWith(Gpus(1, memory: "460K"),
            "score", "--method", "ladm", "--chunk", "16", "--d-afs", "2", "--window", "512", "--model", model, "--input", corpus,
            "--output", dir.File("o.jsonl"), "--device", "cuda");
        Assert.That(code, Is.EqualTo(1), err);
        string line = err.Split('\n').Single(l => l.StartsWith("longdep:"));
        Assert.That(line, Does.Contain("Out of GPU memory").And.Contain("LADM activations").And.Contain("Lower --window"));
    }

    [Test]
    public void NvtxRanges_NameEveryPhase_NestedAndBalancedPerThread_AsTheProfileTable()
    {
        string driver = Driver();
        Prerequisites.NvtxShim();
        using var dir = new TempDir();
        string model = dir.File("m.gguf"), corpus = dir.File("c.jsonl"), log = dir.File("nvtx.log");
        CliHarness.TinyModel(model);
        Corpus(corpus, 3);
        var env = Gpus(1);
        // The way Nsight Systems attaches to NVTX, with a recorder in its place.
        env["NVTX_INJECTION64_PATH"] = Path.Combine(driver, "lib64", "liblongdep_nvtx_recorder.so");
        env["LONGDEP_NVTX_LOG"] = log;
        var (code, stdout, err) = CliHarness.RunChildWith(env,
            "score", "--method", "ladm", "--chunk", "16", "--d-afs", "2", "--window", "512", "--model", model, "--input", corpus,
            "--output", dir.File("o.jsonl"), "--device", "cuda", "--profile");
        Assert.That(code, Is.EqualTo(0), err);
        Assert.That(err, Does.Contain("NVTX on"));

        var stacks = new Dictionary<string, Stack<string>>();
        var nestedIn = new Dictionary<string, HashSet<string>>(); // range -> ranges open around it on its thread
        foreach (string line in File.ReadAllLines(log))
        {
            string[] f = line.Split('\t');
            var stack = stacks.TryGetValue(f[0], out var s) ? s : stacks[f[0]] = new Stack<string>();
            if (f[1] == "push")
            {
                (nestedIn.TryGetValue(f[2], out var outer) ? outer : nestedIn[f[2]] = []).UnionWith(stack);
                stack.Push(f[2]);
            }
            else
            {
                Assert.That(stack, Is.Not.Empty, $"thread {f[0]} pops a range it never pushed");
                stack.Pop();
            }
        }
        Assert.That(stacks.Values.All(s => s.Count == 0), Is.True, "every range is closed by the end of the run");
        string[] phases = ["read", "tokenize", "measure ladm", "h2d", "forward layer 0", "forward layer 1", "pfs layer 0", "pfs layer 1", "d2h", "write"];
        Assert.That(nestedIn.Keys, Is.SupersetOf(phases));
        foreach (string inner in new[] { "h2d", "forward layer 0", "forward layer 1", "pfs layer 0", "pfs layer 1", "d2h" })
            Assert.That(nestedIn[inner], Does.Contain("measure ladm"), $"{inner} runs inside its record's measurement");
        Assert.That(stacks.Count, Is.GreaterThan(1), "reading, scoring and writing run on their own threads");
        // --profile prints the same names, with their times.
        Assert.That(stdout, Does.Contain("phases (--profile)"));
        foreach (string phase in phases) Assert.That(stdout, Does.Contain(phase));
    }
}
