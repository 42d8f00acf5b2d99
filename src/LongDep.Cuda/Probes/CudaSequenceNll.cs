using LongDep.Core.Detail;
using LongDep.Models;

namespace LongDep.Cuda;

/// <summary>
/// Per-token NLL of one sequence on the GPU (for <c>longdep ppl</c>): the CUDA forward over positions 0..T−1, then
/// the output head and the loss kernel tile by tile (<see cref="CudaModel.OutputNll"/>), the logits never leaving the
/// GPU. Memory is linear in T; the workspace is kept for the next sequence of the same or smaller length.
/// </summary>
public sealed class CudaSequenceNll : ISequenceNll, IDisposable
{
    private const string Hint = "the largest --windows value";
    private readonly CudaModel model;
    private readonly bool ownsModel;
    private ForwardWorkspace? workspace;

    public CudaSequenceNll(CudaModel model, bool ownsModel = false)
    {
        this.model = model;
        this.ownsModel = ownsModel;
    }

    public static CudaSequenceNll Create(CudaDevice device, ModelWeights weights, CudaModelOptions? options = null) =>
        new(new CudaModel(device, weights, options), ownsModel: true);

    /// <summary>nll[t] = −log p(token t | tokens before it) for t ≥ 1; nll[0] = NaN.</summary>
    public double[] TokenNll(ReadOnlySpan<int> tokens)
    {
        int t = tokens.Length;
        var nll = new double[t];
        if (t == 0) return nll;
        nll[0] = double.NaN;
        if (t == 1) return nll;
        var c = model.Config;
        var targets = new int[t];
        var positions = new int[t];
        for (int i = 0; i < t; i++)
        {
            if ((uint)tokens[i] >= (uint)c.VocabSize)
                throw new ArgumentException($"token {tokens[i]} at position {i} is outside the vocabulary of {c.VocabSize}", nameof(tokens));
            positions[i] = i;
            targets[i] = i + 1 < t ? tokens[i + 1] : -1;
        }
        model.CheckPositions(t, "a shorter sequence");
        if (workspace is null || workspace.Capacity < t)
        {
            workspace?.Dispose();
            workspace = null;
            workspace = new ForwardWorkspace(model, t, "perplexity", Hint, withLoss: true);
        }
        var ws = workspace;
        var backend = model.Backend;
        using (backend.Range("h2d"))
        {
            ws.Tokens.CopyFrom(tokens);
            ws.Positions.CopyFrom(positions);
            ws.Targets!.CopyFrom(targets);
        }
        model.PrepareRope(t);
        model.Embed(ws, t);
        for (int layer = 0; layer < c.Layers; layer++)
        {
            using var _ = backend.Range($"forward layer {layer}");
            model.ProjectQkv(layer, ws, t, ws.K.Pointer, ws.V.Pointer);
            model.AttendAndFeedForward(layer, ws, 1, t, ws.K.Pointer, ws.V.Pointer, 0, DevicePtr.Null, DevicePtr.Null, DevicePtr.Null);
        }
        var rowNll = new float[t];
        using (backend.Range("loss")) model.OutputNll(ws, t);
        using (backend.Range("d2h")) ws.Nll!.CopyTo(rowNll);
        for (int i = 1; i < t; i++) nll[i] = rowNll[i - 1]; // row i−1 predicts token i
        return nll;
    }

    public void Dispose()
    {
        workspace?.Dispose();
        workspace = null;
        if (ownsModel) model.Dispose();
    }
}
