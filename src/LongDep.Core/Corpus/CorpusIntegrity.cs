using System.Buffers.Binary;
using System.IO.Compression;

namespace LongDep.Core.Corpus;

/// <summary>
/// Checks a compressed corpus on its own thread, ahead of the reader, so that no record decoded from damaged bytes is
/// ever written as scored. It decodes the file a second time and publishes how many decoded bytes are known good:
/// <list type="bullet">
/// <item>.zst: frame by frame; a frame's bytes count once the frame has decoded whole and passed its content checksum
/// (frames written without one, <c>zstd --no-check</c>, count once they decode). A file cut inside its last frame keeps
/// the bytes that frame decoded before the cut (the bytes before a cut are intact); a frame that fails its checksum,
/// or whose blocks do not parse, keeps nothing of itself.</item>
/// <item>.gz: the CRC-32 of a gzip member is checked at the member's end and the decoder does not say where members
/// end, so bytes count once the whole file has decoded and passed; a file cut short keeps what decoded before the cut;
/// a corrupt byte anywhere keeps nothing.</item>
/// </list>
/// The pipeline holds each record until <see cref="WaitGood"/> says its bytes are good.
/// </summary>
public sealed class CorpusIntegrity : IDisposable
{
    private const int MaxBlockBytes = 128 << 10;

    private readonly string _path;
    private readonly CorpusFormat _format;
    private readonly CancellationTokenSource _stop = new();
    private readonly object _gate = new();
    private long _good;
    private bool _done;
    private string? _problem;
    private readonly Task _task;

    private CorpusIntegrity(string path, CorpusFormat format)
    {
        _path = path;
        _format = format;
        _task = Task.Factory.StartNew(Run, CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);
    }

    /// <summary>Starts checking <paramref name="path"/>; null for formats without checks of their own (.jsonl, .parquet).</summary>
    public static CorpusIntegrity? Start(string path)
    {
        CorpusFormat format = CorpusReader.DetectFormat(path);
        return format is CorpusFormat.JsonlZstd or CorpusFormat.JsonlGzip ? new CorpusIntegrity(path, format) : null;
    }

    /// <summary>What is wrong with the file (null while nothing is, or when it checked out).</summary>
    public string? Problem
    {
        get { lock (_gate) return _problem; }
    }

    /// <summary>Decoded bytes known good so far.</summary>
    public long GoodBytes
    {
        get { lock (_gate) return _good; }
    }

    /// <summary>
    /// Waits until the decoded bytes before <paramref name="endOffset"/> are known good (true) or known not to be
    /// (false: the check failed before that offset; see <see cref="Problem"/>).
    /// </summary>
    public bool WaitGood(long endOffset, CancellationToken cancellationToken = default)
    {
        using var registration = cancellationToken.Register(() => { lock (_gate) Monitor.PulseAll(_gate); });
        lock (_gate)
        {
            while (true)
            {
                if (_good >= endOffset) return true;
                if (_done) return false;
                cancellationToken.ThrowIfCancellationRequested();
                Monitor.Wait(_gate, 1000);
            }
        }
    }

    private void Publish(long good, bool done = false, string? problem = null)
    {
        lock (_gate)
        {
            _good = Math.Max(_good, good);
            _done |= done;
            _problem ??= problem;
            Monitor.PulseAll(_gate);
        }
    }

