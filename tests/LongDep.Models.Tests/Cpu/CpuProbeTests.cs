using LongDep.Core.Probes;
using LongDep.Models;
using LongDep.Models.Cpu;
using NUnit.Framework;

namespace LongDep.Models.Tests.Cpu;

[TestFixture]
public class CpuProbeTests
{
    [Test]
    public void Ladm_MatchesFloat64Reference_AndIsBitwiseIdenticalAcrossThreadCounts()
    {
        var weights = TinyModels.Create(seed: 101, "qwen2", RopeStyle.Halves, qkvBias: true);
        const int t = 2400;
        var tokens = TinyModels.RandomTokens(12, t, weights.Config.VocabSize);
        var schedule = LadmSchedule.Create(t, chunk: 16, dAfs: 4, dCds: 4);
        Assert.That(schedule.Spans, Has.Count.GreaterThan(10));
        Assert.That(schedule.Spans[0].Intervals, Has.Length.GreaterThan(10));

        using var probe1 = new CpuLadmProbe(new CpuForward(weights, maxThreads: 1));
        using var probe4 = new CpuLadmProbe(new CpuForward(weights, maxThreads: 4));
        var m1 = probe1.Measure(tokens, schedule);
        var m4 = probe4.Measure(tokens, schedule);
        var expected = Reference64.Pfs(weights, tokens, schedule);

        Assert.That(m1.Schedule, Is.SameAs(schedule));
        Assert.That(m1.Pfs, Has.Length.EqualTo(weights.Config.Layers));
        double worst = 0;
        for (int layer = 0; layer < expected.Length; layer++)
            for (int si = 0; si < schedule.Spans.Count; si++)
            {
                Assert.That(m1.Pfs[layer][si], Has.Length.EqualTo(schedule.Spans[si].Intervals.Length));
                for (int j = 0; j < expected[layer][si].Length; j++)
                {
                    double e = expected[layer][si][j], a = m1.Pfs[layer][si][j];
                    worst = Math.Max(worst, Math.Abs(a - e) / Math.Abs(e));
                    Assert.That(BitConverter.DoubleToInt64Bits(m4.Pfs[layer][si][j]), Is.EqualTo(BitConverter.DoubleToInt64Bits(a)),
                        $"layer {layer} span {si} interval {j}: 1 thread vs 4 threads");
                }
            }
        TestContext.Out.WriteLine($"worst relative PFS error vs float64: {worst:E2}");
        Assert.That(worst, Is.LessThan(1e-4));
    }

    [Test]
    public void Ladm_TooShortSample_MeasuresNoSpans_AndLengthMismatchThrows()
    {
        var weights = TinyModels.Create(seed: 102);
        using var probe = new CpuLadmProbe(new CpuForward(weights));
        var schedule = LadmSchedule.Create(100, chunk: 16, dAfs: 4, dCds: 4);
        Assert.That(schedule.Spans, Is.Empty);
        var m = probe.Measure(TinyModels.RandomTokens(1, 100, 256), schedule);
        Assert.That(m.Pfs.All(layer => layer.Length == 0));

        var ex = Assert.Throws<ArgumentException>(() => probe.Measure(new int[99], schedule));
        Assert.That(ex!.Message, Does.Contain("T = 100").And.Contain("99"));
    }

    private static double NaivePerplexity(Reference64 reference, int[] sequence, int firstScored)
    {
        var logits = reference.Run(sequence)!;
        double sum = 0;
        int count = 0;
        for (int t = firstScored; t < sequence.Length; t++)
        {
            sum += Reference64.Nll(logits, t - 1, sequence[t]);
            count++;
        }
        return Math.Exp(sum / count);
    }

    [Test]
    public void ProLong_SingleAndPairPerplexities_MatchNaiveConcatenatedForward()
    {
        var weights = TinyModels.Create(seed: 201, "qwen2", RopeStyle.Halves, qkvBias: true);
        const int l = 24;
        var chunks = Enumerable.Range(0, 4).Select(i => TinyModels.RandomTokens(300 + i, l, weights.Config.VocabSize)).ToArray();
        var pairs = new[] { new ChunkPair(3, 0), new ChunkPair(1, 0), new ChunkPair(3, 2), new ChunkPair(2, 1) };
        using var probe = new CpuProLongProbe(new CpuForward(weights, maxThreads: 2));
        var m = probe.Measure(chunks, pairs);

        var reference = new Reference64(weights);
        Assert.That(m.Pairs, Is.EqualTo(pairs));
        Assert.That(m.SinglePpl, Has.Length.EqualTo(4));
        for (int j = 0; j < chunks.Length; j++)
            Assert.That(m.SinglePpl[j], Is.EqualTo(NaivePerplexity(reference, chunks[j], 1)).Within(1e-5).Percent, $"single_ppl[{j}]");
        for (int k = 0; k < pairs.Length; k++)
        {
            var (i, j) = (pairs[k].I, pairs[k].J);
            // chunk_j ++ chunk_i; chunk i's first token (position l) is not scored: targets at positions l+1..2l-1.
            double expected = NaivePerplexity(reference, chunks[j].Concat(chunks[i]).ToArray(), l + 1);
            Assert.That(m.PairPpl[k], Is.EqualTo(expected).Within(1e-5).Percent, $"pair_ppl({i}, {j})");
            Assert.That(m.PairPpl[k], Is.Not.EqualTo(m.SinglePpl[i]).Within(1e-9), "the prefix changes the perplexity");
        }
    }

