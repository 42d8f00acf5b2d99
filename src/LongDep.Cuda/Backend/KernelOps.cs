using LongDep.Models;

namespace LongDep.Cuda;

/// <summary>
/// Typed launchers: one method per kernel family, each choosing the kernel variant, the launch geometry and the shared
/// memory size that the kernel's indexing expects (see the comment at the top of each kernels/*.cu), and checking the
/// shapes it is given. The forward and the self-test launch kernels only through here.
/// </summary>
internal sealed class KernelOps(GpuBackend backend, AttentionKernels kernels = AttentionKernels.TensorCores)
{
    public GpuBackend Backend { get; } = backend;
    /// <summary>The kernel set for attention and PFS; tensor cores apply only where <see cref="KernelNames.HasTensorCoreKernels"/>.</summary>
    public AttentionKernels Kernels { get; } = kernels;
    /// <summary>
    /// Whether the packed-f16 attention and the PFS passes use the wide kernels (32 rows or key columns per warp) where they exist
    /// (<see cref="KernelNames.HasWideKernels"/>); default from <see cref="AttentionKernelNames.WideEnvironmentVariable"/>.
    /// </summary>
    public bool WideKernels { get; init; } = AttentionKernelNames.WideFromEnvironment();

    /// <summary>
    /// Warps per block of the wide kernels that stage packed f16 key tiles: 4, or 8 (attention in 256-row blocks, PFS pass 1
    /// two heads of a GQA group a block); default from <see cref="AttentionKernelNames.WarpsEnvironmentVariable"/>. Same
    /// outputs either way.
    /// </summary>
    public int WideWarps
    {
        get => wideWarps;
        init => wideWarps = value is 4 or 8 ? value
            : throw new ArgumentOutOfRangeException(nameof(WideWarps), value, "the wide kernels run 4 or 8 warps per block");
    }

    private readonly int wideWarps = AttentionKernelNames.WarpsFromEnvironment();

    /// <summary>Block size of the row-reduction and element-wise kernels.</summary>
    public const int RowBlock = 256;
    /// <summary>Largest head dimension the attention and PFS kernels support.</summary>
    public const int MaxHeadDim = 256;
    /// <summary>Largest sliding window the kernels take (their key + window sums stay in int32); a longer one masks nothing.</summary>
    public const int MaxWindow = 1 << 28;

    public static int AttentionSharedBytes(int headDim) => (32 * (headDim + 1) + 32 * headDim + 16 * headDim) * sizeof(float);
    public static int PfsRowStatsSharedBytes(int headDim) => (32 * (headDim + 1) + 16 * headDim) * sizeof(float);
    public static int PfsColumnMassSharedBytes(int headDim) => (64 * (headDim + 1) + 16 * headDim + 4 * 64) * sizeof(float);
    // Tensor-core kernels (attention_mma.cu, pfs_mma.cu): f16 tiles with 8 elements of padding per row.
    public static int AttentionMmaSharedBytes(int headDim) => (64 * (headDim + 8) + headDim * 72) * 2;
    public static int AttentionKv16SharedBytes(int headDim) => 2 * AttentionMmaSharedBytes(headDim); // two stages
    public static int KvPackSharedBytes(int headDim) => 64 * (headDim + 1) * sizeof(float);
    public static int PfsRowStatsMmaSharedBytes(int headDim) => 64 * (headDim + 8) * 2;
    public static int PfsColumnMassMmaSharedBytes(int headDim) => 64 * (headDim + 8) * 2 + 2 * 64 * sizeof(float);

    /// <summary>Whether a launch with this head dimension runs on tensor cores.</summary>
    public bool UsesTensorCores(int headDim) => Kernels == AttentionKernels.TensorCores && KernelNames.HasTensorCoreKernels(headDim);

    /// <summary>The attention kernel <see cref="Attention"/> launches for this output type and head dimension.</summary>
    public KernelSpec AttentionKernel(CudaPrecision outputType, int headDim) =>
        UsesTensorCores(headDim) ? KernelNames.AttentionMma(outputType, headDim) : KernelNames.Attention(outputType);

    /// <summary>The PFS pass-1 kernel <see cref="PfsRowStats"/> launches for this head dimension.</summary>
    public KernelSpec PfsRowStatsKernel(int headDim) => UsesWideKernels(headDim) ? KernelNames.PfsRowStatsMma64Wide
        : UsesTensorCores(headDim) ? KernelNames.PfsRowStatsMma(headDim) : KernelNames.PfsRowStats;

