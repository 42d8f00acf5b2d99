using System.Globalization;

namespace LongDep.Core.Corpus.Mds;

/// <summary>Element types of MDS <c>ndarray</c> columns and numeric scalar columns, with the codes the format stores.</summary>
public enum MdsDType : byte
{
    UInt8 = 8,
    Int8 = 9,
    UInt16 = 16,
    Int16 = 17,
    Float16 = 18,
    UInt32 = 32,
    Int32 = 33,
    Float32 = 34,
    UInt64 = 64,
    Int64 = 65,
    Float64 = 66,
}

/// <summary>What a column's bytes hold.</summary>
public enum MdsColumnKind
{
    /// <summary><c>str</c>: UTF-8 text.</summary>
    Str,
    /// <summary><c>bytes</c>: raw bytes.</summary>
    Bytes,
    /// <summary><c>int</c> (8-byte little-endian int64) and the fixed-size scalars <c>uint8</c> ... <c>float64</c>.</summary>
    Scalar,
    /// <summary><c>str_int</c>, <c>str_float</c>, <c>str_decimal</c>: a number written as UTF-8 digits.</summary>
    StrNumber,
    /// <summary><c>json</c>: UTF-8 JSON text.</summary>
    Json,
    /// <summary><c>ndarray[:dtype[:shape]]</c>: a NumPy array, dtype and shape either in the encoding or in each value.</summary>
    NdArray,
    /// <summary>Images, lists of images and pickles: kept as bytes, never decoded.</summary>
    Opaque,
}

/// <summary>
/// One MDS column encoding as <c>index.json</c> names it (<c>str</c>, <c>int32</c>, <c>ndarray:uint32</c>, ...), with
/// the fixed byte size the format gives it (null when each value carries its own size).
/// </summary>
public sealed record MdsEncoding
{
    private MdsEncoding(string text, MdsColumnKind kind, MdsDType? dtype, int[]? shape, int? fixedSize)
    {
        Text = text;
        Kind = kind;
        DType = dtype;
        Shape = shape;
        FixedSize = fixedSize;
    }

    /// <summary>The encoding as written in the index.</summary>
    public string Text { get; }
    public MdsColumnKind Kind { get; }
    /// <summary>Scalars: the value type; ndarray: the element type when fixed by the encoding.</summary>
    public MdsDType? DType { get; }
    /// <summary>ndarray: the shape when fixed by the encoding.</summary>
    public int[]? Shape { get; }
    /// <summary>Bytes of every value when the encoding fixes them (scalars; ndarray with dtype and shape); else null.</summary>
    public int? FixedSize { get; }

    /// <summary>The names of the encodings this reader knows (besides <c>ndarray:...</c>).</summary>
    public const string Known = "str, bytes, int, uint8..uint64, int8..int64, float16/32/64, str_int, str_float, str_decimal, json, ndarray[:dtype[:shape]], pil, jpeg, png, jpeg_array, list[pil|jpeg|png], pkl";

    /// <summary><c>str</c>.</summary>
    public static MdsEncoding Str { get; } = new("str", MdsColumnKind.Str, null, null, null);
    /// <summary><c>int32</c>.</summary>
    public static MdsEncoding Int32 { get; } = new("int32", MdsColumnKind.Scalar, MdsDType.Int32, null, 4);
    /// <summary><c>json</c>.</summary>
    public static MdsEncoding JsonText { get; } = new("json", MdsColumnKind.Json, null, null, null);
    /// <summary><c>ndarray:uint32</c>: element type fixed, shape stored with each value.</summary>
    public static MdsEncoding NdArrayUInt32 { get; } = new("ndarray:uint32", MdsColumnKind.NdArray, MdsDType.UInt32, null, null);

    /// <summary>Parses an encoding name.</summary>
    /// <returns>The encoding, or null with <paramref name="error"/> saying what is wrong.</returns>
    public static MdsEncoding? TryParse(string text, out string? error)
    {
        error = null;
        switch (text)
        {
            case "str": return Str;
            case "bytes": return new(text, MdsColumnKind.Bytes, null, null, null);
            case "int": return new(text, MdsColumnKind.Scalar, MdsDType.Int64, null, 8);
            case "str_int" or "str_float" or "str_decimal": return new(text, MdsColumnKind.StrNumber, null, null, null);
            case "json": return JsonText;
            case "pil" or "jpeg" or "png" or "jpeg_array" or "jpegarray" or "list[pil]" or "list[jpeg]" or "list[png]" or "pkl":
                return new(text, MdsColumnKind.Opaque, null, null, null);
        }
        if (ParseDType(text) is { } scalar)
            return new(text, MdsColumnKind.Scalar, scalar, null, Size(scalar));
        if (text == "ndarray" || text.StartsWith("ndarray:", StringComparison.Ordinal))
            return ParseNdArray(text, out error);
        error = $"unknown column encoding '{Clip(text)}' (known: {Known})";
        return null;
    }

