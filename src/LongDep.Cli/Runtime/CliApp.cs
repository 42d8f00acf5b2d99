using System.CommandLine;
using LongDep.Core.Corpus;
using LongDep.Core.Pipeline;
using LongDep.Models;

namespace LongDep.Cli.Runtime;

/// <summary>Exit codes of <c>longdep</c>.</summary>
public static class ExitCodes
{
    public const int Ok = 0;
    /// <summary>The run could not be done: bad model file, unreadable input, device failure.</summary>
    public const int Failed = 1;
    /// <summary>Bad command line.</summary>
    public const int Usage = 2;
    /// <summary>Interrupted (Ctrl+C); rerunning resumes.</summary>
    public const int Interrupted = 130;
}

/// <summary>A failure the user can act on: printed as one line, exit code <see cref="ExitCodes.Failed"/>.</summary>
public sealed class CliException(string message, int exitCode = ExitCodes.Failed) : Exception(message)
{
    public int ExitCode { get; } = exitCode;
}

/// <summary>Parses, runs, and turns every failure into one clear line on stderr and an exit code.</summary>
public static class CliApp
{
    public static int Invoke(RootCommand root, string[] args, TextWriter? stdout = null, TextWriter? stderr = null)
    {
        stderr ??= Console.Error;
        ParseResult parse = root.Parse(args);
        if (parse.Errors.Count > 0)
        {
            var command = parse.CommandResult.Command;
            string name = command == root ? "longdep" : $"longdep {command.Name}";
            stderr.WriteLine($"longdep: {OneLine(parse.Errors[0].Message)} (see '{name} --help')");
            return ExitCodes.Usage;
        }
        try
        {
            var config = new InvocationConfiguration { EnableDefaultExceptionHandler = false };
            if (stdout is not null) config.Output = stdout;
            config.Error = stderr;
            return parse.Invoke(config);
        }
        catch (Exception e)
        {
            return Report(e, stderr);
        }
    }

    /// <summary>One line for a failure; the exit code that goes with it.</summary>
    public static int Report(Exception e, TextWriter stderr)
    {
        if (e is AggregateException { InnerExceptions.Count: 1 } agg) e = agg.InnerExceptions[0];
        (string message, int code) = e switch
        {
            CliException c => (c.Message, c.ExitCode),
            OperationCanceledException => ("interrupted; what was written is kept: rerun the same command to resume", ExitCodes.Interrupted),
            ModelFormatException or CorpusFormatException or ScoreRunException => (e.Message, ExitCodes.Failed),
            FileNotFoundException or DirectoryNotFoundException or UnauthorizedAccessException or IOException => (e.Message, ExitCodes.Failed),
            ArgumentException a when a is not ArgumentNullException => (a.Message.Split(" (Parameter '")[0], ExitCodes.Failed),
            OutOfMemoryException => ("out of host memory: lower --window or score fewer records at once", ExitCodes.Failed),
            _ when e.GetType().Namespace?.StartsWith("LongDep.Cuda", StringComparison.Ordinal) == true => (e.Message, ExitCodes.Failed),
            _ => ($"internal error ({e.GetType().Name}): {e.Message}; please report it with the command line (set LONGDEP_DEBUG=1 for the stack trace)", 70),
        };
        stderr.WriteLine($"longdep: {OneLine(message)}");
        if (Environment.GetEnvironmentVariable("LONGDEP_DEBUG") == "1") stderr.WriteLine(e);
        return code;
    }

    private static string OneLine(string s) => string.Join(' ', s.Split(['\r', '\n', '\t'], StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));

    /// <summary>A token cancelled by Ctrl+C (the first press; a second one kills the process as usual).</summary>
    public static CancellationToken CancelOnCtrlC()
    {
        var cts = new CancellationTokenSource();
        Console.CancelKeyPress += (_, e) =>
        {
            if (cts.IsCancellationRequested) return;
            e.Cancel = true;
            Console.Error.WriteLine("longdep: stopping after the records in flight (Ctrl+C again to kill)...");
            cts.Cancel();
        };
        return cts.Token;
    }
}
