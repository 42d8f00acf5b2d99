namespace LongDep.Tests.Shared;

/// <summary>
/// What some tests need beyond the .NET build, made by <c>./build.sh</c> where the machine allows it: the CUDA kernels
/// (nvcc), the kernel emulator and the emulated GPU (a C++ compiler), the NVTX shim (the CUDA toolkit's NVTX3 headers),
/// chromium, cuobjdump. A test whose prerequisite is missing is ignored with what is missing and how to get it, never
/// failed; under CI (<c>CI=true</c>) it fails instead, so that a CI run proves everything was built and tested.
/// Linked into the test projects that need it (tests/Shared).
/// </summary>
internal static class Prerequisites
{
    /// <summary>How to get what the toolchain builds, for the messages.</summary>
    public const string HowToBuild =
        "run ./build.sh as root on Debian/Ubuntu (it installs the CUDA toolkit, clang-14, g++ and chromium with apt-get), " +
        "or install them yourself and run ./build.sh again";

    private static readonly Lazy<string> Root = new(() =>
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "LongDepEngine.sln"))) return dir.FullName;
        throw new InvalidOperationException($"no LongDepEngine.sln above {AppContext.BaseDirectory}");
    });

    /// <summary>The folder holding LongDepEngine.sln.</summary>
    public static string RepositoryRoot => Root.Value;

    /// <summary>build/native: what ./build.sh builds besides the .NET projects.</summary>
    public static string NativeFolder => Path.Combine(RepositoryRoot, "build", "native");

    /// <summary>Whether this is a CI run (<c>CI=true</c>), where a missing prerequisite fails instead of skipping.</summary>
    public static bool IsCi => string.Equals(Environment.GetEnvironmentVariable("CI"), "true", StringComparison.OrdinalIgnoreCase);

    /// <summary>Ignores the calling test with <paramref name="why"/>; under CI fails it.</summary>
    public static void Missing(string why)
    {
        if (IsCi) Assert.Fail($"CI must build and test everything, but {why}");
        Assert.Ignore(why);
    }

    /// <summary>nvcc's fatbin, build/native/longdep_kernels.fatbin, when ./build.sh built it; otherwise null.</summary>
    public static string? FatbinOrNull => ExistingOrNull(Path.Combine(NativeFolder, "longdep_kernels.fatbin"));

    /// <summary>nvcc's fatbin; the test is skipped when it is not built.</summary>
    public static string Fatbin() => FatbinOrNull ?? Skip(
        $"the CUDA kernels ({Path.Combine(NativeFolder, "longdep_kernels.fatbin")}) are not built: ./build.sh found no nvcc; {HowToBuild}");

    /// <summary>The kernel emulator, build/native/liblongdep_kernel_emu.so; the test is skipped when it is not built.</summary>
    public static string KernelEmulator() => ExistingOrNull(Path.Combine(NativeFolder, "liblongdep_kernel_emu.so")) ?? Skip(
        $"the kernel emulator ({Path.Combine(NativeFolder, "liblongdep_kernel_emu.so")}) is not built: ./build.sh found no C++ compiler; {HowToBuild}");

    /// <summary>The emulated GPU's CUDA_HOME, build/native/emu-cuda, when it is built; otherwise null.</summary>
    public static string? EmulatedGpuOrNull
    {
        get
        {
            string folder = Path.Combine(NativeFolder, "emu-cuda");
            return File.Exists(Path.Combine(folder, "lib64", "libcuda.so.1")) ? folder : null;
        }
    }

    /// <summary>The emulated GPU's CUDA_HOME; the test is skipped when it is not built.</summary>
    public static string EmulatedGpu() => EmulatedGpuOrNull ?? Skip(
        $"the emulated GPU ({Path.Combine(NativeFolder, "emu-cuda")}) is not built: ./build.sh builds it with the kernel emulator when it finds a C++ compiler; {HowToBuild}");

    /// <summary>
    /// The module image the emulated GPU loads (the value for LONGDEP_KERNELS): nvcc's fatbin when it is built (so the
    /// kernels' presence in it is checked too), else the kernel emulator's own image (emu-cuda/longdep_kernels.emu),
    /// so the GPU path is tested on machines without nvcc. The test is skipped when neither is built.
    /// </summary>
    public static string EmulatedGpuKernels() => FatbinOrNull
        ?? ExistingOrNull(Path.Combine(NativeFolder, "emu-cuda", "longdep_kernels.emu"))
        ?? Skip($"neither the CUDA kernels nor the kernel emulator's image ({Path.Combine(NativeFolder, "emu-cuda", "longdep_kernels.emu")}) is built; {HowToBuild}");

    /// <summary>The NVTX shim, build/native/liblongdep_nvtx.so (built with the kernels); the test is skipped without it.</summary>
    public static string NvtxShim() => ExistingOrNull(Path.Combine(NativeFolder, "liblongdep_nvtx.so")) ?? Skip(
        $"the NVTX shim ({Path.Combine(NativeFolder, "liblongdep_nvtx.so")}) is not built: it needs the CUDA toolkit's NVTX3 headers, which ./build.sh did not find; {HowToBuild}");

    private static string? ExistingOrNull(string path) => File.Exists(path) ? path : null;

    private static string Skip(string why)
    {
        Missing(why);
        return "";
    }
}
