namespace LongDep.Cli.Bench;

/// <summary>The few statistics <c>longdep bench</c> reports: medians and Pearson correlations, in float64.</summary>
public static class BenchStatistics
{
    /// <summary>The median (mean of the two middle values for an even count); NaN for no value.</summary>
    public static double Median(IEnumerable<double> values)
    {
        ArgumentNullException.ThrowIfNull(values);
        var sorted = values.ToArray();
        if (sorted.Length == 0) return double.NaN;
        Array.Sort(sorted);
        int mid = sorted.Length / 2;
        return sorted.Length % 2 == 1 ? sorted[mid] : 0.5 * (sorted[mid - 1] + sorted[mid]);
    }

    /// <summary>
    /// Pearson's correlation of the pairs (x[k], y[k]) where both are finite numbers. NaN when fewer than two pairs are
    /// left or either side does not vary (the coefficient is undefined then).
    /// </summary>
    public static double Pearson(IReadOnlyList<double?> x, IReadOnlyList<double?> y)
    {
        ArgumentNullException.ThrowIfNull(x);
        ArgumentNullException.ThrowIfNull(y);
        if (x.Count != y.Count)
            throw new ArgumentException($"Pearson needs two series of the same length; got {x.Count} and {y.Count}.");
        var xs = new List<double>(x.Count);
        var ys = new List<double>(y.Count);
        for (int k = 0; k < x.Count; k++)
        {
            if (x[k] is { } a && y[k] is { } b && double.IsFinite(a) && double.IsFinite(b))
            {
                xs.Add(a);
                ys.Add(b);
            }
        }
        return Pearson(xs, ys);
    }

    /// <summary>Pearson's correlation of two equally long series (all values used); NaN when undefined.</summary>
    public static double Pearson(IReadOnlyList<double> x, IReadOnlyList<double> y)
    {
        ArgumentNullException.ThrowIfNull(x);
        ArgumentNullException.ThrowIfNull(y);
        if (x.Count != y.Count)
            throw new ArgumentException($"Pearson needs two series of the same length; got {x.Count} and {y.Count}.");
        int n = x.Count;
        if (n < 2) return double.NaN;
        double mx = 0, my = 0;
        for (int k = 0; k < n; k++)
        {
            mx += x[k];
            my += y[k];
        }
        mx /= n;
        my /= n;
        double sxy = 0, sxx = 0, syy = 0;
        for (int k = 0; k < n; k++)
        {
            double dx = x[k] - mx, dy = y[k] - my;
            sxy += dx * dy;
            sxx += dx * dx;
            syy += dy * dy;
        }
        if (sxx == 0 || syy == 0) return double.NaN;
        return Math.Clamp(sxy / Math.Sqrt(sxx * syy), -1.0, 1.0);
    }
}
