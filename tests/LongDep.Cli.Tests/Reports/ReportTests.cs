using System.Diagnostics;
using System.Text.RegularExpressions;
using LongDep.Cli.Reports;
using LongDep.Core.Corpus;
using LongDep.Core.Records;
using NUnit.Framework;
using SkiaSharp;

namespace LongDep.Cli.Tests.Reports;

/// <summary>The HTML report: content, escaping, self-containment, and (with chromium) that it renders with its images.</summary>
public partial class ReportTests
{
    private ScoredRun _run = null!;
    private string _html = "";
    private string _htmlPath = "";

    [OneTimeSetUp]
    public void MakeReport()
    {
        _run = new ScoredRun();
        _htmlPath = _run.File("report.html");
        var (code, _, _) = CliRunner.Run("report", "--scores", _run.Scores, "--detail", _run.Detail, "--input", _run.Input, "-o", _htmlPath);
        Assert.That(code, Is.EqualTo(0));
        _html = File.ReadAllText(_htmlPath);
    }

    [OneTimeTearDown]
    public void Clean() => _run.Dispose();

    [Test]
    public void Report_IsSelfContained()
    {
        Assert.Multiple(() =>
        {
            Assert.That(_html, Does.StartWith("<!DOCTYPE html>"));
            Assert.That(_html, Does.Contain("Content-Security-Policy").And.Contain("default-src 'none'"));
            Assert.That(_html, Does.Not.Contain("http://").And.Not.Contain("https://"), "nothing is fetched from the network");
            Assert.That(_html, Does.Not.Contain("<script").And.Not.Contain("<link"), "no script, no linked stylesheet");
            foreach (Match m in ImgTag().Matches(_html))
                Assert.That(m.Groups["src"].Value, Does.StartWith("data:image/png;base64,"));
        });
    }

    [Test]
    public void Report_EmbedsDecodablePngsOfTheirDeclaredSize()
    {
        MatchCollection imgs = ImgTag().Matches(_html);
        ScoreSummary s = ScoreSummary.Read(_run.Scores);
        Assert.That(imgs, Has.Count.EqualTo(2 + Math.Min(4, s.Count(ScoreStatus.Ok))), "domain plot, histogram and 4 heatmaps");
        foreach (Match m in imgs)
        {
            byte[] png = Convert.FromBase64String(m.Groups["src"].Value["data:image/png;base64,".Length..]);
            using SKBitmap b = Png.Decode(png);
            Assert.That(b.Width, Is.EqualTo(int.Parse(m.Groups["w"].Value)));
            Assert.That(b.Height, Is.EqualTo(int.Parse(m.Groups["h"].Value)));
            Assert.That(Png.GreyVariance(b), Is.GreaterThan(50), "not blank");
        }
        Png.Keep("report-heatmap.png", Convert.FromBase64String(imgs[2].Groups["src"].Value["data:image/png;base64,".Length..]));
    }

    [Test]
    public void Report_EscapesTextsAndDomains()
    {
        Assert.Multiple(() =>
        {
            Assert.That(_html, Does.Not.Contain("<script>alert"));
            Assert.That(_html, Does.Not.Contain("<img src=x"));
            Assert.That(_html, Does.Not.Contain("<b>Law"));
            Assert.That(_html, Does.Contain("&lt;b&gt;Law &amp; Order&lt;/b&gt;"), "the domain, escaped");
        });
        ScoreSummary s = ScoreSummary.Read(_run.Scores);
        bool hostileListed = s.Top.Concat(s.Bottom).Any(r => r.Index == 0);
        if (hostileListed)
            Assert.That(_html, Does.Contain("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;quoted&quot;"));
    }

    [Test]
    public void Report_ShowsTheSummaryAndTheDomainTable()
    {
        ScoreSummary s = ScoreSummary.Read(_run.Scores);
        Assert.Multiple(() =>
        {
            Assert.That(s.Records, Is.EqualTo(30));
            Assert.That(_html, Does.Contain("<tr><th>Records</th><td>30</td></tr>"));
            Assert.That(_html, Does.Contain($"<tr><th>bad_record</th><td>{s.Count(ScoreStatus.BadRecord)} ("));
            Assert.That(_html, Does.Contain($"<tr><th>too_short</th><td>{s.Count(ScoreStatus.TooShort)} ("));
            Assert.That(_html, Does.Contain($"<tr><th>Tokens (ok records)</th><td>{s.OkTokens:N0}</td></tr>"));
            foreach (DomainScores d in s.Domains)
                Assert.That(_html, Does.Contain($"<tr><td class=\"text\">{HtmlReport.E(d.Domain)}</td><td>{d.Records}</td><td>{d.Ok}</td><td>{(d.Ok == 0 ? "—" : d.Median.ToString("G5", System.Globalization.CultureInfo.InvariantCulture))}</td>"));
        });
    }

