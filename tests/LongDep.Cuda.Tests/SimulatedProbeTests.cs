using LongDep.Models.Synthetic;
using LongDep.Core.Probes;
using LongDep.Cuda.SelfTest;
using LongDep.Cuda.Twins;
using LongDep.Models;

namespace LongDep.Cuda.Tests;

/// <summary>
/// The CUDA forward and probes, run on the simulated backend (kernel twins on host memory, with pointer-range and launch
/// geometry checks), against the float64 reference model. This checks the orchestration — offsets, strides, GEMM
/// transposes, batching, prefix reuse, tiling and grouping — without a GPU.
/// </summary>
public class SimulatedProbeTests
{
    private static IEnumerable<TestCaseData> Models()
    {
        yield return new TestCaseData(RandomModel.TinyConfig()).SetName("tiny llama, adjacent-pair RoPE");
        yield return new TestCaseData(RandomModel.TinyConfig(RopeStyle.Halves, qkvBias: true, tied: true)).SetName("tiny qwen2, halves RoPE, bias, tied");
    }

    private static readonly LadmSchedule Schedule = LadmSchedule.Create(120, chunk: 6, dAfs: 2, dCds: 2);

    [TestCaseSource(nameof(Models))]
    public void Ladm_F32_MatchesReference(ModelConfig config)
    {
        var weights = RandomModel.Create(config, 11);
        var tokens = CudaSelfTest.RandomTokens(Schedule.T, config.VocabSize, 3);
        using var backend = new SimulatedBackend();
        LadmMeasurement gpu;
        // a column buffer of 2 spans forces several span groups
        using (var model = new CudaModel(backend, weights, new CudaModelOptions { Precision = CudaPrecision.F32, MlpTileRows = 50 }))
        using (var probe = new CudaLadmProbe(model, new CudaLadmOptions { ColumnBufferBytes = 2L * Schedule.T * 4 }))
            gpu = probe.Measure(tokens, Schedule);
        var expected = new ReferenceLadmProbe(weights).Measure(tokens, Schedule);

        Assert.That(Schedule.Spans, Has.Count.GreaterThan(2));
        for (int layer = 0; layer < config.Layers; layer++)
        {
            Assert.That(gpu.Pfs[layer], Has.Length.EqualTo(Schedule.Spans.Count));
            for (int s = 0; s < Schedule.Spans.Count; s++)
            {
                Assert.That(gpu.Pfs[layer][s], Has.Length.EqualTo(Schedule.Spans[s].Intervals.Length));
                for (int k = 0; k < gpu.Pfs[layer][s].Length; k++)
                {
                    double e = expected.Pfs[layer][s][k];
                    Assert.That(gpu.Pfs[layer][s][k], Is.EqualTo(e).Within(1e-5 * Math.Abs(e) + 1e-7), $"layer {layer} span {s} interval {k}");
                }
            }
        }
        Assert.That(backend.LiveAllocations, Is.Zero, "every device buffer is freed");
        Assert.That(backend.Launches.ContainsKey(KernelNames.AttentionF32.Name), Is.True);
        // the last layer needs only q and k: attention runs for the other layers only
        Assert.That(backend.Launches[KernelNames.AttentionF32.Name], Is.EqualTo(config.Layers - 1));
    }

