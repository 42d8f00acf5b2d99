using System.Buffers.Binary;
using System.IO.Hashing;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace LongDep.Core.Corpus.Mds;

/// <summary>How <see cref="MdsWriter"/> cuts, compresses and hashes shards.</summary>
public sealed record MdsWriterOptions
{
    /// <summary>MDSWriter's default shard size limit (64 MiB).</summary>
    public const long DefaultSizeLimit = 1L << 26;

    /// <summary>A shard is closed before a sample that would take it past this many bytes.</summary>
    public long SizeLimit { get; init; } = DefaultSizeLimit;
    /// <summary>Null (uncompressed), <c>zstd</c> or <c>zstd:LEVEL</c> (1..22).</summary>
    public string? Compression { get; init; }
    /// <summary>Hashes recorded per file, sorted (MDSWriter requires it); each one of <see cref="MdsHashes.Supported"/>.</summary>
    public IReadOnlyList<string> Hashes { get; init; } = MdsHashes.Default;

    /// <summary>Checks the options; null when valid, else what is wrong.</summary>
    public string? Validate()
    {
        if (SizeLimit < 1 || SizeLimit >= 1L << 32) return $"the shard size limit {SizeLimit} must be between 1 and 2^32 - 1 bytes";
        if (Compression is not null && MdsIndex.ZstdLevel(Compression) is null)
            return $"compression '{Compression}' is not supported: use none, zstd or zstd:LEVEL (1..22)";
        foreach (string h in Hashes)
            if (!MdsHashes.IsSupported(h)) return $"hash '{h}' is not supported ({string.Join(", ", MdsHashes.Supported)})";
        if (!Hashes.SequenceEqual(Hashes.Order(StringComparer.Ordinal).Distinct()))
            return "hashes must be distinct and sorted";
        return null;
    }
}

/// <summary>What a finished <see cref="MdsWriter"/> wrote.</summary>
public sealed record MdsWriteSummary(string Directory, int Shards, long Samples, long RawBytes, long FileBytes);

/// <summary>
/// Writes an MDS dataset (MosaicML Streaming's format, version 2) that <c>StreamingDataset</c> reads: columns sorted by
/// name as MDSWriter sorts them, shards cut at the size limit the way MDSWriter cuts them, optional zstd, and sizes and
/// hashes of every file in <c>index.json</c>.
/// </summary>
/// <remarks>
/// Crash safety: each shard is written under a temporary name and renamed when complete, and <c>index.json</c> (which
/// readers need before anything else) is written last, the same way. An interrupted run therefore leaves no index: no
/// reader accepts the folder, and the next writer on it removes the leftovers. <see cref="Dispose"/> without
/// <see cref="Finish"/> removes what this writer wrote.
/// </remarks>
public sealed partial class MdsWriter : IDisposable
{
    private const string TempSuffix = ".tmp";

    private readonly MdsWriterOptions _options;
    private readonly byte[] _config;
    private readonly int[] _varColumns; // index into the size header per column, -1 for fixed-size columns
    private readonly int _headerBytes;
    private readonly int? _zstdLevel;
    private readonly List<string> _shardObjects = [];
    private readonly List<string> _written = [];
    private byte[] _buffer = new byte[1 << 20];
    private int _used;
    private readonly List<int> _sampleEnds = [];
    private int _sampleStart = -1, _column;
    private long _samplesClosed, _rawBytes, _fileBytes;
    private int _shardCount;
    private Task? _shardWrite;
    private volatile byte[]? _spare;
    private bool _finished;

