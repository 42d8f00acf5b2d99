using System.Runtime.InteropServices;
using System.Text;
using LongDep.Models.Quant;

namespace LongDep.Models.Gguf;

/// <summary>
/// Writes a little-endian GGUF file (version 2 or 3): metadata, a tensor table, then each tensor's data at an offset
/// aligned to <see cref="Alignment"/> (padded with zeros, as llama.cpp writes it). Shapes are given row-major
/// (outermost first, as <see cref="TensorInfo.Shape"/>); the writer stores them as GGUF's reversed ne[].
/// Tensor data is written one tensor at a time: float arrays are referenced, not copied, and converted to F16/BF16 or
/// quantized to GGML blocks in small chunks; <see cref="AddTensor(string, long[], Func{float[]}, TensorType)"/> defers even producing the values
/// until <see cref="Write"/>, so a large model never needs to be in memory all at once.
/// </summary>
public sealed class GgufWriter
{
    private const int ConvertChunk = 1 << 16; // values per conversion chunk when writing F16/BF16

    private readonly List<(string Key, object Value)> _metadata = [];
    private readonly HashSet<string> _keys = new(StringComparer.Ordinal);
    private readonly List<PendingTensor> _tensors = [];
    private readonly HashSet<string> _tensorNames = new(StringComparer.Ordinal);

    private sealed record PendingTensor(string Name, GgmlTypeInfo Type, long[] Ne, long Elements, long ByteSize,
        Func<float[]>? Floats, byte[]? Raw);

    /// <param name="version">GGUF version to write: 2 or 3 (the layouts are the same for little-endian files).</param>
    /// <param name="alignment">Tensor data alignment, a power of two; when not 32 it is recorded as general.alignment.</param>
    public GgufWriter(uint version = 3, int alignment = GgufFile.DefaultAlignment)
    {
        if (version is not (2 or 3))
            throw new ArgumentOutOfRangeException(nameof(version), version, "GGUF version must be 2 or 3");
        if (alignment <= 0 || (alignment & (alignment - 1)) != 0)
            throw new ArgumentOutOfRangeException(nameof(alignment), alignment, "alignment must be a positive power of two");
        Version = version;
        Alignment = alignment;
        if (alignment != GgufFile.DefaultAlignment)
            AddValue(GgufFile.AlignmentKey, (uint)alignment, internalKey: true);
    }

    public uint Version { get; }
    public int Alignment { get; }

    // ---------------------------------------------------------------- metadata

    public void Add(string key, byte value) => AddValue(key, value);
    public void Add(string key, sbyte value) => AddValue(key, value);
    public void Add(string key, ushort value) => AddValue(key, value);
    public void Add(string key, short value) => AddValue(key, value);
    public void Add(string key, uint value) => AddValue(key, value);
    public void Add(string key, int value) => AddValue(key, value);
    public void Add(string key, ulong value) => AddValue(key, value);
    public void Add(string key, long value) => AddValue(key, value);
    public void Add(string key, float value) => AddValue(key, value);
    public void Add(string key, double value) => AddValue(key, value);
    public void Add(string key, bool value) => AddValue(key, value);
    public void Add(string key, string value) => AddValue(key, value ?? throw new ArgumentNullException(nameof(value)));
    /// <summary>Any array, including nested arrays (element type <see cref="GgufValueType.Array"/>).</summary>
    public void Add(string key, GgufArray value) => AddValue(key, value ?? throw new ArgumentNullException(nameof(value)));
    public void Add(string key, byte[] values) => Add(key, new GgufArray(GgufValueType.UInt8, values));
    public void Add(string key, sbyte[] values) => Add(key, new GgufArray(GgufValueType.Int8, values));
    public void Add(string key, ushort[] values) => Add(key, new GgufArray(GgufValueType.UInt16, values));
    public void Add(string key, short[] values) => Add(key, new GgufArray(GgufValueType.Int16, values));
    public void Add(string key, uint[] values) => Add(key, new GgufArray(GgufValueType.UInt32, values));
    public void Add(string key, int[] values) => Add(key, new GgufArray(GgufValueType.Int32, values));
    public void Add(string key, ulong[] values) => Add(key, new GgufArray(GgufValueType.UInt64, values));
    public void Add(string key, long[] values) => Add(key, new GgufArray(GgufValueType.Int64, values));
    public void Add(string key, float[] values) => Add(key, new GgufArray(GgufValueType.Float32, values));
    public void Add(string key, double[] values) => Add(key, new GgufArray(GgufValueType.Float64, values));
    public void Add(string key, bool[] values) => Add(key, new GgufArray(GgufValueType.Bool, values));
    public void Add(string key, string[] values) => Add(key, new GgufArray(GgufValueType.String, values));

