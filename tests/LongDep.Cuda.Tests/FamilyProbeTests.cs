using LongDep.Core.Probes;
using LongDep.Cuda.SelfTest;
using LongDep.Cuda.Twins;
using LongDep.Models;
using LongDep.Models.Cpu;
using LongDep.Models.Synthetic;

namespace LongDep.Cuda.Tests;

/// <summary>
/// Every model family through the CUDA forward and both GPU probes, on the simulated backend (the kernels' C# twins,
/// pointer-range and launch-geometry checks), against the CPU probes, which the model tests check against a float64
/// forward written from each published architecture. Also the parts of the GPU path a family brings: the kernels it
/// launches, the RoPE tables of length-dependent scaling, the refusals the CPU makes too, and the memory plan.
/// </summary>
public class FamilyProbeTests
{
    /// <summary>Tiny models of every family (vocabulary 97), some with features tightened so short inputs exercise them.</summary>
    internal static IEnumerable<(string Name, ModelConfig Config)> Families()
    {
        ModelConfig S(string shape) => RandomModel.Shape(shape, vocabSize: 97);
        yield return ("tiny-llama3", S("tiny-llama3"));
        yield return ("tiny-mistral, window 16", S("tiny-mistral") with { SlidingWindow = 16 });
        yield return ("tiny-qwen2", S("tiny-qwen2"));
        yield return ("tiny-qwen3", S("tiny-qwen3"));
        yield return ("tiny-gemma2", S("tiny-gemma2"));
        yield return ("tiny-gemma3", S("tiny-gemma3"));
        yield return ("tiny-phi3, window 40", S("tiny-phi3") with { SlidingWindow = 40 });
        yield return ("opt-tiny", S("opt-tiny") with { PositionRows = 302 });
        yield return ("opt-tiny pre-norm", S("opt-tiny") with
        {
            NormPlacement = NormPlacement.Pre, FinalNorm = true, EmbedDim = null, PositionRows = 302,
        });
        yield return ("tiny dynamic-ntk", S("tiny") with
        {
            RopeScaling = new RopeScaling { Type = RopeScalingType.Dynamic, Factor = 2, OriginalContext = 40 },
        });
    }

    private static IEnumerable<TestCaseData> FamilyCases() =>
        Families().Select(f => new TestCaseData(f.Name).SetArgDisplayNames(f.Name));

    private static ModelConfig Config(string name) => Families().Single(f => f.Name == name).Config;

    private static readonly LadmSchedule Schedule = LadmSchedule.Create(120, chunk: 6, dAfs: 2, dCds: 2);

    [Test]
    public void EveryFamily_IsSupportedByTheCudaForward()
    {
        foreach (var (name, config) in Families())
        {
            Assert.That(CudaModel.Unsupported(config), Is.Null, name);
            Assert.That(CudaModel.DevicePaths(config), Does.StartWith("CPU and GPU"), name);
        }
        foreach (var shape in RandomModel.ShapeNames)
            Assert.That(CudaModel.Unsupported(RandomModel.Shape(shape)), Is.Null, shape);
    }

    [TestCaseSource(nameof(FamilyCases))]
    public void Ladm_F32_MatchesTheCpuProbe(string name)
    {
        var config = Config(name);
        var weights = RandomModel.Create(config, 11);
        var tokens = CudaSelfTest.RandomTokens(Schedule.T, config.VocabSize, 3);
        using var backend = new SimulatedBackend();
        LadmMeasurement gpu;
        using (var model = new CudaModel(backend, weights, new CudaModelOptions { Precision = CudaPrecision.F32, MlpTileRows = 50 }))
        using (var probe = new CudaLadmProbe(model, new CudaLadmOptions { ColumnBufferBytes = 2L * Schedule.T * 4 }))
            gpu = probe.Measure(tokens, Schedule);
        LadmMeasurement cpu;
        using (var probe = new CpuLadmProbe(new CpuForward(weights)))
            cpu = probe.Measure(tokens, Schedule);
        int nonZero = 0, zero = 0;
        for (int layer = 0; layer < config.Layers; layer++)
            for (int s = 0; s < Schedule.Spans.Count; s++)
                for (int k = 0; k < cpu.Pfs[layer][s].Length; k++)
                {
                    double e = cpu.Pfs[layer][s][k];
                    Assert.That(gpu.Pfs[layer][s][k], Is.EqualTo(e).Within(1e-4 * Math.Abs(e) + 1e-6), $"{name}: layer {layer} span {s} interval {k}");
                    if (e > 1e-6) nonZero++;
                    else if (e == 0) zero++;
                }
        Assert.That(nonZero, Is.GreaterThan(config.HasSlidingWindow ? 5 : 20), "the measurement has PFS values to compare");
        if (config.HasSlidingWindow) Assert.That(zero, Is.GreaterThan(0), "windows before a layer's sliding window get no attention");
        Assert.That(backend.LiveAllocations, Is.Zero);
    }

