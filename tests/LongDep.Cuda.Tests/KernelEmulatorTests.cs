using LongDep.Models.Synthetic;
using LongDep.Core.Probes;
using LongDep.Models;
using LongDep.Cuda.SelfTest;
using LongDep.Cuda.Twins;

namespace LongDep.Cuda.Tests;

/// <summary>
/// The kernels' CUDA source, run on the CPU emulator (native/emu), against the C# twins: the same comparisons the GPU
/// self-test makes, so indexing, tiling, shared-memory staging and the mma fragment layout are checked without a GPU.
/// </summary>
[NonParallelizable]
public class KernelEmulatorTests
{
    internal static KernelEmulator Emulator()
    {
        var emulator = KernelEmulator.TryLoad(out var why);
        if (emulator is not null) return emulator;
        Prerequisites.Missing(why);
        return null!;
    }

    private static void AllPass(IEnumerable<CheckResult> checks)
    {
        var results = checks.ToList();
        Assert.That(results, Is.Not.Empty);
        foreach (var r in results) TestContext.Out.WriteLine(r.Row);
        Assert.Multiple(() =>
        {
            foreach (var r in results) Assert.That(r.Passed, Is.True, r.Row);
        });
    }

    [Test]
    public void Emulator_HoldsEveryKernelTheHostLaunches()
    {
        var emulator = Emulator();
        var kernels = emulator.Names.Where(n => !n.StartsWith("emu_test_", StringComparison.Ordinal));
        Assert.That(kernels, Is.EquivalentTo(KernelNames.All.Select(k => k.Name)));
    }

    [Test]
    public void Emulator_RoundsLikeTheHost()
    {
        var emulator = Emulator();
        var random = new Random(5);
        var values = new List<float>
        {
            0f, -0f, 1f, -1f, 65504f, 65519.99f, 65520f, -65520f, 1e-8f, 5.960464e-8f, 2.980232e-8f, 2.9802326e-8f,
            6.1035156e-5f, 6.103515e-5f, 3.3895314e38f, float.PositiveInfinity, float.NegativeInfinity, float.Epsilon,
            1.0009766f, 1.0004883f, 1.0014648f, // f16 ties around 1 (half an ulp = 2^-11)
            1.00390625f, 1.01171875f,            // bf16 ties around 1 (half an ulp = 2^-8)
        };
        for (int i = 0; i < 20000; i++)
        {
            int bits = random.Next(int.MinValue, int.MaxValue);
            float f = BitConverter.Int32BitsToSingle(bits);
            if (float.IsFinite(f)) values.Add(f);
            values.Add((float)((random.NextDouble() * 2 - 1) * Math.Pow(2, random.Next(-30, 20))));
        }
        foreach (var type in new[] { CudaPrecision.F16, CudaPrecision.BF16 })
        {
            var rounded = emulator.Round(values.ToArray(), type);
            for (int i = 0; i < values.Count; i++)
            {
                float expected = ElementTypes.Round(values[i], type);
                Assert.That(BitConverter.SingleToInt32Bits(rounded[i]), Is.EqualTo(BitConverter.SingleToInt32Bits(expected)),
                    $"{type} rounding of {values[i]:R} (0x{BitConverter.SingleToInt32Bits(values[i]):x8}): emulator {rounded[i]:R}, host {expected:R}");
            }
        }
        Assert.That(float.IsNaN(emulator.Round([float.NaN], CudaPrecision.F16)[0]) && float.IsNaN(emulator.Round([float.NaN], CudaPrecision.BF16)[0]));
    }

    [Test]
    public void ScalarKernels_MatchTheirTwins()
    {
        using var backend = new SimulatedBackend(emulator: Emulator());
        AllPass(new KernelChecks(backend).All());
        Assert.That(backend.Launches.Keys, Does.Contain("attention_fwd_f16").And.Contain("pfs_column_mass").And.Contain("loss_segment_sum"));
        // every family's operations, each from its source
        Assert.That(backend.Launches.Keys, Is.SupersetOf(new[]
        {
            "layernorm_f32", "layernorm_f16", "layernorm_bf16", "rmsnorm_add_f32", "qk_rmsnorm", "embed_add_positions",
            "geglu_tanh_f32", "geglu_tanh_f16", "geglu_tanh_bf16", "bias_relu_f32", "bias_relu_f16", "bias_relu_bf16",
        }));
    }

