namespace LongDep.Cuda;

/// <summary>
/// A kernel the host launches: its exported name in the fatbin and its parameter kinds, one letter each:
/// <c>p</c> device pointer, <c>i</c> int32, <c>l</c> int64, <c>f</c> float32, <c>d</c> float64.
/// Every launch is checked against these kinds before it reaches the driver; a test checks them against kernels/*.cu.
/// </summary>
public sealed record KernelSpec(string Name, string Parameters)
{
    public int ParameterCount => Parameters.Length;
    public override string ToString() => $"{Name}({Parameters})";
}

/// <summary>The one list of every kernel the host launches (the names exported by longdep_kernels.fatbin).</summary>
public static class KernelNames
{
    // embedding.cu: (tokens, table, out, rows, dim, vocab, scale)
    public static readonly KernelSpec EmbedGatherF32 = new("embed_gather_f32", "pppiiif");
    public static readonly KernelSpec EmbedGatherF16 = new("embed_gather_f16", "pppiiif");
    public static readonly KernelSpec EmbedGatherBF16 = new("embed_gather_bf16", "pppiiif");
    // (positions, table, out, rows, dim, offset, tableRows): out += learned position rows
    public static readonly KernelSpec EmbedAddPositions = new("embed_add_positions", "pppiiii");

    // rmsnorm.cu: (x, w, y, rows, n, eps)
    public static readonly KernelSpec RmsNormF32 = new("rmsnorm_f32", "pppiif");
    public static readonly KernelSpec RmsNormF16 = new("rmsnorm_f16", "pppiif");
    public static readonly KernelSpec RmsNormBF16 = new("rmsnorm_bf16", "pppiif");
    // (x, w, h, rows, n, eps): h += RMSNorm(x)
    public static readonly KernelSpec RmsNormAddF32 = new("rmsnorm_add_f32", "pppiif");
    // (q, k, wq, wk, rows, heads, kvHeads, headDim, qStride, kStride, eps, qScale): per-head RMSNorm in place
    public static readonly KernelSpec QkRmsNorm = new("qk_rmsnorm", "ppppiiiiiiff");

    // layernorm.cu: (x, w, b, y, rows, n, eps)
    public static readonly KernelSpec LayerNormF32 = new("layernorm_f32", "ppppiif");
    public static readonly KernelSpec LayerNormF16 = new("layernorm_f16", "ppppiif");
    public static readonly KernelSpec LayerNormBF16 = new("layernorm_bf16", "ppppiif");

    // rope.cu: (q, k, positions, invFreq, rows, heads, kvHeads, headDim, qStride, kStride, style, scale)
    public static readonly KernelSpec RopeQk = new("rope_qk", "ppppiiiiiiif");

    // elementwise.cu
    public static readonly KernelSpec AddBiasF32 = new("add_bias_f32", "ppii");            // (x, bias, rows, n)
    public static readonly KernelSpec ConvertF32ToF16 = new("convert_f32_to_f16", "ppl");  // (src, dst, n)
    public static readonly KernelSpec ConvertF32ToBF16 = new("convert_f32_to_bf16", "ppl");
    // (x, bias, out, rows, n): out = relu(x + bias) in the output type
    public static readonly KernelSpec BiasReluF32 = new("bias_relu_f32", "pppii");
    public static readonly KernelSpec BiasReluF16 = new("bias_relu_f16", "pppii");
    public static readonly KernelSpec BiasReluBF16 = new("bias_relu_bf16", "pppii");

    // swiglu.cu: (gate, up, out, n)
    public static readonly KernelSpec SwiGluF32 = new("swiglu_f32", "pppl");
    public static readonly KernelSpec SwiGluF16 = new("swiglu_f16", "pppl");
    public static readonly KernelSpec SwiGluBF16 = new("swiglu_bf16", "pppl");
    public static readonly KernelSpec GeGluTanhF32 = new("geglu_tanh_f32", "pppl");
    public static readonly KernelSpec GeGluTanhF16 = new("geglu_tanh_f16", "pppl");
    public static readonly KernelSpec GeGluTanhBF16 = new("geglu_tanh_bf16", "pppl");

    // attention.cu: (q, k, v, kPrefix, vPrefix, prefixStart, out, nSeq, seqLen, prefixLen, heads, kvHeads, headDim, scale,
    // window, softCap)
    public static readonly KernelSpec AttentionF32 = new("attention_fwd_f32", "pppppppiiiiiifif");
    public static readonly KernelSpec AttentionF16 = new("attention_fwd_f16", "pppppppiiiiiifif");
    public static readonly KernelSpec AttentionBF16 = new("attention_fwd_bf16", "pppppppiiiiiifif");

