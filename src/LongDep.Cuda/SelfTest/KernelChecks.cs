using LongDep.Cuda.Twins;
using LongDep.Models;

namespace LongDep.Cuda.SelfTest;

/// <summary>
/// Kernel-by-kernel comparisons: each check makes random inputs, runs the kernel through <see cref="KernelOps"/> (the
/// launch geometry the forward uses) and its C# twin on the same inputs, and compares. Used by the self-test and by the
/// GPU tests; on the simulated backend the "kernel" is the twin itself, which exercises this harness without a GPU.
/// </summary>
internal sealed class KernelChecks(GpuBackend backend, int seed = 1234)
{
    private readonly KernelOps ops = new(backend, AttentionKernels.Simple);
    // The tensor-core launcher the model would use (its forms from the environment), and each form pinned.
    private readonly KernelOps defaultOps = new(backend, AttentionKernels.TensorCores);
    private readonly KernelOps wide4Ops = new(backend, AttentionKernels.TensorCores) { WideKernels = true, WideWarps = 4 };
    private readonly KernelOps wide8Ops = new(backend, AttentionKernels.TensorCores) { WideKernels = true, WideWarps = 8 };
    private readonly KernelOps narrowOps = new(backend, AttentionKernels.TensorCores) { WideKernels = false };

    /// <summary>
    /// Which wide forms <see cref="TensorCoreChecks"/> compares with the 16-row kernels: none when
    /// <see cref="AttentionKernelNames.WideEnvironmentVariable"/> turns them off, only the pinned warp count when
    /// <see cref="AttentionKernelNames.WarpsEnvironmentVariable"/> is set, else 4 and 8 warps. So a form found faulty can be
    /// pinned away and the rest checked (bench/gpu-session.sh does that).
    /// </summary>
    public static int[] WideFormsToCheck()
    {
        if (!AttentionKernelNames.WideFromEnvironment()) return [];
        return string.IsNullOrWhiteSpace(Environment.GetEnvironmentVariable(AttentionKernelNames.WarpsEnvironmentVariable))
            ? [4, 8] : [AttentionKernelNames.WarpsFromEnvironment()];
    }

    /// <summary>A line for the self-test's log when the environment leaves wide forms unchecked, else null.</summary>
    public static string? WideFormsNote() => WideFormsToCheck() switch
    {
        [] => $"selftest: {AttentionKernelNames.WideEnvironmentVariable}=0: the wide kernels are neither used nor checked",
        [var w] => $"selftest: {AttentionKernelNames.WarpsEnvironmentVariable}={w}: the wide kernels are checked with {w} warps a block only",
        _ => null,
    };
    private readonly Random random = new(seed);

    /// <summary>Relative tolerance for a kernel output stored in <paramref name="type"/>.</summary>
    public static double OutputTolerance(CudaPrecision type, double f32 = 1e-5) => type switch
    {
        CudaPrecision.F32 => f32,
        CudaPrecision.F16 => 2e-3,
        _ => 1.6e-2,
    };

    /// <summary>Every check of the scalar kernels and cuBLAS, in a fixed order (the tensor-core kernels: <see cref="TensorCoreChecks"/>).</summary>
    public IEnumerable<CheckResult> All()
    {
        foreach (var t in Types) yield return Embed(t);
        yield return Embed(CudaPrecision.F16, scale: 8f);
        yield return EmbedAddPositions();
        foreach (var t in Types) yield return RmsNorm(t);
        yield return RmsNormAdd();
        yield return QkRmsNorm(headDim: 64, qScale: 1f);
        yield return QkRmsNorm(headDim: 256, qScale: 0.125f);
        foreach (var t in Types) yield return LayerNorm(t);
        yield return LayerNorm(CudaPrecision.F32, inPlace: true);
        yield return Rope(RopeStyle.AdjacentPairs, 10000f);
        yield return Rope(RopeStyle.Halves, 500000f);
        yield return RopeScaled(RopeScalingType.Yarn);
        yield return RopeScaled(RopeScalingType.Llama3);
        yield return AddBias();
        yield return Convert(CudaPrecision.F16);
        yield return Convert(CudaPrecision.BF16);
        foreach (var t in Types) yield return SwiGlu(t);
        foreach (var t in Types) yield return SwiGlu(t, geglu: true);
        foreach (var t in Types) yield return BiasRelu(t, withBias: true);
        yield return BiasRelu(CudaPrecision.F16, withBias: false);
        yield return Attention(CudaPrecision.F32, nSeq: 1, seqLen: 77, prefixLen: 0, heads: 4, kvHeads: 2, headDim: 64);
        yield return Attention(CudaPrecision.F16, nSeq: 3, seqLen: 40, prefixLen: 0, heads: 4, kvHeads: 1, headDim: 128);
        yield return Attention(CudaPrecision.BF16, nSeq: 3, seqLen: 33, prefixLen: 21, heads: 2, kvHeads: 2, headDim: 80);
        yield return Attention(CudaPrecision.F32, nSeq: 2, seqLen: 50, prefixLen: 50, heads: 4, kvHeads: 2, headDim: 256);
        // The model's extras: a sliding window (with and without prefix keys, tiles before a block's window skipped), a
        // soft-cap, another scale.
        yield return Attention(CudaPrecision.F32, nSeq: 1, seqLen: 150, prefixLen: 0, heads: 4, kvHeads: 2, headDim: 64,
            scores: new ScoreOptions(0.0625f, Window: 37, SoftCap: 5f));
        yield return Attention(CudaPrecision.F16, nSeq: 3, seqLen: 33, prefixLen: 21, heads: 2, kvHeads: 1, headDim: 32,
            scores: new ScoreOptions(KernelOps.Scale(32), Window: 25));
        yield return Attention(CudaPrecision.F32, nSeq: 2, seqLen: 40, prefixLen: 40, heads: 2, kvHeads: 2, headDim: 256,
            scores: new ScoreOptions(KernelOps.Scale(256), SoftCap: 2f));
        foreach (var r in Pfs(T: 300, heads: 4, kvHeads: 2, headDim: 64, spans: [(200, 216), (150, 166), (131, 140)])) yield return r;
        foreach (var r in Pfs(T: 1100, heads: 8, kvHeads: 2, headDim: 128, spans: [(1000, 1100), (700, 828), (401, 402)])) yield return r;
        // A window that spans rows see all, part or none of the keys before them through, and a soft-cap.
        foreach (var r in Pfs(T: 300, heads: 4, kvHeads: 2, headDim: 32, spans: [(200, 240), (150, 166), (131, 140)],
                     scores: new ScoreOptions(KernelOps.Scale(32), Window: 20, SoftCap: 3f))) yield return r;
        foreach (var r in Loss()) yield return r;
        foreach (var r in Loss(softCap: 3f)) yield return r;
        foreach (var t in Types)
        {
            yield return Linear(t, accumulate: false);
            yield return Linear(t, accumulate: true);
            if (t != CudaPrecision.F32) yield return LinearTypedOutput(t);
        }
        yield return StridedBatchedGemm();
    }