    /// <summary>
    /// The PFS pass-2 kernel <see cref="PfsColumnMass"/> launches for this head dimension, with a sliding window of
    /// <paramref name="window"/> keys (0: none; the wide kernel has no windowed form).
    /// </summary>
    public KernelSpec PfsColumnMassKernel(int headDim, int window = 0) => UsesWidePassTwo(headDim, window) ? KernelNames.PfsColumnMassMma64Wide
        : UsesTensorCores(headDim) ? KernelNames.PfsColumnMassMma(headDim) : KernelNames.PfsColumnMass;

    private bool UsesWidePassTwo(int headDim, int window) => window == 0 && UsesWideKernels(headDim);

    private static void Aligned8(DevicePtr p, string name)
    {
        if (!p.IsNull && p.Address % 8 != 0)
            throw new ArgumentException($"{name} must be 8-byte aligned for the tensor-core kernels (float2 loads)", name);
    }

    private static Dim3 GridStride(long n) => (int)Math.Clamp((n + RowBlock - 1) / RowBlock, 1, 1 << 20);

    private static void Positive(int value, string name)
    {
        if (value <= 0) throw new ArgumentOutOfRangeException(name, value, $"{name} must be positive");
    }

    private static void CheckHeads(int heads, int kvHeads, int headDim)
    {
        Positive(heads, nameof(heads));
        Positive(kvHeads, nameof(kvHeads));
        if (heads % kvHeads != 0) throw new ArgumentException($"head count {heads} is not a multiple of the KV head count {kvHeads}");
        if (headDim <= 0 || headDim % 2 != 0 || headDim > MaxHeadDim)
            throw new NotSupportedException($"head dimension {headDim}: the CUDA kernels support even head dimensions up to {MaxHeadDim}");
    }

    /// <summary>output[r, :] = float(table[tokens[r], :]) · <paramref name="scale"/> (the model's embedding scale).</summary>
    public void EmbedGather(DevicePtr tokens, DevicePtr table, CudaPrecision tableType, DevicePtr output, int rows, int dim, int vocab,
        float scale = 1f)
    {
        if (rows == 0) return;
        Positive(dim, nameof(dim));
        Backend.Launch(KernelNames.EmbedGather(tableType), rows, RowBlock, 0, [tokens, table, output, rows, dim, vocab, scale]);
    }

    /// <summary>output[r, :] += table[offset + positions[r], :]: learned positions from a float32 table of <paramref name="tableRows"/> rows.</summary>
    public void EmbedAddPositions(DevicePtr positions, DevicePtr table, DevicePtr output, int rows, int dim, int offset, int tableRows)
    {
        if (rows == 0) return;
        Positive(dim, nameof(dim));
        if (offset < 0 || tableRows <= offset)
            throw new ArgumentException($"a position table of {tableRows} rows with offset {offset} holds no position");
        Backend.Launch(KernelNames.EmbedAddPositions, rows, RowBlock, 0, [positions, table, output, rows, dim, offset, tableRows]);
    }

    public void RmsNorm(DevicePtr x, DevicePtr weight, DevicePtr y, CudaPrecision outputType, int rows, int n, float eps)
    {
        if (rows == 0) return;
        Positive(n, nameof(n));
        Backend.Launch(KernelNames.RmsNorm(outputType), rows, RowBlock, 0, [x, weight, y, rows, n, eps]);
    }

    /// <summary>h[r, :] += RMSNorm(x[r, :]) with <paramref name="weight"/>: a sandwich block's post-norm and residual add.</summary>
    public void RmsNormAdd(DevicePtr x, DevicePtr weight, DevicePtr h, int rows, int n, float eps)
    {
        if (rows == 0) return;
        Positive(n, nameof(n));
        Backend.Launch(KernelNames.RmsNormAddF32, rows, RowBlock, 0, [x, weight, h, rows, n, eps]);
    }

    /// <summary>LayerNorm with weight and bias, float32 in, <paramref name="outputType"/> out; <paramref name="y"/> may be <paramref name="x"/> (float32).</summary>
    public void LayerNorm(DevicePtr x, DevicePtr weight, DevicePtr bias, DevicePtr y, CudaPrecision outputType, int rows, int n, float eps)
    {
        if (rows == 0) return;
        Positive(n, nameof(n));
        if (x == y && outputType != CudaPrecision.F32) throw new ArgumentException("an in-place LayerNorm writes float32");
        Backend.Launch(KernelNames.LayerNorm(outputType), rows, RowBlock, 0, [x, weight, bias, y, rows, n, eps]);
    }

    /// <summary>Warps per block of <see cref="QkRmsNorm"/> (one head vector each).</summary>
    public const int QkNormWarps = 4;