    // attention_mma.cu: tensor-core variants of attention_fwd_* for head dimension 64 or 128, same parameters but softCap.
    public static readonly KernelSpec AttentionMma64F32 = new("attention_mma64_f32", "pppppppiiiiiifi");
    public static readonly KernelSpec AttentionMma64F16 = new("attention_mma64_f16", "pppppppiiiiiifi");
    public static readonly KernelSpec AttentionMma64BF16 = new("attention_mma64_bf16", "pppppppiiiiiifi");
    public static readonly KernelSpec AttentionMma128F32 = new("attention_mma128_f32", "pppppppiiiiiifi");
    public static readonly KernelSpec AttentionMma128F16 = new("attention_mma128_f16", "pppppppiiiiiifi");
    public static readonly KernelSpec AttentionMma128BF16 = new("attention_mma128_bf16", "pppppppiiiiiifi");

    // attention_mma.cu, keys and values packed as f16 once per layer (no prefix keys):
    // kv_pack_f16 (k, v, k16, vt16, nSeq, seqLen, paddedLen, kvHeads, headDim)
    public static readonly KernelSpec KvPackF16 = new("kv_pack_f16", "ppppiiiii");
    // (q, k16, vt16, out, nSeq, seqLen, paddedLen, heads, kvHeads, headDim, scale, window)
    public static readonly KernelSpec AttentionMma64Kv16F32 = new("attention_mma64_kv16_f32", "ppppiiiiiifi");
    public static readonly KernelSpec AttentionMma64Kv16F16 = new("attention_mma64_kv16_f16", "ppppiiiiiifi");
    public static readonly KernelSpec AttentionMma64Kv16BF16 = new("attention_mma64_kv16_bf16", "ppppiiiiiifi");
    public static readonly KernelSpec AttentionMma128Kv16F32 = new("attention_mma128_kv16_f32", "ppppiiiiiifi");
    public static readonly KernelSpec AttentionMma128Kv16F16 = new("attention_mma128_kv16_f16", "ppppiiiiiifi");
    public static readonly KernelSpec AttentionMma128Kv16BF16 = new("attention_mma128_kv16_bf16", "ppppiiiiiifi");
    // The same for head dimension 64 with 32 rows per warp (128-row blocks, ldmatrix): same parameters and outputs.
    public static readonly KernelSpec AttentionMma64Kv16WideF32 = new("attention_mma64_kv16_wide_f32", "ppppiiiiiifi");
    public static readonly KernelSpec AttentionMma64Kv16WideF16 = new("attention_mma64_kv16_wide_f16", "ppppiiiiiifi");
    public static readonly KernelSpec AttentionMma64Kv16WideBF16 = new("attention_mma64_kv16_wide_bf16", "ppppiiiiiifi");
    // The wide kernels with 8 warps (256-row blocks, block.x = 256): same parameters and outputs.
    public static readonly KernelSpec AttentionMma64Kv16Wide8F32 = new("attention_mma64_kv16_wide8_f32", "ppppiiiiiifi");
    public static readonly KernelSpec AttentionMma64Kv16Wide8F16 = new("attention_mma64_kv16_wide8_f16", "ppppiiiiiifi");
    public static readonly KernelSpec AttentionMma64Kv16Wide8BF16 = new("attention_mma64_kv16_wide8_bf16", "ppppiiiiiifi");

    // pfs.cu
    // (q, k, spanStart, spanEnd, rowMax, rowSum, nSpans, maxSpanLen, heads, kvHeads, headDim, scale, window, softCap)
    public static readonly KernelSpec PfsRowStats = new("pfs_row_stats", "ppppppiiiiifif");
    // (q, k, spanStart, spanEnd, rowMax, rowSum, col, tileList, tileStride, nSpans, maxSpanLen, T, heads, kvHeads, headDim,
    // scale, window, softCap); tileList may be null (every key column before each span's start), see PfsKeyTiles
    public static readonly KernelSpec PfsColumnMass = new("pfs_column_mass", "ppppppppiiiiiiifif");
    // (col, itemSpan, itemLo, itemHi, pfs, nItems, T)
    public static readonly KernelSpec PfsWindowSum = new("pfs_window_sum", "pppppii");

