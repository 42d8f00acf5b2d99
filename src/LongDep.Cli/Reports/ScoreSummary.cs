using LongDep.Core.Corpus;
using LongDep.Core.Records;

namespace LongDep.Cli.Reports;

/// <summary>Scores of one domain (ok records only enter the statistics).</summary>
/// <param name="Domain">The domain; <see cref="ScoreSummary.NoDomain"/> for records without one.</param>
/// <param name="Records">Records of the domain, any status.</param>
/// <param name="Scores">Scores of its ok records, ascending.</param>
public sealed record DomainScores(string Domain, long Records, double[] Scores)
{
    /// <summary>Number of ok records.</summary>
    public int Ok => Scores.Length;
    public double Median => ScoreSummary.Quantile(Scores, 0.5);
    public double Mean => Scores.Length == 0 ? double.NaN : Scores.Average();
    public double Min => Scores.Length == 0 ? double.NaN : Scores[0];
    public double Max => Scores.Length == 0 ? double.NaN : Scores[^1];
    /// <summary>First quartile (linear interpolation between order statistics, numpy's default).</summary>
    public double Q1 => ScoreSummary.Quantile(Scores, 0.25);
    /// <summary>Third quartile.</summary>
    public double Q3 => ScoreSummary.Quantile(Scores, 0.75);
}

/// <summary>
/// What a score file says, read in one streamed pass: counts by status, tokens, methods, the ok scores of each domain,
/// and the highest and lowest scored records.
/// </summary>
public sealed class ScoreSummary
{
    /// <summary>The domain shown for records without one.</summary>
    public const string NoDomain = "(no domain)";

    private readonly long[] _byStatus = new long[4];

    private ScoreSummary(string path) => Path = path;

    /// <summary>The score file.</summary>
    public string Path { get; }
    /// <summary>All records.</summary>
    public long Records { get; private set; }
    /// <summary>Sum of <c>tokens</c> over all records that have it.</summary>
    public long Tokens { get; private set; }
    /// <summary>Sum of <c>tokens</c> over ok records.</summary>
    public long OkTokens { get; private set; }
    /// <summary>The methods seen ("ladm", "prolong"), in order of first appearance.</summary>
    public IReadOnlyList<string> Methods { get; private set; } = [];
    /// <summary>Domains by median score, highest first (domains without an ok record last, by name).</summary>
    public IReadOnlyList<DomainScores> Domains { get; private set; } = [];
    /// <summary>Every ok score, ascending.</summary>
    public double[] AllScores { get; private set; } = [];
    /// <summary>The highest scored ok records, highest first (ties: lower index first).</summary>
    public IReadOnlyList<ScoreRecord> Top { get; private set; } = [];
    /// <summary>The lowest scored ok records, lowest first (ties: lower index first).</summary>
    public IReadOnlyList<ScoreRecord> Bottom { get; private set; } = [];

    /// <summary>Records with <paramref name="status"/>.</summary>
    public long Count(ScoreStatus status) => _byStatus[(int)status];

    /// <summary>"CDS", "LDS", or "score" when the file mixes methods.</summary>
    public string ScoreName => Methods.Count == 1 ? Methods[0] == "ladm" ? "CDS" : "LDS" : "score";

    /// <summary>Reads <paramref name="path"/>, keeping the <paramref name="extremes"/> highest and lowest records.</summary>
    /// <exception cref="CorpusFormatException">A malformed line (named by its number).</exception>
    public static ScoreSummary Read(string path, int extremes = 10)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(extremes);
        var s = new ScoreSummary(path);
        var domains = new Dictionary<string, (long Records, List<double> Scores)>(StringComparer.Ordinal);
        var methods = new List<string>();
        var all = new List<double>();
        // Bounded heaps: the root is the one to drop first.
        var top = new PriorityQueue<ScoreRecord, (double, long)>(Comparer<(double Score, long Index)>.Create((a, b) =>
            a.Score != b.Score ? a.Score.CompareTo(b.Score) : b.Index.CompareTo(a.Index)));
        var bottom = new PriorityQueue<ScoreRecord, (double, long)>(Comparer<(double Score, long Index)>.Create((a, b) =>
            a.Score != b.Score ? b.Score.CompareTo(a.Score) : b.Index.CompareTo(a.Index)));

        foreach (ScoreRecord r in ScoreReader.Read(path))
        {
            s.Records++;
            s._byStatus[(int)r.Status]++;
            if (r.Tokens is { } t) s.Tokens += t;
            if (!methods.Contains(r.Method)) methods.Add(r.Method);
            string domain = string.IsNullOrEmpty(r.Domain) ? NoDomain : r.Domain;
            if (!domains.TryGetValue(domain, out var d)) d = (0, new List<double>());
            d.Records++;
            if (r.Status == ScoreStatus.Ok && r.Score is { } score && double.IsFinite(score))
            {
                d.Scores.Add(score);
                all.Add(score);
                if (r.Tokens is { } ok) s.OkTokens += ok;
                if (extremes > 0)
                {
                    ScoreRecord slim = r with { Meta = null };
                    top.Enqueue(slim, (score, r.Index));
                    if (top.Count > extremes) top.Dequeue();
                    bottom.Enqueue(slim, (score, r.Index));
                    if (bottom.Count > extremes) bottom.Dequeue();
                }
            }
            domains[domain] = d;
        }

        s.Methods = methods;
        s.AllScores = [.. all.Order()];
        s.Domains = domains
            .Select(kv => new DomainScores(kv.Key, kv.Value.Records, [.. kv.Value.Scores.Order()]))
            .OrderBy(d => d.Ok == 0 ? 1 : 0)
            .ThenByDescending(d => d.Ok == 0 ? 0 : d.Median)
            .ThenBy(d => d.Domain, StringComparer.Ordinal)
            .ToArray();
        s.Top = Drain(top).OrderByDescending(r => r.Score).ThenBy(r => r.Index).ToArray();
        s.Bottom = Drain(bottom).OrderBy(r => r.Score).ThenBy(r => r.Index).ToArray();
        return s;
    }

    /// <summary>
    /// The <paramref name="p"/>-quantile of ascending <paramref name="sorted"/> values by linear interpolation between
    /// order statistics (position (n − 1)·p; numpy's default). NaN for no values.
    /// </summary>
    public static double Quantile(IReadOnlyList<double> sorted, double p)
    {
        if (sorted.Count == 0) return double.NaN;
        double h = (sorted.Count - 1) * Math.Clamp(p, 0, 1);
        int lo = (int)Math.Floor(h);
        int hi = Math.Min(lo + 1, sorted.Count - 1);
        return sorted[lo] + (h - lo) * (sorted[hi] - sorted[lo]);
    }

    private static IEnumerable<ScoreRecord> Drain(PriorityQueue<ScoreRecord, (double, long)> q)
    {
        while (q.Count > 0) yield return q.Dequeue();
    }
}