    [Test]
    public void Report_ListsTheHighestAndLowestInOrderWithTheStartOfTheirText()
    {
        ScoreSummary s = ScoreSummary.Read(_run.Scores);
        Assert.That(s.Top, Has.Count.EqualTo(10));
        string highest = _html[_html.IndexOf("<h2>Highest CDS</h2>", StringComparison.Ordinal)..(_html.IndexOf("<h2>Lowest CDS</h2>", StringComparison.Ordinal))];
        string lowest = _html[_html.IndexOf("<h2>Lowest CDS</h2>", StringComparison.Ordinal)..];
        Assert.That(IndexColumn(highest), Is.EqualTo(s.Top.Select(r => r.Index)));
        Assert.That(IndexColumn(lowest), Is.EqualTo(s.Bottom.Select(r => r.Index)));
        Assert.That(s.Top.Zip(s.Top.Skip(1)).All(p => p.First.Score >= p.Second.Score));

        var texts = CorpusReader.OpenParsed(_run.Input).ToDictionary(r => r.Index);
        foreach (ScoreRecord r in s.Top.Concat(s.Bottom))
        {
            InputRecord input = texts[r.Index];
            string expected = input.Text is { } t ? HtmlReport.E(HtmlReport.Excerpt(t)) : "(token ids only";
            Assert.That(_html, Does.Contain(expected), $"text of record {r.Index}");
        }
        Assert.That(_html, Does.Not.Contain(ScoredRun.TailMarker), "only the first 300 characters are shown");
    }

    [Test]
    public void Excerpt_CutsAt300CharactersWithoutSplittingASurrogatePair()
    {
        Assert.That(HtmlReport.Excerpt(new string('a', 300)), Is.EqualTo(new string('a', 300)));
        Assert.That(HtmlReport.Excerpt(new string('a', 301)), Is.EqualTo(new string('a', 300) + "…"));
        string emoji = new string('a', 299) + "\U0001F600" + "zz"; // the pair sits at 299..300
        Assert.That(HtmlReport.Excerpt(emoji), Is.EqualTo(new string('a', 299) + "…"));
    }

    [Test]
    public void Report_WithoutDetailOrInput_SaysWhatToGive()
    {
        string path = _run.File("plain.html");
        CliRunner.Run("report", "--scores", _run.Scores, "-o", path);
        string html = File.ReadAllText(path);
        Assert.That(ImgTag().Matches(html), Has.Count.EqualTo(2));
        Assert.That(html, Does.Contain("Give --input to show the texts."));
        Assert.That(html, Does.Not.Contain("Measurements of a few records"));
    }

    [Test]
    public void Report_RefusesAnInputThatWasNotTheOneScored()
    {
        ScoreSummary s = ScoreSummary.Read(_run.Scores);
        long listed = s.Top[0].Index;
        string other = _run.File("other.jsonl");
        File.WriteAllLines(other, File.ReadAllLines(_run.Input).Select((l, i) => i == listed ? l.Replace("\"text\":\"", "\"text\":\"Z") : l));
        var e = Assert.Throws<ArgumentException>(() => CliRunner.Run("report", "--scores", _run.Scores, "--input", other, "-o", _run.File("x.html")))!;
        Assert.That(e.Message, Does.Contain($"record {listed}").And.Contain("not the one that was scored"));
    }