    // pfs_mma.cu: tensor-core variants of pfs_row_stats / pfs_column_mass for head dimension 64 or 128, same parameters
    // but softCap.
    public static readonly KernelSpec PfsRowStatsMma64 = new("pfs_row_stats_mma64", "ppppppiiiiifi");
    public static readonly KernelSpec PfsRowStatsMma128 = new("pfs_row_stats_mma128", "ppppppiiiiifi");
    // Pass 1 for head dimension 64 with 32 span rows per warp (128-row blocks, ldmatrix): same parameters and outputs.
    public static readonly KernelSpec PfsRowStatsMma64Wide = new("pfs_row_stats_mma64_wide", "ppppppiiiiifi");
    // The same reading kv_pack_f16's k16 (cp.async, two stages) in place of k: one head a block (4 warps), or two heads of
    // a GQA group (8 warps, grid.y = heads / 2).
    public static readonly KernelSpec PfsRowStatsMma64Kv16Wide = new("pfs_row_stats_mma64_kv16_wide", "ppppppiiiiifi");
    public static readonly KernelSpec PfsRowStatsMma64Kv16Wide8 = new("pfs_row_stats_mma64_kv16_wide8", "ppppppiiiiifi");
    // Pass 2 for head dimension 64 with 32 key columns per warp (256-key blocks, ldmatrix): same outputs, no window (a
    // windowed layer's pass 2 runs pfs_column_mass_mma64).
    public static readonly KernelSpec PfsColumnMassMma64Wide = new("pfs_column_mass_mma64_wide", "ppppppppiiiiiiif");
    public static readonly KernelSpec PfsColumnMassMma64 = new("pfs_column_mass_mma64", "ppppppppiiiiiiifi");
    public static readonly KernelSpec PfsColumnMassMma128 = new("pfs_column_mass_mma128", "ppppppppiiiiiiifi");

    // loss.cu
    public static readonly KernelSpec LossRowNll = new("loss_row_nll", "pppiif");              // (logits, targets, nll, rows, vocab, softCap)
    public static readonly KernelSpec LossSegmentSum = new("loss_segment_sum", "ppppppi");  // (nll, targets, segStart, segLen, segSum, segCount, nSeg)

    /// <summary>Every kernel above.</summary>
    public static IReadOnlyList<KernelSpec> All { get; } =
    [
        EmbedGatherF32, EmbedGatherF16, EmbedGatherBF16, EmbedAddPositions,
        RmsNormF32, RmsNormF16, RmsNormBF16, RmsNormAddF32, QkRmsNorm,
        LayerNormF32, LayerNormF16, LayerNormBF16,
        RopeQk,
        AddBiasF32, ConvertF32ToF16, ConvertF32ToBF16, BiasReluF32, BiasReluF16, BiasReluBF16,
        SwiGluF32, SwiGluF16, SwiGluBF16, GeGluTanhF32, GeGluTanhF16, GeGluTanhBF16,
        AttentionF32, AttentionF16, AttentionBF16,
        AttentionMma64F32, AttentionMma64F16, AttentionMma64BF16,
        AttentionMma128F32, AttentionMma128F16, AttentionMma128BF16,
        KvPackF16,
        AttentionMma64Kv16F32, AttentionMma64Kv16F16, AttentionMma64Kv16BF16,
        AttentionMma128Kv16F32, AttentionMma128Kv16F16, AttentionMma128Kv16BF16,
        AttentionMma64Kv16WideF32, AttentionMma64Kv16WideF16, AttentionMma64Kv16WideBF16,
        AttentionMma64Kv16Wide8F32, AttentionMma64Kv16Wide8F16, AttentionMma64Kv16Wide8BF16,
        PfsRowStats, PfsColumnMass, PfsWindowSum,
        PfsRowStatsMma64, PfsRowStatsMma128, PfsColumnMassMma64, PfsColumnMassMma128, PfsRowStatsMma64Wide, PfsColumnMassMma64Wide,
        PfsRowStatsMma64Kv16Wide, PfsRowStatsMma64Kv16Wide8,
        LossRowNll, LossSegmentSum,
    ];

    internal static KernelSpec EmbedGather(CudaPrecision table) => table switch
    {
        CudaPrecision.F32 => EmbedGatherF32,
        CudaPrecision.F16 => EmbedGatherF16,
        _ => EmbedGatherBF16,
    };

    internal static KernelSpec RmsNorm(CudaPrecision output) => output switch
    {
        CudaPrecision.F32 => RmsNormF32,
        CudaPrecision.F16 => RmsNormF16,
        _ => RmsNormBF16,
    };

    internal static KernelSpec SwiGlu(CudaPrecision output) => output switch
    {
        CudaPrecision.F32 => SwiGluF32,
        CudaPrecision.F16 => SwiGluF16,
        _ => SwiGluBF16,
    };

    internal static KernelSpec GeGluTanh(CudaPrecision output) => output switch
    {
        CudaPrecision.F32 => GeGluTanhF32,
        CudaPrecision.F16 => GeGluTanhF16,
        _ => GeGluTanhBF16,
    };

