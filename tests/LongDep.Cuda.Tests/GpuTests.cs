using LongDep.Models.Synthetic;
using LongDep.Core.Probes;
using LongDep.Cuda.SelfTest;
using LongDep.Models;

namespace LongDep.Cuda.Tests;

/// <summary>
/// Kernels and probes on a real GPU against their twins and the float64 reference. Without a usable CUDA device every
/// test here is ignored with the reason (visible in the test report), never silently passed.
/// </summary>
[TestFixture]
[Category("Gpu")]
[NonParallelizable]
public class GpuTests
{
    private CudaDevice? device;
    private string reason = "";

    [OneTimeSetUp]
    public void Open()
    {
        if (!CudaDevice.TryOpen(0, out device, out reason)) device = null;
        else device.Backend.SynchronizeEachLaunch = true;
    }

    [OneTimeTearDown]
    public void Close() => device?.Dispose();

    private CudaDevice Gpu
    {
        get
        {
            if (device is null) Assert.Ignore($"no CUDA device: {reason}");
            return device!;
        }
    }

    private static void AllPass(IEnumerable<CheckResult> results)
    {
        var list = results.ToList();
        TestContext.Out.WriteLine(CheckResult.Header);
        foreach (var r in list) TestContext.Out.WriteLine(r.Row);
        Assert.That(list, Is.Not.Empty);
        Assert.That(list.Where(r => !r.Passed).Select(r => r.Row), Is.Empty);
    }

    private KernelChecks Checks() => new(Gpu.Backend, seed: 99);

    [Test]
    public void Embedding_RmsNorm_Rope_Elementwise()
    {
        var k = Checks();
        var types = new[] { CudaPrecision.F32, CudaPrecision.F16, CudaPrecision.BF16 };
        AllPass(types.Select(t => k.Embed(t))
            .Concat(types.Select(k.RmsNorm))
            .Append(k.Rope(RopeStyle.AdjacentPairs, 10000f))
            .Append(k.Rope(RopeStyle.Halves, 500000f))
            .Append(k.AddBias())
            .Append(k.Convert(CudaPrecision.F16))
            .Append(k.Convert(CudaPrecision.BF16))
            .Concat(types.Select(t => k.SwiGlu(t))));
    }

    [Test]
    public void TheOperationsOfEveryFamily()
    {
        // LayerNorm, sandwich and q/k norms, scaled embeddings, learned positions, scaled RoPE tables, GeGLU, bias + ReLU,
        // windowed and soft-capped attention and PFS, the final soft-cap.
        var k = Checks();
        var types = new[] { CudaPrecision.F32, CudaPrecision.F16, CudaPrecision.BF16 };
        AllPass(types.Select(t => k.LayerNorm(t))
            .Append(k.LayerNorm(CudaPrecision.F32, inPlace: true))
            .Append(k.RmsNormAdd())
            .Append(k.QkRmsNorm(128, 0.25f))
            .Append(k.Embed(CudaPrecision.BF16, 8f))
            .Append(k.EmbedAddPositions())
            .Append(k.RopeScaled(RopeScalingType.Yarn))
            .Append(k.RopeScaled(RopeScalingType.Llama3))
            .Concat(types.Select(t => k.SwiGlu(t, geglu: true)))
            .Concat(types.Select(t => k.BiasRelu(t, withBias: true)))
            .Append(k.Attention(CudaPrecision.F32, 2, 300, 0, 4, 2, 64, scores: new ScoreOptions(0.1f, Window: 100, SoftCap: 20f)))
            .Append(k.Attention(CudaPrecision.F16, 3, 130, 128, 4, 2, 128, AttentionKernels.TensorCores, scores: new ScoreOptions(0.08f, Window: 150)))
            .Append(k.Attention(CudaPrecision.BF16, 1, 700, 0, 4, 1, 64, AttentionKernels.TensorCores, packedKv: true,
                scores: new ScoreOptions(0.125f, Window: 200)))
            .Concat(k.Pfs(1100, 8, 2, 64, [(1000, 1100), (700, 828), (401, 402)], AttentionKernels.TensorCores, new ScoreOptions(0.125f, Window: 300)))
            .Concat(k.Pfs(600, 4, 2, 96, [(500, 600), (300, 428)], scores: new ScoreOptions(0.1f, Window: 120, SoftCap: 30f)))
            .Concat(k.Loss(softCap: 30f)));
    }

    [TestCase(CudaPrecision.F32, 1, 77, 0, 4, 2, 64)]
    [TestCase(CudaPrecision.F16, 3, 40, 0, 4, 1, 128)]
    [TestCase(CudaPrecision.BF16, 3, 33, 21, 2, 2, 80)]
    [TestCase(CudaPrecision.F32, 2, 50, 50, 4, 2, 256)]
    [TestCase(CudaPrecision.F32, 1, 700, 0, 2, 1, 16)]
    public void Attention(CudaPrecision output, int nSeq, int seqLen, int prefixLen, int heads, int kvHeads, int headDim) =>
        AllPass([Checks().Attention(output, nSeq, seqLen, prefixLen, heads, kvHeads, headDim)]);