    /// <summary>
    /// The tensor-core kernels (head dimensions 64 and 128): partial 64-row tiles, prefixes, GQA groups, every output type,
    /// sliding windows (soft-capped scores have no tensor-core form).
    /// </summary>
    public IEnumerable<CheckResult> TensorCoreChecks()
    {
        var tc = AttentionKernels.TensorCores;
        yield return Attention(CudaPrecision.F32, nSeq: 1, seqLen: 200, prefixLen: 0, heads: 4, kvHeads: 2, headDim: 64, tc);
        yield return Attention(CudaPrecision.F16, nSeq: 3, seqLen: 40, prefixLen: 0, heads: 4, kvHeads: 1, headDim: 128, tc);
        yield return Attention(CudaPrecision.BF16, nSeq: 5, seqLen: 33, prefixLen: 21, heads: 8, kvHeads: 2, headDim: 64, tc);
        yield return Attention(CudaPrecision.F32, nSeq: 2, seqLen: 130, prefixLen: 128, heads: 2, kvHeads: 2, headDim: 128, tc);
        // Keys and values packed as f16 (kv_pack_f16 + attention_mma*_kv16): whole and partial tiles, several sequences.
        yield return Attention(CudaPrecision.F32, nSeq: 1, seqLen: 200, prefixLen: 0, heads: 4, kvHeads: 2, headDim: 64, tc, packedKv: true);
        yield return Attention(CudaPrecision.F16, nSeq: 3, seqLen: 40, prefixLen: 0, heads: 4, kvHeads: 1, headDim: 128, tc, packedKv: true);
        yield return Attention(CudaPrecision.BF16, nSeq: 2, seqLen: 192, prefixLen: 0, heads: 8, kvHeads: 2, headDim: 64, tc, packedKv: true);
        // Head dimension 64 runs the wide kernel (32 rows per warp, 128-row blocks) above; the 16-row kernel it replaces,
        // and the two against each other on the same inputs (the same products in the same order: equal outputs).
        yield return Attention(CudaPrecision.F32, nSeq: 1, seqLen: 200, prefixLen: 0, heads: 4, kvHeads: 2, headDim: 64, tc, packedKv: true, wide: false);
        // (Each wide form only where the environment leaves it in use: WideFormsToCheck.)
        var forms = WideFormsToCheck();
        if (forms.Contains(4))
        {
            yield return WideMatchesNarrow(CudaPrecision.F32, nSeq: 2, seqLen: 300, heads: 4, kvHeads: 1);
            yield return WideMatchesNarrow(CudaPrecision.F16, nSeq: 1, seqLen: 129, heads: 2, kvHeads: 2);
        }
        if (forms.Contains(8))
        {
            // The wide kernel with 8 warps (256-row blocks): a partial block, several sequences, a GQA group.
            yield return WideMatchesNarrow(CudaPrecision.F32, nSeq: 2, seqLen: 300, heads: 4, kvHeads: 1, warps: 8);
            yield return WideMatchesNarrow(CudaPrecision.BF16, nSeq: 1, seqLen: 520, heads: 2, kvHeads: 2, warps: 8);
        }
        // The PFS passes likewise (the Pfs checks below run the model's forms at head dimension 64).
        if (forms.Length > 0)
            foreach (var r in WidePfsMatchesNarrow(T: 700, heads: 4, kvHeads: 1, spans: [(600, 700), (300, 428), (37, 40), (64, 200)], forms))
                yield return r;
        foreach (var r in Pfs(T: 700, heads: 8, kvHeads: 2, headDim: 64, spans: [(600, 700), (300, 428), (37, 40), (129, 130)], tc)) yield return r;
        foreach (var r in Pfs(T: 1100, heads: 4, kvHeads: 4, headDim: 128, spans: [(1000, 1100), (700, 828), (401, 402)], tc)) yield return r;
        // Sliding windows on tensor cores: the prefix kernel, the packed kernels (16-row and wide, tiles before a block's or a
        // warp's window skipped), PFS passes 1 and 2 (spans whose rows see all, part or none of the keys before them).
        var window = new ScoreOptions(KernelOps.Scale(64), Window: 70);
        yield return Attention(CudaPrecision.BF16, nSeq: 3, seqLen: 100, prefixLen: 60, heads: 4, kvHeads: 2, headDim: 64, tc,
            scores: new ScoreOptions(0.1f, Window: 90));
        yield return Attention(CudaPrecision.F16, nSeq: 2, seqLen: 200, prefixLen: 0, heads: 2, kvHeads: 1, headDim: 128, tc, packedKv: true,
            scores: new ScoreOptions(KernelOps.Scale(128), Window: 70));
        yield return Attention(CudaPrecision.F32, nSeq: 1, seqLen: 300, prefixLen: 0, heads: 4, kvHeads: 2, headDim: 64, tc, packedKv: true,
            scores: window);
        if (forms.Contains(4)) yield return WideMatchesNarrow(CudaPrecision.F32, nSeq: 1, seqLen: 300, heads: 2, kvHeads: 1, scores: window);
        if (forms.Contains(8)) yield return WideMatchesNarrow(CudaPrecision.F16, nSeq: 1, seqLen: 520, heads: 2, kvHeads: 2, warps: 8, scores: window);
        if (forms.Length > 0)
            foreach (var r in WidePfsMatchesNarrow(T: 700, heads: 4, kvHeads: 2, spans: [(600, 700), (300, 428), (37, 40)], forms, scores: window))
                yield return r;
        foreach (var r in Pfs(T: 700, heads: 4, kvHeads: 2, headDim: 64, spans: [(600, 700), (300, 428), (37, 40), (129, 130)], tc, window))
            yield return r;
        foreach (var r in Pfs(T: 500, heads: 2, kvHeads: 1, headDim: 128, spans: [(400, 500), (200, 240)], tc,
                     new ScoreOptions(KernelOps.Scale(128), Window: 50))) yield return r;
    }

    private static readonly CudaPrecision[] Types = [CudaPrecision.F32, CudaPrecision.F16, CudaPrecision.BF16];

    private float[] RandomFloats(long n, double scale = 1.0)
    {
        var result = new float[n];
        for (long i = 0; i < n; i++) result[i] = (float)((random.NextDouble() * 2 - 1) * scale);
        return result;
    }

    private DeviceBuffer<T> Upload<T>(T[] values) where T : unmanaged
    {
        var buffer = backend.Allocate<T>(values.Length, "self-test input", "the self-test size");
        buffer.CopyFrom(values);
        return buffer;
    }

    private DeviceBuffer<float> Fresh(long n) => backend.Allocate<float>(n, "self-test output", "the self-test size");

    /// <summary>Values rounded through <paramref name="type"/> and uploaded in that type.</summary>
    private DeviceBuffer<byte> UploadTyped(float[] values, CudaPrecision type, out float[] rounded)
    {
        var raw = new byte[values.Length * type.ElementSize()];
        ElementTypes.FromFloat(values, type, raw);
        rounded = new float[values.Length];
        ElementTypes.ToFloat(raw, type, rounded);
        return Upload(raw);
    }

    private static float[] DownloadTyped(DeviceBuffer<byte> buffer, CudaPrecision type, long count)
    {
        var raw = buffer.ToArray();
        var result = new float[count];
        ElementTypes.ToFloat(raw, type, result);
        return result;
    }

    private static float[] RoundAll(float[] values, CudaPrecision type)
    {
        var result = new float[values.Length];
        for (int i = 0; i < values.Length; i++) result[i] = ElementTypes.Round(values[i], type);
        return result;
    }

    public CheckResult Embed(CudaPrecision tableType, float scale = 1f)
    {
        const int vocab = 50, dim = 96, rows = 37;
        var tokens = new int[rows];
        for (int i = 0; i < rows; i++) tokens[i] = random.Next(vocab);
        using var table = UploadTyped(RandomFloats((long)vocab * dim), tableType, out var rounded);
        using var tok = Upload(tokens);
        using var output = Fresh((long)rows * dim);
        ops.EmbedGather(tok.Pointer, table.Pointer, tableType, output.Pointer, rows, dim, vocab, scale);
        var expected = new float[rows * dim];
        EmbeddingTwin.Gather(tokens, rounded, expected, rows, dim, vocab, scale);
        return Compare.Arrays($"embed_gather ({tableType} table, {rows} rows x {dim}{(scale != 1f ? $", scale {scale}" : "")})",
            output.ToArray(), expected, 0);
    }

