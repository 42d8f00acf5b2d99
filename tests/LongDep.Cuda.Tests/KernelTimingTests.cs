using LongDep.Core.Probes;
using LongDep.Cuda.Bench;
using LongDep.Cuda.Twins;

namespace LongDep.Cuda.Tests;

/// <summary><see cref="KernelTiming"/> on the simulated backend: which kernels it launches, how often, and its FLOP counts.</summary>
public class KernelTimingTests
{
    [Test]
    public void TimesAttentionAndBothPfsPasses_ForEachKernelSet_WithHandCountedFlop()
    {
        int T = 400, H = 4, Hkv = 2, d = 64;
        var schedule = LadmSchedule.Create(T, chunk: 16, dAfs: 2, dCds: 4);
        Assert.That(schedule.Spans, Is.Not.Empty);
        using var backend = new SimulatedBackend();
        var rows = KernelTiming.Run(backend, new KernelTimingOptions
        {
            T = T, Heads = H, KvHeads = Hkv, HeadDim = d, Schedule = schedule, Repeats = 2,
        }, progress: null).ToList();

        Assert.That(rows.Select(r => (r.Kernel, r.KernelSet)), Is.EqualTo(new[]
        {
            ("attention_mma64_f16", "tensor"), ("kv_pack_f16 + attention_mma64_kv16_f16", "tensor"),
            ("kv_pack_f16 + attention_mma64_kv16_wide_f16", "tensor"), ("kv_pack_f16 + attention_mma64_kv16_wide8_f16", "tensor"),
            ("pfs_row_stats_mma64", "tensor"), ("pfs_row_stats_mma64_wide", "tensor"),
            ("pfs_row_stats_mma64_kv16_wide", "tensor"), ("pfs_row_stats_mma64_kv16_wide8", "tensor"),
            ("pfs_column_mass_mma64", "tensor"), ("pfs_column_mass_mma64_wide", "tensor"), ("pfs_column_mass_mma64_wide (every key)", "tensor"),
            ("attention_fwd_f16", "simple"), ("pfs_row_stats", "simple"), ("pfs_column_mass", "simple"), ("pfs_column_mass (every key)", "simple"),
        }));
        // one warm-up launch and two timed ones per row (the packed rows launch two kernels each time: kv_pack in all three;
        // the default pass 2 runs with and without the key-tile list)
        foreach (var r in rows)
            foreach (var kernel in r.Kernel.Replace(" (every key)", "").Split(" + "))
                Assert.That(backend.Launches[kernel], Is.EqualTo(kernel == "kv_pack_f16" ? 9 : kernel.StartsWith("pfs_column_mass", StringComparison.Ordinal)
                    && kernel != "pfs_column_mass_mma64" ? 6 : 3), kernel);
        Assert.That(rows[3].Flop, Is.EqualTo(rows[2].Flop).And.EqualTo(rows[1].Flop).And.EqualTo(rows[0].Flop));
        Assert.That(rows[7].Flop, Is.EqualTo(rows[6].Flop).And.EqualTo(rows[5].Flop).And.EqualTo(rows[4].Flop));
        Assert.That(rows[9].Flop, Is.EqualTo(rows[8].Flop));
        Assert.That(rows[10].Flop, Is.EqualTo(rows[4].Flop), "pass 2 over every key: the work of pass 1");
        Assert.That(rows[11].Flop, Is.EqualTo(rows[0].Flop));
        Assert.That(rows[12].Flop, Is.EqualTo(rows[4].Flop));
        Assert.That(rows[13].Flop, Is.EqualTo(rows[8].Flop));
        Assert.That(rows[14].Flop, Is.EqualTo(rows[4].Flop));
        rows = [rows[0], rows[4], rows[8]];

        // attention: QK^T over the causal triangle and P.V, 2 FLOP per multiply-add
        double causalPairs = 0;
        for (int t = 0; t < T; t++) causalPairs += t + 1;
        Assert.That(rows[0].Flop, Is.EqualTo(2 * 2 * causalPairs * d * H));
        // PFS pass 1: every span row against every key before the span
        double spanPairs = 0;
        foreach (var s in schedule.Spans)
            for (int row = s.Start; row < s.End; row++) spanPairs += s.Start;
        Assert.That(rows[1].Flop, Is.EqualTo(2 * spanPairs * d * H));
        // pass 2: every span row against the keys before the span whose 16-key tile holds a key of one of its windows
        double windowPairs = 0;
        foreach (var s in schedule.Spans)
        {
            int keys = 0;
            for (int key = 0; key < s.Start; key++)
            {
                int tile = key / 16;
                if (s.Intervals.Any(iv => s.Start - iv < 16 * tile + 16 && s.End - iv > 16 * tile)) keys++;
            }
            windowPairs += (double)(s.End - s.Start) * keys;
        }
        Assert.That(windowPairs, Is.LessThan(0.75 * spanPairs), "d_afs = 2: about half the keys");
        Assert.That(rows[2].Flop, Is.EqualTo(2 * windowPairs * d * H));
        Assert.That(rows.All(r => r.Milliseconds > 0 && r.Tflops > 0), Is.True);
        Assert.That(backend.LiveAllocations, Is.Zero);
    }

    [Test]
    public void HeadDimensionWithoutTensorCoreKernels_TimesTheScalarKernelsUnderBothNames()
    {
        var schedule = LadmSchedule.Create(300, chunk: 16, dAfs: 2, dCds: 4);
        using var backend = new SimulatedBackend();
        var messages = new List<string>();
        var rows = KernelTiming.Run(backend, new KernelTimingOptions
        {
            T = 300, Heads = 2, KvHeads = 1, HeadDim = 32, Schedule = schedule, Repeats = 1,
            Sets = [AttentionKernels.TensorCores],
        }, messages.Add);
        Assert.That(rows.Select(r => r.Kernel), Is.EqualTo(new[] { "attention_fwd_f16", "pfs_row_stats", "pfs_column_mass", "pfs_column_mass (every key)" }));
        Assert.That(messages, Has.Some.Contains("no tensor-core kernels for head dimension 32"));
    }

    [Test]
    public void RejectsAScheduleForAnotherLength()
    {
        using var backend = new SimulatedBackend();
        var options = new KernelTimingOptions { T = 500, Heads = 2, KvHeads = 1, HeadDim = 64, Schedule = LadmSchedule.Create(400, 16, 2, 4) };
        Assert.Throws<ArgumentException>(() => KernelTiming.Run(backend, options, null));
    }
}
