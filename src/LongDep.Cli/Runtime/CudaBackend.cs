using LongDep.Core.Pipeline;
using LongDep.Cuda;
using LongDep.Models;

namespace LongDep.Cli.Runtime;

/// <summary>The CUDA workers: one per GPU, each with its own device, model copy and probe.</summary>
public static class CudaBackend
{
    /// <summary>Opens the GPUs of <paramref name="gpus"/> (null: every GPU, <c>cuda:all</c>) and makes their workers.</summary>
    public static (IReadOnlyList<IScoringWorker> Workers, string Description) Create(string deviceText, IReadOnlyList<int>? gpus,
        LoadedModel model, ScoreSettings settings, BackendOptions options)
    {
        int count;
        try
        {
            count = CudaDevice.DeviceCount();
        }
        catch (CudaUnavailableException e)
        {
            throw new CliException($"--device {deviceText}: no CUDA device can be used: {e.Message}; use --device cpu");
        }
        gpus ??= Enumerable.Range(0, count).ToArray();
        if (gpus.Count == 0) throw new CliException($"--device {deviceText}: no CUDA device is visible; use --device cpu");
        var devices = new List<CudaDevice>();
        try
        {
            foreach (int ordinal in gpus)
            {
                if (ordinal >= count)
                    throw new CliException($"--device cuda:{ordinal}: this machine has {count} GPU(s) (cuda:0..cuda:{count - 1})");
                if (!CudaDevice.TryOpen(ordinal, out var device, out string reason))
                    throw new CliException($"cuda:{ordinal} cannot be used: {reason}; use --device cpu");
                devices.Add(device);
            }
        }
        catch
        {
            foreach (var d in devices) d.Dispose();
            throw;
        }
        return Create(devices, model, settings, options);
    }

    /// <summary>Makes one worker per opened device; the workers own the devices (disposed with them, or here on failure).</summary>
    public static (IReadOnlyList<IScoringWorker> Workers, string Description) Create(IReadOnlyList<CudaDevice> devices,
        LoadedModel model, ScoreSettings settings, BackendOptions options)
    {
        var workers = new List<IScoringWorker>();
        int next = 0;
        try
        {
            for (; next < devices.Count; next++) workers.Add(Worker(devices[next], model, settings, options));
        }
        catch
        {
            foreach (var w in workers) w.Dispose();
            for (int k = next + 1; k < devices.Count; k++) devices[k].Dispose(); // Worker disposed devices[next] itself
            throw;
        }
        NvtxRanges.Install();
        string names = string.Join(", ", devices.Select(d => $"cuda:{d.Ordinal}"));
        string precision = options.Bf16 ? "bf16" : "f16";
        return (workers, $"{names} ({devices[0].Describe()}; weights {precision}, f32 accumulation, {KernelsDescription(model.Weights.Config, options.Kernels)}{(NvtxRanges.Available ? ", NVTX on" : "")})");
    }

    /// <summary>The kernel set a model's attention and PFS run on, and why when it is not the one asked for (soft-capped scores).</summary>
    public static string KernelsDescription(Models.ModelConfig config, AttentionKernels requested)
    {
        var kernels = CudaModel.KernelsFor(config, requested);
        return kernels == requested ? kernels.Describe() : $"{kernels.Describe()} (the model's soft-capped scores)";
    }

    private static IScoringWorker Worker(CudaDevice device, LoadedModel model, ScoreSettings settings, BackendOptions options)
    {
        try
        {
            var modelOptions = new CudaModelOptions { Precision = options.Bf16 ? CudaPrecision.BF16 : CudaPrecision.F16, Kernels = options.Kernels };
            IDisposable probe;
            RecordScorer scorer;
            if (settings.Method == ScoreMethod.Ladm)
            {
                var p = CudaLadmProbe.Create(device, model.Weights, modelOptions);
                probe = p;
                scorer = new RecordScorer(settings, p, null);
            }
            else
            {
                var p = CudaProLongProbe.Create(device, model.Weights, modelOptions, new CudaProLongOptions { PairBatch = options.PairBatch });
                probe = p;
                scorer = new RecordScorer(settings, null, p);
            }
            return new ScoringWorkerWithDevice(device, scorer, probe);
        }
        catch
        {
            device.Dispose();
            throw;
        }
    }

    /// <summary>A GPU worker: owns its probe and its device.</summary>
    private sealed class ScoringWorkerWithDevice(CudaDevice device, RecordScorer scorer, IDisposable probe) : IScoringWorker
    {
        public CudaDevice Device { get; } = device;
        string IScoringWorker.Device => $"cuda:{Device.Ordinal}";
        public ScoreOutcome Score(Core.Records.InputRecord input, int[] tokens, CancellationToken cancellationToken) =>
            scorer.Score(input, tokens, cancellationToken);
        public void Dispose()
        {
            probe.Dispose();
            Device.Dispose();
        }
    }
}
