using System.Globalization;
using System.Text.Json;
using System.Text.RegularExpressions;
using LongDep.Cli.Commands;

namespace LongDep.Cli.Tests;

/// <summary><c>longdep demo</c>: the whole flow in a 100-column terminal, its table true to the files it wrote.</summary>
public partial class DemoTests
{
    [Test]
    public void Demo_FitsA100ColumnTerminal_OneLinePerTableRow_ShowingWhatTheScoreFilesHold()
    {
        using var dir = new TempDir();
        var (code, stdout, err) = CliHarness.RunChildWith(new Dictionary<string, string?> { ["COLUMNS"] = "100" },
            "demo", "--records", "4", "--dir", dir.Path);
        Assert.That(code, Is.EqualTo(0), err);
        string[] lines = stdout.Replace("\r", "").TrimEnd('\n').Split('\n');
        foreach (string line in lines)
        {
            Assert.That(line, Does.Not.Contain("\u001b"), "no escape codes when the output is not a terminal");
            Assert.That(line.Length, Is.LessThanOrEqualTo(100), $"wider than 100 columns: {line}");
        }

        // Every row of the table on one line: the header, then one line per record, each with all seven cells filled
        // (a wrapped cell would add a line whose index cell is empty).
        var rows = lines.Where(l => l.StartsWith('│'))
            .Select(l => l.Trim('│').Split('│').Select(c => c.Trim()).ToArray()).ToList();
        Assert.That(rows[0], Is.EqualTo(new[] { "index", "id", "domain", "tokens", "CDS (LADM)", "LDS (ProLong)", "status" }));
        var ladm = Records(dir.File("scores-ladm.jsonl"));
        var prolong = Records(dir.File("scores-prolong.jsonl"));
        Assert.That(ladm, Has.Count.EqualTo(6), "four documents, one too short, one not JSON");
        Assert.That(rows, Has.Count.EqualTo(1 + ladm.Count));
        for (int i = 0; i < ladm.Count; i++)
        {
            var (a, b) = (ladm[i], prolong[i]);
            string[] expected =
            [
                a.GetProperty("index").GetInt64().ToString(CultureInfo.InvariantCulture),
                Text(a, "id"), Text(a, "domain"), Text(a, "tokens"),
                Score(a), Score(b),
                a.GetProperty("status").GetString() == b.GetProperty("status").GetString()
                    ? a.GetProperty("status").GetString()! : $"{a.GetProperty("status").GetString()} / {b.GetProperty("status").GetString()}",
            ];
            Assert.That(rows[i + 1], Is.EqualTo(expected), $"row of record {i}");
        }
        Assert.That(rows.Skip(1).Select(r => r[2]), Does.Contain("RecurringTopics"), "the longest domain name is not cut");

        // The selection line names what selected.jsonl holds: the corpus lines at those indexes, all scored ok.
        var match = SelectedLine().Match(stdout);
        Assert.That(match.Success, Is.True, stdout);
        long[] indexes = match.Groups["list"].Value.Split(", ").Select(long.Parse).ToArray();
        Assert.That(indexes, Has.Length.EqualTo(int.Parse(match.Groups["n"].Value)).And.Length.EqualTo(2), "half of each domain's two scored documents");
        string[] corpus = File.ReadAllLines(dir.File("corpus.jsonl"));
        Assert.That(File.ReadAllLines(dir.File("selected.jsonl")), Is.EqualTo(indexes.Select(i => corpus[i]).ToArray()));
        Assert.That(indexes.All(i => ladm[(int)i].GetProperty("status").GetString() == "ok"), Is.True);
    }

    [Test]
    public void Wrap_BreaksAtSpacesWithinTheWidth_IndentsTheRest_AndGivesALongWordItsOwnLine()
    {
        string path = "/" + new string('p', 60);
        var lines = DemoCommand.Wrap($"longdep demo: the main job end to end on a tiny random model, in {path}", 40, "  ").ToList();
        Assert.That(lines, Is.EqualTo(new[]
        {
            "longdep demo: the main job end to end on",
            "  a tiny random model, in",
            "  " + path,
        }));
        Assert.That(DemoCommand.Wrap("   10 records: 8 ok", 100, "   "), Is.EqualTo(new[] { "   10 records: 8 ok" }));
    }

    private static List<JsonElement> Records(string path) =>
        File.ReadAllLines(path).Select(l => JsonDocument.Parse(l).RootElement.Clone()).ToList();

    private static string Text(JsonElement record, string name) =>
        record.GetProperty(name) is { ValueKind: not JsonValueKind.Null } v ? v.ToString() : "-";

    private static string Score(JsonElement record) =>
        record.GetProperty("score") is { ValueKind: JsonValueKind.Number } v ? v.GetDouble().ToString("G5", CultureInfo.InvariantCulture) : "-";

    [GeneratedRegex(@"selected\.jsonl: the top 50% of each domain by CDS, (?<n>\d+) records\s+\(indexes (?<list>[\d, ]+)\)")]
    private static partial Regex SelectedLine();
}
