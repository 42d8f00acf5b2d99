using System.Runtime.InteropServices;
using LongDep.Models;

namespace LongDep.Cuda;

/// <summary>Options of the CUDA forward.</summary>
public sealed record CudaModelOptions
{
    /// <summary>Element type of the weights and GEMM inputs (accumulation is float32 in every mode).</summary>
    public CudaPrecision Precision { get; init; } = CudaPrecision.F16;
    /// <summary>
    /// Rows of the feed-forward block processed at once; bounds the [rows, FfDim] buffers. Default 4096, or
    /// <see cref="MlpTileRowsEnvironmentVariable"/> when set (to time other heights of the gate/up GEMMs without a rebuild).
    /// </summary>
    public int MlpTileRows { get; init; } = MlpTileRowsFromEnvironment();

    /// <summary>Environment variable that sets the default <see cref="MlpTileRows"/> (1 to 1,048,576).</summary>
    public const string MlpTileRowsEnvironmentVariable = "LONGDEP_MLP_TILE_ROWS";

    /// <summary><see cref="MlpTileRowsEnvironmentVariable"/>'s value, or 4096 when it is unset or empty; anything else is an error naming it.</summary>
    public static int MlpTileRowsFromEnvironment()
    {
        string? value = Environment.GetEnvironmentVariable(MlpTileRowsEnvironmentVariable)?.Trim();
        if (string.IsNullOrEmpty(value)) return 4096;
        if (int.TryParse(value, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int rows)
            && rows is >= 1 and <= 1 << 20)
            return rows;
        throw new ArgumentException($"{MlpTileRowsEnvironmentVariable}: '{value}' is not a row count from 1 to 1048576");
    }
    /// <summary>Bytes of the [rows, vocab] logits tile the loss is computed from.</summary>
    public long LogitsTileBytes { get; init; } = 256L << 20;
    /// <summary>Kernels for attention and PFS: tensor cores (f16 inputs) where the head dimension allows, or the scalar float32 ones.</summary>
    public AttentionKernels Kernels { get; init; } = AttentionKernels.TensorCores;
}

/// <summary>
/// A decoder model resident on the GPU: weights in <see cref="CudaPrecision"/> (norm weights, biases, the learned position
/// table and the RoPE tables in float32/float64), and the forward's building blocks, shared by <see cref="CudaLadmProbe"/> and
/// <see cref="CudaProLongProbe"/>. The math is the CPU forward's (<c>LongDep.Models.Cpu.CpuForward</c>), read from the same
/// block description (<see cref="ModelConfig"/>):
/// <list type="bullet">
/// <item>h = emb[token] · EmbedScale (→ project_in) (+ learned position rows).</item>
/// <item>Per layer: x = Norm(h) (pre/sandwich; RMSNorm or LayerNorm with bias) or h (post); q, k, v = W x (+ b); per-head
/// q/k RMSNorm; RoPE with the layer's frequencies and attention factor; causal GQA attention with the layer's score scale,
/// sliding window and soft-cap; a = Wo o (+ b), RMS-normed and added (sandwich) or added; h = Norm(h) (post). The
/// feed-forward likewise: SwiGLU or GeGLU (gate and up written in <see cref="CudaPrecision"/> by their GEMMs, as the
/// reference model's f16 layers do), or fc2(relu(fc1 x + b1)) + b2.</item>
/// <item>logits = Output · (Norm(h) or h) (→ project_out), soft-capped, then the loss.</item>
/// </list>
/// Models with soft-capped attention scores run attention and PFS on the scalar kernels (<see cref="AttentionKernels.Simple"/>).
/// </summary>
public sealed class CudaModel : IDisposable
{
    internal sealed class LayerTensors : IDisposable
    {
        public required DeviceBuffer<float> AttnNorm { get; init; }
        public DeviceBuffer<float>? AttnNormBias { get; init; }
        public required DeviceBuffer<byte> Wq { get; init; }
        public required DeviceBuffer<byte> Wk { get; init; }
        public required DeviceBuffer<byte> Wv { get; init; }
        public required DeviceBuffer<byte> Wo { get; init; }
        public DeviceBuffer<float>? Bq { get; init; }
        public DeviceBuffer<float>? Bk { get; init; }
        public DeviceBuffer<float>? Bv { get; init; }
        public DeviceBuffer<float>? Bo { get; init; }
        public DeviceBuffer<float>? QNorm { get; init; }
        public DeviceBuffer<float>? KNorm { get; init; }
        public DeviceBuffer<float>? PostAttnNorm { get; init; }
        public required DeviceBuffer<float> FfnNorm { get; init; }
        public DeviceBuffer<float>? FfnNormBias { get; init; }
        public DeviceBuffer<byte>? WGate { get; init; }
        public required DeviceBuffer<byte> WUp { get; init; }
        public required DeviceBuffer<byte> WDown { get; init; }
        public DeviceBuffer<float>? BUp { get; init; }
        public DeviceBuffer<float>? BDown { get; init; }
        public DeviceBuffer<float>? PostFfnNorm { get; init; }

