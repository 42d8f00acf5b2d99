namespace LongDep.Cuda;

/// <summary>A CUDA driver or cuBLAS call failed. The message names the call, the error's name and CUDA's description.</summary>
public class CudaException : Exception
{
    /// <summary>The API call that failed, e.g. <c>cuMemAlloc_v2</c> or <c>cublasGemmEx</c>.</summary>
    public string Call { get; }
    /// <summary>The numeric result (CUresult or cublasStatus_t).</summary>
    public int Code { get; }
    /// <summary>The error's name, e.g. <c>CUDA_ERROR_ILLEGAL_ADDRESS</c>.</summary>
    public string ErrorName { get; }

    public CudaException(string call, int code, string errorName, string description, string? context = null)
        : base(Format(call, code, errorName, description, context))
    {
        Call = call;
        Code = code;
        ErrorName = errorName;
    }

    /// <summary>For subclasses that word the whole message themselves.</summary>
    protected CudaException(string message, string call, int code, string errorName)
        : base(message)
    {
        Call = call;
        Code = code;
        ErrorName = errorName;
    }

    private static string Format(string call, int code, string name, string description, string? context)
    {
        string text = $"CUDA call {call} failed: {name} ({code}): {description}";
        return context is null ? text : $"{text} [{context}]";
    }
}

/// <summary>
/// The GPU ran out of memory. The message says how much was asked for, how much was free, and which setting to lower
/// (the caller's hint, e.g. <c>--window</c> or <c>--pair-batch</c>).
/// </summary>
public sealed class CudaOutOfMemoryException : CudaException
{
    public long RequestedBytes { get; }
    public string Hint { get; }

    public CudaOutOfMemoryException(string call, long requestedBytes, long freeBytes, long totalBytes, string what, string hint)
        : base($"Out of GPU memory: {call} could not allocate {FormatBytes(requestedBytes)} for {what} " +
               $"({FormatBytes(freeBytes)} free of {FormatBytes(totalBytes)}). Lower {hint}, or use a GPU with more memory.",
            call, 2, "CUDA_ERROR_OUT_OF_MEMORY")
    {
        RequestedBytes = requestedBytes;
        Hint = hint;
    }

    internal static string FormatBytes(long bytes) => bytes switch
    {
        >= 1L << 30 => $"{bytes / (double)(1L << 30):0.##} GiB",
        >= 1L << 20 => $"{bytes / (double)(1L << 20):0.##} MiB",
        >= 1L << 10 => $"{bytes / 1024.0:0.##} KiB",
        _ => $"{bytes} B",
    };
}

/// <summary>
/// CUDA cannot be used here: no driver or cuBLAS library, no device, or no kernels fatbin. The message lists every place
/// that was looked at and what to do; <c>--device auto</c> falls back to the CPU with this message as the reason.
/// </summary>
public sealed class CudaUnavailableException : Exception
{
    /// <summary>Each place looked at, with the outcome.</summary>
    public IReadOnlyList<string> Places { get; }

    public CudaUnavailableException(string message, IReadOnlyList<string>? places = null, Exception? inner = null)
        : base(message, inner)
    {
        Places = places ?? [];
    }
}