    /// <summary>
    /// Prepares <paramref name="directory"/> (see <see cref="PrepareDirectory"/>) and starts a dataset with
    /// <paramref name="columns"/> (stored sorted by name: write each sample's values in <see cref="Columns"/> order).
    /// </summary>
    public MdsWriter(string directory, IEnumerable<MdsColumn> columns, MdsWriterOptions? options = null, bool overwrite = false)
    {
        _options = options ?? new MdsWriterOptions();
        if (_options.Validate() is { } bad) throw new ArgumentException(bad, nameof(options));
        Columns = columns.OrderBy(c => c.Name, StringComparer.Ordinal).ToArray();
        if (Columns.Count == 0) throw new ArgumentException("an MDS dataset needs at least one column", nameof(columns));
        if (Columns.Select(c => c.Name).Distinct().Count() != Columns.Count) throw new ArgumentException("column names must be distinct", nameof(columns));
        foreach (MdsColumn c in Columns)
            if (c.Encoding.Kind is MdsColumnKind.Opaque || (c.Encoding.Kind == MdsColumnKind.NdArray && c.Encoding.Shape is not null))
                throw new ArgumentException($"column '{c.Name}': writing encoding '{c.Encoding}' is not supported", nameof(columns));
        _varColumns = new int[Columns.Count];
        int vars = 0;
        for (int c = 0; c < Columns.Count; c++) _varColumns[c] = Columns[c].Encoding.FixedSize is null ? vars++ : -1;
        _headerBytes = 4 * vars;
        _zstdLevel = _options.Compression is { } z ? MdsIndex.ZstdLevel(z) : null;
        _config = Encoding.UTF8.GetBytes(ConfigJson());
        Directory = directory;
        PrepareDirectory(directory, overwrite);
    }

    /// <summary>The dataset folder.</summary>
    public string Directory { get; }
    /// <summary>The columns, sorted by name: the order values are written in.</summary>
    public IReadOnlyList<MdsColumn> Columns { get; }
    /// <summary>Samples written so far (including those not yet in a closed shard).</summary>
    public long Samples => _samplesClosed + _sampleEnds.Count;

    /// <summary>
    /// Makes <paramref name="directory"/> ready for a new dataset: creates it, or, when it exists, removes the files an
    /// earlier, interrupted writer left (shard files, temporary files) and, with <paramref name="overwrite"/>, a
    /// complete dataset (its index first). Other files are left alone.
    /// </summary>
    /// <exception cref="IOException">The folder holds a dataset (an index.json) and <paramref name="overwrite"/> is false.</exception>
    public static void PrepareDirectory(string directory, bool overwrite)
    {
        if (File.Exists(directory))
            throw new IOException($"output '{directory}' is a file; an MDS dataset is a folder: choose another name");
        System.IO.Directory.CreateDirectory(directory);
        string index = Path.Combine(directory, MdsIndex.FileName);
        if (File.Exists(index))
        {
            if (!overwrite)
                throw new IOException($"'{directory}' already holds an MDS dataset ({MdsIndex.FileName}); pass --overwrite to replace it or choose another output folder");
            File.Delete(index); // first: from here on no reader accepts the folder
        }
        foreach (string file in System.IO.Directory.EnumerateFiles(directory))
            if (OwnFile().IsMatch(Path.GetFileName(file))) File.Delete(file);
    }

    [GeneratedRegex(@"^(shard\.[0-9]{5,}\.mds(\.zstd)?|index\.json)(\.tmp)?$")]
    private static partial Regex OwnFile();

    // ---- encoding one sample ----

    /// <summary>Starts a sample; then write one value per column, in <see cref="Columns"/> order, and call <see cref="EndSample"/>.</summary>
    public void BeginSample()
    {
        ThrowIfFinished();
        if (_sampleStart >= 0) throw new InvalidOperationException("the previous sample was not ended");
        _sampleStart = _used;
        _column = 0;
        Reserve(_headerBytes);
        _buffer.AsSpan(_used, _headerBytes).Clear();
        _used += _headerBytes;
    }

    /// <summary>A <c>str</c> value.</summary>
    public void WriteString(string value)
    {
        Next(MdsColumnKind.Str);
        int n = Encoding.UTF8.GetByteCount(value);
        Reserve(n);
        Encoding.UTF8.GetBytes(value, _buffer.AsSpan(_used));
        Close(n);
    }

    /// <summary>A <c>json</c> value (the JSON text).</summary>
    public void WriteJson(string json)
    {
        Next(MdsColumnKind.Json);
        int n = Encoding.UTF8.GetByteCount(json);
        Reserve(n);
        Encoding.UTF8.GetBytes(json, _buffer.AsSpan(_used));
        Close(n);
    }