    [TestCaseSource(nameof(Models))]
    public void ProLong_F32_MatchesReference_WithPrefixReuseAndBatching(ModelConfig config)
    {
        var weights = RandomModel.Create(config, 12);
        var (chunks, pairs) = CudaSelfTest.ProLongInputs(config.VocabSize, chunkCount: 6, chunkLength: 7, pairCount: 11, seed: 5);
        using var backend = new SimulatedBackend();
        ProLongMeasurement gpu;
        var options = new CudaModelOptions { Precision = CudaPrecision.F32, MlpTileRows = 16, LogitsTileBytes = 10L * config.VocabSize * 4 };
        ProLongMeasurement again;
        var fewer = new List<int[]> { chunks[0], chunks[1], chunks[2] };
        using (var model = new CudaModel(backend, weights, options))
        using (var probe = new CudaProLongProbe(model, new CudaProLongOptions { PairBatch = 4 }))
        {
            gpu = probe.Measure(chunks, pairs);
            again = probe.Measure(fewer, [new ChunkPair(2, 0)]); // reuses the larger buffers
        }
        var expected = new ReferenceProLongProbe(weights).Measure(chunks, pairs);
        var expectedAgain = new ReferenceProLongProbe(weights).Measure(fewer, [new ChunkPair(2, 0)]);
        Assert.That(again.SinglePpl, Is.EqualTo(expectedAgain.SinglePpl).Within(1e-3).Percent);
        Assert.That(again.PairPpl, Is.EqualTo(expectedAgain.PairPpl).Within(1e-3).Percent);
        Assert.Multiple(() =>
        {
            Assert.That(gpu.Pairs, Is.EqualTo(pairs));
            for (int i = 0; i < chunks.Count; i++)
                Assert.That(gpu.SinglePpl[i], Is.EqualTo(expected.SinglePpl[i]).Within(1e-3).Percent, $"single {i}");
            for (int p = 0; p < pairs.Count; p++)
                Assert.That(gpu.PairPpl[p], Is.EqualTo(expected.PairPpl[p]).Within(1e-3).Percent, $"pair {pairs[p]}");
        });
        // the prefix changes the result: a pair's perplexity is not its single's
        Assert.That(gpu.PairPpl[0], Is.Not.EqualTo(gpu.SinglePpl[pairs[0].I]).Within(1e-6).Percent);
        Assert.That(backend.LiveAllocations, Is.Zero);
    }

    [TestCase(CudaPrecision.F16, 0.2)]
    [TestCase(CudaPrecision.BF16, 2.0)]
    public void ReducedPrecision_StaysCloseToReference(CudaPrecision precision, double percent)
    {
        var config = RandomModel.TinyConfig();
        var weights = RandomModel.Create(config, 13);
        var tokens = CudaSelfTest.RandomTokens(Schedule.T, config.VocabSize, 4);
        var (chunks, pairs) = CudaSelfTest.ProLongInputs(config.VocabSize, chunkCount: 4, chunkLength: 8, pairCount: 4, seed: 6);
        using var backend = new SimulatedBackend();
        using var model = new CudaModel(backend, weights, new CudaModelOptions { Precision = precision });
        Assert.That(model.WeightBytes, Is.LessThan(config.ParameterCount * 3), "weights stored in 2 bytes (norms in 4)");
        using var ladm = new CudaLadmProbe(model);
        using var prolong = new CudaProLongProbe(model);
        var gpuPfs = ladm.Measure(tokens, Schedule).Pfs.SelectMany(l => l.SelectMany(s => s)).ToArray();
        var refPfs = new ReferenceLadmProbe(weights).Measure(tokens, Schedule).Pfs.SelectMany(l => l.SelectMany(s => s)).ToArray();
        double scale = refPfs.Max();
        for (int i = 0; i < gpuPfs.Length; i++)
            Assert.That(gpuPfs[i], Is.EqualTo(refPfs[i]).Within(percent / 100 * scale), $"PFS {i}");
        var gpu = prolong.Measure(chunks, pairs);
        var expected = new ReferenceProLongProbe(weights).Measure(chunks, pairs);
        for (int i = 0; i < chunks.Count; i++)
            Assert.That(gpu.SinglePpl[i], Is.EqualTo(expected.SinglePpl[i]).Within(percent).Percent);
        for (int p = 0; p < pairs.Count; p++)
            Assert.That(gpu.PairPpl[p], Is.EqualTo(expected.PairPpl[p]).Within(percent).Percent);
    }

    [Test]
    public void Ladm_ReusesItsWorkspace_AndGivesTheSameAnswerTwice()
    {
        var config = RandomModel.TinyConfig();
        var weights = RandomModel.Create(config, 14);
        var tokens = CudaSelfTest.RandomTokens(Schedule.T, config.VocabSize, 5);
        using var backend = new SimulatedBackend();
        using var model = new CudaModel(backend, weights, new CudaModelOptions { Precision = CudaPrecision.F32 });
        using var probe = new CudaLadmProbe(model);
        var first = probe.Measure(tokens, Schedule).Pfs.SelectMany(l => l.SelectMany(s => s)).ToArray();
        var shorter = LadmSchedule.Create(100, chunk: 6, dAfs: 2, dCds: 2);
        var other = probe.Measure(tokens.AsSpan(0, 100), shorter);
        var second = probe.Measure(tokens, Schedule).Pfs.SelectMany(l => l.SelectMany(s => s)).ToArray();
        Assert.That(second, Is.EqualTo(first));
        Assert.That(other.Schedule, Is.SameAs(shorter));
    }