    /// <summary>
    /// Per-head RMSNorm in place on the rows of <paramref name="q"/> and, in the same launch, of <paramref name="k"/> (skipped
    /// when null); q's head vectors are multiplied by <paramref name="qScale"/> first (a model that scales its queries before
    /// the norm), one warp per head vector.
    /// </summary>
    public void QkRmsNorm(DevicePtr q, DevicePtr k, DevicePtr qWeight, DevicePtr kWeight, int rows, int heads, int kvHeads, int headDim,
        int qStride, int kStride, float eps, float qScale = 1f)
    {
        if (rows == 0) return;
        Positive(heads, nameof(heads));
        if (headDim <= 0 || headDim > MaxHeadDim)
            throw new ArgumentException($"head dimension {headDim} must be positive and at most {MaxHeadDim}");
        if ((long)heads * headDim > qStride) throw new ArgumentException($"{heads} heads of {headDim} do not fit in a row of {qStride}");
        if (!k.IsNull)
        {
            Positive(kvHeads, nameof(kvHeads));
            if ((long)kvHeads * headDim > kStride) throw new ArgumentException($"{kvHeads} key heads of {headDim} do not fit in a row of {kStride}");
        }
        long vectors = (long)rows * (heads + (k.IsNull ? 0 : kvHeads));
        long blocks = (vectors + QkNormWarps - 1) / QkNormWarps;
        if (blocks > int.MaxValue) throw new ArgumentOutOfRangeException(nameof(rows), rows, "too many head vectors for one launch");
        Backend.Launch(KernelNames.QkRmsNorm, (int)blocks, 32 * QkNormWarps, 0,
            [q, k, qWeight, kWeight, rows, heads, k.IsNull ? 0 : kvHeads, headDim, qStride, k.IsNull ? 0 : kStride, eps, qScale]);
    }

    /// <summary>
    /// RoPE in place on the rows of the queries <paramref name="q"/> and, in the same launch, of the keys <paramref name="k"/>
    /// (skipped when null): one block per row, the row's sine/cosine pairs computed once for all its heads, times
    /// <paramref name="scale"/> (the RoPE scaling's attention factor). <paramref name="invFreq"/>: the layer's d/2 inverse
    /// frequencies (float64).
    /// </summary>
    public void RopeQk(DevicePtr q, DevicePtr k, DevicePtr positions, DevicePtr invFreq, int rows, int heads, int kvHeads, int headDim,
        int qStride, int kStride, RopeStyle style, float scale = 1f)
    {
        if (rows == 0) return;
        Positive(heads, nameof(heads));
        if (headDim <= 0 || headDim % 2 != 0 || headDim > MaxHeadDim)
            throw new ArgumentException($"head dimension {headDim} must be positive, even and at most {MaxHeadDim}");
        if ((long)heads * headDim > qStride) throw new ArgumentException($"{heads} heads of {headDim} do not fit in a row of {qStride}");
        if (!k.IsNull)
        {
            Positive(kvHeads, nameof(kvHeads));
            if ((long)kvHeads * headDim > kStride) throw new ArgumentException($"{kvHeads} key heads of {headDim} do not fit in a row of {kStride}");
        }
        Backend.Launch(KernelNames.RopeQk, rows, 128, 0,
            [q, k, positions, invFreq, rows, heads, k.IsNull ? 0 : kvHeads, headDim, qStride, k.IsNull ? 0 : kStride,
             Twins.RopeTwin.StyleCode(style), scale]);
    }

    public void AddBias(DevicePtr x, DevicePtr bias, int rows, int n)
    {
        if (rows == 0) return;
        Positive(n, nameof(n));
        Backend.Launch(KernelNames.AddBiasF32, GridStride((long)rows * n), RowBlock, 0, [x, bias, rows, n]);
    }

    public void Convert(DevicePtr source, DevicePtr destination, CudaPrecision destinationType, long n)
    {
        if (n == 0) return;
        Backend.Launch(KernelNames.Convert(destinationType), GridStride(n), RowBlock, 0, [source, destination, n]);
    }

    /// <summary>
    /// output = silu(gate) ⊙ up, all three in <paramref name="type"/> (the forward's GEMMs write gate and up in the
    /// weights' type, as the reference model's layers do). 8 elements a thread, 16-byte loads where the addresses allow.
    /// </summary>
    public void SwiGlu(DevicePtr gate, DevicePtr up, DevicePtr output, CudaPrecision type, long n)
    {
        if (n == 0) return;
        Backend.Launch(KernelNames.SwiGlu(type), GridStride((n + SwiGluPerThread - 1) / SwiGluPerThread), RowBlock, 0, [gate, up, output, n]);
    }