    [TestCaseSource(nameof(FamilyCases))]
    public void ProLong_F32_MatchesTheCpuProbe_WithPrefixReuse(string name)
    {
        var config = Config(name);
        var weights = RandomModel.Create(config, 12);
        var (chunks, pairs) = CudaSelfTest.ProLongInputs(config.VocabSize, chunkCount: 6, chunkLength: 12, pairCount: 11, seed: 5);
        using var backend = new SimulatedBackend();
        if (!RopeFrequencies.SameFor(config, 12, 24))
        {
            // Reusing a chunk's keys would change the numbers: the GPU probe refuses, as the CPU probe does.
            using var refusing = new CudaModel(backend, weights, new CudaModelOptions { Precision = CudaPrecision.F32 });
            using var p = new CudaProLongProbe(refusing);
            var e = Assert.Throws<NotSupportedException>(() => p.Measure(chunks, pairs));
            Assert.That(e!.Message, Does.Contain("RoPE scaling").And.Contain("--chunk"));
            chunks = chunks.Select(c => c[..8]).ToList(); // 16 tokens a pair: inside the original context
            Assert.That(RopeFrequencies.SameFor(config, 8, 16), Is.True);
        }
        ProLongMeasurement gpu;
        var options = new CudaModelOptions { Precision = CudaPrecision.F32, MlpTileRows = 16, LogitsTileBytes = 10L * config.VocabSize * 4 };
        using (var model = new CudaModel(backend, weights, options))
        using (var probe = new CudaProLongProbe(model, new CudaProLongOptions { PairBatch = 4 }))
            gpu = probe.Measure(chunks, pairs);
        ProLongMeasurement cpu;
        using (var probe = new CpuProLongProbe(new CpuForward(weights)))
            cpu = probe.Measure(chunks, pairs);
        Assert.Multiple(() =>
        {
            for (int i = 0; i < chunks.Count; i++)
                Assert.That(gpu.SinglePpl[i], Is.EqualTo(cpu.SinglePpl[i]).Within(1e-3).Percent, $"{name}: single {i}");
            for (int p = 0; p < pairs.Count; p++)
                Assert.That(gpu.PairPpl[p], Is.EqualTo(cpu.PairPpl[p]).Within(1e-3).Percent, $"{name}: pair {pairs[p]}");
        });
        Assert.That(backend.LiveAllocations, Is.Zero);
    }

    [TestCase("tiny-gemma2", CudaPrecision.F16, 0.5)]
    [TestCase("opt-tiny", CudaPrecision.BF16, 3.0)]
    public void ReducedPrecision_StaysCloseToTheCpuProbe(string name, CudaPrecision precision, double percent)
    {
        var config = Config(name);
        var weights = RandomModel.Create(config, 13);
        var tokens = CudaSelfTest.RandomTokens(Schedule.T, config.VocabSize, 4);
        var (chunks, pairs) = CudaSelfTest.ProLongInputs(config.VocabSize, chunkCount: 4, chunkLength: 8, pairCount: 4, seed: 6);
        using var backend = new SimulatedBackend();
        using var model = new CudaModel(backend, weights, new CudaModelOptions { Precision = precision });
        using var ladm = new CudaLadmProbe(model);
        using var prolong = new CudaProLongProbe(model);
        var cpuForward = new CpuForward(weights);
        var gpuPfs = ladm.Measure(tokens, Schedule).Pfs.SelectMany(l => l.SelectMany(s => s)).ToArray();
        var cpuPfs = new CpuLadmProbe(cpuForward).Measure(tokens, Schedule).Pfs.SelectMany(l => l.SelectMany(s => s)).ToArray();
        double scale = cpuPfs.Max();
        for (int i = 0; i < gpuPfs.Length; i++)
            Assert.That(gpuPfs[i], Is.EqualTo(cpuPfs[i]).Within(percent / 100 * scale), $"PFS {i}");
        var gpu = prolong.Measure(chunks, pairs);
        var cpu = new CpuProLongProbe(cpuForward).Measure(chunks, pairs);
        Assert.That(gpu.SinglePpl, Is.EqualTo(cpu.SinglePpl).Within(percent).Percent);
        Assert.That(gpu.PairPpl, Is.EqualTo(cpu.PairPpl).Within(percent).Percent);
    }

