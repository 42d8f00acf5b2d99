using LongDep.Core.Probes;

namespace LongDep.Core.Scoring;

/// <summary>
/// xoshiro256** seeded through SplitMix64: small, fast and fully ours, so a draw depends only on its key
/// (seed, record index, stream) — never on threads, batch size or processing order.
/// </summary>
public struct DrawRng
{
    private ulong _s0, _s1, _s2, _s3;

    /// <summary>Creates the generator of one (seed, record index, stream) key.</summary>
    public DrawRng(long seed, long index, ulong stream)
    {
        ulong key = SplitMix64Mix((ulong)seed + 0x9E3779B97F4A7C15UL);
        key = SplitMix64Mix(key ^ (ulong)index);
        key = SplitMix64Mix(key ^ stream);
        ulong x = key;
        _s0 = SplitMix64Next(ref x);
        _s1 = SplitMix64Next(ref x);
        _s2 = SplitMix64Next(ref x);
        _s3 = SplitMix64Next(ref x);
    }

    /// <summary>Next 64 random bits.</summary>
    public ulong NextUInt64()
    {
        ulong result = ulong.RotateLeft(_s1 * 5, 7) * 9;
        ulong t = _s1 << 17;
        _s2 ^= _s0;
        _s3 ^= _s1;
        _s1 ^= _s2;
        _s0 ^= _s3;
        _s2 ^= t;
        _s3 = ulong.RotateLeft(_s3, 45);
        return result;
    }

    /// <summary>Uniform integer in [0, bound), unbiased (Lemire's multiply-and-reject).</summary>
    public ulong NextBelow(ulong bound)
    {
        ArgumentOutOfRangeException.ThrowIfZero(bound);
        ulong high = Math.BigMul(NextUInt64(), bound, out ulong low);
        if (low < bound)
        {
            ulong threshold = (0 - bound) % bound;
            while (low < threshold)
                high = Math.BigMul(NextUInt64(), bound, out low);
        }
        return high;
    }

    private static ulong SplitMix64Next(ref ulong x)
    {
        x += 0x9E3779B97F4A7C15UL;
        return SplitMix64Mix(x);
    }

    private static ulong SplitMix64Mix(ulong z)
    {
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }
}

/// <summary>
/// ProLong's seeded draws (SPEC §3): which chunks of a long record are kept and which chunk pairs are scored.
/// Chunks and pairs use different streams of the same (seed, record index) key.
/// </summary>
public static class Draws
{
    /// <summary>Stream id of the chunk draw.</summary>
    public const ulong ChunkStream = 0x43484E4B; // "CHNK"
    /// <summary>Stream id of the pair draw.</summary>
    public const ulong PairStream = 0x50414952; // "PAIR"

    /// <summary>
    /// Indices of <paramref name="n"/> of <paramref name="chunkCount"/> chunks, drawn without replacement and sorted
    /// (document order). When chunkCount ≤ n every chunk is kept: 0 .. chunkCount−1.
    /// </summary>
    public static int[] Chunks(int chunkCount, int n, long seed, long index)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(chunkCount);
        ArgumentOutOfRangeException.ThrowIfNegative(n);
        if (chunkCount <= n)
            return Enumerable.Range(0, chunkCount).ToArray();

        var rng = new DrawRng(seed, index, ChunkStream);
        long[] drawn = SampleSorted(chunkCount, n, ref rng);
        var result = new int[n];
        for (int k = 0; k < n; k++) result[k] = (int)drawn[k];
        return result;
    }

    /// <summary>
    /// The pairs (i, j), j &lt; i &lt; <paramref name="n"/>, to score: all of them when <paramref name="maxPairs"/> is −1
    /// or at least n(n−1)/2, else maxPairs drawn without replacement. Sorted by i, then j.
    /// </summary>
    public static ChunkPair[] Pairs(int n, int maxPairs, long seed, long index)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(n);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxPairs, -1);
        long total = (long)n * (n - 1) / 2;
        if (total == 0) return [];

        long[] codes;
        if (maxPairs < 0 || maxPairs >= total)
        {
            if (total > Array.MaxLength)
                throw new ArgumentOutOfRangeException(nameof(n), $"{n} chunks have {total} pairs, too many to list; draw a number of pairs instead.");
            codes = new long[total];
            for (long k = 0; k < total; k++) codes[k] = k;
        }
        else
        {
            var rng = new DrawRng(seed, index, PairStream);
            codes = SampleSorted(total, maxPairs, ref rng);
        }

        var pairs = new ChunkPair[codes.Length];
        for (int k = 0; k < codes.Length; k++) pairs[k] = DecodePair(codes[k]);
        return pairs;
    }

    /// <summary>Pair code k = i(i−1)/2 + j: codes ascend with (i, j) in lexicographic order.</summary>
    internal static ChunkPair DecodePair(long code)
    {
        long i = (long)((1 + Math.Sqrt(1 + 8.0 * code)) / 2);
        while (i * (i - 1) / 2 > code) i--;
        while ((i + 1) * i / 2 <= code) i++;
        return new ChunkPair((int)i, (int)(code - i * (i - 1) / 2));
    }

    /// <summary>
    /// <paramref name="count"/> distinct values of [0, population) drawn uniformly (Floyd's algorithm: exactly
    /// count draws, memory O(count) whatever the population), returned sorted.
    /// </summary>
    private static long[] SampleSorted(long population, int count, ref DrawRng rng)
    {
        var chosen = new HashSet<long>(count);
        for (long j = population - count; j < population; j++)
        {
            long t = (long)rng.NextBelow((ulong)j + 1);
            chosen.Add(chosen.Contains(t) ? j : t);
        }
        long[] result = [.. chosen];
        Array.Sort(result);
        return result;
    }
}
