using System.Collections.Concurrent;
using LongDep.Core.Probes;

namespace LongDep.Models.Cpu;

/// <summary>
/// ProLong's measurement on the CPU (SPEC §3). single_ppl[j]: chunk j alone at positions 0..l−1, perplexity of
/// its tokens 2..l. pair_ppl(i, j): chunk i's l tokens at positions l..2l−1 on top of chunk j's cached keys and
/// values (kept from chunk j's single pass, never recomputed), perplexity of chunk i's tokens 2..l; chunk i's first
/// token is not scored. The chunks' single passes run together, up to <see cref="PairBatchRows"/> rows a forward, each
/// chunk's cache kept; then the pairs that share chunk j, again up to that many rows a forward
/// (<see cref="CpuForward.SequencesNll(ReadOnlySpan{int}, ReadOnlySpan{int}, int, KvCache?, CancellationToken)"/>: each
/// pair attends to the shared prefix and its own rows), so every weight block is converted once per batch and the
/// matrix products are tall. Means and exponents in float64. Each pair's
/// numbers are those of running it alone, so results do not depend on the batching or on how the work is spread over
/// threads.
/// </summary>
public sealed class CpuProLongProbe : IProLongProbe
{
    /// <summary>Rows of pairs one forward runs by default: 16 pairs of 128-token chunks.</summary>
    public const int DefaultPairBatchRows = 2048;

    /// <summary>Weights up to this size run chunks in parallel (see <see cref="Measure"/>).</summary>
    private const long SmallModelBytes = 16L << 20;

    /// <summary>Most bytes of chunk caches kept at once when single passes run together.</summary>
    private const long MaxGroupCacheBytes = 512L << 20;

    private readonly CpuForward _forward;

    /// <summary>
    /// Measures with <paramref name="forward"/>'s model and thread limit, running up to <paramref name="pairBatchRows"/>
    /// rows of pairs in one forward (at least one pair).
    /// </summary>
    public CpuProLongProbe(CpuForward forward, int pairBatchRows = DefaultPairBatchRows)
    {
        ArgumentNullException.ThrowIfNull(forward);
        ArgumentOutOfRangeException.ThrowIfLessThan(pairBatchRows, 1);
        _forward = forward;
        PairBatchRows = pairBatchRows;
    }

    /// <summary>Most rows of pairs one forward runs (whole pairs; at least one).</summary>
    public int PairBatchRows { get; }

