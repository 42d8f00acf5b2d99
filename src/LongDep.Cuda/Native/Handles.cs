using System.Runtime.InteropServices;

namespace LongDep.Cuda.Native;

/// <summary>A retained primary context of one device; releasing it drops the retain count.</summary>
internal sealed class PrimaryContextHandle : SafeHandle
{
    public int Device { get; }

    private PrimaryContextHandle(int device) : base(IntPtr.Zero, ownsHandle: true)
    {
        Device = device;
    }

    public override bool IsInvalid => handle == IntPtr.Zero;

    public static unsafe PrimaryContextHandle Retain(int device)
    {
        var result = new PrimaryContextHandle(device);
        IntPtr context;
        CudaCheck.Driver(DriverApi.cuDevicePrimaryCtxRetain(&context, device), "cuDevicePrimaryCtxRetain", $"device {device}");
        result.SetHandle(context);
        return result;
    }

    /// <summary>Makes the context current on the calling thread (cheap; done before every driver call that needs it).</summary>
    public void MakeCurrent()
    {
        ObjectDisposedException.ThrowIf(IsClosed, this);
        CudaCheck.Driver(DriverApi.cuCtxSetCurrent(handle), "cuCtxSetCurrent", $"device {Device}");
    }

    protected override bool ReleaseHandle() => DriverApi.cuDevicePrimaryCtxRelease(Device) == CuResult.Success;
}

/// <summary>
/// A driver object that lives in a context (stream, event, module, cuBLAS handle). It holds a reference on the context
/// handle, so the context outlives it however the two are finalized, and makes the context current before destroying.
/// </summary>
internal abstract class ContextBoundHandle : SafeHandle
{
    private readonly PrimaryContextHandle context;
    private bool contextReferenced;

    protected ContextBoundHandle(PrimaryContextHandle context) : base(IntPtr.Zero, ownsHandle: true)
    {
        this.context = context;
    }

    public override bool IsInvalid => handle == IntPtr.Zero;

    /// <summary>Adopts a freshly created driver object; from here on it holds a reference on the context.</summary>
    internal void Set(IntPtr value)
    {
        if (value == IntPtr.Zero) return;
        context.DangerousAddRef(ref contextReferenced);
        SetHandle(value);
    }

    protected abstract bool Destroy(IntPtr value);

    protected override bool ReleaseHandle()
    {
        bool ok = DriverApi.cuCtxSetCurrent(context.DangerousGetHandle()) == CuResult.Success && Destroy(handle);
        if (contextReferenced) context.DangerousRelease();
        return ok;
    }
}

internal sealed class StreamHandle(PrimaryContextHandle context) : ContextBoundHandle(context)
{
    protected override bool Destroy(IntPtr value) => DriverApi.cuStreamDestroy(value) == CuResult.Success;
}

internal sealed class EventHandle(PrimaryContextHandle context) : ContextBoundHandle(context)
{
    protected override bool Destroy(IntPtr value) => DriverApi.cuEventDestroy(value) == CuResult.Success;
}

internal sealed class CudaModuleHandle(PrimaryContextHandle context) : ContextBoundHandle(context)
{
    protected override bool Destroy(IntPtr value) => DriverApi.cuModuleUnload(value) == CuResult.Success;
}

internal sealed class BlasHandle(PrimaryContextHandle context) : ContextBoundHandle(context)
{
    protected override bool Destroy(IntPtr value) => BlasApi.cublasDestroy(value) == 0;
}

/// <summary>Page-locked host memory from cuMemAllocHost.</summary>
internal sealed unsafe class PinnedMemoryHandle(PrimaryContextHandle context) : ContextBoundHandle(context)
{
    protected override bool Destroy(IntPtr value) => DriverApi.cuMemFreeHost((void*)value) == CuResult.Success;
}

/// <summary>GPU memory owned by a backend (the real driver, or the host simulator in tests); the backend frees it.</summary>
internal sealed class DeviceMemoryHandle : SafeHandle
{
    private readonly GpuBackend backend;

    public DeviceMemoryHandle(GpuBackend backend, ulong address) : base(IntPtr.Zero, ownsHandle: true)
    {
        this.backend = backend;
        SetHandle((IntPtr)(long)address);
    }

    public override bool IsInvalid => handle == IntPtr.Zero;
    public ulong Address => (ulong)(long)handle;

    protected override bool ReleaseHandle() => backend.FreeRaw((ulong)(long)handle);
}
