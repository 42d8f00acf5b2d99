using LongDep.Core.Records;

namespace LongDep.Core.Selection;

/// <summary>One scored record as selection sees it.</summary>
/// <param name="Index">0-based input index.</param>
/// <param name="Status">Only ok records compete.</param>
/// <param name="Score">The score (finite for ok records).</param>
/// <param name="Tokens">The record's tokens (counted against a token budget).</param>
/// <param name="Domain">Its domain, or null.</param>
public readonly record struct ScoredItem(long Index, ScoreStatus Status, double? Score, long Tokens, string? Domain)
{
    /// <summary>The selection view of a score record (missing tokens count as 0).</summary>
    public static ScoredItem From(ScoreRecord record) =>
        new(record.Index, record.Status, record.Score, record.Tokens ?? 0, record.Domain);
}

/// <summary>
/// Ranks scored records and chooses the best (SPEC §4, LADM's filter.py). Pure functions over (index, score, tokens, domain).
/// <list type="bullet">
/// <item>Only ok records compete. Rank: score descending, ties by index ascending (deterministic; the same order a
/// stable descending sort of input-ordered records gives, as filter.py's sorted(..., reverse=True) does).</item>
/// <item>Top-percent X: floor(count · X / 100); per domain: floor(count_d · X / 100) of each domain's own ranking.</item>
/// <item>Top-k N: the N best; per domain: quotas proportional to the domains' ok counts, N · count_d / count, by the
/// largest-remainder method (floors first, then one more to the largest remainders; ties to the domain first in name order).</item>
/// <item>Token budget N (global): records are taken in rank order while the total stays ≤ N; the first record that would
/// exceed N ends the selection (no smaller record further down is taken in its place).</item>
/// <item>Token budget N per domain: filter.py's loop, literally: for p = 1 .. 100 every domain keeps
/// int(count_d · p · 0.01) (that float expression, truncated) of its ranking; the loop stops at the first p whose total
/// tokens EXCEED N and keeps that selection — so the result is over the budget by design (filter.py's quirk).
/// If no p exceeds it, p = 100 (everything) is kept.</item>
/// </list>
/// Selected indices are returned in input order.
/// </summary>
public static class Selector
{
    /// <summary>The ok items ranked best first: score descending, index ascending.</summary>
    public static ScoredItem[] Rank(IEnumerable<ScoredItem> items)
    {
        ArgumentNullException.ThrowIfNull(items);
        var ok = new List<ScoredItem>();
        var seen = new HashSet<long>();
        foreach (ScoredItem item in items)
        {
            if (!seen.Add(item.Index))
                throw new ArgumentException($"record index {item.Index} appears twice in the scores; merge score files before selecting.", nameof(items));
            if (item.Status != ScoreStatus.Ok) continue;
            if (item.Score is not { } s || !double.IsFinite(s))
                throw new ArgumentException($"record {item.Index} is ok but its score is not a finite number.", nameof(items));
            if (item.Tokens < 0)
                throw new ArgumentException($"record {item.Index} has a negative token count {item.Tokens}.", nameof(items));
            ok.Add(item);
        }
        ScoredItem[] ranked = ok.ToArray();
        Array.Sort(ranked, CompareRank);
        return ranked;
    }

    /// <summary>Chooses records by <paramref name="options"/>.</summary>
    public static SelectionResult Select(IReadOnlyList<ScoredItem> items, SelectionOptions options)
    {
        ArgumentNullException.ThrowIfNull(items);
        ArgumentNullException.ThrowIfNull(options);
        ScoredItem[] ranked = Rank(items);

        // Domains in name order (null first), each with its own ranking.
        var byDomain = new SortedDictionary<DomainKey, List<ScoredItem>>();
        var notOk = new Dictionary<DomainKey, long>();
        foreach (ScoredItem item in ranked) GetList(byDomain, new DomainKey(item.Domain)).Add(item);
        foreach (ScoredItem item in items)
        {
            if (item.Status == ScoreStatus.Ok) continue;
            var key = new DomainKey(item.Domain);
            notOk[key] = notOk.GetValueOrDefault(key) + 1;
            GetList(byDomain, key);
        }
        DomainKey[] domains = byDomain.Keys.ToArray();
        List<ScoredItem>[] lists = domains.Select(d => byDomain[d]).ToArray();

        int? percentUsed = null;
        long[] take; // per domain, a prefix length of its ranking
        if (!options.PerDomain)
        {
            long n = GlobalCount(ranked, options);
            var position = new Dictionary<DomainKey, int>();
            for (int d = 0; d < domains.Length; d++) position[domains[d]] = d;
            take = new long[domains.Length];
            for (long k = 0; k < n; k++) take[position[new DomainKey(ranked[k].Domain)]]++;
        }
        else
        {
            switch (options.Mode)
            {
                case SelectionMode.TopPercent:
                    take = lists.Select(l => PercentCount(l.Count, options.Percent)).ToArray();
                    break;
                case SelectionMode.TopK:
                    take = ProportionalQuotas(lists.Select(l => (long)l.Count).ToArray(), options.Amount);
                    break;
                case SelectionMode.TokenBudget:
                    take = FilterPyBudget(lists, options.Amount, out int p);
                    percentUsed = p;
                    break;
                default:
                    throw new ArgumentOutOfRangeException(nameof(options));
            }
        }

        var selected = new List<long>();
        var summaries = new List<DomainSelection>(domains.Length);
        long tokensBefore = 0, tokensAfter = 0;
        double? cut = null;
        for (int d = 0; d < domains.Length; d++)
        {
            List<ScoredItem> list = lists[d];
            long before = 0, after = 0;
            foreach (ScoredItem item in list) before += item.Tokens;
            for (int k = 0; k < take[d]; k++)
            {
                selected.Add(list[k].Index);
                after += list[k].Tokens;
            }
            double? domainCut = take[d] > 0 ? list[(int)take[d] - 1].Score : null;
            if (domainCut is { } c && (cut is null || c < cut)) cut = c;
            summaries.Add(new DomainSelection(domains[d].Name, list.Count, before, take[d], after, domainCut, notOk.GetValueOrDefault(domains[d])));
            tokensBefore += before;
            tokensAfter += after;
        }

        long[] indices = selected.ToArray();
        Array.Sort(indices);
        var summary = new SelectionSummary(options, summaries, ranked.Length, tokensBefore, indices.Length, tokensAfter, cut,
            items.Count - ranked.Length, percentUsed);
        return new SelectionResult(indices, summary);
    }

