using System.Text;
using LongDep.Cuda.Native;

namespace LongDep.Cuda;

/// <summary>A loaded code module (a fatbin, cubin or PTX image). Owns its driver handle.</summary>
public sealed unsafe class CudaModule : IDisposable
{
    private readonly PrimaryContextHandle context;
    private readonly CudaModuleHandle handle;

    /// <summary>Where the image came from, for messages.</summary>
    public string Source { get; }

    internal CudaModule(PrimaryContextHandle context, ReadOnlySpan<byte> image, string source)
    {
        if (image.IsEmpty) throw new ArgumentException($"module image {source} is empty", nameof(image));
        this.context = context;
        Source = source;
        handle = new CudaModuleHandle(context);
        context.MakeCurrent();
        // cuModuleLoadData reads until the image's own end marker; PTX must be NUL-terminated, fatbins carry a size.
        var copy = new byte[image.Length + 1];
        image.CopyTo(copy);
        IntPtr module;
        fixed (byte* p = copy)
        {
            var result = DriverApi.cuModuleLoadData(&module, p);
            if (result == CuResult.NoBinaryForGpu || result == CuResult.InvalidImage)
                throw CudaCheck.DriverError(result, "cuModuleLoadData",
                    $"{source} holds no code for this GPU; rebuild with `{FatbinLocator.BuildCommand}` (sm_90 SASS + compute_90 PTX)");
            CudaCheck.Driver(result, "cuModuleLoadData", source);
        }
        handle.Set(module);
    }

    /// <summary>The kernel <paramref name="spec"/> names; throws <see cref="CudaException"/> when the module lacks it.</summary>
    public CudaKernel GetKernel(KernelSpec spec)
    {
        ObjectDisposedException.ThrowIf(handle.IsClosed, this);
        context.MakeCurrent();
        IntPtr function;
        byte[] name = Encoding.ASCII.GetBytes(spec.Name + "\0");
        fixed (byte* p = name)
        {
            var result = DriverApi.cuModuleGetFunction(&function, handle.DangerousGetHandle(), p);
            CudaCheck.Driver(result, "cuModuleGetFunction",
                result == CuResult.NotFound ? $"kernel {spec.Name} is not in {Source}; rebuild the kernels" : spec.Name);
        }
        return new CudaKernel(context, this, function, spec);
    }

    public void Dispose() => handle.Dispose();
}

/// <summary>
/// One kernel of a <see cref="CudaModule"/>, launched through <see cref="Launch"/>: arguments are checked against the
/// kernel's <see cref="KernelSpec"/>, packed (<see cref="KernelArgs"/>) and passed to cuLaunchKernel.
/// </summary>
public sealed unsafe class CudaKernel
{
    private readonly PrimaryContextHandle context;
    private readonly CudaModule module; // keeps the module alive while the kernel is in use
    private readonly IntPtr function;
    private int sharedLimitSet = 48 * 1024;

    internal CudaKernel(PrimaryContextHandle context, CudaModule module, IntPtr function, KernelSpec spec)
    {
        this.context = context;
        this.module = module;
        this.function = function;
        Spec = spec;
    }

    public KernelSpec Spec { get; }

    /// <summary>The most threads a block of this kernel may have (registers permitting).</summary>
    public int MaxThreadsPerBlock
    {
        get
        {
            context.MakeCurrent();
            int value;
            CudaCheck.Driver(DriverApi.cuFuncGetAttribute(&value, CuFunctionAttribute.MaxThreadsPerBlock, function),
                "cuFuncGetAttribute", Spec.Name);
            return value;
        }
    }

    /// <summary>Queues the kernel on <paramref name="stream"/>.</summary>
    public void Launch(Dim3 grid, Dim3 block, int sharedBytes, CudaStream stream, params ReadOnlySpan<object> args)
    {
        if (grid.Count == 0 || block.Count == 0)
            throw new ArgumentException($"kernel {Spec.Name}: empty launch grid {grid} block {block}");
        if (block.Count > 1024)
            throw new ArgumentException($"kernel {Spec.Name}: block {block} has {block.Count} threads, at most 1024 are allowed");
        ArgumentOutOfRangeException.ThrowIfNegative(sharedBytes);
        void** pointers = stackalloc void*[Math.Max(1, args.Length)];
        ulong* slots = stackalloc ulong[Math.Max(1, args.Length)];
        KernelArgs.Pack(Spec, args, pointers, slots);
        context.MakeCurrent();
        if (sharedBytes > sharedLimitSet)
        {
            CudaCheck.Driver(DriverApi.cuFuncSetAttribute(function, CuFunctionAttribute.MaxDynamicSharedSizeBytes, sharedBytes),
                "cuFuncSetAttribute", $"{Spec.Name}: {sharedBytes} bytes of dynamic shared memory");
            sharedLimitSet = sharedBytes;
        }
        CudaCheck.Driver(
            DriverApi.cuLaunchKernel(function, grid.X, grid.Y, grid.Z, block.X, block.Y, block.Z, (uint)sharedBytes,
                stream.Raw, pointers, null),
            "cuLaunchKernel", $"kernel {Spec.Name} grid {grid} block {block} shared {sharedBytes} B");
        GC.KeepAlive(module); // the function handle is valid only while its module is loaded
    }
}
