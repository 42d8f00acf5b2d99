using System.Buffers.Binary;
using System.Diagnostics;
using System.Text;
using System.Text.RegularExpressions;
using LongDep.Core.Corpus;
using LongDep.Core.Corpus.Mds;
using LongDep.Core.Records;

namespace LongDep.Core.Tests.Mds;

/// <summary>
/// Hostile MDS datasets: truncated files, flipped bytes, lying offsets, sizes and counts. Every read must end, fast,
/// with the records or with one <see cref="CorpusFormatException"/> of one line; never another exception or a hang.
/// </summary>
public class MdsFuzzTests
{
    private static readonly MdsColumn[] Columns =
        [new("domain", MdsEncoding.Str), new("input_ids", MdsEncoding.NdArrayUInt32), new("length", MdsEncoding.Int32)];

    private static void MakeDataset(string ds, bool hashes, string? compression, int seed)
    {
        var rng = new Random(seed);
        using var w = new MdsWriter(ds, Columns, new MdsWriterOptions { SizeLimit = 900, Compression = compression, Hashes = hashes ? ["sha1"] : [] }, overwrite: true);
        for (int i = 0; i < 24; i++)
        {
            int n = rng.Next(1, 60);
            w.BeginSample();
            w.WriteString(i % 2 == 0 ? "a" : "bb");
            w.WriteIntArray(Enumerable.Range(0, n).Select(_ => rng.Next(0, 70000)).ToArray());
            w.WriteInteger(n);
            w.EndSample();
        }
        w.Finish();
    }

    private enum Mutation { Truncate, FlipBytes, LyingOffset, LyingSize, LyingIndexNumber }

