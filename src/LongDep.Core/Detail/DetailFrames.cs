using System.Buffers.Binary;
using LongDep.Core.Corpus;
using LongDep.Core.Records;

namespace LongDep.Core.Detail;

/// <summary>What the frame scan found at a position.</summary>
internal enum FrameScan
{
    /// <summary>A frame complete by its length (its CRC is checked when the body is read).</summary>
    Frame,
    /// <summary>The end of the file, exactly after the last frame.</summary>
    End,
    /// <summary>An incomplete final frame: a run stopped mid-write; everything from here on is to be dropped.</summary>
    Torn,
}

/// <summary>Reads the header and frames of a detail file (<see cref="DetailFormat"/>), checking every field before use.</summary>
internal static class DetailFrames
{
    /// <summary>Writes the file header: version 2, with the run's settings when known (see <see cref="DetailFormat"/>).</summary>
    public static void WriteHeader(Stream s, ScoreHeader? settings)
    {
        byte[] text = settings?.Format() ?? [];
        var h = new byte[DetailFormat.HeaderBytes + 4 + text.Length + 4];
        DetailFormat.Magic.CopyTo(h);
        BinaryPrimitives.WriteUInt16LittleEndian(h.AsSpan(4), DetailFormat.Version);
        BinaryPrimitives.WriteUInt16LittleEndian(h.AsSpan(6), 0);
        BinaryPrimitives.WriteUInt32LittleEndian(h.AsSpan(8), (uint)text.Length);
        text.CopyTo(h, 12);
        BinaryPrimitives.WriteUInt32LittleEndian(h.AsSpan(12 + text.Length), Crc32.Compute(text));
        s.Write(h); // one write: a crash leaves a prefix at worst
    }

    /// <summary>
    /// Checks the header at the start of <paramref name="s"/> (length ≥ 8), reads the settings a version-2 header
    /// carries, and leaves the stream at the first frame. <paramref name="torn"/> is set (and null returned) when the
    /// file ends inside its header: a run stopped while writing it.
    /// </summary>
    public static ScoreHeader? CheckHeader(Stream s, string path, out bool torn)
    {
        torn = false;
        Span<byte> h = stackalloc byte[DetailFormat.HeaderBytes];
        s.Position = 0;
        s.ReadExactly(h);
        if (!h[..4].SequenceEqual(DetailFormat.Magic))
            throw new CorpusFormatException($"'{path}' is not a LongDep detail file: it starts with {Hex(h[..4])}, expected \"LDDT\". Give --detail a new path (or the file a previous 'longdep score --detail' wrote).");
        ushort version = BinaryPrimitives.ReadUInt16LittleEndian(h[4..]);
        if (version == 1) return null;
        if (version != DetailFormat.Version)
            throw new CorpusFormatException($"'{path}' is a detail file of version {version}; this longdep reads versions 1 and {DetailFormat.Version}. Use the longdep that wrote it, or rescore with --overwrite.");
        long length = s.Length;
        Span<byte> n = stackalloc byte[4];
        if (length < DetailFormat.HeaderBytes + 4) { torn = true; return null; }
        s.ReadExactly(n);
        uint textLength = BinaryPrimitives.ReadUInt32LittleEndian(n);
        if (textLength > DetailFormat.MaxSettingsBytes)
            throw Corrupt(path, DetailFormat.HeaderBytes, $"the settings take {textLength} bytes, over {DetailFormat.MaxSettingsBytes}");
        if (length < DetailFormat.HeaderBytes + 8 + textLength) { torn = true; return null; }
        var text = new byte[textLength];
        s.ReadExactly(text);
        s.ReadExactly(n);
        if (BinaryPrimitives.ReadUInt32LittleEndian(n) != Crc32.Compute(text))
            throw Corrupt(path, DetailFormat.HeaderBytes, "the settings fail their check");
        return textLength == 0 ? null : ScoreHeader.Parse(text, path);
    }

    /// <summary>True when the first <paramref name="length"/> bytes (length &lt; 8) are the start of a detail header: a header cut by a crash.</summary>
    public static bool IsHeaderPrefix(Stream s, int length)
    {
        Span<byte> h = stackalloc byte[DetailFormat.HeaderBytes];
        Span<byte> expected = stackalloc byte[DetailFormat.HeaderBytes];
        DetailFormat.Magic.CopyTo(expected);
        BinaryPrimitives.WriteUInt16LittleEndian(expected[4..], DetailFormat.Version);
        BinaryPrimitives.WriteUInt16LittleEndian(expected[6..], 0);
        // (version 1 files are read, never written)
        s.Position = 0;
        s.ReadExactly(h[..length]);
        return h[..length].SequenceEqual(expected[..length]);
    }