    /// <summary>A scalar integer value (<c>int</c>, <c>int32</c>, <c>uint32</c>, ...), range-checked.</summary>
    public void WriteInteger(long value)
    {
        MdsEncoding enc = Next(MdsColumnKind.Scalar);
        int size = enc.FixedSize!.Value;
        Reserve(size);
        Span<byte> d = _buffer.AsSpan(_used, size);
        switch (enc.DType)
        {
            case MdsDType.Int64: BinaryPrimitives.WriteInt64LittleEndian(d, value); break;
            case MdsDType.Int32: BinaryPrimitives.WriteInt32LittleEndian(d, checked((int)value)); break;
            case MdsDType.UInt32: BinaryPrimitives.WriteUInt32LittleEndian(d, checked((uint)value)); break;
            case MdsDType.UInt64: BinaryPrimitives.WriteUInt64LittleEndian(d, checked((ulong)value)); break;
            case MdsDType.Int16: BinaryPrimitives.WriteInt16LittleEndian(d, checked((short)value)); break;
            case MdsDType.UInt16: BinaryPrimitives.WriteUInt16LittleEndian(d, checked((ushort)value)); break;
            case MdsDType.Int8: d[0] = (byte)checked((sbyte)value); break;
            case MdsDType.UInt8: d[0] = checked((byte)value); break;
            default: throw new InvalidOperationException($"column '{Columns[_column].Name}' ({enc}) does not hold integers");
        }
        Close(size);
    }

    /// <summary>
    /// An <c>ndarray</c> value of non-negative 32-bit integers (token ids, index pairs) with the given shape (default:
    /// one dimension). The column's dtype must be uint32 or int32, or free (then uint32 is written).
    /// </summary>
    public void WriteIntArray(ReadOnlySpan<int> values, ReadOnlySpan<int> shape = default)
    {
        MdsEncoding enc = Next(MdsColumnKind.NdArray);
        MdsDType dtype = enc.DType ?? MdsDType.UInt32;
        if (dtype is not (MdsDType.UInt32 or MdsDType.Int32))
            throw new InvalidOperationException($"column '{Columns[_column].Name}' ({enc}): only uint32 and int32 arrays are written");
        if (values.Length == 0) throw new ArgumentException("MDS cannot store an empty array", nameof(values));
        if (shape.IsEmpty) shape = new[] { values.Length };
        long count = 1;
        int max = 0;
        foreach (int d in shape)
        {
            if (d < 1) throw new ArgumentException("array dimensions must be positive", nameof(shape));
            count *= d;
            max = Math.Max(max, d);
        }
        if (count != values.Length) throw new ArgumentException($"shape holds {count} elements, values {values.Length}", nameof(shape));
        if (shape.Length >= 64) throw new ArgumentException("an MDS array has at most 63 dimensions", nameof(shape));
        int shapeCode = max < 1 << 8 ? 0 : max < 1 << 16 ? 1 : 2;
        int n = (enc.DType is null ? 1 : 0) + 1 + shape.Length * (1 << shapeCode) + 4 * values.Length;
        Reserve(n);
        Span<byte> d2 = _buffer.AsSpan(_used, n);
        int at = 0;
        if (enc.DType is null) d2[at++] = (byte)dtype;
        d2[at++] = (byte)((shape.Length << 2) | shapeCode);
        foreach (int dim in shape)
        {
            switch (shapeCode)
            {
                case 0: d2[at] = (byte)dim; break;
                case 1: BinaryPrimitives.WriteUInt16LittleEndian(d2[at..], (ushort)dim); break;
                default: BinaryPrimitives.WriteUInt32LittleEndian(d2[at..], (uint)dim); break;
            }
            at += 1 << shapeCode;
        }
        if (dtype == MdsDType.UInt32 && System.Numerics.Tensors.TensorPrimitives.Min(values) < 0)
            throw new ArgumentException("a uint32 array cannot hold negative values", nameof(values));
        if (BitConverter.IsLittleEndian) MemoryMarshal.AsBytes(values).CopyTo(d2[at..]);
        else
            for (int k = 0; k < values.Length; k++) BinaryPrimitives.WriteInt32LittleEndian(d2[(at + 4 * k)..], values[k]);
        Close(n);
    }

