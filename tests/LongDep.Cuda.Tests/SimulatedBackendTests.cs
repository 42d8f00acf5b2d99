using LongDep.Cuda.SelfTest;
using LongDep.Cuda.Twins;

namespace LongDep.Cuda.Tests;

/// <summary>The simulator's own guarantees, the launch layer's checks, and the self-test harness run without a GPU.</summary>
public class SimulatedBackendTests
{
    [Test]
    public void Views_OutsideAnAllocation_AreReported()
    {
        using var backend = new SimulatedBackend();
        using var buffer = backend.Allocate<float>(10, "test", "nothing");
        Assert.That(backend.View<float>(buffer.Pointer.Address, 10, "ok").Length, Is.EqualTo(10));
        var past = Assert.Throws<InvalidOperationException>(() => backend.View<float>(buffer.At(5).Address, 6, "kernel x argument 2"));
        Assert.That(past!.Message, Does.Contain("kernel x argument 2").And.Contain("past the end"));
        var nowhere = Assert.Throws<InvalidOperationException>(() => backend.View<float>(12345, 1, "stray"));
        Assert.That(nowhere!.Message, Does.Contain("not inside any live device allocation"));
    }

    [Test]
    public void FreshAllocations_ReadAsNaN_SoUnwrittenMemoryShows()
    {
        using var backend = new SimulatedBackend();
        using var buffer = backend.Allocate<float>(4, "test", "nothing");
        Assert.That(buffer.ToArray().All(float.IsNaN), Is.True);
        buffer.Clear();
        Assert.That(buffer.ToArray(), Is.EqualTo(new float[4]));
    }

    [Test]
    public void Buffers_CheckRanges_AndFreeOnDispose()
    {
        using var backend = new SimulatedBackend();
        var buffer = backend.Allocate<int>(5, "test", "nothing");
        Assert.Throws<ArgumentOutOfRangeException>(() => buffer.CopyFrom(new int[6]));
        Assert.Throws<ArgumentOutOfRangeException>(() => buffer.CopyTo(new int[2], offset: 4));
        Assert.Throws<ArgumentOutOfRangeException>(() => buffer.At(6));
        Assert.That(buffer.At(5).Address - buffer.Pointer.Address, Is.EqualTo(20UL), "one past the end is allowed");
        Assert.That(backend.LiveAllocations, Is.EqualTo(1));
        buffer.Dispose();
        Assert.That(backend.LiveAllocations, Is.Zero);
        Assert.Throws<ObjectDisposedException>(() => _ = buffer.Pointer);
        using var empty = backend.Allocate<int>(0, "test", "nothing");
        Assert.That(empty.Pointer.IsNull, Is.True);
        Assert.That(empty.ToArray(), Is.Empty);
    }

    [Test]
    public void Launch_WithTooSmallAGrid_IsCaught()
    {
        using var backend = new SimulatedBackend();
        using var x = backend.Allocate<float>(40, "test", "nothing");
        using var w = backend.Allocate<float>(4, "test", "nothing");
        var e = Assert.Throws<InvalidOperationException>(() =>
            backend.Launch(KernelNames.RmsNormF32, 9, 256, 0, [x, w, x, 10, 4, 1e-5f]));
        Assert.That(e!.Message, Does.Contain("rmsnorm_f32").And.Contain("grid.x 9 < rows 10"));
    }

    [Test]
    public void KernelOps_RejectsShapesTheKernelsDoNotSupport()
    {
        using var backend = new SimulatedBackend();
        var ops = new KernelOps(backend);
        var p = DevicePtr.Null;
        Assert.Throws<NotSupportedException>(() => ops.Attention(p, p, p, p, p, p, p, CudaPrecision.F32, 1, 4, 0, 2, 1, 512));
        Assert.Throws<ArgumentException>(() => ops.Attention(p, p, p, p, p, p, p, CudaPrecision.F32, 1, 4, 0, 3, 2, 64));
        Assert.Throws<ArgumentException>(() => ops.Attention(p, p, p, p, p, p, p, CudaPrecision.F32, 1, 4, 5, 2, 1, 64));
        var k = new DevicePtr(256);
        Assert.Throws<ArgumentException>(() => ops.RopeQk(p, p, p, p, 3, 4, 1, 64, 200, 64, Models.RopeStyle.Halves));
        Assert.Throws<ArgumentException>(() => ops.RopeQk(p, k, p, p, 3, 4, 2, 64, 256, 100, Models.RopeStyle.Halves));
        Assert.Throws<ArgumentException>(() => ops.RopeQk(p, p, p, p, 3, 1, 1, 258, 258, 258, Models.RopeStyle.Halves));
    }

