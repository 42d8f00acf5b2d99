using System.Text.Json;

namespace LongDep.Core.Corpus;

/// <summary>What <see cref="ScoreMerge.Merge"/> found.</summary>
/// <param name="Written">Records written.</param>
/// <param name="Missing">Indexes absent between 0 and the last expected index (first 1000 listed), and how many in all.</param>
/// <param name="Duplicates">Indexes found more than once (the first occurrence is kept).</param>
public sealed record MergeReport(long Written, IReadOnlyList<long> Missing, long MissingCount, IReadOnlyList<long> Duplicates)
{
    public bool Complete => MissingCount == 0 && Duplicates.Count == 0;
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
        var sources = inputs.Select(Open).ToList();
        try
        {
            var queue = new PriorityQueue<int, (long Index, int Source)>();
            for (int s = 0; s < sources.Count; s++) Advance(sources[s], s, queue);
            var missing = new List<long>();
            var duplicates = new List<long>();
            long missingCount = 0, next = 0, written = 0;
            while (queue.TryDequeue(out int s, out var key))
            {
                var src = sources[s];
                if (key.Index < next)
                {
                    if (duplicates.Count < Listed) duplicates.Add(key.Index);
                }
                else
                {
                    for (long gap = next; gap < key.Index; gap++)
                    {
                        if (missing.Count < Listed) missing.Add(gap);
                        missingCount++;
                    }
                    output.Write(src.Current!);
                    output.WriteByte((byte)'\n');
                    written++;
                    next = key.Index + 1;
                }
                Advance(src, s, queue);
            }
            if (expectedRecords is { } n)
            {
                for (long gap = next; gap < n; gap++)
                {
                    if (missing.Count < Listed) missing.Add(gap);
                    missingCount++;
                }
            }
            return new MergeReport(written, missing, missingCount, duplicates);
        }
        finally
        {
            foreach (var s in sources) s.Dispose();
        }
    }

    private sealed class Source(string path, FileStream file, IEnumerator<ReadLine> lines) : IDisposable
    {
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
        var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, FileOptions.SequentialScan);
        return new Source(path, file, new LineReader(file, ScoreReader.MaxLineBytes).ReadLines().GetEnumerator());
    }

    private static void Advance(Source src, int s, PriorityQueue<int, (long, int)> queue)
    {
        if (!src.Lines.MoveNext())
        {
            src.Current = null;
            return;
        }
        ReadLine line = src.Lines.Current;
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
