using System.Text;
using System.Text.Json;
using LongDep.Core.Corpus;
using LongDep.Core.Corpus.Mds;
using LongDep.Core.Packing;
using LongDep.Core.Tests.Mds;

namespace LongDep.Core.Tests.Packing;

public class PackRunTests
{
    private const int Bos = 1, Eos = 2;

    /// <summary>A raw-data MDS source (ProLong's layout) of <paramref name="count"/> documents; returns them.</summary>
    private static int[][] MdsSource(string dir, int count, int minLen, int maxLen, int seed, string? compression = null)
    {
        var rng = new Random(seed);
        int[][] docs = Enumerable.Range(0, count).Select(_ => Enumerable.Range(0, rng.Next(minLen, maxLen)).Select(_ => rng.Next(3, 50_000)).ToArray()).ToArray();
        using var w = new MdsWriter(dir, [new("domain", MdsEncoding.Str), new("input_ids", MdsEncoding.NdArrayUInt32), new("length", MdsEncoding.Int32)],
            new MdsWriterOptions { SizeLimit = 4000, Compression = compression });
        foreach (int[] d in docs)
        {
            w.BeginSample();
            w.WriteString("raw");
            w.WriteIntArray(d);
            w.WriteInteger(d.Length);
            w.EndSample();
        }
        w.Finish();
        return docs;
    }

    private static int[][] JsonlSource(string path, int count, int minLen, int maxLen, int seed)
    {
        var rng = new Random(seed);
        int[][] docs = Enumerable.Range(0, count).Select(_ => Enumerable.Range(0, rng.Next(minLen, maxLen)).Select(_ => rng.Next(3, 50_000)).ToArray()).ToArray();
        File.WriteAllLines(path, docs.Select((d, i) => $"{{\"id\": \"j{i}\", \"input_ids\": [{string.Join(",", d)}]}}"));
        return docs;
    }

    private sealed record Seq(string Domain, int[] Ids, (int Start, int End)[] Indices, int Length);

    /// <summary>Reads the packed output by the documented layout (not through the engine's reader).</summary>
    private static List<Seq> ReadPacked(string ds)
    {
        HandMds.Col[] cols = [new("domain", "str", null), new("indices", "ndarray:uint32", null), new("input_ids", "ndarray:uint32", null), new("length", "int32", 4)];
        using JsonDocument index = JsonDocument.Parse(File.ReadAllText(Path.Combine(ds, "index.json")));
        var result = new List<Seq>();
        foreach (JsonElement shard in index.RootElement.GetProperty("shards").EnumerateArray())
        {
            byte[] raw = File.ReadAllBytes(Path.Combine(ds, shard.GetProperty("raw_data").GetProperty("basename").GetString()!));
            Assert.That(HandMds.Sha1(raw), Is.EqualTo(shard.GetProperty("raw_data").GetProperty("hashes").GetProperty("sha1").GetString()));
            foreach (byte[] sample in HandMds.SplitShard(raw))
            {
                byte[][] v = HandMds.SplitSample(cols, sample);
                result.Add(new Seq(Encoding.UTF8.GetString(v[0]), HandMds.ReadUInt32Array(v[2]).Select(x => (int)x).ToArray(),
                    HandMds.ReadPairs(v[1]).Select(p => ((int)p.Start, (int)p.End)).ToArray(), BitConverter.ToInt32(v[3])));
            }
        }
        return result;
    }

    private static IEnumerable<int> WithSpecials(IEnumerable<int[]> docs) => docs.SelectMany(d => new[] { Bos }.Concat(d).Append(Eos));

