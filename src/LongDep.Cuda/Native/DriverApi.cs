using System.Runtime.InteropServices;

namespace LongDep.Cuda.Native;

/// <summary>CUDA driver API result codes the host treats specially (the rest are reported by name).</summary>
internal enum CuResult
{
    Success = 0,
    InvalidValue = 1,
    OutOfMemory = 2,
    NotInitialized = 3,
    Deinitialized = 4,
    StubLibrary = 34,
    NoDevice = 100,
    InvalidDevice = 101,
    InvalidImage = 200,
    InvalidContext = 201,
    NoBinaryForGpu = 209,
    NotFound = 500,
    NotReady = 600,
    IllegalAddress = 700,
    LaunchOutOfResources = 701,
    LaunchTimeout = 702,
    LaunchFailed = 719,
    Unknown = 999,
}

/// <summary>Device attribute numbers (CUdevice_attribute) this host reads.</summary>
internal static class CuDeviceAttribute
{
    public const int MultiprocessorCount = 16;
    public const int ComputeCapabilityMajor = 75;
    public const int ComputeCapabilityMinor = 76;
    public const int MaxSharedMemoryPerBlockOptin = 97;
}

/// <summary>Function attribute numbers (CUfunction_attribute) this host reads or sets.</summary>
internal static class CuFunctionAttribute
{
    public const int MaxThreadsPerBlock = 0;
    public const int MaxDynamicSharedSizeBytes = 8;
}

/// <summary>
/// CUDA driver API (libcuda). Every declaration of the driver lives here; the safe wrappers in
/// LongDep.Cuda call them and turn results into exceptions (<see cref="CudaCheck"/>).
/// Versioned entry points (<c>_v2</c>) are named explicitly, as the driver exports them.
/// </summary>
internal static unsafe partial class DriverApi
{
    private const string Lib = NativeLibraries.DriverName;

    [LibraryImport(Lib)] internal static partial CuResult cuInit(uint flags);
    [LibraryImport(Lib)] internal static partial CuResult cuDriverGetVersion(int* version);
    [LibraryImport(Lib)] internal static partial CuResult cuGetErrorName(CuResult error, byte** text);
    [LibraryImport(Lib)] internal static partial CuResult cuGetErrorString(CuResult error, byte** text);

    [LibraryImport(Lib)] internal static partial CuResult cuDeviceGetCount(int* count);
    [LibraryImport(Lib)] internal static partial CuResult cuDeviceGet(int* device, int ordinal);
    [LibraryImport(Lib)] internal static partial CuResult cuDeviceGetName(byte* name, int length, int device);
    [LibraryImport(Lib)] internal static partial CuResult cuDeviceGetAttribute(int* value, int attribute, int device);
    [LibraryImport(Lib, EntryPoint = "cuDeviceTotalMem_v2")] internal static partial CuResult cuDeviceTotalMem(nuint* bytes, int device);

    [LibraryImport(Lib)] internal static partial CuResult cuDevicePrimaryCtxRetain(IntPtr* context, int device);
    [LibraryImport(Lib, EntryPoint = "cuDevicePrimaryCtxRelease_v2")] internal static partial CuResult cuDevicePrimaryCtxRelease(int device);
    [LibraryImport(Lib)] internal static partial CuResult cuCtxSetCurrent(IntPtr context);
    [LibraryImport(Lib)] internal static partial CuResult cuCtxSynchronize();

    [LibraryImport(Lib)] internal static partial CuResult cuModuleLoadData(IntPtr* module, void* image);
    [LibraryImport(Lib)] internal static partial CuResult cuModuleUnload(IntPtr module);
    [LibraryImport(Lib)] internal static partial CuResult cuModuleGetFunction(IntPtr* function, IntPtr module, byte* name);
    [LibraryImport(Lib)] internal static partial CuResult cuFuncGetAttribute(int* value, int attribute, IntPtr function);
    [LibraryImport(Lib)] internal static partial CuResult cuFuncSetAttribute(IntPtr function, int attribute, int value);
    [LibraryImport(Lib)]
    internal static partial CuResult cuLaunchKernel(IntPtr function, uint gridX, uint gridY, uint gridZ,
        uint blockX, uint blockY, uint blockZ, uint sharedBytes, IntPtr stream, void** parameters, void** extra);

    [LibraryImport(Lib)] internal static partial CuResult cuStreamCreate(IntPtr* stream, uint flags);
    [LibraryImport(Lib, EntryPoint = "cuStreamDestroy_v2")] internal static partial CuResult cuStreamDestroy(IntPtr stream);
    [LibraryImport(Lib)] internal static partial CuResult cuStreamSynchronize(IntPtr stream);

    [LibraryImport(Lib)] internal static partial CuResult cuEventCreate(IntPtr* evt, uint flags);
    [LibraryImport(Lib, EntryPoint = "cuEventDestroy_v2")] internal static partial CuResult cuEventDestroy(IntPtr evt);
    [LibraryImport(Lib)] internal static partial CuResult cuEventRecord(IntPtr evt, IntPtr stream);
    [LibraryImport(Lib)] internal static partial CuResult cuEventSynchronize(IntPtr evt);
    [LibraryImport(Lib)] internal static partial CuResult cuEventElapsedTime(float* milliseconds, IntPtr start, IntPtr end);

    [LibraryImport(Lib, EntryPoint = "cuMemAlloc_v2")] internal static partial CuResult cuMemAlloc(ulong* pointer, nuint bytes);
    [LibraryImport(Lib, EntryPoint = "cuMemFree_v2")] internal static partial CuResult cuMemFree(ulong pointer);
    [LibraryImport(Lib, EntryPoint = "cuMemAllocHost_v2")] internal static partial CuResult cuMemAllocHost(void** pointer, nuint bytes);
    [LibraryImport(Lib)] internal static partial CuResult cuMemFreeHost(void* pointer);
    [LibraryImport(Lib, EntryPoint = "cuMemGetInfo_v2")] internal static partial CuResult cuMemGetInfo(nuint* free, nuint* total);
    [LibraryImport(Lib, EntryPoint = "cuMemcpyHtoDAsync_v2")]
    internal static partial CuResult cuMemcpyHtoDAsync(ulong destination, void* source, nuint bytes, IntPtr stream);
    [LibraryImport(Lib, EntryPoint = "cuMemcpyDtoHAsync_v2")]
    internal static partial CuResult cuMemcpyDtoHAsync(void* destination, ulong source, nuint bytes, IntPtr stream);
    [LibraryImport(Lib, EntryPoint = "cuMemcpyDtoDAsync_v2")]
    internal static partial CuResult cuMemcpyDtoDAsync(ulong destination, ulong source, nuint bytes, IntPtr stream);
    [LibraryImport(Lib)] internal static partial CuResult cuMemsetD8Async(ulong destination, byte value, nuint count, IntPtr stream);
    [LibraryImport(Lib)] internal static partial CuResult cuMemsetD32Async(ulong destination, uint value, nuint count, IntPtr stream);
}
