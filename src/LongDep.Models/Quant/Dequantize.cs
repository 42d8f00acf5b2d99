using System.Buffers.Binary;
using System.Numerics;
using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace LongDep.Models.Quant;

/// <summary>
/// Turns stored tensor bytes (little-endian, GGML block layouts) into float32, and float32 into F16/BF16 for writers.
/// Readable types: F32, F16, BF16 and the block types below (layouts of ggml-common.h; each value computed with the
/// same float operations, in the same order, as ggml's <c>dequantize_row_*</c>, so results are bit-identical).
/// docs/quantization.md draws every layout. "f16" is an IEEE half; x is the value, q its stored integer.
/// <list type="bullet">
/// <item>Q8_0: 32 values in 34 bytes: f16 d, 32 int8 q; x = q*d.</item>
/// <item>Q4_0 / Q4_1: 32 values: f16 d (Q4_1: and f16 m), 16 bytes of nibbles (byte j: value j low, value j+16 high);
/// x = (q - 8)*d, or q*d + m.</item>
/// <item>Q5_0 / Q5_1: as Q4_0 / Q4_1 with a fifth bit per value in a 32-bit word after the scales (bit j for value j);
/// x = (q - 16)*d, or q*d + m.</item>
/// <item>IQ4_NL: as Q4_0, but q indexes a fixed table of 16 non-linear levels; x = d*level[q].</item>
/// <item>Q2_K: 256 values in 84 bytes: 16 bytes of 4-bit (scale, min) pairs for sub-blocks of 16, 64 bytes of 2-bit q,
/// f16 d, f16 dmin; x = (d*scale)*q - dmin*min.</item>
/// <item>Q3_K: 256 values in 110 bytes: 32 bytes of high bits, 64 bytes of 2-bit low parts, 12 bytes of 6-bit scales for
/// sub-blocks of 16, f16 d; x = (d*(scale - 32))*(q - 4), the high bit set meaning "no -4".</item>
/// <item>Q4_K: 256 values in 144 bytes: f16 d, f16 dmin, 12 bytes of 6-bit (scale, min) pairs for 8 sub-blocks of 32,
/// then 128 bytes of nibbles; x = (d*scale)*q - dmin*min.</item>
/// <item>Q5_K: as Q4_K with 32 bytes of fifth bits between the scales and the nibbles.</item>
/// <item>Q6_K: 256 values in 210 bytes: 128 bytes of low nibbles (ql), 64 bytes of 2-bit high parts (qh), 16 int8
/// scales for sub-blocks of 16, f16 d; x = (d*scale)*(q - 32).</item>
/// <item>IQ4_XS: 256 values in 136 bytes: f16 d, 16 bits of scale high parts, 4 bytes of scale low nibbles (6-bit scales
/// for sub-blocks of 32), 128 bytes of nibbles indexing IQ4_NL's table; x = (d*(scale - 32))*level[q].</item>
/// </list>
/// </summary>
public static class Dequantize
{
    /// <summary>Inputs at least this many values long are split across threads by <see cref="ToF32Parallel"/>.</summary>
    private const int ParallelThreshold = 1 << 18;

    /// <summary>Values per work item in <see cref="ToF32Parallel"/>; a multiple of every block size.</summary>
    private const int ChunkElements = 1 << 16;

    /// <summary>Values per block of a readable type (1 for F32/F16/BF16, 32 for Q8_0/Q4_x/Q5_x/IQ4_NL, 256 for the K types and IQ4_XS).</summary>
    public static int BlockElements(TensorType type) => GgmlTypes.Of(type).BlockElements;

    /// <summary>Bytes that <paramref name="elements"/> values of <paramref name="type"/> occupy.</summary>
    /// <exception cref="ArgumentException">The count is negative or not a whole number of blocks, or the type is not readable.</exception>
    public static long ByteSize(TensorType type, long elements)
    {
        var info = GgmlTypes.Of(type);
        if (elements < 0)
            throw new ArgumentException($"element count {elements} is negative", nameof(elements));
        if (elements % info.BlockElements != 0)
            throw new ArgumentException(
                $"{elements} values of {info.Name} are not a whole number of blocks of {info.BlockElements}", nameof(elements));
        long blocks = elements / info.BlockElements;
        if (blocks > long.MaxValue / info.BlockBytes)
            throw new ArgumentException($"{elements} values of {info.Name} exceed the largest byte size", nameof(elements));
        return blocks * info.BlockBytes;
    }