    [Test]
    public void TensorCoreKernels_MatchTheirTwins()
    {
        using var backend = new SimulatedBackend(emulator: Emulator());
        AllPass(new KernelChecks(backend).TensorCoreChecks());
        Assert.That(backend.Launches.Keys, Is.SupersetOf(new[]
        {
            "attention_mma64_f32", "attention_mma64_bf16", "attention_mma128_f16", "attention_mma128_f32",
            "pfs_row_stats_mma64", "pfs_column_mass_mma64", "pfs_row_stats_mma128", "pfs_column_mass_mma128",
            "attention_mma64_kv16_f32", "attention_mma64_kv16_wide_f32", "attention_mma64_kv16_wide_bf16",
            "pfs_row_stats_mma64_wide", "pfs_column_mass_mma64_wide", "attention_mma64_kv16_wide8_f32",
            "pfs_row_stats_mma64_kv16_wide", "pfs_row_stats_mma64_kv16_wide8",
        }));
    }

    [TestCase(4, 2, "pfs_row_stats_mma64_kv16_wide8")] // GQA group of 2: the 8-warp packed pass 1 takes both heads a block
    [TestCase(3, 1, "pfs_row_stats_mma64_kv16_wide")]  // group of 3: with 8 warps asked, pass 1 falls back to one head a block
    public void WidePfsPasses_EqualThe16RowKernels_BitForBit(int heads, int kvHeads, string packed8Kernel)
    {
        // Spans of 128 rows (one wide block), 136 (a second block with one active warp), 3 rows, and starts inside a
        // 64-key tile and past 256 keys (pass 2: two wide blocks, warps past the start idle): per row and per key the
        // same products and sums in the same order, so equal statistics and columns; pass 1 from the packed f16 keys too.
        using var backend = new SimulatedBackend(emulator: Emulator());
        var results = new KernelChecks(backend, seed: 9)
            .WidePfsMatchesNarrow(T: 600, heads: heads, kvHeads: kvHeads, spans: [(400, 528), (64, 200), (37, 40), (300, 428)]).ToList();
        Assert.That(results, Has.Count.EqualTo(9));
        foreach (var r in results)
        {
            Assert.That(r.Passed, Is.True, r.ToString());
            Assert.That(r.MaxAbs, Is.Zero, r.ToString());
        }
        Assert.That(results.Count(r => r.Name.StartsWith(packed8Kernel + " ", StringComparison.Ordinal)), Is.EqualTo(packed8Kernel.EndsWith("8") ? 2 : 4));
        Assert.That(backend.Launches.Keys, Does.Contain("pfs_row_stats_mma64_wide").And.Contain("pfs_row_stats_mma64")
            .And.Contain("pfs_column_mass_mma64_wide").And.Contain("pfs_column_mass_mma64").And.Contain("kv_pack_f16")
            .And.Contain("pfs_row_stats_mma64_kv16_wide").And.Contain(packed8Kernel));
    }

