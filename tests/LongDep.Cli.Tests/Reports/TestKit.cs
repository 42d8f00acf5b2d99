using NUnit.Framework;
using System.CommandLine;
using LongDep.Cli.Reports;
using SkiaSharp;

namespace LongDep.Cli.Tests.Reports;

/// <summary>A scratch folder removed at dispose.</summary>
internal sealed class TempDir : IDisposable
{
    public string Path { get; } = Directory.CreateTempSubdirectory("longdep-cli-tests-").FullName;

    public string File(string name) => System.IO.Path.Combine(Path, name);

    public void Dispose()
    {
        try { Directory.Delete(Path, recursive: true); } catch (IOException) { }
    }
}

/// <summary>Runs the report commands as the CLI would, with exceptions passed through and output captured.</summary>
internal static class CliRunner
{
    public static (int Code, string Out, string Err) Run(params string[] args)
    {
        var root = new RootCommand("test") { PlotCommand.Create(), ReportCommand.Create(), PplCommand.Create() };
        var output = new StringWriter();
        var error = new StringWriter();
        int code = root.Parse(args).Invoke(new InvocationConfiguration { EnableDefaultExceptionHandler = false, Output = output, Error = error });
        return (code, output.ToString(), error.ToString());
    }
}

/// <summary>Decoded PNGs and pixel checks.</summary>
internal static class Png
{
    public static SKBitmap Decode(byte[] png) =>
        SKBitmap.Decode(png) ?? throw new AssertionException("the bytes are not a PNG Skia can decode");

    public static bool IsPng(byte[] bytes) => bytes.Length > 8 && bytes.AsSpan(0, 8).SequenceEqual(new byte[] { 0x89, (byte)'P', (byte)'N', (byte)'G', 0x0D, 0x0A, 0x1A, 0x0A });

    /// <summary>Variance of the grey level over all pixels (0 for a blank image).</summary>
    public static double GreyVariance(SKBitmap b)
    {
        double sum = 0, sq = 0;
        long n = 0;
        for (int y = 0; y < b.Height; y += 2)
            for (int x = 0; x < b.Width; x += 2)
            {
                SKColor c = b.GetPixel(x, y);
                double g = (c.Red + c.Green + c.Blue) / 3.0;
                sum += g;
                sq += g * g;
                n++;
            }
        double mean = sum / n;
        return sq / n - mean * mean;
    }

    /// <summary>Euclidean distance in RGB between the pixel at (x, y) and <paramref name="expected"/>.</summary>
    public static double Distance(SKBitmap b, (float X, float Y) at, ScottPlot.Color expected)
    {
        SKColor c = b.GetPixel((int)Math.Round(at.X), (int)Math.Round(at.Y));
        return Math.Sqrt(Sq(c.Red - expected.R) + Sq(c.Green - expected.G) + Sq(c.Blue - expected.B));
    }

    public static SKColor At(SKBitmap b, (float X, float Y) at) => b.GetPixel((int)Math.Round(at.X), (int)Math.Round(at.Y));

    private static double Sq(double v) => v * v;

    /// <summary>Saves a copy for a person to look at when LONGDEP_KEEP_CHARTS names a folder.</summary>
    public static void Keep(string name, byte[] png)
    {
        string? dir = Environment.GetEnvironmentVariable("LONGDEP_KEEP_CHARTS");
        if (string.IsNullOrEmpty(dir)) return;
        Directory.CreateDirectory(dir);
        System.IO.File.WriteAllBytes(System.IO.Path.Combine(dir, name), png);
    }
}
