using System.Buffers;
using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;
using LongDep.Models.Quant;

namespace LongDep.Models;

/// <summary>
/// A weight tensor kept in the element type of its file: float32 values in a managed array, or the stored bytes
/// (F32, F16, BF16 or GGML quantized blocks) of a model file (read by offset when needed) or an owned buffer. Row-major
/// [rows, cols] as the file stores it; quantized rows are whole blocks. Nothing is converted at load: the CPU
/// forward converts block-aligned ranges on the fly (<see cref="ReadF32"/>) or computes on the blocks, and
/// <see cref="ToFloat32"/> yields the whole tensor as float32 for a consumer that needs it (the CUDA upload).
/// Instances are immutable and thread-safe.
/// </summary>
public sealed class WeightMatrix
{
    private readonly float[]? _array;
    private readonly IByteStore? _store;
    private readonly long _byteOffset;

    private WeightMatrix(TensorType type, long elements, float[]? array, IByteStore? store, long byteOffset)
    {
        Type = type;
        ElementCount = elements;
        _array = array;
        _store = store;
        _byteOffset = byteOffset;
        Format = GgmlTypes.Of(type);
        ByteSize = Dequantize.ByteSize(type, elements);
    }

    /// <summary>The element type as stored.</summary>
    public TensorType Type { get; }

    /// <summary>The GGML block geometry of <see cref="Type"/>.</summary>
    public GgmlTypeInfo Format { get; }

    /// <summary>Number of values.</summary>
    public long ElementCount { get; }

    /// <summary>Bytes the values occupy in their stored type (what this tensor costs in host memory).</summary>
    public long ByteSize { get; }

    /// <summary>The managed float32 array when the values are held as one (tests, synthetic models); otherwise null.</summary>
    public float[]? Float32Array => _array;

    /// <summary>Whether the bytes stay in the model file (read through the page cache when needed, never held by this process).</summary>
    public bool IsInFile => _store is FileStore;

    /// <summary>Whether both are views of the same stored values (the same array, or the same bytes of the same file).</summary>
    public bool IsSameTensor(WeightMatrix? other) =>
        other is not null && (ReferenceEquals(this, other)
            || (_array is not null && ReferenceEquals(_array, other._array))
            || (_store is not null && ReferenceEquals(_store, other._store) && _byteOffset == other._byteOffset
                && Type == other.Type && ElementCount == other.ElementCount));

    /// <summary>Wraps a float32 array without copying it.</summary>
    public static WeightMatrix FromFloat32(float[] values)
    {
        ArgumentNullException.ThrowIfNull(values);
        return new WeightMatrix(TensorType.F32, values.LongLength, values, null, 0);
    }

    /// <summary>A float32 array is a float32 weight (no copy); null stays null.</summary>
    [return: System.Diagnostics.CodeAnalysis.NotNullIfNotNull(nameof(values))]
    public static implicit operator WeightMatrix?(float[]? values) => values is null ? null : FromFloat32(values);

    /// <summary>Wraps stored bytes of <paramref name="type"/> (owned by the new matrix; not copied).</summary>
    /// <exception cref="ArgumentException">The byte count does not match <paramref name="elements"/> values of the type.</exception>
    public static WeightMatrix FromBytes(TensorType type, long elements, byte[] bytes)
    {
        ArgumentNullException.ThrowIfNull(bytes);
        long need = Dequantize.ByteSize(type, elements);
        if (bytes.LongLength != need)
            throw new ArgumentException($"{elements} values of {type} take {need} bytes, {bytes.LongLength} were given", nameof(bytes));
        if (type == TensorType.F32) return FromFloat32(MemoryMarshal.Cast<byte, float>(bytes).ToArray());
        return new WeightMatrix(type, elements, null, new ArrayStore(bytes), 0);
    }

