using System.Text;
using LongDep.Core.Corpus;
using LongDep.Core.Pipeline;
using LongDep.Core.Probes;
using LongDep.Core.Records;
using LongDep.Core.Scoring;

namespace LongDep.Core.Tests;

/// <summary>The scoring pipeline with fake probes: order, statuses, shards, resume, failures.</summary>
public class ScoreRunTests
{
    /// <summary>
    /// A fake ProLong probe whose perplexities are a pure function of the chunk tokens (so any worker gives the same
    /// numbers), with a random delay so that workers finish out of order.
    /// </summary>
    private sealed class FakeProLongProbe(int seed, Action<int>? onMeasure = null) : IProLongProbe
    {
        private readonly Random _delay = new(seed);
        public ProLongMeasurement Measure(IReadOnlyList<int[]> chunks, IReadOnlyList<ChunkPair> pairs, CancellationToken ct = default)
        {
            onMeasure?.Invoke(chunks.Count);
            Thread.Sleep(_delay.Next(0, 4));
            double[] single = chunks.Select(c => 2.0 + c.Sum() % 7).ToArray();
            double[] pair = pairs.Select(p => single[p.I] * (0.5 + (chunks[p.J][0] % 5) / 10.0)).ToArray();
            return new ProLongMeasurement(single, pairs, pair);
        }
        public void Dispose() { }
    }

    private static readonly ScoreSettings Settings = new() { Method = ScoreMethod.ProLong, Window = 64, Chunk = 4, Pairs = 6 };
    private static readonly ScoreRun.Tokenizer Tok = new(text => text.Select(ch => (int)ch % 50).ToArray(), 50);

    private static IScoringWorker[] Workers(int n, Action<int>? onMeasure = null) =>
        Enumerable.Range(0, n).Select(i => (IScoringWorker)new ScoringWorker($"fake:{i}",
            new RecordScorer(Settings, null, new FakeProLongProbe(i, onMeasure)))).ToArray();

    private static string Corpus(TempDir dir, int records)
    {
        var sb = new StringBuilder();
        var rng = new Random(5);
        for (int i = 0; i < records; i++)
        {
            switch (i % 9)
            {
                case 4: sb.Append("not json\n"); break;                                  // bad_record
                case 7: sb.Append("{\"text\":\"ab\",\"id\":\"short\"}\n"); break;        // too_short (< 2 chunks)
                case 8: sb.Append("{\"input_ids\":[1,2,3,4,5,6,7,99],\"id\":\"oov\"}\n"); break; // out of vocabulary
                default:
                    string text = new(Enumerable.Range(0, rng.Next(8, 60)).Select(_ => (char)('a' + rng.Next(26))).ToArray());
                    sb.Append($"{{\"id\":\"r{i}\",\"text\":\"{text}\",\"meta\":{{\"pile_set_name\":\"D{i % 3}\"}}}}\n");
                    break;
            }
        }
        string path = dir.File("in.jsonl");
        File.WriteAllText(path, sb.ToString());
        return path;
    }

