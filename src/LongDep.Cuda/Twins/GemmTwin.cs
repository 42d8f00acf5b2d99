namespace LongDep.Cuda.Twins;

/// <summary>Twin of cublasGemmEx (column-major, float32 output) and of the row-major linear layer built on it.</summary>
public static class GemmTwin
{
    /// <summary>
    /// C[i + j·ldc] = alpha·Σ_p op(A)[i, p]·op(B)[p, j] + beta·C[i + j·ldc] for i &lt; m, j &lt; n, p &lt; k;
    /// op(A)[i, p] = transA ? A[p + i·lda] : A[i + p·lda], likewise B. Accumulates in float64. (beta = 0 ignores old C, as cuBLAS does.)
    /// </summary>
    public static void Gemm(bool transA, bool transB, int m, int n, int k, float alpha, ReadOnlySpan<float> a, int lda,
        ReadOnlySpan<float> b, int ldb, float beta, Span<float> c, int ldc)
    {
        for (int j = 0; j < n; j++)
        {
            for (int i = 0; i < m; i++)
            {
                double sum = 0;
                for (int p = 0; p < k; p++)
                {
                    float av = transA ? a[p + i * lda] : a[i + p * lda];
                    float bv = transB ? b[j + p * ldb] : b[p + j * ldb];
                    sum += (double)av * bv;
                }
                double old = beta == 0f ? 0.0 : (double)beta * c[i + j * ldc];
                c[i + j * ldc] = (float)(alpha * sum + old);
            }
        }
    }

    /// <summary>Row-major linear layer: y[r, o] (+)= Σ_i w[o, i]·x[r, i], w [outDim, inDim], x [rows, inDim], y [rows, outDim].</summary>
    public static void Linear(ReadOnlySpan<float> x, ReadOnlySpan<float> w, Span<float> y, int rows, int inDim, int outDim, bool accumulate)
    {
        for (int r = 0; r < rows; r++)
        {
            for (int o = 0; o < outDim; o++)
            {
                double sum = 0;
                for (int i = 0; i < inDim; i++) sum += (double)w[o * inDim + i] * x[r * inDim + i];
                y[r * outDim + o] = (float)(accumulate ? y[r * outDim + o] + sum : sum);
            }
        }
    }
}