    /// <summary>
    /// Dequantizes <paramref name="src"/> into <paramref name="dst"/> on the calling thread. <paramref name="dst"/>'s
    /// length is the value count; <paramref name="src"/> must be exactly <see cref="ByteSize"/> of it.
    /// </summary>
    /// <exception cref="ArgumentException">Wrong source length or an unreadable type.</exception>
    public static void ToF32(TensorType type, ReadOnlySpan<byte> src, Span<float> dst)
    {
        long need = ByteSize(type, dst.Length);
        if (src.Length != need)
            throw new ArgumentException(
                $"{dst.Length} values of {type} take {need} bytes, but {src.Length} bytes were given", nameof(src));
        switch (type)
        {
            case TensorType.F32: src.CopyTo(MemoryMarshal.AsBytes(dst)); break;
            case TensorType.F16: F16ToF32(MemoryMarshal.Cast<byte, ushort>(src), dst); break;
            case TensorType.BF16: BF16ToF32(MemoryMarshal.Cast<byte, ushort>(src), dst); break;
            case TensorType.Q8_0: Q8_0ToF32(src, dst); break;
            case TensorType.Q4_0: Q4_0ToF32(src, dst); break;
            case TensorType.Q4_1: Q4_1ToF32(src, dst); break;
            case TensorType.Q5_0: Q5_0ToF32(src, dst); break;
            case TensorType.Q5_1: Q5_1ToF32(src, dst); break;
            case TensorType.Q2_K: Q2_KToF32(src, dst); break;
            case TensorType.Q3_K: Q3_KToF32(src, dst); break;
            case TensorType.Q4_K: Q4_KToF32(src, dst); break;
            case TensorType.Q5_K: Q5_KToF32(src, dst); break;
            case TensorType.Q6_K: Q6_KToF32(src, dst); break;
            case TensorType.IQ4_NL: IQ4_NLToF32(src, dst); break;
            case TensorType.IQ4_XS: IQ4_XSToF32(src, dst); break;
            default: throw new ArgumentException($"tensor type {type} cannot be dequantized", nameof(type));
        }
    }

    /// <summary>As <see cref="ToF32"/>, split into chunks across the thread pool when the input is large.</summary>
    public static void ToF32Parallel(TensorType type, ReadOnlyMemory<byte> src, Memory<float> dst)
    {
        long need = ByteSize(type, dst.Length);
        if (src.Length != need)
            throw new ArgumentException(
                $"{dst.Length} values of {type} take {need} bytes, but {src.Length} bytes were given", nameof(src));
        if (dst.Length < ParallelThreshold)
        {
            ToF32(type, src.Span, dst.Span);
            return;
        }
        var info = GgmlTypes.Of(type);
        int chunkBytes = ChunkElements / info.BlockElements * info.BlockBytes;
        int chunks = (dst.Length + ChunkElements - 1) / ChunkElements;
        Parallel.For(0, chunks, c =>
        {
            int first = c * ChunkElements;
            int count = Math.Min(ChunkElements, dst.Length - first);
            int bytes = count / info.BlockElements * info.BlockBytes;
            ToF32(type, src.Span.Slice(c * chunkBytes, bytes), dst.Span.Slice(first, count));
        });
    }

    /// <summary>Float32 to IEEE half, round to nearest even (overflow becomes infinity), little-endian bytes.</summary>
    public static void FromF32ToF16(ReadOnlySpan<float> src, Span<byte> dst)
    {
        if (dst.Length != 2L * src.Length)
            throw new ArgumentException($"{src.Length} values need {2L * src.Length} F16 bytes, got {dst.Length}", nameof(dst));
        TensorPrimitives.ConvertToHalf(src, MemoryMarshal.Cast<byte, Half>(dst));
    }

