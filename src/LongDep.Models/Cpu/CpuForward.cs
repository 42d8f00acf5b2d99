using System.Buffers;
using System.Numerics.Tensors;

namespace LongDep.Models.Cpu;

/// <summary>
/// Called once per layer with that layer's post-RoPE queries <paramref name="q"/> [n, QDim] and keys
/// <paramref name="k"/> [n, KvDim] of the tokens of this run (not the prefix). The spans are valid only during the call.
/// </summary>
public delegate void LayerCallback(int layer, ReadOnlySpan<float> q, ReadOnlySpan<float> k, int n);

/// <summary>
/// The exact float32 forward of a Llama-family decoder on the CPU: the twin every CUDA number is checked against.
/// <list type="bullet">
/// <item>h = embedding[token]; per layer x = RMSNorm(h); q, k, v = W x (+ bias); RoPE on q and k; causal softmax
/// attention with grouped KV heads; h += Wo o; x = RMSNorm(h); h += W_down(silu(W_gate x) ⊙ W_up x).</item>
/// <item>Output: RMSNorm(h), logits = Output · x.</item>
/// </list>
/// Memory is O(T · (Dim + FfDim)): attention runs by query blocks with a per-row softmax over keys (never a T × T
/// matrix), and <see cref="TokenNll"/> forms logits a block of rows at a time. Work is split into a fixed set of
/// tiles, so results are bitwise identical for any <see cref="MaxThreads"/>. Instances are immutable and thread-safe.
/// </summary>
public sealed class CpuForward
{
    private const int GemmRowBlock = 64;   // multiples of the 4 × 4 register tile
    private const int GemmColBlock = 64;
    private const int AttentionRowBlock = 32;
    private const int ElementwiseRowBlock = 64;
    private const int NllRowBlock = 64;

    private readonly ModelWeights _weights;
    private readonly ParallelOptions _parallel;

    /// <summary>Checks the weights against their config and prepares a forward that uses up to <paramref name="maxThreads"/> threads (0: all processors).</summary>
    public CpuForward(ModelWeights weights, int maxThreads = 0)
        : this(weights, maxThreads, validate: true)
    {
    }

    private CpuForward(ModelWeights weights, int maxThreads, bool validate)
    {
        ArgumentNullException.ThrowIfNull(weights);
        ArgumentOutOfRangeException.ThrowIfNegative(maxThreads);
        if (validate)
        {
            weights.Config.Validate("CPU forward weights");
            weights.Validate("CPU forward weights");
        }
        _weights = weights;
        MaxThreads = maxThreads == 0 ? Environment.ProcessorCount : maxThreads;
        _parallel = new ParallelOptions { MaxDegreeOfParallelism = MaxThreads };
    }

    /// <summary>The model's shape.</summary>
    public ModelConfig Config => _weights.Config;

    /// <summary>The weights this forward reads.</summary>
    public ModelWeights Weights => _weights;

    /// <summary>Most threads one call uses.</summary>
    public int MaxThreads { get; }

    /// <summary>The same model with another thread limit (no copy of the weights).</summary>
    public CpuForward WithMaxThreads(int maxThreads) =>
        maxThreads == MaxThreads ? this : new CpuForward(_weights, maxThreads, validate: false);

    /// <summary>
    /// Logits [n, Vocab] of <paramref name="tokens"/> at positions prefix.Length, prefix.Length + 1, ...
    /// Holds all n × Vocab logits: meant for tests and short inputs; use <see cref="TokenNll"/> for long ones.
    /// </summary>
    public float[] Logits(ReadOnlySpan<int> tokens, KvCache? prefix = null)
    {
        int n = tokens.Length, vocab = Config.VocabSize, dim = Config.Dim;
        long size = (long)n * vocab;
        if (size > Array.MaxLength)
            throw new ArgumentException($"{n} tokens × {vocab} logits exceed the largest array; use TokenNll, which forms logits a block at a time", nameof(tokens));
        var logits = new float[size];
        if (n == 0) return logits;
        var hidden = RunCore(tokens, prefix, keepCache: false, onLayer: null, wantHidden: true, out _, CancellationToken.None)!;
        try
        {
            Matmul(hidden, n, dim, _weights.Output, vocab, null, logits, 0);
        }
        finally
        {
            ArrayPool<float>.Shared.Return(hidden);
        }
        return logits;
    }