    /// <summary>output = gelu_tanh(gate) ⊙ up, all three in <paramref name="type"/> (as <see cref="SwiGlu"/>).</summary>
    public void GeGluTanh(DevicePtr gate, DevicePtr up, DevicePtr output, CudaPrecision type, long n)
    {
        if (n == 0) return;
        Backend.Launch(KernelNames.GeGluTanh(type), GridStride((n + SwiGluPerThread - 1) / SwiGluPerThread), RowBlock, 0, [gate, up, output, n]);
    }

    /// <summary>output[r, j] = relu(x[r, j] + bias[j]) in <paramref name="outputType"/> (x float32; bias float32 or null).</summary>
    public void BiasRelu(DevicePtr x, DevicePtr bias, DevicePtr output, CudaPrecision outputType, int rows, int n)
    {
        if (rows == 0) return;
        Positive(n, nameof(n));
        Backend.Launch(KernelNames.BiasRelu(outputType), GridStride((long)rows * n), RowBlock, 0, [x, bias, output, rows, n]);
    }

    /// <summary>Elements one thread of swiglu_* and geglu_tanh_* handles per step.</summary>
    public const int SwiGluPerThread = 8;

    /// <summary>Keys per sequence in the packed f16 layout: <paramref name="seqLen"/> rounded up to whole 64-key tiles.</summary>
    public static int PaddedKeys(int seqLen) => checked((seqLen + 63) / 64 * 64);

    /// <summary>Bytes of the packed f16 keys and transposed values (kv_pack_f16) for these sequences.</summary>
    public static long KvHalfBytes(int nSeq, int seqLen, int kvHeads, int headDim) => 2L * 2 * nSeq * PaddedKeys(seqLen) * kvHeads * headDim;

    /// <summary>
    /// Whether <see cref="Attention"/> takes the packed-f16 path (kv_pack_f16, then attention_mma*_kv16 with cp.async
    /// double-buffered tiles): tensor cores, no prefix keys, and a scratch buffer of <see cref="KvHalfBytes"/>.
    /// </summary>
    public bool UsesPackedKv(int nSeq, int seqLen, int prefixLen, int kvHeads, int headDim, DeviceBuffer<byte>? kvHalf) =>
        UsesTensorCores(headDim) && prefixLen == 0 && kvHalf is not null && kvHalf.ByteLength >= KvHalfBytes(nSeq, seqLen, kvHeads, headDim);

    /// <summary>Whether the packed-f16 attention and the PFS passes run the wide kernels for this head dimension.</summary>
    public bool UsesWideKernels(int headDim) => WideKernels && UsesTensorCores(headDim) && KernelNames.HasWideKernels(headDim);

    /// <summary>The attention kernel of the packed-f16 path (<see cref="UsesPackedKv"/>) for this output type and head dimension.</summary>
    public KernelSpec PackedAttentionKernel(CudaPrecision outputType, int headDim) => UsesWideKernels(headDim)
        ? KernelNames.AttentionMmaKv16Wide(outputType, headDim, WideWarps)
        : KernelNames.AttentionMmaKv16(outputType, headDim);

    /// <summary>Threads per block of <see cref="PackedAttentionKernel"/>: 32 per warp; its blocks own 16 rows per warp, 32 when wide.</summary>
    public int PackedAttentionThreads(int headDim) => UsesWideKernels(headDim) ? 32 * WideWarps : 128;

    /// <summary>Query rows per block of <see cref="PackedAttentionKernel"/>.</summary>
    public int PackedAttentionBlockRows(int headDim) => UsesWideKernels(headDim) ? 32 * WideWarps : 64;

