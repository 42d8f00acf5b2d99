using LongDep.Models.Synthetic;
using System.Diagnostics;
using LongDep.Core.Probes;
using LongDep.Models;

namespace LongDep.Cuda.SelfTest;

/// <summary>Options of <see cref="CudaSelfTest.Run"/>.</summary>
public sealed record SelfTestOptions
{
    /// <summary>CUDA device ordinal.</summary>
    public int Device { get; init; }
    /// <summary>Only the kernel checks and the tiny models (seconds); skips the TinyLlama-shaped runs.</summary>
    public bool Quick { get; init; }
    /// <summary>Whether the tiny models include one of every family beyond Llama (<see cref="CudaSelfTest.FamilyConfigs"/>).</summary>
    public bool Families { get; init; } = true;
    /// <summary>Tokens of the TinyLlama-shaped LADM and ProLong comparison.</summary>
    public int ShapeTokens { get; init; } = 4096;
    /// <summary>Tokens of the long PFS comparison (a few layers only).</summary>
    public int LongTokens { get; init; } = 32768;
    /// <summary>Layers of the model used for the long PFS comparison.</summary>
    public int LongLayers { get; init; } = 2;
    /// <summary>ProLong pairs drawn for the TinyLlama-shaped comparison.</summary>
    public int ShapePairs { get; init; } = 48;
    /// <summary>Relative tolerance of PFS and perplexities against the CPU probes (default precision).</summary>
    public double Tolerance { get; init; } = 2e-3;
    /// <summary>Relative tolerance when the GPU runs in float32 (tiny model).</summary>
    public double F32Tolerance { get; init; } = 1e-4;
    /// <summary>
    /// Relative tolerance of the tiny model in f16: with 64 dimensions few rounding errors average out, so f16 weighs
    /// more there than at TinyLlama's shape (which is held to <see cref="Tolerance"/>).
    /// </summary>
    public double TinyF16Tolerance { get; init; } = 5e-3;
    public int Seed { get; init; } = 1234;
    /// <summary>
    /// Kernel set of the TinyLlama-shaped runs; with tensor cores (the default) the tiny models and the kernel checks cover
    /// both sets, with <see cref="AttentionKernels.Simple"/> only the scalar kernels run (a tensor-core fault cannot stop it).
    /// </summary>
    public AttentionKernels Kernels { get; init; } = AttentionKernels.TensorCores;
    /// <summary>
    /// Run the kernels from their CUDA source on the CPU kernel emulator (<see cref="Twins.KernelEmulator"/>) instead
    /// of a GPU; cuBLAS is the C# GEMM twin. Checks kernel changes on a machine without a GPU (slow: use with --quick).
    /// </summary>
    public bool Emulate { get; init; }
}

/// <summary>
/// <c>longdep selftest</c>: validates the CUDA engine on this machine's GPU. Kernel by kernel against the C# twins on
/// random inputs, then the whole LADM and ProLong probes against the CPU probes on random models (a tiny one, one of
/// TinyLlama's shape at <see cref="SelfTestOptions.ShapeTokens"/>, and a few layers at
/// <see cref="SelfTestOptions.LongTokens"/>). Prints one table row per check and returns whether all passed.
/// </summary>
public static class CudaSelfTest
{
    public static bool Run(TextWriter log, SelfTestOptions options, Func<ModelWeights, ILadmProbe> cpuLadm,
        Func<ModelWeights, IProLongProbe> cpuProLong)
    {
        ArgumentNullException.ThrowIfNull(log);
        ArgumentNullException.ThrowIfNull(options);
        if (options.Emulate)
        {
            var emulator = Twins.KernelEmulator.TryLoad(out string why);
            if (emulator is null)
            {
                log.WriteLine($"selftest: {why}");
                return false;
            }
            log.WriteLine($"selftest: no GPU: the kernels run from their source on the CPU emulator ({emulator.Path}); cuBLAS is the C# GEMM twin");
            using var backend = new Twins.SimulatedBackend(emulator: emulator);
            return Run(backend, log, options, cpuLadm, cpuProLong);
        }
        if (!CudaDevice.TryOpen(options.Device, out var device, out string reason))
        {
            log.WriteLine($"selftest: CUDA is not usable: {reason}");
            return false;
        }
        using (device)
        {
            log.WriteLine($"selftest: {device.Describe()}");
            log.WriteLine($"selftest: driver {Native.NativeLibraries.DriverPath}, cuBLAS {Native.NativeLibraries.CublasPath} (version {device.Backend.BlasVersion()})");
            log.WriteLine($"selftest: NVTX ranges {(Native.NvtxApi.Available ? "on" : "off (liblongdep_nvtx.so not found)")}");
            bool syncWas = device.Backend.SynchronizeEachLaunch;
            device.Backend.SynchronizeEachLaunch = true; // a fault names the kernel that caused it
            try
            {
                return Run(device.Backend, log, options, cpuLadm, cpuProLong);
            }
            finally
            {
                device.Backend.SynchronizeEachLaunch = syncWas;
            }
        }
    }