    private void AddValue(string key, object value, bool internalKey = false)
    {
        ArgumentNullException.ThrowIfNull(key);
        if (key.Length == 0) throw new ArgumentException("metadata key cannot be empty", nameof(key));
        if (Encoding.UTF8.GetByteCount(key) > GgufFile.MaxKeyBytes)
            throw new ArgumentException($"metadata key is longer than {GgufFile.MaxKeyBytes} bytes", nameof(key));
        if (!internalKey && key == GgufFile.AlignmentKey)
            throw new ArgumentException($"set '{GgufFile.AlignmentKey}' through the constructor's alignment parameter", nameof(key));
        if (!_keys.Add(key)) throw new ArgumentException($"metadata key '{key}' was already added", nameof(key));
        _metadata.Add((key, value));
    }

    // ---------------------------------------------------------------- tensors

    /// <summary>
    /// A float tensor stored as F32, F16, BF16 or any block type <see cref="Quant.Quantize"/> writes (rows must be whole
    /// blocks). <paramref name="data"/> is referenced until <see cref="Write"/>.
    /// </summary>
    public void AddTensor(string name, float[] data, long[] shape, TensorType type = TensorType.F32)
    {
        ArgumentNullException.ThrowIfNull(data);
        var t = NewTensor(name, FloatType(type), shape, floats: () => data, raw: null);
        if (data.LongLength != t.Elements)
            throw new ArgumentException($"tensor '{name}': shape [{string.Join(", ", shape)}] has {t.Elements} values, data has {data.LongLength}", nameof(data));
        Register(t);
    }

    /// <summary>
    /// A float tensor whose values are produced by <paramref name="produce"/> only when <see cref="Write"/> reaches it
    /// (and dropped right after), so that models larger than memory can be written one tensor at a time.
    /// </summary>
    public void AddTensor(string name, long[] shape, Func<float[]> produce, TensorType type = TensorType.F32)
    {
        ArgumentNullException.ThrowIfNull(produce);
        Register(NewTensor(name, FloatType(type), shape, produce, raw: null));
    }

    /// <summary>A tensor of any readable type, given as its stored bytes (e.g. hand-packed quantized blocks).</summary>
    public void AddTensorRaw(string name, TensorType type, long[] shape, byte[] bytes) =>
        AddTensorRaw(name, GgmlTypes.Of(type).Id, shape, bytes);

    /// <summary>A tensor of any GGML type id (also ones this tool cannot dequantize), given as its stored bytes.</summary>
    public void AddTensorRaw(string name, uint ggmlTypeId, long[] shape, byte[] bytes)
    {
        ArgumentNullException.ThrowIfNull(bytes);
        if (!GgmlTypes.TryGet(ggmlTypeId, out var type))
            throw new ArgumentException($"unknown GGML type id {ggmlTypeId}", nameof(ggmlTypeId));
        var t = NewTensor(name, type, shape, floats: null, raw: bytes);
        if (bytes.LongLength != t.ByteSize)
            throw new ArgumentException($"tensor '{name}': {t.Elements} values of {type.Name} take {t.ByteSize} bytes, got {bytes.LongLength}", nameof(bytes));
        Register(t);
    }

    private static GgmlTypeInfo FloatType(TensorType type) => type is TensorType.F32 or TensorType.F16 or TensorType.BF16 || Quantize.IsBlockType(type)
        ? GgmlTypes.Of(type)
        : throw new ArgumentException($"float tensors are written as F32, F16, BF16 or a block type ({GgmlTypes.ReadableList}), not {type}", nameof(type));

    private void Register(PendingTensor t)
    {
        _tensorNames.Add(t.Name);
        _tensors.Add(t);
    }

