using LongDep.Core.Corpus;
using LongDep.Core.Pipeline;
using LongDep.Core.Probes;
using LongDep.Core.Records;
using LongDep.Core.Scoring;
using LongDep.Models;
using LongDep.Models.Cpu;

namespace LongDep.Cli.Tests;

/// <summary>`longdep score` and `select` end to end on a GGUF model written by the test.</summary>
public class EndToEndTests
{
    [Test]
    public void MakeModelHfBinScoresExactlyAsTheSafetensorsFolder()
    {
        // The same shape and seed as pytorch_model.bin and as model.safetensors: every score must be identical.
        using var dir = new TempDir();
        string bin = dir.File("bin"), st = dir.File("st"), input = dir.File("ids.jsonl");
        foreach (var (folder, format) in new[] { (bin, "hf-bin"), (st, "hf") })
        {
            var (c, e) = CliHarness.Run("make-model", "--shape", "tiny", "--format", format, "--dtype", "f16", "-o", folder);
            Assert.That(c, Is.EqualTo(0), e);
        }
        Assert.That(File.Exists(Path.Combine(bin, "pytorch_model.bin")));
        Assert.That(Directory.GetFiles(bin, "*.safetensors"), Is.Empty);
        var rng = new Random(4);
        File.WriteAllLines(input, Enumerable.Range(0, 3).Select(k =>
            "{\"input_ids\": [" + string.Join(",", Enumerable.Range(0, 96 + 32 * k).Select(_ => rng.Next(512))) + "]}"));
        foreach (var folder in new[] { bin, st })
        {
            var (c, e) = CliHarness.Run("score", "--method", "prolong", "--model", folder, "--input", input, "--output", folder + ".jsonl",
                "--device", "cpu", "--chunk", "32", "--window", "256", "--pairs", "all");
            Assert.That(c, Is.EqualTo(0), e);
        }
        var a = ScoreReader.Read(bin + ".jsonl").ToList();
        var b = ScoreReader.Read(st + ".jsonl").ToList();
        Assert.That(a.Select(r => r.Status), Is.All.EqualTo(ScoreStatus.Ok));
        Assert.That(a.Select(r => r.Score), Is.EqualTo(b.Select(r => r.Score)));
        Assert.That(a.Select(r => r.Score).Distinct().Count(), Is.EqualTo(3), "three different records, three different scores");
    }

