using LongDep.Core.Probes;
using LongDep.Cuda.Twins;
using LongDep.Models;

namespace LongDep.Cuda;

/// <summary>
/// Peak device memory of the engine's own buffers for a run, found by replaying the run on <see cref="CountingBackend"/>
/// (same code, no GPU, no weights read: placeholder weights of the config's shapes). A GPU adds its context and
/// cuBLAS's workspace (a few hundred MiB) on top. The peak is taken over the measurement, after the weights are loaded
/// (as <c>bench</c> reports it), so the upload's staging buffer is not in it.
/// </summary>
public static class DeviceMemoryPlan
{
    /// <summary>Peak bytes of one LADM measurement over <paramref name="tokens"/> tokens.</summary>
    public static long Ladm(ModelConfig config, int tokens, int chunk = 128, int dAfs = 4, int dCds = 4, CudaModelOptions? options = null,
        CudaLadmOptions? ladmOptions = null)
    {
        ArgumentNullException.ThrowIfNull(config);
        var schedule = LadmSchedule.Create(tokens, chunk, dAfs, dCds);
        using var backend = new CountingBackend();
        using (var model = new CudaModel(backend, Placeholder(config), options ?? new CudaModelOptions()))
        using (var probe = new CudaLadmProbe(model, ladmOptions))
        {
            backend.ResetPeakTracked(); // the weights stay; the upload's staging buffer is gone (as bench measures)
            probe.Measure(new int[tokens], schedule);
        }
        return backend.PeakTrackedBytes;
    }

    /// <summary>Peak bytes of one ProLong measurement: <paramref name="chunks"/> chunks of <paramref name="chunkLength"/> tokens, <paramref name="pairs"/> pairs.</summary>
    public static long ProLong(ModelConfig config, int chunks, int chunkLength, int pairs, CudaModelOptions? options = null,
        CudaProLongOptions? proLongOptions = null)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentOutOfRangeException.ThrowIfLessThan(chunks, 2);
        var chunkList = Enumerable.Range(0, chunks).Select(_ => new int[chunkLength]).ToList();
        var pairList = new List<ChunkPair>(pairs);
        for (int i = 1; i < chunks && pairList.Count < pairs; i++)
            for (int j = 0; j < i && pairList.Count < pairs; j++) pairList.Add(new ChunkPair(i, j));
        using var backend = new CountingBackend();
        using (var model = new CudaModel(backend, Placeholder(config), options ?? new CudaModelOptions()))
        using (var probe = new CudaProLongProbe(model, proLongOptions))
        {
            backend.ResetPeakTracked();
            probe.Measure(chunkList, pairList);
        }
        return backend.PeakTrackedBytes;
    }

    /// <summary>Host bytes the placeholder weights of <paramref name="config"/> take while a plan runs (one layer's arrays, shared by all layers, and the embeddings).</summary>
    public static long PlaceholderHostBytes(ModelConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        var c = config;
        long layer = 2L * c.Dim + (2L * c.QDim + 2L * c.KvDim) * c.Dim + 3L * c.FfDim * c.Dim + (c.QkvBias ? c.QDim + 2L * c.KvDim : 0);
        long embeddings = (c.TiedEmbedding ? 1L : 2L) * c.VocabSize * c.Dim;
        return 4 * (layer + embeddings + c.Dim);
    }

    /// <summary>Zero weights of <paramref name="config"/>'s shapes; every layer shares one set of arrays (only the shapes matter here).</summary>
    private static ModelWeights Placeholder(ModelConfig c)
    {
        var layer = new LayerWeights
        {
            AttnNorm = new float[c.Dim],
            Wq = new float[(long)c.QDim * c.Dim],
            Wk = new float[(long)c.KvDim * c.Dim],
            Wv = new float[(long)c.KvDim * c.Dim],
            Wo = new float[(long)c.Dim * c.QDim],
            Bq = c.QkvBias ? new float[c.QDim] : null,
            Bk = c.QkvBias ? new float[c.KvDim] : null,
            Bv = c.QkvBias ? new float[c.KvDim] : null,
            FfnNorm = new float[c.Dim],
            WGate = new float[(long)c.FfDim * c.Dim],
            WUp = new float[(long)c.FfDim * c.Dim],
            WDown = new float[(long)c.Dim * c.FfDim],
        };
        var embedding = new float[(long)c.VocabSize * c.Dim];
        return new ModelWeights
        {
            Config = c,
            TokenEmbedding = embedding,
            Layers = Enumerable.Repeat(layer, c.Layers).ToArray(),
            OutputNorm = new float[c.Dim],
            Output = c.TiedEmbedding ? embedding : new float[(long)c.VocabSize * c.Dim],
        };
    }
}
