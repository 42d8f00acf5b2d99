using NUnit.Framework;
using System.Buffers.Binary;
using System.Text;
using System.Text.RegularExpressions;
using LongDep.Models.HuggingFace;

namespace LongDep.Models.Tests.HuggingFace;

/// <summary>
/// Corrupts small valid checkpoints many times with a fixed seed: opening and reading every tensor must either
/// work or throw <see cref="ModelFormatException"/>; any other exception is a bug.
/// </summary>
public class SafetensorsFuzzTests
{
    private static readonly string[] AbsurdNumbers =
    [
        "-1", "0", "1.5", "1e30", "-9223372036854775808", "9223372036854775807", "9223372036854775808",
        "18446744073709551615", "18446744073709551616", "4294967296", "2147483648", "99999999999999999999999999",
        "1e-400", "3", "8", "65536",
    ];

    private static readonly string[] OtherStrings = ["I8", "F64", "BF16", "F16", "F32", "U64", "XYZ", "", "__metadata__", "a", "model-00001-of-00003.safetensors", "..\\x"];

    private static readonly Regex Number = new(@"-?\d+(\.\d+)?([eE][+-]?\d+)?", RegexOptions.Compiled);
    private static readonly Regex QuotedString = new("\"[^\"]*\"", RegexOptions.Compiled);

    /// <summary>A valid single-file checkpoint with every dtype class we handle, plus an I8 tensor and metadata.</summary>
    private static byte[] BaseSingleFile()
    {
        using var dir = new TempDir();
        var rng = new Random(1);
        SafetensorsWriter.Write(dir.Path, [("w", TestModels.Random(rng, 12), [3, 4]), ("b", TestModels.Random(rng, 5), [5])],
            TensorType.F16, metadata: new Dictionary<string, string> { ["note"] = "fuzz" });
        // Append an F32, a BF16 and an I8 tensor by hand so one file holds several dtypes.
        var file = File.ReadAllBytes(dir.File("model.safetensors"));
        long n = (long)BinaryPrimitives.ReadUInt64LittleEndian(file);
        string header = Encoding.UTF8.GetString(file, 8, (int)n).TrimEnd();
        var data = file.AsSpan(8 + (int)n).ToArray().ToList();
        int at = data.Count;
        header = header[..^1]
            + $",\"f\":{{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[{at},{at + 16}]}}"
            + $",\"h\":{{\"dtype\":\"BF16\",\"shape\":[3],\"data_offsets\":[{at + 16},{at + 22}]}}"
            + $",\"q\":{{\"dtype\":\"I8\",\"shape\":[2],\"data_offsets\":[{at + 22},{at + 24}]}}}}";
        for (int i = 0; i < 24; i++) data.Add((byte)(i * 13 + 5));
        return Assemble(header, data.ToArray());
    }

    private static byte[] Assemble(string header, byte[] data, ulong? length = null)
    {
        var h = Encoding.UTF8.GetBytes(header);
        var file = new byte[8 + h.Length + data.Length];
        BinaryPrimitives.WriteUInt64LittleEndian(file, length ?? (ulong)h.Length);
        h.CopyTo(file, 8);
        data.CopyTo(file, 8 + h.Length);
        return file;
    }

    /// <summary>Splits a safetensors file into header text and data, or null when its length prefix is already unusable.</summary>
    private static (string Header, byte[] Data)? Split(byte[] file)
    {
        if (file.Length < 8) return null;
        ulong n = BinaryPrimitives.ReadUInt64LittleEndian(file);
        if (n > (ulong)(file.Length - 8)) return null;
        return (Encoding.UTF8.GetString(file, 8, (int)n), file.AsSpan(8 + (int)n).ToArray());
    }

    private static string ReplaceOne(Regex re, string text, Random rng, Func<string> replacement)
    {
        var matches = re.Matches(text);
        if (matches.Count == 0) return text;
        var m = matches[rng.Next(matches.Count)];
        return text[..m.Index] + replacement() + text[(m.Index + m.Length)..];
    }

