using LongDep.Core.Probes;
using LongDep.Models;

namespace LongDep.Cuda;

/// <summary>Options of the CUDA ProLong probe.</summary>
public sealed record CudaProLongOptions
{
    /// <summary>Pairs run together in one batch (each runs l tokens on top of its cached prefix).</summary>
    public int PairBatch { get; init; } = 128;
}

/// <summary>
/// ProLong's measurement on the GPU (SPEC §3). All chunks of a record run in one batch at positions 0..l−1, each attending
/// only within itself; their per-layer keys and values stay on the GPU. Drawn pairs then run in batches: only chunk i's
/// l tokens, at positions l..2l−1, attending to chunk j's cached keys/values followed by their own (causal) — chunk j is
/// never recomputed. Losses are reduced per chunk or pair on the GPU (loss.cu); only the sums come back. The reuse is
/// refused, as on the CPU, where it would change the numbers (RoPE scaling that depends on the length, a pair past a
/// learned position table).
/// </summary>
public sealed class CudaProLongProbe : IProLongProbe
{
    private const string SinglesHint = "--window";
    private const string PairsHint = "--pair-batch";
    private readonly CudaModel model;
    private readonly CudaProLongOptions options;
    private readonly bool ownsModel;
    // Reused across records while large enough (records are usually the same size).
    private ForwardWorkspace? workspace;
    private DeviceBuffer<float>? kCache;
    private DeviceBuffer<float>? vCache;

    public CudaProLongProbe(CudaModel model, CudaProLongOptions? options = null, bool ownsModel = false)
    {
        this.model = model ?? throw new ArgumentNullException(nameof(model));
        this.options = options ?? new CudaProLongOptions();
        if (this.options.PairBatch < 1) throw new ArgumentOutOfRangeException(nameof(options), this.options.PairBatch, "PairBatch must be at least 1");
        this.ownsModel = ownsModel;
    }

    /// <summary>Uploads <paramref name="weights"/> and returns a probe that owns the resulting model.</summary>
    public static CudaProLongProbe Create(CudaDevice device, ModelWeights weights, CudaModelOptions? modelOptions = null, CudaProLongOptions? options = null) =>
        new(new CudaModel(device, weights, modelOptions), options, ownsModel: true);

    public CudaModel Model => model;

    public ProLongMeasurement Measure(IReadOnlyList<int[]> chunks, IReadOnlyList<ChunkPair> pairs, CancellationToken cancellationToken = default)
    {
        try
        {
            return MeasureCore(chunks, pairs, cancellationToken);
        }
        catch (CudaOutOfMemoryException)
        {
            ReleaseBuffers(); // give the memory back so that a smaller record can still run
            throw;
        }
    }

