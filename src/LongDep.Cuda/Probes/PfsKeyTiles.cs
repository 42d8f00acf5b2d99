using LongDep.Core.Probes;

namespace LongDep.Cuda;

/// <summary>
/// The key tiles of PFS pass 2: a mask, per span one bit per 16-key tile of the sample (<see cref="WordsPerSpan"/> words a
/// span, bit <c>t % 32</c> of word <c>t / 32</c> for keys <c>[16 t, 16 t + 16)</c>), set when one of the span's PFS
/// windows reads a key of that tile; and from it the tile list the kernels take (<see cref="List"/>), whose tiles pass 2's
/// blocks take in order, so that every block computes listed columns only. Pass 2 then computes only the key columns
/// some window sums: with LADM's defaults (128-key windows every 512 keys) one column in four, with d_afs = 2 one in two.
/// The columns it computes are computed exactly as without the list.
/// </summary>
internal static class PfsKeyTiles
{
    /// <summary>Keys per tile: one warp's key tile in the tensor-core pass 2.</summary>
    public const int TileKeys = 16;

    /// <summary>32-bit words per span for a sample of <paramref name="T"/> tokens.</summary>
    public static int WordsPerSpan(int T)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(T);
        return (int)(((long)T + 32 * TileKeys - 1) / (32 * TileKeys));
    }

    /// <summary>The mask of a schedule's spans: span s's windows are <c>[start − iv, end − iv)</c> for each of its intervals.</summary>
    public static uint[] Build(IReadOnlyList<LadmSpan> spans, int T)
    {
        ArgumentNullException.ThrowIfNull(spans);
        var itemSpan = new List<int>();
        var lo = new List<int>();
        var hi = new List<int>();
        for (int s = 0; s < spans.Count; s++)
        {
            foreach (int iv in spans[s].Intervals)
            {
                itemSpan.Add(s);
                lo.Add(spans[s].Start - iv);
                hi.Add(spans[s].End - iv);
            }
        }
        return Build(spans.Count, T, itemSpan.ToArray(), lo.ToArray(), hi.ToArray());
    }

    /// <summary>
    /// The mask for <paramref name="nSpans"/> spans from window items: item i reads keys <c>[itemLo[i], itemHi[i])</c> of
    /// span <c>itemSpan[i]</c>, clipped to <c>[0, T)</c> as <c>pfs_window_sum</c> clips them.
    /// </summary>
    public static uint[] Build(int nSpans, int T, ReadOnlySpan<int> itemSpan, ReadOnlySpan<int> itemLo, ReadOnlySpan<int> itemHi)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(nSpans);
        if (itemLo.Length != itemSpan.Length || itemHi.Length != itemSpan.Length)
            throw new ArgumentException($"item tables of different lengths: {itemSpan.Length} spans, {itemLo.Length} lo, {itemHi.Length} hi");
        int words = WordsPerSpan(T);
        var mask = new uint[(long)nSpans * words];
        for (int i = 0; i < itemSpan.Length; i++)
        {
            int span = itemSpan[i];
            if ((uint)span >= (uint)nSpans) throw new ArgumentException($"item {i} names span {span}, outside 0..{nSpans - 1}");
            int lo = Math.Max(itemLo[i], 0), hi = Math.Min(itemHi[i], T);
            for (int tile = lo / TileKeys; hi > lo && tile <= (hi - 1) / TileKeys; tile++)
                mask[(long)span * words + (tile >> 5)] |= 1u << (tile & 31);
        }
        return mask;
    }

    /// <summary>Whether <paramref name="key"/>'s tile is marked for <paramref name="span"/>; an empty mask marks every tile.</summary>
    public static bool IsMarked(ReadOnlySpan<uint> mask, int span, int T, int key)
    {
        if (mask.IsEmpty) return true;
        int tile = key / TileKeys;
        return ((mask[span * WordsPerSpan(T) + (tile >> 5)] >> (tile & 31)) & 1u) != 0;
    }

    /// <summary>
    /// The tile list pass 2 takes (kernels/common.cuh, <c>pfs_tile_count</c> / <c>pfs_tile</c>): per span a row of
    /// <see cref="TileList.Stride"/> ints, its count n and then its n marked tiles below its start, in increasing order.
    /// </summary>
    public static TileList List(ReadOnlySpan<uint> mask, ReadOnlySpan<int> starts, int T)
    {
        int words = WordsPerSpan(T);
        int nSpans = starts.Length;
        if (mask.Length != (long)nSpans * words)
            throw new ArgumentException($"a mask of {mask.Length} words for {nSpans} spans of {words} words");
        var tiles = new List<int>[nSpans];
        int most = 0;
        for (int s = 0; s < nSpans; s++)
        {
            tiles[s] = [];
            for (int tile = 0; tile * TileKeys < starts[s]; tile++)
                if (((mask[s * words + (tile >> 5)] >> (tile & 31)) & 1u) != 0) tiles[s].Add(tile);
            most = Math.Max(most, tiles[s].Count);
        }
        int stride = most + 1;
        var rows = new int[(long)nSpans * stride];
        for (int s = 0; s < nSpans; s++)
        {
            rows[s * stride] = tiles[s].Count;
            tiles[s].CopyTo(rows, s * stride + 1);
        }
        return new TileList(rows, stride, most);
    }

    /// <summary>
    /// <paramref name="mask"/> without the tiles no row of a span sees on a layer with a sliding window of
    /// <paramref name="window"/> keys: row t sees keys s &gt; t − window, so the span's first row (its start) sees the most,
    /// and a tile whose last key is at most start − window is seen by none. Their columns get no probability mass.
    /// </summary>
    public static uint[] WithinWindow(ReadOnlySpan<uint> mask, ReadOnlySpan<int> starts, int T, int window)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(window);
        int words = WordsPerSpan(T);
        if (mask.Length != (long)starts.Length * words)
            throw new ArgumentException($"a mask of {mask.Length} words for {starts.Length} spans of {words} words");
        var result = mask.ToArray();
        for (int s = 0; s < starts.Length; s++)
        {
            // tiles 0 .. last: every key 16 tile + 15 <= start - window
            int last = (starts[s] - window - (TileKeys - 1)) / TileKeys;
            if (starts[s] - window - (TileKeys - 1) < 0) continue;
            for (int tile = 0; tile <= last; tile++) result[s * words + (tile >> 5)] &= ~(1u << (tile & 31));
        }
        return result;
    }

    /// <summary>The mask of a tile list: the listed tiles of each of its <paramref name="nSpans"/> rows.</summary>
    public static uint[] MaskOf(ReadOnlySpan<int> rows, int stride, int nSpans, int T)
    {
        int words = WordsPerSpan(T);
        int tiles = (T + TileKeys - 1) / TileKeys;
        var mask = new uint[(long)nSpans * words];
        for (int s = 0; s < nSpans; s++)
        {
            int count = rows[s * stride];
            if (count < 0 || count > stride - 1) throw new ArgumentException($"span {s}'s tile list holds {count} tiles in a row of {stride} ints");
            for (int i = 0; i < count; i++)
            {
                int tile = rows[s * stride + 1 + i];
                if ((uint)tile >= (uint)tiles) throw new ArgumentException($"span {s}'s tile list names tile {tile}, outside 0..{tiles - 1}");
                mask[s * words + (tile >> 5)] |= 1u << (tile & 31);
            }
        }
        return mask;
    }

    /// <summary>The key columns pass 2 computes for a span starting at <paramref name="start"/>: keys below it in marked tiles.</summary>
    public static int MarkedKeys(ReadOnlySpan<uint> mask, int span, int T, int start)
    {
        int count = 0;
        for (int key = 0; key < start; key++)
            if (IsMarked(mask, span, T, key)) count++;
        return count;
    }
}

/// <summary>A tile list of <see cref="PfsKeyTiles.List"/>: rows of <paramref name="Stride"/> ints; <paramref name="MostTiles"/> is the longest row's count.</summary>
internal sealed record TileList(int[] Rows, int Stride, int MostTiles);
