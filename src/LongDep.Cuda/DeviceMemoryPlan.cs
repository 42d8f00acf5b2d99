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
        long norm = c.NormHasBias ? 2L * c.Dim : c.Dim;
        long layer = (c.NormPlacement == NormPlacement.Sandwich ? 4 : 2) * norm
            + (2L * c.QDim + 2L * c.KvDim) * c.Dim + (c.HasGate ? 3L : 2L) * c.FfDim * c.Dim
            + (c.QkvBias ? c.QDim + 2L * c.KvDim : 0) + (c.OutputProjectionBias ? c.Dim : 0) + (c.QkNorm ? 2L * c.HeadDim : 0)
            + (c.FeedForwardBias ? c.FfDim + (long)c.Dim : 0);
        long e = c.EmbeddingWidth;
        long embeddings = (c.TiedEmbedding ? 1L : 2L) * c.VocabSize * e
            + (c.Positions == PositionKind.Learned ? (long)c.PositionRows * c.Dim : 0)
            + (c.HasProjections ? 2L * c.Dim * e : 0);
        return 4 * (layer + embeddings + (c.FinalNorm ? norm : 0));
    }

    /// <summary>Zero weights of <paramref name="config"/>'s shapes; every layer shares one set of arrays (only the shapes matter here).</summary>
    private static ModelWeights Placeholder(ModelConfig c)
    {
        float[] V(long n) => new float[n];
        float[]? If(bool wanted, long n) => wanted ? new float[n] : null;
        bool sandwich = c.NormPlacement == NormPlacement.Sandwich;
        var layer = new LayerWeights
        {
            AttnNorm = V(c.Dim),
            AttnNormBias = If(c.NormHasBias, c.Dim),
            Wq = V((long)c.QDim * c.Dim),
            Wk = V((long)c.KvDim * c.Dim),
            Wv = V((long)c.KvDim * c.Dim),
            Wo = V((long)c.Dim * c.QDim),
            Bq = If(c.QkvBias, c.QDim),
            Bk = If(c.QkvBias, c.KvDim),
            Bv = If(c.QkvBias, c.KvDim),
            Bo = If(c.OutputProjectionBias, c.Dim),
            QNorm = If(c.QkNorm, c.HeadDim),
            KNorm = If(c.QkNorm, c.HeadDim),
            PostAttnNorm = If(sandwich, c.Dim),
            FfnNorm = V(c.Dim),
            FfnNormBias = If(c.NormHasBias, c.Dim),
            WGate = If(c.HasGate, (long)c.FfDim * c.Dim),
            WUp = V((long)c.FfDim * c.Dim),
            WDown = V((long)c.Dim * c.FfDim),
            BUp = If(c.FeedForwardBias, c.FfDim),
            BDown = If(c.FeedForwardBias, c.Dim),
            PostFfnNorm = If(sandwich, c.Dim),
        };
        int e = c.EmbeddingWidth;
        var embedding = V((long)c.VocabSize * e);
        return new ModelWeights
        {
            Config = c,
            TokenEmbedding = embedding,
            Layers = Enumerable.Repeat(layer, c.Layers).ToArray(),
            OutputNorm = If(c.FinalNorm, c.Dim),
            OutputNormBias = If(c.FinalNorm && c.NormHasBias, c.Dim),
            Output = c.TiedEmbedding ? embedding : V((long)c.VocabSize * e),
            PositionEmbedding = If(c.Positions == PositionKind.Learned, (long)c.PositionRows * c.Dim),
            ProjectIn = If(c.HasProjections, (long)c.Dim * e),
            ProjectOut = If(c.HasProjections, (long)e * c.Dim),
        };
    }
}
