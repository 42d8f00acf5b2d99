using LongDep.Core.Probes;
using LongDep.Models;

namespace LongDep.Cuda;

/// <summary>Options of the CUDA LADM probe.</summary>
public sealed record CudaLadmOptions
{
    /// <summary>Bytes of the per-span key-column buffer (spans × T floats); spans are processed in groups that fit.</summary>
    public long ColumnBufferBytes { get; init; } = 64L << 20;

    /// <summary>
    /// Pass 2 computes every key column before each span, not only the 16-key tiles the PFS windows sum
    /// (<see cref="PfsKeyTiles"/>): the same PFS values for more work; for comparisons.
    /// </summary>
    public bool EveryKeyColumn { get; init; }
}

/// <summary>
/// LADM's measurement on the GPU (SPEC §2): one sample at a time, every layer's PFS through the fused span-sum kernels
/// (pfs.cu); the span's attention matrix never exists, memory is linear in T. Pass 2 computes only the key columns the
/// PFS windows sum (<see cref="PfsKeyTiles"/>), and on a sliding-window layer only those some row of the span sees. The
/// scores are the model's own: its scale, soft-cap and each layer's window (<see cref="CudaModel.Scores"/>). The last
/// layer needs only its q and k, so its attention output, feed-forward and the output head are skipped.
/// </summary>
public sealed class CudaLadmProbe : ILadmProbe
{
    private const string Hint = "--window";
    private readonly CudaModel model;
    private readonly bool ownsModel;
    private readonly CudaLadmOptions options;
    private ForwardWorkspace? workspace;

    public CudaLadmProbe(CudaModel model, CudaLadmOptions? options = null, bool ownsModel = false)
    {
        this.model = model ?? throw new ArgumentNullException(nameof(model));
        this.options = options ?? new CudaLadmOptions();
        this.ownsModel = ownsModel;
        if (this.options.ColumnBufferBytes < 4) throw new ArgumentOutOfRangeException(nameof(options), "ColumnBufferBytes must be positive");
    }

    /// <summary>Uploads <paramref name="weights"/> and returns a probe that owns the resulting model.</summary>
    public static CudaLadmProbe Create(CudaDevice device, ModelWeights weights, CudaModelOptions? modelOptions = null, CudaLadmOptions? options = null) =>
        new(new CudaModel(device, weights, modelOptions), options, ownsModel: true);

    public CudaModel Model => model;

    public LadmMeasurement Measure(ReadOnlySpan<int> tokens, LadmSchedule schedule, CancellationToken cancellationToken = default)
    {
        try
        {
            return MeasureCore(tokens, schedule, cancellationToken);
        }
        catch (CudaOutOfMemoryException)
        {
            workspace?.Dispose(); // give the memory back so that a shorter sample can still run
            workspace = null;
            throw;
        }
    }