    [Test]
    public void Pfs()
    {
        var k = Checks();
        AllPass(k.Pfs(T: 300, heads: 4, kvHeads: 2, headDim: 64, spans: [(200, 216), (150, 166), (131, 140)])
            .Concat(k.Pfs(T: 1100, heads: 8, kvHeads: 2, headDim: 128, spans: [(1000, 1100), (700, 828), (401, 402)])));
    }

    [Test]
    public void Loss_And_Gemm()
    {
        var k = Checks();
        var types = new[] { CudaPrecision.F32, CudaPrecision.F16, CudaPrecision.BF16 };
        AllPass(k.Loss().Concat(types.Select(t => k.Linear(t, false))).Concat(types.Select(t => k.Linear(t, true)))
            .Append(k.LinearTypedOutput(CudaPrecision.F16)).Append(k.LinearTypedOutput(CudaPrecision.BF16))
            .Append(k.StridedBatchedGemm()));
    }

    [Test]
    public void Buffers_CopyClearAndCheckRanges()
    {
        using var buffer = Gpu.Allocate<int>(10);
        buffer.CopyFrom(Enumerable.Range(1, 10).ToArray());
        buffer.Clear(2, 3);
        buffer.CopyFrom([70, 80], offset: 6);
        Assert.That(buffer.ToArray(), Is.EqualTo(new[] { 1, 2, 0, 0, 0, 6, 70, 80, 9, 10 }));
        var part = new int[3];
        buffer.CopyTo(part, offset: 7);
        Assert.That(part, Is.EqualTo(new[] { 80, 9, 10 }));
        Assert.Throws<ArgumentOutOfRangeException>(() => buffer.CopyFrom(new int[4], offset: 7));
        using var other = Gpu.Allocate<int>(10);
        other.CopyFrom(buffer, 10);
        Assert.That(other.ToArray(), Is.EqualTo(buffer.ToArray()));
    }

    [Test]
    public void PinnedCopies_AndEventTiming()
    {
        using var pinned = Gpu.AllocatePinned<float>(1000);
        for (int i = 0; i < 1000; i++) pinned.Span[i] = i * 0.5f;
        using var buffer = Gpu.Allocate<float>(1000);
        using var start = Gpu.CreateEvent();
        using var end = Gpu.CreateEvent();
        start.Record(Gpu.Stream);
        buffer.CopyFromAsync(pinned, 1000);
        end.Record(Gpu.Stream);
        Assert.That(CudaEvent.ElapsedMilliseconds(start, end), Is.GreaterThanOrEqualTo(0f));
        using var back = Gpu.AllocatePinned<float>(1000);
        buffer.CopyToAsync(back, 1000);
        Gpu.Synchronize();
        Assert.That(back.Span.ToArray(), Is.EqualTo(pinned.Span.ToArray()));
    }

    [Test]
    public void OutOfMemory_IsACudaOutOfMemoryException_NamingTheHint()
    {
        var gpu = Gpu;
        var e = Assert.Throws<CudaOutOfMemoryException>(() => gpu.Allocate<byte>(gpu.TotalMemory * 2, "a huge test buffer", "--pair-batch"));
        Assert.That(e!.Message, Does.Contain("--pair-batch").And.Contain("a huge test buffer"));
    }

    [Test]
    public void Kernels_AreAllInTheLoadedModule()
    {
        foreach (var spec in KernelNames.All)
            Assert.That(Gpu.Kernels.GetKernel(spec).MaxThreadsPerBlock, Is.GreaterThanOrEqualTo(256), spec.Name);
    }

    [TestCase(CudaPrecision.F32, 1, 200, 0, 4, 2, 64)]
    [TestCase(CudaPrecision.F16, 3, 40, 0, 4, 1, 128)]
    [TestCase(CudaPrecision.BF16, 5, 33, 21, 8, 2, 64)]
    [TestCase(CudaPrecision.F16, 2, 130, 128, 2, 2, 128)]
    [TestCase(CudaPrecision.F16, 1, 1000, 0, 32, 4, 64)]
    public void Attention_TensorCores(CudaPrecision output, int nSeq, int seqLen, int prefixLen, int heads, int kvHeads, int headDim) =>
        AllPass([Checks().Attention(output, nSeq, seqLen, prefixLen, heads, kvHeads, headDim, AttentionKernels.TensorCores)]);

    [Test]
    public void Pfs_TensorCores()
    {
        var k = Checks();
        var tc = AttentionKernels.TensorCores;
        AllPass(k.Pfs(T: 700, heads: 8, kvHeads: 2, headDim: 64, spans: [(600, 700), (300, 428), (37, 40), (129, 130)], tc)
            .Concat(k.Pfs(T: 1100, heads: 4, kvHeads: 4, headDim: 128, spans: [(1000, 1100), (700, 828), (401, 402)], tc)));
    }