    [TestCase(CudaPrecision.F32, 1, 300, 4, 1, 4)]  // two full 128-row blocks and a partial one; GQA group of 4
    [TestCase(CudaPrecision.F16, 2, 129, 2, 2, 4)]  // one row past a block; two sequences
    [TestCase(CudaPrecision.BF16, 1, 64, 2, 1, 4)]  // a single half-filled block: warps 2 and 3 hold no row
    [TestCase(CudaPrecision.F32, 1, 300, 4, 1, 8)]  // 8 warps: one full 256-row block and a partial one
    [TestCase(CudaPrecision.F16, 2, 520, 2, 2, 8)]  // 8 warps: two full blocks and 8 rows past them; two sequences
    [TestCase(CudaPrecision.BF16, 1, 64, 2, 1, 8)]  // 8 warps: a single block where warps 2 to 7 hold no row
    public void WideAttention_EqualsThe16RowKernel_BitForBit(CudaPrecision output, int nSeq, int seqLen, int heads, int kvHeads, int warps)
    {
        // The wide kernel (32 rows per warp, ldmatrix, mask on the diagonal tile only, tiles past a warp skipped; 4 or 8
        // warps a block) runs per row the same products in the same order as the 16-row kernel: on the emulator the
        // outputs are equal.
        using var backend = new SimulatedBackend(emulator: Emulator());
        var result = new KernelChecks(backend, seed: seqLen).WideMatchesNarrow(output, nSeq, seqLen, heads, kvHeads, warps);
        Assert.That(result.Passed, Is.True, result.ToString());
        Assert.That(result.MaxAbs, Is.Zero, result.ToString());
        Assert.That(result.Count, Is.EqualTo((long)nSeq * seqLen * heads * 64));
        Assert.That(backend.Launches.Keys, Does.Contain(KernelNames.AttentionMmaKv16Wide(output, 64, warps).Name)
            .And.Contain(KernelNames.AttentionMmaKv16(output, 64).Name));
    }

    [Test]
    public void LadmProbe_GivesTheSameMeasurement_WithEveryFormOfTheWideKernels()
    {
        // The whole LADM measurement with the kernels' own source: wide kernels with 4 warps (the default), with 8 (attention
        // in 256-row blocks, PFS pass 1 two heads a block) and the 16-row kernels (pass 1 from float32 keys). Per row and
        // key every form runs the same products and sums in the same order: equal PFS values.
        var config = RandomModel.TinyConfig() with { Dim = 256, FfDim = 96, Heads = 4, KvHeads = 2, HeadDim = 64 };
        var weights = RandomModel.Create(config, 31);
        var schedule = LadmSchedule.Create(600, chunk: 32, dAfs: 2, dCds: 2);
        Assert.That(schedule.Spans, Has.Count.GreaterThan(2));
        var tokens = CudaSelfTest.RandomTokens(600, config.VocabSize, 6);
        (LadmMeasurement Result, string[] Kernels) Measure(string? wide, string? warps)
        {
            using var scope = EnvironmentScope.WideForms(wide, warps);
            using var backend = new SimulatedBackend(emulator: Emulator());
            using var model = new CudaModel(backend, weights, new CudaModelOptions { Precision = CudaPrecision.F16 });
            using var probe = new CudaLadmProbe(model);
            return (probe.Measure(tokens, schedule), backend.Launches.Keys.ToArray());
        }
        var four = Measure(null, null);
        var eight = Measure(null, "8");
        var narrow = Measure("0", null);
        Assert.That(four.Kernels, Does.Contain("attention_mma64_kv16_wide_f16").And.Contain("pfs_row_stats_mma64_kv16_wide"));
        Assert.That(eight.Kernels, Does.Contain("attention_mma64_kv16_wide8_f16").And.Contain("pfs_row_stats_mma64_kv16_wide8"));
        Assert.That(narrow.Kernels, Does.Contain("attention_mma64_kv16_f16").And.Contain("pfs_row_stats_mma64")
            .And.Not.Contain("pfs_row_stats_mma64_kv16_wide"));
        int values = 0;
        for (int layer = 0; layer < config.Layers; layer++)
            for (int s = 0; s < schedule.Spans.Count; s++)
            {
                Assert.That(eight.Result.Pfs[layer][s], Is.EqualTo(four.Result.Pfs[layer][s]), $"8 warps, layer {layer} span {s}");
                Assert.That(narrow.Result.Pfs[layer][s], Is.EqualTo(four.Result.Pfs[layer][s]), $"16-row, layer {layer} span {s}");
                values += four.Result.Pfs[layer][s].Count(v => v != 0 && double.IsFinite(v));
            }
        Assert.That(values, Is.GreaterThan(10), "the measurement has non-zero PFS values to compare");
    }

