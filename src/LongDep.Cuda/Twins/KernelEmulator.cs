using System.Runtime.InteropServices;

namespace LongDep.Cuda.Twins;

/// <summary>
/// The kernels' own CUDA source compiled as host C++ (<c>native/emu</c>, <c>liblongdep_kernel_emu.so</c>): each block
/// runs as cooperative fibers, one per CUDA thread, with __syncthreads, warp shuffles and mma.sync emulated (the mma
/// from the PTX ISA's fragment layout). <see cref="SimulatedBackend"/> uses it in place of the C# twins when given one,
/// so the twins check the kernels' indexing, tiling and fragment handling on a machine without a GPU. Slow (a fiber
/// switch per barrier): for test-sized inputs only.
/// </summary>
internal sealed unsafe class KernelEmulator
{
    public const string FileName = "liblongdep_kernel_emu.so";
    /// <summary>The command that builds the library, for messages.</summary>
    public const string BuildCommand = "bash native/build-emulator.sh build/native";

    private readonly delegate* unmanaged<byte*, uint*, uint*, int, void**, byte*, int, int> launch;
    private readonly delegate* unmanaged<float*, int, int, void> round;
    private readonly HashSet<string> names;

    private KernelEmulator(IntPtr library, string path)
    {
        Path = path;
        launch = (delegate* unmanaged<byte*, uint*, uint*, int, void**, byte*, int, int>)NativeLibrary.GetExport(library, "longdep_emu_launch");
        round = (delegate* unmanaged<float*, int, int, void>)NativeLibrary.GetExport(library, "longdep_emu_round");
        var count = (delegate* unmanaged<int>)NativeLibrary.GetExport(library, "longdep_emu_kernel_count");
        var name = (delegate* unmanaged<int, byte*>)NativeLibrary.GetExport(library, "longdep_emu_kernel_name");
        names = new HashSet<string>(StringComparer.Ordinal);
        int n = count();
        for (int i = 0; i < n; i++) names.Add(Marshal.PtrToStringUTF8((IntPtr)name(i))!);
    }

    /// <summary>Where the library was loaded from.</summary>
    public string Path { get; }

    /// <summary>Every kernel the library holds.</summary>
    public IReadOnlySet<string> Names => names;

    private static readonly Lazy<(KernelEmulator? Emulator, string Why)> Loaded = new(Load);

    /// <summary>The emulator, or null with the places looked at in <paramref name="why"/>.</summary>
    public static KernelEmulator? TryLoad(out string why)
    {
        var (emulator, reason) = Loaded.Value;
        why = reason;
        return emulator;
    }

    private static (KernelEmulator?, string) Load()
    {
        // Beside the fatbin's candidates: $LONGDEP_KERNELS (folder), the executable's folder, <repo>/build/native.
        var env = Environment.GetEnvironmentVariable(FatbinLocator.EnvironmentVariable);
        var folders = FatbinLocator.Candidates(env, AppContext.BaseDirectory, Environment.CurrentDirectory)
            .Select(p => System.IO.Path.GetDirectoryName(p) ?? ".")
            .Distinct(StringComparer.Ordinal);
        var tried = new List<string>();
        foreach (var folder in folders)
        {
            var path = System.IO.Path.Combine(folder, FileName);
            if (!File.Exists(path))
            {
                tried.Add($"{path}: not found");
                continue;
            }
            try
            {
                return (new KernelEmulator(NativeLibrary.Load(path), path), "");
            }
            catch (Exception e) when (e is DllNotFoundException or BadImageFormatException or EntryPointNotFoundException)
            {
                tried.Add($"{path}: {e.Message}");
            }
        }
        return (null, $"the kernel emulator ({FileName}) was not found; looked at:\n  {string.Join("\n  ", tried)}\n" +
                      $"Build it with `{BuildCommand}` (needs a C++20 compiler).");
    }

    /// <summary>
    /// Runs <paramref name="kernel"/> on the host with the arguments packed as for cuLaunchKernel (device pointers are
    /// host addresses on <see cref="SimulatedBackend"/>). A kernel misuse the emulator detects (diverging barriers, a
    /// warp-wide call after lanes returned) is an <see cref="InvalidOperationException"/> naming the block and thread.
    /// </summary>
    public void Launch(KernelSpec kernel, Dim3 grid, Dim3 block, int sharedBytes, ReadOnlySpan<object> args)
    {
        if (!names.Contains(kernel.Name))
            throw new InvalidOperationException($"the kernel emulator ({Path}) has no kernel {kernel.Name}; rebuild it with `{BuildCommand}`");
        int n = args.Length;
        var slots = stackalloc ulong[Math.Max(n, 1)];
        var pointers = stackalloc void*[Math.Max(n, 1)];
        KernelArgs.Pack(kernel, args, pointers, slots);
        var g = stackalloc uint[3] { grid.X, grid.Y, grid.Z };
        var b = stackalloc uint[3] { block.X, block.Y, block.Z };
        var nameBytes = System.Text.Encoding.UTF8.GetBytes(kernel.Name + "\0");
        const int errorBytes = 1024;
        var error = stackalloc byte[errorBytes];
        int rc;
        fixed (byte* name = nameBytes) rc = launch(name, g, b, sharedBytes, pointers, error, errorBytes);
        if (rc != 0)
            throw new InvalidOperationException($"kernel emulator: {Marshal.PtrToStringUTF8((IntPtr)error)}");
    }

    /// <summary>Rounds through f16 or bf16 with the emulator's conversions (checked against <see cref="ElementTypes"/>).</summary>
    public float[] Round(ReadOnlySpan<float> values, CudaPrecision type)
    {
        if (type is not (CudaPrecision.F16 or CudaPrecision.BF16))
            throw new ArgumentException("f16 or bf16 only", nameof(type));
        var result = values.ToArray();
        fixed (float* p = result) round(p, result.Length, type == CudaPrecision.F16 ? 1 : 2);
        return result;
    }
}