    /// <summary>Ends the sample; may close the current shard first (MDSWriter's rule: before a sample that would pass the limit).</summary>
    public void EndSample()
    {
        if (_sampleStart < 0) throw new InvalidOperationException("no sample was begun");
        if (_column != Columns.Count)
            throw new InvalidOperationException($"the sample has {_column} of {Columns.Count} values (next: '{Columns[_column].Name}')");
        int start = _sampleStart;
        _sampleStart = -1;
        Commit(start);
    }

    /// <summary>Writes a sample already encoded for these columns (e.g. copied from a shard with the same columns); its layout is checked.</summary>
    public void WriteEncoded(ReadOnlySpan<byte> sample)
    {
        ThrowIfFinished();
        if (_sampleStart >= 0) throw new InvalidOperationException("a sample is being written");
        if (MdsShard.CheckSample(sample, Columns) is { } bad) throw new ArgumentException($"the encoded sample does not fit the columns: {bad}", nameof(sample));
        int start = _used;
        Reserve(sample.Length);
        sample.CopyTo(_buffer.AsSpan(_used));
        _used += sample.Length;
        Commit(start);
    }

    private void Commit(int start)
    {
        long sampleBytes = _used - start;
        long shardSize = 4 + 4 + _config.Length + _sampleEnds.Count * 4L + _sampleEnds.LastOrDefault();
        if (_sampleEnds.Count > 0 && _options.SizeLimit < shardSize + sampleBytes + 4)
            FlushShard(start); // moves this sample to the start of a fresh buffer
        long total = 4 + 4 * (_sampleEnds.Count + 2L) + _config.Length + _used;
        if (total > uint.MaxValue)
            throw new InvalidOperationException($"a shard would pass 4 GiB (the format's uint32 offsets): lower the shard size limit");
        _sampleEnds.Add(_used);
    }

    private MdsEncoding Next(MdsColumnKind kind)
    {
        if (_sampleStart < 0) throw new InvalidOperationException("call BeginSample first");
        if (_column >= Columns.Count) throw new InvalidOperationException("the sample already has a value for every column");
        MdsEncoding enc = Columns[_column].Encoding;
        bool fits = enc.Kind == kind || (kind == MdsColumnKind.Str && enc.Kind == MdsColumnKind.Bytes);
        if (!fits) throw new InvalidOperationException($"column '{Columns[_column].Name}' is '{enc}', not a {kind} value");
        return enc;
    }

    private void Close(int bytes)
    {
        int slot = _varColumns[_column];
        if (slot >= 0) BinaryPrimitives.WriteUInt32LittleEndian(_buffer.AsSpan(_sampleStart + 4 * slot), (uint)bytes);
        _used += bytes;
        _column++;
    }

    private void Reserve(long more)
    {
        long need = _used + more;
        if (need <= _buffer.Length) return;
        if (need > Array.MaxLength) throw new InvalidOperationException("a shard would pass 2 GiB in memory: lower the shard size limit");
        var bigger = GC.AllocateUninitializedArray<byte>((int)Math.Min(Array.MaxLength, Math.Max(need, 2L * _buffer.Length)));
        _buffer.AsSpan(0, _used).CopyTo(bigger);
        _buffer = bigger;
    }

    // ---- shards and index ----

    /// <summary>
    /// Hands the samples before <paramref name="end"/> to the background writer as the next shard (waiting for the
    /// previous one first) and continues in the spare buffer with the bytes after <paramref name="end"/> (the sample
    /// being committed).
    /// </summary>
    private void FlushShard(int end)
    {
        WaitForShard();
        var job = new ShardJob(_shardCount++, _buffer, end, _sampleEnds.ToArray());
        _samplesClosed += job.SampleEnds.Length;
        byte[] next = _spare is { } spare && spare.Length >= _used - end ? spare : new byte[Math.Max(_buffer.Length, _used - end)];
        _spare = null;
        _buffer.AsSpan(end, _used - end).CopyTo(next);
        _buffer = next;
        _used -= end;
        _sampleEnds.Clear();
        _shardWrite = Task.Run(() => WriteShard(job));
    }

    private sealed record ShardJob(int Number, byte[] Buffer, int End, int[] SampleEnds);