    /// <summary>The self-test on any backend (the tests run it on the simulator).</summary>
    internal static bool Run(GpuBackend backend, TextWriter log, SelfTestOptions options, Func<ModelWeights, ILadmProbe> cpuLadm,
        Func<ModelWeights, IProLongProbe> cpuProLong)
    {
        var results = new List<CheckResult>();
        void Report(CheckResult r)
        {
            results.Add(r);
            log.WriteLine(r.Row);
            log.Flush();
        }

        log.WriteLine(CheckResult.Header);
        var checks = new KernelChecks(backend, options.Seed);
        bool tensorCoreChecks = options.Kernels == AttentionKernels.TensorCores;
        if (!tensorCoreChecks) log.WriteLine("selftest: --kernel-set simple: the tensor-core kernels are not checked");
        foreach (var r in Guard("kernel checks", checks.All)) Report(r);
        // After the scalar ones: a fault here (which ends every later GPU call of this process) cannot hide their results.
        if (tensorCoreChecks)
        {
            if (KernelChecks.WideFormsNote() is { } note) log.WriteLine(note);
            foreach (var r in Guard("tensor-core kernel checks", checks.TensorCoreChecks)) Report(r);
        }

        // Tiny random models: float32 GPU (tight) and the default f16 (SPEC tolerance), both RoPE styles, bias and tying.
        // The head-dimension-64 models run attention and PFS on tensor cores (f16 inputs) as well as on the scalar kernels.
        var tinyConfigs = new (string Name, ModelConfig Config)[]
        {
            ("tiny llama (adjacent-pair RoPE)", RandomModel.TinyConfig()),
            ("tiny qwen2 (halves RoPE, qkv bias, tied)", RandomModel.TinyConfig(RopeStyle.Halves, qkvBias: true, tied: true)),
            ("tiny llama, head dim 64", RandomModel.TinyConfig() with { Dim = 256, FfDim = 192, Heads = 4, KvHeads = 2, HeadDim = 64 }),
        };
        // Then one tiny model of every other family, each with the parts of its block the Llama one lacks (see FamilyConfigs).
        foreach (var (name, config) in tinyConfigs.Concat(options.Families ? FamilyConfigs() : []))
        {
            var weights = RandomModel.Create(config, options.Seed);
            var schedule = LadmSchedule.Create(200, chunk: 8, dAfs: 2, dCds: 3);
            var (chunks, pairs) = ProLongInputs(config.VocabSize, chunkCount: 9, chunkLength: 12, pairCount: 20, seed: options.Seed);
            var tokens = RandomTokens(schedule.T, config.VocabSize, options.Seed + 1);
            bool tensorCores = KernelNames.HasTensorCoreKernels(config.HeadDim) && CudaModel.KernelsFor(config, AttentionKernels.TensorCores) == AttentionKernels.TensorCores;
            var variants = new List<(CudaPrecision Precision, AttentionKernels Kernels, double Tol)>
            {
                (CudaPrecision.F32, AttentionKernels.Simple, options.F32Tolerance),
                (CudaPrecision.F16, AttentionKernels.TensorCores, options.TinyF16Tolerance),
            };
            if (tensorCores && tensorCoreChecks) variants.Insert(1, (CudaPrecision.F32, AttentionKernels.TensorCores, options.TinyF16Tolerance));
            if (!tensorCoreChecks) variants[1] = (CudaPrecision.F16, AttentionKernels.Simple, options.TinyF16Tolerance);
            foreach (var (precision, kernels, tol) in variants)
            {
                var modelOptions = new CudaModelOptions
                {
                    Precision = precision, Kernels = kernels, MlpTileRows = 64, LogitsTileBytes = 40 * config.VocabSize * 4,
                };
                string label = tensorCores ? $"{precision}, {kernels.Name()} kernels" : $"{precision}";
                foreach (var r in Guard($"{name} LADM", () => CompareLadm($"{name} LADM PFS ({label})", backend, weights, modelOptions,
                             cpuLadm, tokens, schedule, tol, new CudaLadmOptions { ColumnBufferBytes = 3L * schedule.T * 4 }))) Report(r);
                foreach (var r in Guard($"{name} ProLong", () => CompareProLong($"{name} ProLong ({label})", backend, weights, modelOptions,
                             cpuProLong, chunks, pairs, tol, new CudaProLongOptions { PairBatch = 7 }))) Report(r);
            }
        }

        if (!options.Quick)
        {
            var shape = RandomModel.TinyLlamaConfig();
            log.WriteLine($"selftest: building a random model of TinyLlama's shape ({shape.ParameterCount / 1e9:0.00}B parameters)...");
            var weights = RandomModel.Create(shape, options.Seed);
            var modelOptions = new CudaModelOptions { Kernels = options.Kernels };
            log.WriteLine($"selftest: TinyLlama-shape runs use f16 weights and the {options.Kernels.Describe()}");
            int T = options.ShapeTokens;
            var schedule = LadmSchedule.Create(T, chunk: 128, dAfs: 4, dCds: 4);
            var tokens = RandomTokens(T, shape.VocabSize, options.Seed + 2);
            foreach (var r in Guard("TinyLlama-shape LADM", () => CompareLadm($"TinyLlama shape LADM PFS, T {T}", backend, weights, modelOptions,
                         cpuLadm, tokens, schedule, options.Tolerance, new CudaLadmOptions()))) Report(r);
            var (chunks, pairs) = ProLongInputs(shape.VocabSize, chunkCount: T / 128, chunkLength: 128, pairCount: options.ShapePairs, seed: options.Seed);
            foreach (var r in Guard("TinyLlama-shape ProLong", () => CompareProLong($"TinyLlama shape ProLong, {chunks.Count} chunks", backend, weights,
                         modelOptions, cpuProLong, chunks, pairs, options.Tolerance, new CudaProLongOptions { PairBatch = 16 }))) Report(r);

            var longShape = RandomModel.TinyLlamaConfig(options.LongLayers);
            var longWeights = RandomModel.Create(longShape, options.Seed + 3);
            int longT = options.LongTokens;
            var longSchedule = LadmSchedule.Create(longT, chunk: 128, dAfs: 4, dCds: 4);
            var longTokens = RandomTokens(longT, longShape.VocabSize, options.Seed + 4);
            foreach (var r in Guard("long LADM", () => CompareLadm($"TinyLlama shape x{longShape.Layers} layers LADM PFS, T {longT}", backend,
                         longWeights, modelOptions, cpuLadm, longTokens, longSchedule, options.Tolerance, new CudaLadmOptions()))) Report(r);
        }

        int failed = results.Count(r => !r.Passed);
        log.WriteLine(failed == 0
            ? $"selftest: all {results.Count} checks passed"
            : $"selftest: {failed} of {results.Count} checks FAILED");
        return failed == 0;
    }

