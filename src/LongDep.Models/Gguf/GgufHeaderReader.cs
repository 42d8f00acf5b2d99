using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Text;
using Microsoft.Win32.SafeHandles;

namespace LongDep.Models.Gguf;

/// <summary>
/// A forward-only, bounds-checked little-endian reader over the header region of a GGUF file. Every read first
/// checks that the file still has the bytes it needs, and fails with a <see cref="ModelFormatException"/> naming
/// the field and the offset; nothing is allocated from a length that has not been checked against the file.
/// </summary>
internal sealed class GgufHeaderReader
{
    private readonly SafeFileHandle _file;
    private readonly string _path;
    private byte[] _buffer = new byte[1 << 16];
    private long _bufferStart;
    private int _bufferCount;

    public GgufHeaderReader(SafeFileHandle file, string path)
    {
        _file = file;
        _path = path;
        Length = RandomAccess.GetLength(file);
    }

    public long Length { get; }
    public long Position { get; private set; }
    public long Remaining => Length - Position;

    public ModelFormatException Fail(string problem) => new(_path, problem);

    private ModelFormatException Truncated(string what, long need) => Fail(
        $"truncated header at offset {Position}: {what} needs {need} bytes, but the file ends after {Remaining} more " +
        $"(file size {Length}); the file is incomplete or not a GGUF file");

    /// <summary>The next <paramref name="count"/> bytes, valid until the next read.</summary>
    public ReadOnlySpan<byte> Take(int count, string what)
    {
        if (count > Remaining) throw Truncated(what, count);
        if (Position < _bufferStart || Position + count > _bufferStart + _bufferCount) Fill(count, what);
        var span = _buffer.AsSpan((int)(Position - _bufferStart), count);
        Position += count;
        return span;
    }

    private void Fill(int atLeast, string what)
    {
        // atLeast <= Remaining was checked by the caller, so a larger buffer is bounded by the file's size.
        if (_buffer.Length < atLeast) _buffer = new byte[Math.Max(atLeast, 2 * _buffer.Length)];
        int want = (int)Math.Min(_buffer.Length, Remaining);
        int got = 0;
        while (got < want)
        {
            int n = RandomAccess.Read(_file, _buffer.AsSpan(got, want - got), Position + got);
            if (n == 0) break;
            got += n;
        }
        _bufferStart = Position;
        _bufferCount = got;
        if (got < atLeast) throw Fail($"the file ended at offset {Position + got} while reading {what} (it shrank while being read?)");
    }

    /// <summary>Fills <paramref name="destination"/> from the file, for arrays larger than the buffer.</summary>
    public void ReadInto(Span<byte> destination, string what)
    {
        if (destination.Length > Remaining) throw Truncated(what, destination.Length);
        while (destination.Length > 0)
        {
            int n = Math.Min(destination.Length, _buffer.Length);
            Take(n, what).CopyTo(destination);
            destination = destination.Slice(n);
        }
    }

    public byte U8(string what) => Take(1, what)[0];
    public ushort U16(string what) => BinaryPrimitives.ReadUInt16LittleEndian(Take(2, what));
    public uint U32(string what) => BinaryPrimitives.ReadUInt32LittleEndian(Take(4, what));
    public ulong U64(string what) => BinaryPrimitives.ReadUInt64LittleEndian(Take(8, what));

    /// <summary>A GGUF string: a uint64 byte length, then that many UTF-8 bytes (not NUL-terminated).</summary>
    public string String(string what, int maxBytes)
    {
        long at = Position;
        ulong length = U64($"the length of {what}");
        if (length > (ulong)Remaining)
            throw Fail($"{what} at offset {at}: string length {length} exceeds the remaining {Remaining} bytes of the file");
        if (length > (ulong)maxBytes)
            throw Fail($"{what} at offset {at}: string length {length} exceeds the limit of {maxBytes} bytes");
        return Encoding.UTF8.GetString(Take((int)length, what));
    }

    /// <summary>Reads <paramref name="values"/>.Length fixed-size little-endian elements in pieces.</summary>
    public void ReadArray<T>(Span<T> values, string what) where T : unmanaged
    {
        // Little-endian host assumed (every platform .NET runs on here); the bytes are copied as they are.
        int perPiece = Math.Max(1, (1 << 16) / Marshal.SizeOf<T>());
        while (values.Length > 0)
        {
            int n = Math.Min(values.Length, perPiece);
            ReadInto(MemoryMarshal.AsBytes(values.Slice(0, n)), what);
            values = values.Slice(n);
        }
    }
}
