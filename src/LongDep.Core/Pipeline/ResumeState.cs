using LongDep.Core.Corpus;
using LongDep.Core.Records;

namespace LongDep.Core.Pipeline;

/// <summary>
/// What an existing output already holds: a torn last line is cut off, the complete records are checked to be the
/// first records of this input (same index, same input hash, same method), and the run continues after them.
/// </summary>
internal sealed class ResumeState
{
    private readonly string _output;
    private readonly List<(long Index, ulong? Hash)> _done;

    private ResumeState(string output, List<(long, ulong?)> done)
    {
        _output = output;
        _done = done;
    }

    public long Completed => _done.Count;

    public static ResumeState Prepare(ScoreRunOptions options, ScoreSettings settings)
    {
        string path = options.OutputPath;
        string? dir = Path.GetDirectoryName(Path.GetFullPath(path));
        if (dir is not null && !Directory.Exists(dir))
            throw new ScoreRunException($"the output folder '{dir}' does not exist; create it first");
        if (options.Overwrite || !File.Exists(path))
        {
            File.WriteAllBytes(path, []);
            return new ResumeState(path, []);
        }
        ScoreReader.TrimIncompleteTail(path);
        var done = new List<(long, ulong?)>();
        long line = 0;
        foreach (ScoreRecord r in ScoreReader.Read(path))
        {
            line++;
            if (r.Method != settings.MethodName)
                throw new ScoreRunException($"{path} line {line} was scored with method '{r.Method}', not '{settings.MethodName}'; use another --output or --overwrite");
            done.Add((r.Index, r.InputHash));
        }
        return new ResumeState(path, done);
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
