using LongDep.Cuda.Native;

namespace LongDep.Cuda;

/// <summary>
/// The real GPU: one device's primary context, one compute stream, the kernels module (loaded on first launch) and a
/// cuBLAS handle bound to the stream (created on first GEMM). Set LONGDEP_CUDA_SYNC=1 to synchronize after every launch
/// so that a kernel fault is reported at the launch that caused it.
/// </summary>
internal sealed unsafe class CudaBackend : GpuBackend
{
    private readonly CudaDevice device;
    private readonly PrimaryContextHandle context;
    private readonly CudaStream stream;
    private readonly Dictionary<string, CudaKernel> kernels = new(StringComparer.Ordinal);
    private readonly object gate = new();
    private CudaModule? module;
    private BlasHandle? blas;
    private bool disposed;

    internal CudaBackend(CudaDevice device, PrimaryContextHandle context)
    {
        this.device = device;
        this.context = context;
        stream = new CudaStream(context);
        SynchronizeEachLaunch = Environment.GetEnvironmentVariable("LONGDEP_CUDA_SYNC") == "1";
    }

    public override string Description => device.Describe();
    internal CudaStream Stream => stream;
    internal bool SynchronizeEachLaunch { get; set; }
    internal override int MaxDynamicSharedBytes => device.MaxSharedBytesPerBlockOptin;

    /// <summary>Loads the fatbin now (it is otherwise loaded at the first launch).</summary>
    internal CudaModule EnsureKernels()
    {
        lock (gate)
        {
            if (module is not null) return module;
            string path = FatbinLocator.Locate();
            byte[] image;
            try
            {
                image = File.ReadAllBytes(path);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                throw new CudaUnavailableException($"Cannot read the CUDA kernels {path}: {e.Message}", [path], e);
            }
            module = new CudaModule(context, image, path);
            return module;
        }
    }

    /// <summary>Loads cuBLAS and creates the handle now (it is otherwise created at the first GEMM).</summary>
    internal IntPtr EnsureBlas()
    {
        lock (gate)
        {
            if (blas is not null) return blas.DangerousGetHandle();
            NativeLibraries.LoadCublas();
            context.MakeCurrent();
            var h = new BlasHandle(context);
            IntPtr raw;
            CudaCheck.Blas(BlasApi.cublasCreate(&raw), "cublasCreate_v2");
            h.Set(raw);
            CudaCheck.Blas(BlasApi.cublasSetStream(raw, stream.Raw), "cublasSetStream_v2");
            CudaCheck.Blas(BlasApi.cublasSetMathMode(raw, BlasConstants.DefaultMath), "cublasSetMathMode");
            blas = h;
            return raw;
        }
    }

    internal int BlasVersion()
    {
        IntPtr h = EnsureBlas();
        int version;
        CudaCheck.Blas(BlasApi.cublasGetVersion(h, &version), "cublasGetVersion_v2");
        return version;
    }

    private CudaKernel Kernel(KernelSpec spec)
    {
        lock (gate)
        {
            if (kernels.TryGetValue(spec.Name, out var k)) return k;
            k = EnsureKernels().GetKernel(spec);
            kernels[spec.Name] = k;
            return k;
        }
    }