    /// <summary>Learned positions added to rows (OPT: table row offset + position), bit for bit.</summary>
    public CheckResult EmbedAddPositions()
    {
        const int tableRows = 70, dim = 72, rows = 41, offset = 2;
        var positions = new int[rows];
        for (int i = 0; i < rows; i++) positions[i] = random.Next(tableRows - offset);
        var table = RandomFloats((long)tableRows * dim);
        var h = RandomFloats((long)rows * dim);
        using var dp = Upload(positions);
        using var dt = Upload(table);
        using var dh = Upload(h);
        ops.EmbedAddPositions(dp.Pointer, dt.Pointer, dh.Pointer, rows, dim, offset, tableRows);
        EmbeddingTwin.AddPositions(positions, table, h, rows, dim, offset, tableRows);
        return Compare.Arrays($"embed_add_positions ({rows} rows x {dim}, offset {offset})", dh.ToArray(), h, 0);
    }

    public CheckResult RmsNorm(CudaPrecision outputType)
    {
        const int rows = 19, n = 300;
        const float eps = 1e-5f;
        var x = RandomFloats((long)rows * n, 3.0);
        var w = RandomFloats(n, 2.0);
        using var dx = Upload(x);
        using var dw = Upload(w);
        using var dy = backend.Allocate<byte>((long)rows * n * outputType.ElementSize(), "self-test output", "the self-test size");
        ops.RmsNorm(dx.Pointer, dw.Pointer, dy.Pointer, outputType, rows, n, eps);
        var expected = new float[rows * n];
        RmsNormTwin.Apply(x, w, expected, rows, n, eps);
        return Compare.Arrays($"rmsnorm ({outputType} out, {rows} rows x {n})", DownloadTyped(dy, outputType, (long)rows * n),
            RoundAll(expected, outputType), OutputTolerance(outputType));
    }

    /// <summary>h += RMSNorm(x): a sandwich block's post-norm added to the residual.</summary>
    public CheckResult RmsNormAdd()
    {
        const int rows = 13, n = 300;
        const float eps = 1e-6f;
        var x = RandomFloats((long)rows * n, 3.0);
        var w = RandomFloats(n, 2.0);
        var h = RandomFloats((long)rows * n);
        using var dx = Upload(x);
        using var dw = Upload(w);
        using var dh = Upload(h);
        ops.RmsNormAdd(dx.Pointer, dw.Pointer, dh.Pointer, rows, n, eps);
        RmsNormTwin.ApplyAdd(x, w, h, rows, n, eps);
        return Compare.Arrays($"rmsnorm_add_f32 ({rows} rows x {n})", dh.ToArray(), h, 1e-5);
    }

    /// <summary>Per-head RMSNorm of q (times <paramref name="qScale"/> first) and k, in place, strided rows.</summary>
    public CheckResult QkRmsNorm(int headDim, float qScale)
    {
        const int rows = 11, heads = 3, kvHeads = 2;
        const float eps = 1e-6f;
        int qStride = heads * headDim + 4, kStride = kvHeads * headDim + 2;
        var q = RandomFloats((long)rows * qStride, 4.0);
        var k = RandomFloats((long)rows * kStride, 4.0);
        var wq = RandomFloats(headDim, 2.0);
        var wk = RandomFloats(headDim, 2.0);
        using var dq = Upload(q);
        using var dk = Upload(k);
        using var dwq = Upload(wq);
        using var dwk = Upload(wk);
        ops.QkRmsNorm(dq.Pointer, dk.Pointer, dwq.Pointer, dwk.Pointer, rows, heads, kvHeads, headDim, qStride, kStride, eps, qScale);
        RmsNormTwin.HeadNorm(q, wq, rows, heads, headDim, qStride, eps, qScale);
        RmsNormTwin.HeadNorm(k, wk, rows, kvHeads, headDim, kStride, eps);
        // The padding between rows must come back untouched too.
        return Compare.Arrays($"qk_rmsnorm (q {heads} and k {kvHeads} heads of {headDim}, q scaled by {qScale})",
            [.. dq.ToArray(), .. dk.ToArray()], [.. q, .. k], 1e-5);
    }

    /// <summary>LayerNorm with weight and bias, to <paramref name="outputType"/>, or in place on float32 rows (post-norm).</summary>
    public CheckResult LayerNorm(CudaPrecision outputType, bool inPlace = false)
    {
        const int rows = 17, n = 300;
        const float eps = 1e-5f;
        var x = RandomFloats((long)rows * n, 3.0);
        for (int i = 0; i < x.Length; i++) x[i] += 1.5f; // a mean away from zero
        var w = RandomFloats(n, 2.0);
        var b = RandomFloats(n, 0.5);
        using var dx = Upload(x);
        using var dw = Upload(w);
        using var db = Upload(b);
        using var dy = inPlace ? null : backend.Allocate<byte>((long)rows * n * outputType.ElementSize(), "self-test output", "the self-test size");
        ops.LayerNorm(dx.Pointer, dw.Pointer, db.Pointer, inPlace ? dx.Pointer : dy!.Pointer, outputType, rows, n, eps);
        var expected = new float[rows * n];
        LayerNormTwin.Apply(x, w, b, expected, rows, n, eps);
        var actual = inPlace ? dx.ToArray() : DownloadTyped(dy!, outputType, (long)rows * n);
        return Compare.Arrays($"layernorm ({(inPlace ? "in place, F32" : $"{outputType} out")}, {rows} rows x {n})", actual,
            RoundAll(expected, outputType), OutputTolerance(outputType, 2e-5));
    }

    /// <summary>RoPE with a scaled model's tables (<see cref="RopeFrequencies"/>): the scaled frequencies and the attention factor.</summary>
    public CheckResult RopeScaled(RopeScalingType type)
    {
        const int rows = 19, heads = 2, kvHeads = 1, headDim = 128;
        var config = new ModelConfig
        {
            Architecture = "llama", Layers = 1, Dim = heads * headDim, FfDim = 8, Heads = heads, KvHeads = kvHeads, HeadDim = headDim,
            VocabSize = 8, ContextLength = 131072, NormEps = 1e-5f, RopeTheta = 500000f, Rope = RopeStyle.Halves, QkvBias = false,
            TiedEmbedding = false,
            RopeScaling = type == RopeScalingType.Yarn
                ? new RopeScaling { Type = type, Factor = 4, OriginalContext = 32768, AttentionFactor = null }
                : new RopeScaling { Type = type, Factor = 8, LowFreqFactor = 1, HighFreqFactor = 4, OriginalContext = 8192 },
        };
        var freq = RopeFrequencies.For(config, 0, 131072);
        int qStride = heads * headDim, kStride = kvHeads * headDim;
        var q = RandomFloats((long)rows * qStride);
        var k = RandomFloats((long)rows * kStride);
        var positions = new int[rows];
        for (int i = 0; i < rows; i++) positions[i] = i < 2 ? i : random.Next(131072);
        using var dq = Upload(q);
        using var dk = Upload(k);
        using var dp = Upload(positions);
        using var df = Upload(freq.InverseFrequencies);
        float factor = (float)freq.AttentionFactor;
        ops.RopeQk(dq.Pointer, dk.Pointer, dp.Pointer, df.Pointer, rows, heads, kvHeads, headDim, qStride, kStride, RopeStyle.Halves, factor);
        RopeTwin.Apply(q, positions, freq.InverseFrequencies, rows, heads, headDim, qStride, RopeStyle.Halves, factor);
        RopeTwin.Apply(k, positions, freq.InverseFrequencies, rows, kvHeads, headDim, kStride, RopeStyle.Halves, factor);
        return Compare.Arrays($"rope_qk ({config.RopeScaling} tables, attention factor {factor:0.####})", [.. dq.ToArray(), .. dk.ToArray()],
            [.. q, .. k], 1e-5);
    }