    /// <summary>Causal GQA attention over <paramref name="nSeq"/> sequences of <paramref name="seqLen"/> rows (see attention.cu).</summary>
    /// <param name="kvHalf">Scratch for the packed f16 keys and values; with room for them (<see cref="KvHalfBytes"/>) and no
    /// prefix, tensor-core attention packs k and v once and runs the cp.async kernel (<see cref="UsesPackedKv"/>).</param>
    /// <param name="kvPacked">The caller has already packed k and v into <paramref name="kvHalf"/> (<see cref="PackKv"/>, as
    /// the LADM probe does before PFS pass 1): the packed path skips kv_pack_f16.</param>
    /// <param name="scores">The layer's score scale, sliding window and soft-cap; null: 1/sqrt(headDim), neither.</param>
    public void Attention(DevicePtr q, DevicePtr k, DevicePtr v, DevicePtr kPrefix, DevicePtr vPrefix, DevicePtr prefixStart,
        DevicePtr output, CudaPrecision outputType, int nSeq, int seqLen, int prefixLen, int heads, int kvHeads, int headDim,
        DeviceBuffer<byte>? kvHalf = null, bool kvPacked = false, ScoreOptions? scores = null)
    {
        if (nSeq == 0 || seqLen == 0) return;
        CheckHeads(heads, kvHeads, headDim);
        var sc = CheckScores(scores, headDim);
        if (nSeq > 65535) throw new ArgumentOutOfRangeException(nameof(nSeq), nSeq, "at most 65535 sequences per launch (grid.z)");
        if (prefixLen < 0) throw new ArgumentOutOfRangeException(nameof(prefixLen));
        if (prefixLen > 0 && (kPrefix.IsNull || vPrefix.IsNull || prefixStart.IsNull))
            throw new ArgumentException("a prefix length needs the prefix key, value and start buffers");
        if (UsesPackedKv(nSeq, seqLen, prefixLen, kvHeads, headDim, kvHalf))
        {
            int padded = PaddedKeys(seqLen);
            var (k16, vt16) = PackedKv(kvHalf!, nSeq, seqLen, kvHeads, headDim);
            Aligned8(q, nameof(q));
            if (!kvPacked) PackKv(k, v, kvHalf!, nSeq, seqLen, kvHeads, headDim);
            int blockRows = PackedAttentionBlockRows(headDim);
            Backend.Launch(PackedAttentionKernel(outputType, headDim), new Dim3((uint)((seqLen + blockRows - 1) / blockRows), (uint)heads, (uint)nSeq),
                PackedAttentionThreads(headDim), AttentionKv16SharedBytes(headDim),
                [q, k16, vt16, output, nSeq, seqLen, padded, heads, kvHeads, headDim, sc.Scale, sc.Window]);
            return;
        }
        if (UsesTensorCores(headDim))
        {
            Aligned8(q, nameof(q)); Aligned8(k, nameof(k)); Aligned8(v, nameof(v));
            if (prefixLen > 0) { Aligned8(kPrefix, nameof(kPrefix)); Aligned8(vPrefix, nameof(vPrefix)); }
            Backend.Launch(AttentionKernel(outputType, headDim), new Dim3((uint)((seqLen + 63) / 64), (uint)heads, (uint)nSeq),
                128, AttentionMmaSharedBytes(headDim),
                [q, k, v, kPrefix, vPrefix, prefixStart, output, nSeq, seqLen, prefixLen, heads, kvHeads, headDim, sc.Scale, sc.Window]);
            return;
        }
        var grid = new Dim3((uint)((seqLen + 15) / 16), (uint)heads, (uint)nSeq);
        Backend.Launch(AttentionKernel(outputType, headDim), grid, 128, AttentionSharedBytes(headDim),
            [q, k, v, kPrefix, vPrefix, prefixStart, output, nSeq, seqLen, prefixLen, heads, kvHeads, headDim, sc.Scale, sc.Window,
             sc.SoftCap]);
    }

    /// <summary>
    /// <paramref name="scores"/>, or the plain scale of <paramref name="headDim"/>, checked: a positive finite scale, a window
    /// of at least 0 and a finite cap of at least 0, and no cap on tensor cores (soft-capped scores run on the scalar kernels:
    /// the model's launcher is <see cref="AttentionKernels.Simple"/>).
    /// </summary>
    private ScoreOptions CheckScores(ScoreOptions? scores, int headDim)
    {
        var sc = scores ?? ScoreOptions.Plain(headDim);
        if (!(sc.Scale > 0) || !float.IsFinite(sc.Scale)) throw new ArgumentOutOfRangeException(nameof(scores), sc.Scale, "the score scale must be positive");
        if (sc.Window is < 0 or > MaxWindow)
            throw new ArgumentOutOfRangeException(nameof(scores), sc.Window, $"the sliding window must be from 1 to {MaxWindow} keys (0: none)");
        if (!(sc.SoftCap >= 0) || !float.IsFinite(sc.SoftCap)) throw new ArgumentOutOfRangeException(nameof(scores), sc.SoftCap, "the soft-cap must be positive (0: none)");
        if (sc.SoftCap > 0 && UsesTensorCores(headDim))
            throw new NotSupportedException("soft-capped attention scores have no tensor-core kernels; run the model on the simple kernel set");
        return sc;
    }