    /// <summary>One random corruption of a safetensors file (or of JSON text when <paramref name="isJson"/>).</summary>
    private static byte[] Corrupt(byte[] original, bool isJson, Random rng, out string what)
    {
        var file = (byte[])original.Clone();
        int op = rng.Next(isJson ? 6 : 9);
        switch (op)
        {
            case 0:
            {
                int flips = rng.Next(1, 5);
                for (int i = 0; i < flips; i++) file[rng.Next(file.Length)] ^= (byte)rng.Next(1, 256);
                what = $"flip {flips} bytes";
                return file;
            }
            case 1:
            {
                int len = rng.Next(file.Length);
                what = $"truncate to {len}";
                return file[..len];
            }
            case 2 when isJson:
            {
                string text = Encoding.UTF8.GetString(file);
                what = "replace a number";
                return Encoding.UTF8.GetBytes(ReplaceOne(Number, text, rng, () => AbsurdNumbers[rng.Next(AbsurdNumbers.Length)]));
            }
            case 3 when isJson:
            {
                string text = Encoding.UTF8.GetString(file);
                what = "replace a string";
                return Encoding.UTF8.GetBytes(ReplaceOne(QuotedString, text, rng, () => $"\"{OtherStrings[rng.Next(OtherStrings.Length)]}\""));
            }
            case 4 when isJson:
            {
                string text = Encoding.UTF8.GetString(file);
                int start = rng.Next(text.Length);
                int len = rng.Next(1, Math.Min(12, text.Length - start) + 1);
                what = $"delete {len} chars at {start}";
                return Encoding.UTF8.GetBytes(text.Remove(start, len));
            }
            case 5 when isJson:
            {
                what = "flip one byte";
                file[rng.Next(file.Length)] ^= (byte)(1 << rng.Next(8));
                return file;
            }
            case 2:
            {
                // Flip bytes inside the header JSON only.
                ulong n = BinaryPrimitives.ReadUInt64LittleEndian(file);
                int flips = rng.Next(1, 4);
                for (int i = 0; i < flips; i++) file[8 + rng.Next((int)n)] ^= (byte)rng.Next(1, 256);
                what = $"flip {flips} header bytes";
                return file;
            }
            case 3:
            {
                ulong actual = BinaryPrimitives.ReadUInt64LittleEndian(file);
                ulong v = rng.Next(3) switch
                {
                    0 => (ulong)rng.NextInt64() * 2 + (ulong)rng.Next(2),
                    1 => (ulong)rng.Next(file.Length + 100),
                    _ => actual + (ulong)rng.Next(-16, 17),
                };
                BinaryPrimitives.WriteUInt64LittleEndian(file, v);
                what = $"header length {v}";
                return file;
            }
            default:
            {
                var parts = Split(file)!.Value;
                string header = parts.Header;
                switch (op)
                {
                    case 4:
                        header = ReplaceOne(Number, header, rng, () => AbsurdNumbers[rng.Next(AbsurdNumbers.Length)]);
                        what = "header number";
                        break;
                    case 5:
                        header = ReplaceOne(QuotedString, header, rng, () => $"\"{OtherStrings[rng.Next(OtherStrings.Length)]}\"");
                        what = "header string";
                        break;
                    case 6:
                    {
                        int start = rng.Next(header.Length);
                        int len = rng.Next(1, Math.Min(10, header.Length - start) + 1);
                        header = header.Remove(start, len);
                        what = "header deletion";
                        break;
                    }
                    case 7:
                    {
                        // Data bytes only: the file stays valid, values change.
                        var data = parts.Data;
                        if (data.Length > 0) data[rng.Next(data.Length)] ^= 0xFF;
                        what = "data byte";
                        return Assemble(header, data);
                    }
                    default:
                    {
                        var data = parts.Data.Concat(Enumerable.Range(0, rng.Next(1, 40)).Select(_ => (byte)rng.Next(256))).ToArray();
                        what = "trailing bytes";
                        return Assemble(header, data);
                    }
                }
                return Assemble(header, parts.Data);
            }
        }
    }

