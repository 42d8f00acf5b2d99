using LongDep.Core.Pipeline;
using LongDep.Cuda;
using LongDep.Models;

namespace LongDep.Cli.Runtime;

/// <summary>The CUDA workers: one per GPU, each with its own device, model copy and probe.</summary>
public static class CudaBackend
{
    /// <summary>Whether device 0 opens with cuBLAS and the kernels; if not, why.</summary>
    public static bool Available(out string reason) => CudaDevice.Available(out reason);

    /// <param name="gpus">GPU ordinals; null for every GPU (<c>cuda:all</c>).</param>
    public static (IReadOnlyList<IScoringWorker> Workers, string Description) Create(IReadOnlyList<int>? gpus, LoadedModel model,
        ScoreSettings settings, BackendOptions options)
    {
        int count = CudaDevice.DeviceCount();
        gpus ??= Enumerable.Range(0, count).ToArray();
        if (gpus.Count == 0) throw new CliException("no CUDA device is visible (cuda:all found none); use --device cpu");
        var workers = new List<IScoringWorker>();
        try
        {
            foreach (int ordinal in gpus)
            {
                if (ordinal >= count)
                    throw new CliException($"--device cuda:{ordinal}: this machine has {count} GPU(s) (cuda:0..cuda:{count - 1})");
                if (!CudaDevice.TryOpen(ordinal, out var device, out string reason))
                    throw new CliException($"cuda:{ordinal} cannot be used: {reason}");
                workers.Add(Worker(device, model, settings, options));
            }
        }
        catch
        {
            foreach (var w in workers) w.Dispose();
            throw;
        }
        NvtxRanges.Install();
        string names = string.Join(", ", gpus.Select(g => $"cuda:{g}"));
        string precision = options.Bf16 ? "bf16" : "f16";
        return (workers, $"{names} ({((ScoringWorkerWithDevice)workers[0]).Device.Describe()}; weights {precision}, f32 accumulation{(NvtxRanges.Available ? ", NVTX on" : "")})");
    }

    private static IScoringWorker Worker(CudaDevice device, LoadedModel model, ScoreSettings settings, BackendOptions options)
    {
        try
        {
            var modelOptions = new CudaModelOptions { Precision = options.Bf16 ? CudaPrecision.BF16 : CudaPrecision.F16 };
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