    private void Run()
    {
        try
        {
            using var file = new FileStream(_path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, FileOptions.SequentialScan);
            if (_format == CorpusFormat.JsonlZstd) CheckZstd(file);
            else CheckGzip(file);
        }
        catch (OperationCanceledException)
        {
            Publish(0, done: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            Publish(0, done: true, problem: $"it cannot be read ({e.Message})");
        }
    }

    private void CheckGzip(FileStream file)
    {
        // The file is decoded followed by a known member (see GzipEndGuardStream): a whole file ends with its text; a
        // file cut short does not. The bytes the decoder gave before it first asked for the appended member's bytes
        // came from the file's own bytes alone.
        long decoded = 0, decodedAtEnd = -1;
        var sentinel = GzipEndGuardStream.Sentinel;
        var tail = new byte[sentinel.Length];
        int tailCount = 0;
        try
        {
            using var gz = new GZipStream(new ConcatStream(file, new MemoryStream(GzipEndGuardStream.SentinelMember, writable: false),
                () => decodedAtEnd = decoded), CompressionMode.Decompress, leaveOpen: false);
            var buffer = new byte[1 << 16];
            int n;
            while ((n = gz.Read(buffer)) > 0)
            {
                _stop.Token.ThrowIfCancellationRequested();
                decoded += n;
                // keep the last sentinel-length bytes
                if (n >= tail.Length) { buffer.AsSpan(n - tail.Length, tail.Length).CopyTo(tail); tailCount = tail.Length; }
                else
                {
                    int keep = Math.Min(tailCount, tail.Length - n);
                    tail.AsSpan(tailCount - keep, keep).CopyTo(tail);
                    buffer.AsSpan(0, n).CopyTo(tail.AsSpan(keep));
                    tailCount = keep + n;
                }
            }
        }
        catch (InvalidDataException e)
        {
            if (decodedAtEnd >= 0)
                Publish(decodedAtEnd, done: true, problem: "it ends inside a gzip member (truncated)");
            else
                Publish(0, done: true, problem: $"its gzip data fails the check ({e.Message}); a gzip file is checked as a whole, so none of its records counts as read");
            return;
        }
        if (tailCount == tail.Length && tail.AsSpan().SequenceEqual(sentinel) && decoded - sentinel.Length == decodedAtEnd)
            Publish(decodedAtEnd, done: true);
        else
            Publish(Math.Max(0, decodedAtEnd), done: true, problem: "it ends inside a gzip member (truncated)");
    }

    private void CheckZstd(FileStream file)
    {
        long length = file.Length, decoded = 0;
        int frame = 0;
        var buffer = new byte[1 << 16];
        while (file.Position < length)
        {
            _stop.Token.ThrowIfCancellationRequested();
            long start = file.Position;
            var (end, complete, problem) = ZstdFrameEnd(file, length);
            if (problem is not null)
            {
                Publish(decoded, done: true, problem: $"zstd frame {frame} at byte {start} is damaged ({problem})");
                return;
            }
            long frameBytes = 0;
            try
            {
                using var sub = new SubStream(file, start, end - start);
                using var z = new ZstdSharp.DecompressionStream(sub, leaveOpen: true);
                int n;
                while ((n = z.Read(buffer)) > 0)
                {
                    _stop.Token.ThrowIfCancellationRequested();
                    frameBytes += n;
                    if (!complete) Publish(decoded + frameBytes); // bytes before a cut are intact
                }
            }
            catch (Exception e) when (e is ZstdSharp.ZstdException or EndOfStreamException or InvalidDataException or IOException)
            {
                if (complete)
                    Publish(decoded, done: true, problem: $"zstd frame {frame} at byte {start} fails its check ({e.Message})");
                else
                    Publish(decoded + frameBytes, done: true, problem: $"it ends inside zstd frame {frame} (truncated at byte {length})");
                return;
            }
            if (!complete)
            {
                Publish(decoded + frameBytes, done: true, problem: $"it ends inside zstd frame {frame} (truncated at byte {length})");
                return;
            }
            decoded += frameBytes;
            Publish(decoded);
            file.Position = end;
            frame++;
        }
        Publish(decoded, done: true);
    }

    /// <summary>
    /// Walks the zstd frame (or skippable frame) at the stream's position by its block headers, without decoding:
    /// returns where it ends, whether the file holds all of it, or what does not parse.
    /// </summary>
    private static (long End, bool Complete, string? Problem) ZstdFrameEnd(FileStream s, long length)
    {
        long start = s.Position;
        Span<byte> b = stackalloc byte[14];
        if (length - start < 4) return (length, false, null);
        s.ReadExactly(b[..4]);
        uint magic = BinaryPrimitives.ReadUInt32LittleEndian(b);
        if ((magic & 0xFFFFFFF0u) == 0x184D2A50u)
        {
            if (length - start < 8) return (length, false, null);
            s.ReadExactly(b[..4]);
            long end = start + 8 + BinaryPrimitives.ReadUInt32LittleEndian(b);
            return end <= length ? (end, true, null) : (length, false, null);
        }
        if (magic != 0xFD2FB528u) return (start, false, $"no zstd frame starts there (magic {magic:X8})");
        if (length - start < 5) return (length, false, null);
        int descriptor = s.ReadByte();
        int fcsFlag = descriptor >> 6;
        bool singleSegment = (descriptor & 0x20) != 0, checksum = (descriptor & 0x04) != 0;
        if ((descriptor & 0x08) != 0) return (start, false, "a reserved bit of the frame header is set");
        int dictBytes = (descriptor & 3) switch { 0 => 0, 1 => 1, 2 => 2, _ => 4 };
        int fcsBytes = fcsFlag switch { 0 => singleSegment ? 1 : 0, 1 => 2, 2 => 4, _ => 8 };
        long pos = start + 5 + (singleSegment ? 0 : 1) + dictBytes + fcsBytes;
        while (true)
        {
            if (pos + 3 > length) return (length, false, null);
            s.Position = pos;
            s.ReadExactly(b[..3]);
            int header = b[0] | (b[1] << 8) | (b[2] << 16);
            bool last = (header & 1) != 0;
            int type = (header >> 1) & 3, size = header >> 3;
            if (type == 3) return (start, false, $"block at byte {pos} has the reserved type");
            if (size > MaxBlockBytes) return (start, false, $"block at byte {pos} claims {size} bytes, over zstd's {MaxBlockBytes}");
            pos += 3 + (type == 1 ? 1 : size);
            if (last) break;
        }
        if (checksum) pos += 4;
        return pos <= length ? (pos, true, null) : (length, false, null);
    }

    public void Dispose()
    {
        _stop.Cancel();
        try
        {
            _task.Wait(TimeSpan.FromSeconds(5));
        }
        catch (AggregateException) { }
        _stop.Dispose();
    }

    /// <summary>A read-only window [start, start + length) of a seekable stream.</summary>
    private sealed class SubStream(Stream inner, long start, long length) : ReadOnlyStream
    {
        private long _offset;

        public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

        public override int Read(Span<byte> destination)
        {
            long left = length - _offset;
            if (left <= 0) return 0;
            inner.Position = start + _offset;
            int n = inner.Read(destination[..(int)Math.Min(destination.Length, left)]);
            _offset += n;
            return n;
        }
    }
}
