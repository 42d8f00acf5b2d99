using System.Buffers.Binary;
using System.Globalization;
using System.Text;
using System.Text.Json;
using LongDep.Core.Corpus;
using LongDep.Core.Probes;
using LongDep.Core.Scoring;

namespace LongDep.Cli.Bench;

/// <summary>One benchmark sample: its index (the ProLong draws' key), an id and its token ids.</summary>
public sealed record BenchSample(long Index, string Id, int[] Tokens)
{
    /// <summary>FNV-1a 64 of the ids (see <see cref="BenchSamples.Hash"/>): tells two runs they saw the same sample.</summary>
    public string Hash { get; } = BenchSamples.Hash(Tokens);
}

/// <summary>The ProLong draw of one exported sample, as the baseline reads it.</summary>
/// <param name="Window">W.</param>
/// <param name="Chunk">l.</param>
/// <param name="ChunkCountN">N = W / l (DDI's denominator is N − 1).</param>
/// <param name="PairsRequested">P, or −1 for all pairs.</param>
/// <param name="Seed">The draws' seed.</param>
/// <param name="ChunkStarts">Token offset of each kept chunk, in document order.</param>
/// <param name="Pairs">The drawn pairs (indices into the kept chunks), sorted by i then j.</param>
public sealed record ExportedPlan(int Window, int Chunk, int ChunkCountN, int PairsRequested, long Seed, int[] ChunkStarts, ChunkPair[] Pairs);

/// <summary>A sample as read back from a <c>--write-samples</c> file.</summary>
public sealed record ExportedSample(BenchSample Sample, string Hash, ExportedPlan ProLong);

/// <summary>
/// The samples of <c>longdep bench</c>: made up (varied synthetic token streams), read from a corpus, and exported
/// with their ProLong draws so that a baseline scores exactly the same chunks and pairs. The export is JSON lines, one
/// sample a line, each also a valid <c>longdep score</c> record (it has <c>input_ids</c>).
/// </summary>
public static class BenchSamples
{
    /// <summary>
    /// FNV-1a 64 over the ids as little-endian int32 bytes, as 16 lowercase hex digits. The Python baseline computes the
    /// same (bench/baseline/longdep_baseline/formulas.py).
    /// </summary>
    public static string Hash(ReadOnlySpan<int> tokens)
    {
        const ulong offset = 14695981039346656037UL, prime = 1099511628211UL;
        ulong h = offset;
        Span<byte> le = stackalloc byte[4];
        foreach (int t in tokens)
        {
            BinaryPrimitives.WriteInt32LittleEndian(le, t);
            foreach (byte b in le) h = (h ^ b) * prime;
        }
        return h.ToString("x16", CultureInfo.InvariantCulture);
    }

