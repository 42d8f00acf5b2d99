using System.Buffers.Binary;
using System.Text;

namespace LongDep.Core.Corpus.Mds;

/// <summary>An ndarray value inside a sample: element type, shape, and where its elements start in the value's bytes.</summary>
public readonly record struct MdsArray(MdsDType DType, long[] Shape, int ElementsOffset, long Count)
{
    /// <summary>Bytes of the elements.</summary>
    public long ByteCount => Count * MdsEncoding.Size(DType);
}

/// <summary>Decoding of single MDS column values (little-endian, as NumPy writes them on every platform MDS runs on).</summary>
public static class MdsValue
{
    /// <summary>
    /// Reads an ndarray value's header: the element type (from the encoding or the value's first byte), the shape
    /// (from the encoding or the value), and checks that exactly shape × element size bytes follow.
    /// </summary>
    /// <returns>Null when the value is well formed, else what is wrong.</returns>
    public static string? TryReadArray(ReadOnlySpan<byte> value, MdsEncoding encoding, out MdsArray array)
    {
        array = default;
        int at = 0;
        MdsDType dtype;
        if (encoding.DType is { } fixedType)
        {
            dtype = fixedType;
        }
        else
        {
            if (value.Length < 1) return "the ndarray value is empty (no dtype byte)";
            if (MdsEncoding.DTypeOfCode(value[0]) is not { } coded) return $"the ndarray value has dtype code {value[0]}, which MDS does not define";
            dtype = coded;
            at = 1;
        }

        long[] shape;
        if (encoding.Shape is { } fixedShape)
        {
            shape = Array.ConvertAll(fixedShape, d => (long)d);
        }
        else
        {
            if (value.Length < at + 1) return "the ndarray value ends before its shape byte";
            int ndim = value[at] >> 2, shapeBytes = 1 << (value[at] & 3);
            at++;
            if (ndim == 0) return "the ndarray value has 0 dimensions";
            if (value.Length < at + (long)ndim * shapeBytes) return $"the ndarray value ends inside its {ndim}-dimension shape";
            shape = new long[ndim];
            for (int d = 0; d < ndim; d++)
            {
                ReadOnlySpan<byte> dim = value.Slice(at, shapeBytes);
                ulong n = shapeBytes switch
                {
                    1 => dim[0],
                    2 => BinaryPrimitives.ReadUInt16LittleEndian(dim),
                    4 => BinaryPrimitives.ReadUInt32LittleEndian(dim),
                    _ => BinaryPrimitives.ReadUInt64LittleEndian(dim),
                };
                if (n == 0 || n > int.MaxValue) return $"the ndarray value has dimension {d} of size {n}";
                shape[d] = (long)n;
                at += shapeBytes;
            }
        }

        long count = 1;
        foreach (long d in shape)
        {
            count *= d;
            if (count > int.MaxValue) return "the ndarray value has more than 2^31 elements";
        }
        long expected = count * MdsEncoding.Size(dtype);
        if (value.Length - at != expected)
            return $"the ndarray value has {value.Length - at} bytes of elements but its shape [{string.Join(", ", shape)}] of {MdsEncoding.Name(dtype)} needs {expected}";
        array = new MdsArray(dtype, shape, at, count);
        return null;
    }

    /// <summary>
    /// Copies the elements of an integer ndarray into <paramref name="destination"/> as token ids.
    /// </summary>
    /// <returns>Null when every element is a valid id (0..2^31-1), else what is wrong (the first bad element).</returns>
    public static string? TryReadTokens(ReadOnlySpan<byte> value, in MdsArray array, Span<int> destination)
    {
        if (destination.Length < array.Count) throw new ArgumentException("destination too small", nameof(destination));
        ReadOnlySpan<byte> e = value.Slice(array.ElementsOffset, (int)array.ByteCount);
        int n = (int)array.Count;
        switch (array.DType)
        {
            case MdsDType.UInt32:
            case MdsDType.Int32:
            {
                // Little-endian 4-byte ids copy as they are; values with the top bit set are negative int32 or
                // uint32 ids past int.MaxValue: both rejected below.
                ReadOnlySpan<int> ids = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, int>(e);
                if (!BitConverter.IsLittleEndian)
                    for (int k = 0; k < n; k++) destination[k] = BinaryPrimitives.ReverseEndianness(ids[k]);
                else ids.CopyTo(destination);
                int min = n == 0 ? 0 : System.Numerics.Tensors.TensorPrimitives.Min<int>(destination[..n]);
                if (min < 0)
                {
                    int bad = destination[..n].IndexOf(min);
                    return array.DType == MdsDType.Int32
                        ? $"token id {min} at position {bad} is negative"
                        : $"token id {(uint)min} at position {bad} is larger than any token id ({int.MaxValue})";
                }
                return null;
            }
            case MdsDType.UInt16:
                for (int k = 0; k < n; k++) destination[k] = BinaryPrimitives.ReadUInt16LittleEndian(e[(2 * k)..]);
                return null;
            case MdsDType.UInt8:
                for (int k = 0; k < n; k++) destination[k] = e[k];
                return null;
            case MdsDType.Int16:
                for (int k = 0; k < n; k++)
                {
                    short v = BinaryPrimitives.ReadInt16LittleEndian(e[(2 * k)..]);
                    if (v < 0) return $"token id {v} at position {k} is negative";
                    destination[k] = v;
                }
                return null;
            case MdsDType.Int8:
                for (int k = 0; k < n; k++)
                {
                    sbyte v = (sbyte)e[k];
                    if (v < 0) return $"token id {v} at position {k} is negative";
                    destination[k] = v;
                }
                return null;
            case MdsDType.UInt64:
            case MdsDType.Int64:
                for (int k = 0; k < n; k++)
                {
                    ulong v = BinaryPrimitives.ReadUInt64LittleEndian(e[(8 * k)..]);
                    if (v > int.MaxValue)
                        return array.DType == MdsDType.Int64 && (long)v < 0
                            ? $"token id {(long)v} at position {k} is negative"
                            : $"token id {v} at position {k} is larger than any token id ({int.MaxValue})";
                    destination[k] = (int)v;
                }
                return null;
            default:
                return $"the array holds {MdsEncoding.Name(array.DType)} values, not integer token ids";
        }
    }

