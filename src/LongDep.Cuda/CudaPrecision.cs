namespace LongDep.Cuda;

/// <summary>
/// Element type of the weights and of the activations the GEMMs read. Accumulation, the residual stream, Q/K/V,
/// softmax statistics and losses are float32 (or float64) in every mode.
/// </summary>
public enum CudaPrecision
{
    /// <summary>IEEE half: the default (tensor-core GEMMs, half the memory of float32).</summary>
    F16,
    /// <summary>bfloat16: float32's range with 8 bits of mantissa.</summary>
    BF16,
    /// <summary>float32 weights and GEMM inputs: slowest, closest to the CPU reference (used by the self-test).</summary>
    F32,
}

internal static class CudaPrecisionExtensions
{
    public static int ElementSize(this CudaPrecision p) => p == CudaPrecision.F32 ? 4 : 2;

    public static int BlasDataType(this CudaPrecision p) => p switch
    {
        CudaPrecision.F32 => Native.BlasConstants.DataF32,
        CudaPrecision.F16 => Native.BlasConstants.DataF16,
        _ => Native.BlasConstants.DataBF16,
    };
}
