using System.Text.Json;
using LongDep.Cli.Runtime;
using LongDep.Core.Probes;
using LongDep.Cuda;
using LongDep.Cuda.Bench;
using LongDep.Models;
using Spectre.Console;

namespace LongDep.Cli.Bench;

/// <summary><c>longdep bench --kernel-timing</c>: per-kernel times and TFLOP/s of one LADM layer's O(T²) work.</summary>
internal static class KernelTimingReport
{
    public static int Run(TextWriter output, TextWriter log, DeviceSpec spec, ModelConfig config, string modelSource, int tokens,
        BenchOptions options, IReadOnlyList<AttentionKernels> sets, string? jsonPath)
    {
        if (spec.Cpu) throw new CliException("--kernel-timing times GPU kernels: use --device cuda or cuda:N", ExitCodes.Usage);
        int ordinal = spec.Gpus is { Count: > 0 } gpus ? gpus[0] : 0;
        if (!CudaDevice.TryOpen(ordinal, out var device, out string reason))
            throw new CliException($"--kernel-timing needs a GPU: cuda:{ordinal} cannot be used: {reason}");
        using (device)
        {
            var (dAfs, dCds) = options.LadmSettings.Count > 0 ? options.LadmSettings[0] : (4, 4);
            var schedule = LadmSchedule.Create(tokens, options.Chunk, dAfs, dCds);
            var timing = new KernelTimingOptions
            {
                T = tokens, Heads = config.Heads, KvHeads = config.KvHeads, HeadDim = config.HeadDim, Schedule = schedule, Sets = sets,
            };
            log.WriteLine($"kernel timing on cuda:{ordinal} ({device.Describe()}): {modelSource}, T {tokens}, LADM {dAfs}:{dCds} ({schedule.Spans.Count} spans)");
            var rows = KernelTiming.Run(device, timing, line => log.WriteLine(line));
            double peak = BenchEngine.KnownPeakTflops(device.Name) ?? 0;
            var table = new Table().Border(TableBorder.Rounded).Title("O(T²) kernels of one LADM layer (median of 5 launches)");
            table.AddColumn("kernel");
            table.AddColumn("set");
            table.AddColumn(new TableColumn("ms").RightAligned());
            table.AddColumn(new TableColumn("TFLOP/s").RightAligned());
            table.AddColumn(new TableColumn("of peak").RightAligned());
            table.AddColumn("work");
            foreach (var row in rows)
                table.AddRow(Markup.Escape(row.Kernel), row.KernelSet, $"{row.Milliseconds:0.000}", $"{row.Tflops:0.0}",
                    peak > 0 ? $"{row.Tflops / peak:P1}" : "-", Markup.Escape(row.Work));
            BenchReport.Console(output, plain: !ReferenceEquals(output, System.Console.Out) || System.Console.IsOutputRedirected).Write(table);
            output.WriteLine($"TFLOP/s counts 2 FLOP per multiply-add of the scores (and of P·V for attention); peak {(peak > 0 ? $"{peak} TFLOP/s dense f16" : "unknown for this GPU")}.");
            if (jsonPath is not null)
            {
                File.WriteAllText(jsonPath, ToJson(device.Describe(), modelSource, config, tokens, dAfs, dCds, schedule.Spans.Count, peak, rows));
                log.WriteLine($"wrote {jsonPath}");
            }
        }
        return ExitCodes.Ok;
    }

    /// <summary>The rows as JSON (by hand: the trimmed bundle has no reflection-based serializer).</summary>
    internal static string ToJson(string device, string model, ModelConfig config, int tokens, int dAfs, int dCds, int spans, double peak,
        IReadOnlyList<KernelTimingRow> rows)
    {
        using var stream = new MemoryStream();
        using (var w = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true }))
        {
            w.WriteStartObject();
            w.WriteString("tool", "longdep bench --kernel-timing");
            w.WriteString("device", device);
            w.WriteString("model", model);
            w.WriteNumber("tokens", tokens);
            w.WriteNumber("heads", config.Heads);
            w.WriteNumber("kv_heads", config.KvHeads);
            w.WriteNumber("head_dim", config.HeadDim);
            w.WriteNumber("d_afs", dAfs);
            w.WriteNumber("d_cds", dCds);
            w.WriteNumber("spans", spans);
            if (peak > 0) w.WriteNumber("peak_tflops", peak); else w.WriteNull("peak_tflops");
            w.WriteStartArray("kernels");
            foreach (var r in rows)
            {
                w.WriteStartObject();
                w.WriteString("kernel", r.Kernel);
                w.WriteString("set", r.KernelSet);
                w.WriteString("work", r.Work);
                w.WriteNumber("milliseconds", r.Milliseconds);
                w.WriteNumber("flop", r.Flop);
                w.WriteNumber("tflops", r.Tflops);
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteEndObject();
        }
        return System.Text.Encoding.UTF8.GetString(stream.ToArray());
    }
}
