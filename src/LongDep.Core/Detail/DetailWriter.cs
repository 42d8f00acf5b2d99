using System.Buffers;
using System.Buffers.Binary;
using LongDep.Core.Corpus;
using LongDep.Core.Pipeline;
using LongDep.Core.Records;

namespace LongDep.Core.Detail;

/// <summary>
/// Writes the <c>--detail</c> side file (<see cref="DetailFormat"/>): one zstd-compressed frame per written record, in
/// output order. Opening an existing file appends (a resumed run): a final frame cut by a crash (short, or failing its
/// CRC) is removed first. A record rescored after a resume appears twice; readers take the last entry of an index.
/// The file starts with the settings of the run that writes it; appending under other settings is refused, so a file
/// never mixes entries of two settings. The file is locked (flock) while open, as the score file is.
/// Not thread-safe (the pipeline writes from one thread).
/// </summary>
public sealed class DetailWriter : IDetailSink
{
    private readonly FileStream _file;
    private readonly ZstdSharp.Compressor _compressor;
    private readonly ArrayBufferWriter<byte> _payload = new(1 << 16);
    private readonly int _chunkCountN;
    private readonly double _threshold;
    private readonly int _flushEvery;
    private readonly ScoreHeader? _header;
    private readonly HashSet<long> _held = [];
    private bool _disposed;

    /// <summary>Opens <paramref name="path"/> for the run described by <paramref name="settings"/>.</summary>
    /// <param name="path">The detail file.</param>
    /// <param name="settings">The run's settings (ProLong's N = W / l and δ are stored with each entry).</param>
    /// <param name="append">Keep the entries already in the file (resume); false starts a new file.</param>
    /// <param name="flushEvery">Hand the written frames to the OS every this many entries. The default, 1, keeps the file
    /// at least as far along as the score file (the pipeline writes an entry before its score line), so a killed run
    /// loses no entry that its score file kept.</param>
    /// <param name="compressionLevel">zstd level.</param>
    /// <exception cref="Corpus.CorpusFormatException">The existing file is not a detail file, or is damaged before its last frame.</exception>
    /// <param name="header">The settings of the run (written into a new file, compared with an existing file's).</param>
    public DetailWriter(string path, ScoreSettings settings, bool append = true, int flushEvery = 1, int compressionLevel = 3, ScoreHeader? header = null)
    {
        ArgumentNullException.ThrowIfNull(path);
        ArgumentNullException.ThrowIfNull(settings);
        ArgumentOutOfRangeException.ThrowIfLessThan(flushEvery, 1);
        Path = path;
        _chunkCountN = settings.Window / settings.Chunk;
        _threshold = settings.Threshold;
        _flushEvery = flushEvery;
        _header = header;
        _file = OutputFiles.OpenLocked(path, "--detail");
        try
        {
            if (!append) _file.SetLength(0);
            Prepare();
            _compressor = new ZstdSharp.Compressor(compressionLevel);
        }
        catch
        {
            _file.Dispose();
            throw;
        }
    }

    /// <summary>The file written.</summary>
    public string Path { get; }

    /// <summary>Complete entries the file held when it was opened (appending).</summary>
    public long EntriesOnOpen { get; private set; }

    /// <summary>Bytes of a damaged final frame (or header) removed when the file was opened.</summary>
    public long RepairedBytes { get; private set; }

    /// <summary>Entries written by this writer.</summary>
    public long Written { get; private set; }

    /// <summary>True when the file holds an entry of record <paramref name="index"/> (from when it was opened, or written since).</summary>
    public bool Holds(long index) => _held.Contains(index);

    /// <summary>Appends the entry of <paramref name="outcome"/>: its status and score, and its measurements when the method ran.</summary>
    public void Write(ScoreOutcome outcome)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        ArgumentNullException.ThrowIfNull(outcome);
        ScoreRecord record = outcome.Record;
        byte method = DetailFormat.MethodCode(record.Method);

        _payload.ResetWrittenCount();
        if (method == DetailFormat.MethodProLong && outcome.ProLong is { } result)
            DetailPayload.WriteProLong(_payload, result, outcome.ProLongMeasurement, _chunkCountN, _threshold);
        else if (method == DetailFormat.MethodLadm && outcome.Ladm is { } measurement)
            DetailPayload.WriteLadm(_payload, measurement, record.Layers);
        int raw = _payload.WrittenCount;
        if (raw > DetailFormat.MaxPayloadBytes)
            throw new InvalidOperationException($"the measurements of record {record.Index} take {raw} bytes, over the detail format's {DetailFormat.MaxPayloadBytes}-byte limit; run without --detail or with a smaller --window");

