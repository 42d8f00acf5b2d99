using System.Runtime.InteropServices;

namespace LongDep.Cuda.Native;

/// <summary>
/// The optional NVTX shim (native/nvtx_shim.c → liblongdep_nvtx.so). Looked for beside the executable, beside the
/// kernels fatbin and in &lt;repo&gt;/build/native; when absent every call is a no-op.
/// </summary>
internal static unsafe class NvtxApi
{
    private static readonly object Gate = new();
    private static bool probed;
    private static delegate* unmanaged<byte*, void> push;
    private static delegate* unmanaged<void> pop;

    internal static bool Available
    {
        get
        {
            Probe();
            return push != null;
        }
    }

    internal static void Push(string name)
    {
        Probe();
        if (push == null) return;
        int max = name.Length * 3 + 1;
        Span<byte> buffer = max <= 512 ? stackalloc byte[max] : new byte[max];
        int n = System.Text.Encoding.UTF8.GetBytes(name, buffer);
        buffer[n] = 0;
        fixed (byte* p = buffer) push(p);
    }

    internal static void Pop()
    {
        Probe();
        if (pop != null) pop();
    }

    private static void Probe()
    {
        if (probed) return;
        lock (Gate)
        {
            if (probed) return;
            string file = OperatingSystem.IsWindows() ? "longdep_nvtx.dll" : "liblongdep_nvtx.so";
            foreach (var dir in KernelSearchDirectories())
            {
                string path = Path.Combine(dir, file);
                if (!File.Exists(path) || !NativeLibrary.TryLoad(path, out var handle)) continue;
                if (NativeLibrary.TryGetExport(handle, "longdep_nvtx_push", out var pushAddress)
                    && NativeLibrary.TryGetExport(handle, "longdep_nvtx_pop", out var popAddress))
                {
                    push = (delegate* unmanaged<byte*, void>)pushAddress;
                    pop = (delegate* unmanaged<void>)popAddress;
                    break;
                }
            }
            probed = true;
        }
    }

    private static IEnumerable<string> KernelSearchDirectories()
    {
        yield return AppContext.BaseDirectory;
        string? env = Environment.GetEnvironmentVariable(FatbinLocator.EnvironmentVariable);
        if (!string.IsNullOrWhiteSpace(env))
            yield return Directory.Exists(env) ? env : Path.GetDirectoryName(Path.GetFullPath(env)) ?? ".";
        var repo = FatbinLocator.FindRepositoryRoot(AppContext.BaseDirectory);
        if (repo is not null) yield return Path.Combine(repo, "build", "native");
    }
}