    /// <summary>
    /// Tiny models (vocabulary 97, 2 to 6 layers) of the families beyond Llama, each with what sets its block apart: RoPE
    /// scaling (llama3, yarn, longrope), sliding windows (narrowed so that the self-test's 200-token sample and 24-token
    /// pairs reach past them), q/k norms, Gemma's sandwich norms, GeGLU, embedding scale and soft-caps, OPT's LayerNorm
    /// blocks (post- and pre-norm), learned positions, ReLU feed-forward with biases and projections; and a windowed model of
    /// head dimension 64, so that the tensor-core kernels run the window masks in a whole measurement.
    /// </summary>
    internal static IEnumerable<(string Name, ModelConfig Config)> FamilyConfigs()
    {
        ModelConfig S(string shape) => RandomModel.Shape(shape, vocabSize: 97);
        yield return ("tiny llama3 (llama3 RoPE)", S("tiny-llama3"));
        yield return ("tiny mistral (window 16)", S("tiny-mistral") with { SlidingWindow = 16 });
        yield return ("tiny qwen2 (yarn RoPE)", S("tiny-qwen2"));
        yield return ("tiny qwen3 (q/k norm)", S("tiny-qwen3"));
        yield return ("tiny gemma2 (sandwich, GeGLU, caps)", S("tiny-gemma2") with { SlidingWindow = 16 });
        yield return ("tiny gemma3 (q/k norm, local RoPE)", S("tiny-gemma3") with { Layers = 2, SlidingLayers = [true, false] });
        yield return ("tiny phi3 (longrope, window 40)", S("tiny-phi3") with { SlidingWindow = 40 });
        yield return ("opt tiny (post-norm, projections)", S("opt-tiny") with { PositionRows = 2 + 256 });
        yield return ("opt tiny pre-norm", S("opt-tiny") with
        {
            NormPlacement = NormPlacement.Pre, FinalNorm = true, EmbedDim = null, PositionRows = 2 + 256,
        });
        yield return ("tiny mistral, head dim 64, window 20", S("tiny-mistral") with
        {
            Dim = 256, FfDim = 192, Heads = 4, KvHeads = 2, HeadDim = 64, SlidingWindow = 20,
        });
    }