    /// <summary>
    /// Runs <paramref name="tokens"/> at positions prefix.Length, ... and returns nll[t] = −log softmax(logits_t)[targets[t]]
    /// in float64; rows with targets[t] &lt; 0 are not scored (NaN) and their logits are never formed.
    /// With <paramref name="keepCache"/>, <paramref name="cache"/> receives this run's keys and values (prefix + new) for reuse.
    /// </summary>
    public double[] TokenNll(ReadOnlySpan<int> tokens, ReadOnlySpan<int> targets, KvCache? prefix, out KvCache? cache, bool keepCache,
                             LayerCallback? onLayer = null, CancellationToken cancellationToken = default)
    {
        int n = tokens.Length, vocab = Config.VocabSize, dim = Config.Dim;
        if (targets.Length != n)
            throw new ArgumentException($"{targets.Length} targets given for {n} tokens; pass one target per token (negative: not scored)", nameof(targets));
        for (int t = 0; t < n; t++)
        {
            if (targets[t] >= vocab)
                throw new ArgumentOutOfRangeException(nameof(targets), $"target {targets[t]} at index {t} is outside the vocabulary of {vocab} tokens");
        }

        var nll = new double[n];
        Array.Fill(nll, double.NaN);
        var hidden = RunCore(tokens, prefix, keepCache, Wrap(onLayer), wantHidden: n > 0, out cache, cancellationToken);
        if (hidden is null) return nll;

        var scored = new List<int>(n);
        for (int t = 0; t < n; t++) if (targets[t] >= 0) scored.Add(t);
        var target = targets.ToArray();

        var pool = ArrayPool<float>.Shared;
        float[] rows = pool.Rent(NllRowBlock * dim);
        float[] logits = pool.Rent(checked(NllRowBlock * vocab));
        try
        {
            for (int b0 = 0; b0 < scored.Count; b0 += NllRowBlock)
            {
                cancellationToken.ThrowIfCancellationRequested();
                int count = Math.Min(NllRowBlock, scored.Count - b0);
                for (int r = 0; r < count; r++)
                    hidden.AsSpan(scored[b0 + r] * dim, dim).CopyTo(rows.AsSpan(r * dim, dim));
                Matmul(rows, count, dim, _weights.Output, vocab, null, logits, 0);
                For(count, r =>
                {
                    int t = scored[b0 + r];
                    nll[t] = NegativeLogSoftmax(logits.AsSpan(r * vocab, vocab), target[t]);
                });
            }
        }
        finally
        {
            pool.Return(logits);
            pool.Return(rows);
            pool.Return(hidden);
        }
        return nll;
    }

    /// <summary>
    /// Runs only the decoder layers (no output head): for <paramref name="onLayer"/> (post-RoPE Q and K per layer)
    /// and/or to build a cache. The last layer stops after its Q/K/V, which nothing downstream reads.
    /// </summary>
    public KvCache? RunLayers(ReadOnlySpan<int> tokens, KvCache? prefix, bool keepCache, LayerCallback? onLayer = null,
                              CancellationToken cancellationToken = default)
    {
        RunCore(tokens, prefix, keepCache, Wrap(onLayer), wantHidden: false, out var cache, cancellationToken);
        return cache;
    }

    /// <summary>Per-layer callback with the forward's own arrays: q [n, QDim] from 0; keys [prefix + n, KvDim] from 0.</summary>
    internal delegate void LayerArrays(int layer, float[] q, float[] keys, int prefixLength, int n);

    private LayerArrays? Wrap(LayerCallback? onLayer)
    {
        if (onLayer is null) return null;
        int qDim = Config.QDim, kvDim = Config.KvDim;
        return (layer, q, keys, p, n) => onLayer(layer, q.AsSpan(0, n * qDim), keys.AsSpan(p * kvDim, n * kvDim), n);
    }