    /// <summary>floor(count · X / 100).</summary>
    public static long PercentCount(long count, double percent) => (long)Math.Floor(count * percent / 100.0);

    /// <summary>filter.py's per-domain share at percentage p: int(len · p · 0.01), evaluated as Python does (integer product, then a float multiply, truncated).</summary>
    public static long FilterPyCount(long count, int percent) => (long)((double)(count * percent) * 0.01);

    /// <summary>
    /// Largest-remainder quotas: domain d gets floor(n · c_d / C), then the n − Σ floors leftover go one each to the
    /// domains with the largest remainders (n · c_d mod C), ties to the lower domain position. n ≥ C takes everything.
    /// </summary>
    public static long[] ProportionalQuotas(long[] counts, long n)
    {
        long total = counts.Sum();
        var quotas = new long[counts.Length];
        if (n >= total) return (long[])counts.Clone();
        if (total == 0) return quotas;
        var remainders = new Int128[counts.Length];
        long assigned = 0;
        for (int d = 0; d < counts.Length; d++)
        {
            Int128 product = (Int128)n * counts[d];
            quotas[d] = (long)(product / total);
            remainders[d] = product % total;
            assigned += quotas[d];
        }
        int[] order = Enumerable.Range(0, counts.Length)
            .OrderByDescending(d => remainders[d]).ThenBy(d => d).ToArray();
        for (int k = 0; k < n - assigned; k++) quotas[order[k]]++;
        return quotas;
    }

    private static long GlobalCount(ScoredItem[] ranked, SelectionOptions options)
    {
        switch (options.Mode)
        {
            case SelectionMode.TopPercent:
                return PercentCount(ranked.Length, options.Percent);
            case SelectionMode.TopK:
                return Math.Min(options.Amount, ranked.Length);
            case SelectionMode.TokenBudget:
                long total = 0;
                for (int k = 0; k < ranked.Length; k++)
                {
                    if (total + ranked[k].Tokens > options.Amount) return k;
                    total += ranked[k].Tokens;
                }
                return ranked.Length;
            default:
                throw new ArgumentOutOfRangeException(nameof(options));
        }
    }

    /// <summary>filter.py: for p = 1..100, stop at the first p whose per-domain selection exceeds the budget, keeping it.</summary>
    private static long[] FilterPyBudget(List<ScoredItem>[] lists, long budget, out int percent)
    {
        var prefixTokens = new long[lists.Length][];
        for (int d = 0; d < lists.Length; d++)
        {
            prefixTokens[d] = new long[lists[d].Count + 1];
            for (int k = 0; k < lists[d].Count; k++) prefixTokens[d][k + 1] = prefixTokens[d][k] + lists[d][k].Tokens;
        }

        var take = new long[lists.Length];
        for (percent = 1; percent <= 100; percent++)
        {
            long total = 0;
            for (int d = 0; d < lists.Length; d++)
            {
                take[d] = FilterPyCount(lists[d].Count, percent);
                total += prefixTokens[d][take[d]];
            }
            if (total > budget) return take;
        }
        percent = 100;
        return take;
    }

    private static int CompareRank(ScoredItem a, ScoredItem b)
    {
        int byScore = b.Score!.Value.CompareTo(a.Score!.Value);
        return byScore != 0 ? byScore : a.Index.CompareTo(b.Index);
    }

    private static List<ScoredItem> GetList(SortedDictionary<DomainKey, List<ScoredItem>> map, DomainKey key)
    {
        if (!map.TryGetValue(key, out List<ScoredItem>? list)) map[key] = list = [];
        return list;
    }

    /// <summary>A domain name usable as a dictionary key, null included; orders null first, then ordinal.</summary>
    private readonly record struct DomainKey(string? Name) : IComparable<DomainKey>
    {
        public int CompareTo(DomainKey other) => string.CompareOrdinal(Name, other.Name);
    }
}