    /// <summary>
    /// Float32 values that are computed when read: <paramref name="fill"/>(first, destination) writes values
    /// [first, first + destination.Length). Nothing is held, so a model larger than memory (a random model written
    /// one tensor at a time) can be described; the values must be a pure function of their index.
    /// </summary>
    public static WeightMatrix FromGenerator(long elements, Action<long, Span<float>> fill)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(elements);
        ArgumentNullException.ThrowIfNull(fill);
        return new WeightMatrix(TensorType.F32, elements, null, new GeneratedStore(fill), 0);
    }

    /// <summary>A view of <paramref name="elements"/> values of <paramref name="type"/> at <paramref name="offset"/> of a model file.</summary>
    internal static WeightMatrix FromFile(TensorType type, long elements, ModelFileBytes file, long offset)
    {
        long bytes = Dequantize.ByteSize(type, elements);
        if (offset < 0 || offset + bytes > file.Length)
            throw new ArgumentOutOfRangeException(nameof(offset), $"{bytes} bytes at {offset} lie outside the file's {file.Length} bytes");
        return new WeightMatrix(type, elements, null, new FileStore(file), offset);
    }

    /// <summary>
    /// Values [<paramref name="first"/>, first + count) as float32 into <paramref name="destination"/> (its length is the
    /// count). Both ends must fall on block boundaries of the type (whole rows of a matrix always do).
    /// </summary>
    public void ReadF32(long first, Span<float> destination)
    {
        int count = destination.Length;
        CheckRange(first, count);
        if (count == 0) return;
        if (_array is not null)
        {
            _array.AsSpan(checked((int)first), count).CopyTo(destination);
            return;
        }
        long byteOffset = _byteOffset + first / Format.BlockElements * Format.BlockBytes;
        int byteCount = checked((int)(count / Format.BlockElements * (long)Format.BlockBytes));
        if (_store!.TryGetSpan(byteOffset, byteCount, out var direct))
        {
            Dequantize.ToF32(Type, direct, destination);
            return;
        }
        byte[] buffer = ArrayPool<byte>.Shared.Rent(byteCount);
        try
        {
            var bytes = buffer.AsSpan(0, byteCount);
            _store.Read(byteOffset, bytes);
            Dequantize.ToF32(Type, bytes, destination);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <summary>
    /// The stored bytes of values [<paramref name="first"/>, first + count) (block-aligned) copied into
    /// <paramref name="destination"/>, which must be exactly their byte size.
    /// </summary>
    public void ReadBytes(long first, long count, Span<byte> destination)
    {
        CheckRange(first, count);
        long byteOffset = first / Format.BlockElements * Format.BlockBytes;
        long byteCount = count / Format.BlockElements * Format.BlockBytes;
        if (destination.Length != byteCount)
            throw new ArgumentException($"{count} values of {Type} are {byteCount} bytes; the destination holds {destination.Length}", nameof(destination));
        if (_array is not null)
        {
            MemoryMarshal.AsBytes(_array.AsSpan(checked((int)first), checked((int)count))).CopyTo(destination);
            return;
        }
        _store!.Read(_byteOffset + byteOffset, destination);
    }

    /// <summary>
    /// The whole tensor as float32 (a new array; the managed array itself when the values are already one). Costs
    /// 4 bytes a value: meant for consumers that upload or rewrite weights, not for the CPU forward.
    /// </summary>
    public float[] ToFloat32()
    {
        if (_array is not null) return _array;
        if (ElementCount > Array.MaxLength)
            throw new InvalidOperationException($"a tensor of {ElementCount} values does not fit one float32 array");
        var result = GC.AllocateUninitializedArray<float>((int)ElementCount);
        const int Chunk = 1 << 18; // a multiple of every block size
        int chunks = (int)((ElementCount + Chunk - 1) / Chunk);
        Parallel.For(0, chunks, c =>
        {
            long first = (long)c * Chunk;
            int count = (int)Math.Min(Chunk, ElementCount - first);
            ReadF32(first, result.AsSpan((int)first, count));
        });
        return result;
    }

    /// <summary>Rows [<paramref name="row0"/>, row0 + rows) of a matrix with <paramref name="cols"/> values a row, without copying.</summary>
    public WeightMatrix SliceRows(int cols, long row0, long rows)
    {
        long first = row0 * cols, count = rows * cols;
        CheckRange(first, count);
        if (cols % Format.BlockElements != 0)
            throw new ArgumentException($"rows of {cols} values are not whole {Type} blocks of {Format.BlockElements}", nameof(cols));
        if (_array is not null)
            return FromFloat32(_array.AsSpan(checked((int)first), checked((int)count)).ToArray());
        return new WeightMatrix(Type, count, null, _store, _byteOffset + first / Format.BlockElements * Format.BlockBytes);
    }

    /// <summary>A copy in the same type whose row r is this matrix's row <paramref name="sourceRow"/>(r).</summary>
    public WeightMatrix PermuteRows(int cols, Func<int, int> sourceRow)
    {
        ArgumentNullException.ThrowIfNull(sourceRow);
        if (cols <= 0 || ElementCount % cols != 0)
            throw new ArgumentException($"{ElementCount} values are not whole rows of {cols}", nameof(cols));
        int rows = checked((int)(ElementCount / cols));
        if (_array is not null)
        {
            var result = new float[_array.Length];
            for (int r = 0; r < rows; r++) _array.AsSpan(sourceRow(r) * cols, cols).CopyTo(result.AsSpan(r * cols, cols));
            return FromFloat32(result);
        }
        int rowBytes = checked((int)(cols / Format.BlockElements * (long)Format.BlockBytes));
        var bytes = new byte[checked((long)rowBytes * rows)];
        for (int r = 0; r < rows; r++)
            ReadBytes((long)sourceRow(r) * cols, cols, bytes.AsSpan(r * rowBytes, rowBytes));
        return new WeightMatrix(Type, ElementCount, null, new ArrayStore(bytes), 0);
    }

    /// <inheritdoc />
    public override string ToString() => $"{Type} × {ElementCount}{(IsInFile ? " (in file)" : "")}";

    private void CheckRange(long first, long count)
    {
        if (first < 0 || count < 0 || first + count > ElementCount)
            throw new ArgumentOutOfRangeException(nameof(first), $"values [{first}, {first + count}) lie outside the tensor's {ElementCount}");
        int block = Format.BlockElements;
        if (first % block != 0 || count % block != 0)
            throw new ArgumentException($"values [{first}, {first + count}) do not start and end on {Type} block boundaries ({block} values)");
    }

    /// <summary>Where stored bytes live.</summary>
    private interface IByteStore
    {
        void Read(long offset, Span<byte> destination);
        bool TryGetSpan(long offset, int count, out ReadOnlySpan<byte> span);
    }

    private sealed class ArrayStore(byte[] bytes) : IByteStore
    {
        public void Read(long offset, Span<byte> destination) => bytes.AsSpan(checked((int)offset), destination.Length).CopyTo(destination);

        public bool TryGetSpan(long offset, int count, out ReadOnlySpan<byte> span)
        {
            span = bytes.AsSpan(checked((int)offset), count);
            return true;
        }
    }

    private sealed class GeneratedStore(Action<long, Span<float>> fill) : IByteStore
    {
        public void Read(long offset, Span<byte> destination) => fill(offset / sizeof(float), MemoryMarshal.Cast<byte, float>(destination));

        public bool TryGetSpan(long offset, int count, out ReadOnlySpan<byte> span)
        {
            span = default;
            return false;
        }
    }

    private sealed class FileStore(ModelFileBytes file) : IByteStore
    {
        public void Read(long offset, Span<byte> destination) => file.Read(offset, destination);

        public bool TryGetSpan(long offset, int count, out ReadOnlySpan<byte> span)
        {
            span = default;
            return false;
        }
    }
}

/// <summary>
/// A model file whose tensor bytes are read by offset when needed (positional reads, thread-safe): the bytes come from
/// the operating system's page cache, shared with every other process reading the file, and are never mapped into or
/// copied whole into this process (no per-process page faults on first use; resident memory holds only the blocks being
/// converted). The file handle is released by its finalizer when no weight refers to it any more, so it outlives the
/// reader that opened it.
/// </summary>
internal sealed class ModelFileBytes
{
    private readonly SafeFileHandle _handle;

    private ModelFileBytes(SafeFileHandle handle, long length)
    {
        _handle = handle;
        Length = length;
    }

    /// <summary>Bytes in the file.</summary>
    public long Length { get; }

    /// <summary>Opens <paramref name="path"/> for reading.</summary>
    /// <exception cref="ModelFormatException">The file cannot be opened or is empty.</exception>
    public static ModelFileBytes Open(string path)
    {
        SafeFileHandle? handle = null;
        try
        {
            handle = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.Read, FileOptions.RandomAccess);
            long length = RandomAccess.GetLength(handle);
            if (length == 0) throw new ModelFormatException(path, "the file is empty; nothing to read");
            return new ModelFileBytes(handle, length);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            handle?.Dispose();
            throw new ModelFormatException(path, $"cannot open the file for reading: {e.Message}", e);
        }
    }

    /// <summary>Reads <paramref name="destination"/>.Length bytes at file offset <paramref name="offset"/>.</summary>
    /// <exception cref="IOException">The file ended early (it was truncated after it was opened).</exception>
    public void Read(long offset, Span<byte> destination)
    {
        if (offset < 0 || offset + destination.Length > Length)
            throw new ArgumentOutOfRangeException(nameof(offset), $"{destination.Length} bytes at {offset} lie outside the file's {Length} bytes");
        while (!destination.IsEmpty)
        {
            int read = RandomAccess.Read(_handle, destination, offset);
            if (read <= 0)
                throw new IOException($"the model file ended at {offset} while {destination.Length} more bytes were expected; was it changed while in use?");
            destination = destination[read..];
            offset += read;
        }
    }
}
