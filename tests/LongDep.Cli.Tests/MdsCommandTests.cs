using System.Diagnostics;
using System.Text;
using System.Text.Json;
using LongDep.Core.Corpus;
using LongDep.Core.Corpus.Mds;
using LongDep.Core.Records;
using LongDep.Models;

namespace LongDep.Cli.Tests;

/// <summary>MDS in and out of <c>score</c> and <c>select</c>, and <c>longdep pack</c>, end to end.</summary>
public class MdsCommandTests
{
    private static readonly MdsColumn[] RawColumns =
        [new("domain", MdsEncoding.Str), new("input_ids", MdsEncoding.NdArrayUInt32), new("length", MdsEncoding.Int32)];

    /// <summary>A raw-data MDS dataset (ProLong's layout) of random ids below <paramref name="vocab"/>; returns the documents.</summary>
    private static int[][] RawDataset(string dir, int count, int minLen, int maxLen, int vocab, int seed, long shardSize = 1 << 20)
    {
        var rng = new Random(seed);
        var docs = new int[count][];
        using var w = new MdsWriter(dir, RawColumns, new MdsWriterOptions { SizeLimit = shardSize });
        for (int i = 0; i < count; i++)
        {
            docs[i] = Enumerable.Range(0, rng.Next(minLen, maxLen)).Select(_ => rng.Next(3, vocab)).ToArray();
            w.BeginSample();
            w.WriteString(i % 3 == 0 ? "books" : "code");
            w.WriteIntArray(docs[i]);
            w.WriteInteger(docs[i].Length);
            w.EndSample();
        }
        w.Finish();
        return docs;
    }