    public CheckResult Rope(RopeStyle style, float theta)
    {
        const int rows = 23, heads = 3, kvHeads = 2, headDim = 64, qStride = heads * headDim + 8, kStride = kvHeads * headDim + 4;
        var q = RandomFloats((long)rows * qStride);
        var k = RandomFloats((long)rows * kStride);
        var positions = new int[rows];
        for (int i = 0; i < rows; i++) positions[i] = i < 3 ? i : random.Next(131072);
        var invFreq = RopeTwin.InverseFrequencies(theta, headDim);
        using var dq = Upload(q);
        using var dk = Upload(k);
        using var dp = Upload(positions);
        using var df = Upload(invFreq);
        ops.RopeQk(dq.Pointer, dk.Pointer, dp.Pointer, df.Pointer, rows, heads, kvHeads, headDim, qStride, kStride, style);
        var expectedQ = (float[])q.Clone();
        var expectedK = (float[])k.Clone();
        RopeTwin.Apply(expectedQ, positions, invFreq, rows, heads, headDim, qStride, style);
        RopeTwin.Apply(expectedK, positions, invFreq, rows, kvHeads, headDim, kStride, style);
        // q and k in one comparison: the padding between rows must come back untouched too.
        return Compare.Arrays($"rope_qk ({style}, theta {theta}, q {heads} and k {kvHeads} heads, positions < 131072)",
            [.. dq.ToArray(), .. dk.ToArray()], [.. expectedQ, .. expectedK], 1e-5);
    }

    public CheckResult AddBias()
    {
        const int rows = 7, n = 129;
        var x = RandomFloats((long)rows * n);
        var b = RandomFloats(n);
        using var dx = Upload(x);
        using var db = Upload(b);
        ops.AddBias(dx.Pointer, db.Pointer, rows, n);
        var expected = (float[])x.Clone();
        ElementwiseTwin.AddBias(expected, b, rows, n);
        return Compare.Arrays($"add_bias_f32 ({rows} x {n})", dx.ToArray(), expected, 1e-6);
    }

    public CheckResult Convert(CudaPrecision type)
    {
        const int n = 1000;
        var x = new float[n];
        for (int i = 0; i < n; i++) x[i] = (float)((random.NextDouble() * 2 - 1) * Math.Pow(10, random.Next(-6, 4)));
        using var dx = Upload(x);
        using var dy = backend.Allocate<byte>((long)n * type.ElementSize(), "self-test output", "the self-test size");
        ops.Convert(dx.Pointer, dy.Pointer, type, n);
        return Compare.Arrays($"convert_f32_to_{type.ToString().ToLowerInvariant()} (bit-exact rounding)", DownloadTyped(dy, type, n),
            RoundAll(x, type), 0);
    }

    /// <summary>swiglu_* (or, with <paramref name="geglu"/>, geglu_tanh_*) against its twin.</summary>
    public CheckResult SwiGlu(CudaPrecision type, bool geglu = false)
    {
        // 1003 elements: whole groups of 8 with 16-byte accesses and a 3-element tail; then the same at an offset of one
        // element (views that are not 16-byte aligned), where every group takes the element-by-element path.
        const int n = 1003;
        var actual = new List<float>();
        var expected = new List<float>();
        foreach (int offset in new[] { 0, 1 })
        {
            using var dg = UploadTyped(RandomFloats(n + offset, 8.0), type, out var gate);
            using var du = UploadTyped(RandomFloats(n + offset, 2.0), type, out var up);
            using var dy = backend.Allocate<byte>((long)(n + offset) * type.ElementSize(), "self-test output", "the self-test size");
            long at = (long)offset * type.ElementSize();
            var twin = new float[n];
            if (geglu)
            {
                ops.GeGluTanh(dg.At(at), du.At(at), dy.At(at), type, n);
                ElementwiseTwin.GeGluTanh(gate.AsSpan(offset), up.AsSpan(offset), twin, n);
            }
            else
            {
                ops.SwiGlu(dg.At(at), du.At(at), dy.At(at), type, n);
                ElementwiseTwin.SwiGlu(gate.AsSpan(offset), up.AsSpan(offset), twin, n);
            }
            actual.AddRange(DownloadTyped(dy, type, n + offset)[offset..]);
            expected.AddRange(RoundAll(twin, type));
        }
        return Compare.Arrays($"{(geglu ? "geglu_tanh" : "swiglu")} ({type} in and out, {n} elements, aligned and offset by one)",
            actual.ToArray(), expected.ToArray(), OutputTolerance(type, 2e-5));
    }

    /// <summary>The ReLU feed-forward's bias + ReLU, float32 in, <paramref name="outputType"/> out.</summary>
    public CheckResult BiasRelu(CudaPrecision outputType, bool withBias)
    {
        const int rows = 9, n = 131;
        var x = RandomFloats((long)rows * n, 2.0);
        var b = RandomFloats(n);
        using var dx = Upload(x);
        using var db = Upload(b);
        using var dy = backend.Allocate<byte>((long)rows * n * outputType.ElementSize(), "self-test output", "the self-test size");
        ops.BiasRelu(dx.Pointer, withBias ? db.Pointer : DevicePtr.Null, dy.Pointer, outputType, rows, n);
        var expected = new float[rows * n];
        ElementwiseTwin.BiasRelu(x, withBias ? b : default, expected, rows, n);
        return Compare.Arrays($"bias_relu ({outputType} out, {rows} x {n}, {(withBias ? "with" : "no")} bias)", DownloadTyped(dy, outputType, (long)rows * n),
            RoundAll(expected, outputType), 0);
    }

