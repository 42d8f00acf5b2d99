using System.Diagnostics;
using LongDep.Core.Pipeline;
using Spectre.Console;

namespace LongDep.Cli.Runtime;

/// <summary>
/// Progress of a scoring run: a live bar (records, tokens/s, ETA, counts by status) when stderr is a terminal, one
/// plain line every few seconds when it is not (batch logs).
/// </summary>
public static class ProgressDisplay
{
    public static T Run<T>(Func<IProgress<RunProgress>, T> body, TimeSpan interval, bool? interactive = null)
    {
        bool live = interactive ?? (!Console.IsErrorRedirected && AnsiConsole.Profile.Capabilities.Interactive);
        if (!live) return body(new PlainLines(Console.Error, interval));
        var console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(Console.Error) });
        T result = default!;
        console.Progress()
            .AutoClear(false)
            .Columns(new TaskDescriptionColumn { Alignment = Justify.Left }, new ProgressBarColumn(), new PercentageColumn(),
                new ElapsedTimeColumn(), new RemainingTimeColumn())
            .Start(ctx =>
            {
                var task = ctx.AddTask("starting", maxValue: 100);
                result = body(new Live(task));
                task.Value = task.MaxValue;
            });
        return result;
    }

    /// <summary>One line describing where a run stands.</summary>
    public static string Describe(RunProgress p)
    {
        double secs = Math.Max(p.Elapsed.TotalSeconds, 1e-9);
        string resumed = p.Resumed > 0 ? $" (+{p.Resumed} resumed)" : "";
        return $"{p.Written} records{resumed}, {p.Tokens / secs:F0} tok/s, {p.Written / secs:F2} rec/s | ok {p.Ok}, too_short {p.TooShort}, bad {p.BadRecord}, numeric {p.NumericError}";
    }

    private sealed class Live(ProgressTask task) : IProgress<RunProgress>
    {
        public void Report(RunProgress value)
        {
            task.Description = Markup.Escape(Describe(value));
            if (value.InputFraction is { } f) task.Value = f * 100;
        }
    }

    private sealed class PlainLines(TextWriter writer, TimeSpan interval) : IProgress<RunProgress>
    {
        private readonly Stopwatch _since = Stopwatch.StartNew();
        private readonly Lock _gate = new();

        public void Report(RunProgress value)
        {
            lock (_gate)
            {
                if (_since.Elapsed < interval) return;
                _since.Restart();
            }
            string eta = value.InputFraction is > 0.001 and < 1 and var f
                ? $", ETA {TimeSpan.FromSeconds(value.Elapsed.TotalSeconds * (1 - f) / f):hh\\:mm\\:ss} ({f:P1} of input read)"
                : "";
            writer.WriteLine($"[{DateTime.Now:HH:mm:ss}] {Describe(value)}{eta}");
        }
    }
}
