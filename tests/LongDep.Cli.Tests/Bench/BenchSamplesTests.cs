using LongDep.Cli.Bench;
using LongDep.Core.Scoring;

namespace LongDep.Cli.Tests.Bench;

public class BenchSamplesTests
{
    [Test]
    public void Hash_IsFnv1a64OfLittleEndianInt32()
    {
        // Constants computed by an independent implementation (Python: struct.pack('<i', t), FNV-1a 64).
        Assert.Multiple(() =>
        {
            Assert.That(BenchSamples.Hash([]), Is.EqualTo("cbf29ce484222325"));
            Assert.That(BenchSamples.Hash([1, 2, 3]), Is.EqualTo("fd1f0f4381eb0395"));
            Assert.That(BenchSamples.Hash([-1, 31999, 0]), Is.EqualTo("dcd5bb95edf7f912"));
        });
    }

    [Test]
    public void Synthetic_IsDeterministic_InRange_AndVaried()
    {
        var a = BenchSamples.Synthetic(6, 3000, 500, seed: 11);
        var b = BenchSamples.Synthetic(6, 3000, 500, seed: 11);
        var c = BenchSamples.Synthetic(6, 3000, 500, seed: 12);
        Assert.Multiple(() =>
        {
            Assert.That(a.Select(s => s.Tokens), Is.EqualTo(b.Select(s => s.Tokens)));
            Assert.That(a.Select(s => s.Hash), Is.Not.EqualTo(c.Select(s => s.Hash)));
            Assert.That(a.All(s => s.Tokens.Length == 3000 && s.Tokens.All(t => t >= 0 && t < 500)), Is.True);
            Assert.That(a.Select((s, i) => s.Index == i && s.Id == $"synthetic-{i}"), Is.All.True);
            // Distinct-token counts spread: the alphabets differ from sample to sample.
            var distinct = a.Select(s => s.Tokens.Distinct().Count()).ToArray();
            Assert.That(distinct.Max(), Is.GreaterThan(2 * distinct.Min()), string.Join(", ", distinct));
        });
    }

    [Test]
    public void Export_RoundTrips_AndItsPlanIsProLongPlansForTheSameSeedAndIndex()
    {
        using var dir = new TempDir();
        string path = dir.File("samples.jsonl");
        // Window 1024 over 3000 tokens: 23 whole chunks, 8 kept by the draw, so the chunk draw matters too.
        var samples = BenchSamples.Synthetic(3, 3000, 400, seed: 5);
        BenchSamples.Write(path, samples, window: 1024, chunk: 128, pairs: 10, seed: 5);
        var read = BenchSamples.Read(path);
        Assert.That(read, Has.Count.EqualTo(3));
        for (int k = 0; k < 3; k++)
        {
            var plan = ProLongPlan.Create(samples[k].Tokens, 1024, 128, 10, 5, samples[k].Index);
            var e = read[k];
            Assert.Multiple(() =>
            {
                Assert.That(e.Sample.Index, Is.EqualTo(samples[k].Index));
                Assert.That(e.Sample.Id, Is.EqualTo(samples[k].Id));
                Assert.That(e.Sample.Tokens, Is.EqualTo(samples[k].Tokens));
                Assert.That(e.Hash, Is.EqualTo(samples[k].Hash));
                Assert.That(e.ProLong.ChunkStarts, Is.EqualTo(plan.ChunkStarts));
                Assert.That(e.ProLong.ChunkStarts, Has.Length.EqualTo(8));
                Assert.That(e.ProLong.Pairs, Is.EqualTo(plan.Pairs));
                Assert.That(e.ProLong.Pairs, Has.Length.EqualTo(10));
                Assert.That((e.ProLong.Window, e.ProLong.Chunk, e.ProLong.ChunkCountN, e.ProLong.PairsRequested, e.ProLong.Seed),
                    Is.EqualTo((1024, 128, 8, 10, 5L)));
                for (int c = 0; c < plan.Chunks.Count; c++)
                    Assert.That(e.Sample.Tokens.AsSpan(e.ProLong.ChunkStarts[c], 128).ToArray(), Is.EqualTo(plan.Chunks[c]));
            });
        }
    }

    [Test]
    public void Export_IsAlsoACorpusThatScoreReads()
    {
        using var dir = new TempDir();
        string path = dir.File("samples.jsonl");
        var samples = BenchSamples.Synthetic(2, 400, 300, seed: 1);
        BenchSamples.Write(path, samples, 400, 128, -1, 1);
        var back = BenchSamples.FromCorpus(path, 10, _ => throw new AssertionException("no text expected"), 300);
        Assert.That(back.Select(s => (s.Index, s.Id, s.Hash)), Is.EqualTo(samples.Select(s => (s.Index, s.Id, s.Hash))));
    }

    [Test]
    public void Read_NamesTheLineOfAnAlteredOrForeignFile()
    {
        using var dir = new TempDir();
        string path = dir.File("samples.jsonl");
        BenchSamples.Write(path, BenchSamples.Synthetic(2, 300, 100, 3), 300, 128, 5, 3);
        var lines = File.ReadAllLines(path);
        lines[1] = lines[1].Replace("\"input_ids\":[", "\"input_ids\":[7,");
        File.WriteAllLines(path, lines);
        var altered = Assert.Throws<InvalidDataException>(() => BenchSamples.Read(path));
        Assert.That(altered!.Message, Does.Contain("line 2").And.Contain("altered"));

        File.WriteAllText(path, "{\"text\": \"a corpus record\"}\n");
        var foreign = Assert.Throws<InvalidDataException>(() => BenchSamples.Read(path));
        Assert.That(foreign!.Message, Does.Contain("line 1").And.Contain("'index'"));
    }
}