    /// <summary>
    /// Attention through <paramref name="kernels"/>' launcher against the float64 twin; for tensor cores the twin gets
    /// the f16-rounded inputs the kernel multiplies (<see cref="TensorCoreInputs"/>), and the tolerance allows P in f16.
    /// </summary>
    /// <param name="packedKv">With tensor cores and no prefix: give the launcher scratch for the packed f16 keys and values,
    /// so kv_pack_f16 and attention_mma*_kv16 run (the path the model takes).</param>
    /// <param name="wide">With the packed path at head dimension 64: the model's form (true, the default: wide unless the environment
    /// says otherwise) or the 16-row kernel.</param>
    /// <param name="scores">Score scale, sliding window and soft-cap (null: 1/sqrt(headDim), neither).</param>
    public CheckResult Attention(CudaPrecision outputType, int nSeq, int seqLen, int prefixLen, int heads, int kvHeads, int headDim,
        AttentionKernels kernels = AttentionKernels.Simple, bool packedKv = false, bool wide = true, ScoreOptions? scores = null)
    {
        var sc = scores ?? ScoreOptions.Plain(headDim);
        var launcher = kernels == AttentionKernels.Simple ? ops : wide ? defaultOps : narrowOps;
        bool tensor = launcher.UsesTensorCores(headDim);
        using var kvHalf = packedKv && tensor && prefixLen == 0
            ? backend.Allocate<byte>(KernelOps.KvHalfBytes(nSeq, seqLen, kvHeads, headDim), "self-test packed keys and values", "the self-test size")
            : null;
        bool packed = launcher.UsesPackedKv(nSeq, seqLen, prefixLen, kvHeads, headDim, kvHalf);
        if (packedKv && !packed) return CheckResult.Failure($"attention_mma kv16 (d {headDim})", "the packed-f16 path was not taken");
        long rows = (long)nSeq * seqLen;
        var q = RandomFloats(rows * heads * headDim, 2.0);
        var k = RandomFloats(rows * kvHeads * headDim, 2.0);
        var v = RandomFloats(rows * kvHeads * headDim);
        int prefixRows = prefixLen > 0 ? (nSeq + 2) * prefixLen : 0;
        var kp = RandomFloats((long)prefixRows * kvHeads * headDim, 2.0);
        var vp = RandomFloats((long)prefixRows * kvHeads * headDim);
        var starts = new int[nSeq];
        for (int b = 0; b < nSeq; b++) starts[b] = prefixLen > 0 ? random.Next(prefixRows - prefixLen + 1) : 0;
        using var dq = Upload(q);
        using var dk = Upload(k);
        using var dv = Upload(v);
        using var dkp = Upload(kp);
        using var dvp = Upload(vp);
        using var ds = Upload(starts);
        using var dout = backend.Allocate<byte>(rows * heads * headDim * outputType.ElementSize(), "self-test output", "the self-test size");
        launcher.Attention(dq.Pointer, dk.Pointer, dv.Pointer, dkp.Pointer, dvp.Pointer, ds.Pointer, dout.Pointer, outputType,
            nSeq, seqLen, prefixLen, heads, kvHeads, headDim, kvHalf, scores: sc);
        var expected = new float[rows * heads * headDim];
        float scale = sc.Scale;
        if (tensor)
            AttentionTwin.Forward(TensorCoreInputs.Query(q, scale), TensorCoreInputs.Round(k), TensorCoreInputs.Round(v),
                TensorCoreInputs.Round(kp), TensorCoreInputs.Round(vp), starts, expected, nSeq, seqLen, prefixLen, heads, kvHeads, headDim, scale,
                sc.Window, sc.SoftCap);
        else
            AttentionTwin.Forward(q, k, v, kp, vp, starts, expected, nSeq, seqLen, prefixLen, heads, kvHeads, headDim, scale, sc.Window, sc.SoftCap);
        string extras = scores is null ? "" : $", {sc}";
        return Compare.Arrays(
            $"{(packed ? "kv_pack_f16 + " + launcher.PackedAttentionKernel(outputType, headDim).Name : tensor ? "attention_mma" : "attention_fwd")} ({outputType} out, {nSeq}x{seqLen}, prefix {prefixLen}, H {heads}/{kvHeads}, d {headDim}{extras})",
            DownloadTyped(dout, outputType, rows * heads * headDim), RoundAll(expected, outputType),
            tensor ? Math.Max(4e-3, OutputTolerance(outputType)) : OutputTolerance(outputType, 1e-4),
            floorFraction: tensor ? TensorCoreFloor : 1e-2);
    }

    /// <summary>
    /// The wide packed-f16 attention kernel (head dimension 64, 32 rows per warp) against the 16-row kernel on the same
    /// inputs: per row both run the same products and softmax steps in the same order, so the outputs must agree to
    /// float32 rounding (1e-6 relative, or one step of a 16-bit output; equal bit for bit where the compiler fuses the same
    /// operations in both, as on the kernel emulator).
    /// </summary>
    /// <param name="warps">Warps per block of the wide kernel: 4 (attention_mma64_kv16_wide_*) or 8 (wide8).</param>
    /// <param name="scores">Score scale and sliding window (null: plain causal).</param>
    public CheckResult WideMatchesNarrow(CudaPrecision outputType, int nSeq, int seqLen, int heads, int kvHeads, int warps = 4,
        ScoreOptions? scores = null)
    {
        const int headDim = 64;
        var wideOps = warps == 8 ? wide8Ops : wide4Ops;
        var wideKernel = KernelNames.AttentionMmaKv16Wide(outputType, headDim, warps);
        string name = $"{wideKernel.Name} vs {KernelNames.AttentionMmaKv16(outputType, headDim).Name} ({nSeq}x{seqLen}, H {heads}/{kvHeads}" +
            $"{(scores is { } sc ? $", {sc}" : "")})";
        if (wideOps.PackedAttentionKernel(outputType, headDim) != wideKernel || narrowOps.UsesWideKernels(headDim))
            return CheckResult.Failure(name, "the launchers do not select the wide and the 16-row kernels");
        long rows = (long)nSeq * seqLen;
        using var dq = Upload(RandomFloats(rows * heads * headDim, 2.0));
        using var dk = Upload(RandomFloats(rows * kvHeads * headDim, 2.0));
        using var dv = Upload(RandomFloats(rows * kvHeads * headDim));
        using var kvHalf = backend.Allocate<byte>(KernelOps.KvHalfBytes(nSeq, seqLen, kvHeads, headDim), "self-test packed keys and values", "the self-test size");
        long outBytes = rows * heads * headDim * outputType.ElementSize();
        using var wideOut = backend.Allocate<byte>(outBytes, "self-test output", "the self-test size");
        using var narrowOut = backend.Allocate<byte>(outBytes, "self-test output", "the self-test size");
        foreach (var (launcher, output) in new[] { (wideOps, wideOut), (narrowOps, narrowOut) })
            launcher.Attention(dq.Pointer, dk.Pointer, dv.Pointer, DevicePtr.Null, DevicePtr.Null, DevicePtr.Null, output.Pointer, outputType,
                nSeq, seqLen, 0, heads, kvHeads, headDim, kvHalf, scores: scores);
        long n = rows * heads * headDim;
        return Compare.Arrays(name, DownloadTyped(wideOut, outputType, n), DownloadTyped(narrowOut, outputType, n),
            outputType == CudaPrecision.F32 ? 1e-6 : OutputTolerance(outputType), floorFraction: 1e-3);
    }

