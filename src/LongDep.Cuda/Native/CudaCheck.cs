using System.Runtime.InteropServices;

namespace LongDep.Cuda.Native;

/// <summary>Turns driver and cuBLAS results into <see cref="CudaException"/>s naming the call.</summary>
internal static unsafe class CudaCheck
{
    internal static void Driver(CuResult result, string call, string? context = null)
    {
        if (result != CuResult.Success) throw DriverError(result, call, context);
    }

    internal static CudaException DriverError(CuResult result, string call, string? context = null)
    {
        var (name, description) = Describe(result);
        return new CudaException(call, (int)result, name, description, context);
    }

    /// <summary>CUDA's own name and description of a result (falls back to the number when the driver cannot say).</summary>
    internal static (string Name, string Description) Describe(CuResult result)
    {
        string name = $"CUresult {(int)result}";
        string description = "no description available";
        try
        {
            byte* text = null;
            if (DriverApi.cuGetErrorName(result, &text) == CuResult.Success && text != null)
                name = Marshal.PtrToStringUTF8((IntPtr)text) ?? name;
            text = null;
            if (DriverApi.cuGetErrorString(result, &text) == CuResult.Success && text != null)
                description = Marshal.PtrToStringUTF8((IntPtr)text) ?? description;
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException or CudaUnavailableException)
        {
            // the driver library itself is the problem; keep the number
        }
        return (name, description);
    }

    internal static void Blas(int status, string call, string? context = null)
    {
        if (status == 0) return;
        string name = BlasApi.StatusName(status);
        string description = name;
        try
        {
            byte* text = BlasApi.cublasGetStatusString(status);
            if (text != null) description = Marshal.PtrToStringUTF8((IntPtr)text) ?? name;
        }
        catch (EntryPointNotFoundException)
        {
            // cuBLAS older than 11.4 has no cublasGetStatusString
        }
        throw new CudaException(call, status, name, description, context);
    }
}
