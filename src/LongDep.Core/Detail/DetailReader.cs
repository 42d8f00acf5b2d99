using LongDep.Core.Corpus;

namespace LongDep.Core.Detail;

/// <summary>
/// Reads a detail file (<see cref="DetailFormat"/>). <see cref="Entries"/> lists the frames without decompressing them;
/// <see cref="Read"/> decodes one (checking its CRC); <see cref="Find"/> returns the last entry of an index, the one a
/// resumed run wrote last. A final frame cut by a crash is skipped (see <see cref="TornTailBytes"/>); damage anywhere
/// else is a <see cref="CorpusFormatException"/> that names the byte offset. Not thread-safe.
/// </summary>
public sealed class DetailReader : IDisposable
{
    private readonly FileStream _file;
    private Dictionary<long, DetailEntryHeader>? _latest;

    private readonly long _dataStart;

    private DetailReader(string path, FileStream file, ScoreHeader? settings, long dataStart)
    {
        Path = path;
        _file = file;
        Settings = settings;
        _dataStart = dataStart;
    }

    /// <summary>The settings of the run that wrote the file (null for files written before settings were kept).</summary>
    public ScoreHeader? Settings { get; }

    /// <summary>The file read.</summary>
    public string Path { get; }

    /// <summary>Bytes after the last complete frame (a run stopped mid-write), as of the last scan.</summary>
    public long TornTailBytes { get; private set; }

    /// <summary>Opens <paramref name="path"/> and checks its header.</summary>
    /// <exception cref="FileNotFoundException">No such file.</exception>
    /// <exception cref="CorpusFormatException">Not a detail file, or another version.</exception>
    public static DetailReader Open(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        if (!File.Exists(path))
            throw new FileNotFoundException($"detail file '{path}' does not exist; 'longdep score --detail {path}' writes it.", path);
        var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete, 1 << 16);
        try
        {
            if (file.Length < DetailFormat.HeaderBytes)
                throw new CorpusFormatException($"'{path}' is not a LongDep detail file: it has {file.Length} bytes, fewer than the {DetailFormat.HeaderBytes}-byte header.");
            ScoreHeader? settings = DetailFrames.CheckHeader(file, path, out bool torn);
            if (torn)
                throw new CorpusFormatException($"'{path}' ends inside its header (a run stopped as it started); rescore with --detail to rebuild it.");
            return new DetailReader(path, file, settings, file.Position);
        }
        catch
        {
            file.Dispose();
            throw;
        }
    }

    /// <summary>The entries in file order (a record rescored after a resume appears more than once).</summary>
    public IEnumerable<DetailEntryHeader> Entries()
    {
        long length = _file.Length;
        long pos = _dataStart;
        while (true)
        {
            _file.Position = pos;
            FrameScan scan = DetailFrames.Next(_file, length, Path, out DetailEntryHeader h);
            if (scan != FrameScan.Frame)
            {
                TornTailBytes = scan == FrameScan.Torn ? length - pos : 0;
                yield break;
            }
            pos = _file.Position;
            yield return h;
        }
    }

    /// <summary>The last entry of each index.</summary>
    public IReadOnlyDictionary<long, DetailEntryHeader> Latest()
    {
        if (_latest is null)
        {
            var map = new Dictionary<long, DetailEntryHeader>();
            foreach (DetailEntryHeader h in Entries()) map[h.Index] = h;
            _latest = map;
        }
        return _latest;
    }

    /// <summary>The last entry written for <paramref name="index"/>, decoded; null when the file has none.</summary>
    public DetailEntry? Find(long index) =>
        Latest().TryGetValue(index, out DetailEntryHeader h) ? Read(h) : null;

    /// <summary>Decodes the entry <paramref name="header"/> (from <see cref="Entries"/> of this reader).</summary>
    /// <exception cref="CorpusFormatException">The frame fails its CRC, or its payload is malformed.</exception>
    public DetailEntry Read(DetailEntryHeader header)
    {
        if (header.Offset < _dataStart || header.BodyBytes < DetailFormat.BodyFixedBytes ||
            header.Offset + DetailFormat.FrameOverheadBytes + header.BodyBytes > _file.Length)
            throw new ArgumentException($"the header (offset {header.Offset}, {header.BodyBytes} bytes) is not a frame of '{Path}'", nameof(header));
        if (!header.HasPayload) return new DetailEntry(header, null, null);

        byte[] body = DetailFrames.ReadBody(_file, header, Path);
        ReadOnlySpan<byte> compressed = body.AsSpan(DetailFormat.BodyFixedBytes);
        ulong declared = ZstdSharp.Decompressor.GetDecompressedSize(compressed);
        if (declared != (ulong)header.PayloadBytes)
            throw DetailFrames.Corrupt(Path, header.Offset, $"the payload of record {header.Index} declares {header.PayloadBytes} bytes but its zstd frame holds {declared}");
        var payload = new byte[header.PayloadBytes]; // checked against MaxPayloadBytes when the header was read
        try
        {
            using var decompressor = new ZstdSharp.Decompressor();
            int n = decompressor.Unwrap(compressed, payload);
            if (n != payload.Length)
                throw new FormatException($"the zstd frame gave {n} bytes, expected {payload.Length}");
            return header.Method == "prolong"
                ? new DetailEntry(header, DetailPayload.ReadProLong(payload), null)
                : new DetailEntry(header, null, DetailPayload.ReadLadm(payload));
        }
        catch (Exception e) when (e is FormatException or ZstdSharp.ZstdException)
        {
            throw DetailFrames.Corrupt(Path, header.Offset, $"the {header.Method} payload of record {header.Index} is malformed ({e.Message})");
        }
    }

    public void Dispose() => _file.Dispose();
}