    [Test]
    public void KernelTiming_RunsBothSets_WithPositiveThroughput()
    {
        // Small enough for the emulated GPU (a minute there); `bench --kernel-timing` measures the real sizes.
        var schedule = LadmSchedule.Create(512, chunk: 64, dAfs: 1, dCds: 4);
        var rows = Bench.KernelTiming.Run(Gpu, new Bench.KernelTimingOptions
        {
            T = 512, Heads = 4, KvHeads = 2, HeadDim = 64, Schedule = schedule, Repeats = 1,
        }, line => TestContext.Out.WriteLine(line));
        // Tensor cores: attention_mma, then kv_pack + attention_mma_kv16 with 16 rows per warp, 32 (4 warps) and 32 (8 warps),
        // PFS pass 1 with 16 and 32 rows per warp and from the packed keys with 4 and 8 warps, pass 2 with 16 and 32 key
        // columns per warp, and the default pass 2 over every key (no tile list); simple: attention, two PFS passes, pass 2
        // over every key.
        Assert.That(rows, Has.Count.EqualTo(15));
        Assert.That(rows.All(r => r.Milliseconds > 0 && double.IsFinite(r.Tflops)), Is.True);
    }

    private static IEnumerable<TestCaseData> Models()
    {
        foreach (var precision in new[] { CudaPrecision.F32, CudaPrecision.F16 })
        {
            yield return new TestCaseData(RandomModel.TinyConfig(), precision, AttentionKernels.TensorCores).SetName($"tiny llama {precision}");
            yield return new TestCaseData(RandomModel.TinyConfig(RopeStyle.Halves, qkvBias: true, tied: true), precision, AttentionKernels.TensorCores)
                .SetName($"tiny qwen2 {precision}");
        }
        var d64 = RandomModel.TinyConfig() with { Dim = 256, FfDim = 192, Heads = 4, KvHeads = 2, HeadDim = 64 };
        yield return new TestCaseData(d64, CudaPrecision.F32, AttentionKernels.Simple).SetName("tiny llama head dim 64, F32, simple kernels");
        yield return new TestCaseData(d64, CudaPrecision.F16, AttentionKernels.TensorCores).SetName("tiny llama head dim 64, F16, tensor cores");
    }

    [TestCaseSource(nameof(Models))]
    public void Probes_MatchTheFloat64Reference(ModelConfig config, CudaPrecision precision, AttentionKernels kernels)
    {
        var weights = RandomModel.Create(config, 21);
        var schedule = LadmSchedule.Create(300, chunk: 8, dAfs: 2, dCds: 3);
        var tokens = CudaSelfTest.RandomTokens(schedule.T, config.VocabSize, 8);
        var (chunks, pairs) = CudaSelfTest.ProLongInputs(config.VocabSize, chunkCount: 10, chunkLength: 16, pairCount: 30, seed: 9);
        bool tensor = kernels == AttentionKernels.TensorCores && KernelNames.HasTensorCoreKernels(config.HeadDim);
        double tol = precision == CudaPrecision.F32 && !tensor ? 1e-4 : 5e-3;
        using var model = new CudaModel(Gpu, weights, new CudaModelOptions
        {
            Precision = precision, Kernels = kernels, MlpTileRows = 100, LogitsTileBytes = 50L * config.VocabSize * 4,
        });
        using var ladm = new CudaLadmProbe(model, new CudaLadmOptions { ColumnBufferBytes = 4L * schedule.T * 4 });
        using var prolong = new CudaProLongProbe(model, new CudaProLongOptions { PairBatch = 8 });
        var gpuPfs = ladm.Measure(tokens, schedule).Pfs.SelectMany(l => l.SelectMany(s => s)).ToArray();
        var refPfs = new ReferenceLadmProbe(weights).Measure(tokens, schedule).Pfs.SelectMany(l => l.SelectMany(s => s)).ToArray();
        var gpu = prolong.Measure(chunks, pairs);
        var expected = new ReferenceProLongProbe(weights).Measure(chunks, pairs);
        AllPass([
            Compare.Arrays("PFS", gpuPfs, refPfs, tol, 1e-3),
            Compare.Arrays("single_ppl", gpu.SinglePpl, expected.SinglePpl, tol, 0),
            Compare.Arrays("pair_ppl", gpu.PairPpl, expected.PairPpl, tol, 0),
        ]);
    }

    [Test]
    public void SelfTest_Quick_PassesAgainstTheReference()
    {
        var log = new StringWriter();
        bool ok = CudaSelfTest.Run(Gpu.Backend, log, new SelfTestOptions { Quick = true },
            ReferenceProbes.Ladm, ReferenceProbes.ProLong);
        TestContext.Out.WriteLine(log.ToString());
        Assert.That(ok, Is.True);
    }
}