    [Test]
    public void EachFamily_LaunchesItsOwnOperations()
    {
        string[] Launched(string name, AttentionKernels kernels = AttentionKernels.TensorCores)
        {
            var config = Config(name);
            using var backend = new SimulatedBackend();
            using var model = new CudaModel(backend, RandomModel.Create(config, 1), new CudaModelOptions { Kernels = kernels });
            using var probe = new CudaProLongProbe(model);
            var (chunks, pairs) = CudaSelfTest.ProLongInputs(config.VocabSize, chunkCount: 3, chunkLength: 6, pairCount: 2, seed: 1);
            probe.Measure(chunks, pairs);
            return backend.Launches.Keys.ToArray();
        }
        // post-norm OPT: LayerNorms of the residual in place, no final norm (the hidden states converted for the head)
        Assert.That(Launched("opt-tiny"), Does.Contain("layernorm_f32").And.Contain("bias_relu_f16").And.Contain("embed_add_positions")
            .And.Contain("add_bias_f32").And.Contain("convert_f32_to_f16")
            .And.Not.Contain("layernorm_f16").And.Not.Contain("rope_qk").And.Not.Contain("rmsnorm_f16").And.Not.Contain("swiglu_f16"));
        Assert.That(Launched("opt-tiny pre-norm"), Does.Contain("layernorm_f16").And.Not.Contain("layernorm_f32"));
        Assert.That(Launched("tiny-gemma2"), Does.Contain("geglu_tanh_f16").And.Contain("rmsnorm_add_f32").And.Contain("attention_fwd_f16")
            .And.Not.Contain("swiglu_f16"));
        Assert.That(Launched("tiny-qwen3"), Does.Contain("qk_rmsnorm").And.Contain("swiglu_f16"));
    }

    [Test]
    public void SoftCappedScores_RunOnTheScalarKernels_EvenWhenTensorCoresAreAsked()
    {
        var config = Config("tiny-gemma2") with { Dim = 256, Heads = 4, KvHeads = 2, HeadDim = 64 };
        Assert.That(CudaModel.KernelsFor(config, AttentionKernels.TensorCores), Is.EqualTo(AttentionKernels.Simple));
        Assert.That(CudaModel.DevicePaths(config), Does.Contain("scalar float32 kernels").And.Contain("soft-capped"));
        using var backend = new SimulatedBackend();
        using var model = new CudaModel(backend, RandomModel.Create(config, 2), new CudaModelOptions { Kernels = AttentionKernels.TensorCores });
        Assert.That(model.Kernels, Is.EqualTo(AttentionKernels.Simple));
        using var probe = new CudaLadmProbe(model);
        var tokens = CudaSelfTest.RandomTokens(Schedule.T, config.VocabSize, 2);
        var gpu = probe.Measure(tokens, Schedule);
        var cpu = new CpuLadmProbe(new CpuForward(RandomModel.Create(config, 2))).Measure(tokens, Schedule);
        for (int layer = 0; layer < config.Layers; layer++)
            for (int s = 0; s < Schedule.Spans.Count; s++)
                Assert.That(gpu.Pfs[layer][s], Is.EqualTo(cpu.Pfs[layer][s]).Within(0.1).Percent); // f16 weights
        Assert.That(backend.Launches.Keys, Does.Contain("pfs_row_stats").And.Contain("pfs_column_mass").And.Contain("attention_fwd_f16"));
        Assert.That(backend.Launches.Keys.Any(k => k.Contains("mma", StringComparison.Ordinal)), Is.False);
        // and the launcher refuses a soft-cap on tensor cores outright
        var ops = new KernelOps(backend, AttentionKernels.TensorCores);
        var p = new DevicePtr(256);
        Assert.Throws<NotSupportedException>(() => ops.Attention(p, p, p, p, p, p, p, CudaPrecision.F32, 1, 4, 0, 2, 1, 64,
            scores: new ScoreOptions(0.125f, SoftCap: 50f)));
    }

