namespace LongDep.Cuda;

/// <summary>
/// One cublasGemmEx / cublasGemmStridedBatchedEx call in cuBLAS's column-major terms:
/// C[i + j*ldc] = Alpha * sum_p op(A)[i, p] * op(B)[p, j] + Beta * C[i + j*ldc], for i &lt; M, j &lt; N, p &lt; K,
/// op(A)[i, p] = TransA ? A[p + i*lda] : A[i + p*lda] (likewise B). C is float32; A and B are <see cref="AType"/>/<see cref="BType"/>.
/// With <see cref="BatchCount"/> &gt; 1, batch b offsets A, B, C by b times their strides (in elements).
/// </summary>
internal readonly record struct GemmCall(
    bool TransA, bool TransB, int M, int N, int K,
    DevicePtr A, CudaPrecision AType, int Lda, long StrideA,
    DevicePtr B, CudaPrecision BType, int Ldb, long StrideB,
    DevicePtr C, int Ldc, long StrideC,
    float Alpha, float Beta, int BatchCount = 1, CudaPrecision CType = CudaPrecision.F32)
{
    /// <summary>Throws <see cref="ArgumentException"/> when the call breaks cuBLAS's rules (cuBLAS itself would only say INVALID_VALUE).</summary>
    public void Validate()
    {
        var self = this;
        void Need(bool ok, string what)
        {
            if (!ok) throw new ArgumentException($"GEMM {self}: {what}");
        }
        Need(M >= 0 && N >= 0 && K >= 0, "negative dimension");
        Need(BatchCount >= 1, "batch count must be at least 1");
        Need(Lda >= Math.Max(1, TransA ? K : M), $"lda {Lda} is smaller than the rows of A as stored ({(TransA ? K : M)})");
        Need(Ldb >= Math.Max(1, TransB ? N : K), $"ldb {Ldb} is smaller than the rows of B as stored ({(TransB ? N : K)})");
        Need(Ldc >= Math.Max(1, M), $"ldc {Ldc} is smaller than M ({M})");
        Need(!A.IsNull && !B.IsNull && !C.IsNull || M == 0 || N == 0, "null matrix pointer");
    }
}

/// <summary>
/// Where kernels, GEMMs and copies run: the real GPU (<see cref="CudaBackend"/>) or, in tests, a host simulator that runs
/// the C# twins of the kernels on host memory (<see cref="Twins.SimulatedBackend"/>), so that the whole forward's
/// orchestration (offsets, strides, launch arguments) can be checked without a GPU. All work is ordered on one stream.
/// </summary>
internal abstract unsafe class GpuBackend : IDisposable
{
    public abstract string Description { get; }

    /// <summary>Largest dynamic shared memory a block may use (opt-in limit on the device).</summary>
    internal abstract int MaxDynamicSharedBytes { get; }

    /// <summary>Allocates <paramref name="bytes"/> (&gt; 0); out of memory → <see cref="CudaOutOfMemoryException"/> naming <paramref name="what"/> and <paramref name="hint"/>.</summary>
    internal abstract ulong AllocateRaw(long bytes, string what, string hint);
    /// <summary>Frees an allocation; returns false when it could not (never throws: runs from finalizers).</summary>
    internal abstract bool FreeRaw(ulong address);

    /// <summary>Copies host → device; returns when <paramref name="source"/> may be reused.</summary>
    internal abstract void CopyToDevice(ulong destination, void* source, long bytes);
    /// <summary>Copies device → host after all queued work; returns when the bytes are in <paramref name="destination"/>.</summary>
    internal abstract void CopyToHost(void* destination, ulong source, long bytes);
    /// <summary>Stream-ordered host → device copy from page-locked memory: the source must stay untouched until the stream is synchronized.</summary>
    internal virtual void CopyToDeviceAsync(ulong destination, void* source, long bytes) => CopyToDevice(destination, source, bytes);
    /// <summary>Stream-ordered device → host copy into page-locked memory: read it only after <see cref="Synchronize"/>.</summary>
    internal virtual void CopyToHostAsync(void* destination, ulong source, long bytes) => CopyToHost(destination, source, bytes);
    internal abstract void CopyDeviceToDevice(ulong destination, ulong source, long bytes);
    internal abstract void Memset8(ulong destination, byte value, long count);
    internal abstract void Memset32(ulong destination, uint value, long count);

    internal abstract void Launch(KernelSpec kernel, Dim3 grid, Dim3 block, int sharedBytes, ReadOnlySpan<object> args);
    internal abstract void Gemm(in GemmCall call);
    internal abstract void Synchronize();
    internal abstract (long Free, long Total) MemoryInfo();

    /// <summary>
    /// A named phase for the duration of a using block: an NVTX range (through <see cref="Core.Diagnostics.Phases"/>'s
    /// listener, which <see cref="NvtxRanges"/> installs) and, under <c>--profile</c>, a timed phase. While timing, the
    /// stream is synchronized at the end of each range so that host time is the GPU's time for the phase.
    /// </summary>
    internal RangeScope Range(string name) => new(this, Core.Diagnostics.Phases.Begin(name));

    internal readonly struct RangeScope(GpuBackend backend, Core.Diagnostics.Phases.Scope phase) : IDisposable
    {
        public void Dispose()
        {
            if (Core.Diagnostics.Phases.Timing) backend.Synchronize();
            phase.Dispose();
        }
    }

    private readonly System.Collections.Concurrent.ConcurrentDictionary<ulong, long> tracked = new();
    private long allocatedBytes;
    private long peakAllocatedBytes;

    /// <summary>Bytes held now by buffers allocated through this backend.</summary>
    internal long TrackedBytes => Interlocked.Read(ref allocatedBytes);

    /// <summary>The most bytes held at once since the start or the last <see cref="ResetPeakTracked"/>.</summary>
    internal long PeakTrackedBytes => Interlocked.Read(ref peakAllocatedBytes);

    /// <summary>Starts a new peak from what is held now.</summary>
    internal void ResetPeakTracked() => Interlocked.Exchange(ref peakAllocatedBytes, TrackedBytes);

    /// <summary>Counts an allocation made by <see cref="AllocateRaw"/>.</summary>
    internal void NoteAllocated(ulong address, long bytes)
    {
        if (!tracked.TryAdd(address, bytes)) return;
        long now = Interlocked.Add(ref allocatedBytes, bytes);
        long peak;
        while (now > (peak = Interlocked.Read(ref peakAllocatedBytes)) &&
               Interlocked.CompareExchange(ref peakAllocatedBytes, now, peak) != peak)
        {
        }
    }

    /// <summary>Uncounts an allocation before it is freed; a second call for the same address does nothing. Never throws.</summary>
    internal void NoteFreed(ulong address)
    {
        if (tracked.TryRemove(address, out long bytes)) Interlocked.Add(ref allocatedBytes, -bytes);
    }

    /// <summary>A typed buffer of <paramref name="count"/> elements (uninitialized).</summary>
    internal DeviceBuffer<T> Allocate<T>(long count, string what, string hint) where T : unmanaged =>
        new(this, count, what, hint);

    public abstract void Dispose();
}