    [Test]
    public void Mixture_EverySequenceFull_IndicesCoverDocumentsInOrder_SharesWithinOneSequence()
    {
        using var dir = new TempDir();
        const int L = 256;
        int[][] books = MdsSource(dir.File("books"), 40, 300, 900, 1);             // long documents: split across sequences
        int[][] web = JsonlSource(dir.File("web.jsonl"), 400, 5, 120, 2);          // short ones: many per sequence
        int[][] code = MdsSource(dir.File("code"), 60, 50, 700, 3, "zstd");
        var options = new PackOptions
        {
            Sources = [new PackSource("books", dir.File("books"), 0.3), new PackSource("web", dir.File("web.jsonl"), 0.4), new PackSource("code", dir.File("code"), 0.3)],
            SeqLen = L, OutputPath = dir.File("out"), Bos = Bos, Eos = Eos, Writer = new MdsWriterOptions { SizeLimit = 20_000 },
        };
        PackSummary summary = PackRun.Execute(options, new PackTokenizer(null, 50_000));
        List<Seq> seqs = ReadPacked(dir.File("out"));

        Assert.That(seqs, Has.Count.EqualTo(summary.Sequences).And.Count.GreaterThan(50));
        Assert.That(summary.Stopped, Does.Contain("ran out"));
        foreach (Seq s in seqs)
        {
            Assert.That(s.Ids, Has.Length.EqualTo(L));
            Assert.That(s.Length, Is.EqualTo(L));
            // Pieces back to back from 0 to L.
            Assert.That(s.Indices[0].Start, Is.EqualTo(0));
            Assert.That(s.Indices[^1].End, Is.EqualTo(L));
            for (int k = 1; k < s.Indices.Length; k++) Assert.That(s.Indices[k].Start, Is.EqualTo(s.Indices[k - 1].End));
            Assert.That(s.Indices.All(p => p.End > p.Start));
        }
        // Per source, the sequences in order are the source's BOS + document + EOS stream, cut every L tokens.
        foreach (var (name, docs) in new[] { ("books", books), ("web", web), ("code", code) })
        {
            int[] packed = seqs.Where(s => s.Domain == name).SelectMany(s => s.Ids).ToArray();
            int[] stream = WithSpecials(docs).Take(packed.Length).ToArray();
            Assert.That(packed, Is.EqualTo(stream), name);
            // Each piece starts at a BOS exactly when it starts a document.
            var pieces = seqs.Where(s => s.Domain == name).SelectMany(s => s.Indices.Select(p => s.Ids[p.Start])).ToArray();
            Assert.That(pieces.Count(t => t == Bos), Is.EqualTo(packed.Count(t => t == Bos)));
        }
        // Shares: each source within one sequence of its share of the total.
        long total = summary.Tokens;
        foreach (PackSourceSummary s in summary.Sources)
        {
            long tokens = seqs.Count(q => q.Domain == s.Name) * (long)L;
            Assert.That(tokens, Is.EqualTo(s.Tokens));
            Assert.That(Math.Abs(tokens - s.Share * total), Is.LessThan(L), s.Name);
            Assert.That(s.TokensRead, Is.EqualTo(s.Tokens + s.TokensDroppedShort + s.TokensLeftOver));
        }
        // The sequences of the sources are interleaved through the file, not grouped.
        Assert.That(seqs.Take(10).Select(s => s.Domain).Distinct().Count(), Is.EqualTo(3));
        // The summary JSON beside the shards says the same.
        using JsonDocument json = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir.File("out"), PackRun.SummaryFileName)));
        Assert.That(json.RootElement.GetProperty("sequences").GetInt64(), Is.EqualTo(seqs.Count));
        Assert.That(json.RootElement.GetProperty("sources")[1].GetProperty("name").GetString(), Is.EqualTo("web"));
    }

    [Test]
    public void TokenBudget_GivesWholeSequences_AndTheSameCommandTheSameBytes()
    {
        using var dir = new TempDir();
        MdsSource(dir.File("a"), 200, 10, 400, 4);
        JsonlSource(dir.File("b.jsonl"), 300, 10, 300, 5);
        PackOptions Options(string output, long seed, bool shuffle) => new()
        {
            Sources = [new PackSource("a", dir.File("a"), 0.75), new PackSource("b", dir.File("b.jsonl"), 0.25)],
            SeqLen = 128, OutputPath = dir.File(output), TokenBudget = 128 * 40 + 100, Bos = Bos, Eos = Eos, Bins = 4, MinLength = 8,
            Shuffle = shuffle, Seed = seed, ShuffleWindowTokens = 2000, Writer = new MdsWriterOptions { SizeLimit = 8000, Compression = "zstd:3" },
        };
        PackSummary s1 = PackRun.Execute(Options("o1", 7, true), new PackTokenizer(null, null));
        PackRun.Execute(Options("o2", 7, true), new PackTokenizer(null, null));
        PackRun.Execute(Options("o3", 8, true), new PackTokenizer(null, null));
        PackRun.Execute(Options("o4", 7, false), new PackTokenizer(null, null));
        Assert.That(s1.Sequences, Is.EqualTo(40));
        Assert.That(s1.Stopped, Is.EqualTo("token budget reached"));
        Assert.That(s1.Sources.Select(s => s.Sequences), Is.EqualTo(new long[] { 30, 10 }));

        static string[] Files(string d) => Directory.GetFiles(d).Select(Path.GetFileName).Where(f => f != PackRun.SummaryFileName).Order().ToArray()!;
        Assert.That(Files(dir.File("o1")), Is.EqualTo(Files(dir.File("o2"))));
        foreach (string f in Files(dir.File("o1")))
            Assert.That(File.ReadAllBytes(Path.Combine(dir.File("o1"), f)), Is.EqualTo(File.ReadAllBytes(Path.Combine(dir.File("o2"), f))), f);
        Assert.That(File.ReadAllBytes(Path.Combine(dir.File("o1"), "index.json")), Is.Not.EqualTo(File.ReadAllBytes(Path.Combine(dir.File("o3"), "index.json"))),
            "another seed, another shuffle");
        Assert.That(File.ReadAllBytes(Path.Combine(dir.File("o1"), "index.json")), Is.Not.EqualTo(File.ReadAllBytes(Path.Combine(dir.File("o4"), "index.json"))));
    }

    [Test]
    public void Shuffle_KeepsEveryDocumentWhole_InAnotherOrder()
    {
        using var dir = new TempDir();
        int[][] docs = MdsSource(dir.File("a"), 120, 20, 60, 6);
        var options = new PackOptions
        {
            Sources = [new PackSource("a", dir.File("a"), 1)], SeqLen = 64, OutputPath = dir.File("out"), Bos = Bos, Eos = Eos, Shuffle = true,
        };
        PackRun.Execute(options, new PackTokenizer(null, null));
        int[] packed = ReadPacked(dir.File("out")).SelectMany(s => s.Ids).ToArray();
        // Cut the stream at BOS tokens (ids 1 and 2 do not occur inside the documents).
        var found = new List<int[]>();
        for (int k = 0; k < packed.Length;)
        {
            int end = Array.IndexOf(packed, Eos, k);
            if (end < 0) break;
            found.Add(packed[(k + 1)..end]);
            k = end + 1;
        }
        var all = docs.Select(d => string.Join(",", d)).ToHashSet();
        Assert.That(found.All(d => all.Contains(string.Join(",", d))), "each packed document is a source document");
        Assert.That(found.Select(d => string.Join(",", d)).Distinct().Count(), Is.EqualTo(found.Count), "none twice");
        Assert.That(found.Take(10).Select(d => string.Join(",", d)), Is.Not.EqualTo(docs.Take(10).Select(d => string.Join(",", d))), "not in source order");
    }

    [Test]
    public void NextSource_KeepsEveryCountWithinOneOfItsShare()
    {
        var rng = new Random(9);
        double worst = 0;
        for (int trial = 0; trial < 300; trial++)
        {
            int k = rng.Next(1, 11);
            double[] w = Enumerable.Range(0, k).Select(_ => Math.Pow(rng.NextDouble(), 3) + 1e-3).ToArray();
            double sum = w.Sum();
            w = w.Select(x => x / sum).ToArray();
            var n = new long[k];
            for (long t = 1; t <= 500; t++)
            {
                n[PackRun.NextIndex(w, n, t)]++;
                for (int i = 0; i < k; i++)
                    worst = Math.Max(worst, Math.Abs(n[i] - t * w[i]));
            }
        }
        Assert.That(worst, Is.LessThan(1.0));
        Assert.That(worst, Is.GreaterThan(0.5), "the check can fail: counts do stray from their shares");
    }

    [Test]
    public void UnusableRecords_AreSkippedAndCounted()
    {
        using var dir = new TempDir();
        File.WriteAllLines(dir.File("a.jsonl"),
        [
            "{\"input_ids\": [5, 6, 7, 8, 9, 10, 11]}", "not json", "{\"text\": \"no tokenizer here\"}", "{\"input_ids\": [5, 70000]}",
            "{\"input_ids\": [12, 13, 14, 15, 16, 17]}",
        ]);
        var options = new PackOptions { Sources = [new PackSource("a", dir.File("a.jsonl"), 1)], SeqLen = 8, OutputPath = dir.File("o"), Bos = Bos, Eos = Eos };
        PackSummary s = PackRun.Execute(options, new PackTokenizer(null, 60_000));
        PackSourceSummary a = s.Sources.Single();
        Assert.That(a.Records, Is.EqualTo(5));
        Assert.That(a.BadRecords, Is.EqualTo(3));
        Assert.That(a.FirstBad, Does.StartWith("record 1:"));
        Assert.That(s.Sequences, Is.EqualTo(2));
        Assert.That(ReadPacked(dir.File("o")).SelectMany(q => q.Ids), Is.EqualTo(new[] { 1, 5, 6, 7, 8, 9, 10, 11, 2, 1, 12, 13, 14, 15, 16, 17 }));
    }

    [Test]
    public void DamagedSource_OrCancel_LeavesNoDataset()
    {
        using var dir = new TempDir();
        MdsSource(dir.File("a"), 300, 50, 200, 10);
        var options = new PackOptions { Sources = [new PackSource("a", dir.File("a"), 1)], SeqLen = 64, OutputPath = dir.File("o"), Bos = Bos, Eos = Eos };

        // Cancel after some sequences (shards have been closed by then): nothing stays.
        using var cts = new CancellationTokenSource();
        var progress = new SyncProgress(p => { if (p.Sequences == 300) cts.Cancel(); });
        Assert.Throws<OperationCanceledException>(() => PackRun.Execute(options with { Writer = new MdsWriterOptions { SizeLimit = 3000 } },
            new PackTokenizer(null, null), progress, cts.Token));
        Assert.That(Directory.GetFiles(dir.File("o")), Is.Empty);

        // A shard damaged in the middle of the source: one clear line, no dataset.
        string shard = Directory.GetFiles(dir.File("a"), "shard.*").Order().ElementAt(3);
        byte[] b = File.ReadAllBytes(shard);
        b[^5] ^= 1;
        File.WriteAllBytes(shard, b);
        var e = Assert.Throws<CorpusFormatException>(() => PackRun.Execute(options with { Writer = new MdsWriterOptions { SizeLimit = 3000 } }, new PackTokenizer(null, null)))!;
        Assert.That(e.Message, Does.Contain(Path.GetFileName(shard)).And.Contain("hash"));
        Assert.That(Directory.GetFiles(dir.File("o")), Is.Empty);
    }

    [TestCase("books=data/books/:0.3", "books", "data/books/", 0.3)]
    [TestCase("data/fw.jsonl.zst:0.1", "fw", "data/fw.jsonl.zst", 0.1)]
    [TestCase("repos/:1", "repos", "repos/", 1.0)]
    [TestCase("x=a=b.parquet:0.5", "x", "a=b.parquet", 0.5)]
    public void SourceSpecs_Parse(string spec, string name, string path, double share)
    {
        Assert.That(PackSource.Parse(spec), Is.EqualTo(new PackSource(name, path, share)));
    }

    [TestCase("books", "[NAME=]PATH:SHARE")]
    [TestCase("books:0", "(0, 1]")]
    [TestCase("books:abc", "(0, 1]")]
    public void BadSourceSpecs_SayWhatIsExpected(string spec, string expected)
    {
        Assert.That(Assert.Throws<ArgumentException>(() => PackSource.Parse(spec))!.Message, Does.Contain(expected));
    }

    [Test]
    public void SharesMustSumToOne_AndNamesDiffer()
    {
        var o = new PackOptions { Sources = [new("a", "x", 0.3), new("b", "y", 0.3)], SeqLen = 8, OutputPath = "o" };
        Assert.That(o.Validate(), Does.Contain("sum to 0.6 (a 0.3 + b 0.3)"));
        Assert.That((o with { Sources = [new("a", "x", 0.5), new("a", "y", 0.5)] }).Validate(), Does.Contain("two sources are named 'a'"));
        Assert.That((o with { Sources = [new("a", "x", 0.5), new("b", "y", 0.5)] }).Validate(), Is.Null);
        Assert.That((o with { Sources = [new("a", "x", 0.5), new("b", "o/", 0.5)] }).Validate(), Does.Contain("overlaps source 'b'"));
        Assert.That((o with { Sources = [new("a", "x", 0.5), new("b", "o/sub", 0.5)] }).Validate(), Does.Contain("overlaps source 'b'"));
        Assert.That((o with { Sources = [new("a", "x", 0.5), new("b", "ox", 0.5)] }).Validate(), Is.Null);
    }

    private sealed class SyncProgress(Action<PackProgress> report) : IProgress<PackProgress>
    {
        public void Report(PackProgress value) => report(value);
    }
}