    /// <inheritdoc />
    public ProLongMeasurement Measure(IReadOnlyList<int[]> chunks, IReadOnlyList<ChunkPair> pairs, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(chunks);
        ArgumentNullException.ThrowIfNull(pairs);
        int count = chunks.Count;
        int l = count > 0 ? chunks[0]?.Length ?? 0 : 0;
        for (int j = 0; j < count; j++)
        {
            if (chunks[j] is null)
                throw new ArgumentException($"chunk {j} is null; pass {count} chunks of equal length", nameof(chunks));
            if (chunks[j].Length != l)
                throw new ArgumentException($"chunk {j} has {chunks[j].Length} tokens but chunk 0 has {l}; every chunk must have exactly l tokens", nameof(chunks));
        }
        if (count > 0 && l < 2)
            throw new ArgumentException($"chunks have {l} token(s); at least 2 are needed to score tokens 2..l", nameof(chunks));

        var byJ = new List<int>[count];
        for (int j = 0; j < count; j++) byJ[j] = [];
        for (int k = 0; k < pairs.Count; k++)
        {
            var (i, j) = (pairs[k].I, pairs[k].J);
            if (j < 0 || j >= i || i >= count)
                throw new ArgumentException($"pair {k} = (i {i}, j {j}) is invalid: need 0 <= j < i < {count} (the chunk count)", nameof(pairs));
            byJ[j].Add(k);
        }

        if (pairs.Count > 0) CheckPrefixReuse(_forward.Config, l);

        var single = new double[count];
        var pairPpl = new double[pairs.Count];
        var targets = new int[count][];
        for (int j = 0; j < count; j++) targets[j] = ShiftedTargets(chunks[j]);

        // A model whose weights fit the caches, with many chunks: one chunk (its single pass, then its pairs (·, j) on its
        // cache) per thread, the busiest first, so that at most one cache per thread is alive; there the per-operation
        // threading costs more than it saves. Otherwise one chunk at a time, each forward multi-threaded: the threads
        // share every converted weight block (chunks in parallel would each stream all the weights, twice as slow).
        bool outer = _forward.MaxThreads > 1 && count >= 2 * _forward.MaxThreads && _forward.Weights.ByteSize <= SmallModelBytes;
        var forward = outer ? _forward.WithMaxThreads(1) : _forward;
        int perBatch = Math.Max(1, PairBatchRows / Math.Max(1, l));
        void Work(int j)
        {
            var nll = forward.TokenNll(chunks[j], targets[j], prefix: null, out var cache, keepCache: byJ[j].Count > 0,
                                       cancellationToken: cancellationToken);
            single[j] = Perplexity(nll, 0, l);
            if (cache is not null) Pairs(j, cache);
        }

        void Pairs(int j, KvCache cache)
        {
            var mine = byJ[j];
            for (int b0 = 0; b0 < mine.Count; b0 += perBatch)
            {
                int batch = Math.Min(perBatch, mine.Count - b0);
                var tokens = new int[batch * l];
                var batchTargets = new int[batch * l];
                for (int b = 0; b < batch; b++)
                {
                    int i = pairs[mine[b0 + b]].I;
                    chunks[i].CopyTo(tokens, b * l);
                    targets[i].CopyTo(batchTargets, b * l);
                }
                var pairNll = forward.SequencesNll(tokens, batchTargets, l, cache, cancellationToken);
                for (int b = 0; b < batch; b++) pairPpl[mine[b0 + b]] = Perplexity(pairNll, b * l, l);
            }
        }

        if (outer)
        {
            var order = Enumerable.Range(0, count).OrderByDescending(j => byJ[j].Count).ThenBy(j => j).ToArray();
            var options = new ParallelOptions { MaxDegreeOfParallelism = _forward.MaxThreads, CancellationToken = cancellationToken };
            Parallel.ForEach(Partitioner.Create(order, EnumerablePartitionerOptions.NoBuffering), options, Work);
        }
        else
        {
            // Up to PairBatchRows / l chunks' single passes in one forward (each chunk alone at positions 0..l−1, its cache
            // kept), then each of those chunks' pairs.
            var c = _forward.Config;
            long cacheBytes = 2L * c.Layers * l * c.KvDim * sizeof(float);
            int perGroup = (int)Math.Clamp(MaxGroupCacheBytes / Math.Max(1, cacheBytes), 1, perBatch);
            for (int g0 = 0; g0 < count; g0 += perGroup)
            {
                cancellationToken.ThrowIfCancellationRequested();
                int group = Math.Min(perGroup, count - g0);
                var tokens = new int[group * l];
                var groupTargets = new int[group * l];
                for (int g = 0; g < group; g++)
                {
                    chunks[g0 + g].CopyTo(tokens, g * l);
                    targets[g0 + g].CopyTo(groupTargets, g * l);
                }
                KvCache[]? caches = null;
                var nll = Enumerable.Range(g0, group).Any(j => byJ[j].Count > 0)
                    ? forward.SequencesNll(tokens, groupTargets, l, out caches, cancellationToken)
                    : forward.SequencesNll(tokens, groupTargets, l, prefix: null, cancellationToken);
                for (int g = 0; g < group; g++) single[g0 + g] = Perplexity(nll, g * l, l);
                for (int g = 0; g < group && caches is not null; g++)
                {
                    Pairs(g0 + g, caches[g]);
                    caches[g] = null!; // a chunk's cache is not needed after its pairs
                }
            }
        }
        return new ProLongMeasurement(single, pairs, pairPpl);
    }

    /// <summary>targets[t] = chunk[t + 1] for t &lt; l − 1; the last position predicts nothing.</summary>
    private static int[] ShiftedTargets(int[] chunk)
    {
        var targets = new int[chunk.Length];
        for (int t = 0; t + 1 < chunk.Length; t++) targets[t] = chunk[t + 1];
        targets[^1] = -1;
        return targets;
    }

    /// <summary>exp(mean of nll[start..start+l−2]): the perplexity of tokens 2..l of the sequence at <paramref name="start"/>.</summary>
    private static double Perplexity(double[] nll, int start, int l)
    {
        double sum = 0;
        for (int t = start; t < start + l - 1; t++) sum += nll[t];
        return Math.Exp(sum / (l - 1));
    }

    /// <summary>
    /// Chunk j's keys from its single pass (positions 0..l−1) are reused as the prefix of pair (·, j). That is exact only
    /// when the model rotates a run of l tokens as it rotates one of 2l (dynamic NTK or longrope scaling past the
    /// original context change the frequencies with the length) and when 2l positions fit a learned position table.
    /// </summary>
    /// <exception cref="NotSupportedException">The reuse would change the numbers.</exception>
    public static void CheckPrefixReuse(ModelConfig config, int chunk)
    {
        ArgumentNullException.ThrowIfNull(config);
        if (config.Positions == PositionKind.Learned && config.PositionOffset + 2L * chunk > config.PositionRows)
            throw new NotSupportedException(
                $"a chunk pair of {2L * chunk} tokens exceeds the model's {config.PositionRows - config.PositionOffset} learned positions; use --chunk {(config.PositionRows - config.PositionOffset) / 2} or less");
        if (!RopeFrequencies.SameFor(config, chunk, 2 * chunk))
            throw new NotSupportedException(
                $"the model's RoPE scaling ({config.RopeScaling}) rotates a {2 * chunk}-token pair differently from a {chunk}-token chunk, so a chunk's keys cannot be reused for its pairs; use --chunk {config.RopeScaling.OriginalContext / 2} or less");
    }

    /// <inheritdoc />
    public void Dispose()
    {
    }
}
