namespace LongDep.Models;

/// <summary>
/// Floating-point operations of the two scoring methods, counted the way the performance issue counts them: a
/// multiply-add is 2 FLOP; a token through a weight matrix of <c>P</c> parameters costs <c>2·P</c>; attention costs
/// <c>QKᵀ</c> plus <c>PV</c>, <c>2·QDim</c> FLOP each per (query, key) pair, so a causal block of <c>n</c> tokens costs
/// <c>2·n²·QDim</c> per layer (half the square each) and <c>q</c> queries over <c>p</c> keys all visible cost
/// <c>4·q·p·QDim</c>. Norms, RoPE, softmax, the loss and LADM's span sums are left out (well under 1%); a sliding
/// window is not subtracted (the count is of full causal attention).
/// </summary>
public static class FlopModel
{
    /// <summary>
    /// Parameters every token passes through in the decoder layers: all but the embedding, a learned position table
    /// (looked up, not multiplied) and the output head (norms and OPT's projections included).
    /// </summary>
    public static long BodyParameters(ModelConfig c)
    {
        ArgumentNullException.ThrowIfNull(c);
        long embedding = (long)c.VocabSize * c.EmbeddingWidth;
        long positions = c.Positions == PositionKind.Learned ? (long)c.PositionRows * c.Dim : 0;
        // ParameterCount holds the embedding once, and the output head once more when it is not tied.
        return c.ParameterCount - embedding - (c.TiedEmbedding ? 0 : embedding) - positions;
    }

    /// <summary>Parameters a scored token passes through: the decoder layers and the output head (a tied head still runs).</summary>
    public static long BodyAndHeadParameters(ModelConfig c) => BodyParameters(c) + (long)c.VocabSize * c.EmbeddingWidth;

    /// <summary>Attention of one layer for a causal block of <paramref name="n"/> tokens: 2·n²·QDim.</summary>
    public static double CausalAttention(ModelConfig c, long n)
    {
        ArgumentNullException.ThrowIfNull(c);
        ArgumentOutOfRangeException.ThrowIfNegative(n);
        return 2.0 * n * n * c.QDim;
    }

    /// <summary>
    /// One LADM pass over <paramref name="t"/> tokens (SPEC §2): <c>2·BodyParameters·T + Layers·2·T²·QDim</c>.
    /// No output head (the reference runs LlamaModel, not the LM head). TinyLlama at 32K: 1.60e14.
    /// </summary>
    public static double LadmPass(ModelConfig c, int t)
    {
        ArgumentNullException.ThrowIfNull(c);
        ArgumentOutOfRangeException.ThrowIfNegative(t);
        return 2.0 * BodyParameters(c) * t + c.Layers * CausalAttention(c, t);
    }

    /// <summary>
    /// ProLong with prefix reuse (SPEC §3, "work that must not be done twice"): every chunk runs once alone
    /// (<paramref name="chunks"/> causal blocks of <paramref name="l"/> tokens, with the head), then every pair runs only
    /// chunk i's <c>l</c> tokens over chunk j's cached <c>l</c> keys and values:
    /// <c>2·(Body+Head)·l·(chunks + pairs) + Layers·[chunks·2·l²·QDim + pairs·(4·l·l·QDim + 2·l²·QDim)]</c>.
    /// TinyLlama, 256 chunks, 5000 pairs of 128 tokens: 1.41e15.
    /// </summary>
    public static double ProLongPrefixReuse(ModelConfig c, int chunks, int pairs, int l)
    {
        Check(c, chunks, pairs, l);
        double tokens = (double)l * chunks + (double)l * pairs;
        double perLayerAttention = chunks * CausalAttention(c, l) + pairs * (4.0 * l * l * c.QDim + CausalAttention(c, l));
        return 2.0 * BodyAndHeadParameters(c) * tokens + c.Layers * perLayerAttention;
    }

    /// <summary>
    /// ProLong as the reference runs it: every chunk alone, then every pair as a fresh 2l-token sequence
    /// <c>chunk_j ++ chunk_i</c> (chunk j recomputed, logits for all 2l positions):
    /// <c>2·(Body+Head)·l·(chunks + 2·pairs) + Layers·[chunks·2·l²·QDim + pairs·2·(2l)²·QDim]</c>.
    /// TinyLlama, 256 chunks, 5000 pairs of 128 tokens: 2.75e15.
    /// </summary>
    public static double ProLongReference(ModelConfig c, int chunks, int pairs, int l)
    {
        Check(c, chunks, pairs, l);
        double tokens = (double)l * chunks + 2.0 * l * pairs;
        double perLayerAttention = chunks * CausalAttention(c, l) + pairs * CausalAttention(c, 2L * l);
        return 2.0 * BodyAndHeadParameters(c) * tokens + c.Layers * perLayerAttention;
    }

    private static void Check(ModelConfig c, int chunks, int pairs, int l)
    {
        ArgumentNullException.ThrowIfNull(c);
        ArgumentOutOfRangeException.ThrowIfNegative(chunks);
        ArgumentOutOfRangeException.ThrowIfNegative(pairs);
        ArgumentOutOfRangeException.ThrowIfNegative(l);
    }
}
