using System.Text.Json;

namespace LongDep.Core.Corpus;

/// <summary>What <see cref="ScoreMerge.Merge"/> found.</summary>
/// <param name="Written">Records written.</param>
/// <param name="Missing">Indexes absent between 0 and the last expected index (first 1000 listed), and how many in all.</param>
/// <param name="Duplicates">Indexes found more than once (the first occurrence is kept).</param>
/// <remarks>Duplicates are indexes found again with different bytes; an index found again with the same bytes (a shard
/// given twice, a task rerun under another file name) is only counted in <see cref="SameDuplicates"/>.</remarks>
public sealed record MergeReport(long Written, IReadOnlyList<long> Missing, long MissingCount, IReadOnlyList<long> Duplicates)
{
    public bool Complete => MissingCount == 0 && Duplicates.Count == 0 && ShardsWithoutFile.Count == 0;

    /// <summary>Indexes found again with the same bytes.</summary>
    public long SameDuplicates { get; init; }

    /// <summary>N of the shards' <c>--shard i/N</c>, from their settings lines (null when unsharded or unknown).</summary>
    public int? ShardCount { get; init; }

    /// <summary>Shards (0..N−1) that have records missing.</summary>
    public IReadOnlyList<int> ShardsMissingRecords { get; init; } = [];

    /// <summary>Shards (0..N−1) that no given file holds.</summary>
    public IReadOnlyList<int> ShardsWithoutFile { get; init; } = [];

    /// <summary>The settings line written at the top of the merged file (null when the shards have none).</summary>
    public ScoreHeader? Header { get; init; }
}

/// <summary>Joins the score files of shards (<c>--shard i/N</c>) into one file in input order, copying lines unchanged.</summary>
public static class ScoreMerge
{
    private const int Listed = 1000;

    /// <param name="inputs">Shard outputs; each in ascending index order, as <c>longdep score</c> writes them.</param>
    /// <param name="output">Where the merged lines go.</param>
    /// <param name="expectedRecords">The input's record count when known, so missing records at the end are reported too.</param>
    public static MergeReport Merge(IReadOnlyList<string> inputs, Stream output, long? expectedRecords = null)
    {
        if (inputs.Count == 0) throw new ArgumentException("no score files to merge", nameof(inputs));
        var sources = new List<Source>();
        try
        {
            foreach (string path in inputs) sources.Add(Open(path));
            ScoreHeader? header = CheckHeaders(sources);
            int? shardCount = header is not null && sources[0].Header!.ShardCount > 1 ? sources[0].Header!.ShardCount : null;
            if (header is not null)
            {
                output.Write(header.Format());
                output.WriteByte((byte)'\n');
            }
            var queue = new PriorityQueue<int, (long Index, int Source)>();
            for (int s = 0; s < sources.Count; s++) Advance(sources[s], s, queue);
            var missing = new List<long>();
            var duplicates = new List<long>();
            var shardsMissing = new SortedSet<int>();
            long missingCount = 0, next = 0, written = 0, same = 0;
            byte[]? last = null;
            void Missing(long gap)
            {
                if (missing.Count < Listed) missing.Add(gap);
                missingCount++;
                if (shardCount is { } n) shardsMissing.Add((int)(gap % n));
            }
            while (queue.TryDequeue(out int s, out var key))
            {
                var src = sources[s];
                if (key.Index < next)
                {
                    if (key.Index == next - 1 && last is not null && src.Current!.AsSpan().SequenceEqual(last)) same++;
                    else if (duplicates.Count < Listed) duplicates.Add(key.Index);
                }
                else
                {
                    for (long gap = next; gap < key.Index; gap++) Missing(gap);
                    output.Write(src.Current!);
                    output.WriteByte((byte)'\n');
                    last = src.Current;
                    written++;
                    next = key.Index + 1;
                }
                Advance(src, s, queue);
            }
            if (expectedRecords is { } expected)
            {
                for (long gap = next; gap < expected; gap++) Missing(gap);
            }
            var without = new List<int>();
            if (shardCount is { } count)
            {
                var held = sources.Select(x => x.Header!.ShardIndex).ToHashSet();
                for (int i = 0; i < count; i++)
                    if (!held.Contains(i)) without.Add(i);
            }
            return new MergeReport(written, missing, missingCount, duplicates)
            {
                SameDuplicates = same,
                ShardCount = shardCount,
                ShardsMissingRecords = shardsMissing.ToArray(),
                ShardsWithoutFile = without,
                Header = header,
            };
        }
        finally
        {
            foreach (var s in sources) s.Dispose();
        }
    }