    /// <summary>
    /// The PFS passes through the wide kernels (head dimension 64, 32 span rows or key columns per warp; pass 1 also from
    /// the packed f16 keys with 4 and 8 warps) against the 16-row kernels on the same inputs, pass 2 of both on the same
    /// statistics: the row maxima and sums and the key columns must agree to float32 rounding (equal on the kernel
    /// emulator). Three checks, and two per packed form.
    /// </summary>
    /// <param name="warps">The packed pass-1 forms to check: 4 and/or 8 warps (default both).</param>
    /// <param name="scores">Score scale and sliding window (null: plain).</param>
    public IEnumerable<CheckResult> WidePfsMatchesNarrow(int T, int heads, int kvHeads, (int Start, int End)[] spans, int[]? warps = null,
        ScoreOptions? scores = null)
    {
        warps ??= [4, 8];
        const int headDim = 64;
        string extras = scores is { } sc ? $", {sc}" : "";
        string Name(KernelSpec wide, KernelSpec narrow, string what) =>
            $"{wide.Name} vs {narrow.Name}{what} (T {T}, {spans.Length} spans, H {heads}/{kvHeads}{extras})";
        if (wide4Ops.PfsRowStatsKernel(headDim) != KernelNames.PfsRowStatsMma64Wide || narrowOps.PfsRowStatsKernel(headDim) != KernelNames.PfsRowStatsMma64
            || wide4Ops.PfsColumnMassKernel(headDim) != KernelNames.PfsColumnMassMma64Wide || narrowOps.PfsColumnMassKernel(headDim) != KernelNames.PfsColumnMassMma64)
        {
            yield return CheckResult.Failure(Name(KernelNames.PfsRowStatsMma64Wide, KernelNames.PfsRowStatsMma64, ""),
                "the launchers do not select the wide and the 16-row kernels");
            yield break;
        }
        int nSpans = spans.Length;
        int maxSpanLen = spans.Max(s => s.End - s.Start);
        int maxStart = spans.Max(s => s.Start);
        long stats = (long)nSpans * heads * maxSpanLen;
        using var dq = Upload(RandomFloats((long)T * heads * headDim, 2.0));
        using var dk = Upload(RandomFloats((long)T * kvHeads * headDim, 2.0));
        using var dStart = Upload(spans.Select(s => s.Start).ToArray());
        using var dEnd = Upload(spans.Select(s => s.End).ToArray());
        var results = new List<(float[] Max, float[] Sum, float[] Col)>();
        using var dMax = Fresh(stats);
        using var dSum = Fresh(stats);
        using var dCol = Fresh((long)nSpans * T);
        foreach (var launcher in new[] { wide4Ops, narrowOps })
        {
            dMax.Clear();
            dSum.Clear();
            launcher.PfsRowStats(dq.Pointer, dk.Pointer, dStart.Pointer, dEnd.Pointer, dMax.Pointer, dSum.Pointer, nSpans, maxSpanLen, heads, kvHeads, headDim,
                scores);
            var max = new float[stats];
            var sum = new float[stats];
            dMax.CopyTo(max);
            dSum.CopyTo(sum);
            results.Add((max, sum, new float[(long)nSpans * T]));
        }
        // Pass 1 from the packed f16 keys (kv_pack_f16 + pfs_row_stats_mma64_kv16_wide, and _wide8 with two heads a block
        // where the GQA group allows): the same statistics again.
        using var kvHalf = backend.Allocate<byte>(KernelOps.KvHalfBytes(1, T, kvHeads, headDim), "self-test packed keys", "the self-test size");
        wide4Ops.PackKv(dk.Pointer, dk.Pointer, kvHalf, 1, T, kvHeads, headDim);
        var packedLaunchers = warps.Select(w => w == 8 ? wide8Ops : wide4Ops).ToArray();
        var packed = new List<(KernelSpec Kernel, float[] Max, float[] Sum)>();
        foreach (var launcher in packedLaunchers)
        {
            dMax.Clear();
            dSum.Clear();
            launcher.PfsRowStatsPacked(dq.Pointer, kvHalf, T, dStart.Pointer, dEnd.Pointer, dMax.Pointer, dSum.Pointer, nSpans, maxSpanLen,
                heads, kvHeads, headDim, scores);
            var max = new float[stats];
            var sum = new float[stats];
            dMax.CopyTo(max);
            dSum.CopyTo(sum);
            packed.Add((launcher.PfsRowStatsPackedKernel(heads, kvHeads), max, sum));
        }
        // Pass 2 of both on the same statistics (the 16-row pass 1's, put back in dMax, dSum).
        dMax.CopyFrom(results[1].Max);
        dSum.CopyFrom(results[1].Sum);
        for (int i = 0; i < 2; i++)
        {
            dCol.Clear();
            (i == 0 ? wide4Ops : narrowOps).PfsColumnMass(dq.Pointer, dk.Pointer, dStart.Pointer, dEnd.Pointer, dMax.Pointer, dSum.Pointer,
                dCol.Pointer, DevicePtr.Null, 0, 0, nSpans, maxSpanLen, maxStart, T, heads, kvHeads, headDim, scores);
            dCol.CopyTo(results[i].Col);
        }
        // Pass 2 of both with a tile list that holds some of the tiles of a 16-row block's 8 and none of keys [256, 512), on
        // columns filled with a sentinel: the listed columns as without the list, the others untouched.
        int words = PfsKeyTiles.WordsPerSpan(T);
        var mask = new uint[nSpans * words];
        for (int sp = 0; sp < nSpans; sp++)
            for (int tile = 0; tile < (T + 15) / 16; tile++)
                if ((tile + sp) % 3 == 0 && tile is not (>= 16 and < 32)) mask[sp * words + (tile >> 5)] |= 1u << (tile & 31);
        var tiles = PfsKeyTiles.List(mask, spans.Select(s => s.Start).ToArray(), T);
        using var dTiles = Upload(tiles.Rows);
        var sentinel = Enumerable.Repeat(MaskSentinel, nSpans * T).ToArray();
        var maskedCols = new List<float[]>();
        foreach (var launcher in new[] { wide4Ops, narrowOps })
        {
            dCol.CopyFrom(sentinel);
            launcher.PfsColumnMass(dq.Pointer, dk.Pointer, dStart.Pointer, dEnd.Pointer, dMax.Pointer, dSum.Pointer, dCol.Pointer, dTiles.Pointer,
                tiles.Stride, tiles.MostTiles, nSpans, maxSpanLen, maxStart, T, heads, kvHeads, headDim, scores);
            maskedCols.Add(dCol.ToArray());
        }
        var maskedExpected = new float[nSpans * T];
        for (int sp = 0; sp < nSpans; sp++)
            for (int key = 0; key < T; key++)
                maskedExpected[sp * T + key] = key < spans[sp].Start && PfsKeyTiles.IsMarked(mask, sp, T, key) ? results[1].Col[sp * T + key] : MaskSentinel;
        var passOne = (KernelNames.PfsRowStatsMma64Wide, KernelNames.PfsRowStatsMma64);
        yield return Compare.Arrays(Name(passOne.Item1, passOne.Item2, " max"), results[0].Max, results[1].Max, 1e-6, floorFraction: 1e-3);
        yield return Compare.Arrays(Name(passOne.Item1, passOne.Item2, " sum"), results[0].Sum, results[1].Sum, 1e-6, floorFraction: 1e-3);
        foreach (var (kernel, max, sum) in packed)
        {
            yield return Compare.Arrays(Name(kernel, passOne.Item2, " max"), max, results[1].Max, 1e-6, floorFraction: 1e-3);
            yield return Compare.Arrays(Name(kernel, passOne.Item2, " sum"), sum, results[1].Sum, 1e-6, floorFraction: 1e-3);
        }
        if (scores is { Window: > 0 }) yield break; // a windowed pass 2 runs the 16-key kernel in both launchers
        yield return Compare.Arrays(Name(KernelNames.PfsColumnMassMma64Wide, KernelNames.PfsColumnMassMma64, ""), results[0].Col, results[1].Col,
            1e-6, floorFraction: 1e-3);
        yield return Compare.Arrays(Name(KernelNames.PfsColumnMassMma64Wide, KernelNames.PfsColumnMassMma64, ", key-tile list"), maskedCols[0],
            maskedExpected, 1e-6, floorFraction: 1e-3);
        yield return Compare.Arrays($"{KernelNames.PfsColumnMassMma64.Name}, key-tile list against none (T {T}, {spans.Length} spans)", maskedCols[1],
            maskedExpected, 0);
    }

    /// <summary>
    /// Magnitude floor of the tensor-core attention check, as a fraction of max |expected|. P.V multiplies P rounded to
    /// f16 while the row sum adds the unrounded P, so an output is off by up to 2^-11 · max |v| ≈ 4.9e-4 · max |v|
    /// however small it is (rows with few keys show it most); 4e-3 × 0.25 = 1e-3 of the array's scale covers that twice.
    /// The CPU kernel emulator measured 1.6e-4 · max |v| on the self-test's inputs.
    /// </summary>
    internal const double TensorCoreFloor = 0.25;