    /// <summary>Waits for the shard being written; rethrows its failure.</summary>
    private void WaitForShard()
    {
        Task? pending = _shardWrite;
        _shardWrite = null;
        pending?.GetAwaiter().GetResult();
    }

    /// <summary>Hashes, compresses and writes one shard (on the background thread; one at a time).</summary>
    private void WriteShard(ShardJob job)
    {
        int count = job.SampleEnds.Length;
        int headerEnd = 4 + 4 * (count + 1) + _config.Length;
        var header = new byte[headerEnd];
        BinaryPrimitives.WriteUInt32LittleEndian(header, (uint)count);
        BinaryPrimitives.WriteUInt32LittleEndian(header.AsSpan(4), (uint)headerEnd);
        for (int i = 0; i < count; i++)
            BinaryPrimitives.WriteUInt32LittleEndian(header.AsSpan(8 + 4 * i), (uint)(headerEnd + job.SampleEnds[i]));
        _config.CopyTo(header, 4 + 4 * (count + 1));
        ReadOnlyMemory<byte> body = job.Buffer.AsMemory(0, job.End);
        long rawBytes = header.Length + (long)job.End;

        string rawName = $"shard.{job.Number:D5}.mds";
        var rawHashes = new Hasher(_options.Hashes);
        rawHashes.Append(header);
        rawHashes.Append(body.Span);
        string rawInfo = FileInfoJson(rawName, rawBytes, rawHashes.Finish());
        string? zipInfo = null;
        long fileBytes = rawBytes;
        if (_zstdLevel is { } level)
        {
            var raw = GC.AllocateUninitializedArray<byte>((int)rawBytes);
            header.CopyTo(raw, 0);
            body.Span.CopyTo(raw.AsSpan(header.Length));
            using var compressor = new ZstdSharp.Compressor(level);
            byte[] zipped = compressor.Wrap(raw).ToArray();
            string zipName = rawName + ".zstd";
            fileBytes = zipped.Length;
            var zipHashes = new Hasher(_options.Hashes);
            zipHashes.Append(zipped);
            zipInfo = FileInfoJson(zipName, zipped.Length, zipHashes.Finish());
            WriteAtomically(zipName, [zipped]);
        }
        else
        {
            WriteAtomically(rawName, [header, body]);
        }
        lock (_shardObjects)
        {
            _shardObjects.Add(ShardJson(count, rawInfo, zipInfo));
            _rawBytes += rawBytes;
            _fileBytes += fileBytes;
        }
        _spare = job.Buffer;
    }

    private void WriteAtomically(string name, ReadOnlyMemory<byte>[] parts)
    {
        string path = Path.Combine(Directory, name);
        string temp = path + TempSuffix;
        lock (_written) _written.Add(temp);
        using (var file = new FileStream(temp, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 16))
        {
            foreach (ReadOnlyMemory<byte> part in parts) file.Write(part.Span);
            file.Flush(flushToDisk: true);
        }
        File.Move(temp, path, overwrite: true);
        lock (_written) _written[_written.IndexOf(temp)] = path;
    }

    /// <summary>Closes the last shard and writes <c>index.json</c>; the dataset is complete once this returns.</summary>
    public MdsWriteSummary Finish()
    {
        ThrowIfFinished();
        if (_sampleStart >= 0) throw new InvalidOperationException("a sample was begun but not ended");
        if (_sampleEnds.Count > 0) FlushShard(_used);
        WaitForShard();
        var index = new StringBuilder("{\"shards\": [");
        index.AppendJoin(", ", _shardObjects);
        index.Append("], \"version\": 2}");
        WriteAtomically(MdsIndex.FileName, [Encoding.UTF8.GetBytes(index.ToString())]);
        _finished = true;
        return new MdsWriteSummary(Directory, _shardObjects.Count, _samplesClosed, _rawBytes, _fileBytes);
    }

    /// <summary>Without <see cref="Finish"/>: removes every file this writer wrote (the folder then holds no dataset).</summary>
    public void Dispose()
    {
        if (_finished) return;
        _finished = true;
        try
        {
            WaitForShard();
        }
        catch (Exception)
        {
            // Abandoning the dataset anyway: what was written is removed below.
        }
        foreach (string path in _written)
        {
            try { File.Delete(path); } catch (IOException) { } catch (UnauthorizedAccessException) { }
        }
    }

