using LongDep.Core.Pipeline;
using LongDep.Models;

namespace LongDep.Cli.Runtime;

/// <summary>The CUDA workers (one per GPU).</summary>
public static class CudaBackend
{
    public static bool Available(out string reason)
    {
        reason = "the CUDA backend is not built into this version";
        return false;
    }

    public static (IReadOnlyList<IScoringWorker> Workers, string Description) Create(IReadOnlyList<int>? gpus, LoadedModel model,
        ScoreSettings settings, BackendOptions options) =>
        throw new CliException("the CUDA backend is not built into this version; use --device cpu");
}