    private static void Mutate(string ds, Mutation m, Random rng)
    {
        string[] shards = Directory.GetFiles(ds, "shard.*");
        string index = Path.Combine(ds, "index.json");
        switch (m)
        {
            case Mutation.Truncate:
            {
                string f = rng.Next(4) == 0 ? index : shards[rng.Next(shards.Length)];
                byte[] b = File.ReadAllBytes(f);
                File.WriteAllBytes(f, b[..rng.Next(b.Length)]);
                break;
            }
            case Mutation.FlipBytes:
            {
                string f = rng.Next(4) == 0 ? index : shards[rng.Next(shards.Length)];
                byte[] b = File.ReadAllBytes(f);
                for (int k = rng.Next(1, 4); k > 0; k--) b[rng.Next(b.Length)] ^= (byte)(1 << rng.Next(8));
                File.WriteAllBytes(f, b);
                break;
            }
            case Mutation.LyingOffset:
                EditShard(ds, shards[rng.Next(shards.Length)], b =>
                {
                int n = (int)BinaryPrimitives.ReadUInt32LittleEndian(b);
                int slot = rng.Next(n + 2); // slot 0 is the count itself
                uint value = rng.Next(3) switch { 0 => (uint)rng.Next(), 1 => BinaryPrimitives.ReadUInt32LittleEndian(b.AsSpan(4 * slot)) + (uint)rng.Next(-9, 10), _ => uint.MaxValue };
                BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(4 * slot), value);
                });
                break;
            case Mutation.LyingSize:
                // A column size inside some sample's header.
                EditShard(ds, shards[rng.Next(shards.Length)], b =>
                {
                    int n = (int)BinaryPrimitives.ReadUInt32LittleEndian(b);
                    int s = rng.Next(n);
                    int start = (int)BinaryPrimitives.ReadUInt32LittleEndian(b.AsSpan(4 + 4 * s));
                    int which = start + 4 * rng.Next(2);
                    BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(which), rng.Next(2) == 0 ? (uint)rng.Next() : BinaryPrimitives.ReadUInt32LittleEndian(b.AsSpan(which)) ^ 1);
                });
                break;
            case Mutation.LyingIndexNumber:
            {
                string text = File.ReadAllText(index);
                MatchCollection numbers = Regex.Matches(text, "\"(bytes|samples)\": ([0-9]+)");
                Match pick = numbers[rng.Next(numbers.Count)];
                long lie = rng.Next(3) switch { 0 => 0, 1 => long.Parse(pick.Groups[2].Value) + rng.Next(-5, 6), _ => 4_000_000_000_000 };
                text = text[..pick.Groups[2].Index] + Math.Max(0, lie) + text[(pick.Groups[2].Index + pick.Groups[2].Length)..];
                File.WriteAllText(index, text);
                break;
            }
        }
    }

    /// <summary>
    /// Edits a shard's uncompressed bytes; a zstd shard is decompressed, edited and compressed again, and its size in
    /// the index follows (its hashes, when there are some, do not: they must catch it).
    /// </summary>
    private static void EditShard(string ds, string file, Action<byte[]> edit)
    {
        bool zstd = file.EndsWith(".zstd", StringComparison.Ordinal);
        byte[] stored = File.ReadAllBytes(file);
        byte[] raw = zstd ? new ZstdSharp.Decompressor().Unwrap(stored).ToArray() : stored;
        edit(raw);
        if (!zstd)
        {
            File.WriteAllBytes(file, raw);
            return;
        }
        byte[] again = new ZstdSharp.Compressor(3).Wrap(raw).ToArray();
        File.WriteAllBytes(file, again);
        string index = Path.Combine(ds, "index.json");
        string name = Path.GetFileName(file);
        File.WriteAllText(index, Regex.Replace(File.ReadAllText(index), $"(\"basename\": \"{Regex.Escape(name)}\", \"bytes\": )[0-9]+", m => m.Groups[1].Value + again.Length));
    }

    [Test]
    public void HostileDatasets_GiveRecordsOrOneLine_NeverACrashOrHang()
    {
        using var dir = new TempDir();
        string ds = dir.File("ds");
        var parser = new RecordParser(RecordFieldOptions.Default with { DomainField = "domain" });
        int failures = 0, reads = 0, cases = 0;
        var clock = Stopwatch.StartNew();
        foreach (var (hashes, compression) in new[] { (false, (string?)null), (true, null), (false, "zstd"), (true, "zstd") })
        {
            string pristine = dir.File($"pristine-{hashes}-{compression}");
            MakeDataset(pristine, hashes, compression, hashes ? 1 : 2);
            for (int round = 0; round < 40; round++)
            {
                int seed = round * 7 + (hashes ? 1 : 0) + (compression is null ? 0 : 2);
                var rng = new Random(seed);
                if (Directory.Exists(ds)) Directory.Delete(ds, recursive: true);
                Directory.CreateDirectory(ds);
                foreach (string f in Directory.GetFiles(pristine)) File.Copy(f, Path.Combine(ds, Path.GetFileName(f)));
                var mutation = (Mutation)(round % 5);
                Mutate(ds, mutation, rng);
                cases++;
                var run = Task.Run(() =>
                {
                    try
                    {
                        foreach (RawRecord raw in CorpusReader.Open(ds)) parser.Parse(raw);
                        // The token path pack uses, straight from the shards.
                        MdsDataset d = MdsDataset.Open(ds);
                        foreach (MdsShard shard in d.ReadShards())
                        {
                            int ids = shard.Info.ColumnIndex("input_ids");
                            if (ids < 0) continue; // a flipped column name
                            for (int i = 0; i < shard.Count; i++)
                            {
                                ReadOnlySpan<byte> v = shard.Column(i, ids);
                                if (MdsValue.TryReadArray(v, shard.Info.Columns[ids].Encoding, out MdsArray a) is null)
                                    MdsValue.TryReadTokens(v, a, new int[a.Count]);
                            }
                        }
                        return (string?)null;
                    }
                    catch (CorpusFormatException e)
                    {
                        return e.Message;
                    }
                });
                Assert.That(run.Wait(TimeSpan.FromSeconds(20)), Is.True, $"{mutation} (seed {seed}) did not finish");
                if (run.IsFaulted)
                    Assert.Fail($"{mutation} (seed {seed}, hashes {hashes}, {compression ?? "raw"}) threw {run.Exception!.InnerException}");
                if (run.Result is { } message)
                {
                    failures++;
                    Assert.That(message, Does.Not.Contain("\n"), $"{mutation} (seed {seed})");
                    Assert.That(message, Does.Contain("index.json").Or.Contain("shard"), $"{mutation} (seed {seed}): {message}");
                }
                else reads++;
            }
        }
        TestContext.Out.WriteLine($"{cases} hostile datasets: {failures} refused with one line, {reads} read whole, {clock.Elapsed.TotalSeconds:F1} s");
        Assert.That(failures, Is.GreaterThan(cases / 2), "most mutations are caught");
    }
}