    private static MdsEncoding? ParseNdArray(string text, out string? error)
    {
        error = null;
        string[] args = text == "ndarray" ? [] : text["ndarray:".Length..].Split(':');
        if (args.Length > 2)
        {
            error = $"column encoding '{Clip(text)}' has too many parts: expected ndarray, ndarray:DTYPE or ndarray:DTYPE:SHAPE";
            return null;
        }
        MdsDType? dtype = null;
        if (args.Length >= 1)
        {
            dtype = ParseDType(args[0]);
            if (dtype is null)
            {
                error = $"column encoding '{Clip(text)}' names the element type '{Clip(args[0])}', which MDS does not define (uint8..uint64, int8..int64, float16/32/64)";
                return null;
            }
        }
        int[]? shape = null;
        if (args.Length == 2)
        {
            string[] dims = args[1].Split(',');
            shape = new int[dims.Length];
            long count = 1;
            for (int k = 0; k < dims.Length; k++)
            {
                if (!int.TryParse(dims[k], NumberStyles.None, CultureInfo.InvariantCulture, out shape[k]) || shape[k] < 1)
                {
                    error = $"column encoding '{Clip(text)}' has shape '{Clip(args[1])}': expected positive integers separated by commas";
                    return null;
                }
                count *= shape[k];
                if (count > int.MaxValue)
                {
                    error = $"column encoding '{Clip(text)}' has a shape of more than {int.MaxValue} elements";
                    return null;
                }
            }
        }
        int? fixedSize = null;
        if (dtype is { } d && shape is not null)
        {
            long bytes = shape.Aggregate(1L, (a, b) => a * b) * Size(d);
            if (bytes > int.MaxValue)
            {
                error = $"column encoding '{Clip(text)}' fixes {bytes} bytes per value, more than a shard can hold";
                return null;
            }
            fixedSize = (int)bytes;
        }
        return new(text, MdsColumnKind.NdArray, dtype, shape, fixedSize);
    }

    /// <summary>The dtype named <paramref name="name"/> (NumPy's names), or null.</summary>
    public static MdsDType? ParseDType(string name) => name switch
    {
        "uint8" => MdsDType.UInt8,
        "int8" => MdsDType.Int8,
        "uint16" => MdsDType.UInt16,
        "int16" => MdsDType.Int16,
        "float16" => MdsDType.Float16,
        "uint32" => MdsDType.UInt32,
        "int32" => MdsDType.Int32,
        "float32" => MdsDType.Float32,
        "uint64" => MdsDType.UInt64,
        "int64" => MdsDType.Int64,
        "float64" => MdsDType.Float64,
        _ => null,
    };

    /// <summary>The dtype stored as <paramref name="code"/> in an ndarray value, or null for a code MDS does not define.</summary>
    public static MdsDType? DTypeOfCode(byte code) => Enum.IsDefined((MdsDType)code) ? (MdsDType)code : null;

    /// <summary>NumPy's name of <paramref name="dtype"/>.</summary>
    public static string Name(MdsDType dtype) => dtype.ToString().ToLowerInvariant();

    /// <summary>Bytes of one element.</summary>
    public static int Size(MdsDType dtype) => dtype switch
    {
        MdsDType.UInt8 or MdsDType.Int8 => 1,
        MdsDType.UInt16 or MdsDType.Int16 or MdsDType.Float16 => 2,
        MdsDType.UInt32 or MdsDType.Int32 or MdsDType.Float32 => 4,
        _ => 8,
    };

    /// <summary>True for the integer dtypes (token ids can be read from them).</summary>
    public static bool IsInteger(MdsDType dtype) => dtype is not (MdsDType.Float16 or MdsDType.Float32 or MdsDType.Float64);

    internal static string Clip(string s) => s.Length <= 60 ? s : s[..60] + "…";

    public override string ToString() => Text;
}
