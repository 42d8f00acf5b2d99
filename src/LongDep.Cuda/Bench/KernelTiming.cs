using System.Diagnostics;
using LongDep.Core.Probes;

namespace LongDep.Cuda.Bench;

/// <summary>One timed kernel: median milliseconds per launch and the throughput its multiply-adds give.</summary>
/// <param name="Kernel">The launched kernel's name (as ncu and nsys show it).</param>
/// <param name="KernelSet">tensor or simple (<see cref="AttentionKernels"/>).</param>
/// <param name="Work">What one launch computes, in words.</param>
/// <param name="Flop">2 × the multiply-adds of one launch (scores and, for attention, P·V).</param>
public sealed record KernelTimingRow(string Kernel, string KernelSet, string Work, double Milliseconds, double Flop)
{
    public double Tflops => Milliseconds > 0 ? Flop / (Milliseconds * 1e-3) / 1e12 : 0;
}

/// <summary>What <see cref="KernelTiming.Run(CudaDevice, KernelTimingOptions, Action{string}?)"/> times.</summary>
public sealed record KernelTimingOptions
{
    public required int T { get; init; }
    public required int Heads { get; init; }
    public required int KvHeads { get; init; }
    public required int HeadDim { get; init; }
    /// <summary>The LADM schedule whose spans the PFS passes run over (all spans in one launch).</summary>
    public required LadmSchedule Schedule { get; init; }
    /// <summary>Timed launches per kernel (after one untimed warm-up launch); the median is reported.</summary>
    public int Repeats { get; init; } = 5;
    /// <summary>Kernel sets to time, in order.</summary>
    public IReadOnlyList<AttentionKernels> Sets { get; init; } = [AttentionKernels.TensorCores, AttentionKernels.Simple];
    public int Seed { get; init; } = 1234;
}

/// <summary>
/// Times the O(T²) kernels one layer of LADM launches — causal attention over T tokens and the two PFS passes over
/// the schedule's spans — on random q, k, v of the given shape, for each kernel set: the per-kernel figures behind a
/// sample's time, without a model (<c>longdep bench --kernel-timing</c>). Each launch is bracketed by device
/// synchronizations, so a time is the kernel's (plus a few microseconds of launch latency).
/// </summary>
public static class KernelTiming
{
    public static IReadOnlyList<KernelTimingRow> Run(CudaDevice device, KernelTimingOptions options, Action<string>? progress = null)
    {
        ArgumentNullException.ThrowIfNull(device);
        return Run(device.Backend, options, progress);
    }

