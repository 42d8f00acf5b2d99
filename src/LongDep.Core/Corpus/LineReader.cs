using System.Buffers;

namespace LongDep.Core.Corpus;

/// <summary>One line read by <see cref="LineReader"/>: its bytes, or how long it was when it exceeded the cap.</summary>
/// <param name="Bytes">The line without '\n' or a trailing '\r'; empty when <see cref="TooLongBytes"/> is set.</param>
/// <param name="TooLongBytes">When the line exceeded the cap: its length in bytes (without terminator); else null.</param>
/// <param name="LineNumber">1-based physical line number in the stream.</param>
/// <param name="EndOffset">Offset in the stream just past the line's '\n' (or its last byte, for a final line without one).</param>
/// <param name="Terminated">False for a final line that has no '\n' (possibly cut short).</param>
internal readonly record struct ReadLine(byte[] Bytes, long? TooLongBytes, long LineNumber, long EndOffset = 0, bool Terminated = true);

/// <summary>
/// Reads '\n'-terminated lines from a stream with a cap on line length: an over-long line is skipped (counted,
/// never stored) and reported, so memory never grows beyond the cap whatever the input holds. A UTF-8 BOM at
/// the start is dropped; a final line without '\n' is still a line. Empty and whitespace-only lines are skipped.
/// </summary>
internal sealed class LineReader
{
    private const int ChunkSize = 1 << 16;

    private readonly Stream _stream;
    private readonly int _maxLineBytes;

    public LineReader(Stream stream, int maxLineBytes)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(maxLineBytes, 1);
        _stream = stream;
        _maxLineBytes = maxLineBytes;
    }

    public IEnumerable<ReadLine> ReadLines()
    {
        byte[] chunk = ArrayPool<byte>.Shared.Rent(ChunkSize);
        var line = new ArrayBufferWriter<byte>(1024);
        long lineLength = 0; // bytes of the current line seen so far (stored or not)
        byte lastByte = 0;   // its last byte, to trim a '\r' even when the line was not stored whole
        long lineNumber = 0;
        long consumed = 0; // stream bytes before the current chunk
        bool first = true;
        try
        {
            while (true)
            {
                int read = _stream.Read(chunk, 0, ChunkSize);
                if (read == 0) break;
                long chunkStart = consumed;
                consumed += read;
                int pos = 0;
                if (first)
                {
                    first = false;
                    if (read >= 3 && chunk[0] == 0xEF && chunk[1] == 0xBB && chunk[2] == 0xBF) pos = 3;
                }
                while (pos < read)
                {
                    int newline = Array.IndexOf(chunk, (byte)'\n', pos, read - pos);
                    int end = newline < 0 ? read : newline;
                    Append(line, chunk.AsSpan(pos, end - pos), ref lineLength);
                    if (end > pos) lastByte = chunk[end - 1];
                    if (newline < 0) break;
                    pos = newline + 1;
                    lineNumber++;
                    if (Complete(line, lineLength, lastByte, lineNumber) is { } done) yield return done with { EndOffset = chunkStart + pos };
                    line.ResetWrittenCount();
                    lineLength = 0;
                    lastByte = 0;
                }
            }
            if (lineLength > 0)
            {
                lineNumber++;
                if (Complete(line, lineLength, lastByte, lineNumber) is { } done) yield return done with { EndOffset = consumed, Terminated = false };
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(chunk);
        }
    }

    private void Append(ArrayBufferWriter<byte> line, ReadOnlySpan<byte> bytes, ref long lineLength)
    {
        long before = lineLength;
        lineLength += bytes.Length;
        // Keep one byte past the cap so a line of exactly the cap plus its '\r' is still stored whole.
        long room = Math.Max(0, (long)_maxLineBytes + 1 - before);
        if (room > 0) line.Write(bytes[..(int)Math.Min(room, bytes.Length)]);
    }

    private ReadLine? Complete(ArrayBufferWriter<byte> line, long lineLength, byte lastByte, long lineNumber)
    {
        ReadOnlySpan<byte> stored = line.WrittenSpan;
        long length = lineLength;
        if (length > 0 && lastByte == (byte)'\r')
        {
            length--;
            if (stored.Length > length) stored = stored[..(int)length];
        }
        if (length > _maxLineBytes)
            return new ReadLine([], length, lineNumber);
        if (IsBlank(stored)) return null;
        return new ReadLine(stored.ToArray(), null, lineNumber);
    }

    private static bool IsBlank(ReadOnlySpan<byte> bytes)
    {
        foreach (byte b in bytes)
        {
            if (b is not ((byte)' ' or (byte)'\t' or (byte)'\r')) return false;
        }
        return true;
    }
}