    /// <summary>The packed keys k16 [nSeq][padded][kvHeads·d] and transposed values vt16 in <paramref name="kvHalf"/>.</summary>
    private static (DevicePtr K16, DevicePtr Vt16) PackedKv(DeviceBuffer<byte> kvHalf, int nSeq, int seqLen, int kvHeads, int headDim)
    {
        long bytes = KvHalfBytes(nSeq, seqLen, kvHeads, headDim);
        if (kvHalf.ByteLength < bytes)
            throw new ArgumentException($"the packed key/value scratch has {kvHalf.ByteLength} bytes, {bytes} needed", nameof(kvHalf));
        var k16 = kvHalf.Pointer;
        var vt16 = kvHalf.At(bytes / 2);
        if (k16.Address % 16 != 0 || vt16.Address % 16 != 0)
            throw new ArgumentException("the packed key/value scratch must be 16-byte aligned (cp.async)", nameof(kvHalf));
        return (k16, vt16);
    }

    /// <summary>
    /// kv_pack_f16: k and v (float32 [nSeq·seqLen][kvHeads·d]) as f16 keys and transposed values in
    /// <paramref name="kvHalf"/> (<see cref="KvHalfBytes"/>), the layout the packed attention and PFS pass 1 read.
    /// </summary>
    public void PackKv(DevicePtr k, DevicePtr v, DeviceBuffer<byte> kvHalf, int nSeq, int seqLen, int kvHeads, int headDim)
    {
        ArgumentNullException.ThrowIfNull(kvHalf);
        if (nSeq == 0 || seqLen == 0) return;
        Positive(kvHeads, nameof(kvHeads));
        int padded = PaddedKeys(seqLen);
        var (k16, vt16) = PackedKv(kvHalf, nSeq, seqLen, kvHeads, headDim);
        Backend.Launch(KernelNames.KvPackF16, new Dim3((uint)(padded / 64), (uint)kvHeads, (uint)nSeq), RowBlock,
            KvPackSharedBytes(headDim), [k, v, k16, vt16, nSeq, seqLen, padded, kvHeads, headDim]);
    }

    /// <summary>
    /// Whether PFS pass 1 over a sample of <paramref name="T"/> tokens can read the packed f16 keys
    /// (<see cref="PfsRowStatsPacked"/>): the wide kernels, and scratch for one sequence of T.
    /// </summary>
    public bool UsesPackedPfs(int T, int kvHeads, int headDim, DeviceBuffer<byte>? kvHalf) =>
        UsesWideKernels(headDim) && kvHalf is not null && T > 0 && kvHalf.ByteLength >= KvHalfBytes(1, T, kvHeads, headDim);

    /// <summary>
    /// The kernel of <see cref="PfsRowStatsPacked"/>: two heads a block with 8 <see cref="WideWarps"/> when the GQA group
    /// holds an even number of heads, else one.
    /// </summary>
    public KernelSpec PfsRowStatsPackedKernel(int heads, int kvHeads) =>
        WideWarps == 8 && kvHeads > 0 && heads % kvHeads == 0 && heads / kvHeads % 2 == 0
            ? KernelNames.PfsRowStatsMma64Kv16Wide8 : KernelNames.PfsRowStatsMma64Kv16Wide;

    /// <summary>
    /// PFS pass 1 (as <see cref="PfsRowStats"/>) reading the keys of one sequence of <paramref name="T"/> tokens packed
    /// by <see cref="PackKv"/> into <paramref name="kvHalf"/>: the same statistics, half the bytes per key tile, copies
    /// overlapped with the products (<see cref="UsesPackedPfs"/> must hold).
    /// </summary>
    public void PfsRowStatsPacked(DevicePtr q, DeviceBuffer<byte> kvHalf, int T, DevicePtr spanStart, DevicePtr spanEnd, DevicePtr rowMax,
        DevicePtr rowSum, int nSpans, int maxSpanLen, int heads, int kvHeads, int headDim, ScoreOptions? scores = null)
    {
        if (nSpans == 0) return;
        CheckHeads(heads, kvHeads, headDim);
        var sc = CheckScores(scores, headDim);
        Positive(maxSpanLen, nameof(maxSpanLen));
        if (nSpans > 65535) throw new ArgumentOutOfRangeException(nameof(nSpans), nSpans, "at most 65535 spans per launch (grid.z)");
        if (!UsesPackedPfs(T, kvHeads, headDim, kvHalf))
            throw new InvalidOperationException($"PFS pass 1 from packed keys needs the wide kernels (head dimension 64) and scratch for T = {T}");
        Aligned8(q, nameof(q));
        var (k16, _) = PackedKv(kvHalf, 1, T, kvHeads, headDim);
        var kernel = PfsRowStatsPackedKernel(heads, kvHeads);
        int headsPerBlock = kernel == KernelNames.PfsRowStatsMma64Kv16Wide8 ? 2 : 1;
        Backend.Launch(kernel, new Dim3((uint)((maxSpanLen + 127) / 128), (uint)(heads / headsPerBlock), (uint)nSpans),
            128 * headsPerBlock, 2 * PfsRowStatsMmaSharedBytes(headDim),
            [q, k16, spanStart, spanEnd, rowMax, rowSum, nSpans, maxSpanLen, heads, kvHeads, headDim, sc.Scale, sc.Window]);
    }

