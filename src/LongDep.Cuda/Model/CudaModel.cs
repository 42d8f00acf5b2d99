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
/// A Llama-family model resident on the GPU: weights in <see cref="CudaPrecision"/> (norm weights, biases and the RoPE
/// table in float32/float64), and the forward's building blocks, shared by <see cref="CudaLadmProbe"/> and
/// <see cref="CudaProLongProbe"/>. The math is the CPU reference's: h = emb[token]; per layer x = RMSNorm(h);
/// q, k, v = W x (+ b); RoPE on q, k; causal GQA attention; h += Wo o; x = RMSNorm(h); h += WDown(silu(WGate x) ⊙ WUp x)
/// (gate and up written in <see cref="CudaPrecision"/> by their GEMMs, as the reference model's f16 layers do);
/// logits = Output · RMSNorm(h).
/// </summary>
public sealed class CudaModel : IDisposable
{
    internal sealed class LayerTensors : IDisposable
    {
        public required DeviceBuffer<float> AttnNorm { get; init; }
        public required DeviceBuffer<byte> Wq { get; init; }
        public required DeviceBuffer<byte> Wk { get; init; }
        public required DeviceBuffer<byte> Wv { get; init; }
        public required DeviceBuffer<byte> Wo { get; init; }
        public DeviceBuffer<float>? Bq { get; init; }
        public DeviceBuffer<float>? Bk { get; init; }
        public DeviceBuffer<float>? Bv { get; init; }
        public required DeviceBuffer<float> FfnNorm { get; init; }
        public required DeviceBuffer<byte> WGate { get; init; }
        public required DeviceBuffer<byte> WUp { get; init; }
        public required DeviceBuffer<byte> WDown { get; init; }

        public void Dispose()
        {
            foreach (var b in new IDisposable?[] { AttnNorm, Wq, Wk, Wv, Wo, Bq, Bk, Bv, FfnNorm, WGate, WUp, WDown }) b?.Dispose();
        }
    }