    [Test]
    public void Ladm_ScheduleWithoutSpans_ReturnsEmptyLayers_WithoutGpuWork()
    {
        var config = RandomModel.TinyConfig();
        using var backend = new SimulatedBackend();
        using var model = new CudaModel(backend, RandomModel.Create(config, 15), new CudaModelOptions());
        using var probe = new CudaLadmProbe(model);
        var schedule = LadmSchedule.Create(20, chunk: 6, dAfs: 2, dCds: 2);
        Assert.That(schedule.Spans, Is.Empty);
        int before = backend.Launches.Values.Sum();
        var m = probe.Measure(new int[20], schedule);
        Assert.That(m.Pfs, Has.Length.EqualTo(config.Layers));
        Assert.That(m.Pfs.All(l => l.Length == 0), Is.True);
        Assert.That(backend.Launches.Values.Sum(), Is.EqualTo(before));
    }

    [Test]
    public void BadInputs_AreClearErrors()
    {
        var config = RandomModel.TinyConfig();
        using var backend = new SimulatedBackend();
        using var model = new CudaModel(backend, RandomModel.Create(config, 16), new CudaModelOptions());
        using var ladm = new CudaLadmProbe(model);
        using var prolong = new CudaProLongProbe(model);
        var tokens = new int[Schedule.T];
        tokens[17] = config.VocabSize;
        var e = Assert.Throws<ArgumentException>(() => ladm.Measure(tokens, Schedule));
        Assert.That(e!.Message, Does.Contain("position 17").And.Contain($"0..{config.VocabSize - 1}"));
        Assert.Throws<ArgumentException>(() => ladm.Measure(new int[Schedule.T - 1], Schedule));
        var ok = new[] { new int[5], new int[5] };
        Assert.That(Assert.Throws<ArgumentException>(() => prolong.Measure([new int[5], new int[4]], []))!.Message, Does.Contain("chunk 1"));
        Assert.That(Assert.Throws<ArgumentException>(() => prolong.Measure(ok, [new ChunkPair(0, 1)]))!.Message, Does.Contain("0 <= j < i"));
        Assert.Throws<ArgumentException>(() => prolong.Measure([new int[1]], []));
        var empty = prolong.Measure([], []);
        Assert.That(empty.SinglePpl, Is.Empty);
    }

    [Test]
    public void OutOfMemory_NamesTheSettingToLower()
    {
        var config = RandomModel.TinyConfig();
        var weights = RandomModel.Create(config, 17);
        long weightsBytes, uploadPeak;
        using (var probeBackend = new SimulatedBackend())
        using (var m = new CudaModel(probeBackend, weights, new CudaModelOptions()))
            (weightsBytes, uploadPeak) = (probeBackend.AllocatedBytes, probeBackend.PeakBytes);
        using var backend = new SimulatedBackend(capacityBytes: uploadPeak + 20_000);
        using var model = new CudaModel(backend, weights, new CudaModelOptions());
        using var ladm = new CudaLadmProbe(model);
        var e = Assert.Throws<CudaOutOfMemoryException>(() => ladm.Measure(new int[Schedule.T], Schedule));
        Assert.That(e!.Message, Does.Contain("--window").And.Contain("LADM"));
        using var prolong = new CudaProLongProbe(model, new CudaProLongOptions { PairBatch = 64 });
        var chunks = Enumerable.Range(0, 2).Select(_ => new int[16]).ToList();
        var pairs = new List<ChunkPair> { new(1, 0) };
        var e2 = Assert.Throws<CudaOutOfMemoryException>(() => prolong.Measure(chunks, pairs));
        Assert.That(e2!.Message, Does.Contain("Lower --window").And.Contain("ProLong"));
        Assert.That(backend.AllocatedBytes, Is.EqualTo(weightsBytes), "a failed measurement frees what it had allocated");
    }