    private LadmMeasurement MeasureCore(ReadOnlySpan<int> tokens, LadmSchedule schedule, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(schedule);
        var c = model.Config;
        int T = tokens.Length;
        if (T != schedule.T)
            throw new ArgumentException($"the sample has {T} tokens but the schedule was built for T = {schedule.T}", nameof(tokens));
        var spans = schedule.Spans;
        var pfs = new double[c.Layers][][];
        if (spans.Count == 0)
        {
            for (int l = 0; l < c.Layers; l++) pfs[l] = [];
            return new LadmMeasurement(schedule, pfs);
        }
        TokenChecks.CheckTokens(tokens, c.VocabSize, "sample");
        model.CheckPositions(T, "a shorter --window");
        var plan = SpanPlan.Build(spans, T, options.ColumnBufferBytes);
        var windows = Enumerable.Range(0, c.Layers).Select(l => model.Scores(l).Window).Distinct().ToArray();

        var backend = model.Backend;
        var ops = model.Ops;
        if (workspace is null || workspace.Capacity < T)
        {
            workspace?.Dispose();
            workspace = null;
            workspace = new ForwardWorkspace(model, T, $"LADM activations for T = {T}", Hint);
        }
        var ws = workspace;

        using var spanStart = backend.Allocate<int>(spans.Count, "LADM span table", Hint);
        using var spanEnd = backend.Allocate<int>(spans.Count, "LADM span table", Hint);
        using var itemSpan = backend.Allocate<int>(plan.Items, "LADM interval table", Hint);
        using var itemLo = backend.Allocate<int>(plan.Items, "LADM interval table", Hint);
        using var itemHi = backend.Allocate<int>(plan.Items, "LADM interval table", Hint);
        using var rowMax = backend.Allocate<float>((long)plan.GroupSize * c.Heads * plan.MaxSpanLen, "LADM softmax statistics", Hint);
        using var rowSum = backend.Allocate<float>((long)plan.GroupSize * c.Heads * plan.MaxSpanLen, "LADM softmax statistics", Hint);
        using var col = backend.Allocate<float>((long)plan.GroupSize * T, "LADM key-column mass", Hint);
        using var pfsDevice = backend.Allocate<double>((long)c.Layers * plan.Items, "LADM PFS values", Hint);
        // Pass 2's tile list per distinct window of the model's layers (0: every layer's without one).
        var tileLists = new Dictionary<int, (TileList Tiles, DeviceBuffer<int> Device)>();
        using var freeTileLists = new DisposableList();
        foreach (int w in windows)
        {
            var tiles = plan.TilesFor(w);
            tileLists[w] = (tiles, freeTileLists.Add(backend.Allocate<int>(tiles.Rows.Length, "LADM key-tile list", Hint)));
        }

        using (backend.Range("h2d"))
        {
            ws.Tokens.CopyFrom(tokens);
            var positions = new int[T];
            for (int t = 0; t < T; t++) positions[t] = t;
            ws.Positions.CopyFrom(positions);
            spanStart.CopyFrom(plan.SpanStart);
            spanEnd.CopyFrom(plan.SpanEnd);
            itemSpan.CopyFrom(plan.ItemSpanInGroup);
            itemLo.CopyFrom(plan.ItemLo);
            itemHi.CopyFrom(plan.ItemHi);
            foreach (var (tiles, device) in tileLists.Values) device.CopyFrom(tiles.Rows);
        }
        model.PrepareRope(T);

        // With the wide kernels the layer's keys and values are packed as f16 once, before PFS: pass 1 and the attention
        // both read the packed keys.
        bool packed = ops.UsesPackedPfs(T, c.KvHeads, c.HeadDim, ws.KvHalf);
        model.Embed(ws, T);
        for (int layer = 0; layer < c.Layers; layer++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            bool last = layer == c.Layers - 1;
            using (backend.Range($"forward layer {layer}"))
            {
                model.ProjectQkv(layer, ws, T, ws.K.Pointer, last ? DevicePtr.Null : ws.V.Pointer);
                // The last layer has no values (nor attention): its keys stand in for them.
                if (packed) ops.PackKv(ws.K.Pointer, last ? ws.K.Pointer : ws.V.Pointer, ws.KvHalf!, 1, T, c.KvHeads, c.HeadDim);
            }
            using (backend.Range($"pfs layer {layer}"))
            {
                var scores = model.Scores(layer);
                var (tiles, tileList) = tileLists[scores.Window];
                foreach (var g in plan.Groups)
                {
                    col.Clear(0, (long)g.SpanCount * T);
                    if (packed)
                        ops.PfsRowStatsPacked(ws.Q.Pointer, ws.KvHalf!, T, spanStart.At(g.FirstSpan), spanEnd.At(g.FirstSpan),
                            rowMax.Pointer, rowSum.Pointer, g.SpanCount, plan.MaxSpanLen, c.Heads, c.KvHeads, c.HeadDim, scores);
                    else
                        ops.PfsRowStats(ws.Q.Pointer, ws.K.Pointer, spanStart.At(g.FirstSpan), spanEnd.At(g.FirstSpan),
                            rowMax.Pointer, rowSum.Pointer, g.SpanCount, plan.MaxSpanLen, c.Heads, c.KvHeads, c.HeadDim, scores);
                    // Only the key columns the group's windows sum (a quarter of them with d_afs = 4) and its rows see.
                    ops.PfsColumnMass(ws.Q.Pointer, ws.K.Pointer, spanStart.At(g.FirstSpan), spanEnd.At(g.FirstSpan),
                        rowMax.Pointer, rowSum.Pointer, col.Pointer,
                        options.EveryKeyColumn ? DevicePtr.Null : tileList.At((long)g.FirstSpan * tiles.Stride), tiles.Stride,
                        g.MostTiles(tiles), g.SpanCount, plan.MaxSpanLen, g.MaxStart, T, c.Heads, c.KvHeads, c.HeadDim, scores);
                    ops.PfsWindowSum(col.Pointer, itemSpan.At(g.FirstItem), itemLo.At(g.FirstItem), itemHi.At(g.FirstItem),
                        pfsDevice.At((long)layer * plan.Items + g.FirstItem), g.ItemCount, T);
                }
            }
            if (!last)
            {
                using (backend.Range($"forward layer {layer} attention+ffn"))
                    model.AttendAndFeedForward(layer, ws, 1, T, ws.K.Pointer, ws.V.Pointer, 0, DevicePtr.Null, DevicePtr.Null, DevicePtr.Null,
                        kvPacked: packed);
            }
        }

        var flat = new double[(long)c.Layers * plan.Items];
        using (backend.Range("d2h"))
            pfsDevice.CopyTo(flat);
        for (int layer = 0; layer < c.Layers; layer++)
        {
            var perSpan = new double[spans.Count][];
            int at = layer * plan.Items;
            for (int s = 0; s < spans.Count; s++)
            {
                perSpan[s] = flat.AsSpan(at, spans[s].Intervals.Length).ToArray();
                at += spans[s].Intervals.Length;
            }
            pfs[layer] = perSpan;
        }
        return new LadmMeasurement(schedule, pfs);
    }

    public void Dispose()
    {
        workspace?.Dispose();
        workspace = null;
        if (ownsModel) model.Dispose();
    }

