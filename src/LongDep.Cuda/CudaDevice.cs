using System.Diagnostics.CodeAnalysis;
using System.Runtime.InteropServices;
using LongDep.Cuda.Native;

namespace LongDep.Cuda;

/// <summary>
/// One CUDA GPU, opened through its primary context. Owns the compute stream, the kernels module and the cuBLAS handle
/// that the CUDA forward uses. Thread-compatible: use one device object from one thread at a time.
/// </summary>
public sealed unsafe class CudaDevice : IDisposable
{
    private readonly PrimaryContextHandle context;
    private bool disposed;

    private readonly int handle; // the driver's CUdevice for this ordinal

    private CudaDevice(int ordinal, int handle, PrimaryContextHandle context)
    {
        Ordinal = ordinal;
        this.handle = handle;
        this.context = context;
        Name = ReadName(handle);
        ComputeCapability = (Attribute(CuDeviceAttribute.ComputeCapabilityMajor), Attribute(CuDeviceAttribute.ComputeCapabilityMinor));
        MultiprocessorCount = Attribute(CuDeviceAttribute.MultiprocessorCount);
        MaxSharedBytesPerBlockOptin = Attribute(CuDeviceAttribute.MaxSharedMemoryPerBlockOptin);
        nuint total;
        CudaCheck.Driver(DriverApi.cuDeviceTotalMem(&total, handle), "cuDeviceTotalMem_v2");
        TotalMemory = (long)total;
        int version;
        CudaCheck.Driver(DriverApi.cuDriverGetVersion(&version), "cuDriverGetVersion");
        DriverVersion = version;
        Backend = new CudaBackend(this, context);
    }

    public int Ordinal { get; }
    public string Name { get; }
    public (int Major, int Minor) ComputeCapability { get; }
    public int MultiprocessorCount { get; }
    public long TotalMemory { get; }
    /// <summary>The driver's CUDA version as an integer, e.g. 12040 for 12.4.</summary>
    public int DriverVersion { get; }
    internal int MaxSharedBytesPerBlockOptin { get; }
    internal CudaBackend Backend { get; }

    /// <summary>The stream every operation of this device object is queued on.</summary>
    public CudaStream Stream => Backend.Stream;

    /// <summary>Number of CUDA devices; throws <see cref="CudaUnavailableException"/> when the driver cannot be used.</summary>
    public static int DeviceCount()
    {
        InitializeDriver();
        int count;
        CudaCheck.Driver(DriverApi.cuDeviceGetCount(&count), "cuDeviceGetCount");
        return count;
    }