    [Test]
    public void SpanPlan_GroupsSpansAndIndexesItemsWithinTheirGroup()
    {
        var schedule = LadmSchedule.Create(200, chunk: 8, dAfs: 2, dCds: 3);
        var plan = CudaLadmProbe.SpanPlan.Build(schedule.Spans, schedule.T, columnBufferBytes: 2L * 200 * 4);
        Assert.That(plan.GroupSize, Is.EqualTo(2));
        Assert.That(plan.Groups.Sum(g => g.SpanCount), Is.EqualTo(schedule.Spans.Count));
        Assert.That(plan.Items, Is.EqualTo(schedule.Spans.Sum(s => s.Intervals.Length)));
        int item = 0;
        foreach (var g in plan.Groups)
        {
            Assert.That(g.FirstItem, Is.EqualTo(item));
            for (int s = g.FirstSpan; s < g.FirstSpan + g.SpanCount; s++)
            {
                var span = schedule.Spans[s];
                Assert.That(g.MaxStart, Is.GreaterThanOrEqualTo(span.Start));
                foreach (int iv in span.Intervals)
                {
                    Assert.That(plan.ItemSpanInGroup[item], Is.EqualTo(s - g.FirstSpan));
                    Assert.That(plan.ItemLo[item], Is.EqualTo(span.Start - iv));
                    Assert.That(plan.ItemHi[item], Is.EqualTo(span.End - iv));
                    item++;
                }
            }
        }
        Assert.Throws<ArgumentException>(() => CudaLadmProbe.SpanPlan.Build([new LadmSpan(10, 5, [])], 20, 1000));
        Assert.Throws<ArgumentException>(() => CudaLadmProbe.SpanPlan.Build([new LadmSpan(10, 12, [11])], 20, 1000));
    }

    private static ModelConfig HeadDimConfig(int headDim) =>
        RandomModel.TinyConfig() with { Dim = 2 * headDim, FfDim = 96, Heads = 2, KvHeads = 1, HeadDim = headDim };

    // LADM has no prefix keys: it packs k, v as f16 (kv_pack_f16) once per layer and runs the cp.async kernels; at head
    // dimension 64 those (attention, PFS pass 1 from the packed keys) and pass 2 are the wide kernels (32 rows or key
    // columns per warp).
    private static readonly string[] TensorCoreKernelNames =
    [
        KernelNames.KvPackF16.Name, KernelNames.AttentionMma64Kv16WideF32.Name, KernelNames.PfsRowStatsMma64Kv16Wide.Name,
        KernelNames.PfsColumnMassMma64Wide.Name,
    ];

