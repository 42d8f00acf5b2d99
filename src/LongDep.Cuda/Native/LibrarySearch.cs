using System.Runtime.InteropServices;
using System.Text;

namespace LongDep.Cuda.Native;

/// <summary>Where to look for one native library: directories in order, file names in order, then the system loader.</summary>
internal sealed record LibrarySearchPlan(string Library, IReadOnlyList<string> Directories, IReadOnlyList<string> FileNames, bool TryLoaderPath);

/// <summary>The facts of the process environment a search plan is built from (injectable for tests).</summary>
internal sealed record LibrarySearchEnvironment(string? CudaHome, string? CudaPath, IReadOnlyList<string> ToolkitRoots, bool IsWindows)
{
    /// <summary>Reads CUDA_HOME, CUDA_PATH and the toolkits installed under /usr/local (newest version first).</summary>
    public static LibrarySearchEnvironment FromProcess()
    {
        bool windows = OperatingSystem.IsWindows();
        var roots = new List<string>();
        if (!windows)
        {
            try
            {
                var versioned = Directory.Exists("/usr/local")
                    ? Directory.GetDirectories("/usr/local", "cuda-*")
                    : [];
                roots.AddRange(versioned
                    .Select(d => (Dir: d, Version: ParseToolkitVersion(Path.GetFileName(d))))
                    .OrderByDescending(x => x.Version)
                    .Select(x => x.Dir));
            }
            catch (IOException) { }
            catch (UnauthorizedAccessException) { }
            roots.Add("/usr/local/cuda");
        }
        return new LibrarySearchEnvironment(
            Environment.GetEnvironmentVariable("CUDA_HOME"),
            Environment.GetEnvironmentVariable("CUDA_PATH"),
            roots, windows);
    }

    /// <summary>"cuda-12.4" → 12.4; anything unparsable sorts last.</summary>
    internal static Version ParseToolkitVersion(string directoryName)
    {
        string text = directoryName.StartsWith("cuda-", StringComparison.Ordinal) ? directoryName[5..] : directoryName;
        return Version.TryParse(text.Contains('.') ? text : text + ".0", out var v) ? v : new Version(0, 0);
    }
}

/// <summary>
/// Finds and loads the CUDA driver and cuBLAS. The order is: CUDA_HOME, CUDA_PATH, /usr/local/cuda*/lib64
/// (newest first), the distribution's library folder, then the system loader path. When nothing loads, the
/// <see cref="CudaUnavailableException"/> lists every place that was tried and why.
/// </summary>
internal static class LibrarySearch
{
    public static LibrarySearchPlan DriverPlan(LibrarySearchEnvironment env)
    {
        if (env.IsWindows)
            return new LibrarySearchPlan("the CUDA driver (nvcuda.dll)", [Environment.SystemDirectory], ["nvcuda.dll"], true);
        var dirs = new List<string>();
        foreach (var root in UserRoots(env)) AddLibDirs(dirs, root);
        dirs.AddRange(["/usr/lib/x86_64-linux-gnu", "/usr/lib64", "/usr/lib/wsl/lib"]);
        // The toolkit's lib64/stubs/libcuda.so is a link-time stub that fails at run time: never listed.
        return new LibrarySearchPlan("the CUDA driver (libcuda)", Distinct(dirs), ["libcuda.so.1", "libcuda.so"], true);
    }

    public static LibrarySearchPlan CublasPlan(LibrarySearchEnvironment env)
    {
        var dirs = new List<string>();
        if (env.IsWindows)
        {
            foreach (var root in UserRoots(env))
            {
                dirs.Add(Path.Combine(root, "bin", "x64"));
                dirs.Add(Path.Combine(root, "bin"));
            }
            return new LibrarySearchPlan("cuBLAS (cublas64_13/12/11.dll)", Distinct(dirs),
                ["cublas64_13.dll", "cublas64_12.dll", "cublas64_11.dll"], true);
        }
        foreach (var root in UserRoots(env)) AddLibDirs(dirs, root);
        foreach (var root in env.ToolkitRoots) AddLibDirs(dirs, root);
        dirs.AddRange(["/usr/lib/x86_64-linux-gnu", "/usr/lib64"]);
        return new LibrarySearchPlan("cuBLAS (libcublas.so.13/12/11)", Distinct(dirs),
            ["libcublas.so.13", "libcublas.so.12", "libcublas.so.11"], true);
    }

    /// <summary>
    /// Tries every candidate of <paramref name="plan"/> in order with <paramref name="tryLoad"/> (which returns a handle,
    /// or throws/returns zero on failure) and returns the first that loads with the path it came from.
    /// </summary>
    /// <exception cref="CudaUnavailableException">Nothing loaded; the message lists every place looked at.</exception>
    public static (IntPtr Handle, string Path) Load(LibrarySearchPlan plan, Func<string, IntPtr> tryLoad, Func<string, bool>? fileExists = null)
    {
        fileExists ??= File.Exists;
        var tried = new List<string>();
        foreach (var dir in plan.Directories)
        {
            var found = new List<string>();
            foreach (var name in plan.FileNames)
            {
                string path = Path.Combine(dir, name);
                if (!fileExists(path)) continue;
                found.Add(name);
                if (TryOne(tryLoad, path, out var handle, out var error)) return (handle, path);
                tried.Add($"{path}: found but failed to load ({error})");
            }
            if (found.Count == 0) tried.Add($"{dir}: not found");
        }
        if (plan.TryLoaderPath)
        {
            foreach (var name in plan.FileNames)
            {
                if (TryOne(tryLoad, name, out var handle, out var error)) return (handle, name);
                tried.Add($"{name} on the system loader path (LD_LIBRARY_PATH, ldconfig cache): {error}");
            }
        }
        var message = new StringBuilder();
        message.Append($"Cannot load {plan.Library}. Looked for {string.Join(", ", plan.FileNames)} in:");
        foreach (var line in tried) message.Append("\n  ").Append(line);
        message.Append("\nInstall the NVIDIA driver and the CUDA toolkit (11.x, 12.x or 13.x), or set CUDA_HOME to the toolkit folder.");
        throw new CudaUnavailableException(message.ToString(), tried);
    }

    private static bool TryOne(Func<string, IntPtr> tryLoad, string path, out IntPtr handle, out string error)
    {
        try
        {
            handle = tryLoad(path);
            error = handle == IntPtr.Zero ? "not loadable" : "";
            return handle != IntPtr.Zero;
        }
        catch (Exception e) when (e is DllNotFoundException or BadImageFormatException or IOException or ArgumentException)
        {
            handle = IntPtr.Zero;
            error = e.Message.ReplaceLineEndings(" ").Trim();
            return false;
        }
    }

    /// <summary>The default loader: <see cref="NativeLibrary.Load(string)"/>, whose exception carries the loader's reason.</summary>
    public static IntPtr SystemLoad(string path) => NativeLibrary.Load(path);

    private static IEnumerable<string> UserRoots(LibrarySearchEnvironment env)
    {
        if (!string.IsNullOrWhiteSpace(env.CudaHome)) yield return env.CudaHome!;
        if (!string.IsNullOrWhiteSpace(env.CudaPath)) yield return env.CudaPath!;
    }

    private static void AddLibDirs(List<string> dirs, string root)
    {
        dirs.Add(Path.Combine(root, "lib64"));
        dirs.Add(Path.Combine(root, "lib"));
        dirs.Add(Path.Combine(root, "targets", "x86_64-linux", "lib"));
    }

    private static List<string> Distinct(List<string> dirs) => dirs.Distinct(StringComparer.Ordinal).ToList();
}
