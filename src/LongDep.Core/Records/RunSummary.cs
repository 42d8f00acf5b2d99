namespace LongDep.Core.Records;

/// <summary>Counts of a scoring run by status, tokens and time. Thread-safe.</summary>
public sealed class RunSummary
{
    private readonly object _gate = new();
    private readonly long[] _byStatus = new long[4];
    private long _tokens;

    /// <summary>Wall-clock seconds of the run (set by the caller).</summary>
    public double Seconds { get; set; }

    /// <summary>Counts one written record.</summary>
    public void Add(ScoreRecord record)
    {
        ArgumentNullException.ThrowIfNull(record);
        lock (_gate)
        {
            _byStatus[(int)record.Status]++;
            if (record.Status == ScoreStatus.Ok && record.Tokens is { } t) _tokens += t;
        }
    }

    /// <summary>Records with the given status.</summary>
    public long Count(ScoreStatus status)
    {
        lock (_gate) return _byStatus[(int)status];
    }

    /// <summary>All records.</summary>
    public long Records
    {
        get { lock (_gate) return _byStatus.Sum(); }
    }

    /// <summary>Tokens of the ok records.</summary>
    public long Tokens
    {
        get { lock (_gate) return _tokens; }
    }

    /// <summary>Records per second (0 before <see cref="Seconds"/> is set).</summary>
    public double RecordsPerSecond => Seconds > 0 ? Records / Seconds : 0;

    /// <summary>Tokens of ok records per second (0 before <see cref="Seconds"/> is set).</summary>
    public double TokensPerSecond => Seconds > 0 ? Tokens / Seconds : 0;

    /// <summary>One line: counts by status, tokens and rates.</summary>
    public override string ToString() =>
        $"{Records} records: {Count(ScoreStatus.Ok)} ok, {Count(ScoreStatus.TooShort)} too_short, " +
        $"{Count(ScoreStatus.BadRecord)} bad_record, {Count(ScoreStatus.NumericError)} numeric_error; " +
        $"{Tokens} tokens in {Seconds:F1} s ({RecordsPerSecond:F2} records/s, {TokensPerSecond:F0} tokens/s)";
}