    /// <summary>One element of an ndarray as a double (integers exactly up to 2^53).</summary>
    public static double ElementAsDouble(ReadOnlySpan<byte> elements, MdsDType dtype, long index)
    {
        int size = MdsEncoding.Size(dtype);
        ReadOnlySpan<byte> b = elements.Slice((int)(index * size), size);
        return dtype switch
        {
            MdsDType.UInt8 => b[0],
            MdsDType.Int8 => (sbyte)b[0],
            MdsDType.UInt16 => BinaryPrimitives.ReadUInt16LittleEndian(b),
            MdsDType.Int16 => BinaryPrimitives.ReadInt16LittleEndian(b),
            MdsDType.Float16 => (double)BinaryPrimitives.ReadHalfLittleEndian(b),
            MdsDType.UInt32 => BinaryPrimitives.ReadUInt32LittleEndian(b),
            MdsDType.Int32 => BinaryPrimitives.ReadInt32LittleEndian(b),
            MdsDType.Float32 => BinaryPrimitives.ReadSingleLittleEndian(b),
            MdsDType.UInt64 => BinaryPrimitives.ReadUInt64LittleEndian(b),
            MdsDType.Int64 => BinaryPrimitives.ReadInt64LittleEndian(b),
            _ => BinaryPrimitives.ReadDoubleLittleEndian(b),
        };
    }

    /// <summary>True when elements of <paramref name="dtype"/> are integers that fit a long exactly.</summary>
    internal static bool IsExactInteger(MdsDType dtype) => MdsEncoding.IsInteger(dtype);

    /// <summary>One integer element as a signed or unsigned 64-bit value.</summary>
    internal static (long Signed, ulong Unsigned, bool IsUnsigned) IntegerElement(ReadOnlySpan<byte> elements, MdsDType dtype, long index)
    {
        int size = MdsEncoding.Size(dtype);
        ReadOnlySpan<byte> b = elements.Slice((int)(index * size), size);
        return dtype switch
        {
            MdsDType.UInt8 => (b[0], 0, false),
            MdsDType.Int8 => ((sbyte)b[0], 0, false),
            MdsDType.UInt16 => (BinaryPrimitives.ReadUInt16LittleEndian(b), 0, false),
            MdsDType.Int16 => (BinaryPrimitives.ReadInt16LittleEndian(b), 0, false),
            MdsDType.UInt32 => (BinaryPrimitives.ReadUInt32LittleEndian(b), 0, false),
            MdsDType.Int32 => (BinaryPrimitives.ReadInt32LittleEndian(b), 0, false),
            MdsDType.UInt64 => (0, BinaryPrimitives.ReadUInt64LittleEndian(b), true),
            _ => (BinaryPrimitives.ReadInt64LittleEndian(b), 0, false),
        };
    }

    /// <summary>A <c>str</c> value; null with <paramref name="error"/> when it is not valid UTF-8.</summary>
    public static string? TryReadString(ReadOnlySpan<byte> value, out string? error)
    {
        if (!System.Text.Unicode.Utf8.IsValid(value))
        {
            error = "the str value is not valid UTF-8";
            return null;
        }
        error = null;
        return Encoding.UTF8.GetString(value);
    }

    /// <summary>A little-endian int32 scalar.</summary>
    public static int ReadInt32(ReadOnlySpan<byte> value) => BinaryPrimitives.ReadInt32LittleEndian(value);
}
