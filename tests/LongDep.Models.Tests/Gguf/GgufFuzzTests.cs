using NUnit.Framework;
using System.Buffers.Binary;
using System.Diagnostics;
using LongDep.Models.Gguf;

namespace LongDep.Models.Tests.Gguf;

/// <summary>
/// Mutates a small valid file thousands of times (fixed seed, so failures reproduce): opening it and reading every
/// tensor must either work or throw ModelFormatException; any other exception is a bug.
/// </summary>
public class GgufFuzzTests
{
    private static readonly ulong[] Absurd =
    [
        ulong.MaxValue, ulong.MaxValue - 1, long.MaxValue, 1UL << 63, 1UL << 62, 1UL << 40, 1UL << 32,
        uint.MaxValue, int.MaxValue, (ulong)int.MaxValue + 1, 0x7FFFFFFF_FFFFFFE0, 0, 1, 5, 13, 64, 1000,
    ];

    private static byte[] ValidFile(string path)
    {
        var rng = new Random(3);
        var w = new GgufWriter(3, 32);
        w.Add("general.architecture", "llama");
        w.Add("llama.block_count", 2u);
        w.Add("llama.rope.freq_base", 10000f);
        w.Add("tokenizer.ggml.tokens", new[] { "<unk>", "<s>", "</s>", "▁a", "b" });
        w.Add("tokenizer.ggml.scores", new[] { 0f, -1f, -2f, -3.5f, -4f });
        w.Add("tokenizer.ggml.token_type", new[] { 2, 3, 3, 1, 1 });
        w.Add("flags", new[] { true, false });
        w.Add("nested", new GgufArray(GgufValueType.Array, new[] { new GgufArray(GgufValueType.UInt8, new byte[] { 1, 2, 3 }) }));
        w.AddTensor("token_embd.weight", Enumerable.Range(0, 5 * 8).Select(i => i * 0.25f).ToArray(), [5, 8]);
        w.AddTensor("output_norm.weight", Enumerable.Range(0, 32).Select(i => 1f + i / 64f).ToArray(), [32], Models.TensorType.F16);
        var q8 = new byte[2 * 34];
        rng.NextBytes(q8);
        Bits.PutU16(q8, 0, Bits.Half(0.5f));
        Bits.PutU16(q8, 34, Bits.Half(-0.125f));
        w.AddTensorRaw("blk.0.attn_q.weight", Models.TensorType.Q8_0, [2, 32], q8);
        w.AddTensor("blk.0.attn_norm.weight", Enumerable.Range(0, 16).Select(i => (float)i).ToArray(), [2, 8], Models.TensorType.BF16);
        w.Write(path);
        return File.ReadAllBytes(path);
    }

    [Test]
    public void MutatedFiles_OpenOrFailWithModelFormatException()
    {
        using var dir = new TempDir();
        var original = ValidFile(dir.Combine("valid.gguf"));
        long headerEnd;
        using (var f = GgufFile.Open(dir.Combine("valid.gguf")))
        {
            Assert.That(f.Tensors, Has.Count.EqualTo(4));
            headerEnd = f.DataStart;
        }

        var rng = new Random(20240531);
        var path = dir.Combine("fuzz.gguf");
        int opened = 0, refused = 0;
        var clock = Stopwatch.StartNew();
        for (int iter = 0; iter < 3000; iter++)
        {
            var bytes = (byte[])original.Clone();
            int mutations = 1 + rng.Next(3);
            string log = "";
            for (int m = 0; m < mutations; m++)
            {
                // Most mutations hit the header, where the parsing happens; some hit anywhere.
                int limit = rng.Next(5) == 0 ? bytes.Length : (int)Math.Min(headerEnd, bytes.Length);
                if (limit == 0) break;
                switch (rng.Next(3))
                {
                    case 0: // flip bits in a few random bytes
                        for (int k = 1 + rng.Next(4); k > 0; k--)
                        {
                            int at = rng.Next(limit);
                            bytes[at] ^= (byte)(1 + rng.Next(255));
                            log += $" flip@{at}";
                        }
                        break;
                    case 1: // truncate
                        {
                            int length = rng.Next(bytes.Length);
                            bytes = bytes[..length];
                            log += $" cut@{length}";
                            break;
                        }
                    default: // an absurd 8-byte value (also at odd offsets, straddling fields)
                        {
                            if (bytes.Length < 8) break;
                            int at = rng.Next(Math.Max(1, Math.Min(limit, bytes.Length - 8)));
                            ulong value = Absurd[rng.Next(Absurd.Length)];
                            BinaryPrimitives.WriteUInt64LittleEndian(bytes.AsSpan(at, 8), value);
                            log += $" put@{at}={value}";
                            break;
                        }
                }
            }

            File.WriteAllBytes(path, bytes);
            try
            {
                using var f = GgufFile.Open(path);
                foreach (var t in f.TensorList)
                {
                    try
                    {
                        f.ReadF32(t.Name);
                    }
                    catch (ModelFormatException) when (t.Type == Models.TensorType.Other)
                    {
                        // a mutated type id naming a type we do not dequantize
                    }
                    f.RawBytes(t.Name);
                }
                _ = f.GetString("general.architecture");
                opened++;
            }
            catch (ModelFormatException)
            {
                refused++;
            }
            catch (Exception e)
            {
                Assert.Fail($"iteration {iter} ({log.Trim()}): {e.GetType().Name}: {e.Message}\n{e.StackTrace}");
            }
        }
        TestContext.Out.WriteLine($"fuzz: {opened} opened, {refused} refused, {clock.ElapsedMilliseconds} ms");
        Assert.That(opened, Is.GreaterThan(100), "some mutations (e.g. in tensor data) leave a readable file");
        Assert.That(refused, Is.GreaterThan(1000), "most header mutations are caught");
    }
}
