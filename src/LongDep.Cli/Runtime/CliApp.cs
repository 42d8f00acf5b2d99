using System.CommandLine;
using System.Runtime.InteropServices;
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
    /// <summary>Interrupted by Ctrl+C (SIGINT); rerunning resumes.</summary>
    public const int Interrupted = 130;
    /// <summary>Stopped by SIGHUP (the terminal closed); rerunning resumes.</summary>
    public const int HungUp = 129;
    /// <summary>Stopped by SIGTERM (scancel, a Slurm time limit, kill); rerunning resumes.</summary>
    public const int Terminated = 143;
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
            OperationCanceledException => ($"{(StopSignal is { } sig ? $"stopped by {sig}" : "interrupted")}; what was written is kept: rerun the same command to resume", StopCode),
            OutputBusyException busy => ($"{busy.What} '{busy.Path}' is being written by {FileIdentity.LockHolder(busy.Path) ?? "another process"}, which holds its lock; wait for it to end, or give another {busy.What}", ExitCodes.Failed),
            IOException io when OutputFiles.IsLockConflict(io) && LockedPath(io.Message) is { } locked =>
                ($"'{locked}' is being written by {FileIdentity.LockHolder(locked) ?? "another process"}, which holds its lock; wait for it to end", ExitCodes.Failed),
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

    /// <summary>The path quoted in .NET's "The process cannot access the file '…'" message.</summary>
    private static string? LockedPath(string message)
    {
        int a = message.IndexOf('\''), b = message.LastIndexOf('\'');
        return a >= 0 && b > a ? message[(a + 1)..b] : null;
    }

    private static string OneLine(string s) => string.Join(' ', s.Split(['\r', '\n', '\t'], StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));

    /// <summary>Gives SIGINT, SIGTERM and SIGHUP back their default action (after a run that handled them).</summary>
    public static void StopHandlingSignals()
    {
        lock (Registrations)
        {
            foreach (var r in Registrations) r.Dispose();
            Registrations.Clear();
        }
    }

    /// <summary>The signal that stopped the run (SIGINT, SIGTERM, SIGHUP), or null.</summary>
    public static string? StopSignal { get; private set; }

    private static int StopCode => StopSignal switch
    {
        "SIGTERM" => ExitCodes.Terminated,
        "SIGHUP" => ExitCodes.HungUp,
        _ => ExitCodes.Interrupted,
    };

    private static readonly List<PosixSignalRegistration> Registrations = [];

    /// <summary>
    /// A token cancelled by Ctrl+C (SIGINT), SIGTERM (Slurm's scancel and time limit) or SIGHUP: the run finishes or
    /// drops the records in flight, flushes, says how to resume and exits 130, 143 or 129. A second signal kills the
    /// process as usual.
    /// </summary>
    public static CancellationToken CancelOnSignals()
    {
        var cts = new CancellationTokenSource();
        StopSignal = null;
        lock (Registrations)
        {
            foreach (var r in Registrations) r.Dispose();
            Registrations.Clear();
            foreach (var (signal, name) in new[] { (PosixSignal.SIGINT, "SIGINT"), (PosixSignal.SIGTERM, "SIGTERM"), (PosixSignal.SIGHUP, "SIGHUP") })
            {
                Registrations.Add(PosixSignalRegistration.Create(signal, context =>
                {
                    if (cts.IsCancellationRequested) return; // the second signal: the default action (the process ends)
                    context.Cancel = true;
                    StopSignal = name;
                    Console.Error.WriteLine($"longdep: {name}: stopping after the records in flight (send it again to kill)...");
                    cts.Cancel();
                }));
            }
        }
        return cts.Token;
    }
}