    [Test]
    public void Recipe_ScoreAnMdsSource_SelectToMds_PackWithAShortMix()
    {
        using var dir = new TempDir();
        string model = dir.File("m.gguf");
        var words = CliHarness.TinyModel(model);
        int[][] docs = RawDataset(dir.File("long"), 6, 700, 1200, 400, 1);

        // 1. Score the MDS source: input_ids need no tokenizer, the domain column is the domain.
        string[] common = ["--method", "ladm", "--model", model, "--device", "cpu", "--chunk", "16", "--window", "2048"];
        var (code, err) = CliHarness.Run(["score", "--input", dir.File("long"), "--output", dir.File("s.jsonl"), .. common]);
        Assert.That(code, Is.EqualTo(0), err);
        var scores = ScoreReader.Read(dir.File("s.jsonl")).ToList();
        Assert.That(scores.Select(s => s.Status), Is.All.EqualTo(ScoreStatus.Ok));
        Assert.That(scores.Select(s => s.Domain), Is.EqualTo(Enumerable.Range(0, 6).Select(i => i % 3 == 0 ? "books" : "code")));
        Assert.That(scores.Select(s => s.Tokens), Is.EqualTo(docs.Select(d => (long)d.Length)));
        // The same ids as JSON lines score the same.
        File.WriteAllLines(dir.File("same.jsonl"), docs.Select(d => $"{{\"input_ids\": [{string.Join(",", d)}]}}"));
        (code, err) = CliHarness.Run(["score", "--input", dir.File("same.jsonl"), "--output", dir.File("same-s.jsonl"), .. common]);
        Assert.That(code, Is.EqualTo(0), err);
        Assert.That(ScoreReader.Read(dir.File("same-s.jsonl")).Select(s => s.Score), Is.EqualTo(scores.Select(s => s.Score)));

        // 2. Select half per domain: an MDS input gives an MDS output holding the chosen samples byte for byte.
        (code, err) = CliHarness.Run("select", "--scores", dir.File("s.jsonl"), "--input", dir.File("long"), "--output", dir.File("sel"),
            "--top-percent", "50", "--per-domain");
        Assert.That(code, Is.EqualTo(0), err);
        var chosen = scores.GroupBy(s => s.Domain)
            .SelectMany(g => g.OrderByDescending(s => s.Score).ThenBy(s => s.Index).Take(g.Count() / 2)).Select(s => (int)s.Index).Order().ToArray();
        MdsDataset input = MdsDataset.Open(dir.File("long")), selected = MdsDataset.Open(dir.File("sel"));
        Assert.That(selected.SampleCount, Is.EqualTo(chosen.Length));
        MdsShard inShard = input.LoadShard(0), outShard = selected.LoadShard(0);
        for (int k = 0; k < chosen.Length; k++)
            Assert.That(outShard.SampleBytes(k).ToArray(), Is.EqualTo(inShard.SampleBytes(chosen[k]).ToArray()));
        (code, err) = CliHarness.Run("select", "--scores", dir.File("s.jsonl"), "--input", dir.File("long"), "--output", dir.File("sel.jsonl"),
            "--top-percent", "50", "--per-domain", "--format", "jsonl");
        Assert.That(code, Is.EqualTo(0), err);
        Assert.That(File.ReadAllLines(dir.File("sel.jsonl")).Select(l => JsonDocument.Parse(l).RootElement.GetProperty("input_ids").GetArrayLength()),
            Is.EqualTo(chosen.Select(i => docs[i].Length)));

        // 3. Pack the selection with a short text mix; BOS/EOS from the model's tokenizer.
        var sb = new StringBuilder();
        for (int i = 0; i < 40; i++) sb.Append($"{{\"text\": \"{Models.Synthetic.SyntheticText.Document(words, 20 + i, i % 2 == 0, i)}\"}}\n");
        File.WriteAllText(dir.File("short.jsonl"), sb.ToString());
        (code, err) = CliHarness.Run("pack", "--source", $"long={dir.File("sel")}:0.6", "--source", $"{dir.File("short.jsonl")}:0.4",
            "--seq-len", "256", "--model", model, "--output", dir.File("packed"), "--summary", dir.File("pack.json"));
        Assert.That(code, Is.EqualTo(0), err);
        var tok = ModelLoader.Describe(model).Tokenizer!;
        using JsonDocument summary = JsonDocument.Parse(File.ReadAllText(dir.File("pack.json")));
        JsonElement root = summary.RootElement;
        Assert.That(root.GetProperty("bos").GetInt32(), Is.EqualTo(tok.BosId));
        Assert.That(root.GetProperty("eos").GetInt32(), Is.EqualTo(tok.EosId));
        Assert.That(root.GetProperty("sources")[1].GetProperty("name").GetString(), Is.EqualTo("short"));
        Assert.That(File.ReadAllText(Path.Combine(dir.File("packed"), "pack-summary.json")), Is.EqualTo(File.ReadAllText(dir.File("pack.json"))));
        var packed = CorpusReader.OpenParsed(dir.File("packed"), RecordFieldOptions.Default with { DomainField = "domain" }).ToList();
        Assert.That(packed, Has.Count.EqualTo(root.GetProperty("sequences").GetInt32()).And.Count.GreaterThan(4));
        Assert.That(packed.All(r => r.InputIds!.Length == 256));
        // The short mix's text is tokenized by the model's tokenizer: its first sequence starts with BOS + the first text's ids.
        int[] firstShort = packed.First(r => r.Domain == "short").InputIds!;
        string firstText = JsonDocument.Parse(File.ReadLines(dir.File("short.jsonl")).First()).RootElement.GetProperty("text").GetString()!;
        int[] expected = [tok.BosId!.Value, .. tok.Encode(firstText, addBos: false), tok.EosId!.Value];
        Assert.That(firstShort.Take(expected.Length), Is.EqualTo(expected));
        // The long source's sequences are its chosen documents, each wrapped in BOS/EOS, in order.
        int[] longStream = chosen.SelectMany(i => new[] { tok.BosId!.Value }.Concat(docs[i]).Append(tok.EosId!.Value)).ToArray();
        int[] longPacked = packed.Where(r => r.Domain == "long").SelectMany(r => r.InputIds!).ToArray();
        Assert.That(longPacked, Is.EqualTo(longStream.Take(longPacked.Length)));

        // 4. The output is not replaced without --overwrite; with it, the same bytes again.
        string[] again = ["pack", "--source", $"long={dir.File("sel")}:0.6", "--source", $"{dir.File("short.jsonl")}:0.4", "--seq-len", "256", "--model", model,
            "--output", dir.File("packed")];
        byte[] index = File.ReadAllBytes(Path.Combine(dir.File("packed"), "index.json"));
        (code, err) = CliHarness.Run(again);
        Assert.That(code, Is.EqualTo(1));
        Assert.That(err, Does.Contain("--overwrite"));
        (code, err) = CliHarness.Run([.. again, "--overwrite"]);
        Assert.That(code, Is.EqualTo(0), err);
        Assert.That(File.ReadAllBytes(Path.Combine(dir.File("packed"), "index.json")), Is.EqualTo(index));
    }

