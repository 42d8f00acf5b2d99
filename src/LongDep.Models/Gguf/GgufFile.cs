using System.Buffers;
using System.Runtime.ExceptionServices;
using System.Runtime.InteropServices;
using LongDep.Models.Quant;
using Microsoft.Win32.SafeHandles;

namespace LongDep.Models.Gguf;

/// <summary>
/// A GGUF model file (versions 2 and 3, little-endian), opened for reading.
/// <see cref="Open"/> reads and validates the whole header (metadata and tensor table, every tensor's byte range);
/// tensor data is read on demand with positional reads (pread) from an open handle, so reads are thread-safe, need no
/// unsafe code, and <see cref="ReadF32(string)"/> streams a large tensor through small buffers in parallel, dequantizing
/// straight into the result. Every problem with the file is a <see cref="ModelFormatException"/>.
/// </summary>
public sealed class GgufFile : ITensorSource
{
    /// <summary>Alignment of tensor data when the file does not set general.alignment.</summary>
    public const int DefaultAlignment = 32;
    /// <summary>GGUF's key for the data alignment.</summary>
    public const string AlignmentKey = "general.alignment";

    internal const int MaxKeyBytes = 65535;        // GGUF spec: keys are at most 2^16-1 bytes
    internal const int MaxTensorNameBytes = 64;    // GGUF spec: tensor names are at most 64 bytes
    internal const int MaxStringBytes = 64 << 20;  // far above any real value (chat templates are kilobytes)
    internal const int MaxDims = 4;
    internal const int MaxArrayDepth = 8;          // nested arrays; bounds recursion on hostile input
    private const int MinKvBytes = 8 + 4 + 1;              // empty-length key, type, 1-byte value
    private const int MinTensorInfoBytes = 8 + 4 + 8 + 4 + 8; // name length, n_dims, one dim, type, offset
    private const int ReadChunkElements = 1 << 18;   // values per parallel read-and-dequantize work item

    private readonly SafeFileHandle _file;
    private readonly Dictionary<string, object> _metadata;
    private readonly Dictionary<string, TensorEntry> _entries;
    private readonly Dictionary<string, TensorInfo> _tensors;
    private ModelFileBytes? _bytes;
    private bool _disposed;

    private sealed record TensorEntry(TensorInfo Info, GgmlTypeInfo Ggml, long FileOffset);

    private GgufFile(string path, SafeFileHandle file, uint version, long alignment, long dataStart,
        Dictionary<string, object> metadata, List<TensorEntry> entries)
    {
        SourcePath = path;
        _file = file;
        Version = version;
        Alignment = alignment;
        DataStart = dataStart;
        _metadata = metadata;
        _entries = entries.ToDictionary(e => e.Info.Name);
        _tensors = entries.ToDictionary(e => e.Info.Name, e => e.Info);
        TensorList = entries.Select(e => e.Info).ToArray();
    }

    public string SourcePath { get; }
    /// <summary>The format version in the header: 2 or 3.</summary>
    public uint Version { get; }
    /// <summary>Tensor data alignment in bytes: general.alignment, or 32 when absent.</summary>
    public long Alignment { get; }
    /// <summary>Absolute file offset of the tensor data section (tensor offsets in the file are relative to it).</summary>
    public long DataStart { get; }

    /// <summary>
    /// All metadata, in file order. Values are byte, sbyte, ushort, short, uint, int, float, bool, string, ulong, long,
    /// double, or <see cref="GgufArray"/>.
    /// </summary>
    public IReadOnlyDictionary<string, object> Metadata => _metadata;

    /// <summary>Tensors by name. <see cref="TensorInfo.Shape"/> is row-major, i.e. GGUF's ne[] reversed (ne[0] is innermost).</summary>
    public IReadOnlyDictionary<string, TensorInfo> Tensors => _tensors;

    /// <summary>The tensors in the order of the file's tensor table.</summary>
    public IReadOnlyList<TensorInfo> TensorList { get; }

    // ---------------------------------------------------------------- opening and validation