    /// <summary>Checks a tensor's name and shape; the caller registers it once its data checks out too.</summary>
    private PendingTensor NewTensor(string name, GgmlTypeInfo type, long[] shape, Func<float[]>? floats, byte[]? raw)
    {
        ArgumentNullException.ThrowIfNull(name);
        ArgumentNullException.ThrowIfNull(shape);
        if (name.Length == 0) throw new ArgumentException("tensor name cannot be empty", nameof(name));
        if (Encoding.UTF8.GetByteCount(name) > GgufFile.MaxTensorNameBytes)
            throw new ArgumentException($"tensor name '{name}' is longer than {GgufFile.MaxTensorNameBytes} bytes", nameof(name));
        if (_tensorNames.Contains(name)) throw new ArgumentException($"tensor '{name}' was already added", nameof(name));
        if (shape.Length is 0 or > GgufFile.MaxDims)
            throw new ArgumentException($"tensor '{name}' has {shape.Length} dimensions; GGUF allows 1 to {GgufFile.MaxDims}", nameof(shape));
        if (shape.Any(d => d < 0)) throw new ArgumentException($"tensor '{name}' has a negative dimension", nameof(shape));
        long elements = 1;
        if (shape.Contains(0)) elements = 0;
        else foreach (long d in shape)
        {
            if (elements > long.MaxValue / d) throw new ArgumentException($"tensor '{name}' has more than 2^63 values", nameof(shape));
            elements *= d;
        }
        var ne = shape.Reverse().ToArray();
        if (ne[0] % type.BlockElements != 0)
            throw new ArgumentException($"tensor '{name}': rows of {ne[0]} values are not whole {type.Name} blocks of {type.BlockElements}", nameof(shape));
        long blocks = elements / type.BlockElements;
        if (blocks > long.MaxValue / type.BlockBytes) throw new ArgumentException($"tensor '{name}' is larger than 2^63 bytes", nameof(shape));
        long byteSize = blocks * type.BlockBytes;
        return new PendingTensor(name, type, ne, elements, byteSize, floats, raw);
    }

    // ---------------------------------------------------------------- output

