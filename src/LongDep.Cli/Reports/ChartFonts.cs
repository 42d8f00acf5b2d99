using SkiaSharp;

namespace LongDep.Cli.Reports;

/// <summary>
/// Makes text render in charts on headless Linux. The Skia build we ship has no fontconfig, so it sees no system font
/// and ScottPlot would draw labels with an empty typeface (no text at all). We register a TrueType file ourselves:
/// <c>LONGDEP_FONT</c> when set, else a common sans font (DejaVu Sans, Liberation Sans, ...), else the first
/// <c>.ttf</c> under the usual font folders.
/// </summary>
public static class ChartFonts
{
    private const string FamilyName = "LongDep Sans";
    private static readonly object Gate = new();
    private static bool _done;

    /// <summary>The font file in use, or null when none was found (charts then have no text).</summary>
    public static string? FontFile { get; private set; }

    /// <summary>Why charts have no text, or null when they do.</summary>
    public static string? Problem { get; private set; }

    /// <summary>Registers a font with ScottPlot once per process. Returns false when no font could be found.</summary>
    public static bool Ensure()
    {
        lock (Gate)
        {
            if (_done) return Problem is null;
            _done = true;
            if (SystemFontWorks()) return true;

            string? env = Environment.GetEnvironmentVariable("LONGDEP_FONT");
            if (!string.IsNullOrEmpty(env) && !File.Exists(env))
            {
                Problem = $"LONGDEP_FONT names '{env}', which does not exist";
                return false;
            }
            string? regular = !string.IsNullOrEmpty(env) ? env : FindFont();
            if (regular is null)
            {
                Problem = "no TrueType font found (looked under /usr/share/fonts and /usr/local/share/fonts); install fonts-dejavu-core or set LONGDEP_FONT to a .ttf file";
                return false;
            }
            using (var probe = SKTypeface.FromFile(regular))
            {
                if (probe is null || probe.GlyphCount == 0)
                {
                    Problem = $"'{regular}' is not a font Skia can read; set LONGDEP_FONT to a .ttf file";
                    return false;
                }
            }
            ScottPlot.Fonts.AddFontFile(FamilyName, regular, bold: false, italic: false);
            string? bold = BoldSibling(regular);
            ScottPlot.Fonts.AddFontFile(FamilyName, bold ?? regular, bold: true, italic: false);
            ScottPlot.Fonts.Default = FamilyName;
            FontFile = regular;
            return true;
        }
    }

    private static bool SystemFontWorks()
    {
        string name = ScottPlot.Fonts.Default;
        if (string.IsNullOrEmpty(name)) return false;
        using SKTypeface? face = SKTypeface.FromFamilyName(name);
        return face is not null && face.GlyphCount > 0 && !string.IsNullOrEmpty(face.FamilyName);
    }

    private static readonly string[] Preferred =
    [
        "DejaVuSans.ttf", "LiberationSans-Regular.ttf", "NotoSans-Regular.ttf", "FreeSans.ttf", "Arial.ttf", "arial.ttf",
    ];

    private static readonly string[] Folders =
    [
        "/usr/share/fonts", "/usr/local/share/fonts", "/usr/share/fonts/truetype",
        Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".fonts"),
        Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".local/share/fonts"),
        "/Library/Fonts", "/System/Library/Fonts/Supplemental",
        Environment.GetFolderPath(Environment.SpecialFolder.Fonts),
    ];

    private static string? FindFont()
    {
        var all = new List<string>();
        foreach (string folder in Folders.Where(f => !string.IsNullOrEmpty(f) && Directory.Exists(f)).Distinct())
        {
            try
            {
                all.AddRange(Directory.EnumerateFiles(folder, "*.ttf", new EnumerationOptions { RecurseSubdirectories = true, IgnoreInaccessible = true, MaxRecursionDepth = 4 }));
            }
            catch (IOException)
            {
            }
        }
        foreach (string name in Preferred)
        {
            string? hit = all.FirstOrDefault(f => string.Equals(Path.GetFileName(f), name, StringComparison.Ordinal));
            if (hit is not null) return hit;
        }
        return all.Where(f => !f.Contains("Mono", StringComparison.OrdinalIgnoreCase)).Order(StringComparer.Ordinal).FirstOrDefault()
            ?? all.Order(StringComparer.Ordinal).FirstOrDefault();
    }

    private static string? BoldSibling(string regular)
    {
        string dir = Path.GetDirectoryName(regular) ?? "";
        string name = Path.GetFileNameWithoutExtension(regular);
        string[] candidates = [name.Replace("-Regular", "-Bold", StringComparison.Ordinal), name + "-Bold", name + "Bold"];
        return candidates.Select(c => Path.Combine(dir, c + ".ttf")).FirstOrDefault(f => f != regular && File.Exists(f));
    }
}