    internal static KernelSpec LayerNorm(CudaPrecision output) => output switch
    {
        CudaPrecision.F32 => LayerNormF32,
        CudaPrecision.F16 => LayerNormF16,
        _ => LayerNormBF16,
    };

    internal static KernelSpec BiasRelu(CudaPrecision output) => output switch
    {
        CudaPrecision.F32 => BiasReluF32,
        CudaPrecision.F16 => BiasReluF16,
        _ => BiasReluBF16,
    };

    internal static KernelSpec Attention(CudaPrecision output) => output switch
    {
        CudaPrecision.F32 => AttentionF32,
        CudaPrecision.F16 => AttentionF16,
        _ => AttentionBF16,
    };

    /// <summary>The head dimensions the tensor-core kernels (attention_mma.cu, pfs_mma.cu) are built for.</summary>
    public static bool HasTensorCoreKernels(int headDim) => headDim is 64 or 128;

    internal static KernelSpec AttentionMma(CudaPrecision output, int headDim) => (headDim, output) switch
    {
        (64, CudaPrecision.F32) => AttentionMma64F32,
        (64, CudaPrecision.F16) => AttentionMma64F16,
        (64, _) => AttentionMma64BF16,
        (128, CudaPrecision.F32) => AttentionMma128F32,
        (128, CudaPrecision.F16) => AttentionMma128F16,
        (128, _) => AttentionMma128BF16,
        _ => throw new ArgumentOutOfRangeException(nameof(headDim), headDim, "tensor-core attention is built for head dimensions 64 and 128"),
    };

    internal static KernelSpec AttentionMmaKv16(CudaPrecision output, int headDim) => (headDim, output) switch
    {
        (64, CudaPrecision.F32) => AttentionMma64Kv16F32,
        (64, CudaPrecision.F16) => AttentionMma64Kv16F16,
        (64, _) => AttentionMma64Kv16BF16,
        (128, CudaPrecision.F32) => AttentionMma128Kv16F32,
        (128, CudaPrecision.F16) => AttentionMma128Kv16F16,
        (128, _) => AttentionMma128Kv16BF16,
        _ => throw new ArgumentOutOfRangeException(nameof(headDim), headDim, "tensor-core attention is built for head dimensions 64 and 128"),
    };

    /// <summary>Whether the wide kernels (32 rows or key columns per warp: packed-f16 attention, PFS passes 1 and 2) exist for this head dimension.</summary>
    public static bool HasWideKernels(int headDim) => headDim == 64;

    /// <summary>The wide packed-f16 attention kernel with <paramref name="warps"/> (4 or 8) warps per block.</summary>
    internal static KernelSpec AttentionMmaKv16Wide(CudaPrecision output, int headDim, int warps = 4) => (headDim, warps, output) switch
    {
        (64, 4, CudaPrecision.F32) => AttentionMma64Kv16WideF32,
        (64, 4, CudaPrecision.F16) => AttentionMma64Kv16WideF16,
        (64, 4, _) => AttentionMma64Kv16WideBF16,
        (64, 8, CudaPrecision.F32) => AttentionMma64Kv16Wide8F32,
        (64, 8, CudaPrecision.F16) => AttentionMma64Kv16Wide8F16,
        (64, 8, _) => AttentionMma64Kv16Wide8BF16,
        (64, _, _) => throw new ArgumentOutOfRangeException(nameof(warps), warps, "wide tensor-core attention is built for 4 or 8 warps per block"),
        _ => throw new ArgumentOutOfRangeException(nameof(headDim), headDim, "wide tensor-core attention is built for head dimension 64"),
    };

    internal static KernelSpec PfsRowStatsMma(int headDim) => headDim switch
    {
        64 => PfsRowStatsMma64,
        128 => PfsRowStatsMma128,
        _ => throw new ArgumentOutOfRangeException(nameof(headDim), headDim, "tensor-core PFS is built for head dimensions 64 and 128"),
    };

    internal static KernelSpec PfsColumnMassMma(int headDim) => headDim switch
    {
        64 => PfsColumnMassMma64,
        128 => PfsColumnMassMma128,
        _ => throw new ArgumentOutOfRangeException(nameof(headDim), headDim, "tensor-core PFS is built for head dimensions 64 and 128"),
    };

    internal static KernelSpec Convert(CudaPrecision output) => output switch
    {
        CudaPrecision.F16 => ConvertF32ToF16,
        CudaPrecision.BF16 => ConvertF32ToBF16,
        _ => throw new ArgumentException("float32 needs no conversion kernel", nameof(output)),
    };
}
