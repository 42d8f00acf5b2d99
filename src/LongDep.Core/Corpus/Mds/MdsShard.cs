using System.Buffers.Binary;

namespace LongDep.Core.Corpus.Mds;

/// <summary>
/// One MDS shard read whole and checked: file size and hashes against the index, zstd decompressed to exactly the
/// size the index gives, the sample count and offset table, and every sample's column sizes (and the header of every
/// ndarray value) against the sample's bytes. Sample bytes are then served without further checks.
/// </summary>
/// <remarks>
/// Shard layout (uncompressed): <c>uint32 n</c>, <c>uint32 offsets[n + 1]</c> (absolute byte offsets of the samples,
/// the last one the file's end), the writer's configuration as JSON, then the samples. A sample is one <c>uint32</c>
/// size per variable-size column (in column order), then the column values back to back.
/// </remarks>
public sealed class MdsShard
{
    private readonly byte[] _data;
    private readonly int _length, _headerEnd;

    private MdsShard(MdsShardInfo info, string path, byte[] data, int length)
    {
        Info = info;
        Path = path;
        _data = data;
        _length = length;
        Count = (int)info.Samples;
        _headerEnd = 4 + 4 * (Count + 1);
    }

    public MdsShardInfo Info { get; }
    /// <summary>The file read.</summary>
    public string Path { get; }
    /// <summary>Samples in the shard.</summary>
    public int Count { get; }
    /// <summary>The uncompressed shard.</summary>
    public ReadOnlySpan<byte> Bytes => _data.AsSpan(0, _length);

    /// <summary>The array holding the shard (it may be longer), for reuse once the shard is no longer needed.</summary>
    internal byte[] Buffer => _data;

    /// <summary>The encoded bytes of sample <paramref name="i"/> (its size header and column values).</summary>
    public ReadOnlySpan<byte> SampleBytes(int i)
    {
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual((uint)i, (uint)Count, nameof(i));
        int begin = (int)BinaryPrimitives.ReadUInt32LittleEndian(_data.AsSpan(4 + 4 * i));
        int end = (int)BinaryPrimitives.ReadUInt32LittleEndian(_data.AsSpan(8 + 4 * i));
        return _data.AsSpan(begin, end - begin);
    }

    /// <summary>The value of column <paramref name="column"/> in sample <paramref name="i"/>.</summary>
    public ReadOnlySpan<byte> Column(int i, int column)
    {
        ReadOnlySpan<byte> sample = SampleBytes(i);
        var (start, length) = ColumnRange(sample, Info.Columns, column);
        return sample.Slice(start, length);
    }

    /// <summary>Where column <paramref name="column"/> lies in a sample whose layout has been checked.</summary>
    internal static (int Start, int Length) ColumnRange(ReadOnlySpan<byte> sample, IReadOnlyList<MdsColumn> columns, int column)
    {
        int header = 0;
        for (int c = 0; c < columns.Count; c++)
            if (columns[c].Encoding.FixedSize is null) header += 4;
        int at = header, sizeAt = 0;
        for (int c = 0; c < columns.Count; c++)
        {
            int size = columns[c].Encoding.FixedSize ?? (int)BinaryPrimitives.ReadUInt32LittleEndian(sample[(sizeAt++ * 4)..]);
            if (c == column) return (at, size);
            at += size;
        }
        throw new ArgumentOutOfRangeException(nameof(column));
    }

    /// <summary>
    /// Checks a sample's layout against the columns: the size header fits, the sizes add up to exactly the sample's
    /// length, and ndarray values are well formed. Null when it is, else what is wrong.
    /// </summary>
    public static string? CheckSample(ReadOnlySpan<byte> sample, IReadOnlyList<MdsColumn> columns)
    {
        int header = 0;
        for (int c = 0; c < columns.Count; c++)
            if (columns[c].Encoding.FixedSize is null) header += 4;
        if (sample.Length < header) return $"it is {sample.Length} bytes, shorter than its {header}-byte size header";
        long at = header;
        int sizeAt = 0;
        for (int c = 0; c < columns.Count; c++)
        {
            MdsEncoding enc = columns[c].Encoding;
            long size = enc.FixedSize is { } fixedSize ? fixedSize : BinaryPrimitives.ReadUInt32LittleEndian(sample[(sizeAt++ * 4)..]);
            if (at + size > sample.Length)
                return $"column '{columns[c].Name}' claims {size} bytes at offset {at} but the sample is {sample.Length} bytes";
            if (enc.Kind == MdsColumnKind.NdArray && MdsValue.TryReadArray(sample.Slice((int)at, (int)size), enc, out _) is { } bad)
                return $"column '{columns[c].Name}': {bad}";
            at += size;
        }
        if (at != sample.Length)
            return $"its columns take {at} bytes but the sample is {sample.Length} bytes";
        return null;
    }

