using System.Globalization;
using System.Text.RegularExpressions;
using LongDep.Core.Corpus.Mds;
using LongDep.Core.Records;

namespace LongDep.Core.Packing;

/// <summary>One source of a training mixture: a corpus (any input format), its name (the sequences' domain) and its token share.</summary>
public sealed partial record PackSource(string Name, string Path, double Share)
{
    /// <summary>Parses <c>[NAME=]PATH:SHARE</c>; NAME defaults to the path's stem (the file name without its corpus extension).</summary>
    /// <exception cref="ArgumentException">A malformed specification.</exception>
    public static PackSource Parse(string spec)
    {
        ArgumentNullException.ThrowIfNull(spec);
        int colon = spec.LastIndexOf(':');
        if (colon <= 0 || colon == spec.Length - 1)
            throw new ArgumentException($"--source '{spec}' must be [NAME=]PATH:SHARE, e.g. books=books/:0.3");
        string shareText = spec[(colon + 1)..];
        if (!double.TryParse(shareText, NumberStyles.Float, CultureInfo.InvariantCulture, out double share) || !double.IsFinite(share) || share <= 0 || share > 1)
            throw new ArgumentException($"--source '{spec}': the share '{shareText}' must be a number in (0, 1], e.g. 0.3");
        string left = spec[..colon];
        string? name = null;
        int eq = left.IndexOf('=');
        if (eq > 0 && NamePattern().IsMatch(left[..eq]))
        {
            name = left[..eq];
            left = left[(eq + 1)..];
        }
        if (left.Length == 0) throw new ArgumentException($"--source '{spec}' has no path");
        name ??= Stem(left);
        if (!NamePattern().IsMatch(name))
            throw new ArgumentException($"--source '{spec}': cannot make a name from the path; give one as NAME=PATH:SHARE (letters, digits, '_', '-', '.')");
        return new PackSource(name, left, share);
    }

    /// <summary>The path's file or folder name without a corpus extension.</summary>
    public static string Stem(string path)
    {
        string name = System.IO.Path.GetFileName(System.IO.Path.TrimEndingDirectorySeparator(path));
        foreach (string ext in new[] { ".jsonl.zst", ".jsonl.gz", ".jsonl", ".parquet" })
            if (name.EndsWith(ext, StringComparison.OrdinalIgnoreCase)) return name[..^ext.Length];
        return name;
    }

    [GeneratedRegex(@"^[A-Za-z0-9_.\-]+$")]
    private static partial Regex NamePattern();
}

/// <summary>How <see cref="PackRun"/> packs (the command line of <c>longdep pack</c>).</summary>
public sealed record PackOptions
{
    /// <summary>The sources and their token shares (summing to 1).</summary>
    public required IReadOnlyList<PackSource> Sources { get; init; }
    /// <summary>Tokens per sequence.</summary>
    public required int SeqLen { get; init; }
    /// <summary>The output MDS dataset folder.</summary>
    public required string OutputPath { get; init; }
    /// <summary>Total tokens wanted (rounded down to whole sequences); null: until the first source runs out.</summary>
    public long? TokenBudget { get; init; }
    /// <summary>Seed of the document shuffle.</summary>
    public long Seed { get; init; } = 42;
    /// <summary>Shuffle each source's documents (MDS: shard order and samples within each shard; other formats: a window of <see cref="ShuffleWindowTokens"/>).</summary>
    public bool Shuffle { get; init; }
    /// <summary>Tokens held by the shuffle window of a non-MDS source.</summary>
    public long ShuffleWindowTokens { get; init; } = 1L << 25;
    /// <summary>Open sequences per source: 1 = one buffer (documents in order), more = best-fit-decreasing over that many.</summary>
    public int Bins { get; init; } = 1;
    /// <summary>The continuation of a split document is dropped when shorter than this.</summary>
    public int MinLength { get; init; } = 1;
    /// <summary>Added before each document (unless it starts with it); null: none.</summary>
    public int? Bos { get; init; }
    /// <summary>Added after each document (unless it ends with it); null: none.</summary>
    public int? Eos { get; init; }
    /// <summary>Replace an existing dataset in <see cref="OutputPath"/>.</summary>
    public bool Overwrite { get; init; }
    public MdsWriterOptions Writer { get; init; } = new();
    /// <summary>Field names for JSON-lines and Parquet sources (and the ids/text columns of MDS sources).</summary>
    public RecordFieldOptions Fields { get; init; } = RecordFieldOptions.Default;

    /// <summary>Tolerance of the shares' sum.</summary>
    public const double ShareTolerance = 1e-6;

    /// <summary>Checks the options; null when valid, else one line saying what is wrong.</summary>
    public string? Validate()
    {
        if (Sources.Count == 0) return "give at least one --source [NAME=]PATH:SHARE";
        var dup = Sources.GroupBy(s => s.Name).FirstOrDefault(g => g.Count() > 1);
        if (dup is not null) return $"two sources are named '{dup.Key}'; name them apart with NAME=PATH:SHARE";
        double sum = Sources.Sum(s => s.Share);
        if (Math.Abs(sum - 1) > ShareTolerance)
            return $"the shares sum to {sum.ToString("G6", CultureInfo.InvariantCulture)} ({string.Join(" + ", Sources.Select(s => $"{s.Name} {s.Share.ToString("G6", CultureInfo.InvariantCulture)}"))}); they are token shares and must sum to 1";
        if (SeqLen < 2) return $"--seq-len {SeqLen} must be at least 2";
        if (TokenBudget is { } b && b < SeqLen) return $"--tokens {b} is less than one sequence of {SeqLen} tokens";
        if (Bins < 1 || Bins > 100_000) return $"--bins {Bins} must be between 1 and 100000";
        if (MinLength < 1) return $"--min-length {MinLength} must be at least 1";
        if (Bos is < 0 || Eos is < 0) return "--bos and --eos must be non-negative token ids";
        if ((long)SeqLen * Bins * Sources.Count > 1L << 31)
            return $"{Sources.Count} sources × {Bins} bins × {SeqLen} tokens of open sequences is over 2^31 tokens of memory; use fewer --bins";
        if (ShuffleWindowTokens < 1) return "the shuffle window must hold at least one token";
        foreach (PackSource s in Sources)
            if (Overlap(s.Path, OutputPath))
                return $"--output '{OutputPath}' overlaps source '{s.Name}' ({s.Path}): writing there would replace the source's files; choose another output folder";
        return Writer.Validate();
    }

    /// <summary>True when one path is the other or inside it.</summary>
    internal static bool Overlap(string a, string b)
    {
        static string Full(string p) => System.IO.Path.TrimEndingDirectorySeparator(System.IO.Path.GetFullPath(p)) + System.IO.Path.DirectorySeparatorChar;
        string fa = Full(a), fb = Full(b);
        return fa.StartsWith(fb, StringComparison.Ordinal) || fb.StartsWith(fa, StringComparison.Ordinal);
    }
}
