using LongDep.Cuda.Native;

namespace LongDep.Cuda;

/// <summary>A CUDA stream (work queue). Owns its driver handle.</summary>
public sealed unsafe class CudaStream : IDisposable
{
    private readonly PrimaryContextHandle context;
    internal StreamHandle Handle { get; }

    internal CudaStream(PrimaryContextHandle context)
    {
        this.context = context;
        Handle = new StreamHandle(context);
        context.MakeCurrent();
        IntPtr stream;
        CudaCheck.Driver(DriverApi.cuStreamCreate(&stream, 0), "cuStreamCreate");
        Handle.Set(stream);
    }

    internal IntPtr Raw
    {
        get
        {
            ObjectDisposedException.ThrowIf(Handle.IsClosed, this);
            return Handle.DangerousGetHandle();
        }
    }

    /// <summary>Waits until every queued operation has finished; asynchronous kernel faults surface here.</summary>
    public void Synchronize()
    {
        context.MakeCurrent();
        CudaCheck.Driver(DriverApi.cuStreamSynchronize(Raw), "cuStreamSynchronize");
    }

    public void Dispose() => Handle.Dispose();
}

/// <summary>A CUDA event, for timing stream work (<see cref="ElapsedMilliseconds"/>).</summary>
public sealed unsafe class CudaEvent : IDisposable
{
    private readonly PrimaryContextHandle context;
    private readonly EventHandle handle;

    internal CudaEvent(PrimaryContextHandle context)
    {
        this.context = context;
        handle = new EventHandle(context);
        context.MakeCurrent();
        IntPtr evt;
        CudaCheck.Driver(DriverApi.cuEventCreate(&evt, 0), "cuEventCreate");
        handle.Set(evt);
    }

    private IntPtr Raw
    {
        get
        {
            ObjectDisposedException.ThrowIf(handle.IsClosed, this);
            return handle.DangerousGetHandle();
        }
    }

    /// <summary>Records the event at the current end of <paramref name="stream"/>.</summary>
    public void Record(CudaStream stream)
    {
        context.MakeCurrent();
        CudaCheck.Driver(DriverApi.cuEventRecord(Raw, stream.Raw), "cuEventRecord");
    }

    public void Synchronize()
    {
        context.MakeCurrent();
        CudaCheck.Driver(DriverApi.cuEventSynchronize(Raw), "cuEventSynchronize");
    }

    /// <summary>Milliseconds between two recorded events (waits for <paramref name="end"/>).</summary>
    public static float ElapsedMilliseconds(CudaEvent start, CudaEvent end)
    {
        end.Synchronize();
        float ms;
        CudaCheck.Driver(DriverApi.cuEventElapsedTime(&ms, start.Raw, end.Raw), "cuEventElapsedTime");
        return ms;
    }

    public void Dispose() => handle.Dispose();
}
