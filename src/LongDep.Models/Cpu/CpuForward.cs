using System.Buffers;
using System.Numerics.Tensors;

namespace LongDep.Models.Cpu;

/// <summary>
/// Called once per layer with that layer's post-RoPE queries <paramref name="q"/> [n, QDim] and keys
/// <paramref name="k"/> [n, KvDim] of the tokens of this run (not the prefix). The spans are valid only during the call.
/// </summary>
public delegate void LayerCallback(int layer, ReadOnlySpan<float> q, ReadOnlySpan<float> k, int n);

/// <summary>How the CPU forward does its arithmetic (docs/numerics.md says what differs).</summary>
public enum CpuMath
{
    /// <summary>
    /// The exact twin: float32 weights (converted exactly from F16/BF16/quantized blocks), float32 activations, dot
    /// products on <see cref="System.Numerics.Vector{T}"/> lanes. What the CUDA twins and the reference tests compare with.
    /// </summary>
    Exact,
    /// <summary>
    /// The same float32 products on 512-bit lanes where the processor has AVX-512 (another summation order: the last
    /// digits differ), used by <c>score</c>, <c>ppl</c> and <c>bench</c> on the CPU.
    /// </summary>
    Fast,
}

/// <summary>
/// The float32 forward of a decoder-only transformer on the CPU: the twin every CUDA number is checked against.
/// It reads the block description of <see cref="ModelConfig"/>:
/// <list type="bullet">
/// <item>h = embedding[token] · EmbedScale (→ project_in) (+ learned position rows).</item>
/// <item>Per layer: x = Norm(h) (pre/sandwich) or h (post); q, k, v = W x (+ bias); q scaled (OPT); per-head
/// RMSNorm of q, k (Qwen3, Gemma 3); RoPE with the layer's frequencies; causal softmax attention with grouped KV
/// heads, the layer's sliding window and the soft-cap; a = Wo o (+ bias), normed (sandwich); h += a; h = Norm(h)
/// (post). Then the feed-forward the same way: SwiGLU, GeGLU (tanh GELU) or the ReLU MLP with biases.</item>
/// <item>Output: Norm(h) (when the model has a final norm) (→ project_out), logits = Output · x, soft-capped.</item>
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
    private const int NllRowBlock = 512;  // logits a block: large enough that converting the head once a block costs little
    private const int ConvertedRowBlock = 32;   // weight rows converted to float32 at once (a few hundred KB: L2)
    private const int ConvertedRowChunk = 512;  // activation rows multiplied by one converted block

    private readonly ModelWeights _weights;
    private readonly ParallelOptions _parallel;

    /// <summary>
    /// Checks the weights against their config and prepares a forward that uses up to <paramref name="maxThreads"/>
    /// threads (0: all processors) and the arithmetic <paramref name="math"/> names.
    /// </summary>
    public CpuForward(ModelWeights weights, int maxThreads = 0, CpuMath math = CpuMath.Exact)
        : this(weights, maxThreads, math, validate: true)
    {
    }

    private CpuForward(ModelWeights weights, int maxThreads, CpuMath math, bool validate)
    {
        ArgumentNullException.ThrowIfNull(weights);
        ArgumentOutOfRangeException.ThrowIfNegative(maxThreads);
        if (validate)
        {
            weights.Config.Validate("CPU forward weights");
            weights.Validate("CPU forward weights");
        }
        _weights = weights;
        Arithmetic = math;
        Wide = math == CpuMath.Fast && CpuKernels.Wide;
        MaxThreads = maxThreads == 0 ? Environment.ProcessorCount : maxThreads;
        _parallel = new ParallelOptions { MaxDegreeOfParallelism = MaxThreads };
    }

    /// <summary>The model's shape.</summary>
    public ModelConfig Config => _weights.Config;

    /// <summary>The weights this forward reads.</summary>
    public ModelWeights Weights => _weights;

    /// <summary>The arithmetic this forward does.</summary>
    public CpuMath Arithmetic { get; }

    /// <summary>Whether dot products run on 512-bit lanes (<see cref="CpuMath.Fast"/> on an AVX-512 processor).</summary>
    internal bool Wide { get; }

    /// <summary>Whether <see cref="CpuMath.Fast"/> runs on 512-bit lanes on this processor (it then sums in another order than <see cref="CpuMath.Exact"/>).</summary>
    public static bool FastUsesWideLanes => CpuKernels.Wide;

    /// <summary>Most threads one call uses.</summary>
    public int MaxThreads { get; }

    /// <summary>The same model with another thread limit (no copy of the weights).</summary>
    public CpuForward WithMaxThreads(int maxThreads) =>
        maxThreads == MaxThreads ? this : new CpuForward(_weights, maxThreads, Arithmetic, validate: false);

    /// <summary>
    /// Logits [n, Vocab] of <paramref name="tokens"/> at positions prefix.Length, prefix.Length + 1, ...
    /// Holds all n × Vocab logits: meant for tests and short inputs; use <see cref="TokenNll"/> for long ones.
    /// </summary>
    public float[] Logits(ReadOnlySpan<int> tokens, KvCache? prefix = null)
    {
        int n = tokens.Length, vocab = Config.VocabSize, dim = Config.EmbeddingWidth;
        long size = (long)n * vocab;
        if (size > Array.MaxLength)
            throw new ArgumentException($"{n} tokens × {vocab} logits exceed the largest array; use TokenNll, which forms logits a block at a time", nameof(tokens));
        var logits = new float[size];
        if (n == 0) return logits;
        var hidden = RunCore(tokens, prefix, keepCache: false, onLayer: null, wantHidden: true, out _, CancellationToken.None)!;
        try
        {
            Matmul(hidden, n, dim, _weights.Output, vocab, null, logits, 0);
            SoftCap(logits.AsSpan(0, n * vocab));
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
                             LayerCallback? onLayer = null, CancellationToken cancellationToken = default) =>
        TokenNllCore(tokens, targets, prefix, 0, out cache, keepCache, Wrap(onLayer), cancellationToken);

    /// <summary>
    /// Several sequences in one run: <paramref name="tokens"/> holds tokens.Length / <paramref name="sequenceLength"/>
    /// sequences of <paramref name="sequenceLength"/> tokens, each at positions prefix.Length, prefix.Length + 1, ... on top
    /// of the same <paramref name="prefix"/> and attending to it and to its own earlier tokens only (ProLong's pairs (·, j)
    /// on chunk j's cache). Returns the NLLs as <see cref="TokenNll"/> does, in the same order; every sequence's values
    /// are exactly those of running it alone. One run shares each weight block's conversion and makes the matrix
    /// products taller.
    /// </summary>
    public double[] SequencesNll(ReadOnlySpan<int> tokens, ReadOnlySpan<int> targets, int sequenceLength, KvCache? prefix,
                                 CancellationToken cancellationToken = default)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(sequenceLength, 1);
        if (tokens.Length % sequenceLength != 0)
            throw new ArgumentException($"{tokens.Length} tokens are not whole sequences of {sequenceLength}; pass sequences of equal length", nameof(tokens));
        return TokenNllCore(tokens, targets, prefix, sequenceLength, out _, keepCache: false, onLayer: null, cancellationToken);
    }

    /// <summary>
    /// Several sequences of <paramref name="sequenceLength"/> tokens in one run, each at positions 0, 1, ... on its own (no
    /// prefix), as <see cref="SequencesNll(ReadOnlySpan{int}, ReadOnlySpan{int}, int, KvCache?, CancellationToken)"/>;
    /// <paramref name="caches"/>[s] receives sequence s's keys and values, as running it alone with keepCache would give
    /// them (ProLong's chunks, whose caches their pairs reuse).
    /// </summary>
    public double[] SequencesNll(ReadOnlySpan<int> tokens, ReadOnlySpan<int> targets, int sequenceLength, out KvCache[] caches,
                                 CancellationToken cancellationToken = default)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(sequenceLength, 1);
        if (tokens.Length % sequenceLength != 0)
            throw new ArgumentException($"{tokens.Length} tokens are not whole sequences of {sequenceLength}; pass sequences of equal length", nameof(tokens));
        var nll = TokenNllCore(tokens, targets, null, sequenceLength, out var all, keepCache: true, onLayer: null, cancellationToken);
        int count = tokens.Length / sequenceLength;
        caches = new KvCache[count];
        for (int s = 0; s < count; s++) caches[s] = all!.Rows(s * sequenceLength, sequenceLength);
        return nll;
    }

    private double[] TokenNllCore(ReadOnlySpan<int> tokens, ReadOnlySpan<int> targets, KvCache? prefix, int segment, out KvCache? cache,
                                  bool keepCache, LayerArrays? onLayer, CancellationToken cancellationToken)
    {
        int n = tokens.Length, vocab = Config.VocabSize, dim = Config.EmbeddingWidth;
        if (targets.Length != n)
            throw new ArgumentException($"{targets.Length} targets given for {n} tokens; pass one target per token (negative: not scored)", nameof(targets));
        for (int t = 0; t < n; t++)
        {
            if (targets[t] >= vocab)
                throw new ArgumentOutOfRangeException(nameof(targets), $"target {targets[t]} at index {t} is outside the vocabulary of {vocab} tokens");
        }

        var nll = new double[n];
        Array.Fill(nll, double.NaN);
        var hidden = RunCore(tokens, prefix, keepCache, onLayer, wantHidden: n > 0, out cache, cancellationToken, segment);
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
                SoftCap(logits.AsSpan(0, count * vocab));
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
    /// The forward itself. Returns, when <paramref name="wantHidden"/>, the final hidden states [n, EmbeddingWidth]
    /// (normed and projected as the model does before its output head) in an array rented from
    /// <see cref="ArrayPool{T}.Shared"/> that the caller returns; otherwise null.
    /// </summary>
    internal float[]? RunCore(ReadOnlySpan<int> tokens, KvCache? prefix, bool keepCache, LayerArrays? onLayer, bool wantHidden,
                              out KvCache? cache, CancellationToken cancellationToken, int segment = 0)
    {
        var c = Config;
        int n = tokens.Length;
        int p = prefix?.Length ?? 0;
        CheckPrefix(prefix);
        CheckTokens(tokens);
        if (segment <= 0) segment = n;
        if (n % segment != 0)
            throw new ArgumentException($"{n} tokens are not whole sequences of {segment}; pass sequences of equal length", nameof(tokens));
        if (segment != n && (onLayer is not null || (keepCache && prefix is not null)))
            throw new ArgumentException("a run of several sequences reports no layers and keeps a cache only without a prefix; run one sequence for those", nameof(keepCache));
        int total = checked(p + n);
        int sequenceLength = checked(p + segment);
        CheckPositions(sequenceLength);
        int dim = c.Dim, qDim = c.QDim, kvDim = c.KvDim, ff = c.FfDim, d = c.HeadDim, e = c.EmbeddingWidth;
        CheckSize((long)total * Math.Max(Math.Max(Math.Max(dim, qDim), ff), e), "activation buffers");
        CheckSize((long)total * kvDim, "key/value buffers");

        cache = null;
        if (n == 0)
        {
            if (keepCache && prefix is not null) cache = prefix;
            return null;
        }

        var pool = ArrayPool<float>.Shared;
        int wide = Math.Max(dim, e);
        float[] h = pool.Rent(n * wide), x = pool.Rent(n * wide);
        float[] q = pool.Rent(n * qDim), att = pool.Rent(n * qDim);
        float[]? gate = c.HasGate ? pool.Rent(n * ff) : null;
        float[] up = pool.Rent(n * ff);
        int sequences = n / segment;
        float[] vt = pool.Rent(checked(sequences * sequenceLength * kvDim));
        float[][] cos = [pool.Rent(segment * d / 2), pool.Rent(segment * d / 2)], sin = [pool.Rent(segment * d / 2), pool.Rent(segment * d / 2)];
        var ropeReady = new RopeFrequencies?[2];
        float[]? sharedK = keepCache ? null : pool.Rent(total * kvDim);
        float[]? sharedV = keepCache ? null : pool.Rent(total * kvDim);
        var keys = keepCache ? new float[c.Layers][] : null;
        var values = keepCache ? new float[c.Layers][] : null;
        bool handedOut = false;
        try
        {
            Embed(tokens, p, segment, h, x);

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

                // Attention inputs.
                float[] input = h;
                if (c.NormPlacement != NormPlacement.Post)
                {
                    NormRows(h, w.AttnNorm, w.AttnNormBias, x, n);
                    input = x;
                }
                float[]? packed = PackRows(input, n, dim);
                try
                {
                    Matmul(input, n, dim, w.Wq, qDim, w.Bq, q, 0, packed);
                    Matmul(input, n, dim, w.Wk, kvDim, w.Bk, k, p * kvDim, packed);
                    Matmul(input, n, dim, w.Wv, kvDim, w.Bv, v, p * kvDim, packed);
                }
                finally
                {
                    if (packed is not null) pool.Return(packed);
                }
                if (c.ScaleQueries) ScaleRows(q, n * qDim, c.ScoreScale);
                if (c.QkNorm)
                {
                    HeadNorm(q, 0, n * c.Heads, w.QNorm!);
                    HeadNorm(k, p * kvDim, n * c.KvHeads, w.KNorm!);
                }
                if (c.Positions == PositionKind.Rope)
                {
                    int table = c.LocalRopeTheta is not null && c.WindowOf(layer) is not null ? 1 : 0;
                    var freq = RopeFrequencies.For(c, layer, sequenceLength);
                    if (ropeReady[table] is not { } done || !SameTable(done, freq))
                    {
                        CpuKernels.RopeTables(p, segment, freq.InverseFrequencies, freq.AttentionFactor, cos[table], sin[table]);
                        ropeReady[table] = freq;
                    }
                    for (int s0 = 0; s0 < n; s0 += segment)
                    {
                        CpuKernels.ApplyRope(q.AsSpan(s0 * qDim, segment * qDim), segment, c.Heads, d, c.Rope, cos[table], sin[table]);
                        CpuKernels.ApplyRope(k.AsSpan((p + s0) * kvDim, segment * kvDim), segment, c.KvHeads, d, c.Rope, cos[table], sin[table]);
                    }
                }
                onLayer?.Invoke(layer, q, k, p, n);
                if (keys is not null) { keys[layer] = k; values![layer] = v; }
                if (!wantHidden && layer == c.Layers - 1) break;

                Attention(layer, q, k, v, p, n, segment, att, vt);
                Matmul(att, n, qDim, w.Wo, dim, w.Bo, x, 0);
                if (w.PostAttnNorm is not null) NormRows(x, w.PostAttnNorm, null, x, n);
                AddRows(h, x, n * dim);
                if (c.NormPlacement == NormPlacement.Post) NormRows(h, w.AttnNorm, w.AttnNormBias, h, n);

                // Feed-forward.
                input = h;
                if (c.NormPlacement != NormPlacement.Post)
                {
                    NormRows(h, w.FfnNorm, w.FfnNormBias, x, n);
                    input = x;
                }
                packed = PackRows(input, n, dim);
                try
                {
                    Matmul(input, n, dim, w.WUp, ff, w.BUp, up, 0, packed);
                    if (gate is not null) Matmul(input, n, dim, w.WGate!, ff, null, gate, 0, packed);
                }
                finally
                {
                    if (packed is not null) pool.Return(packed);
                }
                Activate(gate, up, n);
                Matmul(up, n, ff, w.WDown, dim, w.BDown, x, 0);
                if (w.PostFfnNorm is not null) NormRows(x, w.PostFfnNorm, null, x, n);
                AddRows(h, x, n * dim);
                if (c.NormPlacement == NormPlacement.Post) NormRows(h, w.FfnNorm, w.FfnNormBias, h, n);
            }

            if (keys is not null) cache = new KvCache(total, kvDim, keys, values!);
            if (!wantHidden) return null;
            float[] result = x;
            if (c.FinalNorm) NormRows(h, _weights.OutputNorm!, _weights.OutputNormBias, x, n);
            else h.AsSpan(0, n * dim).CopyTo(x);
            if (c.HasProjections)
            {
                Matmul(x, n, dim, _weights.ProjectOut!, e, null, h, 0);
                result = h;
                pool.Return(x);
                x = h;
                h = null!;
            }
            handedOut = true;
            return result;
        }
        finally
        {
            if (h is not null) pool.Return(h);
            if (!handedOut) pool.Return(x);
            pool.Return(q); pool.Return(att); pool.Return(up);
            if (gate is not null) pool.Return(gate);
            pool.Return(vt);
            foreach (var a in cos) pool.Return(a);
            foreach (var a in sin) pool.Return(a);
            if (sharedK is not null) pool.Return(sharedK);
            if (sharedV is not null) pool.Return(sharedV);
        }
    }

    private static bool SameTable(RopeFrequencies a, RopeFrequencies b) =>
        a.AttentionFactor == b.AttentionFactor && a.InverseFrequencies.AsSpan().SequenceEqual(b.InverseFrequencies);

    /// <summary>
    /// h[t] = embedding[token t] · EmbedScale, projected in when the model has projections, plus the learned position row
    /// of position p + t mod <paramref name="segment"/>.
    /// </summary>
    private void Embed(ReadOnlySpan<int> tokens, int p, int segment, float[] h, float[] scratch)
    {
        var c = Config;
        int n = tokens.Length, dim = c.Dim, e = c.EmbeddingWidth;
        var embedding = _weights.TokenEmbedding;
        float[] rows = c.HasProjections ? scratch : h;
        for (int t = 0; t < n; t++)
            embedding.ReadF32((long)tokens[t] * e, rows.AsSpan(t * e, e));
        if (c.EmbedScale != 1f) ScaleRows(rows, n * e, c.EmbedScale);
        if (c.HasProjections) Matmul(rows, n, e, _weights.ProjectIn!, dim, null, h, 0);
        if (c.Positions == PositionKind.Learned)
        {
            var table = _weights.PositionEmbedding!;
            for (int t = 0; t < n; t++)
            {
                var row = h.AsSpan(t * dim, dim);
                TensorPrimitives.Add(row, table.AsSpan((c.PositionOffset + p + t % segment) * dim, dim), row);
            }
        }
    }

    /// <summary>
    /// Causal attention of the n new rows, which are n / <paramref name="segment"/> sequences of <paramref name="segment"/>
    /// rows each at positions p..p+segment−1 on top of the same p prefix rows: a row attends to the prefix's keys and to
    /// its own sequence's keys up to itself (only the last <see cref="ModelConfig.WindowOf"/> of them on a sliding-window
    /// layer). By blocks of query rows of one head: scores S = Q_blk · K_gᵀ (prefix keys, then the sequence's), per-row
    /// scaled (and soft-capped) softmax over the row's own key range, then O_blk = P · V_g. Each score is one dot product
    /// whatever the split, so a sequence's rows come out the same alone or among others.
    /// </summary>
    private void Attention(int layer, float[] q, float[] k, float[] v, int p, int n, int segment, float[] att, float[] vt)
    {
        var c = Config;
        int kvDim = c.KvDim, qDim = c.QDim, d = c.HeadDim;
        int group = c.Heads / c.KvHeads;
        float scale = c.ScaleQueries ? 1f : c.ScoreScale;
        float? cap = c.AttentionSoftCap;
        int? window = c.WindowOf(layer);
        int sequences = n / segment, length = p + segment;

        // V transposed per sequence to [KvDim, p + segment] (the prefix's columns, then the sequence's), so that P · V
        // is again a product of rows.
        For(sequences, sq =>
        {
            int dst0 = sq * kvDim * length;
            for (int s = 0; s < length; s++)
            {
                int src = (s < p ? s : p + sq * segment + s - p) * kvDim;
                for (int j = 0; j < kvDim; j++) vt[dst0 + j * length + s] = v[src + j];
            }
        });

        int blocks = (segment + AttentionRowBlock - 1) / AttentionRowBlock;
        For(sequences * c.Heads * blocks, item =>
        {
            int sq = item / (c.Heads * blocks), rest = item % (c.Heads * blocks);
            int head = rest / blocks, block = rest % blocks, g = head / group;
            int t0 = block * AttentionRowBlock, row0 = sq * segment + t0;
            int rows = Math.Min(AttentionRowBlock, segment - t0);
            int width = p + t0 + rows; // keys seen by the block's last row
            float[] scores = ArrayPool<float>.Shared.Rent(rows * width);
            try
            {
                if (p > 0)
                    CpuKernels.DotRows(q, row0 * qDim + head * d, qDim, rows, k, g * d, kvDim, p, d, scores, 0, width, Wide);
                CpuKernels.DotRows(q, row0 * qDim + head * d, qDim, rows, k, (p + sq * segment) * kvDim + g * d, kvDim, t0 + rows, d,
                                   scores, p, width, Wide);
                for (int r = 0; r < rows; r++)
                {
                    int seen = p + t0 + r + 1;
                    int first = window is int w ? Math.Max(0, seen - w) : 0;
                    var row = scores.AsSpan(r * width, width);
                    row[..first].Clear();
                    CpuKernels.ScaledSoftmax(row[first..seen], scale, cap);
                    row[seen..].Clear();
                }
                CpuKernels.DotRows(scores, 0, width, rows, vt, (sq * kvDim + g * d) * length, length, d, width, att,
                                   row0 * qDim + head * d, qDim, Wide);
            }
            finally
            {
                ArrayPool<float>.Shared.Return(scores);
            }
        });
    }

    /// <summary>
    /// y[r, o] = Σ_i x[r, i] · W[o, i] (+ bias[o]) for r &lt; n, with y's rows at yOff + r · outDim. A float32 array is
    /// read in place; a matrix stored in another type (F16/BF16/quantized data in the model file) is converted a block of
    /// <see cref="ConvertedRowBlock"/> rows at a time into float32 scratch that serves up to <see cref="ConvertedRowChunk"/>
    /// activation rows, so the conversion is exact (as dequantizing at load would be) and its cost is shared by many rows.
    /// </summary>
    internal void Matmul(float[] x, int n, int inDim, WeightMatrix w, int outDim, float[]? bias, float[] y, int yOff, float[]? packed = null)
    {
        if (n <= 0) return;
        if (Packed)
        {
            float[]? own = packed is null ? PackRows(x, n, inDim) : null;
            try
            {
                MatmulPacked(packed ?? own!, n, inDim, w, outDim, bias, y, yOff);
            }
            finally
            {
                if (own is not null) ArrayPool<float>.Shared.Return(own);
            }
            return;
        }
        if (w.Float32Array is { } array)
        {
            Matmul(x, n, inDim, array, outDim, bias, y, yOff);
            return;
        }
        int colBlocks = (outDim + ConvertedRowBlock - 1) / ConvertedRowBlock;
        int rowChunks = (n + ConvertedRowChunk - 1) / ConvertedRowChunk;
        For(rowChunks * colBlocks, item =>
        {
            int r0 = item / colBlocks * ConvertedRowChunk, c0 = item % colBlocks * ConvertedRowBlock;
            int rows = Math.Min(ConvertedRowChunk, n - r0), cols = Math.Min(ConvertedRowBlock, outDim - c0);
            float[] block = ArrayPool<float>.Shared.Rent(cols * inDim);
            try
            {
                w.ReadF32((long)c0 * inDim, block.AsSpan(0, cols * inDim));
                CpuKernels.DotRows(x, r0 * inDim, inDim, rows, block, 0, inDim, cols, inDim, y, yOff + r0 * outDim + c0, outDim, Wide);
                AddBias(bias, c0, cols, y, yOff + r0 * outDim + c0, rows, outDim);
            }
            finally
            {
                ArrayPool<float>.Shared.Return(block);
            }
        });
        GC.KeepAlive(w);
    }

    /// <summary>Whether the matrix products run <see cref="PackedGemm"/> (<see cref="CpuMath.Fast"/> on an AVX-512 processor).</summary>
    internal bool Packed => Wide && PackedGemm.Supported;

    /// <summary>
    /// The activations [n, inDim] packed for <see cref="PackedGemm"/> (an array rented from <see cref="ArrayPool{T}.Shared"/>
    /// that the caller returns), so that the products that read the same input (Q, K, V; gate, up) pack it once; null
    /// when the products do not run packed.
    /// </summary>
    private float[]? PackRows(float[] x, int n, int inDim)
    {
        if (!Packed || n <= 0) return null;
        long length = PackedGemm.PackedLength(n, inDim);
        CheckSize(length, "packed activations");
        var packed = ArrayPool<float>.Shared.Rent((int)length);
        For((n + PackedGemm.PanelRows - 1) / PackedGemm.PanelRows, panel => PackedGemm.PackPanel(x, 0, inDim, n, inDim, panel, packed));
        return packed;
    }

    /// <summary>
    /// The packed product: tasks of up to <see cref="ConvertedRowChunk"/> activation rows × <see cref="ConvertedRowBlock"/>
    /// weight rows, each weight block converted to float32 once per task (zero rows pad it to whole register tiles).
    /// </summary>
    private void MatmulPacked(float[] packed, int n, int inDim, WeightMatrix w, int outDim, float[]? bias, float[] y, int yOff)
    {
        const int panelsPerChunk = ConvertedRowChunk / PackedGemm.PanelRows;
        int panels = (n + PackedGemm.PanelRows - 1) / PackedGemm.PanelRows;
        int colBlocks = (outDim + ConvertedRowBlock - 1) / ConvertedRowBlock;
        int rowChunks = (panels + panelsPerChunk - 1) / panelsPerChunk;
        For(rowChunks * colBlocks, item =>
        {
            int panel0 = item / colBlocks * panelsPerChunk, c0 = item % colBlocks * ConvertedRowBlock;
            int count = Math.Min(panelsPerChunk, panels - panel0), cols = Math.Min(ConvertedRowBlock, outDim - c0);
            int padded = (cols + PackedGemm.TileCols - 1) / PackedGemm.TileCols * PackedGemm.TileCols;
            float[] block = ArrayPool<float>.Shared.Rent(padded * inDim);
            try
            {
                w.ReadF32((long)c0 * inDim, block.AsSpan(0, cols * inDim));
                block.AsSpan(cols * inDim, (padded - cols) * inDim).Clear();
                PackedGemm.Multiply(packed, panel0, count, n, inDim, block, cols, y, yOff, outDim, c0);
                int r0 = panel0 * PackedGemm.PanelRows;
                AddBias(bias, c0, cols, y, yOff + r0 * outDim + c0, Math.Min(count * PackedGemm.PanelRows, n - r0), outDim);
            }
            finally
            {
                ArrayPool<float>.Shared.Return(block);
            }
        });
        GC.KeepAlive(w);
    }

    /// <summary>As above with float32 weights read in place.</summary>
    internal void Matmul(float[] x, int n, int inDim, float[] w, int outDim, float[]? bias, float[] y, int yOff)
    {
        int rowBlocks = (n + GemmRowBlock - 1) / GemmRowBlock;
        int colBlocks = (outDim + GemmColBlock - 1) / GemmColBlock;
        For(rowBlocks * colBlocks, item =>
        {
            int r0 = item / colBlocks * GemmRowBlock, c0 = item % colBlocks * GemmColBlock;
            int rows = Math.Min(GemmRowBlock, n - r0), cols = Math.Min(GemmColBlock, outDim - c0);
            CpuKernels.DotRows(x, r0 * inDim, inDim, rows, w, c0 * inDim, inDim, cols, inDim, y, yOff + r0 * outDim + c0, outDim, Wide);
            AddBias(bias, c0, cols, y, yOff + r0 * outDim + c0, rows, outDim);
        });
    }

    private static void AddBias(float[]? bias, int c0, int cols, float[] y, int yOff, int rows, int ldy)
    {
        if (bias is null) return;
        var b = bias.AsSpan(c0, cols);
        for (int r = 0; r < rows; r++)
        {
            var row = y.AsSpan(yOff + r * ldy, cols);
            TensorPrimitives.Add(row, b, row);
        }
    }

    /// <summary>y = Norm(h) row by row (RMSNorm, or LayerNorm with its bias); y may be h.</summary>
    private void NormRows(float[] h, float[] weight, float[]? bias, float[] y, int n)
    {
        int dim = Config.Dim;
        float eps = Config.NormEps;
        bool layerNorm = Config.Norm == NormKind.LayerNorm;
        ForBlocks(n, (r0, rows) =>
        {
            for (int r = r0; r < r0 + rows; r++)
            {
                if (layerNorm) CpuKernels.LayerNorm(h.AsSpan(r * dim, dim), weight, bias!, eps, y.AsSpan(r * dim, dim));
                else CpuKernels.RmsNorm(h.AsSpan(r * dim, dim), weight, eps, y.AsSpan(r * dim, dim));
            }
        });
    }

    /// <summary>Per-head RMSNorm (q/k norm) of <paramref name="count"/> head vectors starting at <paramref name="offset"/>.</summary>
    private void HeadNorm(float[] x, int offset, int count, float[] weight)
    {
        int d = Config.HeadDim;
        float eps = Config.NormEps;
        ForBlocks(count, (r0, rows) =>
        {
            for (int r = r0; r < r0 + rows; r++)
            {
                var v = x.AsSpan(offset + r * d, d);
                CpuKernels.RmsNorm(v, weight, eps, v);
            }
        });
    }

    private static void ScaleRows(float[] x, int count, float scale)
    {
        var span = x.AsSpan(0, count);
        TensorPrimitives.Multiply(span, scale, span);
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

    /// <summary>
    /// up ← act(gate) ⊙ up (SwiGLU: silu(z) = z / (1 + e^−z); GeGLU: tanh GELU) or up ← relu(up) (the ReLU MLP),
    /// row by row.
    /// </summary>
    private void Activate(float[]? gate, float[] up, int n)
    {
        int ff = Config.FfDim;
        var kind = Config.FeedForward;
        ForBlocks(n, (r0, rows) =>
        {
            float[] tmp = ArrayPool<float>.Shared.Rent(ff);
            try
            {
                var s = tmp.AsSpan(0, ff);
                for (int r = r0; r < r0 + rows; r++)
                {
                    var u = up.AsSpan(r * ff, ff);
                    switch (kind)
                    {
                        case FeedForwardKind.SwiGlu:
                            CpuKernels.Silu(gate.AsSpan(r * ff, ff), s);
                            TensorPrimitives.Multiply(s, u, u);
                            break;
                        case FeedForwardKind.GeGluTanh:
                            CpuKernels.GeluTanh(gate.AsSpan(r * ff, ff), s);
                            TensorPrimitives.Multiply(s, u, u);
                            break;
                        case FeedForwardKind.Relu:
                            TensorPrimitives.Max(u, 0f, u);
                            break;
                    }
                }
            }
            finally
            {
                ArrayPool<float>.Shared.Return(tmp);
            }
        });
    }

    /// <summary>logits ← cap · tanh(logits / cap) when the model soft-caps its output.</summary>
    private void SoftCap(Span<float> logits)
    {
        if (Config.FinalSoftCap is float cap) CpuKernels.SoftCap(logits, 1f, cap);
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

    private void CheckPositions(int total)
    {
        var c = Config;
        if (c.Positions == PositionKind.Learned && c.PositionOffset + total > c.PositionRows)
            throw new ArgumentException(
                $"{total} positions exceed the model's {c.PositionRows - c.PositionOffset} learned positions; run at most that many tokens at once (e.g. a smaller --chunk or --window)");
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