    internal static IReadOnlyList<KernelTimingRow> Run(GpuBackend backend, KernelTimingOptions options, Action<string>? progress)
    {
        ArgumentNullException.ThrowIfNull(options);
        int T = options.T, H = options.Heads, Hkv = options.KvHeads, d = options.HeadDim;
        if (T <= 0 || H <= 0 || Hkv <= 0 || H % Hkv != 0)
            throw new ArgumentException($"kernel timing needs T > 0 and heads ({H}) a positive multiple of KV heads ({Hkv})");
        if (options.Schedule.T != T) throw new ArgumentException($"the schedule is for T = {options.Schedule.T}, not {T}");
        if (options.Repeats < 1) throw new ArgumentOutOfRangeException(nameof(options), "Repeats must be at least 1");
        const string hint = "--tokens";
        var random = new Random(options.Seed);
        float[] Random(long n)
        {
            var a = new float[n];
            for (long i = 0; i < n; i++) a[i] = (float)(random.NextDouble() * 2 - 1);
            return a;
        }

        var spans = options.Schedule.Spans;
        using var q = backend.Allocate<float>((long)T * H * d, "kernel timing q", hint);
        using var k = backend.Allocate<float>((long)T * Hkv * d, "kernel timing k", hint);
        using var v = backend.Allocate<float>((long)T * Hkv * d, "kernel timing v", hint);
        using var output = backend.Allocate<byte>((long)T * H * d * 2, "kernel timing attention output", hint);
        q.CopyFrom(Random((long)T * H * d));
        k.CopyFrom(Random((long)T * Hkv * d));
        v.CopyFrom(Random((long)T * Hkv * d));

        int nSpans = spans.Count;
        int maxSpanLen = nSpans == 0 ? 1 : spans.Max(s => s.End - s.Start);
        int maxStart = nSpans == 0 ? 0 : spans.Max(s => s.Start);
        using var spanStart = backend.Allocate<int>(Math.Max(nSpans, 1), "kernel timing spans", hint);
        using var spanEnd = backend.Allocate<int>(Math.Max(nSpans, 1), "kernel timing spans", hint);
        using var rowMax = backend.Allocate<float>((long)Math.Max(nSpans, 1) * H * maxSpanLen, "kernel timing statistics", hint);
        using var rowSum = backend.Allocate<float>((long)Math.Max(nSpans, 1) * H * maxSpanLen, "kernel timing statistics", hint);
        using var col = backend.Allocate<float>((long)Math.Max(nSpans, 1) * T, "kernel timing columns", hint);
        // Pass 2 as the LADM probe runs it: only the key tiles the schedule's windows read.
        var mask = PfsKeyTiles.Build(spans, T);
        var tiles = PfsKeyTiles.List(mask, spans.Select(s => s.Start).ToArray(), T);
        using var tileList = backend.Allocate<int>(Math.Max(tiles.Rows.Length, 1), "kernel timing key-tile list", hint);
        if (nSpans > 0)
        {
            spanStart.CopyFrom(spans.Select(s => s.Start).ToArray());
            spanEnd.CopyFrom(spans.Select(s => s.End).ToArray());
            tileList.CopyFrom(tiles.Rows);
        }
        col.Clear();

        double attentionFlop = 2.0 * 2.0 * ((double)T * (T + 1) / 2) * d * H;
        double pfsFlop = 2.0 * spans.Sum(s => (double)(s.End - s.Start) * s.Start) * d * H;
        var markedKeys = spans.Select((s, i) => (double)PfsKeyTiles.MarkedKeys(mask, i, T, s.Start)).ToArray();
        double passTwoFlop = 2.0 * spans.Select((s, i) => (s.End - s.Start) * markedKeys[i]).Sum() * d * H;
        string attentionWork = $"causal attention, T {T}, H {H}/{Hkv}, d {d}";
        string pfsWork = $"{nSpans} spans of <= {maxSpanLen} rows, keys before each, H {H}/{Hkv}, d {d}";
        double allKeys = spans.Sum(s => (double)s.Start);
        string passTwoWork = $"{nSpans} spans of <= {maxSpanLen} rows, the windows' key tiles before each "
            + $"({(allKeys > 0 ? 100 * markedKeys.Sum() / allKeys : 0):0}% of the keys), H {H}/{Hkv}, d {d}";

        var rows = new List<KernelTimingRow>();
        foreach (var set in options.Sets)
        {
            var ops = new KernelOps(backend, set);
            if (set == AttentionKernels.TensorCores && !ops.UsesTensorCores(d))
            {
                progress?.Invoke($"kernel timing: no tensor-core kernels for head dimension {d}; the tensor set runs the simple kernels");
            }
            string name = set.Name();
            rows.Add(Time(backend, options.Repeats, progress,
                ops.AttentionKernel(CudaPrecision.F16, d).Name, name, attentionWork, attentionFlop,
                () => ops.Attention(q.Pointer, k.Pointer, v.Pointer, DevicePtr.Null, DevicePtr.Null, DevicePtr.Null, output.Pointer,
                    CudaPrecision.F16, 1, T, 0, H, Hkv, d)));
            // Where wide kernels (32 rows per warp) exist, the 16-row kernels they replace are timed too, and the wide ones with
            // 8 warps a block (attention in 256-row blocks, PFS pass 1 from packed keys two heads a block) beside 4.
            bool wide = ops.UsesTensorCores(d) && KernelNames.HasWideKernels(d);
            var variants = wide
                ? new[] { new KernelOps(backend, set) { WideKernels = false }, new KernelOps(backend, set) { WideKernels = true, WideWarps = 4 } }
                : new[] { ops };
            var wideForms = wide
                ? new[] { variants[1], new KernelOps(backend, set) { WideKernels = true, WideWarps = 8 } }
                : [];
            // The path the model takes without prefix keys: pack k, v as f16 once, then cp.async tiles.
            using var kvHalf = ops.UsesTensorCores(d)
                ? backend.Allocate<byte>(KernelOps.KvHalfBytes(1, T, Hkv, d), "kernel timing packed keys and values", hint)
                : null;
            if (kvHalf is not null)
            {
                foreach (var packed in variants.Concat(wideForms.Skip(1)))
                    rows.Add(Time(backend, options.Repeats, progress,
                        $"{KernelNames.KvPackF16.Name} + {packed.PackedAttentionKernel(CudaPrecision.F16, d).Name}", name, attentionWork, attentionFlop,
                        () => packed.Attention(q.Pointer, k.Pointer, v.Pointer, DevicePtr.Null, DevicePtr.Null, DevicePtr.Null, output.Pointer,
                            CudaPrecision.F16, 1, T, 0, H, Hkv, d, kvHalf)));
            }
            if (nSpans == 0) continue;
            foreach (var passOne in variants)
                rows.Add(Time(backend, options.Repeats, progress,
                    passOne.PfsRowStatsKernel(d).Name, name, pfsWork, pfsFlop,
                    () => passOne.PfsRowStats(q.Pointer, k.Pointer, spanStart.Pointer, spanEnd.Pointer, rowMax.Pointer, rowSum.Pointer,
                        nSpans, maxSpanLen, H, Hkv, d)));
            // Pass 1 as the LADM probe runs it with the wide kernels: from the keys the attention above packed.
            foreach (var passOne in wideForms)
                rows.Add(Time(backend, options.Repeats, progress,
                    passOne.PfsRowStatsPackedKernel(H, Hkv).Name, name, pfsWork, pfsFlop,
                    () => passOne.PfsRowStatsPacked(q.Pointer, kvHalf!, T, spanStart.Pointer, spanEnd.Pointer, rowMax.Pointer, rowSum.Pointer,
                        nSpans, maxSpanLen, H, Hkv, d)));
            foreach (var passTwo in variants)
                rows.Add(Time(backend, options.Repeats, progress,
                    passTwo.PfsColumnMassKernel(d).Name, name, passTwoWork, passTwoFlop,
                    () => passTwo.PfsColumnMass(q.Pointer, k.Pointer, spanStart.Pointer, spanEnd.Pointer, rowMax.Pointer, rowSum.Pointer,
                        col.Pointer, tileList.Pointer, tiles.Stride, tiles.MostTiles, nSpans, maxSpanLen, maxStart, T, H, Hkv, d)));
            // The default pass 2 over every key column (no tile list), for what the list saves.
            rows.Add(Time(backend, options.Repeats, progress,
                $"{ops.PfsColumnMassKernel(d).Name} (every key)", name, pfsWork, pfsFlop,
                () => ops.PfsColumnMass(q.Pointer, k.Pointer, spanStart.Pointer, spanEnd.Pointer, rowMax.Pointer, rowSum.Pointer,
                    col.Pointer, DevicePtr.Null, 0, 0, nSpans, maxSpanLen, maxStart, T, H, Hkv, d)));
        }
        return rows;
    }

    private static KernelTimingRow Time(GpuBackend backend, int repeats, Action<string>? progress, string kernel, string set, string work,
        double flop, Action launch)
    {
        launch(); // warm-up: module load, first-touch
        backend.Synchronize();
        var times = new double[repeats];
        var watch = new Stopwatch();
        for (int r = 0; r < repeats; r++)
        {
            watch.Restart();
            launch();
            backend.Synchronize();
            times[r] = watch.Elapsed.TotalMilliseconds;
        }
        Array.Sort(times);
        double median = repeats % 2 == 1 ? times[repeats / 2] : (times[repeats / 2 - 1] + times[repeats / 2]) / 2;
        var row = new KernelTimingRow(kernel, set, work, median, flop);
        progress?.Invoke($"kernel timing: {kernel} ({set}) {median:0.000} ms, {row.Tflops:0.0} TFLOP/s");
        return row;
    }
}