    [Test]
    public void Output_IsInInputOrder_WithStatuses_AndIndependentOfWorkerCount()
    {
        using var dir = new TempDir();
        string input = Corpus(dir, 60);
        var one = ScoreRun.Execute(new ScoreRunOptions { InputPath = input, OutputPath = dir.File("one.jsonl") }, Settings, Tok, Workers(1));
        var three = ScoreRun.Execute(new ScoreRunOptions { InputPath = input, OutputPath = dir.File("three.jsonl"), MaxInFlight = 5, PrepThreads = 3 }, Settings, Tok, Workers(3));

        Assert.That(File.ReadAllBytes(dir.File("three.jsonl")), Is.EqualTo(File.ReadAllBytes(dir.File("one.jsonl"))));
        var records = ScoreReader.Read(dir.File("one.jsonl")).ToList();
        Assert.Multiple(() =>
        {
            Assert.That(records.Select(r => r.Index), Is.EqualTo(Enumerable.Range(0, 60).Select(i => (long)i)));
            Assert.That(records.Where(r => r.Index % 9 == 4).Select(r => r.Status), Is.All.EqualTo(ScoreStatus.BadRecord));
            Assert.That(records.Where(r => r.Index % 9 == 7).Select(r => r.Status), Is.All.EqualTo(ScoreStatus.TooShort));
            Assert.That(records.Where(r => r.Index % 9 == 8).Select(r => r.Status), Is.All.EqualTo(ScoreStatus.BadRecord));
            Assert.That(records.Where(r => r.Index % 9 == 8).Select(r => r.Error), Has.All.Contains("99"));
            Assert.That(records.Where(r => r.Index % 9 is 0 or 1 or 2 or 3 or 5 or 6).Select(r => r.Status), Is.All.EqualTo(ScoreStatus.Ok));
            Assert.That(records.Where(r => r.Status != ScoreStatus.Ok).Select(r => r.Score), Is.All.Null);
            Assert.That(records.Where(r => r.Status == ScoreStatus.Ok).Select(r => r.Domain), Is.All.StartWith("D"));
            Assert.That(one.Count(ScoreStatus.Ok), Is.EqualTo(records.Count(r => r.Status == ScoreStatus.Ok)));
            Assert.That(three.Records, Is.EqualTo(60));
        });
    }

    [Test]
    public void OkScores_EqualTheFormulaOnTheSameMeasurements()
    {
        using var dir = new TempDir();
        string input = Corpus(dir, 10);
        ScoreRun.Execute(new ScoreRunOptions { InputPath = input, OutputPath = dir.File("o.jsonl") }, Settings, Tok, Workers(1));
        var r0 = ScoreReader.Read(dir.File("o.jsonl")).First();
        // Recompute record 0 by hand through the plan, the fake probe and the formula.
        string text = File.ReadLines(input).First().Split("\"text\":\"")[1].Split('"')[0];
        int[] tokens = Tok.Encode(text);
        var plan = ProLongPlan.Create(tokens, Settings.Window, Settings.Chunk, Settings.Pairs, Settings.Seed, 0);
        var m = new FakeProLongProbe(0).Measure(plan.Chunks, plan.Pairs);
        var expected = ProLong.Lds(m, plan.ChunkCountN, Settings.Threshold);
        Assert.Multiple(() =>
        {
            Assert.That(r0.Score, Is.EqualTo(expected.Lds));
            Assert.That(r0.PairsUsed, Is.EqualTo(plan.Pairs.Count));
            Assert.That(r0.Tokens, Is.EqualTo(tokens.Length));
            Assert.That(r0.InputHash, Is.EqualTo(Fnv1a64.Hash(Encoding.UTF8.GetBytes(File.ReadLines(input).First()))));
        });
    }

    [Test]
    public void Shards_PartitionTheInput_ByIndexModN()
    {
        using var dir = new TempDir();
        string input = Corpus(dir, 25);
        ScoreRun.Execute(new ScoreRunOptions { InputPath = input, OutputPath = dir.File("all.jsonl") }, Settings, Tok, Workers(2));
        var all = ScoreReader.Read(dir.File("all.jsonl")).ToDictionary(r => r.Index, r => ScoreWriter.Format(r));
        var seen = new List<long>();
        for (int i = 0; i < 3; i++)
        {
            string path = dir.File($"s{i}.jsonl");
            ScoreRun.Execute(new ScoreRunOptions { InputPath = input, OutputPath = path, ShardIndex = i, ShardCount = 3 }, Settings, Tok, Workers(2));
            foreach (var r in ScoreReader.Read(path))
            {
                Assert.That(r.Index % 3, Is.EqualTo(i));
                Assert.That(ScoreWriter.Format(r), Is.EqualTo(all[r.Index]), $"record {r.Index} differs between shard and whole run");
                seen.Add(r.Index);
            }
        }
        Assert.That(seen.Order(), Is.EqualTo(Enumerable.Range(0, 25).Select(i => (long)i)));
        Assert.Throws<ScoreRunException>(() => ScoreRun.Execute(
            new ScoreRunOptions { InputPath = input, OutputPath = dir.File("x.jsonl"), ShardIndex = 3, ShardCount = 3 }, Settings, Tok, Workers(1)));
    }