    /// <summary>
    /// <paramref name="count"/> synthetic samples of <paramref name="tokens"/> ids below <paramref name="vocab"/>. They
    /// differ on purpose — alphabet sizes from 32 to the whole vocabulary, segments of 32 to 512 tokens, 0–70% of them
    /// copies of earlier ones — so that scores spread across samples and correlations mean something.
    /// The same (count, tokens, vocab, seed) always gives the same samples.
    /// </summary>
    public static List<BenchSample> Synthetic(int count, int tokens, int vocab, long seed)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        ArgumentOutOfRangeException.ThrowIfNegative(tokens);
        ArgumentOutOfRangeException.ThrowIfLessThan(vocab, 2);
        var result = new List<BenchSample>(count);
        for (int i = 0; i < count; i++)
        {
            var rng = new SampleRng(seed, i);
            // Spread over the samples even when there are few: a golden-ratio sequence with a little jitter.
            double spread = (0.5 + i * 0.6180339887 + rng.Uniform(0, 0.1)) % 1.0;
            int alphabetSize = (int)Math.Clamp(Math.Round(Math.Exp(Math.Log(32) + spread * (Math.Log(vocab) - Math.Log(32)))), 2, vocab);
            var alphabet = new int[alphabetSize];
            for (int k = 0; k < alphabetSize; k++) alphabet[k] = (int)rng.Below((ulong)vocab);
            int segment = 32 << (int)rng.Below(5); // 32 .. 512
            double copyShare = 0.7 * ((i * 0.4142135624 + rng.Uniform(0, 0.1)) % 1.0);
            var ids = new int[tokens];
            for (int start = 0; start < tokens; start += segment)
            {
                int len = Math.Min(segment, tokens - start);
                if (start >= 2 * segment && rng.Uniform(0, 1) < copyShare)
                {
                    int from = (int)rng.Below((ulong)(start - segment + 1)); // any earlier whole segment
                    Array.Copy(ids, from, ids, start, len);
                }
                else
                {
                    for (int k = 0; k < len; k++) ids[start + k] = alphabet[rng.Below((ulong)alphabetSize)];
                }
            }
            result.Add(new BenchSample(i, $"synthetic-{i}", ids));
        }
        return result;
    }

    /// <summary>
    /// Up to <paramref name="count"/> samples from a corpus (SPEC §1 formats): records that are not bad, in input order,
    /// with their input index (so ProLong draws what <c>longdep score</c> would). Text is tokenized by <paramref name="encode"/>.
    /// </summary>
    public static List<BenchSample> FromCorpus(string path, int count, Func<string, int[]> encode, int vocab)
    {
        var result = new List<BenchSample>();
        foreach (var record in CorpusReader.OpenParsed(path))
        {
            if (result.Count >= count) break;
            if (record.IsBad) continue;
            int[] ids = record.InputIds ?? encode(record.Text!);
            foreach (int id in ids)
                if ((uint)id >= (uint)vocab)
                    throw new InvalidDataException($"{path}: record {record.Index} has token {id}, outside the model's vocabulary 0..{vocab - 1}");
            result.Add(new BenchSample(record.Index, record.Id ?? $"record-{record.Index}", ids));
        }
        return result;
    }

    /// <summary>
    /// Writes one JSON line per sample: index, id, tokens, hash, input_ids and the ProLong draw for (W, l, P, seed) —
    /// chunk start offsets and the (i, j) pairs — exactly <see cref="ProLongPlan.Create"/>'s.
    /// </summary>
    public static void Write(string path, IEnumerable<BenchSample> samples, int window, int chunk, int pairs, long seed)
    {
        ArgumentNullException.ThrowIfNull(samples);
        string? dir = Path.GetDirectoryName(Path.GetFullPath(path));
        if (dir is not null) Directory.CreateDirectory(dir);
        using var stream = new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 16);
        var newline = "\n"u8.ToArray();
        foreach (var s in samples)
        {
            var plan = ProLongPlan.Create(s.Tokens, window, chunk, pairs, seed, s.Index);
            using (var w = new Utf8JsonWriter(stream))
            {
                w.WriteStartObject();
                w.WriteNumber("index", s.Index);
                w.WriteString("id", s.Id);
                w.WriteNumber("tokens", s.Tokens.Length);
                w.WriteString("hash", s.Hash);
                w.WriteStartArray("input_ids");
                foreach (int t in s.Tokens) w.WriteNumberValue(t);
                w.WriteEndArray();
                w.WriteStartObject("prolong");
                w.WriteNumber("window", window);
                w.WriteNumber("chunk", chunk);
                w.WriteNumber("chunk_count_n", plan.ChunkCountN);
                w.WriteNumber("pairs_requested", pairs);
                w.WriteNumber("seed", seed);
                w.WriteNumber("total_chunks", plan.TotalChunks);
                w.WriteStartArray("chunk_starts");
                foreach (int c in plan.ChunkStarts) w.WriteNumberValue(c);
                w.WriteEndArray();
                w.WriteStartArray("pairs");
                foreach (var p in plan.Pairs)
                {
                    w.WriteStartArray();
                    w.WriteNumberValue(p.I);
                    w.WriteNumberValue(p.J);
                    w.WriteEndArray();
                }
                w.WriteEndArray();
                w.WriteEndObject();
                w.WriteEndObject();
            }
            stream.Write(newline);
        }
    }

    /// <summary>Reads a file written by <see cref="Write"/>; names the line and the field of anything malformed.</summary>
    /// <exception cref="InvalidDataException">The file is not a samples export.</exception>
    public static List<ExportedSample> Read(string path)
    {
        var result = new List<ExportedSample>();
        int lineNumber = 0;
        foreach (string line in File.ReadLines(path, Encoding.UTF8))
        {
            lineNumber++;
            if (string.IsNullOrWhiteSpace(line)) continue;
            string where = $"{path} line {lineNumber}";
            try
            {
                using var doc = JsonDocument.Parse(line);
                result.Add(ParseLine(doc.RootElement, where));
            }
            catch (JsonException e)
            {
                throw new InvalidDataException($"{where}: not JSON ({e.Message})", e);
            }
            catch (Exception e) when (e is InvalidOperationException or FormatException or KeyNotFoundException)
            {
                throw new InvalidDataException($"{where}: {e.Message}", e);
            }
        }
        return result;
    }

    private static ExportedSample ParseLine(JsonElement root, string where)
    {
        JsonElement Need(JsonElement e, string name, JsonValueKind kind)
        {
            if (e.ValueKind != JsonValueKind.Object || !e.TryGetProperty(name, out var v) || v.ValueKind != kind)
                throw new InvalidDataException($"{where}: expected a field '{name}' of type {kind}; is this a file from 'longdep bench --write-samples'?");
            return v;
        }
        long index = Need(root, "index", JsonValueKind.Number).GetInt64();
        string id = Need(root, "id", JsonValueKind.String).GetString()!;
        string hash = Need(root, "hash", JsonValueKind.String).GetString()!;
        var idsElement = Need(root, "input_ids", JsonValueKind.Array);
        var ids = new int[idsElement.GetArrayLength()];
        int k = 0;
        foreach (var v in idsElement.EnumerateArray()) ids[k++] = v.GetInt32();
        var p = Need(root, "prolong", JsonValueKind.Object);
        var startsElement = Need(p, "chunk_starts", JsonValueKind.Array);
        var starts = startsElement.EnumerateArray().Select(v => v.GetInt32()).ToArray();
        var pairs = new List<ChunkPair>();
        foreach (var pair in Need(p, "pairs", JsonValueKind.Array).EnumerateArray())
        {
            if (pair.ValueKind != JsonValueKind.Array || pair.GetArrayLength() != 2)
                throw new InvalidDataException($"{where}: a ProLong pair must be [i, j]");
            pairs.Add(new ChunkPair(pair[0].GetInt32(), pair[1].GetInt32()));
        }
        var plan = new ExportedPlan(Need(p, "window", JsonValueKind.Number).GetInt32(), Need(p, "chunk", JsonValueKind.Number).GetInt32(),
            Need(p, "chunk_count_n", JsonValueKind.Number).GetInt32(), Need(p, "pairs_requested", JsonValueKind.Number).GetInt32(),
            Need(p, "seed", JsonValueKind.Number).GetInt64(), starts, pairs.ToArray());
        var sample = new BenchSample(index, id, ids);
        if (sample.Hash != hash)
            throw new InvalidDataException($"{where}: the ids hash to {sample.Hash} but the line says {hash} (the file was altered)");
        return new ExportedSample(sample, hash, plan);
    }

    /// <summary>SplitMix64 keyed by (seed, sample): the synthetic samples' own generator.</summary>
    private struct SampleRng(long seed, long sample)
    {
        private ulong state = Mix((ulong)seed * 0x9E3779B97F4A7C15UL ^ Mix((ulong)sample + 0x53414D50UL)); // "SAMP"

        private ulong Next()
        {
            state += 0x9E3779B97F4A7C15UL;
            return Mix(state);
        }

        /// <summary>Uniform in [0, n) (n ≥ 1; the modulo bias is below 2^-40 for the sizes used here).</summary>
        public ulong Below(ulong n) => Next() % n;

        /// <summary>Uniform in [lo, hi).</summary>
        public double Uniform(double lo, double hi) => lo + (hi - lo) * ((Next() >> 11) * (1.0 / (1UL << 53)));

        private static ulong Mix(ulong z)
        {
            z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
            z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
            return z ^ (z >> 31);
        }
    }
}