    [TestCase(AttentionKernels.TensorCores, 2e-3)]
    [TestCase(AttentionKernels.Simple, 1e-5)]
    public void Ladm_HeadDim64_RunsTheChosenKernelSet_AndMatchesReference(AttentionKernels kernels, double tolerance)
    {
        var config = HeadDimConfig(64);
        var weights = RandomModel.Create(config, 21);
        var tokens = CudaSelfTest.RandomTokens(Schedule.T, config.VocabSize, 4);
        using var backend = new SimulatedBackend();
        LadmMeasurement gpu;
        using (var model = new CudaModel(backend, weights, new CudaModelOptions { Precision = CudaPrecision.F32, Kernels = kernels }))
        using (var probe = new CudaLadmProbe(model))
            gpu = probe.Measure(tokens, Schedule);
        var expected = new ReferenceLadmProbe(weights).Measure(tokens, Schedule);

        double worst = 0;
        for (int layer = 0; layer < config.Layers; layer++)
            for (int s = 0; s < Schedule.Spans.Count; s++)
                for (int k = 0; k < gpu.Pfs[layer][s].Length; k++)
                {
                    double e = expected.Pfs[layer][s][k];
                    worst = Math.Max(worst, Math.Abs(gpu.Pfs[layer][s][k] - e) / (Math.Abs(e) + 1e-6));
                }
        Assert.That(worst, Is.LessThan(tolerance));
        bool tensor = kernels == AttentionKernels.TensorCores;
        Assert.Multiple(() =>
        {
            foreach (var name in TensorCoreKernelNames)
                Assert.That(backend.Launches.ContainsKey(name), Is.EqualTo(tensor), name);
            Assert.That(backend.Launches.ContainsKey(KernelNames.AttentionF32.Name), Is.EqualTo(!tensor));
            Assert.That(backend.Launches.ContainsKey(KernelNames.AttentionMma64F32.Name), Is.False, "the unpacked kernel is for prefix keys");
            Assert.That(backend.Launches.ContainsKey(KernelNames.AttentionMma64Kv16F32.Name), Is.False, "the 16-row kernel is off by default");
            Assert.That(backend.Launches.ContainsKey(KernelNames.PfsRowStatsMma64.Name), Is.False, "the 16-row pass 1 is off by default");
            Assert.That(backend.Launches.ContainsKey(KernelNames.PfsColumnMassMma64.Name), Is.False, "the 16-column pass 2 is off by default");
            Assert.That(backend.Launches.ContainsKey(KernelNames.PfsColumnMass.Name), Is.EqualTo(!tensor));
            Assert.That(backend.Launches.ContainsKey(KernelNames.PfsRowStatsMma64Wide.Name), Is.False, "pass 1 reads the packed keys");
            // Packed once per layer, before PFS (the last layer too: pass 1 reads its keys); the attention does not pack again.
            if (tensor) Assert.That(backend.Launches[KernelNames.KvPackF16.Name], Is.EqualTo(config.Layers));
        });
        if (tensor)
            Assert.That(worst, Is.GreaterThan(1e-7), "the tensor-core twins see f16-rounded inputs, so the result differs from float64");
    }

    [Test]
    public void Ladm_WithEightWideWarps_RunsThe8WarpKernels_AndGivesTheSameMeasurement()
    {
        var config = HeadDimConfig(64); // 2 heads, 1 KV head: a GQA group of 2, so pass 1 takes both heads in one block
        var weights = RandomModel.Create(config, 21);
        var tokens = CudaSelfTest.RandomTokens(Schedule.T, config.VocabSize, 4);
        LadmMeasurement Measure(string? warps, out IReadOnlyDictionary<string, int> launches)
        {
            using var scope = EnvironmentScope.WideForms(null, warps);
            using var backend = new SimulatedBackend();
            using var model = new CudaModel(backend, weights, new CudaModelOptions { Precision = CudaPrecision.F32 });
            using var probe = new CudaLadmProbe(model);
            var result = probe.Measure(tokens, Schedule);
            launches = backend.Launches.ToDictionary();
            return result;
        }
        var four = Measure(null, out var fourLaunches);
        var eight = Measure("8", out var eightLaunches);
        Assert.That(fourLaunches.Keys, Does.Contain(KernelNames.AttentionMma64Kv16WideF32.Name).And.Contain(KernelNames.PfsRowStatsMma64Kv16Wide.Name)
            .And.Not.Contain(KernelNames.AttentionMma64Kv16Wide8F32.Name).And.Not.Contain(KernelNames.PfsRowStatsMma64Kv16Wide8.Name));
        Assert.That(eightLaunches.Keys, Does.Contain(KernelNames.AttentionMma64Kv16Wide8F32.Name).And.Contain(KernelNames.PfsRowStatsMma64Kv16Wide8.Name)
            .And.Not.Contain(KernelNames.AttentionMma64Kv16WideF32.Name).And.Not.Contain(KernelNames.PfsRowStatsMma64Kv16Wide.Name));
        for (int layer = 0; layer < config.Layers; layer++)
            for (int s = 0; s < Schedule.Spans.Count; s++)
                Assert.That(eight.Pfs[layer][s], Is.EqualTo(four.Pfs[layer][s]));
    }

