using System.CommandLine;
using System.CommandLine.Parsing;
using System.Globalization;
using System.Numerics;

namespace LongDep.Cli.Runtime;

/// <summary>
/// Numeric options, each defined once: its name, meaning, default and valid range. The value is parsed with the
/// invariant culture and checked against the range at parse time (a bad value is a usage error, exit 2, with one line
/// naming the option and its range); <c>--help</c> shows the range after the description, then "[default: …]".
/// </summary>
public static class NumericOption
{
    /// <summary>A whole-number option with a default (--help shows it as "[default: …]").</summary>
    public static Option<T> Whole<T>(string name, string description, T defaultValue, T min, T max)
        where T : struct, IBinaryInteger<T>, IMinMaxValue<T>
    {
        var option = new Option<T>(name)
        {
            Description = $"{description} ({WholeRange(min, max)})",
            DefaultValueFactory = _ => defaultValue,
        };
        option.CustomParser = r => ParseWhole(r, name, min, max) ?? defaultValue;
        return option;
    }

    /// <summary>A whole-number option that may be left out (null then); <paramref name="absent"/> says what that means.</summary>
    public static Option<T?> WholeOrNone<T>(string name, string description, T min, T max, string? absent = null, bool required = false)
        where T : struct, IBinaryInteger<T>, IMinMaxValue<T>
    {
        var option = new Option<T?>(name)
        {
            Description = $"{description} ({(absent is null ? "" : absent + "; ")}{WholeRange(min, max)})",
            Required = required,
        };
        option.CustomParser = r => ParseWhole(r, name, min, max);
        return option;
    }

    /// <summary>A real-number option with a default; NaN and infinities are refused.</summary>
    public static Option<double> Real(string name, string description, double defaultValue, double min, double max, bool minExclusive = false)
    {
        var option = new Option<double>(name)
        {
            Description = $"{description} ({RealRange(min, max, minExclusive)})",
            DefaultValueFactory = _ => defaultValue,
        };
        option.CustomParser = r => ParseReal(r, name, min, max, minExclusive) ?? defaultValue;
        return option;
    }

    /// <summary>A real-number option that may be left out (null then).</summary>
    public static Option<double?> RealOrNone(string name, string description, double min, double max, bool minExclusive = false, string? absent = null)
    {
        var option = new Option<double?>(name)
        {
            Description = $"{description} ({(absent is null ? "" : absent + "; ")}{RealRange(min, max, minExclusive)})",
        };
        option.CustomParser = r => ParseReal(r, name, min, max, minExclusive);
        return option;
    }

    /// <summary>The range as --help and the errors show it: "1..64".</summary>
    public static string WholeRange<T>(T min, T max) where T : struct, IBinaryInteger<T>, IMinMaxValue<T> =>
        max == T.MaxValue ? $"valid: {Text(min)} or more" : $"valid: {Text(min)}..{Text(max)}";

    private static string RealRange(double min, double max, bool minExclusive) =>
        double.IsPositiveInfinity(max)
            ? $"valid: {(minExclusive ? "more than" : "at least")} {Text(min)}"
            : $"valid: {(minExclusive ? "more than " + Text(min) + " and at most " + Text(max) : Text(min) + ".." + Text(max))}";

    private static string Text<T>(T value) where T : IFormattable => value.ToString(null, CultureInfo.InvariantCulture);

    private static T? ParseWhole<T>(ArgumentResult r, string name, T min, T max) where T : struct, IBinaryInteger<T>, IMinMaxValue<T>
    {
        if (r.Tokens.Count == 0) return null;
        string text = r.Tokens[^1].Value;
        if (!T.TryParse(text.Trim(), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out T value) || value < min || value > max)
        {
            r.AddError($"{name} '{text}' is not a whole number in range ({WholeRange(min, max)})");
            return null;
        }
        return value;
    }

    private static double? ParseReal(ArgumentResult r, string name, double min, double max, bool minExclusive)
    {
        if (r.Tokens.Count == 0) return null;
        string text = r.Tokens[^1].Value;
        if (!double.TryParse(text.Trim(), NumberStyles.Float, CultureInfo.InvariantCulture, out double value) || !double.IsFinite(value) ||
            value < min || (minExclusive && value == min) || value > max)
        {
            r.AddError($"{name} '{text}' is not a number in range ({RealRange(min, max, minExclusive)})");
            return null;
        }
        return value;
    }
}