    /// <summary>1/sqrt(headDim) as float, the attention and PFS score scale.</summary>
    public static float Scale(int headDim) => (float)(1.0 / Math.Sqrt(headDim));

    /// <summary>
    /// PFS pass 1: per (span, head, row) the softmax maximum and sum over the keys before the span (those in the row's window;
    /// a row that sees none gets −∞ and 0). <paramref name="scores"/>: the layer's scale, window and soft-cap (null: plain).
    /// </summary>
    public void PfsRowStats(DevicePtr q, DevicePtr k, DevicePtr spanStart, DevicePtr spanEnd, DevicePtr rowMax, DevicePtr rowSum,
        int nSpans, int maxSpanLen, int heads, int kvHeads, int headDim, ScoreOptions? scores = null)
    {
        if (nSpans == 0) return;
        CheckHeads(heads, kvHeads, headDim);
        var sc = CheckScores(scores, headDim);
        Positive(maxSpanLen, nameof(maxSpanLen));
        if (nSpans > 65535) throw new ArgumentOutOfRangeException(nameof(nSpans), nSpans, "at most 65535 spans per launch (grid.z)");
        if (UsesTensorCores(headDim))
        {
            Aligned8(q, nameof(q)); Aligned8(k, nameof(k));
            int blockRows = UsesWideKernels(headDim) ? 128 : 64;
            Backend.Launch(PfsRowStatsKernel(headDim), new Dim3((uint)((maxSpanLen + blockRows - 1) / blockRows), (uint)heads, (uint)nSpans),
                128, PfsRowStatsMmaSharedBytes(headDim),
                [q, k, spanStart, spanEnd, rowMax, rowSum, nSpans, maxSpanLen, heads, kvHeads, headDim, sc.Scale, sc.Window]);
            return;
        }
        var grid = new Dim3((uint)((maxSpanLen + 15) / 16), (uint)heads, (uint)nSpans);
        Backend.Launch(PfsRowStatsKernel(headDim), grid, 128, PfsRowStatsSharedBytes(headDim),
            [q, k, spanStart, spanEnd, rowMax, rowSum, nSpans, maxSpanLen, heads, kvHeads, headDim, sc.Scale, sc.Window, sc.SoftCap]);
    }