    /// <summary>Float32 to bfloat16 (the top 16 bits), round to nearest even; NaN stays a quiet NaN. Little-endian bytes.</summary>
    public static void FromF32ToBF16(ReadOnlySpan<float> src, Span<byte> dst)
    {
        if (dst.Length != 2L * src.Length)
            throw new ArgumentException($"{src.Length} values need {2L * src.Length} BF16 bytes, got {dst.Length}", nameof(dst));
        var bits = MemoryMarshal.Cast<float, uint>(src);
        for (int i = 0; i < bits.Length; i++)
        {
            uint u = bits[i];
            ushort h = float.IsNaN(src[i])
                ? (ushort)((u >> 16) | 0x0040)                       // keep sign and payload top, force quiet
                : (ushort)((u + 0x7FFFu + ((u >> 16) & 1u)) >> 16);  // ties go to the even result
            BinaryPrimitives.WriteUInt16LittleEndian(dst.Slice(2 * i, 2), h);
        }
    }

    /// <summary>One little-endian IEEE half at the start of <paramref name="bytes"/>, widened to float.</summary>
    public static float ReadHalf(ReadOnlySpan<byte> bytes) =>
        (float)BitConverter.UInt16BitsToHalf(BinaryPrimitives.ReadUInt16LittleEndian(bytes));

