namespace LongDep.Cuda;

/// <summary>
/// Activation buffers of the CUDA forward for up to <see cref="Capacity"/> rows (memory linear in rows): the float32
/// residual stream, the GEMM-typed normalized input, q/k/v, the attention output, a feed-forward row tile and, when
/// asked for, the loss buffers (a logits row tile, targets, per-row NLL).
/// </summary>
internal sealed class ForwardWorkspace : IDisposable
{
    private readonly List<IDisposable> owned = [];

    public ForwardWorkspace(CudaModel model, int capacity, string what, string hint, bool withLoss = false)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(capacity, 1);
        var c = model.Config;
        var backend = model.Backend;
        int size = model.Precision.ElementSize();
        Capacity = capacity;
        MlpTileRows = Math.Min(capacity, model.Options.MlpTileRows);
        try
        {
            Hidden = Own(backend.Allocate<float>((long)capacity * c.Dim, $"{what}: hidden states", hint));
            Normed = Own(backend.Allocate<byte>((long)capacity * c.Dim * size, $"{what}: normalized activations", hint));
            Q = Own(backend.Allocate<float>((long)capacity * c.QDim, $"{what}: queries", hint));
            K = Own(backend.Allocate<float>((long)capacity * c.KvDim, $"{what}: keys", hint));
            V = Own(backend.Allocate<float>((long)capacity * c.KvDim, $"{what}: values", hint));
            AttnOut = Own(backend.Allocate<byte>((long)capacity * c.QDim * size, $"{what}: attention output", hint));
            // Packed f16 keys and values for tensor-core attention without prefix keys: room for one sequence of
            // `capacity` rows, or several whose lengths are multiples of 64 (KernelOps.UsesPackedKv falls back otherwise).
            if (model.Ops.UsesTensorCores(c.HeadDim))
                KvHalf = Own(backend.Allocate<byte>(KernelOps.KvHalfBytes(1, capacity, c.KvHeads, c.HeadDim), $"{what}: packed f16 keys and values", hint));
            Gate = Own(backend.Allocate<byte>((long)MlpTileRows * c.FfDim * size, $"{what}: feed-forward gate", hint));
            Up = Own(backend.Allocate<byte>((long)MlpTileRows * c.FfDim * size, $"{what}: feed-forward up", hint));
            Act = Own(backend.Allocate<byte>((long)MlpTileRows * c.FfDim * size, $"{what}: feed-forward activation", hint));
            Tokens = Own(backend.Allocate<int>(capacity, $"{what}: tokens", hint));
            Positions = Own(backend.Allocate<int>(capacity, $"{what}: positions", hint));
            if (withLoss)
            {
                LogitsTileRows = (int)Math.Clamp(model.Options.LogitsTileBytes / ((long)c.VocabSize * sizeof(float)), 1, capacity);
                Logits = Own(backend.Allocate<float>((long)LogitsTileRows * c.VocabSize, $"{what}: logits tile", hint));
                Targets = Own(backend.Allocate<int>(capacity, $"{what}: targets", hint));
                Nll = Own(backend.Allocate<float>(capacity, $"{what}: per-token loss", hint));
            }
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    public int Capacity { get; }
    public int MlpTileRows { get; }
    public int LogitsTileRows { get; }
    public DeviceBuffer<float> Hidden { get; } = null!;
    public DeviceBuffer<byte> Normed { get; } = null!;
    public DeviceBuffer<float> Q { get; } = null!;
    public DeviceBuffer<float> K { get; } = null!;
    public DeviceBuffer<float> V { get; } = null!;
    public DeviceBuffer<byte> AttnOut { get; } = null!;
    /// <summary>Scratch of kv_pack_f16 (null when the model's attention does not run on tensor cores).</summary>
    public DeviceBuffer<byte>? KvHalf { get; }
    public DeviceBuffer<byte> Gate { get; } = null!;
    public DeviceBuffer<byte> Up { get; } = null!;
    public DeviceBuffer<byte> Act { get; } = null!;
    public DeviceBuffer<int> Tokens { get; } = null!;
    public DeviceBuffer<int> Positions { get; } = null!;
    public DeviceBuffer<float>? Logits { get; }
    public DeviceBuffer<int>? Targets { get; }
    public DeviceBuffer<float>? Nll { get; }

    public void CheckRows(int rows)
    {
        if (rows < 0 || rows > Capacity)
            throw new ArgumentOutOfRangeException(nameof(rows), rows, $"the workspace holds {Capacity} rows");
    }

    private T Own<T>(T item) where T : IDisposable
    {
        owned.Add(item);
        return item;
    }

    public void Dispose()
    {
        for (int i = owned.Count - 1; i >= 0; i--) owned[i].Dispose();
        owned.Clear();
    }
}
