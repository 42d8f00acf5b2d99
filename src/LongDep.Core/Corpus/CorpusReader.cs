using System.IO.Compression;
using LongDep.Core.Corpus.Mds;
using LongDep.Core.Records;

namespace LongDep.Core.Corpus;

/// <summary>Input formats, chosen by file extension.</summary>
public enum CorpusFormat
{
    /// <summary>.jsonl: one JSON object per line.</summary>
    Jsonl,
    /// <summary>.jsonl.zst: zstd-compressed JSON lines (the Pile's format).</summary>
    JsonlZstd,
    /// <summary>.jsonl.gz: gzip-compressed JSON lines.</summary>
    JsonlGzip,
    /// <summary>.parquet: one record per row (columns text / input_ids / id / meta, ...).</summary>
    Parquet,
    /// <summary>A MosaicML Streaming (MDS) dataset folder: index.json + shards; one record per sample.</summary>
    Mds,
}

/// <summary>
/// Streams corpus records: memory stays bounded by one line (capped), one Parquet row group or one MDS shard, whatever the corpus size.
/// Each record keeps the bytes of its JSON line (for Parquet: a JSON line built from the row) so that selection can
/// copy chosen records unchanged and <see cref="InputRecord.Hash"/> is stable.
/// </summary>
public static class CorpusReader
{
    /// <summary>Longest line accepted by default (256 MiB); longer ones become <c>bad_record</c>s.</summary>
    public const int DefaultMaxLineBytes = 256 << 20;

    /// <summary>The extensions <see cref="DetectFormat"/> accepts.</summary>
    public const string SupportedExtensions = ".jsonl, .jsonl.zst, .jsonl.gz, .parquet";

    /// <summary>The domain path used for MDS datasets when none is given: their <c>domain</c> column.</summary>
    public const string MdsDomainField = "domain";

    /// <summary>The format of <paramref name="path"/> from its extension (case-insensitive).</summary>
    /// <exception cref="CorpusFormatException">For '-' (standard input) or an unknown extension.</exception>
    public static CorpusFormat DetectFormat(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        if (path == "-")
            throw new CorpusFormatException($"reading the corpus from standard input ('-') is not supported; give a file ending in {SupportedExtensions}.");
        if (Directory.Exists(path))
        {
            if (MdsIndex.IsDataset(path)) return CorpusFormat.Mds;
            throw new CorpusFormatException($"'{path}' is a folder without {MdsIndex.FileName}; give a corpus file ({SupportedExtensions}) or an MDS dataset folder.");
        }
        string name = Path.GetFileName(path).ToLowerInvariant();
        if (name.EndsWith(".jsonl.zst", StringComparison.Ordinal)) return CorpusFormat.JsonlZstd;
        if (name.EndsWith(".jsonl.gz", StringComparison.Ordinal)) return CorpusFormat.JsonlGzip;
        if (name.EndsWith(".jsonl", StringComparison.Ordinal)) return CorpusFormat.Jsonl;
        if (name.EndsWith(".parquet", StringComparison.Ordinal)) return CorpusFormat.Parquet;
        throw new CorpusFormatException($"cannot tell the format of '{path}' from its name; supported: {SupportedExtensions} (rename the file to one of these), or an MDS dataset folder.");
    }

    /// <summary>True when <paramref name="path"/> is an existing corpus file or folder (an MDS dataset is a folder).</summary>
    public static bool InputExists(string path) => File.Exists(path) || Directory.Exists(path);

    /// <summary>
    /// The domain path to use for <paramref name="path"/> when the user names none: <c>domain</c> for an MDS dataset
    /// (the column its writers use), else <paramref name="fallback"/>.
    /// </summary>
    public static string DefaultDomainField(string path, string fallback) =>
        Directory.Exists(path) && MdsIndex.IsDataset(path) ? MdsDomainField : fallback;

