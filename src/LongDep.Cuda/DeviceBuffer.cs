using System.Runtime.InteropServices;

namespace LongDep.Cuda;

/// <summary>
/// GPU memory holding <see cref="Length"/> elements of <typeparamref name="T"/>; owns its allocation (freed by
/// <see cref="Dispose"/>, or by the finalizer of its safe handle). Copies check their ranges.
/// </summary>
public sealed unsafe class DeviceBuffer<T> : IDeviceMemory, IDisposable where T : unmanaged
{
    private readonly GpuBackend backend;
    private readonly Native.DeviceMemoryHandle? handle; // null for an empty buffer

    internal DeviceBuffer(GpuBackend backend, long length, string what, string hint)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(length);
        if (length > long.MaxValue / sizeof(T)) throw new ArgumentOutOfRangeException(nameof(length), $"{length} elements do not fit in memory");
        this.backend = backend;
        Length = length;
        if (length > 0)
        {
            ulong address = backend.AllocateRaw(length * sizeof(T), what, hint);
            handle = new Native.DeviceMemoryHandle(backend, address);
            backend.NoteAllocated(address, length * sizeof(T));
        }
    }

    public long Length { get; }
    public long ByteLength => Length * sizeof(T);
    public static int ElementSize => sizeof(T);

    /// <summary>The buffer's first byte (<see cref="DevicePtr.Null"/> when empty).</summary>
    public DevicePtr Pointer
    {
        get
        {
            if (handle is null) return DevicePtr.Null;
            ObjectDisposedException.ThrowIf(handle.IsClosed, this);
            return new DevicePtr(handle.Address);
        }
    }

    /// <summary>The address of element <paramref name="index"/> (0 ≤ index ≤ Length: one past the end is allowed).</summary>
    public DevicePtr At(long index)
    {
        if ((ulong)index > (ulong)Length)
            throw new ArgumentOutOfRangeException(nameof(index), $"index {index} is outside the buffer of {Length} elements");
        return Pointer.AddBytes(index * sizeof(T));
    }

    /// <summary>Copies <paramref name="source"/> to elements [offset, offset + source.Length); returns when done.</summary>
    public void CopyFrom(ReadOnlySpan<T> source, long offset = 0)
    {
        CheckRange(offset, source.Length);
        if (source.Length == 0) return;
        fixed (T* p = source) backend.CopyToDevice(At(offset).Address, p, (long)source.Length * sizeof(T));
    }

    /// <summary>Copies elements [offset, offset + destination.Length) to <paramref name="destination"/> after all queued work.</summary>
    public void CopyTo(Span<T> destination, long offset = 0)
    {
        CheckRange(offset, destination.Length);
        if (destination.Length == 0) return;
        fixed (T* p = destination) backend.CopyToHost(p, At(offset).Address, (long)destination.Length * sizeof(T));
    }

    /// <summary>Copies <paramref name="count"/> elements from another buffer, stream-ordered.</summary>
    public void CopyFrom(DeviceBuffer<T> source, long count, long sourceOffset = 0, long offset = 0)
    {
        CheckRange(offset, count);
        source.CheckRange(sourceOffset, count);
        if (count == 0) return;
        backend.CopyDeviceToDevice(At(offset).Address, source.At(sourceOffset).Address, count * sizeof(T));
    }

    /// <summary>
    /// Queues a copy of <paramref name="count"/> elements from page-locked memory; <paramref name="source"/> must not change
    /// until the device is synchronized.
    /// </summary>
    public void CopyFromAsync(PinnedBuffer<T> source, long count, long sourceOffset = 0, long offset = 0)
    {
        CheckRange(offset, count);
        source.CheckRange(sourceOffset, count);
        if (count == 0) return;
        backend.CopyToDeviceAsync(At(offset).Address, source.ElementPointer(sourceOffset), count * sizeof(T));
    }

    /// <summary>Queues a copy into page-locked memory; read <paramref name="destination"/> only after synchronizing.</summary>
    public void CopyToAsync(PinnedBuffer<T> destination, long count, long offset = 0, long destinationOffset = 0)
    {
        CheckRange(offset, count);
        destination.CheckRange(destinationOffset, count);
        if (count == 0) return;
        backend.CopyToHostAsync(destination.ElementPointer(destinationOffset), At(offset).Address, count * sizeof(T));
    }

    public T[] ToArray()
    {
        if (Length > Array.MaxLength) throw new InvalidOperationException($"{Length} elements do not fit in one array");
        var result = new T[Length];
        CopyTo(result);
        return result;
    }

    /// <summary>Sets every byte to zero (stream-ordered).</summary>
    public void Clear()
    {
        if (Length == 0) return;
        if (ByteLength % 4 == 0) backend.Memset32(Pointer.Address, 0, ByteLength / 4);
        else backend.Memset8(Pointer.Address, 0, ByteLength);
    }

    /// <summary>Sets elements [offset, offset + count) to zero (stream-ordered).</summary>
    public void Clear(long offset, long count)
    {
        CheckRange(offset, count);
        if (count == 0) return;
        long bytes = count * sizeof(T);
        var start = At(offset).Address;
        if (bytes % 4 == 0 && start % 4 == 0) backend.Memset32(start, 0, bytes / 4);
        else backend.Memset8(start, 0, bytes);
    }

    private void CheckRange(long offset, long count)
    {
        if (offset < 0 || count < 0 || offset > Length - count)
            throw new ArgumentOutOfRangeException(nameof(offset),
                $"elements [{offset}, {offset + count}) are outside the buffer of {Length} elements");
    }

    public void Dispose()
    {
        if (handle is null || handle.IsClosed) return;
        backend.NoteFreed(handle.Address);
        handle.Dispose();
    }

    public override string ToString() => $"DeviceBuffer<{typeof(T).Name}>[{Length}] at {(handle is null ? "null" : Pointer.ToString())}";
}