    private ProLongMeasurement MeasureCore(IReadOnlyList<int[]> chunks, IReadOnlyList<ChunkPair> pairs, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(chunks);
        ArgumentNullException.ThrowIfNull(pairs);
        var c = model.Config;
        int n = chunks.Count;
        if (n == 0)
        {
            if (pairs.Count > 0) throw new ArgumentException("pairs were given for a record without chunks", nameof(pairs));
            return new ProLongMeasurement([], pairs, []);
        }
        int l = chunks[0]?.Length ?? throw new ArgumentException("chunk 0 is null", nameof(chunks));
        if (l < 2) throw new ArgumentException($"chunks must hold at least 2 tokens (the first token is never scored); got {l}", nameof(chunks));
        for (int i = 0; i < n; i++)
        {
            if (chunks[i] is null || chunks[i].Length != l)
                throw new ArgumentException($"chunk {i} has {chunks[i]?.Length ?? 0} tokens; every chunk must have l = {l}", nameof(chunks));
            TokenChecks.CheckTokens(chunks[i], c.VocabSize, $"chunk {i}");
        }
        for (int p = 0; p < pairs.Count; p++)
        {
            var (i, j) = (pairs[p].I, pairs[p].J);
            if (i < 0 || i >= n || j < 0 || j >= i)
                throw new ArgumentException($"pair {p} = (i {i}, j {j}) must satisfy 0 <= j < i < {n}", nameof(pairs));
        }
        if (pairs.Count > 0) LongDep.Models.Cpu.CpuProLongProbe.CheckPrefixReuse(c, l);
        model.CheckPositions(l, "a smaller --chunk");
        long singleRows = (long)n * l;
        if (singleRows > int.MaxValue / 2) throw new ArgumentException($"{n} chunks of {l} tokens are too many for one batch");
        int batch = Math.Min(options.PairBatch, Math.Max(1, pairs.Count));
        if ((long)batch * l > int.MaxValue / 2) throw new ArgumentException($"a pair batch of {batch} x {l} tokens is too large");
        int capacity = (int)Math.Max(singleRows, (long)batch * l);

        var backend = model.Backend;
        var ops = model.Ops;
        if (workspace is null || workspace.Capacity < capacity)
        {
            workspace?.Dispose();
            workspace = null;
            workspace = new ForwardWorkspace(model, capacity, $"ProLong activations ({n} chunks x {l} tokens, pair batch {batch})",
                singleRows >= (long)batch * l ? SinglesHint : PairsHint, withLoss: true);
        }
        var ws = workspace;
        long cacheLayer = singleRows * c.KvDim;
        if (kCache is null || vCache is null || kCache.Length < cacheLayer * c.Layers)
        {
            kCache?.Dispose();
            vCache?.Dispose();
            kCache = vCache = null;
            kCache = backend.Allocate<float>(cacheLayer * c.Layers, $"ProLong key cache ({n} chunks x {l} tokens x {c.Layers} layers)", SinglesHint);
            vCache = backend.Allocate<float>(cacheLayer * c.Layers, $"ProLong value cache ({n} chunks x {l} tokens x {c.Layers} layers)", SinglesHint);
        }
        var keys = kCache;
        var values = vCache;
        int maxSegments = Math.Max(n, batch);
        using var segStart = backend.Allocate<int>(maxSegments, "ProLong segment table", PairsHint);
        using var segLen = backend.Allocate<int>(maxSegments, "ProLong segment table", PairsHint);
        using var segSum = backend.Allocate<double>(maxSegments, "ProLong segment losses", PairsHint);
        using var segCount = backend.Allocate<int>(maxSegments, "ProLong segment losses", PairsHint);
        using var prefixStart = backend.Allocate<int>(batch, "ProLong prefix table", PairsHint);

        // Singles: every chunk alone at positions 0..l-1, in one block-diagonal batch; keep each layer's K/V.
        var single = new double[n];
        using (backend.Range("prolong singles"))
        {
            UploadBatch(ws, segStart, segLen, Enumerable.Range(0, n).Select(i => chunks[i]).ToList(), positionOffset: 0);
            model.PrepareRope(l);
            model.Embed(ws, (int)singleRows);
            for (int layer = 0; layer < c.Layers; layer++)
            {
                cancellationToken.ThrowIfCancellationRequested();
                using var _ = backend.Range($"forward layer {layer}");
                var k = keys.At(layer * cacheLayer);
                var v = values.At(layer * cacheLayer);
                model.ProjectQkv(layer, ws, (int)singleRows, k, v);
                model.AttendAndFeedForward(layer, ws, n, l, k, v, 0, DevicePtr.Null, DevicePtr.Null, DevicePtr.Null);
            }
            Perplexities(ws, (int)singleRows, n, segStart, segLen, segSum, segCount, single);
        }

        // Pairs: chunk i's tokens at positions l..2l-1 over chunk j's cached K/V.
        var pairPpl = new double[pairs.Count];
        for (int p0 = 0; p0 < pairs.Count; p0 += batch)
        {
            cancellationToken.ThrowIfCancellationRequested();
            int count = Math.Min(batch, pairs.Count - p0);
            int rows = count * l;
            using var _ = backend.Range($"prolong pairs {p0}..{p0 + count - 1}");
            var batchChunks = new List<int[]>(count);
            var starts = new int[count];
            for (int b = 0; b < count; b++)
            {
                batchChunks.Add(chunks[pairs[p0 + b].I]);
                starts[b] = pairs[p0 + b].J * l;
            }
            UploadBatch(ws, segStart, segLen, batchChunks, positionOffset: l);
            prefixStart.CopyFrom(starts);
            model.PrepareRope(2 * l); // the same tables as the singles' (CheckPrefixReuse)
            model.Embed(ws, rows);
            for (int layer = 0; layer < c.Layers; layer++)
            {
                cancellationToken.ThrowIfCancellationRequested();
                using var __ = backend.Range($"forward layer {layer}");
                model.ProjectQkv(layer, ws, rows, ws.K.Pointer, ws.V.Pointer);
                model.AttendAndFeedForward(layer, ws, count, l, ws.K.Pointer, ws.V.Pointer,
                    l, keys.At(layer * cacheLayer), values.At(layer * cacheLayer), prefixStart.Pointer);
            }
            var result = new double[count];
            Perplexities(ws, rows, count, segStart, segLen, segSum, segCount, result);
            result.CopyTo(pairPpl, p0);
        }
        return new ProLongMeasurement(single, pairs, pairPpl);
    }