    /// <summary>Opens device <paramref name="ordinal"/>. Kernels and cuBLAS load on first use (see <see cref="TryOpen"/> to check them now).</summary>
    /// <exception cref="CudaUnavailableException">No driver, no such device, or the driver refuses to start.</exception>
    public static CudaDevice Open(int ordinal = 0)
    {
        int count = DeviceCount();
        if (ordinal < 0 || ordinal >= count)
            throw new CudaUnavailableException(count == 0
                ? "The CUDA driver reports no devices."
                : $"CUDA device {ordinal} does not exist: this machine has {count} (ordinals 0..{count - 1}).");
        int device;
        CudaCheck.Driver(DriverApi.cuDeviceGet(&device, ordinal), "cuDeviceGet", $"ordinal {ordinal}");
        var context = PrimaryContextHandle.Retain(device);
        try
        {
            context.MakeCurrent();
            return new CudaDevice(ordinal, device, context);
        }
        catch
        {
            context.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Opens device <paramref name="ordinal"/> and checks that everything the CUDA probes need is there: the driver, the
    /// device, cuBLAS and the kernels fatbin (loaded for this GPU). On failure returns false with the reason.
    /// </summary>
    public static bool TryOpen(int ordinal, [NotNullWhen(true)] out CudaDevice? device, out string reason)
    {
        device = null;
        CudaDevice? opened = null;
        try
        {
            opened = Open(ordinal);
            opened.Backend.EnsureKernels();
            opened.Backend.EnsureBlas();
            device = opened;
            reason = "";
            return true;
        }
        catch (Exception e) when (e is CudaUnavailableException or CudaException or DllNotFoundException
                                       or EntryPointNotFoundException or NotSupportedException)
        {
            opened?.Dispose();
            reason = e.Message;
            return false;
        }
    }

    /// <summary>Whether <c>--device auto</c> can use CUDA (device 0 opens with cuBLAS and kernels); if not, why.</summary>
    public static bool Available(out string reason)
    {
        if (!TryOpen(0, out var device, out reason)) return false;
        device.Dispose();
        return true;
    }

    /// <summary>Bytes held now by buffers allocated through this device object (not cuBLAS's or the driver's own).</summary>
    public long AllocatedBytes => Backend.TrackedBytes;

    /// <summary>The most bytes held at once by this device object's buffers since it opened or since <see cref="ResetPeakAllocated"/>.</summary>
    public long PeakAllocatedBytes => Backend.PeakTrackedBytes;

    /// <summary>Starts a new <see cref="PeakAllocatedBytes"/> from what is held now.</summary>
    public void ResetPeakAllocated() => Backend.ResetPeakTracked();

    /// <summary>Free and total device memory in bytes.</summary>
    public (long Free, long Total) MemoryInfo() => Backend.MemoryInfo();

    /// <summary>Allocates <paramref name="count"/> elements; out of memory names <paramref name="what"/> and the setting <paramref name="hint"/>.</summary>
    public DeviceBuffer<T> Allocate<T>(long count, string what = "a device buffer", string hint = "the batch size") where T : unmanaged =>
        new(Backend, count, what, hint);

    public PinnedBuffer<T> AllocatePinned<T>(long count) where T : unmanaged => new(context, count);

    public CudaStream CreateStream() => new(context);
    public CudaEvent CreateEvent() => new(context);

    /// <summary>Loads a module image (fatbin, cubin or PTX).</summary>
    public CudaModule LoadModule(ReadOnlySpan<byte> image, string source) => new(context, image, source);

    /// <summary>The LongDep kernels module (located by <see cref="FatbinLocator"/>, loaded once).</summary>
    public CudaModule Kernels => Backend.EnsureKernels();

    /// <summary>Waits for all queued work; a kernel fault surfaces here as a <see cref="CudaException"/>.</summary>
    public void Synchronize() => Backend.Synchronize();

    public string Describe() =>
        $"CUDA device {Ordinal}: {Name}, compute {ComputeCapability.Major}.{ComputeCapability.Minor}, " +
        $"{CudaOutOfMemoryException.FormatBytes(TotalMemory)}, {MultiprocessorCount} SMs, driver {DriverVersion / 1000}.{DriverVersion % 1000 / 10}";

    public override string ToString() => Describe();

    public void Dispose()
    {
        if (disposed) return;
        disposed = true;
        Backend.Dispose();
        context.Dispose();
    }

    private int Attribute(int attribute)
    {
        int value;
        CudaCheck.Driver(DriverApi.cuDeviceGetAttribute(&value, attribute, handle), "cuDeviceGetAttribute", $"attribute {attribute}");
        return value;
    }

    private static string ReadName(int device)
    {
        byte* buffer = stackalloc byte[256];
        CudaCheck.Driver(DriverApi.cuDeviceGetName(buffer, 256, device), "cuDeviceGetName");
        return Marshal.PtrToStringUTF8((IntPtr)buffer) ?? $"device {device}";
    }

    private static readonly object InitGate = new();
    private static bool initialized;

    private static void InitializeDriver()
    {
        lock (InitGate)
        {
            if (initialized) return;
            NativeLibraries.LoadDriver();
            var result = DriverApi.cuInit(0);
            if (result != CuResult.Success)
            {
                var (name, description) = CudaCheck.Describe(result);
                string advice = result switch
                {
                    CuResult.NoDevice => "no CUDA-capable GPU is visible (check nvidia-smi and CUDA_VISIBLE_DEVICES)",
                    CuResult.StubLibrary => "the loaded libcuda is the toolkit's link stub, not the driver; install the NVIDIA driver",
                    _ => "the NVIDIA driver could not start (check nvidia-smi)",
                };
                throw new CudaUnavailableException(
                    $"cuInit failed with {name} ({(int)result}): {description}; {advice}. Driver library: {NativeLibraries.DriverPath}.");
            }
            initialized = true;
        }
    }
}
