using LongDep.Models;

namespace LongDep.Cuda;

/// <summary>
/// Activation buffers of the CUDA forward for up to <see cref="Capacity"/> rows (memory linear in rows): the float32
/// residual stream, the GEMM-typed normalized input, q/k/v, the attention output, a feed-forward row tile and, when
/// asked for, the loss buffers (a logits row tile, targets, per-row NLL). What the model's block needs beyond a Llama
/// block: a float32 sub-block output (sandwich norms), fc1's float32 output tile (the ReLU feed-forward, in place of the
/// gate and up tiles), and the embedding-width rows of project_in/out.
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
            if (c.HasGate)
            {
                Gate = Own(backend.Allocate<byte>((long)MlpTileRows * c.FfDim * size, $"{what}: feed-forward gate", hint));
                Up = Own(backend.Allocate<byte>((long)MlpTileRows * c.FfDim * size, $"{what}: feed-forward up", hint));
            }
            else
                FfF32 = Own(backend.Allocate<float>((long)MlpTileRows * c.FfDim, $"{what}: feed-forward fc1 output", hint));
            Act = Own(backend.Allocate<byte>((long)MlpTileRows * c.FfDim * size, $"{what}: feed-forward activation", hint));
            if (c.NormPlacement == NormPlacement.Sandwich)
                Delta = Own(backend.Allocate<float>((long)capacity * c.Dim, $"{what}: sub-block outputs", hint));
            if (c.HasProjections)
            {
                EmbedRows = Own(backend.Allocate<float>((long)capacity * c.EmbeddingWidth, $"{what}: embedding rows", hint));
                ProjectedRows = Own(backend.Allocate<byte>((long)capacity * c.EmbeddingWidth * size, $"{what}: projected rows", hint));
            }
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
    /// <summary>The gated feed-forward's gate and up tiles (null for the ReLU feed-forward).</summary>
    public DeviceBuffer<byte>? Gate { get; }
    public DeviceBuffer<byte>? Up { get; }
    /// <summary>The ReLU feed-forward's fc1 output tile, float32 (null for a gated feed-forward).</summary>
    public DeviceBuffer<float>? FfF32 { get; }
    public DeviceBuffer<byte> Act { get; } = null!;
    /// <summary>A sub-block's float32 output before its sandwich norm (null unless the block is a sandwich).</summary>
    public DeviceBuffer<float>? Delta { get; }
    /// <summary>Token embedding rows before project_in (float32), and the typed rows project_in reads and project_out writes (null without projections).</summary>
    public DeviceBuffer<float>? EmbedRows { get; }
    public DeviceBuffer<byte>? ProjectedRows { get; }
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
