namespace LongDep.Models;

/// <summary>Memory the CUDA engine needs for a model, for <c>inspect</c> and for clear out-of-memory advice.</summary>
public static class MemoryEstimate
{
    /// <summary>All weights stored as f16 (norms and biases included).</summary>
    public static long WeightBytesF16(ModelConfig c) => 2 * c.ParameterCount;

    /// <summary>
    /// One LADM pass over T tokens: f16 weights, the f32 residual stream and norm output, f16 Q/K/V and attention
    /// output, the feed-forward intermediates of one layer (f16 gate and up, or the ReLU MLP's f32 fc1 output), the
    /// sandwich block's f32 sub-block output, the embedding-width rows of project_in/out, and the PFS column buffers;
    /// nothing of size T×T.
    /// </summary>
    public static long LadmGpuBytes(ModelConfig c, int t)
    {
        long T = t;
        long residual = 2 * T * c.Dim * 4;                    // hidden + normed (f32)
        long qkv = T * (c.QDim + 2L * c.KvDim) * 2;           // f16
        long attn = T * c.QDim * 2;                           // attention output f16
        long ff = 2 * T * c.FfDim * 2 + T * c.Dim * 2;        // gate, up (f16) or fc1 (f32), down input
        long sandwich = c.NormPlacement == NormPlacement.Sandwich ? T * c.Dim * 4 : 0;
        long projections = c.HasProjections ? T * c.EmbeddingWidth * (4 + 2) : 0;
        long pfs = 2 * T * 8;                                 // column sums, f64
        return WeightBytesF16(c) + residual + qkv + attn + ff + sandwich + projections + pfs;
    }
}
