namespace LongDep.Cuda.Twins;

/// <summary>bfloat16 conversions with the GPU's rounding (round to nearest even, as __float2bfloat16_rn).</summary>
public static class BFloat16Bits
{
    public static ushort FromFloat(float value)
    {
        if (float.IsNaN(value)) return 0x7FC0;
        uint bits = BitConverter.SingleToUInt32Bits(value);
        uint roundingBias = 0x7FFFu + ((bits >> 16) & 1u);
        return (ushort)((bits + roundingBias) >> 16);
    }

    public static float ToFloat(ushort bits) => BitConverter.UInt32BitsToSingle((uint)bits << 16);
}

/// <summary>Reading and writing GEMM-typed element arrays (f32, f16, bf16) as float32, with the GPU's rounding.</summary>
public static class ElementTypes
{
    /// <summary>The float32 value an element of <paramref name="type"/> stores for <paramref name="value"/>.</summary>
    public static float Round(float value, CudaPrecision type) => type switch
    {
        CudaPrecision.F32 => value,
        CudaPrecision.F16 => (float)(Half)value,
        _ => BFloat16Bits.ToFloat(BFloat16Bits.FromFloat(value)),
    };

    /// <summary>Decodes <paramref name="count"/> elements of <paramref name="type"/> from raw bytes.</summary>
    public static void ToFloat(ReadOnlySpan<byte> raw, CudaPrecision type, Span<float> destination)
    {
        int size = type.ElementSize();
        if (raw.Length < destination.Length * size)
            throw new ArgumentException($"{raw.Length} bytes hold fewer than {destination.Length} {type} elements");
        switch (type)
        {
            case CudaPrecision.F32:
                System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(raw)[..destination.Length].CopyTo(destination);
                break;
            case CudaPrecision.F16:
                var halves = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, Half>(raw);
                for (int i = 0; i < destination.Length; i++) destination[i] = (float)halves[i];
                break;
            default:
                var bf = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, ushort>(raw);
                for (int i = 0; i < destination.Length; i++) destination[i] = BFloat16Bits.ToFloat(bf[i]);
                break;
        }
    }

    /// <summary>Encodes float32 values as elements of <paramref name="type"/> into raw bytes.</summary>
    public static void FromFloat(ReadOnlySpan<float> values, CudaPrecision type, Span<byte> raw)
    {
        int size = type.ElementSize();
        if (raw.Length < values.Length * size)
            throw new ArgumentException($"{raw.Length} bytes cannot hold {values.Length} {type} elements");
        switch (type)
        {
            case CudaPrecision.F32:
                values.CopyTo(System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(raw));
                break;
            case CudaPrecision.F16:
                var halves = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, Half>(raw);
                for (int i = 0; i < values.Length; i++) halves[i] = (Half)values[i];
                break;
            default:
                var bf = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, ushort>(raw);
                for (int i = 0; i < values.Length; i++) bf[i] = BFloat16Bits.FromFloat(values[i]);
                break;
        }
    }
}