    /// <summary>
    /// PFS pass 2: col[span, s] for s &lt; start. With <paramref name="tileList"/> (<see cref="PfsKeyTiles.List"/>, rows of
    /// <paramref name="tileStride"/> ints from <paramref name="spanStart"/>'s first span on, the longest holding
    /// <paramref name="mostTiles"/> tiles) only the columns of the listed 16-key tiles are computed and written, the rest of
    /// col is left as it was; <see cref="DevicePtr.Null"/> computes every column below each start.
    /// </summary>
    public void PfsColumnMass(DevicePtr q, DevicePtr k, DevicePtr spanStart, DevicePtr spanEnd, DevicePtr rowMax, DevicePtr rowSum,
        DevicePtr col, DevicePtr tileList, int tileStride, int mostTiles, int nSpans, int maxSpanLen, int maxStart, int T, int heads,
        int kvHeads, int headDim, ScoreOptions? scores = null)
    {
        if (nSpans == 0 || maxStart == 0) return;
        CheckHeads(heads, kvHeads, headDim);
        var sc = CheckScores(scores, headDim);
        if (nSpans > 65535) throw new ArgumentOutOfRangeException(nameof(nSpans), nSpans, "at most 65535 spans per launch (grid.y)");
        if (!tileList.IsNull && (tileStride < mostTiles + 1 || mostTiles < 0))
            throw new ArgumentOutOfRangeException(nameof(tileStride), tileStride, $"a tile list row holds its count and up to {mostTiles} tiles");
        int tiles = tileList.IsNull ? (maxStart + PfsKeyTiles.TileKeys - 1) / PfsKeyTiles.TileKeys : mostTiles;
        if (tiles == 0) return;
        bool tensor = UsesTensorCores(headDim);
        if (tensor) { Aligned8(q, nameof(q)); Aligned8(k, nameof(k)); }
        // tiles a block: 4 (64 keys, scalar), 8 (one per warp), 16 (two per warp, the wide kernel)
        bool wide = UsesWidePassTwo(headDim, sc.Window);
        int blockTiles = !tensor ? 4 : wide ? 16 : 8;
        var grid = new Dim3((uint)((tiles + blockTiles - 1) / blockTiles), (uint)nSpans);
        int stride = tileList.IsNull ? 0 : tileStride;
        if (wide)
            Backend.Launch(KernelNames.PfsColumnMassMma64Wide, grid, 256, PfsColumnMassMmaSharedBytes(headDim),
                [q, k, spanStart, spanEnd, rowMax, rowSum, col, tileList, stride, nSpans, maxSpanLen, T, heads, kvHeads, headDim, sc.Scale]);
        else if (tensor)
            Backend.Launch(PfsColumnMassKernel(headDim, sc.Window), grid, 256, PfsColumnMassMmaSharedBytes(headDim),
                [q, k, spanStart, spanEnd, rowMax, rowSum, col, tileList, stride, nSpans, maxSpanLen, T, heads, kvHeads, headDim, sc.Scale,
                 sc.Window]);
        else
            Backend.Launch(PfsColumnMassKernel(headDim), grid, 256, PfsColumnMassSharedBytes(headDim),
                [q, k, spanStart, spanEnd, rowMax, rowSum, col, tileList, stride, nSpans, maxSpanLen, T, heads, kvHeads, headDim, sc.Scale,
                 sc.Window, sc.SoftCap]);
    }

    public void PfsWindowSum(DevicePtr col, DevicePtr itemSpan, DevicePtr itemLo, DevicePtr itemHi, DevicePtr pfs, int nItems, int T)
    {
        if (nItems == 0) return;
        Backend.Launch(KernelNames.PfsWindowSum, (nItems + 127) / 128, 128, 0, [col, itemSpan, itemLo, itemHi, pfs, nItems, T]);
    }

    /// <summary>nll[r] of each row of logits, soft-capped first when <paramref name="softCap"/> is positive (the model's final soft-cap).</summary>
    public void LossRowNll(DevicePtr logits, DevicePtr targets, DevicePtr nll, int rows, int vocab, float softCap = 0f)
    {
        if (rows == 0) return;
        Positive(vocab, nameof(vocab));
        if (!(softCap >= 0) || !float.IsFinite(softCap)) throw new ArgumentOutOfRangeException(nameof(softCap), softCap, "the soft-cap must be positive (0: none)");
        Backend.Launch(KernelNames.LossRowNll, rows, RowBlock, 0, [logits, targets, nll, rows, vocab, softCap]);
    }

    public void LossSegmentSum(DevicePtr nll, DevicePtr targets, DevicePtr segStart, DevicePtr segLen, DevicePtr segSum, DevicePtr segCount, int nSeg)
    {
        if (nSeg == 0) return;
        Backend.Launch(KernelNames.LossSegmentSum, (nSeg + 127) / 128, 128, 0, [nll, targets, segStart, segLen, segSum, segCount, nSeg]);
    }

    /// <summary>
    /// Row-major linear layer y[r, o] (+)= Σ_i W[o, i]·x[r, i] for r &lt; rows: W [outDim, inDim] and x [rows, inDim] in
    /// <paramref name="type"/>, y [rows, outDim] in <paramref name="outputType"/> (float32 unless asked; accumulation is float32
    /// either way). In cuBLAS's column-major terms y^T = W^T(stored [in, out]) op T · x^T:
    /// cublasGemmEx(T, N, m = outDim, n = rows, k = inDim, A = W, lda = inDim, B = x, ldb = inDim, C = y, ldc = outDim).
    /// </summary>
    public void Linear(DevicePtr x, DevicePtr w, CudaPrecision type, DevicePtr y, int rows, int inDim, int outDim, bool accumulate,
        CudaPrecision outputType = CudaPrecision.F32)
    {
        if (rows == 0) return;
        Backend.Gemm(new GemmCall(
            TransA: true, TransB: false, M: outDim, N: rows, K: inDim,
            A: w, AType: type, Lda: inDim, StrideA: 0,
            B: x, BType: type, Ldb: inDim, StrideB: 0,
            C: y, Ldc: outDim, StrideC: 0,
            Alpha: 1f, Beta: accumulate ? 1f : 0f, CType: outputType));
    }
}