    /// <summary>The span and interval tables of one sample, and their split into groups whose key columns fit the buffer.</summary>
    internal sealed class SpanPlan
    {
        public required int[] SpanStart { get; init; }
        public required int[] SpanEnd { get; init; }
        public required int[] ItemSpanInGroup { get; init; }
        public required int[] ItemLo { get; init; }
        public required int[] ItemHi { get; init; }
        public required int MaxSpanLen { get; init; }
        public required int GroupSize { get; init; }
        public required IReadOnlyList<Group> Groups { get; init; }
        /// <summary>Pass 2's tile list (<see cref="PfsKeyTiles.List"/>), one row per span of the sample.</summary>
        public required TileList Tiles { get; init; }
        /// <summary>The mask <see cref="Tiles"/> lists (<see cref="PfsKeyTiles.Build(IReadOnlyList{LadmSpan}, int)"/>).</summary>
        public required uint[] Mask { get; init; }
        public required int T { get; init; }
        public int Items => ItemLo.Length;

        /// <summary>
        /// The tile list of a layer with a sliding window of <paramref name="window"/> keys (0: none, <see cref="Tiles"/>):
        /// without the tiles no row of the span sees (<see cref="PfsKeyTiles.WithinWindow"/>), whose columns stay 0.
        /// </summary>
        public TileList TilesFor(int window) =>
            window <= 0 ? Tiles : PfsKeyTiles.List(PfsKeyTiles.WithinWindow(Mask, SpanStart, T, window), SpanStart, T);

        internal readonly record struct Group(int FirstSpan, int SpanCount, int FirstItem, int ItemCount, int MaxStart)
        {
            /// <summary>The most listed tiles of one of the group's spans.</summary>
            public int MostTiles(TileList tiles)
            {
                int most = 0;
                for (int s = FirstSpan; s < FirstSpan + SpanCount; s++) most = Math.Max(most, tiles.Rows[s * tiles.Stride]);
                return most;
            }
        }

        public static SpanPlan Build(IReadOnlyList<LadmSpan> spans, int T, long columnBufferBytes)
        {
            int maxSpanLen = 0;
            var starts = new int[spans.Count];
            var ends = new int[spans.Count];
            for (int s = 0; s < spans.Count; s++)
            {
                var span = spans[s];
                if (span.Start <= 0 || span.End <= span.Start || span.End > T)
                    throw new ArgumentException($"span {s} = [{span.Start}, {span.End}) is not a non-empty range with 0 < start and end <= T = {T}");
                foreach (int iv in span.Intervals)
                    if (iv <= 0 || iv > span.Start)
                        throw new ArgumentException($"span {s} has interval {iv}, outside 1..{span.Start}");
                starts[s] = span.Start;
                ends[s] = span.End;
                maxSpanLen = Math.Max(maxSpanLen, span.End - span.Start);
            }
            int groupSize = (int)Math.Clamp(columnBufferBytes / ((long)T * sizeof(float)), 1, Math.Min(65535, spans.Count));
            var mask = PfsKeyTiles.Build(spans, T);
            var itemSpan = new List<int>();
            var lo = new List<int>();
            var hi = new List<int>();
            var groups = new List<Group>();
            for (int g0 = 0; g0 < spans.Count; g0 += groupSize)
            {
                int count = Math.Min(groupSize, spans.Count - g0);
                int firstItem = lo.Count;
                int maxStart = 0;
                for (int s = g0; s < g0 + count; s++)
                {
                    maxStart = Math.Max(maxStart, starts[s]);
                    foreach (int iv in spans[s].Intervals)
                    {
                        itemSpan.Add(s - g0);
                        lo.Add(starts[s] - iv);
                        hi.Add(ends[s] - iv);
                    }
                }
                groups.Add(new Group(g0, count, firstItem, lo.Count - firstItem, maxStart));
            }
            return new SpanPlan
            {
                SpanStart = starts, SpanEnd = ends, ItemSpanInGroup = itemSpan.ToArray(), ItemLo = lo.ToArray(), ItemHi = hi.ToArray(),
                MaxSpanLen = maxSpanLen, GroupSize = groupSize, Groups = groups, Mask = mask, T = T,
                Tiles = PfsKeyTiles.List(mask, starts, T),
            };
        }
    }
}

/// <summary>Device buffers freed together.</summary>
internal sealed class DisposableList : IDisposable
{
    private readonly List<IDisposable> items = [];

    public T Add<T>(T item) where T : IDisposable
    {
        items.Add(item);
        return item;
    }

    public void Dispose()
    {
        for (int i = items.Count - 1; i >= 0; i--) items[i].Dispose();
        items.Clear();
    }
}

internal static class TokenChecks
{
    /// <summary>Throws <see cref="ArgumentException"/> naming the first token outside [0, vocab).</summary>
    public static void CheckTokens(ReadOnlySpan<int> tokens, int vocab, string what)
    {
        for (int i = 0; i < tokens.Length; i++)
            if ((uint)tokens[i] >= (uint)vocab)
                throw new ArgumentException($"{what}: token {tokens[i]} at position {i} is outside the model's vocabulary 0..{vocab - 1}");
    }
}
