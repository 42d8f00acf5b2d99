using LongDep.Core.Pipeline;
using LongDep.Models;
using LongDep.Models.Cpu;

namespace LongDep.Cli.Runtime;

/// <summary>A parsed <c>--device</c>: auto, cpu, cuda, cuda:N, cuda:all, cuda:0,1,...</summary>
public sealed record DeviceSpec(string Text, bool Auto, bool Cpu, IReadOnlyList<int>? Gpus)
{
    /// <summary>All GPUs (<c>cuda:all</c>).</summary>
    public bool AllGpus => !Auto && !Cpu && Gpus is null;

    public static DeviceSpec Parse(string text)
    {
        string t = text.Trim().ToLowerInvariant();
        if (t == "auto") return new DeviceSpec(t, true, false, [0]);
        if (t == "cpu") return new DeviceSpec(t, false, true, []);
        if (t == "cuda") return new DeviceSpec(t, false, false, [0]);
        if (t == "cuda:all") return new DeviceSpec(t, false, false, null);
        if (t.StartsWith("cuda:", StringComparison.Ordinal))
        {
            var ids = new List<int>();
            foreach (string part in t[5..].Split(','))
            {
                if (!int.TryParse(part, out int id) || id < 0)
                    throw new CliException($"--device '{text}': '{part}' is not a GPU index (expected auto, cpu, cuda, cuda:N, cuda:0,1 or cuda:all)", ExitCodes.Usage);
                if (ids.Contains(id)) throw new CliException($"--device '{text}' names GPU {id} twice", ExitCodes.Usage);
                ids.Add(id);
            }
            return new DeviceSpec(t, false, false, ids);
        }
        throw new CliException($"--device '{text}' is not one of auto, cpu, cuda, cuda:N, cuda:0,1, cuda:all", ExitCodes.Usage);
    }
}

/// <summary>Backend settings beyond the method's.</summary>
public sealed record BackendOptions(int Threads = 0, int PairBatch = 128, bool Bf16 = false,
    LongDep.Cuda.AttentionKernels Kernels = LongDep.Cuda.AttentionKernels.TensorCores);

/// <summary>Creates the scoring workers for a device spec: one for the CPU, one per GPU.</summary>
public static class Backends
{
    /// <summary>The workers and a line saying which device runs (and why, for auto).</summary>
    public static (IReadOnlyList<IScoringWorker> Workers, string Description) Create(DeviceSpec device, LoadedModel model,
        ScoreSettings settings, BackendOptions options)
    {
        if (device.Cpu) return ([Cpu(model, settings, options)], CpuDescription(options));
        if (device.Auto)
        {
            // A model the CUDA forward cannot run stays on the CPU; otherwise device 0 is opened once: the probe for auto is
            // the device the run uses.
            if (Cuda.CudaModel.Unsupported(model.Weights.Config) is { } unsupported)
                return ([Cpu(model, settings, options)], $"{CpuDescription(options)} (auto: {unsupported})");
            if (Cuda.CudaDevice.TryOpen(0, out var gpu, out string reason))
                return CudaBackend.Create([gpu], model, settings, options);
            return ([Cpu(model, settings, options)], $"{CpuDescription(options)} (auto: {reason})");
        }
        return CudaBackend.Create(device.Text, device.Gpus, model, settings, options);
    }

    /// <summary>
    /// The CPU's numerics as the settings line records them: the fast dot products run on 512-bit lanes where the
    /// processor has them, which moves the last digits (docs/numerics.md), so files scored on different processors differ.
    /// </summary>
    public static string CpuCompute => $"cpu float32{(CpuForward.FastUsesWideLanes ? ", 512-bit lanes" : "")}";

    private static string CpuDescription(BackendOptions o) =>
        $"cpu ({(o.Threads > 0 ? o.Threads : Environment.ProcessorCount)} threads, float32)";

    private static IScoringWorker Cpu(LoadedModel model, ScoreSettings settings, BackendOptions options)
    {
        var forward = new CpuForward(model.Weights, options.Threads, CpuMath.Fast);
        var scorer = settings.Method == ScoreMethod.Ladm
            ? new RecordScorer(settings, new CpuLadmProbe(forward), null)
            : new RecordScorer(settings, null, new CpuProLongProbe(forward));
        return new ScoringWorker("cpu", scorer);
    }
}
