using System.Runtime.InteropServices;
using LongDep.Cuda.Native;

namespace LongDep.Cuda.Tests;

/// <summary>
/// Points this test process at the emulated CUDA driver (build/native/emu-cuda, two GPUs) before anything loads a
/// driver, so that <see cref="GpuTests"/> (linked from LongDep.Cuda.Tests) runs the real host path on the kernel
/// emulator. The module it loads is nvcc's fatbin when it is built, else the emulator's own image, so these tests
/// need no CUDA toolkit.
/// </summary>
[SetUpFixture]
public sealed partial class EmulatedDriverSetup
{
    public static string? Folder { get; private set; }

    [OneTimeSetUp]
    public void PointAtTheEmulatedDriver()
    {
        Folder = Prerequisites.EmulatedGpuOrNull;
        if (Folder is null) return;
        Environment.SetEnvironmentVariable("CUDA_HOME", Folder);
        Environment.SetEnvironmentVariable("CUDA_PATH", null);
        string image = Path.Combine(Folder, "longdep_kernels.emu");
        Environment.SetEnvironmentVariable(FatbinLocator.EnvironmentVariable, Prerequisites.FatbinOrNull ?? (File.Exists(image) ? image : null));
        // The driver reads its settings with getenv, which does not see .NET's copy of the environment.
        NativeSetenv("LONGDEP_EMU_DEVICES", "2");
        NativeSetenv("LONGDEP_EMU_MEMORY", "64G");
        NativeSetenv("LONGDEP_EMU_FAIL", "");
    }

    private static void NativeSetenv(string name, string value)
    {
        if (setenv(name, value, 1) != 0) throw new InvalidOperationException($"setenv {name} failed");
    }

    [LibraryImport("libc", StringMarshalling = StringMarshalling.Utf8)]
    private static partial int setenv(string name, string value, int overwrite);
}

/// <summary>
/// What the emulated device enforces beyond the GPU tests: deferred stream work, the per-allocation guard, device
/// ownership of kernel pointers, sticky faults, and a fresh context after the last release. The destructive tests use
/// GPU 1, so the GPU tests' device 0 stays clean.
/// </summary>
[TestFixture]
[NonParallelizable]
public sealed class EmulatedDriverTests
{
    [OneTimeSetUp]
    public void RequireTheEmulatedDriver()
    {
        Prerequisites.EmulatedGpu();
        Prerequisites.EmulatedGpuKernels();
    }

    private static CudaDevice Open(int ordinal)
    {
        Assert.That(CudaDevice.TryOpen(ordinal, out var device, out string reason), Is.True, reason);
        return device!;
    }

    [Test]
    public void TheProcessRunsOnTheEmulatedDriver_WithTwoGpus()
    {
        Assert.That(CudaDevice.DeviceCount(), Is.EqualTo(2));
        using var gpu = Open(1);
        Assert.That(gpu.Name, Does.Contain("emulated"));
        Assert.That(NativeLibraries.DriverPath, Does.StartWith(EmulatedDriverSetup.Folder!));
        Assert.That(NativeLibraries.CublasPath, Does.StartWith(EmulatedDriverSetup.Folder!));
        Assert.That(gpu.ComputeCapability, Is.EqualTo((9, 0)));
        Assert.That(gpu.MaxSharedBytesPerBlockOptin, Is.EqualTo(232448));
    }

    [Test]
    public void TheModule_IsNvccsFatbinWhenBuilt_ElseTheEmulatorsImage_HoldingEveryKernelTheHostLaunches()
    {
        using var gpu = Open(1);
        string expected = Prerequisites.FatbinOrNull ?? Path.Combine(EmulatedDriverSetup.Folder!, "longdep_kernels.emu");
        Assert.That(gpu.Kernels.Source, Is.EqualTo(expected));
        foreach (var spec in KernelNames.All)
            Assert.That(gpu.Kernels.GetKernel(spec).MaxThreadsPerBlock, Is.GreaterThanOrEqualTo(256), spec.Name);
    }

    [Test]
    public void AnEmulatorImage_OffersOnlyTheKernelsItNames()
    {
        string image = Path.Combine(Path.GetTempPath(), $"longdep-emu-image-{Guid.NewGuid():N}.emu");
        string? before = Environment.GetEnvironmentVariable(FatbinLocator.EnvironmentVariable);
        try
        {
            File.WriteAllBytes(image, [.. "longdep kernel emulator image\0convert_f32_to_f16\0\0"u8]);
            Environment.SetEnvironmentVariable(FatbinLocator.EnvironmentVariable, image);
            using var gpu = Open(1);
            Assert.That(gpu.Kernels.GetKernel(KernelNames.ConvertF32ToF16).MaxThreadsPerBlock, Is.GreaterThanOrEqualTo(256));
            var e = Assert.Throws<CudaException>(() => gpu.Kernels.GetKernel(KernelNames.All.First(k => k.Name != KernelNames.ConvertF32ToF16.Name)));
            Assert.That(e!.ErrorName, Is.EqualTo("CUDA_ERROR_NOT_FOUND"));
            Assert.That(e.Message, Does.Contain(image));
        }
        finally
        {
            Environment.SetEnvironmentVariable(FatbinLocator.EnvironmentVariable, before);
            File.Delete(image);
        }
    }