    /// <summary>Runs a group of checks; an exception becomes one failed row instead of ending the self-test.</summary>
    private static IEnumerable<CheckResult> Guard(string name, Func<IEnumerable<CheckResult>> run)
    {
        var list = new List<CheckResult>();
        try
        {
            foreach (var r in run()) list.Add(r);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            list.Add(CheckResult.Failure(name, $"{e.GetType().Name}: {e.Message.ReplaceLineEndings(" ")}"));
        }
        return list;
    }

    private static IEnumerable<CheckResult> CompareLadm(string name, GpuBackend backend, ModelWeights weights, CudaModelOptions modelOptions,
        Func<ModelWeights, ILadmProbe> cpuLadm, int[] tokens, LadmSchedule schedule, double tol, CudaLadmOptions ladmOptions)
    {
        var watch = Stopwatch.StartNew();
        LadmMeasurement gpu;
        using (var model = new CudaModel(backend, weights, modelOptions))
        using (var probe = new CudaLadmProbe(model, ladmOptions))
            gpu = probe.Measure(tokens, schedule);
        double gpuSeconds = watch.Elapsed.TotalSeconds;
        watch.Restart();
        LadmMeasurement cpu;
        using (var probe = cpuLadm(weights))
            cpu = probe.Measure(tokens, schedule);
        double cpuSeconds = watch.Elapsed.TotalSeconds;
        var results = new List<CheckResult>();
        for (int layer = 0; layer < weights.Config.Layers; layer++)
        {
            var g = gpu.Pfs[layer].SelectMany(x => x).ToArray();
            var c = cpu.Pfs[layer].SelectMany(x => x).ToArray();
            results.Add(Compare.Arrays($"{name} layer {layer}", g, c, tol, 1e-3));
        }
        var worst = results.OrderBy(r => r.Passed).ThenByDescending(r => r.MaxRel).First();
        yield return worst with
        {
            Name = $"{name} ({weights.Config.Layers} layers, worst)",
            Count = results.Sum(r => r.Count),
            Passed = results.All(r => r.Passed),
            Note = $"{worst.Note} gpu {gpuSeconds:0.0}s cpu {cpuSeconds:0.0}s".Trim(),
        };
    }

    private static IEnumerable<CheckResult> CompareProLong(string name, GpuBackend backend, ModelWeights weights, CudaModelOptions modelOptions,
        Func<ModelWeights, IProLongProbe> cpuProLong, List<int[]> chunks, List<ChunkPair> pairs, double tol, CudaProLongOptions options)
    {
        ProLongMeasurement gpu;
        using (var model = new CudaModel(backend, weights, modelOptions))
        using (var probe = new CudaProLongProbe(model, options))
            gpu = probe.Measure(chunks, pairs);
        ProLongMeasurement cpu;
        using (var probe = cpuProLong(weights))
            cpu = probe.Measure(chunks, pairs);
        yield return Compare.Arrays($"{name} single_ppl", gpu.SinglePpl, cpu.SinglePpl, tol, 0);
        yield return Compare.Arrays($"{name} pair_ppl ({pairs.Count} pairs)", gpu.PairPpl, cpu.PairPpl, tol, 0);
    }

    internal static int[] RandomTokens(int count, int vocab, int seed)
    {
        var random = new Random(seed);
        var tokens = new int[count];
        for (int i = 0; i < count; i++) tokens[i] = random.Next(vocab);
        return tokens;
    }

    /// <summary>Random chunks and distinct random pairs (j &lt; i), the shape of a ProLong record.</summary>
    internal static (List<int[]> Chunks, List<ChunkPair> Pairs) ProLongInputs(int vocab, int chunkCount, int chunkLength, int pairCount, int seed)
    {
        var random = new Random(seed);
        var chunks = new List<int[]>();
        for (int c = 0; c < chunkCount; c++)
        {
            var chunk = new int[chunkLength];
            for (int t = 0; t < chunkLength; t++) chunk[t] = random.Next(vocab);
            chunks.Add(chunk);
        }
        var all = new List<ChunkPair>();
        for (int i = 1; i < chunkCount; i++)
            for (int j = 0; j < i; j++) all.Add(new ChunkPair(i, j));
        var pairs = all.OrderBy(_ => random.Next()).Take(pairCount).ToList();
        return (chunks, pairs);
    }
}