    [TestCase(null, 4, 0)]   // wide pass 2 (256-key blocks, 32 keys a warp), 128-key windows every 512 keys
    [TestCase("0", 2, 0)]    // 16-row kernels (128-key blocks), windows every 256 keys
    [TestCase(null, 4, 300)] // a sliding window of 300 keys on layer 0: its list drops the tiles no row of a span sees
    public void LadmProbe_WithTheKeyTileList_GivesTheMeasurementOfEveryKeyColumn(string? wide, int dAfs, int window)
    {
        // Pass 2 computes only the listed 16-key tiles the PFS windows read; the windows' sums must be those of the pass over
        // every column, bit for bit (each column is the same sum in the same order; a column no row sees is 0 either way).
        // T = 1000 is not a multiple of 16, so windows straddle tiles.
        var config = RandomModel.TinyConfig() with { Dim = 128, FfDim = 64, Heads = 2, KvHeads = 1, HeadDim = 64, Layers = 2 };
        if (window > 0) config = config with { SlidingWindow = window, SlidingLayers = [true, false] };
        var weights = RandomModel.Create(config, 17);
        var schedule = LadmSchedule.Create(1000, chunk: 32, dAfs: dAfs, dCds: 4);
        Assert.That(schedule.Spans, Has.Count.GreaterThan(3));
        var tokens = CudaSelfTest.RandomTokens(1000, config.VocabSize, 8);
        LadmMeasurement Measure(bool every)
        {
            using var scope = EnvironmentScope.WideForms(wide, null);
            using var backend = new SimulatedBackend(emulator: Emulator());
            using var model = new CudaModel(backend, weights, new CudaModelOptions { Precision = CudaPrecision.F16 });
            using var probe = new CudaLadmProbe(model, new CudaLadmOptions { EveryKeyColumn = every });
            return probe.Measure(tokens, schedule);
        }
        var masked = Measure(false);
        var every = Measure(true);
        int values = 0;
        for (int layer = 0; layer < config.Layers; layer++)
            for (int s = 0; s < schedule.Spans.Count; s++)
            {
                Assert.That(masked.Pfs[layer][s], Is.EqualTo(every.Pfs[layer][s]), $"layer {layer} span {s}");
                values += masked.Pfs[layer][s].Count(v => v > 0 && double.IsFinite(v));
            }
        Assert.That(values, Is.GreaterThan(10), "the measurement has non-zero PFS values to compare");
        if (window > 0)
            Assert.That(masked.Pfs[0].SelectMany(x => x).Count(v => v == 0), Is.GreaterThan(0), "PFS windows past the sliding window are 0");
    }

    [Test]
    public void QuickSelfTest_OnTheEmulator_PassesAgainstTheCpuReference()
    {
        // Whole tiny models (scalar and tensor-core kernels, f32 and f16) through the CUDA forward and probes, every
        // kernel running from its source: the GPU self-test's --quick run, GEMMs aside.
        using var backend = new SimulatedBackend(emulator: Emulator());
        var log = new StringWriter();
        bool ok = CudaSelfTest.Run(backend, log, new SelfTestOptions { Quick = true },
            ReferenceProbes.Ladm, ReferenceProbes.ProLong);
        string text = log.ToString();
        TestContext.Out.WriteLine(text);
        Assert.That(ok, Is.True, text);
        Assert.That(text, Does.Contain("head dim 64 LADM PFS (F16, tensor kernels)").And.Not.Contain("FAIL"));
        Assert.That(backend.Launches.Keys, Does.Contain("attention_mma64_kv16_f16").And.Contain("kv_pack_f16")
            .And.Contain("attention_mma64_f16").And.Contain("pfs_column_mass_mma64")
            .And.Contain("attention_mma64_kv16_wide_f16").And.Contain("pfs_row_stats_mma64_wide").And.Contain("pfs_column_mass_mma64_wide"));
    }