    private void ThrowIfFinished()
    {
        if (_finished) throw new InvalidOperationException("the writer is finished");
    }

    // ---- JSON (written by hand, keys sorted as Python's json.dumps(sort_keys=True) writes them) ----

    private string ConfigJson() =>
        "{" + ConfigFields() + "}";

    private string ConfigFields()
    {
        var sb = new StringBuilder();
        sb.Append("\"column_encodings\": [").AppendJoin(", ", Columns.Select(c => Quote(c.Encoding.Text))).Append("], ");
        sb.Append("\"column_names\": [").AppendJoin(", ", Columns.Select(c => Quote(c.Name))).Append("], ");
        sb.Append("\"column_sizes\": [").AppendJoin(", ", Columns.Select(c => c.Encoding.FixedSize?.ToString() ?? "null")).Append("], ");
        sb.Append("\"compression\": ").Append(_options.Compression is { } z ? Quote(z) : "null").Append(", ");
        sb.Append("\"format\": \"mds\", ");
        sb.Append("\"hashes\": [").AppendJoin(", ", _options.Hashes.Select(Quote)).Append("], ");
        sb.Append("\"size_limit\": ").Append(_options.SizeLimit).Append(", ");
        sb.Append("\"version\": 2");
        return sb.ToString();
    }

    private string ShardJson(int samples, string rawInfo, string? zipInfo)
    {
        string fields = ConfigFields();
        // The config's keys, with raw_data, samples and zip_data merged in sorted order.
        int hashesEnd = fields.IndexOf("\"size_limit\"", StringComparison.Ordinal);
        return "{" + fields[..hashesEnd] + "\"raw_data\": " + rawInfo + ", \"samples\": " + samples + ", " +
               fields[hashesEnd..] + ", \"zip_data\": " + (zipInfo ?? "null") + "}";
    }

    private static string FileInfoJson(string basename, long bytes, IReadOnlyList<(string Algorithm, string Hex)> hashes) =>
        "{\"basename\": " + Quote(basename) + ", \"bytes\": " + bytes + ", \"hashes\": {" +
        string.Join(", ", hashes.Select(h => Quote(h.Algorithm) + ": " + Quote(h.Hex))) + "}}";

    private static string Quote(string s) => "\"" + JsonEncodedText.Encode(s).Value + "\"";

    /// <summary>Incremental hashes of a file being written.</summary>
    private sealed class Hasher(IReadOnlyList<string> algorithms)
    {
        private readonly (string Name, IncrementalHash? Crypto, NonCryptographicHashAlgorithm? Fast)[] _hashes =
            algorithms.Select(a => (a, Crypto(a), Fast(a))).ToArray();

        private static IncrementalHash? Crypto(string a) => a switch
        {
            "md5" => IncrementalHash.CreateHash(HashAlgorithmName.MD5),
            "sha1" => IncrementalHash.CreateHash(HashAlgorithmName.SHA1),
            "sha256" => IncrementalHash.CreateHash(HashAlgorithmName.SHA256),
            "sha384" => IncrementalHash.CreateHash(HashAlgorithmName.SHA384),
            "sha512" => IncrementalHash.CreateHash(HashAlgorithmName.SHA512),
            _ => null,
        };

        private static NonCryptographicHashAlgorithm? Fast(string a) => a switch
        {
            "xxh32" => new XxHash32(),
            "xxh64" => new XxHash64(),
            "xxh3_64" => new XxHash3(),
            "xxh128" or "xxh3_128" => new XxHash128(),
            _ => null,
        };

        public void Append(ReadOnlySpan<byte> data)
        {
            foreach (var h in _hashes)
            {
                h.Crypto?.AppendData(data);
                h.Fast?.Append(data);
            }
        }

        public IReadOnlyList<(string, string)> Finish() =>
            _hashes.Select(h => (h.Name, Convert.ToHexStringLower(h.Crypto is { } c ? c.GetHashAndReset() : h.Fast!.GetHashAndReset()))).ToArray();
    }
}