    /// <summary>Opens <paramref name="path"/> and validates its header, metadata and tensor table.</summary>
    /// <exception cref="ModelFormatException">The file is missing, unreadable, or not a valid GGUF v2/v3 file.</exception>
    public static GgufFile Open(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        if (Directory.Exists(path))
            throw new ModelFormatException(path, "is a directory, expected a GGUF file");
        SafeFileHandle file;
        try
        {
            file = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.Read, FileOptions.RandomAccess);
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            throw new ModelFormatException(path, "file not found", e);
        }
        catch (Exception e) when (e is UnauthorizedAccessException or IOException or NotSupportedException or ArgumentException)
        {
            throw new ModelFormatException(path, $"cannot open the file: {e.Message}", e);
        }

        try
        {
            return Parse(path, file);
        }
        catch (ModelFormatException)
        {
            file.Dispose();
            throw;
        }
        catch (IOException e)
        {
            file.Dispose();
            throw new ModelFormatException(path, $"cannot read the file: {e.Message}", e);
        }
        catch
        {
            file.Dispose();
            throw;
        }
    }

    private static GgufFile Parse(string path, SafeFileHandle file)
    {
        var r = new GgufHeaderReader(file, path);

        // Header: magic, version, tensor count, metadata count.
        if (r.Length < 4)
            throw r.Fail($"the file is {r.Length} bytes long; expected GGUF, which starts with the 4-byte magic 'GGUF'");
        var magic = r.Take(4, "the magic");
        if (!magic.SequenceEqual("GGUF"u8))
            throw r.Fail($"expected GGUF (magic bytes 47 47 55 46 'GGUF'), found {ShowBytes(magic)}; this is not a GGUF model file");
        uint version = r.U32("the version");
        CheckVersion(r, version);
        ulong tensorCount = r.U64("the tensor count");
        ulong kvCount = r.U64("the metadata key-value count");
        if (kvCount > (ulong)(r.Remaining / MinKvBytes))
            throw r.Fail($"metadata count {kvCount} is impossible: {kvCount} entries need at least " +
                         $"{MinKvBytes} bytes each, but only {r.Remaining} bytes follow the header");
        if (tensorCount > (ulong)(r.Remaining / MinTensorInfoBytes))
            throw r.Fail($"tensor count {tensorCount} is impossible: {tensorCount} tensor entries need at least " +
                         $"{MinTensorInfoBytes} bytes each, but only {r.Remaining} bytes follow the header");

        // Metadata.
        var metadata = new Dictionary<string, object>((int)Math.Min(kvCount, 4096), StringComparer.Ordinal);
        for (ulong i = 0; i < kvCount; i++)
        {
            long at = r.Position;
            string key = r.String($"metadata key #{i}", MaxKeyBytes);
            if (key.Length == 0) throw r.Fail($"metadata key #{i} at offset {at} is empty");
            if (metadata.ContainsKey(key)) throw r.Fail($"duplicate metadata key '{key}' (second at offset {at})");
            uint type = r.U32($"the value type of metadata key '{key}'");
            metadata[key] = ReadValue(r, type, key, depth: 0);
        }

        long alignment = ReadAlignment(r, metadata);

        // Tensor table.
        if (tensorCount > (ulong)(r.Remaining / MinTensorInfoBytes))
            throw r.Fail($"tensor count {tensorCount} is impossible: {tensorCount} tensor entries need at least " +
                         $"{MinTensorInfoBytes} bytes each, but only {r.Remaining} bytes follow the metadata");
        var raw = new List<(string Name, long[] Ne, uint Type, ulong Offset, long At)>((int)Math.Min(tensorCount, 4096));
        var names = new HashSet<string>(StringComparer.Ordinal);
        for (ulong i = 0; i < tensorCount; i++)
        {
            long at = r.Position;
            string name = r.String($"the name of tensor #{i}", MaxTensorNameBytes);
            if (name.Length == 0) throw r.Fail($"tensor #{i} at offset {at} has an empty name");
            if (!names.Add(name)) throw r.Fail($"duplicate tensor name '{name}' (second at offset {at})");
            uint nDims = r.U32($"the dimension count of tensor '{name}'");
            if (nDims is 0 or > MaxDims)
                throw r.Fail($"tensor '{name}' has {nDims} dimensions; expected 1 to {MaxDims}");
            var ne = new long[nDims];
            for (int d = 0; d < nDims; d++)
            {
                ulong n = r.U64($"dimension {d} of tensor '{name}'");
                if (n > long.MaxValue) throw r.Fail($"tensor '{name}' dimension {d} is {n}, which is too large");
                ne[d] = (long)n;
            }
            uint type = r.U32($"the type of tensor '{name}'");
            ulong offset = r.U64($"the data offset of tensor '{name}'");
            raw.Add((name, ne, type, offset, at));
        }

        long dataStart = AlignUp(r.Position, alignment);
        var entries = new List<TensorEntry>(raw.Count);
        foreach (var t in raw)
            entries.Add(CheckTensor(r, t.Name, t.Ne, t.Type, t.Offset, dataStart, alignment));
        CheckNoOverlap(r, entries);

        return new GgufFile(path, file, version, alignment, dataStart, metadata, entries);
    }

    private static void CheckVersion(GgufHeaderReader r, uint version)
    {
        if (version is 2 or 3) return;
        if (version == 1)
            throw r.Fail("GGUF version 1 is not supported (it uses 32-bit counts); this tool reads versions 2 and 3 — " +
                         "re-convert the model with a current llama.cpp");
        uint swapped = System.Buffers.Binary.BinaryPrimitives.ReverseEndianness(version);
        if (swapped is >= 1 and <= 3)
            throw r.Fail($"this is a big-endian GGUF file (version field reads {version}); only little-endian files are supported");
        throw r.Fail($"unsupported GGUF version {version}; this tool reads versions 2 and 3");
    }

    private static long ReadAlignment(GgufHeaderReader r, Dictionary<string, object> metadata)
    {
        if (!metadata.TryGetValue(AlignmentKey, out var value)) return DefaultAlignment;
        if (!TryInteger(value, out var a))
            throw r.Fail($"'{AlignmentKey}' has type {GgufValues.Describe(value)}, expected an unsigned integer (UInt32)");
        if (a <= 0 || a > 1 << 30 || (a & (a - 1)) != 0)
            throw r.Fail($"'{AlignmentKey}' is {a}; expected a power of two between 1 and 2^30");
        return (long)a;
    }

    private static object ReadValue(GgufHeaderReader r, uint type, string key, int depth)
    {
        switch ((GgufValueType)type)
        {
            case GgufValueType.UInt8: return r.U8($"the value of '{key}'");
            case GgufValueType.Int8: return (sbyte)r.U8($"the value of '{key}'");
            case GgufValueType.UInt16: return r.U16($"the value of '{key}'");
            case GgufValueType.Int16: return (short)r.U16($"the value of '{key}'");
            case GgufValueType.UInt32: return r.U32($"the value of '{key}'");
            case GgufValueType.Int32: return (int)r.U32($"the value of '{key}'");
            case GgufValueType.Float32: return BitConverter.UInt32BitsToSingle(r.U32($"the value of '{key}'"));
            case GgufValueType.UInt64: return r.U64($"the value of '{key}'");
            case GgufValueType.Int64: return (long)r.U64($"the value of '{key}'");
            case GgufValueType.Float64: return BitConverter.UInt64BitsToDouble(r.U64($"the value of '{key}'"));
            case GgufValueType.Bool:
                {
                    long at = r.Position;
                    byte b = r.U8($"the value of '{key}'");
                    if (b > 1) throw r.Fail($"metadata '{key}': bool value at offset {at} is {b}; expected 0 or 1");
                    return b == 1;
                }
            case GgufValueType.String: return r.String($"the value of '{key}'", MaxStringBytes);
            case GgufValueType.Array: return ReadArray(r, key, depth + 1);
            default:
                throw r.Fail($"metadata '{key}' has unknown value type {type} at offset {r.Position - 4}; " +
                             "expected 0..12 (uint8 .. float64)");
        }
    }

    private static GgufArray ReadArray(GgufHeaderReader r, string key, int depth)
    {
        if (depth > MaxArrayDepth)
            throw r.Fail($"metadata '{key}' nests arrays more than {MaxArrayDepth} deep");
        long at = r.Position;
        uint elementType = r.U32($"the element type of array '{key}'");
        if (GgufValues.ClrElementType((GgufValueType)elementType) is null)
            throw r.Fail($"metadata array '{key}' at offset {at} has unknown element type {elementType}; expected 0..12");
        var type = (GgufValueType)elementType;
        ulong count = r.U64($"the element count of array '{key}'");
        int minSize = GgufValues.MinEncodedSize(type);
        if (count > (ulong)(r.Remaining / minSize) || count > (ulong)Array.MaxLength)
            throw r.Fail($"metadata array '{key}' at offset {at}: array count {count} is too large " +
                         $"({type} elements take at least {minSize} bytes each, only {r.Remaining} bytes remain)");
        int n = (int)count;
        string what = $"the elements of array '{key}'";
        switch (type)
        {
            case GgufValueType.UInt8: return new GgufArray(type, Fixed<byte>(r, n, what));
            case GgufValueType.Int8: return new GgufArray(type, Fixed<sbyte>(r, n, what));
            case GgufValueType.UInt16: return new GgufArray(type, Fixed<ushort>(r, n, what));
            case GgufValueType.Int16: return new GgufArray(type, Fixed<short>(r, n, what));
            case GgufValueType.UInt32: return new GgufArray(type, Fixed<uint>(r, n, what));
            case GgufValueType.Int32: return new GgufArray(type, Fixed<int>(r, n, what));
            case GgufValueType.Float32: return new GgufArray(type, Fixed<float>(r, n, what));
            case GgufValueType.UInt64: return new GgufArray(type, Fixed<ulong>(r, n, what));
            case GgufValueType.Int64: return new GgufArray(type, Fixed<long>(r, n, what));
            case GgufValueType.Float64: return new GgufArray(type, Fixed<double>(r, n, what));
            case GgufValueType.Bool:
                {
                    var bytes = Fixed<byte>(r, n, what);
                    var values = new bool[n];
                    for (int i = 0; i < n; i++)
                    {
                        if (bytes[i] > 1)
                            throw r.Fail($"metadata array '{key}': element {i} is {bytes[i]}, not a bool (0 or 1)");
                        values[i] = bytes[i] == 1;
                    }
                    return new GgufArray(type, values);
                }
            case GgufValueType.String:
                {
                    var values = new string[n];
                    for (int i = 0; i < n; i++) values[i] = r.String($"element {i} of array '{key}'", MaxStringBytes);
                    return new GgufArray(type, values);
                }
            default: // nested array
                {
                    var values = new GgufArray[n];
                    for (int i = 0; i < n; i++) values[i] = ReadArray(r, $"{key}[{i}]", depth + 1);
                    return new GgufArray(type, values);
                }
        }
    }

    private static T[] Fixed<T>(GgufHeaderReader r, int count, string what) where T : unmanaged
    {
        var values = new T[count]; // count * sizeof(T) <= remaining bytes, checked by the caller
        r.ReadArray<T>(values, what);
        return values;
    }

    private static TensorEntry CheckTensor(GgufHeaderReader r, string name, long[] ne, uint typeId, ulong offset,
        long dataStart, long alignment)
    {
        string dims = string.Join(", ", ne);
        if (!GgmlTypes.TryGet(typeId, out var ggml))
            throw r.Fail($"tensor '{name}' has unknown GGML type id {typeId}; this file may need a newer tool");

        long elements = 1;
        bool hasZero = ne.Any(d => d == 0);
        foreach (long d in ne)
        {
            if (!hasZero && elements > long.MaxValue / d)
                throw r.Fail($"tensor '{name}' dims overflow: shape ne=[{dims}] has more than 2^63 elements");
            elements = hasZero ? 0 : elements * d;
        }
        if (ne[0] % ggml.BlockElements != 0)
            throw r.Fail($"tensor '{name}' of type {ggml.Name} has rows of {ne[0]} values (ne[0]), " +
                         $"not a multiple of its block size {ggml.BlockElements}");
        long blocks = elements / ggml.BlockElements;
        if (blocks > long.MaxValue / ggml.BlockBytes)
            throw r.Fail($"tensor '{name}' dims overflow: shape ne=[{dims}] of {ggml.Name} exceeds 2^63 bytes");
        long byteSize = blocks * ggml.BlockBytes;

        if (offset % (ulong)alignment != 0)
            throw r.Fail($"tensor '{name}' data offset {offset} is not aligned: expected a multiple of the alignment {alignment}");
        long room = r.Length - dataStart; // bytes of the data section present in the file (may be negative)
        if (offset > (ulong)Math.Max(room, 0) || byteSize > room - (long)offset)
            throw r.Fail($"tensor '{name}' data past end of file: {byteSize} bytes at data offset {offset} " +
                         $"(file offset {(decimal)dataStart + offset}) end beyond the file size {r.Length}; the file is truncated or corrupt");

        var shape = ne.Reverse().ToArray();
        var info = new TensorInfo(name, ggml.Type, ggml.Name, shape, byteSize);
        return new TensorEntry(info, ggml, dataStart + (long)offset);
    }

    private static void CheckNoOverlap(GgufHeaderReader r, List<TensorEntry> entries)
    {
        var placed = entries.Where(e => e.Info.ByteSize > 0).OrderBy(e => e.FileOffset).ToList();
        for (int i = 1; i < placed.Count; i++)
        {
            var a = placed[i - 1];
            var b = placed[i];
            if (a.FileOffset + a.Info.ByteSize > b.FileOffset)
                throw r.Fail($"tensors '{a.Info.Name}' (file bytes {a.FileOffset}..{a.FileOffset + a.Info.ByteSize}) and " +
                             $"'{b.Info.Name}' (from {b.FileOffset}) overlap");
        }
    }

    private static long AlignUp(long position, long alignment) => (position + alignment - 1) / alignment * alignment;

    private static string ShowBytes(ReadOnlySpan<byte> bytes)
    {
        var hex = string.Join(" ", bytes.ToArray().Select(b => b.ToString("X2")));
        var text = new string(bytes.ToArray().Select(b => b is >= 0x20 and < 0x7F ? (char)b : '.').ToArray());
        return $"{hex} '{text}'";
    }

    // ---------------------------------------------------------------- metadata getters

    private object? Get(string key) => _metadata.GetValueOrDefault(key);

    private ModelFormatException Mismatch(string key, object value, string expected) =>
        new(SourcePath, $"metadata '{key}' has type {GgufValues.Describe(value)}, expected {expected}");

    private static bool TryInteger(object value, out Int128 result)
    {
        switch (value)
        {
            case byte v: result = v; return true;
            case sbyte v: result = v; return true;
            case ushort v: result = v; return true;
            case short v: result = v; return true;
            case uint v: result = v; return true;
            case int v: result = v; return true;
            case ulong v: result = v; return true;
            case long v: result = v; return true;
            default: result = 0; return false;
        }
    }

    /// <summary>A string value; null when absent.</summary>
    /// <exception cref="ModelFormatException">The key holds another type.</exception>
    public string? GetString(string key) => Get(key) switch
    {
        null => null,
        string s => s,
        var v => throw Mismatch(key, v, "String"),
    };

    /// <summary>Any integer value as a long; null when absent.</summary>
    /// <exception cref="ModelFormatException">Not an integer, or a UInt64 above long.MaxValue.</exception>
    public long? GetInteger(string key)
    {
        var v = Get(key);
        if (v is null) return null;
        if (!TryInteger(v, out var i)) throw Mismatch(key, v, "an integer");
        if (i > long.MaxValue) throw new ModelFormatException(SourcePath, $"metadata '{key}' is {i}, too large for a 64-bit signed integer");
        return (long)i;
    }

    /// <summary>A Float32/Float64 (or integer) value as a double; null when absent.</summary>
    public double? GetFloat(string key) => Get(key) switch
    {
        null => null,
        float f => f,
        double d => d,
        var v when TryInteger(v, out var i) => (double)i,
        var v => throw Mismatch(key, v, "a number"),
    };

    /// <summary>A Bool value; null when absent.</summary>
    public bool? GetBool(string key) => Get(key) switch
    {
        null => null,
        bool b => b,
        var v => throw Mismatch(key, v, "Bool"),
    };

    /// <summary>A copy of a string array; null when absent.</summary>
    public string[]? GetStringArray(string key) => Get(key) switch
    {
        null => null,
        GgufArray { Values: string[] s } => (string[])s.Clone(),
        var v => throw Mismatch(key, v, "Array of String"),
    };

    /// <summary>A float array (from Float32, Float64 or integer elements, converted); null when absent.</summary>
    public float[]? GetFloatArray(string key)
    {
        var v = Get(key);
        switch (v)
        {
            case null: return null;
            case GgufArray { Values: float[] f }: return (float[])f.Clone();
            case GgufArray { Values: double[] d }: return Array.ConvertAll(d, x => (float)x);
            case GgufArray a when IsIntegerType(a.ElementType):
                {
                    var result = new float[a.Count];
                    for (int i = 0; i < result.Length; i++)
                    {
                        TryInteger(a.Values.GetValue(i)!, out var x);
                        result[i] = (float)x;
                    }
                    return result;
                }
            default: throw Mismatch(key, v, "Array of Float32");
        }
    }

    /// <summary>An int array from any integer element type; null when absent.</summary>
    /// <exception cref="ModelFormatException">Not an integer array, or an element outside the int range.</exception>
    public int[]? GetIntArray(string key)
    {
        var v = Get(key);
        switch (v)
        {
            case null: return null;
            case GgufArray { Values: int[] ints }: return (int[])ints.Clone();
            case GgufArray a when IsIntegerType(a.ElementType):
                {
                    var result = new int[a.Count];
                    for (int i = 0; i < result.Length; i++)
                    {
                        TryInteger(a.Values.GetValue(i)!, out var x);
                        if (x < int.MinValue || x > int.MaxValue)
                            throw new ModelFormatException(SourcePath, $"metadata '{key}' element {i} is {x}, which does not fit in a 32-bit integer");
                        result[i] = (int)x;
                    }
                    return result;
                }
            default: throw Mismatch(key, v, "Array of an integer type");
        }
    }

    private static bool IsIntegerType(GgufValueType t) => t is GgufValueType.UInt8 or GgufValueType.Int8
        or GgufValueType.UInt16 or GgufValueType.Int16 or GgufValueType.UInt32 or GgufValueType.Int32
        or GgufValueType.UInt64 or GgufValueType.Int64;

    // ---------------------------------------------------------------- tensor data

    private TensorEntry Entry(string name)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        ArgumentNullException.ThrowIfNull(name);
        return _entries.TryGetValue(name, out var e)
            ? e
            : throw new ModelFormatException(SourcePath, $"tensor '{name}' not found (the file has {_entries.Count} tensors)");
    }

    /// <summary>Absolute file offset of a tensor's first byte, for callers that map or read the file themselves.</summary>
    public long DataOffset(string name) => Entry(name).FileOffset;

    /// <summary>Reads and dequantizes one tensor to float32, row-major (see <see cref="Tensors"/> for the shape).</summary>
    /// <exception cref="ModelFormatException">No such tensor, an unreadable type, or the file cannot be read.</exception>
    public float[] ReadF32(string name)
    {
        var e = Entry(name);
        RequireReadable(e);
        long n = e.Info.ElementCount;
        if (n > Array.MaxLength)
            throw new ModelFormatException(SourcePath, $"tensor '{name}' has {n} values, more than one array can hold ({Array.MaxLength})");
        var result = GC.AllocateUninitializedArray<float>((int)n); // every element is written below
        ReadF32Core(e, result);
        return result;
    }

    /// <summary>As <see cref="ReadF32(string)"/>, into a caller-owned buffer of exactly the tensor's element count.</summary>
    public void ReadF32(string name, Memory<float> destination)
    {
        var e = Entry(name);
        RequireReadable(e);
        if (destination.Length != e.Info.ElementCount)
            throw new ArgumentException($"tensor '{name}' has {e.Info.ElementCount} values, the destination holds {destination.Length}", nameof(destination));
        ReadF32Core(e, destination);
    }

    /// <summary>
    /// One tensor in its stored type as a read-only view of the file's bytes (one file handle, opened on first use, shared
    /// by every tensor and kept alive by the weights after this file is disposed; blocks are read when needed): nothing
    /// is converted or copied at load.
    /// </summary>
    /// <exception cref="ModelFormatException">No such tensor, an unreadable type, or the file cannot be opened.</exception>
    public WeightMatrix ReadMatrix(string name)
    {
        var e = Entry(name);
        RequireReadable(e);
        if (e.Info.ElementCount == 0) return WeightMatrix.FromFloat32([]);
        ModelFileBytes mapping;
        lock (_entries)
        {
            mapping = _bytes ??= ModelFileBytes.Open(SourcePath);
        }
        return WeightMatrix.FromFile(e.Ggml.Type, e.Info.ElementCount, mapping, e.FileOffset);
    }

    /// <summary>A copy of a tensor's stored bytes (any type, quantized blocks as they are in the file).</summary>
    public byte[] RawBytes(string name)
    {
        var e = Entry(name);
        if (e.Info.ByteSize > Array.MaxLength)
            throw new ModelFormatException(SourcePath, $"tensor '{name}' is {e.Info.ByteSize} bytes, more than one array can hold");
        var bytes = new byte[e.Info.ByteSize];
        ReadExactly(e, 0, bytes);
        return bytes;
    }

    /// <summary>Reads a tensor's stored bytes into <paramref name="destination"/>, which must be exactly its byte size.</summary>
    public void RawBytes(string name, Span<byte> destination)
    {
        var e = Entry(name);
        if (destination.Length != e.Info.ByteSize)
            throw new ArgumentException($"tensor '{name}' is {e.Info.ByteSize} bytes, the destination holds {destination.Length}", nameof(destination));
        ReadExactly(e, 0, destination);
    }

    private void RequireReadable(TensorEntry e)
    {
        if (e.Ggml.Type == TensorType.Other)
            throw new ModelFormatException(SourcePath,
                $"tensor {e.Info.Name} has type {e.Ggml.Name}, which this tool does not read; supported: {GgmlTypes.ReadableList}. " +
                "Re-quantize the model to one of these types");
    }

    private void ReadF32Core(TensorEntry e, Memory<float> destination)
    {
        var type = e.Ggml;
        int n = destination.Length;
        int chunks = (int)(((long)n + ReadChunkElements - 1) / ReadChunkElements);

        void Chunk(int c)
        {
            int first = c * ReadChunkElements; // ReadChunkElements is a multiple of every block size
            int count = Math.Min(ReadChunkElements, n - first);
            long byteOffset = (long)first / type.BlockElements * type.BlockBytes;
            int bytes = count / type.BlockElements * type.BlockBytes;
            var dst = destination.Span.Slice(first, count);
            if (type.Type == TensorType.F32)
            {
                ReadExactly(e, byteOffset, MemoryMarshal.AsBytes(dst));
                return;
            }
            byte[] buffer = ArrayPool<byte>.Shared.Rent(bytes);
            try
            {
                var src = buffer.AsSpan(0, bytes);
                ReadExactly(e, byteOffset, src);
                Dequantize.ToF32(type.Type, src, dst);
            }
            finally
            {
                ArrayPool<byte>.Shared.Return(buffer);
            }
        }

        if (chunks <= 1)
        {
            if (n > 0) Chunk(0);
            return;
        }
        try
        {
            Parallel.For(0, chunks, Chunk);
        }
        catch (AggregateException ae)
        {
            var inner = ae.Flatten().InnerExceptions;
            var first = inner.FirstOrDefault(x => x is ModelFormatException) ?? inner[0];
            ExceptionDispatchInfo.Capture(first).Throw();
            throw; // not reached
        }
    }

    private void ReadExactly(TensorEntry e, long offsetInTensor, Span<byte> destination)
    {
        long position = e.FileOffset + offsetInTensor;
        try
        {
            while (destination.Length > 0)
            {
                int got = RandomAccess.Read(_file, destination, position);
                if (got == 0)
                    throw new ModelFormatException(SourcePath,
                        $"the file ended at byte {position} while reading tensor '{e.Info.Name}' (was it truncated after opening?)");
                destination = destination.Slice(got);
                position += got;
            }
        }
        catch (IOException io)
        {
            throw new ModelFormatException(SourcePath, $"cannot read tensor '{e.Info.Name}': {io.Message}", io);
        }
    }

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        _file.Dispose();
    }
}