    /// <summary>
    /// The forward itself. Returns, when <paramref name="wantHidden"/>, the final RMSNorm'd hidden states [n, Dim]
    /// in an array rented from <see cref="ArrayPool{T}.Shared"/> that the caller returns; otherwise null.
    /// </summary>
    internal float[]? RunCore(ReadOnlySpan<int> tokens, KvCache? prefix, bool keepCache, LayerArrays? onLayer, bool wantHidden,
                              out KvCache? cache, CancellationToken cancellationToken)
    {
        var c = Config;
        int n = tokens.Length;
        int p = prefix?.Length ?? 0;
        CheckPrefix(prefix);
        CheckTokens(tokens);
        int total = checked(p + n);
        int dim = c.Dim, qDim = c.QDim, kvDim = c.KvDim, ff = c.FfDim, d = c.HeadDim;
        CheckSize((long)total * Math.Max(Math.Max(dim, qDim), ff), "activation buffers");
        CheckSize((long)total * kvDim, "key/value buffers");

        cache = null;
        if (n == 0)
        {
            if (keepCache && prefix is not null) cache = prefix;
            return null;
        }

        var pool = ArrayPool<float>.Shared;
        float[] h = pool.Rent(n * dim), x = pool.Rent(n * dim);
        float[] q = pool.Rent(n * qDim), att = pool.Rent(n * qDim);
        float[] gate = pool.Rent(n * ff), up = pool.Rent(n * ff);
        float[] vt = pool.Rent(total * kvDim);
        float[] cos = pool.Rent(n * d / 2), sin = pool.Rent(n * d / 2);
        float[]? sharedK = keepCache ? null : pool.Rent(total * kvDim);
        float[]? sharedV = keepCache ? null : pool.Rent(total * kvDim);
        var keys = keepCache ? new float[c.Layers][] : null;
        var values = keepCache ? new float[c.Layers][] : null;
        bool handedOut = false;
        try
        {
            var embedding = _weights.TokenEmbedding;
            for (int t = 0; t < n; t++)
                embedding.AsSpan(tokens[t] * dim, dim).CopyTo(h.AsSpan(t * dim, dim));
            CpuKernels.RopeTables(p, n, d, c.RopeTheta, cos, sin);

            for (int layer = 0; layer < c.Layers; layer++)
            {
                cancellationToken.ThrowIfCancellationRequested();
                var w = _weights.Layers[layer];
                float[] k = sharedK ?? new float[total * kvDim];
                float[] v = sharedV ?? new float[total * kvDim];
                if (prefix is not null)
                {
                    prefix.Keys(layer).CopyTo(k);
                    prefix.Values(layer).CopyTo(v);
                }

                NormRows(h, w.AttnNorm, x, n);
                Matmul(x, n, dim, w.Wq, qDim, w.Bq, q, 0);
                Matmul(x, n, dim, w.Wk, kvDim, w.Bk, k, p * kvDim);
                Matmul(x, n, dim, w.Wv, kvDim, w.Bv, v, p * kvDim);
                CpuKernels.ApplyRope(q.AsSpan(0, n * qDim), n, c.Heads, d, c.Rope, cos, sin);
                CpuKernels.ApplyRope(k.AsSpan(p * kvDim, n * kvDim), n, c.KvHeads, d, c.Rope, cos, sin);
                onLayer?.Invoke(layer, q, k, p, n);
                if (keys is not null) { keys[layer] = k; values![layer] = v; }
                if (!wantHidden && layer == c.Layers - 1) break;

                Attention(q, k, v, p, n, att, vt);
                Matmul(att, n, qDim, w.Wo, dim, null, x, 0);
                AddRows(h, x, n * dim);

                NormRows(h, w.FfnNorm, x, n);
                Matmul(x, n, dim, w.WGate, ff, null, gate, 0);
                Matmul(x, n, dim, w.WUp, ff, null, up, 0);
                SwiGlu(gate, up, n);
                Matmul(up, n, ff, w.WDown, dim, null, x, 0);
                AddRows(h, x, n * dim);
            }

            if (keys is not null) cache = new KvCache(total, kvDim, keys, values!);
            if (!wantHidden) return null;
            NormRows(h, _weights.OutputNorm, x, n);
            handedOut = true;
            return x;
        }
        finally
        {
            pool.Return(h);
            if (!handedOut) pool.Return(x);
            pool.Return(q); pool.Return(att); pool.Return(gate); pool.Return(up);
            pool.Return(vt); pool.Return(cos); pool.Return(sin);
            if (sharedK is not null) pool.Return(sharedK);
            if (sharedV is not null) pool.Return(sharedV);
        }
    }

