using LongDep.Core.Corpus;
using LongDep.Core.Records;

namespace LongDep.Core.Pipeline;

/// <summary>
/// What an existing output already holds: a torn last line is cut off, the settings header is compared with this
/// run's, the complete records are checked to be the first records of this input (same index, same input hash, same
/// method), and the run continues after them. Everything is read through the run's own locked handle.
/// </summary>
internal sealed class ResumeState
{
    private readonly string _output;
    private readonly List<(long Index, ulong? Hash)> _done;

    private ResumeState(string output, List<(long, ulong?)> done, bool hasHeader)
    {
        _output = output;
        _done = done;
        HasHeader = hasHeader;
    }

    /// <summary>Nothing to resume (a new output, or a stream).</summary>
    public static ResumeState None { get; } = new("", [], false);

    /// <summary>Records already in the output.</summary>
    public long Completed => _done.Count;

    /// <summary>The output already starts with its settings header.</summary>
    public bool HasHeader { get; }

    /// <summary>Index of the last record already in the output, or −1.</summary>
    public long LastIndex => _done.Count == 0 ? -1 : _done[^1].Index;

    /// <summary>Indexes of the records already in the output.</summary>
    public IEnumerable<long> Indices => _done.Select(d => d.Index);

    /// <summary>Reads (or, with --overwrite, empties) the output open in <paramref name="file"/> and leaves it positioned at its end.</summary>
    public static ResumeState Prepare(FileStream file, ScoreRunOptions options, ScoreSettings settings)
    {
        string path = options.OutputPath;
        if (options.Overwrite || file.Length == 0)
        {
            file.SetLength(0);
            file.Position = 0;
            return new ResumeState(path, [], false);
        }
        TrimIncompleteTail(file);
        file.Position = 0;
        var done = new List<(long, ulong?)>();
        ScoreHeader? header = null;
        foreach (ReadLine line in new LineReader(file, ScoreReader.MaxLineBytes).ReadLines())
        {
            if (line.TooLongBytes is { } length)
                throw new ScoreRunException($"{path} line {line.LineNumber} is {length} bytes long; it is not a score file: use another --output or --overwrite");
            if (ScoreHeader.IsHeader(line.Bytes))
            {
                if (line.LineNumber != 1)
                    throw new ScoreRunException($"{path} line {line.LineNumber} is a second settings header (files joined by hand?); use another --output or --overwrite");
                header = ScoreHeader.Parse(line.Bytes, path);
                CheckHeader(header, options, path);
                continue;
            }
            ScoreRecord r = ScoreReader.Parse(line.Bytes, path, line.LineNumber);
            if (r.Method != settings.MethodName)
                throw new ScoreRunException($"{path} line {line.LineNumber} was scored with method '{r.Method}', not '{settings.MethodName}'; use another --output or --overwrite");
            done.Add((r.Index, r.InputHash));
        }
        if (header is null && options.Header is not null && done.Count > 0)
            throw new ScoreRunException($"{path} holds {done.Count} records but no settings header (written by an older longdep or another tool), so a resume cannot tell whether it was scored with these settings; use another --output or --overwrite");
        if (header is null && done.Count == 0)
        {
            file.SetLength(0); // only blank lines: start it afresh, header first
        }
        file.Position = file.Length;
        return new ResumeState(path, done, header is not null);
    }

    private static void CheckHeader(ScoreHeader found, ScoreRunOptions options, string path)
    {
        if (options.Header is not { } mine) return;
        var diffs = found.Differences(mine);
        if (diffs.Count > 0)
            throw new ScoreRunException($"{path} was scored with other settings ({string.Join("; ", diffs)}); to resume it, run with its settings; to start over use --overwrite, or give another --output");
        if (found.ShardCount != options.ShardCount || found.ShardIndex != options.ShardIndex)
            throw new ScoreRunException($"{path} holds shard {found.ShardIndex}/{found.ShardCount}, not {options.ShardIndex}/{options.ShardCount}; give each shard its own --output, or use --overwrite");
    }

    /// <summary>Removes a final line that has no '\n' (a record cut mid-write).</summary>
    private static void TrimIncompleteTail(FileStream file)
    {
        long length = file.Length;
        if (length == 0) return;
        var buffer = new byte[1 << 16];
        long end = length;
        while (end > 0)
        {
            int n = (int)Math.Min(buffer.Length, end);
            file.Position = end - n;
            file.ReadExactly(buffer, 0, n);
            int k = Array.LastIndexOf(buffer, (byte)'\n', n - 1, n);
            if (k >= 0)
            {
                long cut = end - n + k + 1;
                if (cut < length) file.SetLength(cut);
                return;
            }
            end -= n;
        }
        file.SetLength(0);
    }

    /// <summary>Checks that the <paramref name="position"/>-th record of this shard is the one the output holds there.</summary>
    public void Verify(long position, RawRecord raw)
    {
        var (index, hash) = _done[(int)position];
        if (index != raw.Index)
            throw new ScoreRunException($"{_output} record {position} has index {index} where the input has {raw.Index}; it was written for another input or shard: use another --output or --overwrite");
        ulong actual = raw.Error is null ? Fnv1a64.Hash(raw.Line.Span) : 0;
        if (hash is { } h && raw.Error is null && h != actual)
            throw new ScoreRunException($"{_output} record {position} (index {index}) was scored from a different input record (hash {h:x16}, input now {actual:x16}); use another --output or --overwrite");
    }
}