    [Test]
    public void ProLong_HeadDim128_OnTensorCores_MatchesReferenceWithinF16()
    {
        var config = HeadDimConfig(128);
        var weights = RandomModel.Create(config, 22);
        var (chunks, pairs) = CudaSelfTest.ProLongInputs(config.VocabSize, chunkCount: 5, chunkLength: 9, pairCount: 8, seed: 6);
        using var backend = new SimulatedBackend();
        ProLongMeasurement gpu;
        using (var model = new CudaModel(backend, weights, new CudaModelOptions { Precision = CudaPrecision.F32 }))
        using (var probe = new CudaProLongProbe(model, new CudaProLongOptions { PairBatch = 3 }))
            gpu = probe.Measure(chunks, pairs);
        var expected = new ReferenceProLongProbe(weights).Measure(chunks, pairs);
        Assert.That(gpu.SinglePpl, Is.EqualTo(expected.SinglePpl).Within(0.2).Percent);
        Assert.That(gpu.PairPpl, Is.EqualTo(expected.PairPpl).Within(0.2).Percent);
        Assert.That(backend.Launches.ContainsKey(KernelNames.AttentionMma128F32.Name), Is.True);
        Assert.That(backend.Launches.ContainsKey(KernelNames.AttentionF32.Name), Is.False);
    }

    [Test]
    public void HeadDimWithoutTensorCoreKernels_FallsBackToTheScalarKernels()
    {
        var config = HeadDimConfig(80);
        var weights = RandomModel.Create(config, 23);
        var tokens = CudaSelfTest.RandomTokens(Schedule.T, config.VocabSize, 5);
        using var backend = new SimulatedBackend();
        using (var model = new CudaModel(backend, weights, new CudaModelOptions { Precision = CudaPrecision.F32 }))
        using (var probe = new CudaLadmProbe(model))
            probe.Measure(tokens, Schedule);
        Assert.That(backend.Launches.Keys.Where(k => k.Contains("mma", StringComparison.Ordinal)), Is.Empty);
        Assert.That(backend.Launches.ContainsKey(KernelNames.AttentionF32.Name), Is.True);
    }

    [TestCase("tensor", AttentionKernels.TensorCores)]
    [TestCase(" Simple ", AttentionKernels.Simple)]
    public void KernelSetNames_Parse(string text, AttentionKernels expected)
    {
        Assert.That(AttentionKernelNames.Parse(text, "test"), Is.EqualTo(expected));
        Assert.That(AttentionKernelNames.Parse(expected.Name(), "test"), Is.EqualTo(expected));
    }

    [Test]
    public void WideAttentionSwitch_RejectsOtherValues_NamingTheVariable()
    {
        string? before = Environment.GetEnvironmentVariable(AttentionKernelNames.WideEnvironmentVariable);
        try
        {
            Environment.SetEnvironmentVariable(AttentionKernelNames.WideEnvironmentVariable, "yes");
            var e = Assert.Throws<ArgumentException>(() => AttentionKernelNames.WideFromEnvironment());
            Assert.That(e!.Message, Does.Contain("LONGDEP_WIDE_ATTENTION").And.Contain("'yes'").And.Contain("0 or 1"));
        }
        finally
        {
            Environment.SetEnvironmentVariable(AttentionKernelNames.WideEnvironmentVariable, before);
        }
    }

    [TestCase(null, null, "attention_mma64_kv16_wide_f16", 128, 2, "tensor kernels")]
    [TestCase("1", null, "attention_mma64_kv16_wide_f16", 128, 2, "tensor kernels")]
    [TestCase(" 0 ", null, "attention_mma64_kv16_f16", 128, 4, "tensor kernels (16-row)")]
    [TestCase(null, " 8 ", "attention_mma64_kv16_wide8_f16", 256, 1, "tensor kernels (8-warp wide)")]
    [TestCase("0", "8", "attention_mma64_kv16_f16", 128, 4, "tensor kernels (16-row)")]
    public void WideWarps_ComeFromTheEnvironment_WithTheirGeometry(string? wide, string? warps, string expectedKernel, int threads,
        int blocks, string description)
    {
        // The wide kernels are the default; the attention launch's kernel, block and grid (grid.x = ceil(T / rows per block))
        // follow the two variables.
        using var scope = EnvironmentScope.WideForms(wide, warps);
        var launches = new List<(string Name, Dim3 Grid, Dim3 Block)>();
        using var backend = new SimulatedBackend();
        backend.LaunchObserver = (kernel, grid, block) => launches.Add((kernel.Name, grid, block));
        var ops = new KernelOps(backend, AttentionKernels.TensorCores);
        int T = 200, H = 2, Hkv = 1, d = 64;
        using var q = backend.Allocate<float>(T * H * d, "q", "test");
        using var kv = backend.Allocate<float>(T * Hkv * d, "kv", "test");
        using var output = backend.Allocate<byte>(T * H * d * 2, "out", "test");
        using var kvHalf = backend.Allocate<byte>(KernelOps.KvHalfBytes(1, T, Hkv, d), "packed", "test");
        q.CopyFrom(new float[T * H * d]);
        kv.CopyFrom(new float[T * Hkv * d]);
        ops.Attention(q.Pointer, kv.Pointer, kv.Pointer, DevicePtr.Null, DevicePtr.Null, DevicePtr.Null, output.Pointer, CudaPrecision.F16,
            1, T, 0, H, Hkv, d, kvHalf);
        var attention = launches.Single(l => l.Name.StartsWith("attention_", StringComparison.Ordinal));
        Assert.That(attention.Name, Is.EqualTo(expectedKernel));
        Assert.That(attention.Block.X, Is.EqualTo((uint)threads));
        Assert.That(attention.Grid.X, Is.EqualTo((uint)blocks)); // 200 rows: 2 blocks of 128, 1 of 256, 4 of 64
        Assert.That(AttentionKernels.TensorCores.Describe(), Is.EqualTo(description));
    }