    /// <summary>
    /// Causal attention of the n new rows (positions p..p+n−1) over keys 0..p+n−1, by blocks of query rows of one head:
    /// scores S = Q_blk · K_gᵀ, per-row scaled softmax over the row's own causal range, then O_blk = P · V_g.
    /// </summary>
    private void Attention(float[] q, float[] k, float[] v, int p, int n, float[] att, float[] vt)
    {
        var c = Config;
        int total = p + n, kvDim = c.KvDim, qDim = c.QDim, d = c.HeadDim;
        int group = c.Heads / c.KvHeads;
        float scale = (float)(1.0 / Math.Sqrt(d));

        // V transposed to [KvDim, total], so that P · V is again a product of rows.
        for (int s = 0; s < total; s++)
        {
            int src = s * kvDim;
            for (int j = 0; j < kvDim; j++) vt[j * total + s] = v[src + j];
        }

        int blocks = (n + AttentionRowBlock - 1) / AttentionRowBlock;
        For(c.Heads * blocks, item =>
        {
            int head = item / blocks, block = item % blocks, g = head / group;
            int t0 = block * AttentionRowBlock;
            int rows = Math.Min(AttentionRowBlock, n - t0);
            int width = p + t0 + rows; // keys seen by the block's last row
            float[] scores = ArrayPool<float>.Shared.Rent(rows * width);
            try
            {
                CpuKernels.DotRows(q, t0 * qDim + head * d, qDim, rows, k, g * d, kvDim, width, d, scores, 0, width);
                for (int r = 0; r < rows; r++)
                {
                    int seen = p + t0 + r + 1;
                    CpuKernels.ScaledSoftmax(scores.AsSpan(r * width, seen), scale);
                    scores.AsSpan(r * width + seen, width - seen).Clear();
                }
                CpuKernels.DotRows(scores, 0, width, rows, vt, g * d * total, total, d, width, att, t0 * qDim + head * d, qDim);
            }
            finally
            {
                ArrayPool<float>.Shared.Return(scores);
            }
        });
    }

    /// <summary>y[r, o] = Σ_i x[r, i] · W[o, i] (+ bias[o]) for r &lt; n, with y's rows at yOff + r · outDim.</summary>
    internal void Matmul(float[] x, int n, int inDim, float[] w, int outDim, float[]? bias, float[] y, int yOff)
    {
        int rowBlocks = (n + GemmRowBlock - 1) / GemmRowBlock;
        int colBlocks = (outDim + GemmColBlock - 1) / GemmColBlock;
        For(rowBlocks * colBlocks, item =>
        {
            int r0 = item / colBlocks * GemmRowBlock, c0 = item % colBlocks * GemmColBlock;
            int rows = Math.Min(GemmRowBlock, n - r0), cols = Math.Min(GemmColBlock, outDim - c0);
            CpuKernels.DotRows(x, r0 * inDim, inDim, rows, w, c0 * inDim, inDim, cols, inDim, y, yOff + r0 * outDim + c0, outDim);
            if (bias is not null)
            {
                var b = bias.AsSpan(c0, cols);
                for (int r = 0; r < rows; r++)
                {
                    var row = y.AsSpan(yOff + (r0 + r) * outDim + c0, cols);
                    TensorPrimitives.Add(row, b, row);
                }
            }
        });
    }

