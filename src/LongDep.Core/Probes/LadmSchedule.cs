namespace LongDep.Core.Probes;

/// <summary>One LADM query span: queries [Start, End) read keys [0, Start); PFS is taken at each interval.</summary>
/// <param name="Start">First query token of the span.</param>
/// <param name="End">One past the last query token, min(Start + l, T).</param>
/// <param name="Intervals">iv = interval, 2*interval, ... while Start - iv &gt;= keep; PFS(iv) sums key columns [Start - iv, End - iv).</param>
public sealed record LadmSpan(int Start, int End, int[] Intervals);

/// <summary>
/// The loop structure of LADM's reference code (SPEC §2): which query spans are measured and at which intervals.
/// Probes measure exactly these spans; the scorer turns the measurements into AFS and CDS.
/// </summary>
public sealed class LadmSchedule
{
    public int T { get; }
    public int Chunk { get; }
    public int Interval { get; }
    public int Stride { get; }
    public int Keep { get; }
    public IReadOnlyList<LadmSpan> Spans { get; }

    private LadmSchedule(int t, int chunk, int interval, int stride, int keep, IReadOnlyList<LadmSpan> spans)
    {
        T = t; Chunk = chunk; Interval = interval; Stride = stride; Keep = keep; Spans = spans;
    }

    /// <summary>Builds the schedule for a sample of <paramref name="t"/> tokens (already truncated to the window).</summary>
    public static LadmSchedule Create(int t, int chunk, int dAfs, int dCds)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(t);
        ArgumentOutOfRangeException.ThrowIfLessThan(chunk, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(dAfs, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(dCds, 1);
        int interval = checked(chunk * dAfs);
        int stride = checked(chunk * dCds);
        int keep = chunk;
        long bound = keep + 4L * interval; // the reference uses 4, not d_afs
        var spans = new List<LadmSpan>();
        for (long start = (long)t - chunk; start > bound; start -= stride)
        {
            int s = (int)start;
            int end = Math.Min(s + chunk, t);
            var ivs = new List<int>();
            for (long iv = interval; iv < (long)t + interval; iv += interval)
            {
                if (s - iv < keep) break;
                ivs.Add((int)iv);
            }
            spans.Add(new LadmSpan(s, end, ivs.ToArray()));
        }
        return new LadmSchedule(t, chunk, interval, stride, keep, spans);
    }

    /// <summary>The smallest T for which at least one span passes the loop bound.</summary>
    public static int MinimumTokens(int chunk, int dAfs) => checked(chunk + 4 * chunk * dAfs + chunk + 1);
}