    [Test]
    public void Resume_AfterATornTail_EndsByteIdentical_AndScoresOnlyTheRest()
    {
        using var dir = new TempDir();
        string input = Corpus(dir, 40);
        string full = dir.File("full.jsonl");
        ScoreRun.Execute(new ScoreRunOptions { InputPath = input, OutputPath = full }, Settings, Tok, Workers(2));
        byte[] expected = File.ReadAllBytes(full);

        foreach (int cut in new[] { 0, 1, expected.Length / 3, expected.Length / 2 + 7, expected.Length - 1 })
        {
            string partial = dir.File($"p{cut}.jsonl");
            File.WriteAllBytes(partial, expected[..cut]);
            int completeLines = expected[..cut].Count(b => b == (byte)'\n');
            int measured = 0;
            var summary = ScoreRun.Execute(new ScoreRunOptions { InputPath = input, OutputPath = partial }, Settings, Tok,
                Workers(2, _ => Interlocked.Increment(ref measured)));
            Assert.That(File.ReadAllBytes(partial), Is.EqualTo(expected), $"cut at byte {cut}");
            Assert.That(summary.Records, Is.EqualTo(40 - completeLines), $"cut at byte {cut}: only the missing records are scored");
        }
    }

    [Test]
    public void Resume_RefusesAnOutputOfAnotherInput_OrMethod()
    {
        using var dir = new TempDir();
        string input = Corpus(dir, 12);
        string output = dir.File("o.jsonl");
        ScoreRun.Execute(new ScoreRunOptions { InputPath = input, OutputPath = output }, Settings, Tok, Workers(1));
        string[] lines = File.ReadAllLines(input);
        lines[2] = lines[2].Replace("\"text\":\"", "\"text\":\"zz");
        File.WriteAllLines(input, lines);
        var e = Assert.Throws<ScoreRunException>(() => ScoreRun.Execute(new ScoreRunOptions { InputPath = input, OutputPath = output }, Settings, Tok, Workers(1)));
        Assert.That(e!.Message, Does.Contain("different input record").And.Contain("--overwrite"));

        var ladm = Settings with { Method = ScoreMethod.Ladm, DAfs = 1, DCds = 1 };
        var e2 = Assert.Throws<ScoreRunException>(() => ScoreRun.Execute(new ScoreRunOptions { InputPath = input, OutputPath = output }, ladm, Tok, Workers(1)));
        Assert.That(e2!.Message, Does.Contain("method 'prolong'"));

        // --overwrite starts over.
        var s = ScoreRun.Execute(new ScoreRunOptions { InputPath = input, OutputPath = output, Overwrite = true }, Settings, Tok, Workers(1));
        Assert.That(s.Records, Is.EqualTo(12));
    }

    [Test]
    public void AFailingWorker_StopsTheRun_NamesTheDevice_AndKeepsWhatWasWritten()
    {
        using var dir = new TempDir();
        string input = Corpus(dir, 30);
        string output = dir.File("o.jsonl");
        int calls = 0;
        var workers = Workers(1, _ =>
        {
            if (Interlocked.Increment(ref calls) == 10) throw new InvalidOperationException("device lost");
        });
        var e = Assert.Throws<ScoreRunException>(() => ScoreRun.Execute(
            new ScoreRunOptions { InputPath = input, OutputPath = output, FlushEvery = 1 }, Settings, Tok, workers));
        Assert.That(e!.Message, Does.StartWith("fake:0 failed on record").And.Contain("device lost"));
        var written = ScoreReader.Read(output).ToList();
        Assert.That(written, Is.Not.Empty);
        Assert.That(written.Select(r => r.Index), Is.EqualTo(Enumerable.Range(0, written.Count).Select(i => (long)i)));

        // A rerun resumes after the records kept and completes the file.
        ScoreRun.Execute(new ScoreRunOptions { InputPath = input, OutputPath = output }, Settings, Tok, Workers(1));
        Assert.That(ScoreReader.Read(output).Count(), Is.EqualTo(30));
    }