    /// <summary>
    /// Headless chromium loads the page (with a copy that adds a script recording each image's decoded size) and draws
    /// it. Skipped where chromium is not installed, except under CI (CI=true), where it fails.
    /// </summary>
    [Test]
    public void Report_RendersInHeadlessChromiumWithEveryImageLoaded()
    {
        string? browser = Chromium.Find();
        if (browser is null)
        {
            Prerequisites.Missing($"chromium is not installed, so the report's rendering test cannot run; {Prerequisites.HowToBuild}");
        }

        string probe = _run.File("probe.html");
        string script = "<script>window.addEventListener('load', function () { var n = 0; for (var i = 0; i < document.images.length; i++) { " +
            "var img = document.images[i]; img.setAttribute('data-natural', img.naturalWidth + 'x' + img.naturalHeight); if (img.complete && img.naturalWidth > 0) n++; } " +
            "document.body.setAttribute('data-loaded', String(n)); });</script>";
        string html = Regex.Replace(_html, "<meta http-equiv=\"Content-Security-Policy\"[^>]*>\n", "").Replace("</body>", script + "</body>");
        File.WriteAllText(probe, html);

        string dom = Chromium.Run(browser!, _run.Dir, "--dump-dom", new Uri(probe).AbsoluteUri);
        MatchCollection imgs = ImgTag().Matches(_html);
        Assert.That(dom, Does.Contain($"data-loaded=\"{imgs.Count}\""), "every image decoded");
        foreach (Match m in imgs)
            Assert.That(dom, Does.Contain($"data-natural=\"{m.Groups["w"].Value}x{m.Groups["h"].Value}\""));

        // The unmodified page, as a user opens it, draws: a screenshot that is not blank.
        string shot = _run.File("shot.png");
        Chromium.Run(browser!, _run.Dir, $"--screenshot={shot}", "--window-size=1200,2400", new Uri(_htmlPath).AbsoluteUri);
        byte[] png = File.ReadAllBytes(shot);
        Png.Keep("report-screenshot.png", png);
        using SKBitmap b = Png.Decode(png);
        Assert.That((b.Width, b.Height), Is.EqualTo((1200, 2400)));
        Assert.That(Png.GreyVariance(b), Is.GreaterThan(100));
    }

    private static IEnumerable<long> IndexColumn(string tableHtml) =>
        Regex.Matches(tableHtml, "<tr><td>\\d+</td><td>(\\d+)</td>").Select(m => long.Parse(m.Groups[1].Value));

    [GeneratedRegex("<img alt=\"[^\"]*\" width=\"(?<w>\\d+)\" height=\"(?<h>\\d+)\" src=\"(?<src>[^\"]+)\">")]
    private static partial Regex ImgTag();
}

/// <summary>Finds and runs Debian's chromium headless, isolated (own profile, no network services, no GPU).</summary>
internal static class Chromium
{
    public static string? Find()
    {
        foreach (string? env in new[] { Environment.GetEnvironmentVariable("CHROMIUM"), Environment.GetEnvironmentVariable("CHROME_BIN") })
            if (!string.IsNullOrEmpty(env) && File.Exists(env)) return env;
        string[] names = ["chromium", "chromium-browser", "google-chrome", "google-chrome-stable"];
        foreach (string dir in (Environment.GetEnvironmentVariable("PATH") ?? "").Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries))
            foreach (string name in names)
            {
                string candidate = Path.Combine(dir, name);
                if (File.Exists(candidate)) return candidate;
            }
        return null;
    }

    public static string Run(string browser, string workDir, params string[] args)
    {
        string profile = Directory.CreateTempSubdirectory("longdep-chromium-").FullName;
        try
        {
            var psi = new ProcessStartInfo(browser)
            {
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                WorkingDirectory = workDir,
            };
            foreach (string a in new[] { "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                         "--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
                         $"--user-data-dir={profile}", "--virtual-time-budget=10000" })
                psi.ArgumentList.Add(a);
            foreach (string a in args) psi.ArgumentList.Add(a);
            using var p = Process.Start(psi)!;
            Task<string> stdout = p.StandardOutput.ReadToEndAsync();
            Task<string> stderr = p.StandardError.ReadToEndAsync();
            if (!p.WaitForExit(TimeSpan.FromSeconds(90)))
            {
                p.Kill(entireProcessTree: true);
                Assert.Fail($"chromium did not finish in 90 s: {stderr.Result}");
            }
            if (p.ExitCode != 0) Assert.Fail($"chromium exited with {p.ExitCode}: {stderr.Result}");
            return stdout.Result;
        }
        finally
        {
            try { Directory.Delete(profile, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
        }
    }
}