    /// <summary>
    /// Opens <paramref name="path"/> and streams its raw records in input order. The format and the file's existence
    /// are checked now; the file is read as the sequence is enumerated.
    /// </summary>
    /// <exception cref="CorpusFormatException">Unsupported extension now; truncated or corrupt compressed data while enumerating.</exception>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    public static IEnumerable<RawRecord> Open(string path, RecordFieldOptions? fields = null, int maxLineBytes = DefaultMaxLineBytes,
        CorpusPosition? position = null)
    {
        CorpusFormat format = DetectFormat(path);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxLineBytes, 1);
        if (format == CorpusFormat.Mds)
        {
            MdsDataset dataset = MdsDataset.Open(path);
            var progress = new MdsProgress();
            position?.Attach(progress);
            return MdsRecords.Read(dataset, progress);
        }
        if (!File.Exists(path))
            throw new FileNotFoundException($"input file '{path}' does not exist.", path);
        fields ??= RecordFieldOptions.Default;
        return format == CorpusFormat.Parquet
            ? ParquetRecords.Read(path, fields)
            : ReadJsonl(path, format, maxLineBytes, position);
    }

    /// <summary><see cref="Open"/> followed by <see cref="RecordParser.Parse"/> (on this thread).</summary>
    public static IEnumerable<InputRecord> OpenParsed(string path, RecordFieldOptions? fields = null, int maxLineBytes = DefaultMaxLineBytes)
    {
        var parser = new RecordParser(fields);
        return Open(path, fields, maxLineBytes).Select(parser.Parse);
    }

    /// <summary>Opens the decompressed byte stream of a JSON-lines file.</summary>
    internal static Stream OpenDecompressed(string path, CorpusFormat format, CorpusPosition? position = null)
    {
        var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, FileOptions.SequentialScan);
        position?.Attach(file);
        try
        {
            return format switch
            {
                CorpusFormat.Jsonl => file,
                CorpusFormat.JsonlZstd => new ZstdSharp.DecompressionStream(file),
                CorpusFormat.JsonlGzip => new GzipEndGuardStream(file),
                _ => throw new ArgumentOutOfRangeException(nameof(format)),
            };
        }
        catch
        {
            file.Dispose();
            throw;
        }
    }

    private static IEnumerable<RawRecord> ReadJsonl(string path, CorpusFormat format, int maxLineBytes, CorpusPosition? position)
    {
        using Stream stream = OpenDecompressed(path, format, position);
        using IEnumerator<ReadLine> lines = new LineReader(stream, maxLineBytes).ReadLines().GetEnumerator();
        long index = 0;
        while (true)
        {
            ReadLine line;
            try
            {
                if (!lines.MoveNext()) yield break;
                line = lines.Current;
            }
            catch (Exception e) when (IsDecodeFailure(e))
            {
                throw Truncated(path, index, e);
            }

            if (!line.Terminated && line.TooLongBytes is null && !IsCompleteJson(line.Bytes))
                throw Truncated(path, index, new EndOfStreamException($"its last line ({line.LineNumber}) has no line end and is not complete JSON"));
            yield return line.TooLongBytes is { } length
                ? new RawRecord(index, ReadOnlyMemory<byte>.Empty,
                    $"line {line.LineNumber} is {length} bytes long, over the {maxLineBytes}-byte limit; split the document or raise the limit") { EndOffset = line.EndOffset }
                : new RawRecord(index, line.Bytes) { EndOffset = line.EndOffset };
            index++;
        }
    }

    /// <summary>True when <paramref name="line"/> is one whole JSON value (a final line cut short is not).</summary>
    private static bool IsCompleteJson(byte[] line)
    {
        try
        {
            var reader = new System.Text.Json.Utf8JsonReader(line);
            reader.Read();
            reader.Skip();
            return true;
        }
        catch (System.Text.Json.JsonException)
        {
            return false;
        }
    }

    private static bool IsDecodeFailure(Exception e) =>
        e is GzipTruncatedException or EndOfStreamException or InvalidDataException or ZstdSharp.ZstdException;

    internal static CorpusFormatException Truncated(string path, long recordsRead, Exception cause)
    {
        string name = Path.GetFileName(path);
        string where = recordsRead == 0 ? "before its first record" : $"after record {recordsRead - 1} ({recordsRead} records read)";
        return new CorpusFormatException(
            $"{name} is truncated or corrupt {where}: {cause.Message}. The records before this point are intact; re-download or re-compress the file to read the rest.",
            cause)
        { RecordsBefore = recordsRead };
    }
}

/// <summary>How far a reader has got through its file (compressed bytes for .zst/.gz), for progress and ETA.</summary>
public sealed class CorpusPosition
{
    private FileStream? _file;
    private MdsProgress? _samples;

    internal void Attach(FileStream file) => Volatile.Write(ref _file, file);

    internal void Attach(MdsProgress samples) => Volatile.Write(ref _samples, samples);

    /// <summary>Fraction of the file (for MDS: of the samples) read, 0..1; null before reading starts or for Parquet input.</summary>
    public double? Fraction
    {
        get
        {
            if (Volatile.Read(ref _samples) is { } samples) return samples.Fraction;
            FileStream? f = Volatile.Read(ref _file);
            try
            {
                return f is null || f.Length == 0 ? null : Math.Clamp((double)f.Position / f.Length, 0, 1);
            }
            catch (ObjectDisposedException)
            {
                return 1.0;
            }
        }
    }
}