    internal override ulong AllocateRaw(long bytes, string what, string hint)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(bytes);
        context.MakeCurrent();
        ulong address;
        var result = DriverApi.cuMemAlloc(&address, (nuint)bytes);
        if (result == CuResult.OutOfMemory)
        {
            var (free, total) = MemoryInfo();
            throw new CudaOutOfMemoryException("cuMemAlloc_v2", bytes, free, total, what, hint);
        }
        CudaCheck.Driver(result, "cuMemAlloc_v2", $"{bytes} bytes for {what}");
        bool added = false;
        context.DangerousAddRef(ref added); // the context outlives every allocation
        return address;
    }

    internal override bool FreeRaw(ulong address)
    {
        NoteFreed(address); // before the free: the address cannot be handed out again until then
        // The context may already be disposed by its owner; the reference this allocation holds keeps it alive until here.
        bool ok = DriverApi.cuCtxSetCurrent(context.DangerousGetHandle()) == CuResult.Success
                  && DriverApi.cuMemFree(address) == CuResult.Success;
        context.DangerousRelease();
        return ok;
    }

    internal override void CopyToDevice(ulong destination, void* source, long bytes)
    {
        context.MakeCurrent();
        CudaCheck.Driver(DriverApi.cuMemcpyHtoDAsync(destination, source, (nuint)bytes, stream.Raw), "cuMemcpyHtoDAsync_v2",
            $"{bytes} bytes");
        // The source may be pinned memory the caller reuses at once: wait for the copy.
        stream.Synchronize();
    }

    internal override void CopyToDeviceAsync(ulong destination, void* source, long bytes)
    {
        context.MakeCurrent();
        CudaCheck.Driver(DriverApi.cuMemcpyHtoDAsync(destination, source, (nuint)bytes, stream.Raw), "cuMemcpyHtoDAsync_v2",
            $"{bytes} bytes");
    }

    internal override void CopyToHost(void* destination, ulong source, long bytes)
    {
        context.MakeCurrent();
        CudaCheck.Driver(DriverApi.cuMemcpyDtoHAsync(destination, source, (nuint)bytes, stream.Raw), "cuMemcpyDtoHAsync_v2",
            $"{bytes} bytes");
        stream.Synchronize();
    }

    internal override void CopyToHostAsync(void* destination, ulong source, long bytes)
    {
        context.MakeCurrent();
        CudaCheck.Driver(DriverApi.cuMemcpyDtoHAsync(destination, source, (nuint)bytes, stream.Raw), "cuMemcpyDtoHAsync_v2",
            $"{bytes} bytes");
    }

    internal override void CopyDeviceToDevice(ulong destination, ulong source, long bytes)
    {
        context.MakeCurrent();
        CudaCheck.Driver(DriverApi.cuMemcpyDtoDAsync(destination, source, (nuint)bytes, stream.Raw), "cuMemcpyDtoDAsync_v2",
            $"{bytes} bytes");
    }

    internal override void Memset8(ulong destination, byte value, long count)
    {
        context.MakeCurrent();
        CudaCheck.Driver(DriverApi.cuMemsetD8Async(destination, value, (nuint)count, stream.Raw), "cuMemsetD8Async");
    }

    internal override void Memset32(ulong destination, uint value, long count)
    {
        context.MakeCurrent();
        CudaCheck.Driver(DriverApi.cuMemsetD32Async(destination, value, (nuint)count, stream.Raw), "cuMemsetD32Async");
    }

    internal override void Launch(KernelSpec kernel, Dim3 grid, Dim3 block, int sharedBytes, ReadOnlySpan<object> args)
    {
        if (sharedBytes > MaxDynamicSharedBytes)
            throw new NotSupportedException(
                $"kernel {kernel.Name} needs {sharedBytes} bytes of shared memory per block; this GPU allows {MaxDynamicSharedBytes}");
        Kernel(kernel).Launch(grid, block, sharedBytes, stream, args);
        if (SynchronizeEachLaunch)
        {
            try
            {
                stream.Synchronize();
            }
            catch (CudaException e)
            {
                throw CudaCheck.DriverError((CuResult)e.Code, "cuStreamSynchronize", $"right after kernel {kernel.Name} grid {grid} block {block}");
            }
        }
    }

    internal override void Gemm(in GemmCall g)
    {
        g.Validate();
        if (g.M == 0 || g.N == 0) return;
        IntPtr h = EnsureBlas();
        context.MakeCurrent();
        float alpha = g.Alpha, beta = g.Beta;
        int opA = g.TransA ? BlasConstants.OpT : BlasConstants.OpN;
        int opB = g.TransB ? BlasConstants.OpT : BlasConstants.OpN;
        int status = g.BatchCount == 1
            ? BlasApi.cublasGemmEx(h, opA, opB, g.M, g.N, g.K, &alpha, g.A.Address, g.AType.BlasDataType(), g.Lda,
                g.B.Address, g.BType.BlasDataType(), g.Ldb, &beta, g.C.Address, g.CType.BlasDataType(), g.Ldc,
                BlasConstants.ComputeF32, BlasConstants.GemmDefault)
            : BlasApi.cublasGemmStridedBatchedEx(h, opA, opB, g.M, g.N, g.K, &alpha, g.A.Address, g.AType.BlasDataType(),
                g.Lda, g.StrideA, g.B.Address, g.BType.BlasDataType(), g.Ldb, g.StrideB, &beta, g.C.Address,
                g.CType.BlasDataType(), g.Ldc, g.StrideC, g.BatchCount, BlasConstants.ComputeF32, BlasConstants.GemmDefault);
        CudaCheck.Blas(status, g.BatchCount == 1 ? "cublasGemmEx" : "cublasGemmStridedBatchedEx",
            $"m={g.M} n={g.N} k={g.K} A {g.AType} B {g.BType} C {g.CType} batch {g.BatchCount}");
        if (SynchronizeEachLaunch) stream.Synchronize();
    }

    internal override void Synchronize() => stream.Synchronize();

    internal override (long Free, long Total) MemoryInfo()
    {
        context.MakeCurrent();
        nuint free, total;
        CudaCheck.Driver(DriverApi.cuMemGetInfo(&free, &total), "cuMemGetInfo_v2");
        return ((long)free, (long)total);
    }


    public override void Dispose()
    {
        if (disposed) return;
        disposed = true;
        blas?.Dispose();
        module?.Dispose();
        stream.Dispose();
    }
}