    /// <summary>
    /// Uploads a batch of chunks (tokens, positions offset + 0..l−1, targets = next token within the chunk, −1 for the
    /// chunk's last row) and one loss segment per chunk.
    /// </summary>
    private static void UploadBatch(ForwardWorkspace ws, DeviceBuffer<int> segStart, DeviceBuffer<int> segLen, IReadOnlyList<int[]> batch,
        int positionOffset)
    {
        int l = batch[0].Length;
        int rows = batch.Count * l;
        var tokens = new int[rows];
        var positions = new int[rows];
        var targets = new int[rows];
        var starts = new int[batch.Count];
        var lens = new int[batch.Count];
        for (int b = 0; b < batch.Count; b++)
        {
            var chunk = batch[b];
            for (int t = 0; t < l; t++)
            {
                int r = b * l + t;
                tokens[r] = chunk[t];
                positions[r] = positionOffset + t;
                targets[r] = t + 1 < l ? chunk[t + 1] : -1;
            }
            starts[b] = b * l;
            lens[b] = l;
        }
        ws.Tokens.CopyFrom(tokens);
        ws.Positions.CopyFrom(positions);
        ws.Targets!.CopyFrom(targets);
        segStart.CopyFrom(starts);
        segLen.CopyFrom(lens);
    }

    /// <summary>exp(mean NLL) of each segment: output head and loss on the GPU, segment sums back to the host.</summary>
    private void Perplexities(ForwardWorkspace ws, int rows, int segments, DeviceBuffer<int> segStart, DeviceBuffer<int> segLen,
        DeviceBuffer<double> segSum, DeviceBuffer<int> segCount, double[] result)
    {
        var backend = model.Backend;
        using (backend.Range("loss"))
        {
            model.OutputNll(ws, rows);
            model.Ops.LossSegmentSum(ws.Nll!.Pointer, ws.Targets!.Pointer, segStart.Pointer, segLen.Pointer, segSum.Pointer,
                segCount.Pointer, segments);
        }
        var sums = new double[segments];
        var counts = new int[segments];
        using (backend.Range("d2h"))
        {
            segSum.CopyTo(sums);
            segCount.CopyTo(counts);
        }
        for (int s = 0; s < segments; s++)
            result[s] = counts[s] > 0 ? Math.Exp(sums[s] / counts[s]) : double.NaN;
    }

    private void ReleaseBuffers()
    {
        workspace?.Dispose();
        kCache?.Dispose();
        vCache?.Dispose();
        workspace = null;
        kCache = vCache = null;
    }

    public void Dispose()
    {
        ReleaseBuffers();
        if (ownsModel) model.Dispose();
    }
}