    [TestCase(AttentionKernels.TensorCores, 0.05)] // f16 q, k, v and P
    [TestCase(AttentionKernels.Simple, 1e-3)]
    public void SlidingWindows_OnTheTensorCoreKernels_MatchTheCpuProbes(AttentionKernels kernels, double percent)
    {
        // Head dimension 64: the packed-f16 wide attention, PFS pass 1 from the packed keys and the wide pass 2 with a
        // window (and the prefix kernel for ProLong's pairs), a local layer and a global one.
        var config = Config("tiny-mistral, window 16") with
        {
            Dim = 128, Heads = 2, KvHeads = 1, HeadDim = 64, SlidingWindow = 40, SlidingLayers = [true, false],
        };
        var weights = RandomModel.Create(config, 8);
        var schedule = LadmSchedule.Create(300, chunk: 16, dAfs: 2, dCds: 2);
        var tokens = CudaSelfTest.RandomTokens(300, config.VocabSize, 9);
        var (chunks, pairs) = CudaSelfTest.ProLongInputs(config.VocabSize, chunkCount: 4, chunkLength: 30, pairCount: 5, seed: 3);
        using var backend = new SimulatedBackend();
        using var model = new CudaModel(backend, weights, new CudaModelOptions { Precision = CudaPrecision.F32, Kernels = kernels });
        using var ladm = new CudaLadmProbe(model);
        using var prolong = new CudaProLongProbe(model);
        var gpu = ladm.Measure(tokens, schedule).Pfs.SelectMany(l => l.SelectMany(s => s)).ToArray();
        var cpu = new CpuLadmProbe(new CpuForward(weights)).Measure(tokens, schedule).Pfs.SelectMany(l => l.SelectMany(s => s)).ToArray();
        double scale = cpu.Max();
        for (int i = 0; i < gpu.Length; i++) Assert.That(gpu[i], Is.EqualTo(cpu[i]).Within(percent / 100 * scale), $"PFS {i}");
        var g = prolong.Measure(chunks, pairs);
        var c = new CpuProLongProbe(new CpuForward(weights)).Measure(chunks, pairs);
        Assert.That(g.PairPpl, Is.EqualTo(c.PairPpl).Within(percent).Percent);
        Assert.That(g.SinglePpl, Is.EqualTo(c.SinglePpl).Within(percent).Percent);
        if (kernels == AttentionKernels.TensorCores)
            Assert.That(backend.Launches.Keys, Does.Contain("attention_mma64_kv16_wide_f32").And.Contain("pfs_row_stats_mma64_kv16_wide")
                .And.Contain("pfs_column_mass_mma64_wide").And.Contain("attention_mma64_f32"));
    }

    [Test]
    public void AWindowLongerThanTheKernelsTake_MasksNothing()
    {
        // Past KernelOps.MaxWindow the kernels' key + window sums would leave int32: such a window is no window, as on the CPU.
        var config = Config("tiny-mistral, window 16") with { SlidingWindow = int.MaxValue };
        using var backend = new SimulatedBackend();
        using var model = new CudaModel(backend, RandomModel.Create(config, 6), new CudaModelOptions { Precision = CudaPrecision.F32 });
        Assert.That(model.Scores(0).Window, Is.Zero);
        using (var longest = new CudaModel(backend, RandomModel.Create(config with { SlidingWindow = KernelOps.MaxWindow }, 6), new CudaModelOptions()))
            Assert.That(longest.Scores(1).Window, Is.EqualTo(KernelOps.MaxWindow));
        using var probe = new CudaLadmProbe(model);
        var tokens = CudaSelfTest.RandomTokens(Schedule.T, config.VocabSize, 6);
        var gpu = probe.Measure(tokens, Schedule).Pfs.SelectMany(l => l.SelectMany(s => s)).ToArray();
        var cpu = new CpuLadmProbe(new CpuForward(RandomModel.Create(config, 6))).Measure(tokens, Schedule).Pfs.SelectMany(l => l.SelectMany(s => s)).ToArray();
        Assert.That(gpu, Is.EqualTo(cpu).Within(1e-3).Percent);
    }

