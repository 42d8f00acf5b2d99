using System.Numerics;
using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

[assembly: InternalsVisibleTo("LongDep.Models.Tests")]

namespace LongDep.Models.Cpu;

/// <summary>
/// The float32 building blocks of the CPU forward: a blocked "rows · rowsᵀ" product, RMSNorm, RoPE, softmax.
/// Every output element is computed by one fixed sequence of operations that depends only on its inputs and
/// lengths, never on tiling position or thread count, so results are reproducible bit for bit.
/// </summary>
internal static class CpuKernels
{
    /// <summary>
    /// C[i, j] = Σ_k A[i, k] · B[j, k] for i &lt; m, j &lt; nCols, k &lt; len, where row i of A starts at
    /// <c>aOff + i·lda</c>, row j of B at <c>bOff + j·ldb</c> and element (i, j) of C sits at <c>cOff + i·ldc + j</c>.
    /// This one kernel serves every matrix product of the model: X·Wᵀ (weights are [out, in]), Q·Kᵀ and P·Vᵀ
    /// (with V transposed to [d, keys]). Register tiles of 4 × 4 outputs; each output is one vector accumulator
    /// (lane-wise fused multiply-add), then a horizontal sum, then a scalar tail in order. The vector is
    /// <see cref="Vector{T}"/>'s width (the exact path), or 512 bits with <paramref name="wide"/> where the processor has
    /// AVX-512 (<see cref="Wide"/>; the fast path: another summation order, so other last digits). Either way every output
    /// is the same whatever the tiling or thread count.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void DotRows(float[] a, int aOff, int lda, int m,
                               float[] b, int bOff, int ldb, int nCols, int len,
                               float[] c, int cOff, int ldc, bool wide = false)
    {
        if (m <= 0 || nCols <= 0) return;
        CheckRange(a.Length, aOff, lda, m, len, "A");
        CheckRange(b.Length, bOff, ldb, nCols, len, "B");
        CheckRange(c.Length, cOff, ldc, m, nCols, "C");
        if (m > 1 && ldc < nCols)
            throw new ArgumentOutOfRangeException(nameof(ldc), $"rows of C overlap: stride {ldc} is less than the row length {nCols}");

        ref float aBase = ref Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(a), aOff);
        ref float bBase = ref Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(b), bOff);
        ref float cBase = ref Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(c), cOff);
        if (wide && Wide)
        {
            DotRows512(ref aBase, lda, m, ref bBase, ldb, nCols, len, ref cBase, ldc);
            return;
        }

        int i = 0;
        for (; i + 4 <= m; i += 4)
        {
            ref float aRow = ref Unsafe.Add(ref aBase, (nint)i * lda);
            ref float cRow = ref Unsafe.Add(ref cBase, (nint)i * ldc);
            int j = 0;
            for (; j + 4 <= nCols; j += 4)
                Tile4x4(ref aRow, lda, ref Unsafe.Add(ref bBase, (nint)j * ldb), ldb, len, ref Unsafe.Add(ref cRow, j), ldc);
            for (; j < nCols; j++)
            {
                ref float bRow = ref Unsafe.Add(ref bBase, (nint)j * ldb);
                for (int r = 0; r < 4; r++)
                    Unsafe.Add(ref cRow, (nint)r * ldc + j) = Dot1(ref Unsafe.Add(ref aRow, (nint)r * lda), ref bRow, len);
            }
        }
        for (; i < m; i++)
        {
            ref float aRow = ref Unsafe.Add(ref aBase, (nint)i * lda);
            ref float cRow = ref Unsafe.Add(ref cBase, (nint)i * ldc);
            int j = 0;
            for (; j + 4 <= nCols; j += 4)
                Tile1x4(ref aRow, ref Unsafe.Add(ref bBase, (nint)j * ldb), ldb, len, ref Unsafe.Add(ref cRow, j));
            for (; j < nCols; j++)
                Unsafe.Add(ref cRow, j) = Dot1(ref aRow, ref Unsafe.Add(ref bBase, (nint)j * ldb), len);
        }
    }

    /// <summary>Whether the dot products run on 512-bit vectors (AVX-512).</summary>
    public static bool Wide { get; } = Vector512.IsHardwareAccelerated;

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void DotRows512(ref float aBase, int lda, int m, ref float bBase, int ldb, int nCols, int len, ref float cBase, int ldc)
    {
        int i = 0;
        for (; i + 4 <= m; i += 4)
        {
            ref float aRow = ref Unsafe.Add(ref aBase, (nint)i * lda);
            ref float cRow = ref Unsafe.Add(ref cBase, (nint)i * ldc);
            int j = 0;
            for (; j + 4 <= nCols; j += 4)
                Tile4x4W(ref aRow, lda, ref Unsafe.Add(ref bBase, (nint)j * ldb), ldb, len, ref Unsafe.Add(ref cRow, j), ldc);
            for (; j < nCols; j++)
            {
                ref float bRow = ref Unsafe.Add(ref bBase, (nint)j * ldb);
                for (int r = 0; r < 4; r++)
                    Unsafe.Add(ref cRow, (nint)r * ldc + j) = Dot1W(ref Unsafe.Add(ref aRow, (nint)r * lda), ref bRow, len);
            }
        }
        for (; i < m; i++)
        {
            ref float aRow = ref Unsafe.Add(ref aBase, (nint)i * lda);
            ref float cRow = ref Unsafe.Add(ref cBase, (nint)i * ldc);
            for (int j = 0; j < nCols; j++)
                Unsafe.Add(ref cRow, j) = Dot1W(ref aRow, ref Unsafe.Add(ref bBase, (nint)j * ldb), len);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining | MethodImplOptions.AggressiveOptimization)]
    private static float Dot1W(ref float a, ref float b, int len)
    {
        var acc = Vector512<float>.Zero;
        int k = 0;
        for (; k <= len - 16; k += 16)
            acc = Vector512.FusedMultiplyAdd(Vector512.LoadUnsafe(ref a, (nuint)k), Vector512.LoadUnsafe(ref b, (nuint)k), acc);
        float s = Vector512.Sum(acc);
        for (; k < len; k++) s = MathF.FusedMultiplyAdd(Unsafe.Add(ref a, k), Unsafe.Add(ref b, k), s);
        return s;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Tile4x4W(ref float a0, int lda, ref float b0, int ldb, int len, ref float c, int ldc)
    {
        ref float a1 = ref Unsafe.Add(ref a0, lda);
        ref float a2 = ref Unsafe.Add(ref a1, lda);
        ref float a3 = ref Unsafe.Add(ref a2, lda);
        ref float b1 = ref Unsafe.Add(ref b0, ldb);
        ref float b2 = ref Unsafe.Add(ref b1, ldb);
        ref float b3 = ref Unsafe.Add(ref b2, ldb);
        Vector512<float> c00 = default, c01 = default, c02 = default, c03 = default;
        Vector512<float> c10 = default, c11 = default, c12 = default, c13 = default;
        Vector512<float> c20 = default, c21 = default, c22 = default, c23 = default;
        Vector512<float> c30 = default, c31 = default, c32 = default, c33 = default;
        int k = 0;
        for (; k <= len - 16; k += 16)
        {
            var vb0 = Vector512.LoadUnsafe(ref b0, (nuint)k);
            var vb1 = Vector512.LoadUnsafe(ref b1, (nuint)k);
            var vb2 = Vector512.LoadUnsafe(ref b2, (nuint)k);
            var vb3 = Vector512.LoadUnsafe(ref b3, (nuint)k);
            var va = Vector512.LoadUnsafe(ref a0, (nuint)k);
            c00 = Vector512.FusedMultiplyAdd(va, vb0, c00); c01 = Vector512.FusedMultiplyAdd(va, vb1, c01);
            c02 = Vector512.FusedMultiplyAdd(va, vb2, c02); c03 = Vector512.FusedMultiplyAdd(va, vb3, c03);
            va = Vector512.LoadUnsafe(ref a1, (nuint)k);
            c10 = Vector512.FusedMultiplyAdd(va, vb0, c10); c11 = Vector512.FusedMultiplyAdd(va, vb1, c11);
            c12 = Vector512.FusedMultiplyAdd(va, vb2, c12); c13 = Vector512.FusedMultiplyAdd(va, vb3, c13);
            va = Vector512.LoadUnsafe(ref a2, (nuint)k);
            c20 = Vector512.FusedMultiplyAdd(va, vb0, c20); c21 = Vector512.FusedMultiplyAdd(va, vb1, c21);
            c22 = Vector512.FusedMultiplyAdd(va, vb2, c22); c23 = Vector512.FusedMultiplyAdd(va, vb3, c23);
            va = Vector512.LoadUnsafe(ref a3, (nuint)k);
            c30 = Vector512.FusedMultiplyAdd(va, vb0, c30); c31 = Vector512.FusedMultiplyAdd(va, vb1, c31);
            c32 = Vector512.FusedMultiplyAdd(va, vb2, c32); c33 = Vector512.FusedMultiplyAdd(va, vb3, c33);
        }
        Finish4W(ref a0, ref b0, ref b1, ref b2, ref b3, k, len, c00, c01, c02, c03, ref c);
        Finish4W(ref a1, ref b0, ref b1, ref b2, ref b3, k, len, c10, c11, c12, c13, ref Unsafe.Add(ref c, ldc));
        Finish4W(ref a2, ref b0, ref b1, ref b2, ref b3, k, len, c20, c21, c22, c23, ref Unsafe.Add(ref c, 2 * (nint)ldc));
        Finish4W(ref a3, ref b0, ref b1, ref b2, ref b3, k, len, c30, c31, c32, c33, ref Unsafe.Add(ref c, 3 * (nint)ldc));
    }

    /// <summary>As <see cref="Finish4"/> for 512-bit accumulators, in the same order as <see cref="Dot1W"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Finish4W(ref float a, ref float b0, ref float b1, ref float b2, ref float b3, int k, int len,
                                 Vector512<float> v0, Vector512<float> v1, Vector512<float> v2, Vector512<float> v3, ref float c)
    {
        float s0 = Vector512.Sum(v0), s1 = Vector512.Sum(v1), s2 = Vector512.Sum(v2), s3 = Vector512.Sum(v3);
        for (; k < len; k++)
        {
            float x = Unsafe.Add(ref a, k);
            s0 = MathF.FusedMultiplyAdd(x, Unsafe.Add(ref b0, k), s0);
            s1 = MathF.FusedMultiplyAdd(x, Unsafe.Add(ref b1, k), s1);
            s2 = MathF.FusedMultiplyAdd(x, Unsafe.Add(ref b2, k), s2);
            s3 = MathF.FusedMultiplyAdd(x, Unsafe.Add(ref b3, k), s3);
        }
        c = s0; Unsafe.Add(ref c, 1) = s1; Unsafe.Add(ref c, 2) = s2; Unsafe.Add(ref c, 3) = s3;
    }

    private static void CheckRange(int arrayLength, int offset, int stride, int rows, int cols, string name)
    {
        long last = offset + (long)(rows - 1) * stride + cols;
        if (offset < 0 || stride < 0 || cols < 0 || last > arrayLength)
            throw new ArgumentOutOfRangeException(name,
                $"matrix {name}: {rows} rows of {cols} at offset {offset}, stride {stride} need {last} elements; the buffer has {arrayLength}");
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining | MethodImplOptions.AggressiveOptimization)]
    private static float Dot1(ref float a, ref float b, int len)
    {
        var acc = Vector<float>.Zero;
        int w = Vector<float>.Count, k = 0;
        for (; k <= len - w; k += w)
            acc = Vector.FusedMultiplyAdd(Vector.LoadUnsafe(ref a, (nuint)k), Vector.LoadUnsafe(ref b, (nuint)k), acc);
        float s = Vector.Sum(acc);
        for (; k < len; k++) s = MathF.FusedMultiplyAdd(Unsafe.Add(ref a, k), Unsafe.Add(ref b, k), s);
        return s;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Tile1x4(ref float a, ref float b0, int ldb, int len, ref float c)
    {
        ref float b1 = ref Unsafe.Add(ref b0, ldb);
        ref float b2 = ref Unsafe.Add(ref b1, ldb);
        ref float b3 = ref Unsafe.Add(ref b2, ldb);
        Vector<float> c0 = default, c1 = default, c2 = default, c3 = default;
        int w = Vector<float>.Count, k = 0;
        for (; k <= len - w; k += w)
        {
            var va = Vector.LoadUnsafe(ref a, (nuint)k);
            c0 = Vector.FusedMultiplyAdd(va, Vector.LoadUnsafe(ref b0, (nuint)k), c0);
            c1 = Vector.FusedMultiplyAdd(va, Vector.LoadUnsafe(ref b1, (nuint)k), c1);
            c2 = Vector.FusedMultiplyAdd(va, Vector.LoadUnsafe(ref b2, (nuint)k), c2);
            c3 = Vector.FusedMultiplyAdd(va, Vector.LoadUnsafe(ref b3, (nuint)k), c3);
        }
        Finish4(ref a, ref b0, ref b1, ref b2, ref b3, k, len, c0, c1, c2, c3, ref c);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Tile4x4(ref float a0, int lda, ref float b0, int ldb, int len, ref float c, int ldc)
    {
        ref float a1 = ref Unsafe.Add(ref a0, lda);
        ref float a2 = ref Unsafe.Add(ref a1, lda);
        ref float a3 = ref Unsafe.Add(ref a2, lda);
        ref float b1 = ref Unsafe.Add(ref b0, ldb);
        ref float b2 = ref Unsafe.Add(ref b1, ldb);
        ref float b3 = ref Unsafe.Add(ref b2, ldb);
        Vector<float> c00 = default, c01 = default, c02 = default, c03 = default;
        Vector<float> c10 = default, c11 = default, c12 = default, c13 = default;
        Vector<float> c20 = default, c21 = default, c22 = default, c23 = default;
        Vector<float> c30 = default, c31 = default, c32 = default, c33 = default;
        int w = Vector<float>.Count, k = 0;
        for (; k <= len - w; k += w)
        {
            var vb0 = Vector.LoadUnsafe(ref b0, (nuint)k);
            var vb1 = Vector.LoadUnsafe(ref b1, (nuint)k);
            var vb2 = Vector.LoadUnsafe(ref b2, (nuint)k);
            var vb3 = Vector.LoadUnsafe(ref b3, (nuint)k);
            var va = Vector.LoadUnsafe(ref a0, (nuint)k);
            c00 = Vector.FusedMultiplyAdd(va, vb0, c00); c01 = Vector.FusedMultiplyAdd(va, vb1, c01);
            c02 = Vector.FusedMultiplyAdd(va, vb2, c02); c03 = Vector.FusedMultiplyAdd(va, vb3, c03);
            va = Vector.LoadUnsafe(ref a1, (nuint)k);
            c10 = Vector.FusedMultiplyAdd(va, vb0, c10); c11 = Vector.FusedMultiplyAdd(va, vb1, c11);
            c12 = Vector.FusedMultiplyAdd(va, vb2, c12); c13 = Vector.FusedMultiplyAdd(va, vb3, c13);
            va = Vector.LoadUnsafe(ref a2, (nuint)k);
            c20 = Vector.FusedMultiplyAdd(va, vb0, c20); c21 = Vector.FusedMultiplyAdd(va, vb1, c21);
            c22 = Vector.FusedMultiplyAdd(va, vb2, c22); c23 = Vector.FusedMultiplyAdd(va, vb3, c23);
            va = Vector.LoadUnsafe(ref a3, (nuint)k);
            c30 = Vector.FusedMultiplyAdd(va, vb0, c30); c31 = Vector.FusedMultiplyAdd(va, vb1, c31);
            c32 = Vector.FusedMultiplyAdd(va, vb2, c32); c33 = Vector.FusedMultiplyAdd(va, vb3, c33);
        }
        Finish4(ref a0, ref b0, ref b1, ref b2, ref b3, k, len, c00, c01, c02, c03, ref c);
        Finish4(ref a1, ref b0, ref b1, ref b2, ref b3, k, len, c10, c11, c12, c13, ref Unsafe.Add(ref c, ldc));
        Finish4(ref a2, ref b0, ref b1, ref b2, ref b3, k, len, c20, c21, c22, c23, ref Unsafe.Add(ref c, 2 * (nint)ldc));
        Finish4(ref a3, ref b0, ref b1, ref b2, ref b3, k, len, c30, c31, c32, c33, ref Unsafe.Add(ref c, 3 * (nint)ldc));
    }

    /// <summary>Horizontal sums of one A row's four accumulators, then the scalar tail [k, len), in the same order as <see cref="Dot1"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Finish4(ref float a, ref float b0, ref float b1, ref float b2, ref float b3, int k, int len,
                                Vector<float> v0, Vector<float> v1, Vector<float> v2, Vector<float> v3, ref float c)
    {
        float s0 = Vector.Sum(v0), s1 = Vector.Sum(v1), s2 = Vector.Sum(v2), s3 = Vector.Sum(v3);
        for (; k < len; k++)
        {
            float x = Unsafe.Add(ref a, k);
            s0 = MathF.FusedMultiplyAdd(x, Unsafe.Add(ref b0, k), s0);
            s1 = MathF.FusedMultiplyAdd(x, Unsafe.Add(ref b1, k), s1);
            s2 = MathF.FusedMultiplyAdd(x, Unsafe.Add(ref b2, k), s2);
            s3 = MathF.FusedMultiplyAdd(x, Unsafe.Add(ref b3, k), s3);
        }
        c = s0; Unsafe.Add(ref c, 1) = s1; Unsafe.Add(ref c, 2) = s2; Unsafe.Add(ref c, 3) = s3;
    }

    /// <summary>Σ x² accumulated in float64 (vector lanes widened, then summed lane by lane).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static double SumOfSquaresDouble(ReadOnlySpan<float> x)
    {
        var acc = Vector<double>.Zero;
        int w = Vector<float>.Count, k = 0;
        for (; k <= x.Length - w; k += w)
        {
            Vector.Widen(new Vector<float>(x.Slice(k, w)), out var lo, out var hi);
            acc = Vector.FusedMultiplyAdd(lo, lo, acc);
            acc = Vector.FusedMultiplyAdd(hi, hi, acc);
        }
        double s = Vector.Sum(acc);
        for (; k < x.Length; k++) s += (double)x[k] * x[k];
        return s;
    }

    /// <summary>Σ x accumulated in float64.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static double SumDouble(ReadOnlySpan<float> x)
    {
        var acc = Vector<double>.Zero;
        int w = Vector<float>.Count, k = 0;
        for (; k <= x.Length - w; k += w)
        {
            Vector.Widen(new Vector<float>(x.Slice(k, w)), out var lo, out var hi);
            acc += lo + hi;
        }
        double s = Vector.Sum(acc);
        for (; k < x.Length; k++) s += x[k];
        return s;
    }

    /// <summary>acc[s] += x[s] · scale, with x widened to float64.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void MultiplyAddWidening(ReadOnlySpan<float> x, double scale, Span<double> acc)
    {
        if (acc.Length < x.Length) throw new ArgumentException($"accumulator has {acc.Length} elements, needs {x.Length}", nameof(acc));
        var vs = new Vector<double>(scale);
        int w = Vector<float>.Count, half = Vector<double>.Count, k = 0;
        for (; k <= x.Length - w; k += w)
        {
            Vector.Widen(new Vector<float>(x.Slice(k, w)), out var lo, out var hi);
            var a0 = new Vector<double>(acc.Slice(k, half));
            var a1 = new Vector<double>(acc.Slice(k + half, half));
            Vector.FusedMultiplyAdd(lo, vs, a0).CopyTo(acc.Slice(k, half));
            Vector.FusedMultiplyAdd(hi, vs, a1).CopyTo(acc.Slice(k + half, half));
        }
        for (; k < x.Length; k++) acc[k] = Math.FusedMultiplyAdd(x[k], scale, acc[k]);
    }

    /// <summary>RMSNorm of one row: y_i = w_i · (x_i / sqrt(mean(x²) + eps)), the mean taken in float64. y may be x.</summary>
    public static void RmsNorm(ReadOnlySpan<float> x, ReadOnlySpan<float> weight, float eps, Span<float> y)
    {
        double meanSquare = SumOfSquaresDouble(x) / x.Length;
        float inv = (float)(1.0 / Math.Sqrt(meanSquare + eps));
        TensorPrimitives.Multiply(x, inv, y);
        TensorPrimitives.Multiply(y, weight, y);
    }

    /// <summary>
    /// LayerNorm of one row: y_i = (x_i − mean) · (1 / sqrt(var + eps)) · w_i + b_i, mean and (biased) variance taken in
    /// float64 (two passes). y may be x.
    /// </summary>
    public static void LayerNorm(ReadOnlySpan<float> x, ReadOnlySpan<float> weight, ReadOnlySpan<float> bias, float eps, Span<float> y)
    {
        double mean = SumDouble(x) / x.Length;
        double var = 0;
        for (int i = 0; i < x.Length; i++)
        {
            double dx = x[i] - mean;
            var += dx * dx;
        }
        var /= x.Length;
        float m = (float)mean;
        float inv = (float)(1.0 / Math.Sqrt(var + eps));
        TensorPrimitives.Subtract(x, m, y);
        TensorPrimitives.Multiply(y, inv, y);
        TensorPrimitives.FusedMultiplyAdd(y, weight, bias, y);
    }

    /// <summary>y = z / (1 + e^−z).</summary>
    public static void Silu(ReadOnlySpan<float> z, Span<float> y)
    {
        TensorPrimitives.Negate(z, y);
        TensorPrimitives.Exp(y, y);
        TensorPrimitives.Add(y, 1f, y);
        TensorPrimitives.Divide(z, y, y);
    }

    private const float GeluBeta = 0.7978845608028654f;   // sqrt(2 / π)
    private const float GeluKappa = 0.044715f;

    /// <summary>The tanh GELU: y = 0.5 · z · (1 + tanh(sqrt(2/π) · (z + 0.044715 · z³))).</summary>
    public static void GeluTanh(ReadOnlySpan<float> z, Span<float> y)
    {
        TensorPrimitives.Multiply(z, z, y);                       // z²
        TensorPrimitives.Multiply(y, z, y);                       // z³
        TensorPrimitives.MultiplyAdd(y, GeluKappa, z, y);         // z + κ z³
        TensorPrimitives.Multiply(y, GeluBeta, y);
        TensorPrimitives.Tanh(y, y);
        TensorPrimitives.Add(y, 1f, y);
        TensorPrimitives.Multiply(y, z, y);
        TensorPrimitives.Multiply(y, 0.5f, y);
    }

    /// <summary>In place: row ← cap · tanh(row · scale / cap).</summary>
    public static void SoftCap(Span<float> row, float scale, float cap)
    {
        TensorPrimitives.Multiply(row, scale / cap, row);
        TensorPrimitives.Tanh(row, row);
        TensorPrimitives.Multiply(row, cap, row);
    }

    /// <summary>
    /// In place: row ← exp(z − max) with z = row · scale, or z = cap · tanh(row · scale / cap) when soft-capped;
    /// returns the sum of the exponents, taken in float64.
    /// </summary>
    public static double ScaledExp(Span<float> row, float scale, float? cap = null)
    {
        if (cap is float c) SoftCap(row, scale, c);
        else TensorPrimitives.Multiply(row, scale, row);
        float max = TensorPrimitives.Max(row);
        TensorPrimitives.Subtract(row, max, row);
        TensorPrimitives.Exp(row, row);
        return SumDouble(row);
    }

    /// <summary>In place: row ← softmax(row · scale) (soft-capped first when <paramref name="cap"/> is given), the maximum subtracted before the exponent.</summary>
    public static void ScaledSoftmax(Span<float> row, float scale, float? cap = null)
    {
        if (row.IsEmpty) return;
        float inv = (float)(1.0 / ScaledExp(row, scale, cap));
        TensorPrimitives.Multiply(row, inv, row);
    }

    /// <summary>
    /// RoPE tables for positions [position0, position0 + n): cos and sin of p · θ^(−2i/d), i &lt; d/2,
    /// computed in float64 (so positions near 128K keep their accuracy) and stored as float32, [n, d/2].
    /// </summary>
    public static void RopeTables(int position0, int n, int headDim, double theta, float[] cos, float[] sin)
    {
        int half = headDim / 2;
        var invFreq = new double[half];
        for (int i = 0; i < half; i++) invFreq[i] = Math.Pow(theta, -2.0 * i / headDim);
        RopeTables(position0, n, invFreq, 1.0, cos, sin);
    }

    /// <summary>
    /// RoPE tables for positions [position0, position0 + n) from the inverse frequencies of a layer (d/2 of them):
    /// cos and sin of p · invFreq[i] in float64, times <paramref name="attentionFactor"/> (yarn, longrope), stored as
    /// float32, [n, d/2].
    /// </summary>
    public static void RopeTables(int position0, int n, ReadOnlySpan<double> invFreq, double attentionFactor, float[] cos, float[] sin)
    {
        int half = invFreq.Length;
        for (int t = 0; t < n; t++)
        {
            double p = position0 + t;
            for (int i = 0; i < half; i++)
            {
                double angle = p * invFreq[i];
                cos[t * half + i] = (float)(Math.Cos(angle) * attentionFactor);
                sin[t * half + i] = (float)(Math.Sin(angle) * attentionFactor);
            }
        }
    }

    /// <summary>
    /// Rotates every head of every row in place. <paramref name="x"/> holds n rows of <paramref name="heads"/> × d.
    /// AdjacentPairs rotates (x[2i], x[2i+1]); Halves rotates (x[i], x[i + d/2]); both by the angle of pair i.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void ApplyRope(Span<float> x, int n, int heads, int headDim, RopeStyle style, ReadOnlySpan<float> cos, ReadOnlySpan<float> sin)
    {
        int half = headDim / 2;
        int width = heads * headDim;
        int first = style == RopeStyle.AdjacentPairs ? 2 : 1;   // index step of the pair's first element
        int second = style == RopeStyle.AdjacentPairs ? 1 : half; // offset of the second element from the first
        for (int t = 0; t < n; t++)
        {
            var c = cos.Slice(t * half, half);
            var s = sin.Slice(t * half, half);
            var row = x.Slice(t * width, width);
            for (int h = 0; h < heads; h++)
            {
                var v = row.Slice(h * headDim, headDim);
                for (int i = 0; i < half; i++)
                {
                    int i0 = i * first, i1 = i0 + second;
                    float x0 = v[i0], x1 = v[i1];
                    v[i0] = x0 * c[i] - x1 * s[i];
                    v[i1] = x0 * s[i] + x1 * c[i];
                }
            }
        }
    }
}
