using System.Reflection;
using System.Runtime.InteropServices;

namespace LongDep.Cuda.Native;

/// <summary>
/// Binds the logical library names of the P/Invoke declarations (<see cref="DriverName"/>, <see cref="CublasName"/>)
/// to the files <see cref="LibrarySearch"/> finds. Callers load explicitly (<see cref="LoadDriver"/>,
/// <see cref="LoadCublas"/>) before the first call so that a missing library becomes a
/// <see cref="CudaUnavailableException"/> listing where it looked, never a bare DllNotFoundException.
/// </summary>
internal static class NativeLibraries
{
    internal const string DriverName = "longdep-cuda-driver";
    internal const string CublasName = "longdep-cublas";

    private static readonly object Gate = new();
    private static bool resolverInstalled;
    private static IntPtr driver;
    private static IntPtr cublas;

    /// <summary>Path of the loaded driver library, once loaded.</summary>
    internal static string? DriverPath { get; private set; }
    /// <summary>Path of the loaded cuBLAS library, once loaded.</summary>
    internal static string? CublasPath { get; private set; }

    internal static IntPtr LoadDriver()
    {
        lock (Gate)
        {
            InstallResolver();
            if (driver == IntPtr.Zero)
            {
                var plan = LibrarySearch.DriverPlan(LibrarySearchEnvironment.FromProcess());
                (driver, var path) = LibrarySearch.Load(plan, LibrarySearch.SystemLoad);
                DriverPath = path;
            }
            return driver;
        }
    }

    internal static IntPtr LoadCublas()
    {
        lock (Gate)
        {
            InstallResolver();
            if (cublas == IntPtr.Zero)
            {
                var plan = LibrarySearch.CublasPlan(LibrarySearchEnvironment.FromProcess());
                (cublas, var path) = LibrarySearch.Load(plan, LibrarySearch.SystemLoad);
                CublasPath = path;
            }
            return cublas;
        }
    }

    private static void InstallResolver()
    {
        if (resolverInstalled) return;
        NativeLibrary.SetDllImportResolver(typeof(NativeLibraries).Assembly, Resolve);
        resolverInstalled = true;
    }

    private static IntPtr Resolve(string libraryName, Assembly assembly, DllImportSearchPath? searchPath) => libraryName switch
    {
        DriverName => LoadDriver(),
        CublasName => LoadCublas(),
        _ => IntPtr.Zero,
    };
}
