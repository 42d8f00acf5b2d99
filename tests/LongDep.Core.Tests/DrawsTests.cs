using LongDep.Core.Probes;
using LongDep.Core.Scoring;

namespace LongDep.Core.Tests;

public class DrawsTests
{
    [Test]
    public void Chunks_SameKey_SameDraw_OtherIndexOrSeed_OtherDraw()
    {
        int[] a = Draws.Chunks(1000, 256, 11, 7);
        Assert.Multiple(() =>
        {
            Assert.That(Draws.Chunks(1000, 256, 11, 7), Is.EqualTo(a));
            Assert.That(Draws.Chunks(1000, 256, 11, 8), Is.Not.EqualTo(a));
            Assert.That(Draws.Chunks(1000, 256, 12, 7), Is.Not.EqualTo(a));
        });
    }

    [Test]
    public void Chunks_AreSortedDistinctInRange_WithTheRightCount()
    {
        for (long index = 0; index < 50; index++)
        {
            int[] drawn = Draws.Chunks(300, 256, 11, index);
            Assert.That(drawn, Has.Length.EqualTo(256));
            Assert.That(drawn, Is.Ordered.Ascending);
            Assert.That(drawn, Is.Unique);
            Assert.That(drawn.All(c => c >= 0 && c < 300), Is.True);
        }
    }

    [Test]
    public void Chunks_NoMoreThanN_KeepsAll()
    {
        Assert.That(Draws.Chunks(5, 256, 11, 0), Is.EqualTo(new[] { 0, 1, 2, 3, 4 }));
        Assert.That(Draws.Chunks(256, 256, 11, 0), Is.EqualTo(Enumerable.Range(0, 256).ToArray()));
    }

    [Test]
    public void Pairs_All_AreEveryPairInCanonicalOrder()
    {
        var expected = new List<ChunkPair>();
        for (int i = 0; i < 256; i++)
            for (int j = 0; j < i; j++) expected.Add(new ChunkPair(i, j));
        Assert.That(Draws.Pairs(256, -1, 11, 0), Is.EqualTo(expected));
        Assert.That(Draws.Pairs(4, 100, 11, 0), Is.EqualTo(expected.Take(6)));
        Assert.That(Draws.Pairs(1, -1, 11, 0), Is.Empty);
    }

    [Test]
    public void Pairs_Drawn_AreDistinctSortedValidAndDeterministic()
    {
        ChunkPair[] a = Draws.Pairs(256, 5000, 11, 3);
        Assert.Multiple(() =>
        {
            Assert.That(a, Has.Length.EqualTo(5000));
            Assert.That(a, Is.Unique);
            Assert.That(a.All(p => p.J >= 0 && p.J < p.I && p.I < 256), Is.True);
            Assert.That(a.Zip(a.Skip(1)).All(t => t.First.I < t.Second.I || (t.First.I == t.Second.I && t.First.J < t.Second.J)), Is.True);
            Assert.That(Draws.Pairs(256, 5000, 11, 3), Is.EqualTo(a));
            Assert.That(Draws.Pairs(256, 5000, 11, 4), Is.Not.EqualTo(a));
        });
    }

    [Test]
    public void ChunkAndPairStreams_AreIndependent()
    {
        var chunks = new DrawRng(11, 5, Draws.ChunkStream);
        var pairs = new DrawRng(11, 5, Draws.PairStream);
        Assert.That(chunks.NextUInt64(), Is.Not.EqualTo(pairs.NextUInt64()));
    }

    [Test]
    public void Draws_DoNotDependOnThreads()
    {
        const int records = 64;
        var sequential = new int[records][];
        var sequentialPairs = new ChunkPair[records][];
        for (int r = 0; r < records; r++)
        {
            sequential[r] = Draws.Chunks(2000, 256, 11, r);
            sequentialPairs[r] = Draws.Pairs(256, 5000, 11, r);
        }
        var parallel = new int[records][];
        var parallelPairs = new ChunkPair[records][];
        Parallel.For(0, records, new ParallelOptions { MaxDegreeOfParallelism = 4 }, r =>
        {
            // Reverse order on purpose: the draw of a record must not depend on which ran before.
            int k = records - 1 - r;
            parallelPairs[k] = Draws.Pairs(256, 5000, 11, k);
            parallel[k] = Draws.Chunks(2000, 256, 11, k);
        });
        Assert.That(parallel, Is.EqualTo(sequential));
        Assert.That(parallelPairs, Is.EqualTo(sequentialPairs));
    }

