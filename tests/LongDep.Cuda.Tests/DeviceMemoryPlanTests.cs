using LongDep.Models;
using LongDep.Models.Synthetic;

namespace LongDep.Cuda.Tests;

/// <summary>
/// <see cref="DeviceMemoryPlan"/>: the engine's own device buffers at TinyLlama's shape, counted by replaying the runs
/// on the allocation-counting backend — the performance issue's memory targets, checked without a GPU.
/// </summary>
public class DeviceMemoryPlanTests
{
    private const double GiB = 1 << 30;
    private static readonly ModelConfig TinyLlama = RandomModel.TinyLlamaConfig() with { ContextLength = 32768 };

    [Test]
    public void Ladm_At32K_FitsIn10GB_AndGrowsLinearlyTo128K()
    {
        long p32 = DeviceMemoryPlan.Ladm(TinyLlama, 32768);
        long p64 = DeviceMemoryPlan.Ladm(TinyLlama, 65536);
        long p128 = DeviceMemoryPlan.Ladm(TinyLlama, 131072);
        TestContext.Out.WriteLine($"LADM TinyLlama shape, our buffers: 32K {p32 / GiB:0.00} GiB, 64K {p64 / GiB:0.00} GiB, 128K {p128 / GiB:0.00} GiB");
        long weights = MemoryEstimate.WeightBytesF16(TinyLlama);
        Assert.That(p32, Is.GreaterThan(weights), "the weights alone are below the peak");
        // the target is 10 GB of GPU memory; leave 1 GiB for the context and cuBLAS's workspace
        Assert.That(p32, Is.LessThan(10e9 - GiB));
        // linear in T: doubling T from 64K adds twice what doubling from 32K added
        double ratio = (double)(p128 - p64) / (p64 - p32);
        Assert.That(ratio, Is.EqualTo(2.0).Within(0.05), $"growth 64K->128K / 32K->64K = {ratio:0.000}");
    }

    [Test]
    public void ProLong_5000PairsOf128TokenChunks_At32K_FitsIn10GB()
    {
        long peak = DeviceMemoryPlan.ProLong(TinyLlama, chunks: 256, chunkLength: 128, pairs: 5000);
        TestContext.Out.WriteLine($"ProLong TinyLlama shape, 256 chunks x 128, 5000 pairs, pair batch 128, our buffers: {peak / GiB:0.00} GiB");
        Assert.That(peak, Is.GreaterThan(MemoryEstimate.WeightBytesF16(TinyLlama)));
        Assert.That(peak, Is.LessThan(10e9 - GiB));
    }

    [Test]
    public void FeedForwardTileRows_FromTheEnvironment_CostThreeF16RowsOfFfDimEach()
    {
        // LONGDEP_MLP_TILE_ROWS (gpu-session.sh mlp times 4096, 8192, 16384): the gate, up and activation tiles grow by
        // rows x FfDim x 2 bytes each, and nothing else does.
        long at4096, at8192;
        using (new EnvironmentScope((CudaModelOptions.MlpTileRowsEnvironmentVariable, null)))
        {
            Assert.That(new CudaModelOptions().MlpTileRows, Is.EqualTo(4096));
            at4096 = DeviceMemoryPlan.ProLong(TinyLlama, chunks: 256, chunkLength: 128, pairs: 5000);
        }
        using (new EnvironmentScope((CudaModelOptions.MlpTileRowsEnvironmentVariable, " 8192 ")))
        {
            Assert.That(new CudaModelOptions().MlpTileRows, Is.EqualTo(8192));
            at8192 = DeviceMemoryPlan.ProLong(TinyLlama, chunks: 256, chunkLength: 128, pairs: 5000);
        }
        Assert.That(at8192 - at4096, Is.EqualTo(3L * 4096 * TinyLlama.FfDim * 2));
        foreach (var bad in new[] { "0", "-4096", "4k", "2097152" })
            using (new EnvironmentScope((CudaModelOptions.MlpTileRowsEnvironmentVariable, bad)))
            {
                var e = Assert.Throws<ArgumentException>(() => CudaModelOptions.MlpTileRowsFromEnvironment());
                Assert.That(e!.Message, Does.Contain("LONGDEP_MLP_TILE_ROWS").And.Contain($"'{bad}'"));
            }
    }

    [Test]
    public void ThePlan_IsWhatTheSimulatedRunAllocates()
    {
        // the counting replay and a real (simulated) run of the same probe allocate the same peak
        var config = RandomModel.TinyConfig();
        var weights = RandomModel.Create(config, 3);
        var schedule = Core.Probes.LadmSchedule.Create(300, 16, 2, 4);
        using var backend = new Twins.SimulatedBackend();
        using (var model = new CudaModel(backend, weights, new CudaModelOptions()))
        using (var probe = new CudaLadmProbe(model))
        {
            backend.ResetPeakTracked();
            probe.Measure(SelfTest.CudaSelfTest.RandomTokens(300, config.VocabSize, 1), schedule);
        }
        Assert.That(DeviceMemoryPlan.Ladm(config, 300, chunk: 16, dAfs: 2, dCds: 4), Is.EqualTo(backend.PeakTrackedBytes));
    }
}