    [Test]
    public void BadCommandLines_AndDamagedSources_AreOneLine()
    {
        using var dir = new TempDir();
        RawDataset(dir.File("a"), 20, 50, 200, 1000, 2);
        string a = dir.File("a");

        var (code, err) = CliHarness.Run("pack", "--source", $"x={a}:0.5", "--source", $"y={a}:0.3", "--seq-len", "64", "--bos", "1", "--eos", "2", "--output", dir.File("o"));
        Assert.That(code, Is.EqualTo(2));
        Assert.That(err, Does.Contain("sum to 0.8 (x 0.5 + y 0.3)"));

        (code, err) = CliHarness.Run("pack", "--source", $"{a}:1", "--seq-len", "64", "--output", dir.File("o"));
        Assert.That(code, Is.EqualTo(2));
        Assert.That(err, Does.Contain("--model").And.Contain("--bos"));

        (code, err) = CliHarness.Run("pack", "--source", $"{dir.File("nope")}:1", "--seq-len", "64", "--bos", "1", "--eos", "2", "--output", dir.File("o"));
        Assert.That(code, Is.EqualTo(1));
        Assert.That(err, Does.Contain("does not exist"));

        // A shard cut short: one line naming it, and no dataset written.
        string shard = Directory.GetFiles(a, "shard.*").First();
        byte[] bytes = File.ReadAllBytes(shard);
        File.WriteAllBytes(shard, bytes[..^10]);
        (code, err) = CliHarness.Run("pack", "--source", $"{a}:1", "--seq-len", "64", "--bos", "1", "--eos", "2", "--output", dir.File("o"));
        Assert.That(code, Is.EqualTo(1));
        Assert.That(err.Split('\n').Count(l => l.StartsWith("longdep:")), Is.EqualTo(1), err);
        Assert.That(err, Does.Contain(Path.GetFileName(shard)).And.Contain("truncated"));
        Assert.That(File.Exists(Path.Combine(dir.File("o"), "index.json")), Is.False);

        // score on the same damaged dataset: one line too.
        string model = dir.File("m.gguf");
        CliHarness.TinyModel(model);
        (code, err) = CliHarness.Run("score", "--method", "ladm", "--model", model, "--input", a, "--output", dir.File("s.jsonl"), "--device", "cpu");
        Assert.That(code, Is.EqualTo(1));
        Assert.That(err, Does.Contain(Path.GetFileName(shard)));

        // A folder that is not a dataset.
        Directory.CreateDirectory(dir.File("empty"));
        (code, err) = CliHarness.Run("score", "--method", "ladm", "--model", model, "--input", dir.File("empty"), "--output", dir.File("s2.jsonl"), "--device", "cpu");
        Assert.That(code, Is.EqualTo(1));
        Assert.That(err, Does.Contain("without index.json"));
    }

    [Test]
    public void KilledPack_LeavesNoDatasetAReaderAccepts_AndTheRerunGivesTheSameBytes()
    {
        using var dir = new TempDir();
        RawDataset(dir.File("src"), 150, 2000, 8000, 50_000, 3, shardSize: 1 << 18);
        string[] Args(string output) => ["pack", "--source", $"{dir.File("src")}:1", "--seq-len", "1024", "--bos", "1", "--eos", "2",
            "--output", output, "--shard-size", "40000", "--progress-interval", "1000"];

        var (code, _, err) = CliHarness.RunChild(Args(dir.File("full")));
        Assert.That(code, Is.EqualTo(0), err);

        string killed = dir.File("killed");
        using (var p = CliHarness.Start(Args(killed)))
        {
            _ = p.StandardOutput.ReadToEndAsync();
            _ = p.StandardError.ReadToEndAsync();
            var clock = Stopwatch.StartNew();
            while (!File.Exists(Path.Combine(killed, "shard.00001.mds")) && !p.HasExited && clock.Elapsed < TimeSpan.FromSeconds(60)) Thread.Sleep(1);
            p.Kill(entireProcessTree: true); // SIGKILL
            p.WaitForExit();
            Assert.That(p.ExitCode, Is.Not.EqualTo(0), "the run ended before it could be killed; the test proved nothing");
        }
        Assert.That(Directory.GetFiles(killed, "shard.*"), Is.Not.Empty);
        Assert.That(File.Exists(Path.Combine(killed, "index.json")), Is.False);
        Assert.Throws<CorpusFormatException>(() => MdsDataset.Open(killed));

        (code, _, err) = CliHarness.RunChild(Args(killed));
        Assert.That(code, Is.EqualTo(0), err);
        string[] names = Directory.GetFiles(dir.File("full")).Select(Path.GetFileName).Where(n => n != "pack-summary.json").Order().ToArray()!;
        Assert.That(Directory.GetFiles(killed).Select(Path.GetFileName).Where(n => n != "pack-summary.json").Order(), Is.EqualTo(names));
        foreach (string n in names)
            Assert.That(File.ReadAllBytes(Path.Combine(killed, n)), Is.EqualTo(File.ReadAllBytes(Path.Combine(dir.File("full"), n))), n);
    }
}