    [Test]
    public void WritesPastAnAllocation_AreReported()
    {
        using var backend = new SimulatedBackend(emulator: Emulator());
        using var src = backend.Allocate<float>(12, "src", "-");
        using var dst = backend.Allocate<ushort>(10, "dst under test", "-");
        src.Clear();
        backend.Launch(KernelNames.ConvertF32ToF16, new Dim3(1), new Dim3(256), 0, [src, dst, 10L]);
        Assert.That(dst.ToArray(), Is.EqualTo(new ushort[10]));
        var e = Assert.Throws<InvalidOperationException>(() =>
            backend.Launch(KernelNames.ConvertF32ToF16, new Dim3(1), new Dim3(256), 0, [src, dst, 12L])); // 12 of 10
        Assert.That(e!.Message, Does.Contain("convert_f32_to_f16 wrote past the end").And.Contain("dst under test").And.Contain("byte 20"));
    }

    [Test]
    public void Ldmatrix_GivesEachLaneTheRowsItsGroupNamed_AsThePtxIsaLaysOut()
    {
        // PTX ISA, ldmatrix .m8n8.x4 .b16: threads 8m..8m+7 give the row addresses of matrix m; thread l receives in
        // register m the two elements of row l / 4 of matrix m at columns 2 (l % 4) and 2 (l % 4) + 1 (lower in the low half).
        var emulator = Emulator();
        using var backend = new SimulatedBackend(emulator: emulator);
        var spec = new KernelSpec("emu_test_ldmatrix", "pp");
        var random = new Random(17);
        int[] rowOf = Enumerable.Range(0, 64).OrderBy(_ => random.Next()).Take(32).ToArray();
        using var rows = backend.Allocate<int>(32, "rows", "-");
        using var output = backend.Allocate<uint>(128, "out", "-");
        rows.CopyFrom(rowOf);
        emulator.Launch(spec, new Dim3(1), new Dim3(32), 1024, [rows, output]);
        var words = output.ToArray();
        for (int lane = 0; lane < 32; lane++)
            for (int m = 0; m < 4; m++)
            {
                int row = rowOf[8 * m + lane / 4];
                uint lo = (uint)(row * 8 + 2 * (lane % 4));
                Assert.That(words[4 * lane + m], Is.EqualTo(lo | (lo + 1) << 16), $"lane {lane}, register {m}");
            }

        rowOf[5] = -1; // lane 5 names an address 2 bytes into a row
        rows.CopyFrom(rowOf);
        var e = Assert.Throws<InvalidOperationException>(() => emulator.Launch(spec, new Dim3(1), new Dim3(32), 1024, [rows, output]));
        Assert.That(e!.Message, Does.Contain("ldmatrix").And.Contain("not 16-byte aligned").And.Contain("thread (5,0,0)"));
        rowOf[5] = 64; // past the 1024 bytes of shared memory
        rows.CopyFrom(rowOf);
        e = Assert.Throws<InvalidOperationException>(() => emulator.Launch(spec, new Dim3(1), new Dim3(32), 1024, [rows, output]));
        Assert.That(e!.Message, Does.Contain("ldmatrix from an address outside the block's dynamic shared memory"));
    }

    [Test]
    public void DivergentWarpCalls_AreReported()
    {
        var emulator = Emulator();
        using var backend = new SimulatedBackend(emulator: emulator);
        using var output = backend.Allocate<float>(64, "test", "-");
        var mixed = new KernelSpec("emu_test_mixed_warp_calls", "p");
        var e = Assert.Throws<InvalidOperationException>(() => emulator.Launch(mixed, new Dim3(1), new Dim3(32), 0, [output]));
        Assert.That(e!.Message, Does.Contain("warp divergence").And.Contain("mma.sync").And.Contain("block (0,0,0)"));
        var stuck = new KernelSpec("emu_test_split_barriers", "p");
        e = Assert.Throws<InvalidOperationException>(() => emulator.Launch(stuck, new Dim3(1), new Dim3(64), 0, [output]));
        Assert.That(e!.Message, Does.Contain("deadlock").And.Contain("32 threads wait at __syncthreads"));
        var unknown = new KernelSpec("no_such_kernel", "p");
        e = Assert.Throws<InvalidOperationException>(() => emulator.Launch(unknown, new Dim3(1), new Dim3(32), 0, [output]));
        Assert.That(e!.Message, Does.Contain("no kernel no_such_kernel"));
    }
}