        int bound = raw == 0 ? 0 : ZstdSharp.Compressor.GetCompressBound(raw);
        int frameMax = DetailFormat.FrameOverheadBytes + DetailFormat.BodyFixedBytes + bound;
        byte[] frame = ArrayPool<byte>.Shared.Rent(frameMax);
        try
        {
            Span<byte> body = frame.AsSpan(4);
            int compressed = raw == 0 ? 0 : _compressor.Wrap(_payload.WrittenSpan, body[DetailFormat.BodyFixedBytes..]);
            int bodyLength = DetailFormat.BodyFixedBytes + compressed;
            if (bodyLength > DetailFormat.MaxBodyBytes)
                throw new InvalidOperationException($"the measurements of record {record.Index} compress to {bodyLength} bytes, over the detail format's {DetailFormat.MaxBodyBytes}-byte frame limit");
            BinaryPrimitives.WriteUInt32LittleEndian(frame, (uint)bodyLength);
            BinaryPrimitives.WriteInt64LittleEndian(body, record.Index);
            body[8] = method;
            body[9] = (byte)record.Status;
            BinaryPrimitives.WriteUInt16LittleEndian(body[10..], 0);
            BinaryPrimitives.WriteDoubleLittleEndian(body[12..], record.Status == ScoreStatus.Ok && record.Score is { } s ? s : double.NaN);
            BinaryPrimitives.WriteUInt32LittleEndian(body[20..], (uint)raw);
            BinaryPrimitives.WriteUInt32LittleEndian(body[bodyLength..], Crc32.Compute(body[..bodyLength]));
            _file.Write(frame, 0, DetailFormat.FrameOverheadBytes + bodyLength); // one write: a crash leaves a prefix at worst
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(frame);
        }
        Written++;
        _held.Add(record.Index);
        if (Written % _flushEvery == 0) _file.Flush();
    }

    /// <summary>Hands everything written to the OS.</summary>
    public void Flush()
    {
        if (!_disposed) _file.Flush();
    }

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        try
        {
            _file.Flush();
        }
        finally
        {
            _file.Dispose();
            _compressor.Dispose();
        }
    }

    /// <summary>Checks an existing file, cuts a torn tail, and positions at the end (or writes the header of a new file).</summary>
    private void Prepare()
    {
        long length = _file.Length;
        bool torn = false;
        ScoreHeader? found = null;
        if (length >= DetailFormat.HeaderBytes)
        {
            found = DetailFrames.CheckHeader(_file, Path, out torn);
            if (!torn && _file.Position == length && found is null)
                torn = true; // a version-1 file or settings-less header with no entry: rewrite it with this run's settings
        }
        else if (length > 0 && !DetailFrames.IsHeaderPrefix(_file, (int)length))
        {
            throw new Corpus.CorpusFormatException($"'{Path}' is not a LongDep detail file: its {length} bytes do not start with \"LDDT\". Give --detail a new path, or use --overwrite to replace it.");
        }
        if (length < DetailFormat.HeaderBytes || torn)
        {
            RepairedBytes = length;
            _file.SetLength(0);
            _file.Position = 0;
            DetailFrames.WriteHeader(_file, _header?.ForShard(0, 1));
            _file.Flush();
            return;
        }
        if (_header is not null)
        {
            if (found is null)
                throw new Corpus.CorpusFormatException($"'{Path}' holds entries written without their settings (an older longdep), so they cannot be checked against this run's; give --detail a new path, or use --overwrite");
            var diffs = found.Differences(_header);
            if (diffs.Count > 0)
                throw new Corpus.CorpusFormatException($"'{Path}' holds entries scored with other settings ({string.Join("; ", diffs)}); give --detail a new path, or use --overwrite");
        }

        DetailEntryHeader last = default;
        bool any = false;
        long end = _file.Position;
        var indexes = new List<long>();
        while (true)
        {
            FrameScan scan = DetailFrames.Next(_file, length, Path, out DetailEntryHeader h);
            if (scan != FrameScan.Frame) break;
            last = h;
            any = true;
            EntriesOnOpen++;
            indexes.Add(h.Index);
            end = _file.Position;
        }
        // A crash can also leave a final frame of full length whose bytes did not all reach the disk.
        if (any && !DetailFrames.BodyIsIntact(_file, last, Path))
        {
            end = last.Offset;
            EntriesOnOpen--;
            indexes.RemoveAt(indexes.Count - 1);
        }
        _held.UnionWith(indexes);
        if (end < length)
        {
            RepairedBytes = length - end;
            _file.SetLength(end);
        }
        _file.Position = end;
    }
}