    [Test]
    public void QueuedWork_RunsOnlyWhenTheHostSynchronizes()
    {
        using var gpu = Open(0);
        using var buffer = gpu.Allocate<float>(64);
        using var pinned = gpu.AllocatePinned<float>(64);
        for (int i = 0; i < 64; i++) pinned.Span[i] = i;
        buffer.CopyFromAsync(pinned, 64);
        // The copy has not run: overwriting its pinned source now changes what it copies, as on a GPU.
        pinned.Span[5] = -1;
        using var back = gpu.AllocatePinned<float>(64);
        back.Span.Fill(7f);
        buffer.CopyToAsync(back, 64);
        Assert.That(back.Span[0], Is.EqualTo(7f), "a copy to pinned memory is not done before the stream is synchronized");
        gpu.Synchronize();
        Assert.That(back.Span[5], Is.EqualTo(-1f));
        Assert.That(back.Span[63], Is.EqualTo(63f));
    }

    [Test]
    public void FreshDeviceMemory_IsNaN()
    {
        using var gpu = Open(0);
        using var buffer = gpu.Allocate<float>(16);
        Assert.That(buffer.ToArray().All(float.IsNaN), Is.True);
    }

    [Test]
    public void AKernelWritingPastItsBuffer_FailsTheContext_NamingTheKernel_UntilTheContextIsReleased()
    {
        var gpu = Open(1);
        try
        {
            using var src = gpu.Allocate<float>(1000);
            using var dst = gpu.Allocate<ushort>(900); // 100 halves too few
            src.CopyFrom(new float[1000]);
            gpu.Backend.Launch(KernelNames.ConvertF32ToF16, new Dim3(4), new Dim3(256), 0, [src, dst, 1000L]);
            var e = Assert.Throws<CudaException>(() => gpu.Synchronize());
            Assert.That(e!.ErrorName, Is.EqualTo("CUDA_ERROR_ILLEGAL_ADDRESS"));
            Assert.That(e.Message, Does.Contain("convert_f32_to_f16").And.Contain("1800-byte allocation"));
            // Sticky, as after a fault on a GPU: every later call in the context fails.
            Assert.Throws<CudaException>(() => src.CopyFrom(new float[1000]));
        }
        finally
        {
            gpu.Dispose();
        }
        using var again = Open(1);
        using var fresh = again.Allocate<float>(4);
        fresh.CopyFrom([1f, 2f, 3f, 4f]);
        Assert.That(fresh.ToArray(), Is.EqualTo(new[] { 1f, 2f, 3f, 4f }));
    }

    [Test]
    public void AKernelGivenMemoryOfAnotherGpu_IsAnIllegalAddress()
    {
        using var gpu0 = Open(0);
        using var onGpu0 = gpu0.Allocate<float>(256);
        onGpu0.Clear();
        var gpu1 = Open(1);
        try
        {
            using var onGpu1 = gpu1.Allocate<ushort>(256);
            gpu1.Backend.Launch(KernelNames.ConvertF32ToF16, new Dim3(1), new Dim3(256), 0, [onGpu0, onGpu1, 256L]);
            var e = Assert.Throws<CudaException>(() => gpu1.Synchronize());
            Assert.That(e!.Message, Does.Contain("argument 0").And.Contain("device 1"));
        }
        finally
        {
            gpu1.Dispose();
        }
    }

    [Test]
    public void GemmOperandsOutsideTheirBuffers_AreAnIllegalAddress()
    {
        var gpu = Open(1);
        try
        {
            using var a = gpu.Allocate<float>(4 * 8);
            using var b = gpu.Allocate<float>(8 * 3);
            using var c = gpu.Allocate<float>(4 * 2); // needs 4 x 3
            a.Clear();
            b.Clear();
            gpu.Backend.Gemm(new GemmCall(false, false, 4, 3, 8, a.Pointer, CudaPrecision.F32, 4, 0, b.Pointer, CudaPrecision.F32, 8, 0,
                c.Pointer, 4, 0, 1f, 0f));
            var e = Assert.Throws<CudaException>(() => gpu.Synchronize());
            Assert.That(e!.Message, Does.Contain("GEMM").And.Contain("C ("));
        }
        finally
        {
            gpu.Dispose();
        }
    }
}