        public void Dispose()
        {
            foreach (var b in new IDisposable?[]
                     {
                         AttnNorm, AttnNormBias, Wq, Wk, Wv, Wo, Bq, Bk, Bv, Bo, QNorm, KNorm, PostAttnNorm, FfnNorm, FfnNormBias, WGate, WUp,
                         WDown, BUp, BDown, PostFfnNorm,
                     })
                b?.Dispose();
        }
    }

    private const string WeightsHint = "the model size (load a smaller model)";
    private readonly List<IDisposable> owned = [];
    private readonly float[] ropeFactor = [];
    private double[][]? ropeUploaded;
    private bool disposed;

    /// <summary>Uploads <paramref name="weights"/> to <paramref name="device"/>.</summary>
    public CudaModel(CudaDevice device, ModelWeights weights, CudaModelOptions? options = null)
        : this(device.Backend, weights, options ?? new CudaModelOptions())
    {
    }

    internal CudaModel(GpuBackend backend, ModelWeights weights, CudaModelOptions options)
    {
        ArgumentNullException.ThrowIfNull(weights);
        weights.Validate("model weights");
        var c = weights.Config;
        if (Unsupported(c) is { } reason)
            throw new NotSupportedException($"{c.Architecture}: {reason}; use --device cpu");
        if (options.MlpTileRows < 1) throw new ArgumentOutOfRangeException(nameof(options), "MlpTileRows must be at least 1");
        if (options.LogitsTileBytes < (long)c.VocabSize * sizeof(float))
            throw new ArgumentOutOfRangeException(nameof(options), $"LogitsTileBytes must hold at least one row of {c.VocabSize} logits");
        Backend = backend;
        Config = c;
        // Soft-capped scores have no tensor-core kernels: such models run attention and PFS on the scalar ones.
        Kernels = KernelsFor(c, options.Kernels);
        Ops = new KernelOps(backend, Kernels);
        Precision = options.Precision;
        Options = options;
        ropeFactor = new float[c.Layers];
        try
        {
            using (backend.Range("h2d weights"))
                Upload(weights);
            if (c.Positions == PositionKind.Rope)
            {
                InvFreq = Own(backend.Allocate<double>((long)c.Layers * (c.HeadDim / 2), "RoPE tables", WeightsHint));
                PrepareRope(c.ContextLength);
            }
            backend.Synchronize();
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    public ModelConfig Config { get; }
    public CudaPrecision Precision { get; }
    public CudaModelOptions Options { get; }
    /// <summary>The kernel set attention and PFS run on: <see cref="CudaModelOptions.Kernels"/>, or the scalar kernels for soft-capped scores.</summary>
    public AttentionKernels Kernels { get; }
    /// <summary>Bytes of GPU memory the weights occupy.</summary>
    public long WeightBytes { get; private set; }

    internal GpuBackend Backend { get; }
    internal KernelOps Ops { get; }
    internal DeviceBuffer<byte> Embedding { get; private set; } = null!;
    internal DeviceBuffer<byte> Output { get; private set; } = null!;
    internal DeviceBuffer<float>? OutputNorm { get; private set; }
    internal DeviceBuffer<float>? OutputNormBias { get; private set; }
    internal DeviceBuffer<float>? PositionEmbedding { get; private set; }
    internal DeviceBuffer<byte>? ProjectIn { get; private set; }
    internal DeviceBuffer<byte>? ProjectOut { get; private set; }
    /// <summary>Per layer its d/2 RoPE inverse frequencies (float64), [Layers][HeadDim / 2]; null with learned positions.</summary>
    internal DeviceBuffer<double>? InvFreq { get; }
    internal LayerTensors[] Layers { get; private set; } = [];

    private const int StagingElements = 16 << 20;

    /// <summary>
    /// Why the CUDA forward cannot run <paramref name="c"/>, or null when it can: a head dimension past the kernels' limit,
    /// or a part of the block it does not implement (<see cref="UnsupportedFeature"/>).
    /// </summary>
    public static string? Unsupported(ModelConfig c)
    {
        ArgumentNullException.ThrowIfNull(c);
        if (c.HeadDim > KernelOps.MaxHeadDim)
            return $"head dimension {c.HeadDim}: the CUDA kernels support up to {KernelOps.MaxHeadDim}";
        return UnsupportedFeature(c) is { } feature ? $"{feature} is not supported by the CUDA forward" : null;
    }

    /// <summary>The first part of <paramref name="c"/>'s block the CUDA forward does not implement, or null.</summary>
    public static string? UnsupportedFeature(ModelConfig c)
    {
        ArgumentNullException.ThrowIfNull(c);
        // The sandwich's post-norms are RMSNorms without bias (Gemma); the CPU forward has no LayerNorm form of them either.
        if (c.NormPlacement == NormPlacement.Sandwich && c.Norm != NormKind.Rms) return "a sandwich block with LayerNorm";
        return null;
    }

    /// <summary>The kernel set attention and PFS of <paramref name="c"/> run on when <paramref name="requested"/> is asked for.</summary>
    public static AttentionKernels KernelsFor(ModelConfig c, AttentionKernels requested)
    {
        ArgumentNullException.ThrowIfNull(c);
        return c.AttentionSoftCap is not null ? AttentionKernels.Simple : requested;
    }

    /// <summary>
    /// One line on the GPU paths of <paramref name="c"/>: whether the CUDA forward runs it and, if so, on which attention and
    /// PFS kernels (for <c>inspect</c>).
    /// </summary>
    public static string DevicePaths(ModelConfig c)
    {
        ArgumentNullException.ThrowIfNull(c);
        if (Unsupported(c) is { } reason) return $"CPU only ({reason})";
        var extras = new List<string>();
        if (c.HasSlidingWindow) extras.Add("sliding-window masks");
        if (c.AttentionSoftCap is not null) extras.Add("score soft-cap");
        string with = extras.Count > 0 ? $" with {string.Join(" and ", extras)}" : "";
        string kernels = KernelsFor(c, AttentionKernels.TensorCores) == AttentionKernels.Simple
            ? "GPU: attention and PFS on the scalar float32 kernels (soft-capped scores have no tensor-core form)"
            : KernelNames.HasTensorCoreKernels(c.HeadDim)
                ? $"GPU: attention and PFS on tensor cores{with} (--kernel-set simple: scalar float32 kernels)"
                : $"GPU: attention and PFS on the scalar float32 kernels{with} (tensor cores need head dimension 64 or 128)";
        return $"CPU and {kernels}";
    }

    private T Own<T>(T item) where T : IDisposable
    {
        owned.Add(item);
        return item;
    }

    // ---- The one place that reads the host weights (ModelWeights: matrices in their file's type, vectors in float32) ----

    /// <summary>Uploads every tensor of <paramref name="weights"/> that <see cref="Config"/> implies.</summary>
    private void Upload(ModelWeights weights)
    {
        var c = Config;
        long largest = Math.Max(weights.TokenEmbedding.ElementCount, weights.Output.ElementCount);
        foreach (var a in new[] { weights.ProjectIn, weights.ProjectOut }) largest = Math.Max(largest, a?.ElementCount ?? 0);
        foreach (var l in weights.Layers)
            foreach (var a in new[] { l.Wq, l.Wk, l.Wv, l.Wo, l.WGate, l.WUp, l.WDown }) largest = Math.Max(largest, a?.ElementCount ?? 0);
        using var staging = Precision == CudaPrecision.F32
            ? null
            : Backend.Allocate<float>(Math.Min(StagingElements, Math.Max(1, largest)), "weight upload staging", WeightsHint);
        DeviceBuffer<float>? F32(float[]? values, string what) => values is null ? null : Own(UploadF32(values, what));
        DeviceBuffer<byte>? Matrix(WeightMatrix? values, string what) => values is null ? null : Own(UploadMatrix(values, staging, what));

        Embedding = Matrix(weights.TokenEmbedding, "token embedding")!;
        Output = weights.Output.IsSameTensor(weights.TokenEmbedding) ? Embedding : Matrix(weights.Output, "output head")!;
        OutputNorm = c.FinalNorm ? F32(weights.OutputNorm, "output norm") : null;
        OutputNormBias = c.FinalNorm && c.NormHasBias ? F32(weights.OutputNormBias, "output norm bias") : null;
        PositionEmbedding = c.Positions == PositionKind.Learned ? F32(weights.PositionEmbedding, "position embedding") : null;
        ProjectIn = c.HasProjections ? Matrix(weights.ProjectIn, "project in") : null;
        ProjectOut = c.HasProjections ? Matrix(weights.ProjectOut, "project out") : null;
        bool sandwich = c.NormPlacement == NormPlacement.Sandwich;
        Layers = new LayerTensors[c.Layers];
        for (int i = 0; i < c.Layers; i++)
        {
            var l = weights.Layers[i];
            string n = $"layer {i}";
            Layers[i] = new LayerTensors
            {
                AttnNorm = UploadF32(l.AttnNorm, $"{n} attention norm"),
                AttnNormBias = c.NormHasBias ? UploadF32(l.AttnNormBias!, $"{n} attention norm bias") : null,
                Wq = UploadMatrix(l.Wq, staging, $"{n} q"),
                Wk = UploadMatrix(l.Wk, staging, $"{n} k"),
                Wv = UploadMatrix(l.Wv, staging, $"{n} v"),
                Wo = UploadMatrix(l.Wo, staging, $"{n} o"),
                Bq = c.QkvBias ? UploadF32(l.Bq!, $"{n} q bias") : null,
                Bk = c.QkvBias ? UploadF32(l.Bk!, $"{n} k bias") : null,
                Bv = c.QkvBias ? UploadF32(l.Bv!, $"{n} v bias") : null,
                Bo = c.OutputProjectionBias ? UploadF32(l.Bo!, $"{n} o bias") : null,
                QNorm = c.QkNorm ? UploadF32(l.QNorm!, $"{n} q norm") : null,
                KNorm = c.QkNorm ? UploadF32(l.KNorm!, $"{n} k norm") : null,
                PostAttnNorm = sandwich ? UploadF32(l.PostAttnNorm!, $"{n} post-attention norm") : null,
                FfnNorm = UploadF32(l.FfnNorm, $"{n} ffn norm"),
                FfnNormBias = c.NormHasBias ? UploadF32(l.FfnNormBias!, $"{n} ffn norm bias") : null,
                WGate = c.HasGate ? UploadMatrix(l.WGate!, staging, $"{n} gate") : null,
                WUp = UploadMatrix(l.WUp, staging, $"{n} up"),
                WDown = UploadMatrix(l.WDown, staging, $"{n} down"),
                BUp = c.FeedForwardBias ? UploadF32(l.BUp!, $"{n} up bias") : null,
                BDown = c.FeedForwardBias ? UploadF32(l.BDown!, $"{n} down bias") : null,
                PostFfnNorm = sandwich ? UploadF32(l.PostFfnNorm!, $"{n} post-ffn norm") : null,
            };
            Own(Layers[i]);
        }
    }

    private DeviceBuffer<float> UploadF32(float[] values, string what)
    {
        var buffer = Backend.Allocate<float>(values.Length, what, WeightsHint);
        buffer.CopyFrom(values);
        WeightBytes += buffer.ByteLength;
        return buffer;
    }

    /// <summary>
    /// Uploads a weight held in its file's type in <see cref="Precision"/>: f16/bf16 are converted on the GPU from float32
    /// chunks read through the staging buffer (the host never holds the whole tensor in float32); F32 is copied whole.
    /// </summary>
    private DeviceBuffer<byte> UploadMatrix(WeightMatrix values, DeviceBuffer<float>? staging, string what)
    {
        int size = Precision.ElementSize();
        long count = values.ElementCount;
        var buffer = Backend.Allocate<byte>(count * size, what, WeightsHint);
        WeightBytes += buffer.ByteLength;
        if (Precision == CudaPrecision.F32)
        {
            buffer.CopyFrom(MemoryMarshal.AsBytes(values.ToFloat32().AsSpan()));
            return buffer;
        }
        ArgumentNullException.ThrowIfNull(staging);
        var host = System.Buffers.ArrayPool<float>.Shared.Rent((int)Math.Min(staging.Length, count));
        try
        {
            for (long offset = 0; offset < count; offset += staging.Length)
            {
                int n = (int)Math.Min(staging.Length, count - offset);
                values.ReadF32(offset, host.AsSpan(0, n));
                staging.CopyFrom(host.AsSpan(0, n));
                Ops.Convert(staging.Pointer, buffer.At(offset * size), Precision, n);
            }
        }
        finally
        {
            System.Buffers.ArrayPool<float>.Shared.Return(host);
        }
        return buffer;
    }

    // ---- The forward's pieces ----

    /// <summary>
    /// Makes the RoPE tables those of a run whose positions reach <paramref name="sequenceLength"/> (prefix included): the
    /// frequencies of dynamic NTK and longrope scaling depend on it, as the CPU forward's do. Uploads only what changed.
    /// </summary>
    internal void PrepareRope(int sequenceLength)
    {
        var c = Config;
        if (InvFreq is null) return;
        int half = c.HeadDim / 2;
        if (ropeUploaded is not null && !c.RopeScaling.DependsOnLength) return;
        var tables = new double[c.Layers][];
        for (int layer = 0; layer < c.Layers; layer++)
        {
            var f = RopeFrequencies.For(c, layer, sequenceLength);
            tables[layer] = f.InverseFrequencies;
            ropeFactor[layer] = (float)f.AttentionFactor;
        }
        for (int layer = 0; layer < c.Layers; layer++)
        {
            if (ropeUploaded is not null && ropeUploaded[layer].AsSpan().SequenceEqual(tables[layer])) continue;
            InvFreq.CopyFrom(tables[layer], (long)layer * half);
        }
        ropeUploaded = tables;
    }

    /// <summary>
    /// Checks that <paramref name="positions"/> positions (0..positions − 1) can be run: with learned positions they must fit
    /// the model's table. Throws <see cref="ArgumentException"/> naming the limit and the setting to lower.
    /// </summary>
    internal void CheckPositions(long positions, string setting)
    {
        var c = Config;
        if (c.Positions == PositionKind.Learned && c.PositionOffset + positions > c.PositionRows)
            throw new ArgumentException(
                $"{positions} positions exceed the model's {c.PositionRows - c.PositionOffset} learned positions; run at most that many tokens at once ({setting})");
    }

    /// <summary>Layer <paramref name="layer"/>'s score scale, sliding window and soft-cap, as the attention and PFS kernels take them.</summary>
    internal ScoreOptions Scores(int layer)
    {
        var c = Config;
        // A model that scales its queries (OPT) has them scaled in the kernels' staging (the same q · scale the CPU forms),
        // or by the q norm when the queries are normed afterwards.
        float scale = c.ScaleQueries && c.QkNorm ? 1f : c.ScoreScale;
        // A window longer than any sequence the kernels take masks nothing.
        int window = c.WindowOf(layer) is int w && w <= KernelOps.MaxWindow ? w : 0;
        return new ScoreOptions(scale, window, c.AttentionSoftCap ?? 0f);
    }

    /// <summary>Address of row <paramref name="row"/> of a [*, width] matrix of <see cref="Precision"/> elements.</summary>
    internal DevicePtr TypedRow(DeviceBuffer<byte> buffer, long row, int width) => buffer.At(row * width * Precision.ElementSize());

    internal ForwardWorkspace CreateWorkspace(int rows, string what, string hint) => new(this, rows, what, hint);

    /// <summary>
    /// h = the embedding rows of the workspace's tokens times the embedding scale (projected in when the model has
    /// projections), plus the learned position rows at the workspace's positions.
    /// </summary>
    internal void Embed(ForwardWorkspace ws, int rows)
    {
        ws.CheckRows(rows);
        var c = Config;
        if (c.HasProjections)
        {
            int e = c.EmbeddingWidth;
            Ops.EmbedGather(ws.Tokens.Pointer, Embedding.Pointer, Precision, ws.EmbedRows!.Pointer, rows, e, c.VocabSize, c.EmbedScale);
            Ops.Linear(Typed(ws.EmbedRows!.Pointer, ws.ProjectedRows!, (long)rows * e), ProjectIn!.Pointer, Precision, ws.Hidden.Pointer,
                rows, e, c.Dim, accumulate: false);
        }
        else
            Ops.EmbedGather(ws.Tokens.Pointer, Embedding.Pointer, Precision, ws.Hidden.Pointer, rows, c.Dim, c.VocabSize, c.EmbedScale);
        if (c.Positions == PositionKind.Learned)
            Ops.EmbedAddPositions(ws.Positions.Pointer, PositionEmbedding!.Pointer, ws.Hidden.Pointer, rows, c.Dim, c.PositionOffset, c.PositionRows);
    }

    /// <summary>
    /// <paramref name="source"/> (float32, <paramref name="count"/> values) as GEMM input of <see cref="Precision"/>: itself for
    /// float32, else converted into <paramref name="scratch"/>.
    /// </summary>
    private DevicePtr Typed(DevicePtr source, DeviceBuffer<byte> scratch, long count)
    {
        if (Precision == CudaPrecision.F32) return source;
        Ops.Convert(source, scratch.Pointer, Precision, count);
        return scratch.Pointer;
    }

    /// <summary>y = Norm(x) (RMSNorm, or LayerNorm with <paramref name="bias"/>) in <paramref name="outputType"/>; y may be x (float32).</summary>
    private void Norm(DevicePtr x, DeviceBuffer<float> weight, DeviceBuffer<float>? bias, DevicePtr y, CudaPrecision outputType, int rows)
    {
        var c = Config;
        if (c.Norm == NormKind.LayerNorm) Ops.LayerNorm(x, weight.Pointer, bias!.Pointer, y, outputType, rows, c.Dim, c.NormEps);
        else Ops.RmsNorm(x, weight.Pointer, y, outputType, rows, c.Dim, c.NormEps);
    }

    /// <summary>The GEMM input of a sub-block: Norm(h) into the workspace's normed buffer (pre/sandwich), or h itself (post).</summary>
    private DevicePtr SubBlockInput(ForwardWorkspace ws, int rows, DeviceBuffer<float> weight, DeviceBuffer<float>? bias)
    {
        if (Config.NormPlacement == NormPlacement.Post) return Typed(ws.Hidden.Pointer, ws.Normed, (long)rows * Config.Dim);
        Norm(ws.Hidden.Pointer, weight, bias, ws.Normed.Pointer, Precision, rows);
        return ws.Normed.Pointer;
    }

    /// <summary>
    /// Layer <paramref name="layer"/>'s attention inputs for <paramref name="rows"/> rows: x = Norm(h) (or h, post-norm); q (into
    /// the workspace), k into <paramref name="kOut"/>, v into <paramref name="vOut"/> (skipped when null), biases added, q/k
    /// norms, RoPE at the workspace's positions with the layer's tables (<see cref="PrepareRope"/> first).
    /// </summary>
    internal void ProjectQkv(int layer, ForwardWorkspace ws, int rows, DevicePtr kOut, DevicePtr vOut)
    {
        ws.CheckRows(rows);
        var c = Config;
        var w = Layers[layer];
        var x = SubBlockInput(ws, rows, w.AttnNorm, w.AttnNormBias);
        Ops.Linear(x, w.Wq.Pointer, Precision, ws.Q.Pointer, rows, c.Dim, c.QDim, accumulate: false);
        if (w.Bq is not null) Ops.AddBias(ws.Q.Pointer, w.Bq.Pointer, rows, c.QDim);
        Ops.Linear(x, w.Wk.Pointer, Precision, kOut, rows, c.Dim, c.KvDim, accumulate: false);
        if (w.Bk is not null) Ops.AddBias(kOut, w.Bk.Pointer, rows, c.KvDim);
        if (!vOut.IsNull)
        {
            Ops.Linear(x, w.Wv.Pointer, Precision, vOut, rows, c.Dim, c.KvDim, accumulate: false);
            if (w.Bv is not null) Ops.AddBias(vOut, w.Bv.Pointer, rows, c.KvDim);
        }
        if (c.QkNorm)
            Ops.QkRmsNorm(ws.Q.Pointer, kOut, w.QNorm!.Pointer, w.KNorm!.Pointer, rows, c.Heads, c.KvHeads, c.HeadDim, c.QDim, c.KvDim,
                c.NormEps, c.ScaleQueries ? c.ScoreScale : 1f);
        if (c.Positions == PositionKind.Rope)
            Ops.RopeQk(ws.Q.Pointer, kOut, ws.Positions.Pointer, InvFreq!.At((long)layer * (c.HeadDim / 2)), rows, c.Heads, c.KvHeads,
                c.HeadDim, c.QDim, c.KvDim, c.Rope, ropeFactor[layer]);
    }

    /// <summary>
    /// The rest of layer <paramref name="layer"/> for <paramref name="nSeq"/> sequences of <paramref name="seqLen"/> rows:
    /// attention over (prefix ++) own causal keys, the output projection into the residual, then the feed-forward (in row tiles).
    /// </summary>
    /// <param name="kvPacked">k and v are already packed in the workspace's f16 scratch (<see cref="KernelOps.PackKv"/>).</param>
    internal void AttendAndFeedForward(int layer, ForwardWorkspace ws, int nSeq, int seqLen, DevicePtr k, DevicePtr v,
        int prefixLen, DevicePtr kPrefix, DevicePtr vPrefix, DevicePtr prefixStart, bool kvPacked = false)
    {
        int rows = checked(nSeq * seqLen);
        ws.CheckRows(rows);
        var c = Config;
        var w = Layers[layer];
        bool post = c.NormPlacement == NormPlacement.Post;
        Ops.Attention(ws.Q.Pointer, k, v, kPrefix, vPrefix, prefixStart, ws.AttnOut.Pointer, Precision, nSeq, seqLen, prefixLen,
            c.Heads, c.KvHeads, c.HeadDim, ws.KvHalf, kvPacked, Scores(layer));
        AddToResidual(ws, 0, rows, ws.AttnOut.Pointer, w.Wo, c.QDim, w.Bo, w.PostAttnNorm);
        if (post) Norm(ws.Hidden.Pointer, w.AttnNorm, w.AttnNormBias, ws.Hidden.Pointer, CudaPrecision.F32, rows);

        var x = SubBlockInput(ws, rows, w.FfnNorm, w.FfnNormBias);
        int ff = c.FfDim;
        for (int r0 = 0; r0 < rows; r0 += ws.MlpTileRows)
        {
            int n = Math.Min(ws.MlpTileRows, rows - r0);
            var xt = x.AddBytes((long)r0 * c.Dim * Precision.ElementSize());
            if (c.HasGate)
            {
                Ops.Linear(xt, w.WGate!.Pointer, Precision, ws.Gate!.Pointer, n, c.Dim, ff, accumulate: false, outputType: Precision);
                Ops.Linear(xt, w.WUp.Pointer, Precision, ws.Up!.Pointer, n, c.Dim, ff, accumulate: false, outputType: Precision);
                if (c.FeedForward == FeedForwardKind.GeGluTanh) Ops.GeGluTanh(ws.Gate.Pointer, ws.Up.Pointer, ws.Act.Pointer, Precision, (long)n * ff);
                else Ops.SwiGlu(ws.Gate.Pointer, ws.Up.Pointer, ws.Act.Pointer, Precision, (long)n * ff);
            }
            else
            {
                // fc1 in float32, then bias + ReLU into fc2's input type
                Ops.Linear(xt, w.WUp.Pointer, Precision, ws.FfF32!.Pointer, n, c.Dim, ff, accumulate: false);
                Ops.BiasRelu(ws.FfF32.Pointer, w.BUp?.Pointer ?? DevicePtr.Null, ws.Act.Pointer, Precision, n, ff);
            }
            AddToResidual(ws, r0, n, ws.Act.Pointer, w.WDown, ff, w.BDown, w.PostFfnNorm);
        }
        if (post) Norm(ws.Hidden.Pointer, w.FfnNorm, w.FfnNormBias, ws.Hidden.Pointer, CudaPrecision.F32, rows);
    }

    /// <summary>
    /// h[r0 .. r0 + n) += W·input (+ bias): straight into the residual, or (sandwich) into the workspace's float32 scratch,
    /// then RMS-normed with <paramref name="postNorm"/> and added.
    /// </summary>
    private void AddToResidual(ForwardWorkspace ws, int r0, int n, DevicePtr input, DeviceBuffer<byte> weight, int inDim,
        DeviceBuffer<float>? bias, DeviceBuffer<float>? postNorm)
    {
        var c = Config;
        var h = ws.Hidden.At((long)r0 * c.Dim);
        if (postNorm is null)
        {
            Ops.Linear(input, weight.Pointer, Precision, h, n, inDim, c.Dim, accumulate: true);
            if (bias is not null) Ops.AddBias(h, bias.Pointer, n, c.Dim);
            return;
        }
        var delta = ws.Delta!.At((long)r0 * c.Dim);
        Ops.Linear(input, weight.Pointer, Precision, delta, n, inDim, c.Dim, accumulate: false);
        if (bias is not null) Ops.AddBias(delta, bias.Pointer, n, c.Dim);
        Ops.RmsNormAdd(delta, postNorm.Pointer, h, n, c.Dim, c.NormEps);
    }

    /// <summary>
    /// x = Norm(h, OutputNorm) (or h, without a final norm), projected out when the model has projections, and, tile by tile,
    /// logits = Output·x (soft-capped) and nll[r] for the workspace's targets; the logits never leave the GPU.
    /// </summary>
    internal void OutputNll(ForwardWorkspace ws, int rows)
    {
        ws.CheckRows(rows);
        if (ws.Logits is null) throw new InvalidOperationException("this workspace was created without loss buffers");
        var c = Config;
        DevicePtr x;
        if (c.FinalNorm)
        {
            Norm(ws.Hidden.Pointer, OutputNorm!, OutputNormBias, ws.Normed.Pointer, Precision, rows);
            x = ws.Normed.Pointer;
        }
        else x = Typed(ws.Hidden.Pointer, ws.Normed, (long)rows * c.Dim);
        int width = c.Dim;
        if (c.HasProjections)
        {
            Ops.Linear(x, ProjectOut!.Pointer, Precision, ws.ProjectedRows!.Pointer, rows, c.Dim, c.EmbeddingWidth, accumulate: false,
                outputType: Precision);
            x = ws.ProjectedRows.Pointer;
            width = c.EmbeddingWidth;
        }
        for (int r0 = 0; r0 < rows; r0 += ws.LogitsTileRows)
        {
            int n = Math.Min(ws.LogitsTileRows, rows - r0);
            Ops.Linear(x.AddBytes((long)r0 * width * Precision.ElementSize()), Output.Pointer, Precision, ws.Logits.Pointer, n, width,
                c.VocabSize, accumulate: false);
            Ops.LossRowNll(ws.Logits.Pointer, ws.Targets!.At(r0), ws.Nll!.At(r0), n, c.VocabSize, c.FinalSoftCap ?? 0f);
        }
    }

    public void Dispose()
    {
        if (disposed) return;
        disposed = true;
        for (int i = owned.Count - 1; i >= 0; i--) owned[i].Dispose();
        owned.Clear();
    }
}
