namespace LongDep.Cuda.Twins;

/// <summary>
/// What the tensor-core kernels (attention_mma.cu, pfs_mma.cu) do to their float32 inputs before the products: the
/// query times scale·log2(e), the keys and the values rounded to f16. Feeding the float64 twins these rounded inputs
/// (the query scaled back) gives the tensor-core kernels' expected results up to float32 accumulation order and the
/// f16 rounding of P before P·V.
/// </summary>
public static class TensorCoreInputs
{
    private const float Log2E = 1.4426950408889634f;

    /// <summary>q[i] → f16(q[i]·scale·log2 e) / (scale·log2 e), so that the twin's q·scale sees the kernel's rounded score input.</summary>
    public static float[] Query(ReadOnlySpan<float> q, float scale)
    {
        float factor = scale * Log2E;
        var result = new float[q.Length];
        for (int i = 0; i < q.Length; i++) result[i] = (float)(Half)(q[i] * factor) / factor;
        return result;
    }

    /// <summary>Keys or values rounded to f16 (round to nearest even, as __floats2half2_rn).</summary>
    public static float[] Round(ReadOnlySpan<float> values)
    {
        var result = new float[values.Length];
        for (int i = 0; i < values.Length; i++) result[i] = (float)(Half)values[i];
        return result;
    }
}