    /// <summary>
    /// IEEE half → float32, exact for every value (bit for bit the conversion <c>(float)Half</c> does, also for
    /// subnormals, infinities and NaNs), 32 values a step on 512-bit vectors: the exponent is rebiased by integer arithmetic, a subnormal
    /// renormalized by one exact float subtraction.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void F16ToF32(ReadOnlySpan<ushort> src, Span<float> dst)
    {
        int i = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            ref ushort s = ref MemoryMarshal.GetReference(src);
            ref uint d = ref Unsafe.As<float, uint>(ref MemoryMarshal.GetReference(dst));
            for (; i <= src.Length - 32; i += 32)
            {
                var (lo, hi) = Vector512.Widen(Vector512.LoadUnsafe(ref s, (nuint)i));
                HalfBits(lo).StoreUnsafe(ref d, (nuint)i);
                HalfBits(hi).StoreUnsafe(ref d, (nuint)(i + 16));
            }
        }
        for (; i < src.Length; i++) dst[i] = (float)BitConverter.UInt16BitsToHalf(src[i]);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<uint> HalfBits(Vector512<uint> h)
    {
        const uint ShiftedExponent = 0x7C00u << 13;
        var o = (h & Vector512.Create(0x7FFFu)) << 13;                    // exponent and mantissa in float position
        var exponent = o & Vector512.Create(ShiftedExponent);
        o += Vector512.Create((127u - 15u) << 23);                          // rebias
        var special = Vector512.Equals(exponent, Vector512.Create(ShiftedExponent));                         // Inf/NaN
        o += special & Vector512.Create((128u - 16u) << 23);
        var nan = special & ~Vector512.Equals(o & Vector512.Create(0x7FFFFFu), Vector512<uint>.Zero);
        o |= nan & Vector512.Create(0x400000u);                                                               // NaNs come out quiet, as (float)Half gives them
        var subnormal = Vector512.Equals(exponent, Vector512<uint>.Zero);
        var renormalized = (Vector512.AsSingle(o + Vector512.Create(1u << 23)) - Vector512.Create(BitConverter.UInt32BitsToSingle(113u << 23))).AsUInt32();
        o = Vector512.ConditionalSelect(subnormal, renormalized, o);
        return o | ((h & Vector512.Create(0x8000u)) << 16);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void BF16ToF32(ReadOnlySpan<ushort> src, Span<float> dst)
    {
        // bfloat16 is the upper half of a float32: widen and shift, no rounding involved.
        var outBits = MemoryMarshal.Cast<float, uint>(dst);
        int i = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            ref ushort s = ref MemoryMarshal.GetReference(src);
            ref uint d = ref MemoryMarshal.GetReference(outBits);
            for (; i <= src.Length - 32; i += 32)
            {
                var (lo, hi) = Vector512.Widen(Vector512.LoadUnsafe(ref s, (nuint)i));
                (lo << 16).StoreUnsafe(ref d, (nuint)i);
                (hi << 16).StoreUnsafe(ref d, (nuint)(i + 16));
            }
        }
        if (Vector.IsHardwareAccelerated)
        {
            int step = Vector<ushort>.Count, half = Vector<uint>.Count;
            for (; i <= src.Length - step; i += step)
            {
                Vector.Widen(new Vector<ushort>(src.Slice(i)), out var lo, out var hi);
                (lo << 16).CopyTo(outBits.Slice(i));
                (hi << 16).CopyTo(outBits.Slice(i + half));
            }
        }
        for (; i < src.Length; i++) outBits[i] = (uint)src[i] << 16;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Q8_0ToF32(ReadOnlySpan<byte> src, Span<float> dst)
    {
        const int QK = 32, BlockBytes = 34;
        if (Vector256.IsHardwareAccelerated)
        {
            // The same products q · d, 8 at a time: int8 → int32 → float32 exactly, then one rounding each.
            ref float y = ref MemoryMarshal.GetReference(dst);
            for (int b = 0; b < dst.Length / QK; b++)
            {
                var block = src.Slice(b * BlockBytes, BlockBytes);
                var d = Vector256.Create(ReadHalf(block));
                var (lo, hi) = Vector256.Widen(Vector256.Create(MemoryMarshal.Cast<byte, sbyte>(block.Slice(2, QK))));
                var (a, bb) = Vector256.Widen(lo);
                var (c, e) = Vector256.Widen(hi);
                (Vector256.ConvertToSingle(a) * d).StoreUnsafe(ref y, (nuint)(b * QK));
                (Vector256.ConvertToSingle(bb) * d).StoreUnsafe(ref y, (nuint)(b * QK + 8));
                (Vector256.ConvertToSingle(c) * d).StoreUnsafe(ref y, (nuint)(b * QK + 16));
                (Vector256.ConvertToSingle(e) * d).StoreUnsafe(ref y, (nuint)(b * QK + 24));
            }
            return;
        }
        for (int b = 0; b < dst.Length / QK; b++)
        {
            var block = src.Slice(b * BlockBytes, BlockBytes);
            float d = ReadHalf(block);
            var q = MemoryMarshal.Cast<byte, sbyte>(block.Slice(2, QK));
            var y = dst.Slice(b * QK, QK);
            for (int j = 0; j < QK; j++) y[j] = q[j] * d;
        }
    }

    private static void Q4_0ToF32(ReadOnlySpan<byte> src, Span<float> dst)
    {
        const int QK = 32, BlockBytes = 18;
        for (int b = 0; b < dst.Length / QK; b++)
        {
            var block = src.Slice(b * BlockBytes, BlockBytes);
            float d = ReadHalf(block);
            var qs = block.Slice(2, QK / 2);
            var y = dst.Slice(b * QK, QK);
            for (int j = 0; j < QK / 2; j++)
            {
                y[j] = ((qs[j] & 0x0F) - 8) * d;          // low nibbles: values 0..15
                y[j + QK / 2] = ((qs[j] >> 4) - 8) * d;   // high nibbles: values 16..31
            }
        }
    }

    private static void Q4_1ToF32(ReadOnlySpan<byte> src, Span<float> dst)
    {
        const int QK = 32, BlockBytes = 20;
        for (int b = 0; b < dst.Length / QK; b++)
        {
            var block = src.Slice(b * BlockBytes, BlockBytes);
            float d = ReadHalf(block);
            float m = ReadHalf(block.Slice(2));
            var qs = block.Slice(4, QK / 2);
            var y = dst.Slice(b * QK, QK);
            for (int j = 0; j < QK / 2; j++)
            {
                y[j] = (qs[j] & 0x0F) * d + m;
                y[j + QK / 2] = (qs[j] >> 4) * d + m;
            }
        }
    }

    /// <summary>The 5-bit value j (0..31) of a Q5_0/Q5_1 block: nibble from byte j%16, fifth bit j of the 32-bit word.</summary>
    private static int Q5Value(ReadOnlySpan<byte> qs, uint qh, int j) => j < 16
        ? (qs[j] & 0x0F) | (int)(((qh >> j) & 1) << 4)
        : (qs[j - 16] >> 4) | (int)(((qh >> j) & 1) << 4);

    private static void Q5_0ToF32(ReadOnlySpan<byte> src, Span<float> dst)
    {
        const int QK = 32, BlockBytes = 22;
        for (int b = 0; b < dst.Length / QK; b++)
        {
            var block = src.Slice(b * BlockBytes, BlockBytes);
            float d = ReadHalf(block);
            uint qh = BinaryPrimitives.ReadUInt32LittleEndian(block.Slice(2));
            var qs = block.Slice(6, QK / 2);
            var y = dst.Slice(b * QK, QK);
            for (int j = 0; j < QK; j++) y[j] = (Q5Value(qs, qh, j) - 16) * d;
        }
    }

    private static void Q5_1ToF32(ReadOnlySpan<byte> src, Span<float> dst)
    {
        const int QK = 32, BlockBytes = 24;
        for (int b = 0; b < dst.Length / QK; b++)
        {
            var block = src.Slice(b * BlockBytes, BlockBytes);
            float d = ReadHalf(block);
            float m = ReadHalf(block.Slice(2));
            uint qh = BinaryPrimitives.ReadUInt32LittleEndian(block.Slice(4));
            var qs = block.Slice(8, QK / 2);
            var y = dst.Slice(b * QK, QK);
            for (int j = 0; j < QK; j++) y[j] = Q5Value(qs, qh, j) * d + m;
        }
    }

    private static void Q2_KToF32(ReadOnlySpan<byte> src, Span<float> dst)
    {
        const int QK = 256, BlockBytes = 84;
        for (int b = 0; b < dst.Length / QK; b++)
        {
            var block = src.Slice(b * BlockBytes, BlockBytes);
            var scales = block.Slice(0, 16);
            var qs = block.Slice(16, 64);
            float d = ReadHalf(block.Slice(80));
            float dmin = ReadHalf(block.Slice(82));
            var y = dst.Slice(b * QK, QK);
            // Two halves of 128 values share 32 bytes each; within a half, bit pair s (shift 2s) holds values
            // 32s..32s+31: the first 16 from bytes 0..15 (sub-block 8h+2s), the next 16 from bytes 16..31 (8h+2s+1).
            for (int h = 0; h < 2; h++)
            {
                var q = qs.Slice(32 * h, 32);
                for (int s = 0; s < 4; s++)
                {
                    for (int part = 0; part < 2; part++)
                    {
                        int sc = scales[8 * h + 2 * s + part];
                        float dl = d * (sc & 0x0F), ml = dmin * (sc >> 4);
                        var yy = y.Slice(128 * h + 32 * s + 16 * part, 16);
                        var qq = q.Slice(16 * part, 16);
                        for (int l = 0; l < 16; l++) yy[l] = dl * ((qq[l] >> (2 * s)) & 3) - ml;
                    }
                }
            }
        }
    }

    /// <summary>
    /// Q3_K's 12 scale bytes hold 16 six-bit scales: the low 4 bits of scale i are the low nibble of byte i (i &lt; 8)
    /// or the high nibble of byte i-8 (i &gt;= 8); its top 2 bits are bits 2*(i/4)..2*(i/4)+1 of byte 8 + i%4.
    /// </summary>
    private static int Q3_KScale(ReadOnlySpan<byte> s, int i)
    {
        int low = i < 8 ? s[i] & 0x0F : s[i - 8] >> 4;
        int high = (s[8 + i % 4] >> (2 * (i / 4))) & 3;
        return low | (high << 4);
    }

    private static void Q3_KToF32(ReadOnlySpan<byte> src, Span<float> dst)
    {
        const int QK = 256, BlockBytes = 110;
        for (int b = 0; b < dst.Length / QK; b++)
        {
            var block = src.Slice(b * BlockBytes, BlockBytes);
            var hmask = block.Slice(0, 32);
            var qs = block.Slice(32, 64);
            var scales = block.Slice(96, 12);
            float dAll = ReadHalf(block.Slice(108));
            var y = dst.Slice(b * QK, QK);
            // As Q2_K for the low 2 bits; the high bit of value 32s'+l (s' = 4h+s, l = 0..31) is bit s' of hmask[l],
            // and a clear high bit subtracts 4.
            for (int h = 0; h < 2; h++)
            {
                var q = qs.Slice(32 * h, 32);
                for (int s = 0; s < 4; s++)
                {
                    int bit = 4 * h + s;
                    for (int part = 0; part < 2; part++)
                    {
                        float dl = dAll * (Q3_KScale(scales, 8 * h + 2 * s + part) - 32);
                        var yy = y.Slice(128 * h + 32 * s + 16 * part, 16);
                        for (int l = 0; l < 16; l++)
                        {
                            int at = 16 * part + l;
                            int v = ((q[at] >> (2 * s)) & 3) - (((hmask[at] >> bit) & 1) != 0 ? 0 : 4);
                            yy[l] = dl * v;
                        }
                    }
                }
            }
        }
    }

    /// <summary>
    /// Q4_K's 12 scale bytes hold 8 six-bit scales and 8 six-bit mins. Sub-blocks 0..3 keep theirs in the low 6 bits
    /// of bytes 0..3 (scales) and 4..7 (mins); sub-blocks 4..7 keep their low 4 bits in bytes 8..11 (scale in the low
    /// nibble, min in the high nibble) and their top 2 bits in the spare top bits of bytes 0..3 (scales) and 4..7 (mins).
    /// </summary>
    private static (int Scale, int Min) Q4_KScaleMin(ReadOnlySpan<byte> s, int j) => j < 4
        ? (s[j] & 63, s[j + 4] & 63)
        : ((s[j + 4] & 0x0F) | ((s[j - 4] >> 6) << 4), (s[j + 4] >> 4) | ((s[j] >> 6) << 4));

    private static void Q4_KToF32(ReadOnlySpan<byte> src, Span<float> dst)
    {
        const int QK = 256, BlockBytes = 144;
        for (int b = 0; b < dst.Length / QK; b++)
        {
            var block = src.Slice(b * BlockBytes, BlockBytes);
            float d = ReadHalf(block);
            float dmin = ReadHalf(block.Slice(2));
            var scales = block.Slice(4, 12);
            var qs = block.Slice(16, 128);
            var y = dst.Slice(b * QK, QK);
            // Four groups of 64 values share 32 bytes: low nibbles are sub-block 2g, high nibbles sub-block 2g+1.
            for (int g = 0; g < 4; g++)
            {
                var (sc0, m0) = Q4_KScaleMin(scales, 2 * g);
                var (sc1, m1) = Q4_KScaleMin(scales, 2 * g + 1);
                float d0 = d * sc0, min0 = dmin * m0, d1 = d * sc1, min1 = dmin * m1;
                var q = qs.Slice(32 * g, 32);
                var y0 = y.Slice(64 * g, 32);
                var y1 = y.Slice(64 * g + 32, 32);
                for (int l = 0; l < 32; l++)
                {
                    y0[l] = d0 * (q[l] & 0x0F) - min0;
                    y1[l] = d1 * (q[l] >> 4) - min1;
                }
            }
        }
    }

    private static void Q5_KToF32(ReadOnlySpan<byte> src, Span<float> dst)
    {
        const int QK = 256, BlockBytes = 176;
        for (int b = 0; b < dst.Length / QK; b++)
        {
            var block = src.Slice(b * BlockBytes, BlockBytes);
            float d = ReadHalf(block);
            float dmin = ReadHalf(block.Slice(2));
            var scales = block.Slice(4, 12);
            var qh = block.Slice(16, 32);
            var qs = block.Slice(48, 128);
            var y = dst.Slice(b * QK, QK);
            // As Q4_K; the fifth bit of value l of sub-block k (l = 0..31) is bit k of qh[l].
            for (int g = 0; g < 4; g++)
            {
                var (sc0, m0) = Q4_KScaleMin(scales, 2 * g);
                var (sc1, m1) = Q4_KScaleMin(scales, 2 * g + 1);
                float d0 = d * sc0, min0 = dmin * m0, d1 = d * sc1, min1 = dmin * m1;
                var q = qs.Slice(32 * g, 32);
                var y0 = y.Slice(64 * g, 32);
                var y1 = y.Slice(64 * g + 32, 32);
                for (int l = 0; l < 32; l++)
                {
                    int h0 = ((qh[l] >> (2 * g)) & 1) << 4, h1 = ((qh[l] >> (2 * g + 1)) & 1) << 4;
                    y0[l] = d0 * ((q[l] & 0x0F) + h0) - min0;
                    y1[l] = d1 * ((q[l] >> 4) + h1) - min1;
                }
            }
        }
    }

    private static void Q6_KToF32(ReadOnlySpan<byte> src, Span<float> dst)
    {
        const int QK = 256, BlockBytes = 210;
        for (int b = 0; b < dst.Length / QK; b++)
        {
            var block = src.Slice(b * BlockBytes, BlockBytes);
            var qlAll = block.Slice(0, 128);
            var qhAll = block.Slice(128, 64);
            var scAll = MemoryMarshal.Cast<byte, sbyte>(block.Slice(192, 16));
            float d = ReadHalf(block.Slice(208));
            var yAll = dst.Slice(b * QK, QK);
            // Two halves of 128 values, each with 64 ql bytes, 32 qh bytes and 8 scales.
            for (int h = 0; h < 2; h++)
            {
                var ql = qlAll.Slice(64 * h, 64);
                var qh = qhAll.Slice(32 * h, 32);
                var sc = scAll.Slice(8 * h, 8);
                var y = yAll.Slice(128 * h, 128);
                for (int l = 0; l < 32; l++)
                {
                    int s = l / 16; // sub-blocks of 16 values
                    int hi = qh[l];
                    int q0 = ((ql[l] & 0x0F) | ((hi & 3) << 4)) - 32;
                    int q1 = ((ql[l + 32] & 0x0F) | (((hi >> 2) & 3) << 4)) - 32;
                    int q2 = ((ql[l] >> 4) | (((hi >> 4) & 3) << 4)) - 32;
                    int q3 = ((ql[l + 32] >> 4) | (((hi >> 6) & 3) << 4)) - 32;
                    y[l] = d * sc[s] * q0;
                    y[l + 32] = d * sc[s + 2] * q1;
                    y[l + 64] = d * sc[s + 4] * q2;
                    y[l + 96] = d * sc[s + 6] * q3;
                }
            }
        }
    }

    /// <summary>The 16 levels of IQ4_NL and IQ4_XS (ggml's kvalues_iq4nl), indexed by a stored nibble.</summary>
    internal static ReadOnlySpan<sbyte> IQ4Levels => [-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113];

    private static void IQ4_NLToF32(ReadOnlySpan<byte> src, Span<float> dst)
    {
        const int QK = 32, BlockBytes = 18;
        var levels = IQ4Levels;
        for (int b = 0; b < dst.Length / QK; b++)
        {
            var block = src.Slice(b * BlockBytes, BlockBytes);
            float d = ReadHalf(block);
            var qs = block.Slice(2, QK / 2);
            var y = dst.Slice(b * QK, QK);
            for (int j = 0; j < QK / 2; j++)
            {
                y[j] = d * levels[qs[j] & 0x0F];
                y[j + QK / 2] = d * levels[qs[j] >> 4];
            }
        }
    }

    private static void IQ4_XSToF32(ReadOnlySpan<byte> src, Span<float> dst)
    {
        const int QK = 256, BlockBytes = 136;
        var levels = IQ4Levels;
        for (int b = 0; b < dst.Length / QK; b++)
        {
            var block = src.Slice(b * BlockBytes, BlockBytes);
            float d = ReadHalf(block);
            int scalesHigh = BinaryPrimitives.ReadUInt16LittleEndian(block.Slice(2));
            var scalesLow = block.Slice(4, 4);
            var qsAll = block.Slice(8, 128);
            var yAll = dst.Slice(b * QK, QK);
            // Sub-block k (32 values, 16 bytes of nibbles as IQ4_NL) has the 6-bit scale: low 4 bits from nibble k%2 of
            // scalesLow[k/2], top 2 bits from bits 2k..2k+1 of scalesHigh.
            for (int k = 0; k < 8; k++)
            {
                int ls = ((scalesLow[k / 2] >> (4 * (k % 2))) & 0x0F) | (((scalesHigh >> (2 * k)) & 3) << 4);
                float dl = d * (ls - 32);
                var qs = qsAll.Slice(16 * k, 16);
                var y = yAll.Slice(32 * k, 32);
                for (int j = 0; j < 16; j++)
                {
                    y[j] = dl * levels[qs[j] & 0x0F];
                    y[j + 16] = dl * levels[qs[j] >> 4];
                }
            }
        }
    }
}