    /// <summary>
    /// Reads and checks shard <paramref name="info"/> of the dataset in <paramref name="directory"/>, into
    /// <paramref name="reuse"/> when it is large enough.
    /// </summary>
    /// <exception cref="CorpusFormatException">Missing, truncated, corrupt or inconsistent shard.</exception>
    public static MdsShard Load(string directory, MdsShardInfo info, byte[]? reuse = null)
    {
        MdsFileInfo file = info.ZipData ?? info.RawData;
        string path = System.IO.Path.Combine(directory, file.Basename);
        string name = file.Basename;
        if (!File.Exists(path))
            throw Damaged(directory, name, "is listed in index.json but missing", "download the whole dataset");
        long length = new FileInfo(path).Length;
        if (length != file.Bytes)
            throw Damaged(directory, name, $"is {length} bytes but index.json says {file.Bytes}", "the file is truncated or from another dataset: re-download it");
        if (length > MdsIndex.MaxShardBytes)
            throw Damaged(directory, name, $"is {length} bytes; longdep reads shard files up to {MdsIndex.MaxShardBytes} bytes", "rewrite the dataset with a smaller size_limit");

        bool compressed = info.ZipData is not null;
        byte[] bytes = !compressed && reuse is not null && reuse.Length >= length ? reuse : GC.AllocateUninitializedArray<byte>((int)length);
        using (var handle = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.Read, FileOptions.SequentialScan))
        {
            int read = 0;
            while (read < length)
            {
                int n = RandomAccess.Read(handle, bytes.AsSpan(read, (int)length - read), read);
                if (n == 0) throw Damaged(directory, name, $"ended after {read} of {length} bytes while being read", "re-download it");
                read += n;
            }
        }
        if (MdsHashes.Verify(file, bytes.AsSpan(0, (int)length)) is { } mismatch)
            throw Damaged(directory, name, $"does not match its hash: {mismatch}", "the file is corrupt: re-download it");

        byte[] data = bytes;
        if (compressed)
        {
            data = Decompress(directory, name, bytes, (int)length, reuse, (int)info.RawData.Bytes);
            if (MdsHashes.Verify(info.RawData, data.AsSpan(0, (int)info.RawData.Bytes)) is { } rawMismatch)
                throw Damaged(directory, name, $"decompresses to data that does not match its hash: {rawMismatch}", "the file is corrupt: re-download it");
        }
        var shard = new MdsShard(info, path, data, (int)info.RawData.Bytes);
        if (shard.CheckLayout() is { } problem)
            throw Damaged(directory, name, problem, "the shard is damaged: re-download it or rewrite the dataset");
        return shard;
    }

    /// <summary>
    /// Decompresses exactly <paramref name="rawBytes"/> bytes (into <paramref name="reuse"/> when it is large enough).
    /// Without one, the output grows with what the data really holds, so an index that lies about the size costs no
    /// more memory than the data decompresses to.
    /// </summary>
    private static byte[] Decompress(string directory, string name, byte[] compressed, int compressedLength, byte[]? reuse, int rawBytes)
    {
        byte[] output = reuse is not null && reuse.Length >= rawBytes
            ? reuse
            : GC.AllocateUninitializedArray<byte>((int)Math.Min(rawBytes, Math.Max(8L * compressedLength, 1 << 20)));
        try
        {
            // One byte of room past the stated size tells "more data than the index says" from "exactly right".
            byte[] probe = new byte[1];
            using var input = new MemoryStream(compressed, 0, compressedLength, writable: false);
            using var stream = new ZstdSharp.DecompressionStream(input);
            int read = 0;
            while (read < rawBytes)
            {
                if (read == output.Length)
                {
                    var bigger = GC.AllocateUninitializedArray<byte>((int)Math.Min(rawBytes, 2L * output.Length));
                    output.AsSpan(0, read).CopyTo(bigger);
                    output = bigger;
                }
                int n = stream.Read(output, read, Math.Min(output.Length, rawBytes) - read);
                if (n == 0)
                    throw Damaged(directory, name, $"decompresses to {read} bytes but index.json says {rawBytes}", "the file is truncated or corrupt: re-download it");
                read += n;
            }
            if (stream.Read(probe, 0, 1) != 0)
                throw Damaged(directory, name, $"decompresses to more than the {rawBytes} bytes index.json says", "the file is corrupt: re-download it");
        }
        catch (Exception e) when (e is ZstdSharp.ZstdException or InvalidDataException or EndOfStreamException or IOException)
        {
            throw Damaged(directory, name, $"is not valid zstd data ({e.Message})", "the file is corrupt: re-download it");
        }
        return output;
    }

    /// <summary>Header, offset table and every sample; null when all is consistent.</summary>
    private string? CheckLayout()
    {
        ReadOnlySpan<byte> d = Bytes;
        uint n = BinaryPrimitives.ReadUInt32LittleEndian(d);
        if (n != Info.Samples)
            return $"says it holds {n} samples but index.json says {Info.Samples}";
        uint previous = BinaryPrimitives.ReadUInt32LittleEndian(d[4..]);
        if (previous < _headerEnd || previous > d.Length)
            return $"its first sample starts at byte {previous}, outside {_headerEnd}..{d.Length}";
        for (int i = 0; i < Count; i++)
        {
            uint next = BinaryPrimitives.ReadUInt32LittleEndian(d[(8 + 4 * i)..]);
            if (next < previous || next > d.Length)
                return $"sample {i} runs from byte {previous} to {next}, outside {previous}..{d.Length} (a wrong offset table)";
            if (CheckSample(d[(int)previous..(int)next], Info.Columns) is { } bad)
                return $"sample {i} (dataset sample {Info.FirstSample + i}) is malformed: {bad}";
            previous = next;
        }
        if (previous != d.Length)
            return $"its last sample ends at byte {previous} but the shard is {d.Length} bytes";
        return null;
    }

    private static CorpusFormatException Damaged(string directory, string name, string what, string todo) =>
        new($"MDS shard {System.IO.Path.Combine(directory, name)} {what}; {todo}.");
}
