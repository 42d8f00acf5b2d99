using LongDep.Cuda.Twins;
using LongDep.Models.Synthetic;

namespace LongDep.Cuda.Tests;

/// <summary>The backend's count of bytes held by our buffers (what <c>longdep bench</c> reports as peak memory).</summary>
public class AllocationCounterTests
{
    [Test]
    public void CurrentAndPeak_FollowAllocationsAndDisposals()
    {
        using var backend = new SimulatedBackend();
        Assert.That(backend.TrackedBytes, Is.EqualTo(0));
        var a = backend.Allocate<float>(1000, "a", "none");     // 4000 bytes
        var b = backend.Allocate<double>(10, "b", "none");      // 80 bytes
        Assert.Multiple(() =>
        {
            Assert.That(backend.TrackedBytes, Is.EqualTo(4080));
            Assert.That(backend.PeakTrackedBytes, Is.EqualTo(4080));
        });
        a.Dispose();
        a.Dispose(); // a second dispose must not count twice
        Assert.Multiple(() =>
        {
            Assert.That(backend.TrackedBytes, Is.EqualTo(80));
            Assert.That(backend.PeakTrackedBytes, Is.EqualTo(4080), "the peak stays");
        });
        backend.ResetPeakTracked();
        Assert.That(backend.PeakTrackedBytes, Is.EqualTo(80));
        using (backend.Allocate<byte>(300, "c", "none"))
            Assert.That(backend.PeakTrackedBytes, Is.EqualTo(380));
        b.Dispose();
        using var empty = backend.Allocate<int>(0, "empty", "none");
        Assert.Multiple(() =>
        {
            Assert.That(backend.TrackedBytes, Is.EqualTo(0));
            Assert.That(backend.PeakTrackedBytes, Is.EqualTo(380));
            Assert.That(backend.TrackedBytes, Is.EqualTo(backend.AllocatedBytes), "agrees with the simulator's own count");
        });
    }

    [Test]
    public void ProbeRun_PeakCoversTheWeightsAndMatchesTheSimulatorsPeak()
    {
        using var backend = new SimulatedBackend();
        var weights = RandomModel.Create(RandomModel.TinyConfig(), 5);
        using (var model = new CudaModel(backend, weights, new CudaModelOptions { Precision = CudaPrecision.F32 }))
        using (var probe = new CudaLadmProbe(model))
        {
            var schedule = Core.Probes.LadmSchedule.Create(200, chunk: 8, dAfs: 2, dCds: 3);
            probe.Measure(Enumerable.Range(0, 200).Select(i => i % 97).ToArray(), schedule);
            Assert.Multiple(() =>
            {
                Assert.That(backend.PeakTrackedBytes, Is.GreaterThanOrEqualTo(model.WeightBytes));
                Assert.That(backend.PeakTrackedBytes, Is.EqualTo(backend.PeakBytes));
            });
        }
        Assert.That(backend.TrackedBytes, Is.EqualTo(0), "everything given back");
    }
}
