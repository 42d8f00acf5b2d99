using LongDep.Core.Detail;
using LongDep.Core.Pipeline;

namespace LongDep.Cli.Runtime;

/// <summary>Opens the <c>--detail</c> side file for a run (appended to when the run resumes, replaced with --overwrite).</summary>
public static class DetailSinks
{
    public static IDetailSink? Open(string? path, ScoreRunOptions options, ScoreSettings settings, LongDep.Core.Corpus.ScoreHeader? header = null)
    {
        if (path is null) return null;
        if (Path.GetFullPath(path) == Path.GetFullPath(options.OutputPath))
            throw new CliException("--detail must name another file than --output", ExitCodes.Usage);
        return new DetailWriter(path, settings, append: !options.Overwrite, header: header);
    }
}