    /// <summary>Writes the file (to a temporary name first, then moved over <paramref name="path"/>).</summary>
    public void Write(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        string full = Path.GetFullPath(path);
        string temp = full + ".tmp-" + Environment.ProcessId + "-" + Guid.NewGuid().ToString("N")[..8];
        try
        {
            using (var stream = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 20))
                WriteTo(stream);
            File.Move(temp, full, overwrite: true);
        }
        finally
        {
            if (File.Exists(temp)) File.Delete(temp);
        }
    }

    private void WriteTo(Stream stream)
    {
        using var w = new BinaryWriter(stream, Encoding.UTF8, leaveOpen: true); // BinaryWriter is always little-endian

        w.Write("GGUF"u8);
        w.Write(Version);
        w.Write((ulong)_tensors.Count);
        w.Write((ulong)_metadata.Count);
        foreach (var (key, value) in _metadata)
        {
            WriteString(w, key);
            w.Write((uint)GgufValues.TypeOf(value)!.Value);
            WriteValue(w, value);
        }

        long offset = 0; // relative to the start of the data section
        var offsets = new long[_tensors.Count];
        for (int i = 0; i < _tensors.Count; i++)
        {
            var t = _tensors[i];
            offsets[i] = offset;
            WriteString(w, t.Name);
            w.Write((uint)t.Ne.Length);
            foreach (long d in t.Ne) w.Write((ulong)d);
            w.Write(t.Type.Id);
            w.Write((ulong)offset);
            offset = AlignUp(offset + t.ByteSize);
        }

        Pad(w, AlignUp(w.BaseStream.Position));
        long dataStart = w.BaseStream.Position;
        for (int i = 0; i < _tensors.Count; i++)
        {
            var t = _tensors[i];
            Pad(w, dataStart + offsets[i]);
            WriteTensorData(w, t);
            Pad(w, AlignUp(w.BaseStream.Position));
        }
        w.Flush();
    }

    private long AlignUp(long position) => (position + Alignment - 1) / Alignment * Alignment;

    private static void Pad(BinaryWriter w, long target)
    {
        long n = target - w.BaseStream.Position;
        if (n < 0) throw new InvalidOperationException("GGUF writer layout error: data overran its slot");
        for (; n > 0; n--) w.Write((byte)0);
    }

    private static void WriteTensorData(BinaryWriter w, PendingTensor t)
    {
        if (t.Raw is not null)
        {
            w.Write(t.Raw);
            return;
        }
        float[] data = t.Floats!();
        if (data is null || data.LongLength != t.Elements)
            throw new InvalidOperationException($"tensor '{t.Name}': the producer returned {data?.LongLength ?? 0} values, expected {t.Elements}");
        switch (t.Type.Type)
        {
            case TensorType.F32:
                for (long i = 0; i < data.LongLength; i += ConvertChunk)
                {
                    int n = (int)Math.Min(ConvertChunk, data.LongLength - i);
                    w.Write(MemoryMarshal.AsBytes(data.AsSpan((int)i, n)));
                }
                break;
            case TensorType.F16:
            case TensorType.BF16:
                {
                    var buffer = new byte[2 * ConvertChunk];
                    for (long i = 0; i < data.LongLength; i += ConvertChunk)
                    {
                        int n = (int)Math.Min(ConvertChunk, data.LongLength - i);
                        var src = data.AsSpan((int)i, n);
                        var dst = buffer.AsSpan(0, 2 * n);
                        if (t.Type.Type == TensorType.F16) Dequantize.FromF32ToF16(src, dst);
                        else Dequantize.FromF32ToBF16(src, dst);
                        w.Write(dst);
                    }
                    break;
                }
            case var block when Quantize.IsBlockType(block):
                {
                    // ConvertChunk is a multiple of every block size, and rows are whole blocks: chunks are quantized
                    // independently (in parallel, a group at a time), so the bytes do not depend on the thread count.
                    const int Group = 64;
                    long chunks = (data.LongLength + ConvertChunk - 1) / ConvertChunk;
                    int chunkBytes = (int)Dequantize.ByteSize(block, ConvertChunk);
                    var buffer = new byte[(long)Math.Min(Group, chunks) * chunkBytes];
                    for (long g0 = 0; g0 < chunks; g0 += Group)
                    {
                        int count = (int)Math.Min(Group, chunks - g0);
                        Parallel.For(0, count, c =>
                        {
                            long i = (g0 + c) * ConvertChunk;
                            int n = (int)Math.Min(ConvertChunk, data.LongLength - i);
                            Quantize.FromF32(block, data.AsSpan((int)i, n), buffer.AsSpan(c * chunkBytes, (int)Dequantize.ByteSize(block, n)));
                        });
                        long last = Math.Min(data.LongLength, (g0 + count) * ConvertChunk) - g0 * ConvertChunk;
                        w.Write(buffer.AsSpan(0, (int)Dequantize.ByteSize(block, last)));
                    }
                    break;
                }
            default:
                throw new InvalidOperationException($"tensor '{t.Name}': float data cannot be written as {t.Type.Name}");
        }
    }

    private static void WriteString(BinaryWriter w, string s)
    {
        var bytes = Encoding.UTF8.GetBytes(s);
        w.Write((ulong)bytes.Length);
        w.Write(bytes);
    }

    private static void WriteValue(BinaryWriter w, object value)
    {
        switch (value)
        {
            case byte v: w.Write(v); break;
            case sbyte v: w.Write(v); break;
            case ushort v: w.Write(v); break;
            case short v: w.Write(v); break;
            case uint v: w.Write(v); break;
            case int v: w.Write(v); break;
            case ulong v: w.Write(v); break;
            case long v: w.Write(v); break;
            case float v: w.Write(v); break;
            case double v: w.Write(v); break;
            case bool v: w.Write((byte)(v ? 1 : 0)); break;
            case string v: WriteString(w, v); break;
            case GgufArray a:
                w.Write((uint)a.ElementType);
                w.Write((ulong)a.Count);
                switch (a.Values)
                {
                    case string[] strings: foreach (var s in strings) WriteString(w, s); break;
                    case bool[] bools: foreach (var b in bools) w.Write((byte)(b ? 1 : 0)); break;
                    case GgufArray[] nested: foreach (var n in nested) WriteValue(w, n); break;
                    case byte[] x: w.Write(x); break;
                    case sbyte[] x: w.Write(MemoryMarshal.AsBytes(x.AsSpan())); break;
                    case ushort[] x: w.Write(MemoryMarshal.AsBytes(x.AsSpan())); break;
                    case short[] x: w.Write(MemoryMarshal.AsBytes(x.AsSpan())); break;
                    case uint[] x: w.Write(MemoryMarshal.AsBytes(x.AsSpan())); break;
                    case int[] x: w.Write(MemoryMarshal.AsBytes(x.AsSpan())); break;
                    case ulong[] x: w.Write(MemoryMarshal.AsBytes(x.AsSpan())); break;
                    case long[] x: w.Write(MemoryMarshal.AsBytes(x.AsSpan())); break;
                    case float[] x: w.Write(MemoryMarshal.AsBytes(x.AsSpan())); break;
                    case double[] x: w.Write(MemoryMarshal.AsBytes(x.AsSpan())); break;
                    default: throw new InvalidOperationException($"unexpected array element type {a.Values.GetType().Name}");
                }
                break;
            default:
                throw new InvalidOperationException($"unexpected metadata value type {value.GetType().Name}");
        }
    }
}
