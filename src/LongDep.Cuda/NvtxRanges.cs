using LongDep.Core.Diagnostics;
using LongDep.Cuda.Native;

namespace LongDep.Cuda;

/// <summary>
/// Forwards every <see cref="Phases"/> range (read, tokenize, h2d, forward layer N, pfs, loss, d2h, write) to NVTX, so
/// Nsight Systems shows the pipeline as users think of it. A no-op when liblongdep_nvtx.so is not found.
/// </summary>
public sealed class NvtxRanges : Phases.IRangeListener
{
    private NvtxRanges() { }

    /// <summary>Whether the NVTX shim was found.</summary>
    public static bool Available => NvtxApi.Available;

    /// <summary>Installs the NVTX listener when the shim is there; returns whether it did.</summary>
    public static bool Install()
    {
        if (!NvtxApi.Available) return false;
        Phases.SetListener(new NvtxRanges());
        return true;
    }

    public void Push(string name) => NvtxApi.Push(name);
    public void Pop() => NvtxApi.Pop();
}