    /// <summary>
    /// The three PFS passes, each against its twin fed with the GPU's own inputs, plus the mass invariant Σ col = the span's
    /// rows that see a key before it (its length without a window).
    /// </summary>
    /// <remarks>For tensor cores the twins get the f16-rounded q and k the kernels multiply (<see cref="TensorCoreInputs"/>).</remarks>
    /// <param name="scores">Score scale, sliding window and soft-cap (null: 1/sqrt(headDim), neither).</param>
    public IEnumerable<CheckResult> Pfs(int T, int heads, int kvHeads, int headDim, (int Start, int End)[] spans,
        AttentionKernels kernels = AttentionKernels.Simple, ScoreOptions? scores = null)
    {
        var sc = scores ?? ScoreOptions.Plain(headDim);
        var launcher = kernels == AttentionKernels.Simple ? ops : defaultOps;
        bool tensor = launcher.UsesTensorCores(headDim);
        int nSpans = spans.Length;
        int maxSpanLen = spans.Max(s => s.End - s.Start);
        int maxStart = spans.Max(s => s.Start);
        var q = RandomFloats((long)T * heads * headDim, 2.0);
        var k = RandomFloats((long)T * kvHeads * headDim, 2.0);
        var starts = spans.Select(s => s.Start).ToArray();
        var ends = spans.Select(s => s.End).ToArray();
        var itemSpan = new List<int>();
        var lo = new List<int>();
        var hi = new List<int>();
        for (int s = 0; s < nSpans; s++)
        {
            for (int iv = 16; spans[s].Start - iv >= 0; iv += 37)
            {
                itemSpan.Add(s);
                lo.Add(spans[s].Start - iv);
                hi.Add(spans[s].End - iv);
            }
        }
        int nItems = lo.Count;
        long stats = (long)nSpans * heads * maxSpanLen;
        using var dq = Upload(q);
        using var dk = Upload(k);
        using var dStart = Upload(starts);
        using var dEnd = Upload(ends);
        using var dMax = Fresh(stats);
        using var dSum = Fresh(stats);
        using var dCol = Fresh((long)nSpans * T);
        using var dItemSpan = Upload(itemSpan.ToArray());
        using var dLo = Upload(lo.ToArray());
        using var dHi = Upload(hi.ToArray());
        using var dPfs = backend.Allocate<double>(nItems, "self-test output", "the self-test size");
        dMax.Clear();
        dSum.Clear();
        dCol.Clear();
        launcher.PfsRowStats(dq.Pointer, dk.Pointer, dStart.Pointer, dEnd.Pointer, dMax.Pointer, dSum.Pointer, nSpans, maxSpanLen, heads, kvHeads, headDim,
            sc);
        launcher.PfsColumnMass(dq.Pointer, dk.Pointer, dStart.Pointer, dEnd.Pointer, dMax.Pointer, dSum.Pointer, dCol.Pointer, DevicePtr.Null,
            0, 0, nSpans, maxSpanLen, maxStart, T, heads, kvHeads, headDim, sc);
        ops.PfsWindowSum(dCol.Pointer, dItemSpan.Pointer, dLo.Pointer, dHi.Pointer, dPfs.Pointer, nItems, T);

        string shape = $"T {T}, {nSpans} spans, H {heads}/{kvHeads}, d {headDim}{(tensor ? ", tensor cores" : "")}{(scores is null ? "" : $", {sc}")}";
        var gpuMax = dMax.ToArray();
        var gpuSum = dSum.ToArray();
        var gpuCol = dCol.ToArray();
        var expMax = new float[stats];
        var expSum = new float[stats];
        float scale = sc.Scale;
        if (tensor)
        {
            q = TensorCoreInputs.Query(q, scale);
            k = TensorCoreInputs.Round(k);
        }
        PfsTwin.RowStats(q, k, starts, ends, expMax, expSum, nSpans, maxSpanLen, heads, kvHeads, headDim, scale, sc.Window, sc.SoftCap);
        var used = UsedStatEntries(spans, heads, maxSpanLen);
        yield return Compare.Arrays($"pfs_row_stats max ({shape})", Pick(gpuMax, used), Pick(expMax, used), tensor ? 2e-5 : 1e-5);
        yield return Compare.Arrays($"pfs_row_stats sum ({shape})", Pick(gpuSum, used), Pick(expSum, used), 1e-4);

        var expCol = new float[(long)nSpans * T];
        PfsTwin.ColumnMass(q, k, starts, ends, gpuMax, gpuSum, expCol, nSpans, maxSpanLen, T, heads, kvHeads, headDim, scale, default,
            sc.Window, sc.SoftCap);
        yield return Compare.Arrays($"pfs_column_mass ({shape})", gpuCol, expCol, 1e-4);

        var massPerSpan = new double[nSpans];
        var lengths = new double[nSpans];
        for (int s = 0; s < nSpans; s++)
        {
            for (int c = 0; c < T; c++) massPerSpan[s] += gpuCol[s * T + c];
            // rows t that see a key before the start: all, or with a window those with t - window + 1 < start
            for (int t = spans[s].Start; t < spans[s].End; t++)
                if (sc.Window <= 0 || t - sc.Window + 1 < spans[s].Start) lengths[s]++;
        }
        yield return Compare.Arrays($"pfs mass invariant: sum of col = rows that see a key ({shape})", massPerSpan, lengths, 1e-4);

        var expPfs = new double[nItems];
        PfsTwin.WindowSum(gpuCol, itemSpan.ToArray(), lo.ToArray(), hi.ToArray(), expPfs, nItems, T);
        yield return Compare.Arrays($"pfs_window_sum ({nItems} windows)", dPfs.ToArray(), expPfs, 1e-9);

        // Pass 2 as the LADM probe runs it: only the listed key tiles of sparse windows (each span's length every 4 lengths,
        // as LADM's 128 keys every 512), on columns filled with a sentinel. The listed columns must be the twin's and the
        // rest untouched; the windows' sums must equal those of the unmasked pass exactly (the same sums in the same order).
        var sparseSpan = new List<int>();
        var sparseLo = new List<int>();
        var sparseHi = new List<int>();
        for (int s = 0; s < nSpans; s++)
        {
            int len = spans[s].End - spans[s].Start;
            for (int iv = 4 * len; spans[s].Start - iv >= 0; iv += 4 * len)
            {
                sparseSpan.Add(s);
                sparseLo.Add(spans[s].Start - iv);
                sparseHi.Add(spans[s].End - iv);
            }
        }
        var mask = PfsKeyTiles.Build(nSpans, T, sparseSpan.ToArray(), sparseLo.ToArray(), sparseHi.ToArray());
        // With a window, as the LADM probe lists them: only the tiles some row of the span sees.
        if (sc.Window > 0) mask = PfsKeyTiles.WithinWindow(mask, starts, T, sc.Window);
        var tiles = PfsKeyTiles.List(mask, starts, T);
        using var dTiles = Upload(tiles.Rows);
        var sentinel = Enumerable.Repeat(MaskSentinel, nSpans * T).ToArray();
        dCol.CopyFrom(sentinel);
        launcher.PfsColumnMass(dq.Pointer, dk.Pointer, dStart.Pointer, dEnd.Pointer, dMax.Pointer, dSum.Pointer, dCol.Pointer, dTiles.Pointer,
            tiles.Stride, tiles.MostTiles, nSpans, maxSpanLen, maxStart, T, heads, kvHeads, headDim, sc);
        var maskedCol = dCol.ToArray();
        var expMasked = (float[])sentinel.Clone();
        PfsTwin.ColumnMass(q, k, starts, ends, gpuMax, gpuSum, expMasked, nSpans, maxSpanLen, T, heads, kvHeads, headDim, scale, mask,
            sc.Window, sc.SoftCap);
        double marked = 0, before = 0;
        for (int s = 0; s < nSpans; s++)
        {
            marked += PfsKeyTiles.MarkedKeys(mask, s, T, spans[s].Start);
            before += spans[s].Start;
        }
        yield return Compare.Arrays($"pfs_column_mass, key-tile list ({shape}, {100 * marked / before:0}% of the keys)", maskedCol, expMasked, 1e-4);
        int nSparse = sparseLo.Count;
        // The probe clears the columns first: an unlisted tile a window reads (one no row of the span sees) sums as 0.
        dCol.CopyFrom(maskedCol.Select(v => v == MaskSentinel ? 0f : v).ToArray());
        using var dSparseSpan = Upload(sparseSpan.ToArray());
        using var dSparseLo = Upload(sparseLo.ToArray());
        using var dSparseHi = Upload(sparseHi.ToArray());
        using var dSparsePfs = backend.Allocate<double>(Math.Max(nSparse, 1), "self-test output", "the self-test size");
        ops.PfsWindowSum(dCol.Pointer, dSparseSpan.Pointer, dSparseLo.Pointer, dSparseHi.Pointer, dSparsePfs.Pointer, nSparse, T);
        var fullPfs = new double[nSparse];
        PfsTwin.WindowSum(gpuCol, sparseSpan.ToArray(), sparseLo.ToArray(), sparseHi.ToArray(), fullPfs, nSparse, T);
        yield return Compare.Arrays($"pfs window sums, key-tile list against none ({nSparse} windows)", dSparsePfs.ToArray().AsSpan(0, nSparse), fullPfs, 0);
    }

