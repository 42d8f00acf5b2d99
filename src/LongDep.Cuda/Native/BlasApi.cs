using System.Runtime.InteropServices;

namespace LongDep.Cuda.Native;

/// <summary>cuBLAS constants (cublas_api.h, library_types.h) used by this host.</summary>
internal static class BlasConstants
{
    public const int OpN = 0;
    public const int OpT = 1;
    public const int DefaultMath = 0;
    public const int ComputeF32 = 68;          // CUBLAS_COMPUTE_32F (no TF32 unless the math mode allows it)
    public const int GemmDefault = -1;          // CUBLAS_GEMM_DEFAULT
    public const int DataF32 = 0;               // CUDA_R_32F
    public const int DataF16 = 2;               // CUDA_R_16F
    public const int DataBF16 = 14;             // CUDA_R_16BF
}

/// <summary>
/// cuBLAS (libcublas, versions 13, 12 or 11: the library is chosen at load time, see <see cref="NativeLibraries"/>).
/// Only the entry points the forward uses are declared; cuBLASLt is not used yet.
/// </summary>
internal static unsafe partial class BlasApi
{
    private const string Lib = NativeLibraries.CublasName;

    [LibraryImport(Lib, EntryPoint = "cublasCreate_v2")] internal static partial int cublasCreate(IntPtr* handle);
    [LibraryImport(Lib, EntryPoint = "cublasDestroy_v2")] internal static partial int cublasDestroy(IntPtr handle);
    [LibraryImport(Lib, EntryPoint = "cublasSetStream_v2")] internal static partial int cublasSetStream(IntPtr handle, IntPtr stream);
    [LibraryImport(Lib, EntryPoint = "cublasGetVersion_v2")] internal static partial int cublasGetVersion(IntPtr handle, int* version);
    [LibraryImport(Lib)] internal static partial int cublasSetMathMode(IntPtr handle, int mode);
    [LibraryImport(Lib)] internal static partial byte* cublasGetStatusString(int status);

    [LibraryImport(Lib)]
    internal static partial int cublasGemmEx(IntPtr handle, int transA, int transB, int m, int n, int k,
        void* alpha, ulong a, int aType, int lda, ulong b, int bType, int ldb,
        void* beta, ulong c, int cType, int ldc, int computeType, int algorithm);

    [LibraryImport(Lib)]
    internal static partial int cublasGemmStridedBatchedEx(IntPtr handle, int transA, int transB, int m, int n, int k,
        void* alpha, ulong a, int aType, int lda, long strideA, ulong b, int bType, int ldb, long strideB,
        void* beta, ulong c, int cType, int ldc, long strideC, int batchCount, int computeType, int algorithm);

    /// <summary>The status enum's name, for messages (cublasGetStatusString is absent from old libraries).</summary>
    internal static string StatusName(int status) => status switch
    {
        0 => "CUBLAS_STATUS_SUCCESS",
        1 => "CUBLAS_STATUS_NOT_INITIALIZED",
        3 => "CUBLAS_STATUS_ALLOC_FAILED",
        7 => "CUBLAS_STATUS_INVALID_VALUE",
        8 => "CUBLAS_STATUS_ARCH_MISMATCH",
        11 => "CUBLAS_STATUS_MAPPING_ERROR",
        13 => "CUBLAS_STATUS_EXECUTION_FAILED",
        14 => "CUBLAS_STATUS_INTERNAL_ERROR",
        15 => "CUBLAS_STATUS_NOT_SUPPORTED",
        16 => "CUBLAS_STATUS_LICENSE_ERROR",
        _ => $"cuBLAS status {status}",
    };
}
