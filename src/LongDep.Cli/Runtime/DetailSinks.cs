using LongDep.Core.Pipeline;

namespace LongDep.Cli.Runtime;

/// <summary>Opens the <c>--detail</c> side file for a run.</summary>
public static class DetailSinks
{
    public static IDetailSink? Open(string? path, ScoreRunOptions options)
    {
        if (path is null) return null;
        throw new CliException("--detail is not available in this build");
    }
}