    private void NormRows(float[] h, float[] weight, float[] x, int n)
    {
        int dim = Config.Dim;
        float eps = Config.RmsEps;
        ForBlocks(n, (r0, rows) =>
        {
            for (int r = r0; r < r0 + rows; r++)
                CpuKernels.RmsNorm(h.AsSpan(r * dim, dim), weight, eps, x.AsSpan(r * dim, dim));
        });
    }

    private void AddRows(float[] h, float[] delta, int count)
    {
        int dim = Config.Dim;
        ForBlocks(count / dim, (r0, rows) =>
        {
            var dst = h.AsSpan(r0 * dim, rows * dim);
            TensorPrimitives.Add(dst, delta.AsSpan(r0 * dim, rows * dim), dst);
        });
    }

    /// <summary>up ← silu(gate) ⊙ up, silu(z) = z / (1 + e^−z), row by row.</summary>
    private void SwiGlu(float[] gate, float[] up, int n)
    {
        int ff = Config.FfDim;
        ForBlocks(n, (r0, rows) =>
        {
            float[] tmp = ArrayPool<float>.Shared.Rent(ff);
            try
            {
                var s = tmp.AsSpan(0, ff);
                for (int r = r0; r < r0 + rows; r++)
                {
                    var g = gate.AsSpan(r * ff, ff);
                    var u = up.AsSpan(r * ff, ff);
                    TensorPrimitives.Negate(g, s);
                    TensorPrimitives.Exp(s, s);
                    TensorPrimitives.Add(s, 1f, s);
                    TensorPrimitives.Divide(g, s, s);
                    TensorPrimitives.Multiply(s, u, u);
                }
            }
            finally
            {
                ArrayPool<float>.Shared.Return(tmp);
            }
        });
    }

    /// <summary>−log softmax(logits)[target], with the log-sum-exp in float64. Overwrites <paramref name="logits"/>.</summary>
    private static double NegativeLogSoftmax(Span<float> logits, int target)
    {
        float chosen = logits[target];
        float max = TensorPrimitives.Max(logits);
        TensorPrimitives.Subtract(logits, max, logits);
        TensorPrimitives.Exp(logits, logits);
        double sum = CpuKernels.SumDouble(logits);
        return (double)max - chosen + Math.Log(sum);
    }

    private void For(int count, Action<int> body)
    {
        if (count <= 0) return;
        if (MaxThreads == 1 || count == 1)
        {
            for (int i = 0; i < count; i++) body(i);
            return;
        }
        Parallel.For(0, count, _parallel, body);
    }

    private void ForBlocks(int n, Action<int, int> body)
    {
        int blocks = (n + ElementwiseRowBlock - 1) / ElementwiseRowBlock;
        For(blocks, b =>
        {
            int r0 = b * ElementwiseRowBlock;
            body(r0, Math.Min(ElementwiseRowBlock, n - r0));
        });
    }

    private void CheckTokens(ReadOnlySpan<int> tokens)
    {
        int vocab = Config.VocabSize;
        for (int t = 0; t < tokens.Length; t++)
        {
            if ((uint)tokens[t] >= (uint)vocab)
                throw new ArgumentOutOfRangeException(nameof(tokens), $"token id {tokens[t]} at index {t} is outside the vocabulary of {vocab} tokens (0..{vocab - 1}); was the text tokenized with this model's tokenizer?");
        }
    }

    private void CheckPrefix(KvCache? prefix)
    {
        if (prefix is null) return;
        if (prefix.Layers != Config.Layers || prefix.KvDim != Config.KvDim)
            throw new ArgumentException($"KV cache has {prefix.Layers} layers of width {prefix.KvDim}; this model needs {Config.Layers} layers of width {Config.KvDim}. Use a cache made by this model.", nameof(prefix));
    }

    private static void CheckSize(long elements, string what)
    {
        if (elements > Array.MaxLength)
            throw new ArgumentException($"{what} would need {elements} floats, more than one array holds; run fewer tokens at once");
    }
}
