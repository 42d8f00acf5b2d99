using System.Globalization;

namespace LongDep.Cuda.SelfTest;

/// <summary>One comparison of the self-test: GPU result against its reference (a C# twin or the CPU probe).</summary>
/// <param name="Name">What was compared.</param>
/// <param name="Count">Number of values compared.</param>
/// <param name="MaxAbs">Largest absolute difference.</param>
/// <param name="MaxRel">Largest difference relative to |reference| + floor (see <see cref="Compare"/>).</param>
/// <param name="Tolerance">The relative tolerance the check needed.</param>
/// <param name="Passed">Whether every value was within tolerance (and none was NaN where the reference was not).</param>
/// <param name="Note">Why it failed, or extra facts.</param>
public sealed record CheckResult(string Name, long Count, double MaxAbs, double MaxRel, double Tolerance, bool Passed, string Note = "")
{
    public static string Header =>
        $"{"check",-72} {"n",9} {"max_abs",10} {"max_rel",10} {"tol",8}  result";

    public string Row => string.Create(CultureInfo.InvariantCulture,
        $"{Truncate(Name, 72),-72} {Count,9} {MaxAbs,10:0.00e+00} {MaxRel,10:0.00e+00} {Tolerance,8:0.0e+00}  {(Passed ? "PASS" : "FAIL")}{(Note.Length > 0 ? "  " + Note : "")}");

    private static string Truncate(string s, int n) => s.Length <= n ? s : s[..(n - 1)] + "…";

    public static CheckResult Failure(string name, string note) => new(name, 0, double.NaN, double.NaN, 0, false, note);
}

/// <summary>Element-wise comparison with a relative tolerance and a magnitude floor.</summary>
public static class Compare
{
    /// <summary>
    /// Passes when every |actual − expected| ≤ tol·(|expected| + floor), floor = <paramref name="floorFraction"/>·max|expected|
    /// (so values near zero are judged against the array's scale). A NaN or infinity in either array fails the check
    /// unless both hold the same non-finite value.
    /// </summary>
    public static CheckResult Arrays(string name, ReadOnlySpan<double> actual, ReadOnlySpan<double> expected, double tol, double floorFraction = 1e-2)
    {
        if (actual.Length != expected.Length)
            return CheckResult.Failure(name, $"length {actual.Length} differs from the reference's {expected.Length}");
        double scale = 0;
        foreach (double e in expected)
            if (double.IsFinite(e)) scale = Math.Max(scale, Math.Abs(e));
        double floor = Math.Max(floorFraction * scale, 1e-30);
        double maxAbs = 0, maxRel = 0;
        bool ok = true;
        string note = "";
        for (int i = 0; i < actual.Length; i++)
        {
            double a = actual[i], e = expected[i];
            if (!double.IsFinite(a) || !double.IsFinite(e))
            {
                if (a.Equals(e)) continue;
                if (ok) note = $"first bad value at {i}: {a} vs {e}";
                ok = false;
                maxAbs = maxRel = double.NaN;
                continue;
            }
            double diff = Math.Abs(a - e);
            double rel = diff / (Math.Abs(e) + floor);
            if (!double.IsNaN(maxAbs)) maxAbs = Math.Max(maxAbs, diff);
            if (!double.IsNaN(maxRel)) maxRel = Math.Max(maxRel, rel);
            if (rel > tol && ok)
            {
                note = $"first miss at {i}: {a:G9} vs {e:G9}";
                ok = false;
            }
        }
        return new CheckResult(name, actual.Length, maxAbs, maxRel, tol, ok, note);
    }

    public static CheckResult Arrays(string name, ReadOnlySpan<float> actual, ReadOnlySpan<float> expected, double tol, double floorFraction = 1e-2) =>
        Arrays(name, Widen(actual), Widen(expected), tol, floorFraction);

    internal static double[] Widen(ReadOnlySpan<float> values)
    {
        var result = new double[values.Length];
        for (int i = 0; i < values.Length; i++) result[i] = values[i];
        return result;
    }
}