    /// <summary>What the masked pass-2 checks fill the columns with first: a value no probability mass takes.</summary>
    private const float MaskSentinel = -0.375f;

    private static int[] UsedStatEntries((int Start, int End)[] spans, int heads, int maxSpanLen)
    {
        var used = new List<int>();
        for (int s = 0; s < spans.Length; s++)
            for (int h = 0; h < heads; h++)
                for (int r = 0; r < spans[s].End - spans[s].Start; r++) used.Add((s * heads + h) * maxSpanLen + r);
        return used.ToArray();
    }

    private static float[] Pick(float[] values, int[] at) => at.Select(i => values[i]).ToArray();

    /// <param name="softCap">The final-logit soft-cap (0: none).</param>
    public IEnumerable<CheckResult> Loss(float softCap = 0f)
    {
        const int rows = 40, vocab = 1000;
        var logits = RandomFloats((long)rows * vocab, 6.0);
        var targets = new int[rows];
        for (int r = 0; r < rows; r++) targets[r] = r % 9 == 4 ? -1 : random.Next(vocab);
        int[] segStart = [0, 10, 25];
        int[] segLen = [10, 15, 15];
        using var dl = Upload(logits);
        using var dt = Upload(targets);
        using var dn = Fresh(rows);
        using var dss = Upload(segStart);
        using var dsl = Upload(segLen);
        using var dsum = backend.Allocate<double>(segStart.Length, "self-test output", "the self-test size");
        using var dcount = backend.Allocate<int>(segStart.Length, "self-test output", "the self-test size");
        ops.LossRowNll(dl.Pointer, dt.Pointer, dn.Pointer, rows, vocab, softCap);
        ops.LossSegmentSum(dn.Pointer, dt.Pointer, dss.Pointer, dsl.Pointer, dsum.Pointer, dcount.Pointer, segStart.Length);
        var nll = dn.ToArray();
        var expected = new float[rows];
        LossTwin.RowNll(logits, targets, expected, rows, vocab, softCap);
        string capped = softCap > 0 ? $", soft-cap {softCap}" : "";
        yield return Compare.Arrays($"loss_row_nll ({rows} rows x {vocab}, some targets -1{capped})", nll, expected, 1e-5);
        var expSum = new double[segStart.Length];
        var expCount = new int[segStart.Length];
        LossTwin.SegmentSum(nll, targets, segStart, segLen, expSum, expCount, segStart.Length);
        if (softCap > 0) yield break; // the segment sums do not depend on the cap
        yield return Compare.Arrays("loss_segment_sum sums", dsum.ToArray(), expSum, 1e-9);
        var counts = dcount.ToArray();
        yield return Compare.Arrays("loss_segment_sum counts", counts.Select(c => (double)c).ToArray(), expCount.Select(c => (double)c).ToArray(), 0);
    }

    public CheckResult Linear(CudaPrecision type, bool accumulate)
    {
        const int rows = 33, inDim = 96, outDim = 70;
        using var dx = UploadTyped(RandomFloats((long)rows * inDim), type, out var x);
        using var dw = UploadTyped(RandomFloats((long)outDim * inDim), type, out var w);
        var y0 = RandomFloats((long)rows * outDim);
        using var dy = Upload(y0);
        ops.Linear(dx.Pointer, dw.Pointer, type, dy.Pointer, rows, inDim, outDim, accumulate);
        var expected = (float[])y0.Clone();
        GemmTwin.Linear(x, w, expected, rows, inDim, outDim, accumulate);
        return Compare.Arrays($"cublasGemmEx linear ({type} inputs, {(accumulate ? "y +=" : "y =")} W x)", dy.ToArray(), expected, 1e-4);
    }

    /// <summary>The feed-forward's gate/up GEMMs: <paramref name="type"/> inputs and output, float32 accumulation.</summary>
    public CheckResult LinearTypedOutput(CudaPrecision type)
    {
        const int rows = 29, inDim = 136, outDim = 75;
        using var dx = UploadTyped(RandomFloats((long)rows * inDim), type, out var x);
        using var dw = UploadTyped(RandomFloats((long)outDim * inDim), type, out var w);
        using var dy = backend.Allocate<byte>((long)rows * outDim * type.ElementSize(), "self-test output", "the self-test size");
        ops.Linear(dx.Pointer, dw.Pointer, type, dy.Pointer, rows, inDim, outDim, accumulate: false, outputType: type);
        var expected = new float[rows * outDim];
        GemmTwin.Linear(x, w, expected, rows, inDim, outDim, accumulate: false);
        return Compare.Arrays($"cublasGemmEx linear ({type} inputs and output, y = W x)", DownloadTyped(dy, type, (long)rows * outDim),
            RoundAll(expected, type), OutputTolerance(type));
    }

    public CheckResult StridedBatchedGemm()
    {
        const int m = 17, n = 9, kDim = 24, batch = 3;
        var a = RandomFloats((long)m * kDim * batch);
        var b = RandomFloats((long)kDim * n * batch);
        using var da = Upload(a);
        using var db = Upload(b);
        using var dc = Fresh((long)m * n * batch);
        backend.Gemm(new GemmCall(false, false, m, n, kDim, da.Pointer, CudaPrecision.F32, m, (long)m * kDim,
            db.Pointer, CudaPrecision.F32, kDim, (long)kDim * n, dc.Pointer, m, (long)m * n, 1f, 0f, batch));
        var expected = new float[m * n * batch];
        for (int i = 0; i < batch; i++)
            GemmTwin.Gemm(false, false, m, n, kDim, 1f, a.AsSpan(i * m * kDim), m, b.AsSpan(i * kDim * n), kDim, 0f,
                expected.AsSpan(i * m * n), m);
        return Compare.Arrays($"cublasGemmStridedBatchedEx (f32, batch {batch})", dc.ToArray(), expected, 1e-4);
    }
}