    private const string WeightsHint = "the model size (load a smaller model)";
    private readonly List<IDisposable> owned = [];
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
        if (c.HeadDim > KernelOps.MaxHeadDim)
            throw new NotSupportedException($"head dimension {c.HeadDim}: the CUDA kernels support up to {KernelOps.MaxHeadDim}; use --device cpu");
        if (UnsupportedFeature(c) is { } feature)
            throw new NotSupportedException($"{c.Architecture}: {feature} is not supported by the CUDA forward; use --device cpu");
        if (options.MlpTileRows < 1) throw new ArgumentOutOfRangeException(nameof(options), "MlpTileRows must be at least 1");
        if (options.LogitsTileBytes < (long)c.VocabSize * sizeof(float))
            throw new ArgumentOutOfRangeException(nameof(options), $"LogitsTileBytes must hold at least one row of {c.VocabSize} logits");
        Backend = backend;
        Ops = new KernelOps(backend, options.Kernels);
        Config = c;
        Precision = options.Precision;
        Options = options;
        try
        {
            using (backend.Range("h2d weights"))
            {
                using var staging = options.Precision == CudaPrecision.F32
                    ? null
                    : backend.Allocate<float>(Math.Min(StagingElements, MaxTensorLength(weights)), "weight upload staging", WeightsHint);
                Embedding = Own(UploadMatrix(weights.TokenEmbedding, staging, "token embedding"));
                Output = weights.Output.IsSameTensor(weights.TokenEmbedding)
                    ? Embedding
                    : Own(UploadMatrix(weights.Output, staging, "output head"));
                OutputNorm = Own(UploadF32(weights.OutputNorm!, "output norm"));
                InvFreq = Own(backend.Allocate<double>(c.HeadDim / 2, "RoPE table", WeightsHint));
                InvFreq.CopyFrom(Twins.RopeTwin.InverseFrequencies(c.RopeTheta, c.HeadDim));
                Layers = new LayerTensors[c.Layers];
                for (int i = 0; i < c.Layers; i++)
                {
                    var l = weights.Layers[i];
                    Layers[i] = Own(new LayerTensors
                    {
                        AttnNorm = UploadF32(l.AttnNorm, $"layer {i} attention norm"),
                        Wq = UploadMatrix(l.Wq, staging, $"layer {i} q"),
                        Wk = UploadMatrix(l.Wk, staging, $"layer {i} k"),
                        Wv = UploadMatrix(l.Wv, staging, $"layer {i} v"),
                        Wo = UploadMatrix(l.Wo, staging, $"layer {i} o"),
                        Bq = c.QkvBias ? UploadF32(l.Bq!, $"layer {i} q bias") : null,
                        Bk = c.QkvBias ? UploadF32(l.Bk!, $"layer {i} k bias") : null,
                        Bv = c.QkvBias ? UploadF32(l.Bv!, $"layer {i} v bias") : null,
                        FfnNorm = UploadF32(l.FfnNorm, $"layer {i} ffn norm"),
                        WGate = UploadMatrix(l.WGate!, staging, $"layer {i} gate"),
                        WUp = UploadMatrix(l.WUp, staging, $"layer {i} up"),
                        WDown = UploadMatrix(l.WDown, staging, $"layer {i} down"),
                    });
                }
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
    /// <summary>Bytes of GPU memory the weights occupy.</summary>
    public long WeightBytes { get; private set; }

    internal GpuBackend Backend { get; }
    internal KernelOps Ops { get; }
    internal DeviceBuffer<byte> Embedding { get; } = null!;
    internal DeviceBuffer<byte> Output { get; } = null!;
    internal DeviceBuffer<float> OutputNorm { get; } = null!;
    internal DeviceBuffer<double> InvFreq { get; } = null!;
    internal LayerTensors[] Layers { get; } = [];

    private const int StagingElements = 16 << 20;

    private static long MaxTensorLength(ModelWeights w)
    {
        long max = Math.Max(w.TokenEmbedding.ElementCount, w.Output.ElementCount);
        foreach (var l in w.Layers)
            foreach (var a in new[] { l.Wq, l.Wk, l.Wv, l.Wo, l.WGate!, l.WUp, l.WDown }) max = Math.Max(max, a.ElementCount);
        return Math.Max(1, max);
    }

    /// <summary>The first part of <paramref name="c"/>'s block the CUDA forward does not implement, or null.</summary>
    public static string? UnsupportedFeature(ModelConfig c)
    {
        if (c.Norm != NormKind.Rms) return "LayerNorm";
        if (c.NormPlacement != NormPlacement.Pre) return $"{c.NormPlacement.ToString().ToLowerInvariant()}-norm blocks";
        if (!c.FinalNorm) return "a model without a final norm";
        if (c.Positions != PositionKind.Rope) return "learned positions";
        if (c.RopeScaling.Type != RopeScalingType.None) return $"RoPE scaling ({c.RopeScaling})";
        if (c.LocalRopeTheta is not null) return "a separate RoPE base for local layers";
        if (c.OutputProjectionBias || c.FeedForwardBias) return "output or feed-forward biases";
        if (c.QkNorm) return "q/k norms";
        if (c.AttentionScale is not null || c.ScaleQueries) return "a non-default attention scale";
        if (c.AttentionSoftCap is not null || c.FinalSoftCap is not null) return "soft-capping";
        if (c.HasSlidingWindow) return "sliding-window attention";
        if (c.EmbedScale != 1f) return "a scaled embedding";
        if (c.FeedForward != FeedForwardKind.SwiGlu) return $"the {c.FeedForward} feed-forward";
        if (c.HasProjections) return "input/output projections";
        return null;
    }

    private T Own<T>(T item) where T : IDisposable
    {
        owned.Add(item);
        return item;
    }

    private DeviceBuffer<float> UploadF32(float[] values, string what)
    {
        var buffer = Backend.Allocate<float>(values.Length, what, WeightsHint);
        buffer.CopyFrom(values);
        WeightBytes += buffer.ByteLength;
        return buffer;
    }

    /// <summary>Uploads a float32 matrix in <see cref="Precision"/>, converting on the GPU through the staging buffer.</summary>
    /// <summary>Uploads a weight held in its file's type: its float32 values, one tensor at a time.</summary>
    private DeviceBuffer<byte> UploadMatrix(WeightMatrix values, DeviceBuffer<float>? staging, string what) =>
        UploadMatrix(values.ToFloat32(), staging, what);

    private DeviceBuffer<byte> UploadMatrix(float[] values, DeviceBuffer<float>? staging, string what)
    {
        int size = Precision.ElementSize();
        var buffer = Backend.Allocate<byte>(values.LongLength * size, what, WeightsHint);
        WeightBytes += buffer.ByteLength;
        if (Precision == CudaPrecision.F32)
        {
            buffer.CopyFrom(MemoryMarshal.AsBytes(values.AsSpan()));
            return buffer;
        }
        ArgumentNullException.ThrowIfNull(staging);
        for (long offset = 0; offset < values.LongLength; offset += staging.Length)
        {
            int n = (int)Math.Min(staging.Length, values.LongLength - offset);
            staging.CopyFrom(values.AsSpan((int)offset, n));
            Ops.Convert(staging.Pointer, buffer.At(offset * size), Precision, n);
        }
        return buffer;
    }

    /// <summary>Address of row <paramref name="row"/> of a [*, width] matrix of <see cref="Precision"/> elements.</summary>
    internal DevicePtr TypedRow(DeviceBuffer<byte> buffer, long row, int width) => buffer.At(row * width * Precision.ElementSize());

    internal ForwardWorkspace CreateWorkspace(int rows, string what, string hint) => new(this, rows, what, hint);

    /// <summary>h = embedding rows of the workspace's tokens.</summary>
    internal void Embed(ForwardWorkspace ws, int rows)
    {
        ws.CheckRows(rows);
        Ops.EmbedGather(ws.Tokens.Pointer, Embedding.Pointer, Precision, ws.Hidden.Pointer, rows, Config.Dim, Config.VocabSize);
    }

    /// <summary>
    /// Layer <paramref name="layer"/>'s attention inputs for <paramref name="rows"/> rows: x = RMSNorm(h); q (into the workspace),
    /// k into <paramref name="kOut"/>, v into <paramref name="vOut"/> (skipped when null), biases added, RoPE at the workspace's positions.
    /// </summary>
    internal void ProjectQkv(int layer, ForwardWorkspace ws, int rows, DevicePtr kOut, DevicePtr vOut)
    {
        ws.CheckRows(rows);
        var c = Config;
        var w = Layers[layer];
        Ops.RmsNorm(ws.Hidden.Pointer, w.AttnNorm.Pointer, ws.Normed.Pointer, Precision, rows, c.Dim, c.NormEps);
        Ops.Linear(ws.Normed.Pointer, w.Wq.Pointer, Precision, ws.Q.Pointer, rows, c.Dim, c.QDim, accumulate: false);
        if (w.Bq is not null) Ops.AddBias(ws.Q.Pointer, w.Bq.Pointer, rows, c.QDim);
        Ops.Linear(ws.Normed.Pointer, w.Wk.Pointer, Precision, kOut, rows, c.Dim, c.KvDim, accumulate: false);
        if (w.Bk is not null) Ops.AddBias(kOut, w.Bk.Pointer, rows, c.KvDim);
        if (!vOut.IsNull)
        {
            Ops.Linear(ws.Normed.Pointer, w.Wv.Pointer, Precision, vOut, rows, c.Dim, c.KvDim, accumulate: false);
            if (w.Bv is not null) Ops.AddBias(vOut, w.Bv.Pointer, rows, c.KvDim);
        }
        Ops.RopeQk(ws.Q.Pointer, kOut, ws.Positions.Pointer, InvFreq.Pointer, rows, c.Heads, c.KvHeads, c.HeadDim, c.QDim, c.KvDim, c.Rope);
    }

    /// <summary>
    /// The rest of layer <paramref name="layer"/> for <paramref name="nSeq"/> sequences of <paramref name="seqLen"/> rows:
    /// attention over (prefix ++) own causal keys, h += Wo·o, then h += the SwiGLU feed-forward (in row tiles).
    /// </summary>
    /// <param name="kvPacked">k and v are already packed in the workspace's f16 scratch (<see cref="KernelOps.PackKv"/>).</param>
    internal void AttendAndFeedForward(int layer, ForwardWorkspace ws, int nSeq, int seqLen, DevicePtr k, DevicePtr v,
        int prefixLen, DevicePtr kPrefix, DevicePtr vPrefix, DevicePtr prefixStart, bool kvPacked = false)
    {
        int rows = checked(nSeq * seqLen);
        ws.CheckRows(rows);
        var c = Config;
        var w = Layers[layer];
        Ops.Attention(ws.Q.Pointer, k, v, kPrefix, vPrefix, prefixStart, ws.AttnOut.Pointer, Precision, nSeq, seqLen, prefixLen,
            c.Heads, c.KvHeads, c.HeadDim, ws.KvHalf, kvPacked);
        Ops.Linear(ws.AttnOut.Pointer, w.Wo.Pointer, Precision, ws.Hidden.Pointer, rows, c.QDim, c.Dim, accumulate: true);
        Ops.RmsNorm(ws.Hidden.Pointer, w.FfnNorm.Pointer, ws.Normed.Pointer, Precision, rows, c.Dim, c.NormEps);
        for (int r0 = 0; r0 < rows; r0 += ws.MlpTileRows)
        {
            int n = Math.Min(ws.MlpTileRows, rows - r0);
            var x = TypedRow(ws.Normed, r0, c.Dim);
            Ops.Linear(x, w.WGate.Pointer, Precision, ws.Gate.Pointer, n, c.Dim, c.FfDim, accumulate: false, outputType: Precision);
            Ops.Linear(x, w.WUp.Pointer, Precision, ws.Up.Pointer, n, c.Dim, c.FfDim, accumulate: false, outputType: Precision);
            Ops.SwiGlu(ws.Gate.Pointer, ws.Up.Pointer, ws.Act.Pointer, Precision, (long)n * c.FfDim);
            Ops.Linear(ws.Act.Pointer, w.WDown.Pointer, Precision, ws.Hidden.At((long)r0 * c.Dim), n, c.FfDim, c.Dim, accumulate: true);
        }
    }

    /// <summary>
    /// x = RMSNorm(h, OutputNorm) and, tile by tile, logits = Output·x and nll[r] for the workspace's targets;
    /// the logits never leave the GPU.
    /// </summary>
    internal void OutputNll(ForwardWorkspace ws, int rows)
    {
        ws.CheckRows(rows);
        if (ws.Logits is null) throw new InvalidOperationException("this workspace was created without loss buffers");
        var c = Config;
        Ops.RmsNorm(ws.Hidden.Pointer, OutputNorm.Pointer, ws.Normed.Pointer, Precision, rows, c.Dim, c.NormEps);
        for (int r0 = 0; r0 < rows; r0 += ws.LogitsTileRows)
        {
            int n = Math.Min(ws.LogitsTileRows, rows - r0);
            Ops.Linear(TypedRow(ws.Normed, r0, c.Dim), Output.Pointer, Precision, ws.Logits.Pointer, n, c.Dim, c.VocabSize, accumulate: false);
            Ops.LossRowNll(ws.Logits.Pointer, ws.Targets!.At(r0), ws.Nll!.At(r0), n, c.VocabSize);
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