    /// <summary>The merged file's settings line; throws unless every file has the same settings (or none has any).</summary>
    private static ScoreHeader? CheckHeaders(List<Source> sources)
    {
        Source first = sources[0];
        foreach (Source other in sources)
        {
            if ((other.Header is null) != (first.Header is null))
            {
                var (with, without) = other.Header is null ? (first, other) : (other, first);
                throw new CorpusFormatException($"{without.Path} has no settings line but {with.Path} has one: they are not shards of one run (rescore the older one)");
            }
            if (first.Header is null) continue;
            var diffs = first.Header.Differences(other.Header!, $"in {System.IO.Path.GetFileName(first.Path)}", $"in {System.IO.Path.GetFileName(other.Path)}");
            if (diffs.Count > 0)
                throw new CorpusFormatException($"{other.Path} was scored with other settings than {first.Path} ({string.Join("; ", diffs)}); merge only the shards of one run");
            if (other.Header!.ShardCount != first.Header.ShardCount)
                throw new CorpusFormatException($"{other.Path} is shard {other.Header.ShardIndex}/{other.Header.ShardCount} but {first.Path} is shard {first.Header.ShardIndex}/{first.Header.ShardCount}: merge the shards of one split");
        }
        return first.Header?.ForShard(0, 1);
    }

    private sealed class Source(string path, FileStream file, IEnumerator<ReadLine> lines) : IDisposable
    {
        public ScoreHeader? Header;
        public string Path { get; } = path;
        public IEnumerator<ReadLine> Lines { get; } = lines;
        public byte[]? Current;
        public long LastIndex = -1;

        public void Dispose()
        {
            Lines.Dispose();
            file.Dispose();
        }
    }

    private static Source Open(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"score file '{path}' does not exist.", path);
        var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite, 1 << 16, FileOptions.SequentialScan);
        var source = new Source(path, file, new LineReader(file, ScoreReader.MaxLineBytes).ReadLines().GetEnumerator());
        source.Header = ScoreReader.ReadHeader(file, path);
        file.Position = 0;
        source.Lines.Dispose();
        return new Source(path, file, new LineReader(file, ScoreReader.MaxLineBytes).ReadLines().GetEnumerator()) { Header = source.Header };
    }

    private static void Advance(Source src, int s, PriorityQueue<int, (long, int)> queue)
    {
        if (!src.Lines.MoveNext())
        {
            src.Current = null;
            return;
        }
        ReadLine line = src.Lines.Current;
        if (line.TooLongBytes is null && ScoreHeader.IsHeader(line.Bytes))
        {
            if (line.LineNumber == 1)
            {
                Advance(src, s, queue);
                return;
            }
            throw new CorpusFormatException($"{src.Path} line {line.LineNumber} is a second settings line (files joined by hand?); merge the shard files themselves");
        }
        if (line.TooLongBytes is not null)
            throw new CorpusFormatException($"{src.Path} line {line.LineNumber} is longer than {ScoreReader.MaxLineBytes} bytes; not a score file?");
        long index = IndexOf(line.Bytes, src.Path, line.LineNumber);
        if (index <= src.LastIndex)
            throw new CorpusFormatException($"{src.Path} line {line.LineNumber}: index {index} after {src.LastIndex}; a score file is in ascending index order (was it edited or concatenated?)");
        src.LastIndex = index;
        src.Current = line.Bytes;
        queue.Enqueue(s, (index, s));
    }

    private static long IndexOf(byte[] line, string path, long lineNumber)
    {
        try
        {
            var reader = new Utf8JsonReader(line);
            if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject) throw new JsonException("not a JSON object");
            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                bool isIndex = reader.ValueTextEquals("index"u8);
                reader.Read();
                if (isIndex) return reader.GetInt64();
                reader.Skip();
            }
            throw new JsonException("no \"index\" field");
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException or FormatException)
        {
            throw new CorpusFormatException($"{path} line {lineNumber} is not a score record ({e.Message}); if a run was cut mid-line, rerun it to repair the file");
        }
    }
}