    [Test]
    public void LengthDependentRope_UploadsTheTablesOfEachLength()
    {
        // Dynamic NTK past the original context: the frequencies follow the sequence length, as on the CPU.
        var config = Config("tiny dynamic-ntk");
        var weights = RandomModel.Create(config, 4);
        using var backend = new SimulatedBackend();
        using var model = new CudaModel(backend, weights, new CudaModelOptions { Precision = CudaPrecision.F32 });
        using var probe = new CudaLadmProbe(model);
        var cpu = new CpuLadmProbe(new CpuForward(weights));
        foreach (int T in new[] { 120, 90 })
        {
            var schedule = LadmSchedule.Create(T, chunk: 6, dAfs: 2, dCds: 2);
            var tokens = CudaSelfTest.RandomTokens(T, config.VocabSize, T);
            var g = probe.Measure(tokens, schedule).Pfs.SelectMany(l => l.SelectMany(s => s)).ToArray();
            var c = cpu.Measure(tokens, schedule).Pfs.SelectMany(l => l.SelectMany(s => s)).ToArray();
            Assert.That(g, Is.EqualTo(c).Within(1e-4).Percent, $"T {T}");
            var table = new double[config.HeadDim / 2];
            model.InvFreq!.CopyTo(table);
            Assert.That(table, Is.EqualTo(RopeFrequencies.For(config, 0, T).InverseFrequencies), $"layer 0's table at T {T}");
        }
    }

    [Test]
    public void LearnedPositions_PastTheTable_AreOneClearError()
    {
        var config = Config("opt-tiny") with { PositionRows = 2 + 100 };
        using var backend = new SimulatedBackend();
        using var model = new CudaModel(backend, RandomModel.Create(config, 5), new CudaModelOptions());
        using var ladm = new CudaLadmProbe(model);
        var e = Assert.Throws<ArgumentException>(() => ladm.Measure(new int[Schedule.T], Schedule));
        Assert.That(e!.Message, Does.Contain("120 positions exceed the model's 100 learned positions").And.Contain("--window"));
        using var prolong = new CudaProLongProbe(model);
        var chunks = Enumerable.Range(0, 3).Select(_ => new int[60]).ToList();
        var e2 = Assert.Throws<NotSupportedException>(() => prolong.Measure(chunks, [new ChunkPair(1, 0)]));
        Assert.That(e2!.Message, Does.Contain("pair of 120 tokens").And.Contain("--chunk 50"));
        Assert.That(backend.LiveAllocations, Is.GreaterThan(0), "the model stays usable");
        var fine = prolong.Measure(chunks.Select(c => c[..50]).ToList(), [new ChunkPair(1, 0)]);
        Assert.That(fine.PairPpl[0], Is.GreaterThan(1));
    }

    [TestCaseSource(nameof(FamilyCases))]
    public void ThePlan_IsWhatTheSimulatedRunAllocates(string name)
    {
        var config = Config(name);
        var weights = RandomModel.Create(config, 3);
        var schedule = LadmSchedule.Create(300, 16, 2, 4);
        using var backend = new SimulatedBackend();
        using (var model = new CudaModel(backend, weights, new CudaModelOptions()))
        using (var probe = new CudaLadmProbe(model))
        {
            backend.ResetPeakTracked();
            probe.Measure(CudaSelfTest.RandomTokens(300, config.VocabSize, 1), schedule);
        }
        Assert.That(DeviceMemoryPlan.Ladm(config, 300, chunk: 16, dAfs: 2, dCds: 4), Is.EqualTo(backend.PeakTrackedBytes));
        long placeholder = DeviceMemoryPlan.PlaceholderHostBytes(config);
        long oneLayer = weights.Tensors().Where(a => a.Name.StartsWith("layer 0 ", StringComparison.Ordinal)).Sum(a => 4L * a.Data.ElementCount);
        long rest = weights.Tensors().Where(a => !a.Name.StartsWith("layer ", StringComparison.Ordinal)).Sum(a => 4L * a.Data.ElementCount);
        Assert.That(placeholder, Is.EqualTo(oneLayer + rest), "the placeholder bytes are one layer's arrays and the rest");
    }
}
