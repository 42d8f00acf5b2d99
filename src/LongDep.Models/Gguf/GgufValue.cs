namespace LongDep.Models.Gguf;

/// <summary>Metadata value types of GGUF (gguf_metadata_value_type), with their on-disk ids.</summary>
public enum GgufValueType : uint
{
    UInt8 = 0, Int8 = 1, UInt16 = 2, Int16 = 3, UInt32 = 4, Int32 = 5, Float32 = 6, Bool = 7,
    String = 8, Array = 9, UInt64 = 10, Int64 = 11, Float64 = 12,
}

/// <summary>
/// A GGUF metadata array: one element type and a typed .NET array holding the values
/// (byte[], sbyte[], ushort[], short[], uint[], int[], float[], bool[], string[], ulong[], long[], double[],
/// or <see cref="GgufArray"/>[] for nested arrays).
/// </summary>
public sealed class GgufArray
{
    /// <summary>Wraps <paramref name="values"/>, whose .NET element type must match <paramref name="elementType"/>.</summary>
    /// <exception cref="ArgumentException">The array's element type does not match, or a nested array is null.</exception>
    public GgufArray(GgufValueType elementType, Array values)
    {
        ArgumentNullException.ThrowIfNull(values);
        var expected = GgufValues.ClrElementType(elementType)
            ?? throw new ArgumentException($"unknown GGUF value type {(uint)elementType}", nameof(elementType));
        if (values.GetType() != expected.MakeArrayType())
            throw new ArgumentException(
                $"a GGUF {elementType} array needs a {expected.Name}[], got {values.GetType().Name}", nameof(values));
        if (values is string[] strings && strings.Any(s => s is null))
            throw new ArgumentException("a GGUF string array cannot hold null", nameof(values));
        if (values is GgufArray[] nested && nested.Any(a => a is null))
            throw new ArgumentException("a nested GGUF array cannot hold null", nameof(values));
        ElementType = elementType;
        Values = values;
    }

    public GgufValueType ElementType { get; }
    public int Count => Values.Length;
    /// <summary>The typed .NET array (see the class summary). Treat it as read-only.</summary>
    public Array Values { get; }

    public override string ToString() => $"{ElementType}[{Count}]";
}

/// <summary>Mapping between GGUF value types and the .NET types that carry them.</summary>
internal static class GgufValues
{
    /// <summary>The .NET type of one element of <paramref name="t"/>, or null for an unknown type id.</summary>
    public static Type? ClrElementType(GgufValueType t) => t switch
    {
        GgufValueType.UInt8 => typeof(byte),
        GgufValueType.Int8 => typeof(sbyte),
        GgufValueType.UInt16 => typeof(ushort),
        GgufValueType.Int16 => typeof(short),
        GgufValueType.UInt32 => typeof(uint),
        GgufValueType.Int32 => typeof(int),
        GgufValueType.Float32 => typeof(float),
        GgufValueType.Bool => typeof(bool),
        GgufValueType.String => typeof(string),
        GgufValueType.Array => typeof(GgufArray),
        GgufValueType.UInt64 => typeof(ulong),
        GgufValueType.Int64 => typeof(long),
        GgufValueType.Float64 => typeof(double),
        _ => null,
    };

    /// <summary>The GGUF type of a metadata value object (as <see cref="GgufFile.Metadata"/> holds them), or null.</summary>
    public static GgufValueType? TypeOf(object value) => value switch
    {
        byte => GgufValueType.UInt8,
        sbyte => GgufValueType.Int8,
        ushort => GgufValueType.UInt16,
        short => GgufValueType.Int16,
        uint => GgufValueType.UInt32,
        int => GgufValueType.Int32,
        float => GgufValueType.Float32,
        bool => GgufValueType.Bool,
        string => GgufValueType.String,
        GgufArray => GgufValueType.Array,
        ulong => GgufValueType.UInt64,
        long => GgufValueType.Int64,
        double => GgufValueType.Float64,
        _ => null,
    };

    /// <summary>Bytes of one fixed-size element, or 0 for string and array.</summary>
    public static int FixedSize(GgufValueType t) => t switch
    {
        GgufValueType.UInt8 or GgufValueType.Int8 or GgufValueType.Bool => 1,
        GgufValueType.UInt16 or GgufValueType.Int16 => 2,
        GgufValueType.UInt32 or GgufValueType.Int32 or GgufValueType.Float32 => 4,
        GgufValueType.UInt64 or GgufValueType.Int64 or GgufValueType.Float64 => 8,
        _ => 0,
    };

    /// <summary>The fewest bytes one encoded element can take: a string is at least its 8-byte length, an array its 12-byte head.</summary>
    public static int MinEncodedSize(GgufValueType t) => t switch
    {
        GgufValueType.String => 8,
        GgufValueType.Array => 12,
        _ => FixedSize(t),
    };

    /// <summary>A short description for messages: "UInt32", "String", "Array of Float32".</summary>
    public static string Describe(object value) => value is GgufArray a
        ? $"Array of {a.ElementType}"
        : TypeOf(value)?.ToString() ?? value.GetType().Name;
}