    [TestCase(null, null, new[] { 4, 8 }, null)]
    [TestCase("1", " 8", new[] { 8 }, "checked with 8 warps a block only")]
    [TestCase(null, "4", new[] { 4 }, "checked with 4 warps a block only")]
    [TestCase("0", "8", new int[0], "neither used nor checked")]
    public void SelfTest_ChecksTheWideFormsTheEnvironmentLeavesInUse(string? wide, string? warps, int[] expected, string? note)
    {
        // bench/gpu-session.sh pins a faulty form away (LONGDEP_WIDE_WARPS=4, then LONGDEP_WIDE_ATTENTION=0) and reruns the
        // self-test: that run must neither use nor check the pinned-away forms.
        using var scope = EnvironmentScope.WideForms(wide, warps);
        Assert.That(KernelChecks.WideFormsToCheck(), Is.EqualTo(expected));
        string? text = KernelChecks.WideFormsNote();
        Assert.That(text, note is null ? Is.Null : Does.Contain(note));
        using var backend = new SimulatedBackend();
        var names = new KernelChecks(backend).TensorCoreChecks().Select(r => r.Name).ToList();
        Assert.That(names.Any(n => n.Contains("wide8", StringComparison.Ordinal)), Is.EqualTo(expected.Contains(8)));
        // the 4-warp forms: attention_mma64_kv16_wide_* and pfs_row_stats_mma64_kv16_wide
        Assert.That(names.Any(n => n.Contains("kv16_wide ", StringComparison.Ordinal) || n.Contains("kv16_wide_", StringComparison.Ordinal)),
            Is.EqualTo(expected.Contains(4)));
        Assert.That(names.Any(n => n.Contains(" vs ", StringComparison.Ordinal)), Is.EqualTo(expected.Length > 0));
    }

    [TestCase("6")]
    [TestCase("eight")]
    public void WideWarps_RejectOtherValues_NamingTheVariable(string value)
    {
        using (EnvironmentScope.WideForms(null, value))
        {
            var e = Assert.Throws<ArgumentException>(() => AttentionKernelNames.WarpsFromEnvironment());
            Assert.That(e!.Message, Does.Contain("LONGDEP_WIDE_WARPS").And.Contain($"'{value}'").And.Contain("4 or 8"));
        }
        using var backend = new SimulatedBackend();
        Assert.Throws<ArgumentOutOfRangeException>(() => _ = new KernelOps(backend, AttentionKernels.TensorCores) { WideWarps = 6 });
    }

    [Test]
    public void KernelSetNames_RejectOthers_NamingTheSource()
    {
        var e = Assert.Throws<ArgumentException>(() => AttentionKernelNames.Parse("wgmma", "LONGDEP_KERNEL_SET"));
        Assert.That(e!.Message, Does.Contain("LONGDEP_KERNEL_SET").And.Contain("tensor or simple"));
    }
}
