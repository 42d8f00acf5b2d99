using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using LongDep.Cli.Runtime;
using LongDep.Core.Corpus.Mds;
using LongDep.Core.Packing;
using LongDep.Core.Scoring;
using Spectre.Console;

namespace LongDep.Cli.Bench;

/// <summary>
/// <c>longdep bench pack</c>: the speed of <c>longdep pack</c> from uncompressed MDS. Writes two synthetic raw-data
/// datasets in ProLong's layout (a long source of 64K–512K-token documents and a short one of 100–8K-token documents),
/// then packs them 0.6/0.4 into sequences exactly as the command does, and reports tokens per minute.
/// </summary>
public static class PackBench
{
    public static Command Create()
    {
        var tokens = NumericOption.Whole("--tokens", "tokens in the two input datasets together", 256L << 20, 1L << 16, 1L << 40);
        var seqLen = NumericOption.Whole("--seq-len", "tokens per packed sequence", 65536, 2, 1 << 30);
        var bins = NumericOption.Whole("--bins", "pack's --bins", 1, 1, 1 << 16);
        var compression = new Option<string>("--compression") { Description = "output compression: none, zstd or zstd:LEVEL (the input stays uncompressed)", DefaultValueFactory = _ => "none" };
        var dir = new Option<string?>("--dir") { Description = "scratch folder (default: a new one under the system temp folder, removed after)" };
        var cold = new Option<bool>("--cold") { Description = "drop the page cache before packing (needs root), so the input is read from disk" };
        var seed = NumericOption.Whole("--seed", "seed of the synthetic documents", 1L, long.MinValue, long.MaxValue);
        var json = new Option<string?>("--json") { Description = "write the figures as JSON to this file" };
        var cmd = new Command("pack", "Time longdep pack from uncompressed MDS (synthetic long + short sources, 0.6/0.4): tokens per minute.")
        {
            tokens, seqLen, bins, compression, dir, cold, seed, json,
        };
        cmd.SetAction(r =>
        {
            long total = r.GetValue(tokens);
            int L = r.GetValue(seqLen);
            if (total < 4L * L) throw new CliException($"--tokens {total} must be at least 4 sequences of {L}", ExitCodes.Usage);
            string root = r.GetValue(dir) ?? Directory.CreateTempSubdirectory("longdep-bench-pack-").FullName;
            bool remove = r.GetValue(dir) is null;
            try
            {
                var stderr = Console.Error;
                var make = Stopwatch.StartNew();
                long seedValue = r.GetValue(seed);
                long longTokens = MakeSource(Path.Combine(root, "long"), (long)(total * 0.6), 65_536, 524_288, seedValue, 0);
                long shortTokens = MakeSource(Path.Combine(root, "short"), total - longTokens, 100, 8_192, seedValue, 1);
                stderr.WriteLine($"wrote the inputs ({longTokens:N0} + {shortTokens:N0} tokens) in {make.Elapsed.TotalSeconds:F1} s");
                bool dropped = r.GetValue(cold) && DropPageCache(stderr);
                string comp = r.GetValue(compression)!;
                var options = new PackOptions
                {
                    Sources = [new PackSource("long", Path.Combine(root, "long"), 0.6), new PackSource("short", Path.Combine(root, "short"), 0.4)],
                    SeqLen = L, OutputPath = Path.Combine(root, "packed"), Bos = 128000, Eos = 128001, Bins = r.GetValue(bins), Overwrite = true,
                    Writer = new MdsWriterOptions { Compression = comp == "none" ? null : comp },
                };
                if (options.Validate() is { } bad) throw new CliException(bad, ExitCodes.Usage);
                TimeSpan cpu0 = Process.GetCurrentProcess().TotalProcessorTime;
                PackSummary s = PackRun.Execute(options, new PackTokenizer(null, null));
                double cpu = (Process.GetCurrentProcess().TotalProcessorTime - cpu0).TotalSeconds;
                double readBytes = s.Sources.Sum(x => (double)x.TokensRead) * 4;
                var table = new Table().Border(TableBorder.Rounded).Title("[bold]longdep bench pack[/]");
                table.AddColumn("what");
                table.AddColumn(new TableColumn("value").RightAligned());
                table.AddRow("input", $"uncompressed MDS, {longTokens + shortTokens:N0} tokens ({(longTokens + shortTokens) * 4 / 1048576.0:F0} MiB of ids)");
                table.AddRow("page cache", dropped ? "dropped before packing (cold)" : "warm (inputs just written)");
                table.AddRow("sequences", $"{s.Sequences:N0} × {L:N0} ({Markup.Escape(s.Stopped)})");
                table.AddRow("tokens written", s.Tokens.ToString("N0"));
                table.AddRow("seconds", s.Seconds.ToString("F2"));
                table.AddRow("tokens/minute", $"{s.TokensPerMinute / 1e6:F0} M");
                table.AddRow("CPU seconds", $"{cpu:F2} (all threads; {s.Tokens / Math.Max(cpu, 1e-9) * 60 / 1e6:F0} M tokens per CPU-minute)");
                table.AddRow("read + write", $"{(readBytes + s.Output.FileBytes) / 1048576.0 / s.Seconds:F0} MiB/s");
                table.AddRow("output", $"{s.Output.Shards} shards, {s.Output.FileBytes / 1048576.0:F0} MiB, {Markup.Escape(comp)}");
                table.AddRow("machine", $"{Environment.ProcessorCount} cores");
                AnsiConsole.Write(table);
                if (r.GetValue(json) is { } jsonPath)
                {
                    using var stream = File.Create(jsonPath);
                    using var w = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true });
                    w.WriteStartObject();
                    w.WriteNumber("input_tokens", longTokens + shortTokens);
                    w.WriteBoolean("cold", dropped);
                    w.WriteNumber("seq_len", L);
                    w.WriteNumber("sequences", s.Sequences);
                    w.WriteNumber("tokens", s.Tokens);
                    w.WriteNumber("seconds", s.Seconds);
                    w.WriteNumber("tokens_per_minute", s.TokensPerMinute);
                    w.WriteNumber("cpu_seconds", cpu);
                    w.WriteNumber("cores", Environment.ProcessorCount);
                    w.WriteString("date", DateTime.UtcNow.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture));
                    w.WriteEndObject();
                }
                return ExitCodes.Ok;
            }
            finally
            {
                if (remove)
                {
                    try { Directory.Delete(root, recursive: true); } catch (IOException) { }
                }
            }
        });
        return cmd;
    }

    /// <summary>An uncompressed raw-data dataset (domain, input_ids, length) of documents with log-uniform lengths.</summary>
    private static long MakeSource(string path, long tokens, int minLen, int maxLen, long seed, ulong stream)
    {
        var rng = new DrawRng(seed, 0, stream);
        var ids = new int[maxLen];
        long written = 0;
        string domain = Path.GetFileName(path);
        using var w = new MdsWriter(path, [new("domain", MdsEncoding.Str), new("input_ids", MdsEncoding.NdArrayUInt32), new("length", MdsEncoding.Int32)],
            new MdsWriterOptions(), overwrite: true);
        while (written < tokens)
        {
            double u = (rng.NextUInt64() >> 11) * (1.0 / (1UL << 53));
            int n = (int)Math.Min(tokens - written, Math.Round(minLen * Math.Pow((double)maxLen / minLen, u)));
            n = Math.Max(1, n);
            for (int k = 0; k < n; k++) ids[k] = (int)(rng.NextUInt64() % 128_000);
            w.BeginSample();
            w.WriteString(domain);
            w.WriteIntArray(ids.AsSpan(0, n));
            w.WriteInteger(n);
            w.EndSample();
            written += n;
        }
        w.Finish();
        return written;
    }

    private static bool DropPageCache(TextWriter log)
    {
        try
        {
            Process.Start("sync")?.WaitForExit();
            File.WriteAllText("/proc/sys/vm/drop_caches", "1");
            return true;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or System.ComponentModel.Win32Exception)
        {
            log.WriteLine($"--cold: cannot drop the page cache ({e.Message}); timing with a warm cache");
            return false;
        }
    }
}