    [Test]
    public void ScoreLadmAndProLong_ThenSelect_OnAGgufModel()
    {
        using var dir = new TempDir();
        string model = dir.File("m.gguf"), corpus = dir.File("c.jsonl");
        var words = CliHarness.TinyModel(model);
        CliHarness.Corpus(corpus, words, records: 5, wordsPerDoc: 1000);
        string[] common = ["--model", model, "--input", corpus, "--device", "cpu", "--chunk", "16", "--window", "2048"];

        var (code, err) = CliHarness.Run(["score", "--method", "ladm", "--output", dir.File("ladm.jsonl"), .. common]);
        Assert.That(code, Is.EqualTo(0), err);
        (code, err) = CliHarness.Run(["score", "--method", "prolong", "--pairs", "40", "--output", dir.File("pl.jsonl"), .. common]);
        Assert.That(code, Is.EqualTo(0), err);

        var ladm = ScoreReader.Read(dir.File("ladm.jsonl")).ToList();
        var pl = ScoreReader.Read(dir.File("pl.jsonl")).ToList();
        Assert.That(ladm.Select(r => r.Status), Is.EqualTo(new[] { ScoreStatus.Ok, ScoreStatus.Ok, ScoreStatus.Ok, ScoreStatus.Ok, ScoreStatus.Ok, ScoreStatus.TooShort, ScoreStatus.BadRecord }));
        Assert.That(pl.Select(r => r.Status), Is.EqualTo(ladm.Select(r => r.Status)));

        // Independent of the pipeline: tokenize record 2 with the model's tokenizer, measure with the CPU probes,
        // apply the formulas; the CLI's numbers must be exactly these.
        var loaded = ModelLoader.Load(model);
        string text = System.Text.Json.JsonDocument.Parse(File.ReadLines(corpus).ElementAt(2)).RootElement.GetProperty("text").GetString()!;
        int[] tokens = loaded.Tokenizer!.Encode(text, addBos: false);
        var forward = new CpuForward(loaded.Weights, 0, CpuMath.Fast);
        int t = Math.Min(tokens.Length, 2048);
        var schedule = LadmSchedule.Create(t, 16, 4, 4);
        double cds = Ladm.Cds(new CpuLadmProbe(forward).Measure(tokens.AsSpan(0, t), schedule), LadmAblation.None).Cds;
        var plan = ProLongPlan.Create(tokens, 2048, 16, 40, 11, 2);
        double lds = ProLong.Lds(new CpuProLongProbe(forward).Measure(plan.Chunks, plan.Pairs), plan.ChunkCountN, 0.1).Lds;
        Assert.Multiple(() =>
        {
            Assert.That(ladm[2].Tokens, Is.EqualTo(tokens.Length));
            Assert.That(ladm[2].Score, Is.EqualTo(cds));
            Assert.That(ladm[2].Layers, Has.Length.EqualTo(2));
            Assert.That(pl[2].Score, Is.EqualTo(lds));
            Assert.That(pl[2].PairsUsed, Is.EqualTo(40));
            Assert.That(ladm[0].Domain, Is.EqualTo("A"));
            Assert.That(ladm[6].Error, Does.Contain("JSON object"));
        });

        // A rerun on a complete output writes nothing new and leaves it byte-identical.
        byte[] before = File.ReadAllBytes(dir.File("ladm.jsonl"));
        (code, err) = CliHarness.Run(["score", "--method", "ladm", "--output", dir.File("ladm.jsonl"), .. common]);
        Assert.That(code, Is.EqualTo(0), err);
        Assert.That(File.ReadAllBytes(dir.File("ladm.jsonl")), Is.EqualTo(before));

        // Select the top 2 by LADM: the chosen input lines, unchanged, in input order.
        (code, err) = CliHarness.Run("select", "--scores", dir.File("ladm.jsonl"), "--input", corpus, "--output", dir.File("sel.jsonl"), "--top-k", "2");
        Assert.That(code, Is.EqualTo(0), err);
        var best = ladm.Where(r => r.Status == ScoreStatus.Ok).OrderByDescending(r => r.Score).ThenBy(r => r.Index).Take(2).Select(r => (int)r.Index).Order();
        var lines = File.ReadAllLines(corpus);
        Assert.That(File.ReadAllLines(dir.File("sel.jsonl")), Is.EqualTo(best.Select(i => lines[i])));
    }

    [Test]
    public void Shards_MergeToTheWholeRun()
    {
        using var dir = new TempDir();
        string model = dir.File("m.gguf"), corpus = dir.File("c.jsonl");
        var words = CliHarness.TinyModel(model);
        CliHarness.Corpus(corpus, words, records: 5, wordsPerDoc: 300);
        string[] common = ["--method", "prolong", "--pairs", "10", "--model", model, "--input", corpus, "--device", "cpu", "--chunk", "16", "--window", "512"];
        Assert.That(CliHarness.Run(["score", "--output", dir.File("all.jsonl"), .. common]).Code, Is.EqualTo(0));
        for (int i = 0; i < 3; i++)
            Assert.That(CliHarness.Run(["score", "--shard", $"{i}/3", "--output", dir.File($"s{i}.jsonl"), .. common]).Code, Is.EqualTo(0));
        var (code, err) = CliHarness.Run("merge", "-o", dir.File("merged.jsonl"), dir.File("s2.jsonl"), dir.File("s0.jsonl"), dir.File("s1.jsonl"), "--expect", "7");
        Assert.That(code, Is.EqualTo(0), err);
        Assert.That(File.ReadAllBytes(dir.File("merged.jsonl")), Is.EqualTo(File.ReadAllBytes(dir.File("all.jsonl"))));

        // A missing shard is reported and fails the merge.
        (code, err) = CliHarness.Run("merge", "-o", dir.File("m2.jsonl"), dir.File("s0.jsonl"), dir.File("s1.jsonl"), "--expect", "7");
        Assert.That(code, Is.EqualTo(1));
        Assert.That(err, Does.Contain("missing"));
    }
}