    [Test]
    public void Chunks_AreUniform()
    {
        // 2 of 4 chunks, 20 000 records: every chunk should be kept about half the time. Fixed seeds: deterministic.
        var kept = new int[4];
        const int records = 20000;
        for (int r = 0; r < records; r++)
            foreach (int c in Draws.Chunks(4, 2, 11, r)) kept[c]++;
        foreach (int count in kept)
            Assert.That(count / (double)records, Is.EqualTo(0.5).Within(0.02));
    }

    [Test]
    public void NextBelow_StaysInRange()
    {
        var rng = new DrawRng(1, 2, 3);
        var seen = new bool[7];
        for (int k = 0; k < 1000; k++)
        {
            ulong v = rng.NextBelow(7);
            Assert.That(v, Is.LessThan(7UL));
            seen[v] = true;
        }
        Assert.That(seen, Is.All.True);
    }

    [Test]
    public void Plan_ShortRecord_KeepsWholeChunks_DropsPartial()
    {
        int[] tokens = Enumerable.Range(1000, 5 * 128 + 50).ToArray();
        ProLongPlan plan = ProLongPlan.Create(tokens, window: 1024, chunk: 128, pairs: -1, seed: 11, index: 0);
        Assert.Multiple(() =>
        {
            Assert.That(plan.ChunkCountN, Is.EqualTo(8));
            Assert.That(plan.TotalChunks, Is.EqualTo(5));
            Assert.That(plan.Chunks, Has.Count.EqualTo(5));
            Assert.That(plan.Chunks.All(c => c.Length == 128), Is.True);
            Assert.That(plan.Chunks[3], Is.EqualTo(tokens.Skip(3 * 128).Take(128).ToArray()));
            Assert.That(plan.ChunkStarts, Is.EqualTo(new[] { 0, 128, 256, 384, 512 }));
            Assert.That(plan.Pairs, Has.Count.EqualTo(10));
            Assert.That(plan.IsTooShort, Is.False);
        });
        Assert.That(ProLongPlan.Create(tokens, 1024, 128, 3, 11, 0).Pairs, Has.Count.EqualTo(3));
    }

    [Test]
    public void Plan_LongRecord_DrawsNChunksInDocumentOrder()
    {
        int[] tokens = Enumerable.Range(0, 20 * 128).ToArray();
        ProLongPlan plan = ProLongPlan.Create(tokens, 1024, 128, -1, 11, 42);
        Assert.Multiple(() =>
        {
            Assert.That(plan.TotalChunks, Is.EqualTo(20));
            Assert.That(plan.Chunks, Has.Count.EqualTo(8));
            Assert.That(plan.ChunkStarts, Is.Ordered.Ascending);
            Assert.That(plan.ChunkStarts, Is.EqualTo(Draws.Chunks(20, 8, 11, 42).Select(c => c * 128).ToArray()));
            for (int k = 0; k < 8; k++)
                Assert.That(plan.Chunks[k][0], Is.EqualTo(plan.ChunkStarts[k]));
            Assert.That(plan.Pairs, Has.Count.EqualTo(28));
        });
    }

    [Test]
    public void Plan_FewerThanTwoChunks_IsTooShort()
    {
        Assert.That(ProLongPlan.Create(new int[255], 1024, 128, -1, 11, 0).IsTooShort, Is.True);
        Assert.That(ProLongPlan.Create(new int[255], 1024, 128, -1, 11, 0).Pairs, Is.Empty);
        Assert.That(ProLongPlan.Create(new int[256], 1024, 128, -1, 11, 0).IsTooShort, Is.False);
    }
}
