namespace LongDep.Cuda.Twins;

/// <summary>
/// A backend that only counts: allocations get addresses but no memory, copies and kernels do nothing (launch arguments
/// and GEMM shapes are still checked), downloads read zeros. Running a probe on it replays the engine's exact
/// allocation sequence, so <see cref="GpuBackend.PeakTrackedBytes"/> is the peak of the device buffers the same run
/// allocates on a GPU (what <c>bench</c> reports as "our buffers"), without a GPU and in milliseconds.
/// </summary>
internal sealed unsafe class CountingBackend(long capacityBytes = long.MaxValue / 4) : GpuBackend
{
    private readonly Dictionary<ulong, long> live = new();
    private readonly object gate = new();
    private ulong next = 1UL << 32;

    public override string Description => "allocation counter (no GPU; kernels not run)";
    internal override int MaxDynamicSharedBytes => 227 * 1024;
    public long CapacityBytes { get; } = capacityBytes;

    internal override ulong AllocateRaw(long bytes, string what, string hint)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(bytes);
        lock (gate)
        {
            long held = live.Values.Sum();
            if (held + bytes > CapacityBytes)
                throw new CudaOutOfMemoryException("cuMemAlloc_v2", bytes, CapacityBytes - held, CapacityBytes, what, hint);
            ulong address = next;
            next += ((ulong)bytes + 255) & ~255UL;
            live.Add(address, bytes);
            return address;
        }
    }

    internal override bool FreeRaw(ulong address)
    {
        lock (gate) return live.Remove(address);
    }

    internal override void CopyToDevice(ulong destination, void* source, long bytes) { }
    internal override void CopyToHost(void* destination, ulong source, long bytes) => new Span<byte>(destination, checked((int)bytes)).Clear();
    internal override void CopyDeviceToDevice(ulong destination, ulong source, long bytes) { }
    internal override void Memset8(ulong destination, byte value, long count) { }
    internal override void Memset32(ulong destination, uint value, long count) { }
    internal override void Synchronize() { }
    internal override (long Free, long Total) MemoryInfo() => (CapacityBytes - TrackedBytes, CapacityBytes);

    internal override void Launch(KernelSpec kernel, Dim3 grid, Dim3 block, int sharedBytes, ReadOnlySpan<object> args)
    {
        KernelArgs.Validate(kernel, args);
        if (grid.Count == 0 || block.Count == 0 || block.Count > 1024 || sharedBytes > MaxDynamicSharedBytes)
            throw new InvalidOperationException($"kernel {kernel.Name}: invalid launch grid {grid} block {block} shared {sharedBytes}");
    }

    internal override void Gemm(in GemmCall call) => call.Validate();

    public override void Dispose()
    {
        lock (gate) live.Clear();
    }
}
