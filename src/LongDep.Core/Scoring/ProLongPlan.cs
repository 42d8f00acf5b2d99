using LongDep.Core.Probes;

namespace LongDep.Core.Scoring;

/// <summary>
/// The chunks and pairs of one ProLong record (SPEC §3): consecutive <c>l</c>-token chunks, a final partial chunk
/// dropped; more than N = W / l chunks → N drawn, kept in document order; then the pairs drawn among those.
/// </summary>
public sealed class ProLongPlan
{
    /// <summary>The kept chunks in document order, each exactly <see cref="ChunkLength"/> tokens.</summary>
    public IReadOnlyList<int[]> Chunks { get; }
    /// <summary>Token offset in the record of each kept chunk.</summary>
    public IReadOnlyList<int> ChunkStarts { get; }
    /// <summary>The pairs to score (indices into <see cref="Chunks"/>), sorted by i then j.</summary>
    public IReadOnlyList<ChunkPair> Pairs { get; }
    /// <summary>l.</summary>
    public int ChunkLength { get; }
    /// <summary>N = W / l: the most chunks kept, and DDI's denominator N − 1.</summary>
    public int ChunkCountN { get; }
    /// <summary>Number of whole chunks in the record before the draw.</summary>
    public int TotalChunks { get; }
    /// <summary>Fewer than two chunks: the record is <c>too_short</c>.</summary>
    public bool IsTooShort => Chunks.Count < 2;

    private ProLongPlan(int[][] chunks, int[] starts, ChunkPair[] pairs, int chunkLength, int chunkCountN, int totalChunks)
    {
        Chunks = chunks; ChunkStarts = starts; Pairs = pairs;
        ChunkLength = chunkLength; ChunkCountN = chunkCountN; TotalChunks = totalChunks;
    }

    /// <summary>Builds the plan of the record at <paramref name="index"/>.</summary>
    /// <param name="tokens">The record's token ids.</param>
    /// <param name="window">W.</param>
    /// <param name="chunk">l (at least 2: single_ppl scores tokens 2..l).</param>
    /// <param name="pairs">P, or −1 for all pairs.</param>
    /// <param name="seed">The run's seed.</param>
    /// <param name="index">The record's 0-based input index.</param>
    public static ProLongPlan Create(ReadOnlySpan<int> tokens, int window, int chunk, int pairs, long seed, long index)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(chunk, 2);
        if (window < 2 * chunk)
            throw new ArgumentOutOfRangeException(nameof(window), $"window {window} holds fewer than two chunks of {chunk} tokens; ProLong needs W / l ≥ 2.");
        ArgumentOutOfRangeException.ThrowIfLessThan(pairs, -1);

        int n = window / chunk;
        int total = tokens.Length / chunk;
        int[] kept = Draws.Chunks(total, n, seed, index);
        var chunks = new int[kept.Length][];
        var starts = new int[kept.Length];
        for (int k = 0; k < kept.Length; k++)
        {
            starts[k] = kept[k] * chunk;
            chunks[k] = tokens.Slice(starts[k], chunk).ToArray();
        }
        ChunkPair[] drawn = kept.Length < 2 ? [] : Draws.Pairs(kept.Length, pairs, seed, index);
        return new ProLongPlan(chunks, starts, drawn, chunk, n, total);
    }
}
