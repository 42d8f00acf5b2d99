using System.IO.Compression;

namespace LongDep.Core.Corpus;

/// <summary>
/// Decompresses a .gz stream and detects truncation, which <see cref="GZipStream"/> alone reports as a clean end.
/// A small gzip member holding a known sentinel is appended to the compressed input: a complete file is followed
/// by the decoded sentinel, a truncated one is not (its last member swallows the sentinel's bytes as garbage, or
/// the decoder throws). The last <see cref="HoldBack"/> decoded bytes are held until the end is verified, so no
/// garbage decoded from the sentinel's bytes ever reaches the caller.
/// </summary>
internal sealed class GzipEndGuardStream : ReadOnlyStream
{
    /// <summary>Decoded bytes kept back until the end is verified (more than a 40-byte member can decode to as garbage).</summary>
    internal const int HoldBack = 1 << 17;

    /// <summary>The decoded text of the appended member.</summary>
    internal static readonly byte[] Sentinel = "\nLONGDEP-GZIP-END-5c2e91d7a4\n"u8.ToArray();

    /// <summary>The member appended to the compressed input.</summary>
    internal static readonly byte[] SentinelMember = CompressSentinel();

    private readonly GZipStream _inner;
    private readonly byte[] _buffer = new byte[HoldBack + (1 << 16)];
    private int _start, _count; // valid bytes: _buffer[_start .. _start + _count)
    private bool _innerDone;
    private long _produced, _delivered;   // bytes read from the decoder, bytes handed out
    private long _producedAtEnd = -1;     // bytes the decoder had given when the file's own bytes ran out
    private Exception? _failure;          // a truncation found: raised once the bytes before the cut are handed out

    public GzipEndGuardStream(Stream compressed)
    {
        _inner = new GZipStream(new ConcatStream(compressed, new MemoryStream(SentinelMember, writable: false), () => _producedAtEnd = _produced),
            CompressionMode.Decompress);
    }

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override int Read(Span<byte> destination)
    {
        if (destination.IsEmpty) return 0;
        if (_failure is not null)
        {
            // A file cut short: the bytes the decoder gave before it reached the end of the file came from the file's
            // own intact bytes; hand those out, then report the cut.
            long left = Math.Min(_count, _producedAtEnd - _delivered);
            if (left <= 0) throw _failure;
            int k = (int)Math.Min(left, destination.Length);
            _buffer.AsSpan(_start, k).CopyTo(destination);
            _start += k;
            _count -= k;
            _delivered += k;
            return k;
        }
        while (!_innerDone && _count <= HoldBack)
        {
            if (_start > 0)
            {
                Buffer.BlockCopy(_buffer, _start, _buffer, 0, _count);
                _start = 0;
            }
            int read;
            try
            {
                read = _inner.Read(_buffer, _count, _buffer.Length - _count);
            }
            catch (InvalidDataException e)
            {
                var failure = new GzipTruncatedException($"the gzip data is truncated or corrupt ({e.Message})", e);
                if (_producedAtEnd < 0) throw failure; // damage inside the file itself
                _failure = failure;
                return Read(destination);
            }
            if (read == 0)
            {
                _innerDone = true;
                if (_count < Sentinel.Length || !_buffer.AsSpan(_count - Sentinel.Length, Sentinel.Length).SequenceEqual(Sentinel) ||
                    _produced - Sentinel.Length != _producedAtEnd)
                {
                    _failure = new GzipTruncatedException("the gzip data ends before its final block: the file is truncated");
                    if (_producedAtEnd < 0) throw _failure;
                    return Read(destination);
                }
                _count -= Sentinel.Length;
            }
            else
            {
                _count += read;
                _produced += read;
            }
        }

        int available = _innerDone ? _count : _count - HoldBack;
        int n = Math.Min(available, destination.Length);
        _buffer.AsSpan(_start, n).CopyTo(destination);
        _start += n;
        _count -= n;
        _delivered += n;
        return n;
    }

    private static byte[] CompressSentinel()
    {
        var output = new MemoryStream();
        using (var gz = new GZipStream(output, CompressionLevel.Optimal, leaveOpen: true)) gz.Write(Sentinel);
        return output.ToArray();
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing) _inner.Dispose();
        base.Dispose(disposing);
    }
}

/// <summary>Reads one stream to its end, then another; <paramref name="onSecond"/> runs when the first is exhausted.</summary>
internal sealed class ConcatStream(Stream first, Stream second, Action? onSecond = null) : ReadOnlyStream
{
    private bool _firstDone;

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override int Read(Span<byte> destination)
    {
        if (!_firstDone)
        {
            int n = first.Read(destination);
            if (n > 0) return n;
            _firstDone = true;
            onSecond?.Invoke();
        }
        return second.Read(destination);
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing) { first.Dispose(); second.Dispose(); }
        base.Dispose(disposing);
    }
}

/// <summary>Raised inside the gzip guard; the corpus reader turns it into a <see cref="CorpusFormatException"/> naming the file and record.</summary>
internal sealed class GzipTruncatedException : IOException
{
    public GzipTruncatedException(string message, Exception? inner = null) : base(message, inner) { }
}

/// <summary>A forward-only, read-only stream: everything but reading is unsupported.</summary>
internal abstract class ReadOnlyStream : Stream
{
    public override bool CanRead => true;
    public override bool CanSeek => false;
    public override bool CanWrite => false;
    public override long Length => throw new NotSupportedException();
    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
    public override void Flush() { }
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
}
