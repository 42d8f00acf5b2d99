using LongDep.Cli.Runtime;
using LongDep.Core.Probes;
using LongDep.Cuda;
using LongDep.Models;
using LongDep.Models.Cpu;

namespace LongDep.Cli.Bench;

/// <summary>Device memory as the bench reads it after a sample.</summary>
/// <param name="PeakAllocated">Most bytes held at once by our own buffers since the last reset.</param>
/// <param name="DeviceUsed">Total minus free device memory now: our buffers, cuBLAS, the CUDA context, other processes.</param>
public readonly record struct MemoryReading(long PeakAllocated, long DeviceUsed);

/// <summary>The probes <c>longdep bench</c> times, on the CPU or on one GPU, sharing one copy of the model.</summary>
public abstract class BenchEngine : IDisposable
{
    /// <summary>"cpu" or "cuda".</summary>
    public abstract string Kind { get; }
    /// <summary>One line naming the device and the precision.</summary>
    public abstract string Description { get; }
    /// <summary>A new LADM probe on the shared model; disposing it gives its buffers back (not the model).</summary>
    public abstract ILadmProbe NewLadmProbe();
    /// <summary>A new ProLong probe on the shared model; disposing it gives its buffers back (not the model).</summary>
    public abstract IProLongProbe NewProLongProbe();
    /// <summary>Dense f16/bf16 matrix throughput the device can reach, TFLOP/s; null when unknown.</summary>
    public double? PeakTflops { get; init; }
    /// <summary>Device memory in bytes; null on the CPU.</summary>
    public virtual long? TotalMemory => null;
    /// <summary>Device memory in use before the model was uploaded (context, libraries, other processes); null on the CPU.</summary>
    public virtual long? BaselineUsed => null;
    /// <summary>Starts a new peak of our own allocations.</summary>
    public virtual void ResetPeak() { }
    /// <summary>Reads device memory now; null on the CPU.</summary>
    public virtual MemoryReading? ReadMemory() => null;

    public abstract void Dispose();

    /// <summary>
    /// The dense f16/bf16 throughput that a matrix product reaches on the named GPU, TFLOP/s (H100 and H200: 790, the
    /// issue's measured limit; others: the data sheet's dense figure). Null for a GPU not in the table.
    /// </summary>
    public static double? KnownPeakTflops(string deviceName)
    {
        string n = deviceName.ToUpperInvariant();
        if (n.Contains("H100") || n.Contains("H200") || n.Contains("GH200")) return 790;
        if (n.Contains("A100")) return 312;
        if (n.Contains("L40S")) return 362;
        if (n.Contains("L40")) return 181;
        if (n.Contains("A10G") || n.Contains("A10 ")) return 125;
        if (n.Contains("L4")) return 121;
        if (n.Contains("RTX 4090")) return 165;
        if (n.Contains("V100")) return 125;
        return null;
    }

    /// <summary>Parses <c>--device</c>: cpu, cuda, cuda:N or auto — one device; usage error otherwise.</summary>
    public static DeviceSpec ParseDevice(string device)
    {
        var spec = DeviceSpec.Parse(device);
        if (!spec.Cpu && spec.Gpus is not { Count: 1 })
            throw new CliException($"--device {device}: the bench runs on one device (cpu, cuda or cuda:N)", ExitCodes.Usage);
        return spec;
    }

    /// <summary>The engine for a parsed <c>--device</c> (auto: the first GPU when one can be used and runs the model, else the CPU).</summary>
    public static BenchEngine Create(DeviceSpec spec, ModelWeights weights, int threads, int pairBatch, bool bf16, AttentionKernels kernels, double? peakOverride)
    {
        if (spec.Cpu || (spec.Auto && (CudaModel.Unsupported(weights.Config) is not null || !CudaDevice.Available(out _))))
            return new CpuEngine(weights, threads) { PeakTflops = peakOverride };
        return CudaEngine.Open(spec.Gpus![0], weights, pairBatch, bf16, kernels, peakOverride);
    }

    private sealed class CpuEngine : BenchEngine
    {
        private readonly CpuForward forward;

        public CpuEngine(ModelWeights weights, int threads)
        {
            forward = new CpuForward(weights, threads, CpuMath.Fast);
            Description = $"cpu ({forward.MaxThreads} threads, float32)";
        }

        public override string Kind => "cpu";
        public override string Description { get; }
        public override ILadmProbe NewLadmProbe() => new CpuLadmProbe(forward);
        public override IProLongProbe NewProLongProbe() => new CpuProLongProbe(forward);

        public override void Dispose() { }
    }

    private sealed class CudaEngine : BenchEngine
    {
        private readonly CudaDevice device;
        private readonly CudaModel model;
        private readonly long baselineUsed;
        private readonly int pairBatch;

        private CudaEngine(CudaDevice device, CudaModel model, long baselineUsed, int pairBatch, string description)
        {
            this.device = device;
            this.model = model;
            this.baselineUsed = baselineUsed;
            this.pairBatch = pairBatch;
            Description = description;
        }

        public static CudaEngine Open(int ordinal, ModelWeights weights, int pairBatch, bool bf16, AttentionKernels kernels, double? peakOverride)
        {
            if (!CudaDevice.TryOpen(ordinal, out var device, out string reason))
                throw new CliException($"--device cuda:{ordinal} cannot be used: {reason}; use --device cpu");
            try
            {
                NvtxRanges.Install();
                var (free, total) = device.MemoryInfo();
                var precision = bf16 ? CudaPrecision.BF16 : CudaPrecision.F16;
                var model = new CudaModel(device, weights, new CudaModelOptions { Precision = precision, Kernels = kernels });
                string description = $"cuda:{ordinal} ({device.Describe()}; weights {(bf16 ? "bf16" : "f16")}, f32 accumulation, " +
                                     $"{Runtime.CudaBackend.KernelsDescription(weights.Config, kernels)}, " +
                                     $"ProLong pair batch {pairBatch}{(NvtxRanges.Available ? ", NVTX on" : "")})";
                return new CudaEngine(device, model, total - free, pairBatch, description)
                {
                    PeakTflops = peakOverride ?? KnownPeakTflops(device.Name),
                };
            }
            catch
            {
                device.Dispose();
                throw;
            }
        }

        public override string Kind => "cuda";
        public override string Description { get; }
        public override ILadmProbe NewLadmProbe() => new CudaLadmProbe(model);
        public override IProLongProbe NewProLongProbe() => new CudaProLongProbe(model, new CudaProLongOptions { PairBatch = pairBatch });
        public override long? TotalMemory => device.TotalMemory;
        public override long? BaselineUsed => baselineUsed;
        public override void ResetPeak() => device.ResetPeakAllocated();

        public override MemoryReading? ReadMemory()
        {
            var (free, total) = device.MemoryInfo();
            return new MemoryReading(device.PeakAllocatedBytes, total - free);
        }

        public override void Dispose()
        {
            model.Dispose();
            device.Dispose();
        }
    }
}