    /// <summary>
    /// Reads the fixed part of the frame at <paramref name="s"/>'s position and moves past the frame. Throws
    /// <see cref="CorpusFormatException"/> for a damaged frame that is not the file's last.
    /// </summary>
    public static FrameScan Next(Stream s, long fileLength, string path, out DetailEntryHeader header)
    {
        header = default;
        long pos = s.Position;
        long remaining = fileLength - pos;
        if (remaining <= 0) return FrameScan.End;
        if (remaining < DetailFormat.FrameOverheadBytes + DetailFormat.BodyFixedBytes) return FrameScan.Torn;

        Span<byte> head = stackalloc byte[4 + DetailFormat.BodyFixedBytes];
        s.ReadExactly(head);
        uint bodyLength = BinaryPrimitives.ReadUInt32LittleEndian(head);
        if (bodyLength < DetailFormat.BodyFixedBytes || bodyLength > DetailFormat.MaxBodyBytes)
        {
            if (RestIsZero(s, pos, fileLength)) return FrameScan.Torn;
            throw Corrupt(path, pos, $"the frame length is {bodyLength}; expected {DetailFormat.BodyFixedBytes}..{DetailFormat.MaxBodyBytes}");
        }
        long frameEnd = pos + DetailFormat.FrameOverheadBytes + bodyLength;
        // A frame cut by a crash is a prefix of a good frame: its fixed fields still parse. Fields that do not parse
        // mean damage, unless this is the last frame (its bytes may not all have reached the disk).
        if (!TryParseFixed(head[4..], (int)bodyLength, pos, out header, out string? problem))
        {
            if (frameEnd >= fileLength || RestIsZero(s, pos, fileLength)) return FrameScan.Torn;
            throw Corrupt(path, pos, problem!);
        }
        if (frameEnd > fileLength) return FrameScan.Torn;
        s.Position = frameEnd;
        return FrameScan.Frame;
    }

    /// <summary>Reads the body of <paramref name="h"/> and checks its CRC.</summary>
    public static byte[] ReadBody(Stream s, DetailEntryHeader h, string path)
    {
        var body = new byte[h.BodyBytes]; // BodyBytes was checked against MaxBodyBytes and the file length by Next
        Span<byte> crc = stackalloc byte[4];
        s.Position = h.Offset + 4;
        s.ReadExactly(body);
        s.ReadExactly(crc);
        uint stored = BinaryPrimitives.ReadUInt32LittleEndian(crc);
        uint actual = Crc32.Compute(body);
        if (stored != actual)
            throw Corrupt(path, h.Offset, $"the entry of record {h.Index} fails its check (CRC {actual:X8}, stored {stored:X8})");
        return body;
    }

    /// <summary>True when the body of <paramref name="h"/> passes its CRC.</summary>
    public static bool BodyIsIntact(Stream s, DetailEntryHeader h, string path)
    {
        try
        {
            ReadBody(s, h, path);
            return true;
        }
        catch (CorpusFormatException)
        {
            return false;
        }
    }

    public static CorpusFormatException Corrupt(string path, long offset, string what) =>
        new($"detail file '{path}' is damaged at byte {offset}: {what}. Rescore with --overwrite to rebuild it, or report without --detail.");

    private static bool TryParseFixed(ReadOnlySpan<byte> body, int bodyLength, long offset, out DetailEntryHeader header, out string? problem)
    {
        header = default;
        long index = BinaryPrimitives.ReadInt64LittleEndian(body);
        byte method = body[8], status = body[9];
        ushort reserved = BinaryPrimitives.ReadUInt16LittleEndian(body[10..]);
        double score = BinaryPrimitives.ReadDoubleLittleEndian(body[12..]);
        uint raw = BinaryPrimitives.ReadUInt32LittleEndian(body[20..]);
        problem = null;
        string? name = DetailFormat.MethodName(method);
        if (index < 0) problem = $"the record index is {index}";
        else if (name is null) problem = $"the method byte is {method}; expected {DetailFormat.MethodLadm} (ladm) or {DetailFormat.MethodProLong} (prolong)";
        else if (status > (byte)ScoreStatus.NumericError) problem = $"the status byte is {status}; expected 0..3";
        else if (reserved != 0) problem = $"the reserved field is {reserved}; expected 0";
        else if (raw > DetailFormat.MaxPayloadBytes) problem = $"the payload size is {raw} bytes, over the {DetailFormat.MaxPayloadBytes}-byte limit";
        else if ((raw == 0) != (bodyLength == DetailFormat.BodyFixedBytes)) problem = $"the payload size {raw} does not match the frame length {bodyLength}";
        if (problem is not null) return false;

        var st = (ScoreStatus)status;
        header = new DetailEntryHeader(index, name!, st, st == ScoreStatus.Ok && double.IsFinite(score) ? score : null, offset, bodyLength, (int)raw);
        return true;
    }

    private static bool RestIsZero(Stream s, long from, long fileLength)
    {
        s.Position = from;
        var buffer = new byte[1 << 16];
        long left = fileLength - from;
        while (left > 0)
        {
            int n = s.Read(buffer, 0, (int)Math.Min(buffer.Length, left));
            if (n <= 0) break;
            if (buffer.AsSpan(0, n).ContainsAnyExcept((byte)0)) return false;
            left -= n;
        }
        return true;
    }

    private static string Hex(ReadOnlySpan<byte> bytes) => Convert.ToHexString(bytes);
}