    [Test]
    public void Linear_UsesTheRightTransposes()
    {
        // y = W x for row-major W [3, 2]: checks KernelOps.Linear's cuBLAS mapping through the simulated GemmEx
        using var backend = new SimulatedBackend();
        var ops = new KernelOps(backend);
        float[] w = [1, 2, 3, 4, 5, 6];
        float[] x = [1, -1, 2, 0.5f];
        using var dw = backend.Allocate<float>(6, "w", "-");
        using var dx = backend.Allocate<float>(4, "x", "-");
        using var dy = backend.Allocate<float>(6, "y", "-");
        dw.CopyFrom(w);
        dx.CopyFrom(x);
        ops.Linear(dx.Pointer, dw.Pointer, CudaPrecision.F32, dy.Pointer, rows: 2, inDim: 2, outDim: 3, accumulate: false);
        Assert.That(dy.ToArray(), Is.EqualTo(new float[] { -1, -1, -1, 3, 8, 13 }));
    }

    [Test]
    public void Linear_WithAnF16Output_RoundsEachSumOnce_ToNearestEven()
    {
        // y = W x with x = [1, 1]: row sums 1 + 2^-11 (halfway between the f16 neighbours 1 and 1 + 2^-10: even wins, 1)
        // and 1 + 3·2^-12 (above halfway: 1 + 2^-10). Both inputs are exact in f16.
        using var backend = new SimulatedBackend();
        var ops = new KernelOps(backend);
        using var dw = backend.Allocate<byte>(8, "w", "-");
        using var dx = backend.Allocate<byte>(4, "x", "-");
        using var dy = backend.Allocate<byte>(4, "y", "-");
        dw.CopyFrom(F16Bits(1f, MathF.Pow(2, -11), 1f, 3 * MathF.Pow(2, -12)));
        dx.CopyFrom(F16Bits(1f, 1f));
        ops.Linear(dx.Pointer, dw.Pointer, CudaPrecision.F16, dy.Pointer, rows: 1, inDim: 2, outDim: 2, accumulate: false,
            outputType: CudaPrecision.F16);
        Assert.That(dy.ToArray(), Is.EqualTo(F16Bits(1f, 1f + MathF.Pow(2, -10))));
        Assert.That(BitConverter.ToUInt16(dy.ToArray(), 2), Is.EqualTo(0x3C01));
    }

    [Test]
    public void SwiGlu_ReadsGateAndUpInTheOutputType()
    {
        // silu(2)·3 = 2/(1+e^-2)·3 = 5.2838...; in f16: 5.28515625 (ulp 2^-8 above 4). A float32 read of the f16 bytes
        // would see two halves packed in one float and give something else entirely.
        using var backend = new SimulatedBackend();
        var ops = new KernelOps(backend);
        using var dg = backend.Allocate<byte>(4, "gate", "-");
        using var du = backend.Allocate<byte>(4, "up", "-");
        using var dy = backend.Allocate<byte>(4, "out", "-");
        dg.CopyFrom(F16Bits(2f, 0f));
        du.CopyFrom(F16Bits(3f, 7f));
        ops.SwiGlu(dg.Pointer, du.Pointer, dy.Pointer, CudaPrecision.F16, 2);
        Assert.That(dy.ToArray(), Is.EqualTo(F16Bits(5.28515625f, 0f)));
    }

    private static byte[] F16Bits(params float[] values) => values.SelectMany(v => BitConverter.GetBytes((Half)v)).ToArray();

