using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace LongDep.Models.Cpu;

/// <summary>
/// The matrix product of <see cref="CpuMath.Fast"/> on AVX-512: y[r, o] = Σ_k x[r, k] · W[o, k]. The activations are
/// packed once per product into panels of <see cref="PanelRows"/> rows stored k-major ([k][32]: one 512-bit load gives
/// 16 rows' values at one k), and each weight value is broadcast against them, so a register tile of
/// <see cref="TileCols"/> weight rows × 32 activation rows does 16 fused multiply-adds per two loads and nine
/// broadcasts, from data that stays in the L1/L2 caches. Every output is one chain of fused multiply-adds in k order
/// starting from 0, whatever the tile, panel, batch or thread it falls in: results are reproducible bit for bit and do
/// not depend on which other rows run with it. (Another summation order than the dot-product kernels of
/// <see cref="CpuKernels.DotRows"/>: the last digits differ, docs/numerics.md.)
/// </summary>
internal static class PackedGemm
{
    /// <summary>Activation rows per packed panel: two 512-bit vectors.</summary>
    public const int PanelRows = 32;

    /// <summary>Weight rows per register tile.</summary>
    public const int TileCols = 8;

    /// <summary>Whether this processor runs the packed product (512-bit vectors).</summary>
    public static bool Supported => Vector512.IsHardwareAccelerated;

    /// <summary>Floats the packed form of <paramref name="rows"/> rows of <paramref name="len"/> values takes.</summary>
    public static long PackedLength(int rows, int len) => (long)(rows + PanelRows - 1) / PanelRows * PanelRows * len;

    /// <summary>
    /// Packs panel <paramref name="panel"/> of rows [0, rows) of x (row r at xOff + r · ld, <paramref name="len"/>
    /// values) into <paramref name="packed"/>: panel p at p · 32 · len, element (k, i) at k · 32 + i; rows past the end
    /// are zeros.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void PackPanel(float[] x, int xOff, int ld, int rows, int len, int panel, float[] packed)
    {
        int r0 = panel * PanelRows, count = Math.Min(PanelRows, rows - r0);
        long baseOffset = (long)panel * PanelRows * len;
        if (baseOffset + (long)PanelRows * len > packed.Length || xOff + (long)(rows - 1) * ld + len > x.Length)
            throw new ArgumentOutOfRangeException(nameof(packed), $"panel {panel} of {rows} rows × {len} does not fit the buffers");
        var dst = packed.AsSpan((int)baseOffset, PanelRows * len);
        if (count < PanelRows) dst.Clear();
        ref float d = ref MemoryMarshal.GetReference(dst);
        for (int i = 0; i < count; i++)
        {
            var src = x.AsSpan(xOff + (r0 + i) * ld, len);
            for (int k = 0; k < len; k++) Unsafe.Add(ref d, k * PanelRows + i) = src[k];
        }
    }

