namespace LongDep.Core.Selection;

/// <summary>How many records <c>longdep select</c> keeps (SPEC §4).</summary>
public enum SelectionMode
{
    /// <summary><c>--top-percent X</c>: floor(count · X / 100) of the ranked records.</summary>
    TopPercent,
    /// <summary><c>--top-k N</c>: the N best records.</summary>
    TopK,
    /// <summary><c>--token-budget N</c>: the best records up to N tokens (see <see cref="Selector"/> for the exact rule).</summary>
    TokenBudget,
}

/// <summary>A selection request. Create with <see cref="TopPercent"/>, <see cref="TopK"/> or <see cref="TokenBudget"/>.</summary>
public sealed record SelectionOptions
{
    /// <summary>The mode.</summary>
    public SelectionMode Mode { get; }
    /// <summary>X of --top-percent (0 &lt; X ≤ 100).</summary>
    public double Percent { get; }
    /// <summary>N of --top-k or of --token-budget.</summary>
    public long Amount { get; }
    /// <summary>--per-domain: every domain keeps its share.</summary>
    public bool PerDomain { get; }

    private SelectionOptions(SelectionMode mode, double percent, long amount, bool perDomain)
    {
        Mode = mode; Percent = percent; Amount = amount; PerDomain = perDomain;
    }

    /// <summary>--top-percent X.</summary>
    public static SelectionOptions TopPercent(double percent, bool perDomain = false)
    {
        if (!(percent > 0 && percent <= 100))
            throw new ArgumentOutOfRangeException(nameof(percent), percent, "--top-percent takes a number in (0, 100].");
        return new SelectionOptions(SelectionMode.TopPercent, percent, 0, perDomain);
    }

    /// <summary>--top-k N.</summary>
    public static SelectionOptions TopK(long count, bool perDomain = false)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        return new SelectionOptions(SelectionMode.TopK, 0, count, perDomain);
    }

    /// <summary>--token-budget N.</summary>
    public static SelectionOptions TokenBudget(long tokens, bool perDomain = false)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(tokens);
        return new SelectionOptions(SelectionMode.TokenBudget, 0, tokens, perDomain);
    }
}