    /// <summary>A too-short record never reaches the probe.</summary>
    private sealed class UnaskedLadmProbe : ILadmProbe
    {
        public LadmMeasurement Measure(ReadOnlySpan<int> tokens, LadmSchedule schedule, CancellationToken ct = default) =>
            throw new AssertionException("a too-short record was measured");
        public void Dispose() { }
    }

    [Test]
    public void LadmTooShort_SaysWhenTheWindowCutTheRecord()
    {
        var settings = new ScoreSettings { Method = ScoreMethod.Ladm, Window = 256, Chunk = 16, DAfs = 4, DCds = 4 };
        var scorer = new RecordScorer(settings, new UnaskedLadmProbe(), null);
        var cut = scorer.Score(new InputRecord { Index = 0, Id = "a" }, new int[309]).Record;
        Assert.That(cut.Status, Is.EqualTo(ScoreStatus.TooShort));
        Assert.That(cut.Error, Does.Contain("the record has 309, of which the first 256 are scored (--window 256)"));
        var whole = scorer.Score(new InputRecord { Index = 1, Id = "b" }, new int[200]).Record;
        Assert.That(whole.Status, Is.EqualTo(ScoreStatus.TooShort));
        Assert.That(whole.Error, Does.EndWith("the record has 200"));
    }

    [Test]
    public void ATruncatedCompressedCorpus_StopsTheRunClearly_KeepingEveryRecordBeforeTheDamage()
    {
        using var dir = new TempDir();
        // Records padded with 2 KB of random letters (the reader decompresses in blocks: the damage must lie far in).
        var rng = new Random(3);
        string padded = string.Concat(File.ReadAllLines(Corpus(dir, 300)).Select(line => (line.StartsWith('{')
            ? "{\"pad\":\"" + new string(Enumerable.Range(0, 2048).Select(_ => (char)('a' + rng.Next(26))).ToArray()) + "\"," + line[1..]
            : line) + "\n"));
        byte[] data = Encoding.UTF8.GetBytes(padded);
        var gz = new MemoryStream();
        using (var z = new System.IO.Compression.GZipStream(gz, System.IO.Compression.CompressionLevel.Fastest, leaveOpen: true)) z.Write(data);
        byte[] whole = gz.ToArray();
        string input = dir.File("c.jsonl.gz");
        File.WriteAllBytes(input, whole);
        string full = dir.File("full.jsonl");
        ScoreRun.Execute(new ScoreRunOptions { InputPath = input, OutputPath = full }, Settings, Tok, Workers(2));
        string[] expected = File.ReadAllLines(full);

        // The transfer broke off: the last third of the compressed file is missing.
        File.WriteAllBytes(input, whole[..(whole.Length * 2 / 3)]);
        string output = dir.File("out.jsonl");
        var e = Assert.Throws<ScoreRunException>(() =>
            ScoreRun.Execute(new ScoreRunOptions { InputPath = input, OutputPath = output, FlushEvery = 3 }, Settings, Tok, Workers(2)));
        Assert.That(e!.Message, Does.Contain("c.jsonl.gz").And.Contain("truncated"));
        string[] kept = File.ReadAllLines(output);
        int readable = 0;
        Assert.Throws<CorpusFormatException>(() =>
        {
            foreach (var _ in CorpusReader.Open(input)) readable++;
        });
        Assert.That(readable, Is.GreaterThan(0).And.LessThan(expected.Length));
        Assert.That(kept.Length, Is.EqualTo(readable), "the records in flight when the reader failed are finished, not dropped");
        Assert.That(kept, Is.EqualTo(expected.Take(kept.Length)), "every record read before the damage is written, in order");

        File.WriteAllBytes(input, whole); // the file fetched again: the rerun resumes
        ScoreRun.Execute(new ScoreRunOptions { InputPath = input, OutputPath = output }, Settings, Tok, Workers(2));
        Assert.That(File.ReadAllBytes(output), Is.EqualTo(File.ReadAllBytes(full)));
    }
}