    [Test]
    public void ProLong_IsBitwiseIdenticalAcrossThreadCounts()
    {
        var weights = TinyModels.Create(seed: 202);
        const int l = 16, count = 10;
        var chunks = Enumerable.Range(0, count).Select(i => TinyModels.RandomTokens(400 + i, l, 256)).ToArray();
        var pairs = new List<ChunkPair>();
        for (int i = 0; i < count; i++)
            for (int j = 0; j < i; j++) pairs.Add(new ChunkPair(i, j));

        using var p1 = new CpuProLongProbe(new CpuForward(weights, maxThreads: 1));
        using var p4 = new CpuProLongProbe(new CpuForward(weights, maxThreads: 4)); // 10 chunks ≥ 2 × 4: chunks in parallel
        using var p2 = new CpuProLongProbe(new CpuForward(weights, maxThreads: 2));
        var m1 = p1.Measure(chunks, pairs);
        var m4 = p4.Measure(chunks, pairs);
        var m2 = p2.Measure(chunks[..3], pairs.Where(p => p.I < 3).ToList()); // 3 chunks < 2 × 2: each forward threaded
        Assert.That(m4.SinglePpl, Is.EqualTo(m1.SinglePpl));
        Assert.That(m4.PairPpl, Is.EqualTo(m1.PairPpl));
        Assert.That(m2.SinglePpl, Is.EqualTo(m1.SinglePpl[..3]));
        Assert.That(m2.PairPpl, Is.EqualTo(m1.PairPpl.Where((_, k) => pairs[k].I < 3).ToArray()));
        Assert.That(m1.SinglePpl.All(p => p > 1 && double.IsFinite(p)));
    }

    [Test]
    public void ProLong_PairBatches_GiveTheNumbersOfPairsRunOneByOne()
    {
        // Chunk 0 has 6 pairs: batches of 1 (one pair a forward), 4 (4 + 2) and all of them at once.
        var weights = TinyModels.Create(seed: 204, "qwen2", RopeStyle.Halves, qkvBias: true);
        const int l = 12, count = 7;
        var chunks = Enumerable.Range(0, count).Select(i => TinyModels.RandomTokens(500 + i, l, 256)).ToArray();
        var pairs = new List<ChunkPair>();
        for (int i = count - 1; i > 0; i--)
            for (int j = 0; j < i; j += 2) pairs.Add(new ChunkPair(i, j));
        var forward = new CpuForward(weights, maxThreads: 2);
        using var one = new CpuProLongProbe(forward, pairBatchRows: 1);
        using var four = new CpuProLongProbe(forward, pairBatchRows: 4 * l + l / 2);
        using var all = new CpuProLongProbe(forward);
        Assert.That(all.PairBatchRows, Is.EqualTo(CpuProLongProbe.DefaultPairBatchRows));
        var m1 = one.Measure(chunks, pairs);
        var m4 = four.Measure(chunks, pairs);
        var mAll = all.Measure(chunks, pairs);
        Assert.That(m4.PairPpl, Is.EqualTo(m1.PairPpl));
        Assert.That(mAll.PairPpl, Is.EqualTo(m1.PairPpl));
        Assert.That(mAll.SinglePpl, Is.EqualTo(m1.SinglePpl));
        Assert.That(m1.PairPpl.Distinct().Count(), Is.EqualTo(pairs.Count), "every pair has its own perplexity");

        // One thread: chunks' single passes 4 at a time, then their pairs 4 a forward, pairs of different j together.
        var forward1 = new CpuForward(weights, maxThreads: 1);
        using var grouped = new CpuProLongProbe(forward1, pairBatchRows: 4 * l + l / 2);
        using var groupedAll = new CpuProLongProbe(forward1);
        var g4 = grouped.Measure(chunks, pairs);
        var gAll = groupedAll.Measure(chunks, pairs);
        Assert.That(g4.PairPpl, Is.EqualTo(m1.PairPpl));
        Assert.That(g4.SinglePpl, Is.EqualTo(m1.SinglePpl));
        Assert.That(gAll.PairPpl, Is.EqualTo(m1.PairPpl));
        Assert.Throws<ArgumentOutOfRangeException>(() => new CpuProLongProbe(forward, pairBatchRows: 0));
    }

    [Test]
    public void ProLong_BadInput_GivesClearExceptions()
    {
        var weights = TinyModels.Create(seed: 203);
        using var probe = new CpuProLongProbe(new CpuForward(weights));
        var chunks = new[] { new int[8], new int[8], new int[8] };
        var ex = Assert.Throws<ArgumentException>(() => probe.Measure(chunks, [new ChunkPair(1, 1)]));
        Assert.That(ex!.Message, Does.Contain("j < i"));
        Assert.Throws<ArgumentException>(() => probe.Measure(chunks, [new ChunkPair(3, 0)]));
        var uneven = Assert.Throws<ArgumentException>(() => probe.Measure([new int[8], new int[7]], []));
        Assert.That(uneven!.Message, Does.Contain("chunk 1 has 7 tokens"));
        Assert.Throws<ArgumentException>(() => probe.Measure([new int[1]], []));
        var empty = probe.Measure([], []);
        Assert.That(empty.SinglePpl, Is.Empty);
    }
}
