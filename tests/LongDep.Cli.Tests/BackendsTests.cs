using LongDep.Cli.Runtime;
using LongDep.Core.Pipeline;
using LongDep.Models;
using LongDep.Models.Synthetic;

namespace LongDep.Cli.Tests;

/// <summary><c>--device auto</c>'s choice for models the CUDA forward cannot run.</summary>
public class BackendsTests
{
    [Test]
    public void DeviceAuto_KeepsAModelTheGpuCannotRun_OnTheCpu_Saying_Why()
    {
        // A head dimension past the kernels' 256: the CUDA forward refuses it, so auto does not open a GPU at all.
        var config = RandomModel.Shape("tiny", vocabSize: 50) with { Dim = 512, Heads = 1, KvHeads = 1, HeadDim = 512, FfDim = 32, Layers = 1 };
        Assert.That(Cuda.CudaModel.Unsupported(config), Does.Contain("head dimension 512"));
        var loaded = new LoadedModel("m", ModelFormat.Gguf, RandomModel.Create(config, 1), null, null);
        var (workers, description) = Backends.Create(DeviceSpec.Parse("auto"), loaded, new ScoreSettings { Method = ScoreMethod.Ladm },
            new BackendOptions(Threads: 1));
        try
        {
            Assert.That(workers.Select(w => w.Device), Is.EqualTo(new[] { "cpu" }));
            Assert.That(description, Does.StartWith("cpu (1 threads, float32) (auto: head dimension 512: the CUDA kernels support up to 256)"));
        }
        finally
        {
            foreach (var w in workers) w.Dispose();
        }
        Assert.That(Cuda.CudaModel.DevicePaths(config), Does.StartWith("CPU only (head dimension 512"));
    }
}