    [Test]
    public void SelfTest_OnTheSimulator_PassesAgainstTheReference_AndPrintsATable()
    {
        using var backend = new SimulatedBackend();
        var log = new StringWriter();
        bool ok = CudaSelfTest.Run(backend, log, new SelfTestOptions { Quick = true },
            ReferenceProbes.Ladm, ReferenceProbes.ProLong);
        string text = log.ToString();
        TestContext.Out.WriteLine(text);
        Assert.That(ok, Is.True);
        Assert.That(text, Does.StartWith(CheckResult.Header));
        Assert.That(text, Does.Contain("attention_fwd").And.Contain("pfs_column_mass").And.Contain("ProLong").And.Contain("all"));
        Assert.That(text, Does.Not.Contain("FAIL"));
        Assert.That(text, Does.Contain("attention_mma").And.Contain("tensor cores").And.Contain("tensor kernels"));
        foreach (var (name, _) in CudaSelfTest.FamilyConfigs())
            Assert.That(text, Does.Contain($"{name} LADM PFS (F32").And.Contain($"{name} ProLong (F16"), name);
        Assert.That(CudaSelfTest.FamilyConfigs().Select(f => f.Config.Architecture).Distinct(),
            Is.SupersetOf(new[] { "llama", "mistral", "qwen2", "qwen3", "gemma2", "gemma3", "phi3", "opt" }));
        Assert.That(backend.Launches.Keys, Has.Some.Contains("mma"));
        Assert.That(backend.LiveAllocations, Is.Zero);
    }

    [Test]
    public void SelfTest_WithTheSimpleKernelSet_LaunchesNoTensorCoreKernel()
    {
        using var backend = new SimulatedBackend();
        var log = new StringWriter();
        bool ok = CudaSelfTest.Run(backend, log, new SelfTestOptions { Quick = true, Kernels = AttentionKernels.Simple, Families = false },
            ReferenceProbes.Ladm, ReferenceProbes.ProLong);
        string text = log.ToString();
        Assert.That(ok, Is.True, text);
        Assert.That(text, Does.Contain("the tensor-core kernels are not checked").And.Contain("head dim 64"));
        Assert.That(text, Does.Not.Contain("attention_mma").And.Not.Contain("tensor kernels"));
        Assert.That(backend.Launches.Keys.Where(k => k.Contains("mma", StringComparison.Ordinal)), Is.Empty);
    }

    [Test]
    public void SelfTest_FailsWhenTheCpuProbeDisagrees()
    {
        using var backend = new SimulatedBackend();
        var log = new StringWriter();
        bool ok = CudaSelfTest.Run(backend, log, new SelfTestOptions { Quick = true, Families = false },
            w => new ScaledLadm(ReferenceProbes.Ladm(w), 1.01), ReferenceProbes.ProLong);
        Assert.That(ok, Is.False);
        Assert.That(log.ToString(), Does.Contain("LADM PFS").And.Contain("FAIL"));
    }

    [Test]
    public void Compare_JudgesAgainstTheArraysScale_AndFailsOnNaN()
    {
        var pass = Compare.Arrays("x", [1.0, 0.0011], [1.0, 0.001], 2e-3, floorFraction: 0.1);
        Assert.That(pass.Passed, Is.True, "a small absolute miss near zero is judged against 0.1 x max");
        var fail = Compare.Arrays("x", [1.003, 0.001], [1.0, 0.001], 2e-3);
        Assert.That(fail.Passed, Is.False);
        Assert.That(fail.MaxRel, Is.EqualTo(0.003 / 1.01).Within(1e-9));
        var nan = Compare.Arrays("x", [double.NaN], [1.0], 1);
        Assert.That(nan.Passed, Is.False);
        Assert.That(Compare.Arrays("x", [1.0], [1.0, 2.0], 1).Passed, Is.False);
    }

    private sealed class ScaledLadm(Core.Probes.ILadmProbe inner, double factor) : Core.Probes.ILadmProbe
    {
        public Core.Probes.LadmMeasurement Measure(ReadOnlySpan<int> tokens, Core.Probes.LadmSchedule schedule, CancellationToken ct = default)
        {
            var m = inner.Measure(tokens, schedule, ct);
            return m with { Pfs = m.Pfs.Select(l => l.Select(s => s.Select(v => v * factor).ToArray()).ToArray()).ToArray() };
        }

        public void Dispose() => inner.Dispose();
    }
}