    /// <summary>Opens and reads everything; returns true when it worked, false on <see cref="ModelFormatException"/>.</summary>
    private static bool OpenAndReadAll(string folder)
    {
        try
        {
            using var ck = SafetensorsCheckpoint.Open(folder);
            foreach (var (name, info) in ck.Tensors)
            {
                try
                {
                    var v = ck.ReadF32(name);
                    if (v.LongLength != info.ElementCount) throw new InvalidOperationException($"'{name}' read {v.Length} values, expected {info.ElementCount}");
                }
                catch (ModelFormatException) when (info.Type == TensorType.Other)
                {
                    // Expected: not a float type.
                }
            }
            return true;
        }
        catch (ModelFormatException)
        {
            return false;
        }
    }

    [Test]
    public void CorruptedSingleFileOpensOrFailsCleanly()
    {
        var original = BaseSingleFile();
        var rng = new Random(20240917);
        using var dir = new TempDir();
        string path = dir.File("model.safetensors");
        File.WriteAllBytes(path, original);
        Assert.That(OpenAndReadAll(dir.Path), Is.True, "the uncorrupted base file opens");

        int ok = 0, rejected = 0;
        for (int iter = 0; iter < 2000; iter++)
        {
            var bad = Corrupt(original, isJson: false, rng, out string what);
            File.WriteAllBytes(path, bad);
            try
            {
                if (OpenAndReadAll(dir.Path)) ok++; else rejected++;
            }
            catch (Exception e)
            {
                Assert.Fail($"iteration {iter} ({what}): {e.GetType().Name}: {e.Message}\n{e.StackTrace}");
            }
        }
        TestContext.Out.WriteLine($"single file: {ok} opened, {rejected} rejected");
        Assert.That(rejected, Is.GreaterThan(1000), "most corruptions are caught");
        Assert.That(ok, Is.GreaterThan(50), "benign corruptions (data bytes, trailing bytes) still open");
    }

    [Test]
    public void CorruptedShardedCheckpointOpensOrFailsCleanly()
    {
        using var dir = new TempDir();
        var rng = new Random(7);
        SafetensorsWriter.Write(dir.Path,
            [("a", TestModels.Random(rng, 6), [2, 3]), ("b", TestModels.Random(rng, 4), [4]), ("c", TestModels.Random(rng, 8), [2, 2, 2])],
            TensorType.BF16, maxShardBytes: 12);
        var files = Directory.GetFiles(dir.Path).Order(StringComparer.Ordinal).ToArray();
        Assert.That(files, Has.Length.EqualTo(4), "three shards and an index");
        var originals = files.ToDictionary(f => f, File.ReadAllBytes);
        Assert.That(OpenAndReadAll(dir.Path), Is.True);

        int ok = 0, rejected = 0;
        for (int iter = 0; iter < 1000; iter++)
        {
            string victim = files[rng.Next(files.Length)];
            bool isJson = victim.EndsWith(".json", StringComparison.Ordinal);
            var bad = Corrupt(originals[victim], isJson, rng, out string what);
            File.WriteAllBytes(victim, bad);
            try
            {
                if (OpenAndReadAll(dir.Path)) ok++; else rejected++;
            }
            catch (Exception e)
            {
                Assert.Fail($"iteration {iter} ({Path.GetFileName(victim)}: {what}): {e.GetType().Name}: {e.Message}\n{e.StackTrace}");
            }
            File.WriteAllBytes(victim, originals[victim]);
        }
        TestContext.Out.WriteLine($"sharded: {ok} opened, {rejected} rejected");
        Assert.That(rejected, Is.GreaterThan(400));
        Assert.That(ok, Is.GreaterThan(20));
    }
}
