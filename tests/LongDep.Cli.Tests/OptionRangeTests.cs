using System.CommandLine;

namespace LongDep.Cli.Tests;

/// <summary>Every numeric option of every command: range-checked at parse time, and listed in --help with its default and range.</summary>
public class OptionRangeTests
{
    private static readonly Type[] Numeric =
        [typeof(int), typeof(long), typeof(double), typeof(float), typeof(int?), typeof(long?), typeof(double?), typeof(float?)];

    private static IEnumerable<(string[] Path, Command Command)> Commands()
    {
        var stack = new Stack<(string[], Command)>(Program.Commands().Select(c => (new[] { c.Name }, c)));
        while (stack.Count > 0)
        {
            var (path, command) = stack.Pop();
            yield return (path, command);
            foreach (var sub in command.Subcommands) stack.Push(([.. path, sub.Name], sub));
        }
    }

    private static IEnumerable<(string[] Path, Option Option)> NumericOptions() =>
        Commands().SelectMany(c => c.Command.Options.Where(o => Numeric.Contains(o.ValueType)).Select(o => (c.Path, o)));

    [Test]
    public void EveryNumericOption_RefusesJunkNaNInfinityAndHugeValues_WithOneLineNamingItAndItsRange()
    {
        var options = NumericOptions().ToList();
        Assert.That(options.Count, Is.GreaterThan(40), "the commands' numeric options were found");
        foreach (var (path, option) in options)
        {
            foreach (string bad in new[] { "abc", "NaN", "Infinity", "-1e300", "1e300", "99999999999999999999999", "" })
            {
                var root = new RootCommand("test");
                foreach (var c in Program.Commands()) root.Add(c);
                ParseResult parse = root.Parse([.. path, option.Name, bad]);
                string what = $"{string.Join(' ', path)} {option.Name} '{bad}'";
                var mine = parse.Errors.Where(e => e.Message.Contains(option.Name)).ToList();
                Assert.That(mine, Has.Count.EqualTo(1), $"{what}: {string.Join(" | ", parse.Errors.Select(e => e.Message))}");
                Assert.That(mine[0].Message, Does.Contain("valid:"), what);
                Assert.That(mine[0].Message, Does.Not.Contain("System.").And.Not.Contain("Parameter"), what);
            }
        }
    }

    [Test]
    public void OutOfRangeValues_ExitWithUsage_AndOneLine_NeverAnInternalError()
    {
        using var dir = new TempDir();
        foreach (var args in new[]
        {
            new[] { "score", "--method", "ladm", "--model", "m", "--input", "i.jsonl", "--output", "o", "--window", "70000000000" },
            ["score", "--method", "ladm", "--model", "m", "--input", "i.jsonl", "--output", "o", "--threads", "-1"],
            ["score", "--method", "ladm", "--model", "m", "--input", "i.jsonl", "--output", "o", "--flush-every", "0"],
            ["score", "--method", "ladm", "--model", "m", "--input", "i.jsonl", "--output", "o", "--progress-interval", "NaN"],
            ["score", "--method", "prolong", "--model", "m", "--input", "i.jsonl", "--output", "o", "--pairs", "1e9"],
            ["score", "--method", "ladm", "--model", "m", "--input", "i.jsonl", "--output", "o", "--d-afs", "100"],
            ["score", "--method", "ladm", "--model", "m", "--input", "i.jsonl", "--output", "o", "--chunk", "40000"],
            ["score", "--method", "prolong", "--model", "m", "--input", "i.jsonl", "--output", "o", "--window", "1048576", "--chunk", "2"],
            ["select", "--scores", "s", "--input", "i", "--output", "o", "--top-percent", "Infinity"],
            ["merge", "-o", "x", "a", "--expect", "-5"],
        })
        {
            var (code, err) = CliHarness.Run(args);
            string what = string.Join(' ', args);
            Assert.That(code, Is.EqualTo(2), $"{what}: {err}");
            Assert.That(err.TrimEnd().Split('\n'), Has.Length.EqualTo(1), what);
            Assert.That(err, Does.Contain("valid").And.Not.Contain("internal error"), what);
        }
    }

    [Test]
    public void Help_ListsEachOptionWithItsDefaultAndRange()
    {
        foreach (var (path, command) in Commands())
        {
            var output = new StringWriter();
            var root = new RootCommand("test");
            foreach (var c in Program.Commands()) root.Add(c);
            root.Parse([.. path, "--help"]).Invoke(new InvocationConfiguration { Output = output });
            string help = output.ToString();
            foreach (var option in command.Options.Where(o => Numeric.Contains(o.ValueType)))
            {
                string line = help.Split('\n').FirstOrDefault(l => l.TrimStart().StartsWith(option.Name, StringComparison.Ordinal)) ?? "";
                int at = help.IndexOf(line, StringComparison.Ordinal);
                string entry = help[at..Math.Min(help.Length, at + 400)];
                entry = entry[..(entry.IndexOf("\n  -", 1, StringComparison.Ordinal) is > 0 and var end ? end : entry.Length)];
                Assert.That(entry, Does.Contain("valid:"), $"{string.Join(' ', path)} {option.Name}: {entry}");
                if (option.ValueType is { IsValueType: true } t && Nullable.GetUnderlyingType(t) is null)
                    Assert.That(entry, Does.Contain("[default: "), $"{string.Join(' ', path)} {option.Name}: {entry}");
            }
        }
    }
}
