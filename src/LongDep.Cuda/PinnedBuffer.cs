namespace LongDep.Cuda;

/// <summary>Page-locked host memory (cuMemAllocHost) for asynchronous copies; owns its allocation.</summary>
public sealed unsafe class PinnedBuffer<T> : IDisposable where T : unmanaged
{
    private readonly Native.PinnedMemoryHandle handle;

    internal PinnedBuffer(Native.PrimaryContextHandle context, long length)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(length);
        if (length > int.MaxValue) throw new ArgumentOutOfRangeException(nameof(length), $"{length} elements: a pinned buffer holds at most {int.MaxValue}");
        Length = length;
        handle = new Native.PinnedMemoryHandle(context);
        if (length == 0) return;
        context.MakeCurrent();
        void* p;
        Native.CudaCheck.Driver(Native.DriverApi.cuMemAllocHost(&p, (nuint)(length * sizeof(T))), "cuMemAllocHost_v2",
            $"{length * sizeof(T)} bytes of pinned host memory");
        handle.Set((IntPtr)p);
    }

    public long Length { get; }

    /// <summary>The memory as a span (valid until disposed).</summary>
    public Span<T> Span
    {
        get
        {
            if (Length == 0) return Span<T>.Empty;
            ObjectDisposedException.ThrowIf(handle.IsClosed, this);
            return new Span<T>((void*)handle.DangerousGetHandle(), (int)Length);
        }
    }

    internal void* ElementPointer(long index)
    {
        ObjectDisposedException.ThrowIf(handle.IsClosed, this);
        return (T*)handle.DangerousGetHandle() + index;
    }

    internal void CheckRange(long offset, long count)
    {
        if (offset < 0 || count < 0 || offset > Length - count)
            throw new ArgumentOutOfRangeException(nameof(offset), $"elements [{offset}, {offset + count}) are outside the pinned buffer of {Length} elements");
    }

    public void Dispose() => handle.Dispose();
}