    /// <summary>
    /// y[r0 + r, c0 + c] (+ at yOff + (r0 + r) · ldy + c0 + c) for the rows of panels [panel0, panel0 + panels) that are
    /// below <paramref name="rows"/> and the <paramref name="cols"/> weight rows in <paramref name="w"/> (row-major
    /// [cols, len], padded with zero rows to a multiple of <see cref="TileCols"/>).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Multiply(float[] packed, int panel0, int panels, int rows, int len, float[] w, int cols,
                                float[] y, int yOff, int ldy, int c0)
    {
        int paddedCols = (cols + TileCols - 1) / TileCols * TileCols;
        if ((long)paddedCols * len > w.Length)
            throw new ArgumentOutOfRangeException(nameof(w), $"{cols} weight rows padded to {paddedCols} × {len} exceed the block's {w.Length} values");
        if (PackedLength((panel0 + panels) * PanelRows, len) > packed.Length)
            throw new ArgumentOutOfRangeException(nameof(packed), $"panels [{panel0}, {panel0 + panels}) of {len} exceed the packed {packed.Length} values");
        Span<float> tile = stackalloc float[TileCols * PanelRows];
        ref float pBase = ref MemoryMarshal.GetArrayDataReference(packed);
        ref float wBase = ref MemoryMarshal.GetArrayDataReference(w);
        for (int p = panel0; p < panel0 + panels; p++)
        {
            int r0 = p * PanelRows;
            int valid = Math.Min(PanelRows, rows - r0);
            if (valid <= 0) break;
            ref float panel = ref Unsafe.Add(ref pBase, (nint)r0 * len);
            for (int c = 0; c < paddedCols; c += TileCols)
            {
                Tile(ref panel, ref Unsafe.Add(ref wBase, (nint)c * len), len, tile);
                int n = Math.Min(TileCols, cols - c);
                for (int r = 0; r < valid; r++)
                {
                    int yRow = yOff + (r0 + r) * ldy + c0 + c;
                    if (yRow < 0 || yRow + n > y.Length)
                        throw new ArgumentOutOfRangeException(nameof(y), $"output row {r0 + r} lies outside the {y.Length} values of y");
                    for (int j = 0; j < n; j++) y[yRow + j] = tile[j * PanelRows + r];
                }
            }
        }
    }

    /// <summary>tile[j · 32 + i] = Σ_k panel[k · 32 + i] · w[j · len + k] for j &lt; 8, i &lt; 32, in k order.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Tile(ref float panel, ref float w, int len, Span<float> tile)
    {
        ref float w1 = ref Unsafe.Add(ref w, len);
        ref float w2 = ref Unsafe.Add(ref w1, len);
        ref float w3 = ref Unsafe.Add(ref w2, len);
        ref float w4 = ref Unsafe.Add(ref w3, len);
        ref float w5 = ref Unsafe.Add(ref w4, len);
        ref float w6 = ref Unsafe.Add(ref w5, len);
        ref float w7 = ref Unsafe.Add(ref w6, len);
        Vector512<float> a00 = default, a01 = default, a10 = default, a11 = default, a20 = default, a21 = default, a30 = default, a31 = default;
        Vector512<float> a40 = default, a41 = default, a50 = default, a51 = default, a60 = default, a61 = default, a70 = default, a71 = default;
        for (int k = 0; k < len; k++)
        {
            var x0 = Vector512.LoadUnsafe(ref panel, (nuint)(k * PanelRows));
            var x1 = Vector512.LoadUnsafe(ref panel, (nuint)(k * PanelRows + 16));
            var b = Vector512.Create(Unsafe.Add(ref w, k));
            a00 = Vector512.FusedMultiplyAdd(x0, b, a00); a01 = Vector512.FusedMultiplyAdd(x1, b, a01);
            b = Vector512.Create(Unsafe.Add(ref w1, k));
            a10 = Vector512.FusedMultiplyAdd(x0, b, a10); a11 = Vector512.FusedMultiplyAdd(x1, b, a11);
            b = Vector512.Create(Unsafe.Add(ref w2, k));
            a20 = Vector512.FusedMultiplyAdd(x0, b, a20); a21 = Vector512.FusedMultiplyAdd(x1, b, a21);
            b = Vector512.Create(Unsafe.Add(ref w3, k));
            a30 = Vector512.FusedMultiplyAdd(x0, b, a30); a31 = Vector512.FusedMultiplyAdd(x1, b, a31);
            b = Vector512.Create(Unsafe.Add(ref w4, k));
            a40 = Vector512.FusedMultiplyAdd(x0, b, a40); a41 = Vector512.FusedMultiplyAdd(x1, b, a41);
            b = Vector512.Create(Unsafe.Add(ref w5, k));
            a50 = Vector512.FusedMultiplyAdd(x0, b, a50); a51 = Vector512.FusedMultiplyAdd(x1, b, a51);
            b = Vector512.Create(Unsafe.Add(ref w6, k));
            a60 = Vector512.FusedMultiplyAdd(x0, b, a60); a61 = Vector512.FusedMultiplyAdd(x1, b, a61);
            b = Vector512.Create(Unsafe.Add(ref w7, k));
            a70 = Vector512.FusedMultiplyAdd(x0, b, a70); a71 = Vector512.FusedMultiplyAdd(x1, b, a71);
        }
        ref float t = ref MemoryMarshal.GetReference(tile);
        a00.StoreUnsafe(ref t, 0); a01.StoreUnsafe(ref t, 16);
        a10.StoreUnsafe(ref t, 32); a11.StoreUnsafe(ref t, 48);
        a20.StoreUnsafe(ref t, 64); a21.StoreUnsafe(ref t, 80);
        a30.StoreUnsafe(ref t, 96); a31.StoreUnsafe(ref t, 112);
        a40.StoreUnsafe(ref t, 128); a41.StoreUnsafe(ref t, 144);
        a50.StoreUnsafe(ref t, 160); a51.StoreUnsafe(ref t, 176);
        a60.StoreUnsafe(ref t, 192); a61.StoreUnsafe(ref t, 208);
        a70.StoreUnsafe(ref t, 224); a71.StoreUnsafe(ref t, 240);
    }
}
