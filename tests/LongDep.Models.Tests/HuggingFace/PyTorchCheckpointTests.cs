using NUnit.Framework;
using System.Diagnostics;
using System.Text.Json;
using LongDep.Models.HuggingFace;

namespace LongDep.Models.Tests.HuggingFace;

public class PyTorchCheckpointTests
{
    private static string Fixture(params string[] parts) =>
        Path.Combine([TestContext.CurrentContext.TestDirectory, "HuggingFace", "TorchFixtures", .. parts]);

    private static TorchStorageType T(string cls) => TorchStorageType.Known[cls];

    /// <summary>float16 and bfloat16 rounding done here, independently of the reader: Half's cast, and bf16 as the top 16 bits after round-to-nearest-even.</summary>
    private static float AsF16(float x) => (float)(Half)x;

    private static float AsBf16(float x)
    {
        uint b = BitConverter.SingleToUInt32Bits(x);
        b += 0x7FFF + ((b >> 16) & 1);
        return BitConverter.UInt32BitsToSingle(b & 0xFFFF0000);
    }

    [TestCase(TensorType.F32)]
    [TestCase(TensorType.F16)]
    [TestCase(TensorType.BF16)]
    public void WrittenFileReadsBackWithTheDtypesRounding(TensorType dtype)
    {
        using var dir = new TempDir();
        var rng = new Random(3);
        var a = TestModels.Random(rng, 12);
        var b = TestModels.Random(rng, 5);
        PyTorchWriter.Write(dir.Path, [("a", a, [3, 4]), ("b", b, [5])], dtype);
        Assert.That(File.Exists(dir.File("pytorch_model.bin")));
        Func<float, float> round = dtype switch { TensorType.F16 => AsF16, TensorType.BF16 => AsBf16, _ => x => x };

        using var ck = PyTorchCheckpoint.Open(dir.Path);
        Assert.That(ck.Tensors.Keys, Is.EquivalentTo(new[] { "a", "b" }));
        Assert.That(ck.Tensors["a"].Shape, Is.EqualTo(new long[] { 3, 4 }));
        Assert.That(ck.Tensors["a"].Type, Is.EqualTo(dtype));
        Assert.That(ck.Tensors["a"].ByteSize, Is.EqualTo(12 * (dtype == TensorType.F32 ? 4 : 2)));
        Assert.That(ck.ReadF32("a"), Is.EqualTo(a.Select(round).ToArray()));
        Assert.That(ck.ReadF32("b"), Is.EqualTo(b.Select(round).ToArray()));
    }

    [Test]
    public void ViewsIntoSharedStoragesReadAsTheirElements()
    {
        // Storage 0: 0..19 as a 4×5 matrix; storage 1: 10 f16 values. Expected elements computed by index here.
        using var dir = new TempDir();
        var s0 = Enumerable.Range(0, 20).Select(i => (float)i).ToArray();
        var s1 = Enumerable.Range(0, 10).Select(i => i * 0.5f - 2).ToArray();
        var views = new List<PyTorchWriter.TorchView>
        {
            new("whole", 0, 0, [4, 5], [5, 1]),
            new("tied", 0, 0, [4, 5], [5, 1]),
            new("slice", 0, 6, [2, 3], [5, 1]),       // rows 1..2, columns 1..3
            new("transposed", 0, 0, [5, 4], [1, 5]),
            new("expanded", 1, 2, [3, 4], [0, 1]),    // one row repeated
            new("step", 1, 1, [3], [3]),
            new("scalar", 1, 9, [], []),
            new("empty", 1, 0, [0, 7], [7, 1]),
            new("tail", 0, 15, [5], [1]),
        };
        string path = dir.File("x.bin");
        PyTorchWriter.WriteArchive(path, "x", views, [(s0, T("FloatStorage")), (s1, T("HalfStorage"))]);

        float At(float[] s, long offset, long[] shape, long[] stride, int flat)
        {
            long at = offset;
            for (int d = shape.Length - 1; d >= 0; d--)
            {
                at += flat % shape[d] * stride[d];
                flat /= (int)shape[d];
            }
            return s[at];
        }

        using var ck = PyTorchCheckpoint.OpenFile(path);
        foreach (var v in views)
        {
            var storage = v.Storage == 0 ? s0 : s1;
            long count = v.Shape.Aggregate(1L, (x, y) => x * y);
            var expected = Enumerable.Range(0, (int)count).Select(k => At(storage, v.Offset, v.Shape, v.Stride, k)).ToArray();
            Assert.That(ck.Tensors[v.Name].Shape, Is.EqualTo(v.Shape), v.Name);
            Assert.That(ck.ReadF32(v.Name), Is.EqualTo(expected), v.Name);
        }
        Assert.That(ck.ReadF32("slice"), Is.EqualTo(new float[] { 6, 7, 8, 11, 12, 13 }), "a hand-checked slice");
        Assert.That(ck.ReadF32("transposed")[..5], Is.EqualTo(new float[] { 0, 5, 10, 15, 1 }), "a hand-checked transpose");
    }

    [Test]
    public void FilesWrittenByTorchReadAsTorchReadsThem()
    {
        // views.bin was written by torch.save (make_fixtures.py); views.json is what torch.load gives back.
        using var ck = PyTorchCheckpoint.OpenFile(Fixture("views.bin"));
        using var doc = JsonDocument.Parse(File.ReadAllText(Fixture("views.json")));
        int checkedTensors = 0;
        foreach (var p in doc.RootElement.EnumerateObject())
        {
            var shape = p.Value.GetProperty("shape").EnumerateArray().Select(e => e.GetInt64()).ToArray();
            var values = p.Value.GetProperty("values").EnumerateArray().Select(e => (float)e.GetDouble()).ToArray();
            Assert.That(ck.Tensors[p.Name].Shape, Is.EqualTo(shape), p.Name);
            if (p.Name == "long")
            {
                Assert.That(ck.Tensors[p.Name].Type, Is.EqualTo(TensorType.Other));
                Assert.That(ck.Tensors[p.Name].TypeName, Is.EqualTo("I64"));
                var e = Assert.Throws<ModelFormatException>(() => ck.ReadF32("long"));
                Assert.That(e!.Message, Does.Contain("LongStorage").And.Contain(".float()"));
                continue;
            }
            Assert.That(ck.ReadF32(p.Name), Is.EqualTo(values), p.Name);
            checkedTensors++;
        }
        Assert.That(checkedTensors, Is.EqualTo(13));
        Assert.That(ck.Tensors["half"].Type, Is.EqualTo(TensorType.F16));
        Assert.That(ck.Tensors["bf16"].Type, Is.EqualTo(TensorType.BF16));
    }

    [TestCase("module.bin")]
    [TestCase("buffer.bin")]
    public void AModulesStateDictWithMetadataReadsUnderAnyTopFolder(string file)
    {
        // module.bin's records sit under 'module/', buffer.bin's under 'archive/'; both pickles end with BUILD(_metadata).
        using var ck = PyTorchCheckpoint.OpenFile(Fixture(file));
        using var doc = JsonDocument.Parse(File.ReadAllText(Fixture("module.json")));
        Assert.That(ck.Tensors.Keys, Is.EquivalentTo(doc.RootElement.EnumerateObject().Select(p => p.Name)));
        foreach (var p in doc.RootElement.EnumerateObject())
        {
            var values = p.Value.GetProperty("values").EnumerateArray().Select(e => (float)e.GetDouble()).ToArray();
            Assert.That(ck.ReadF32(p.Name), Is.EqualTo(values), p.Name);
        }
    }

    [Test]
    public void TransformersShardedBinAndSafetensorsLoadIdentically()
    {
        // Both folders were written by transformers' save_pretrained from one LlamaForCausalLM.
        string bin = Fixture("llama-bin");
        string st = Fixture("llama-safetensors");
        Assert.That(HuggingFaceModel.IsCheckpointFolder(bin), "a folder with only pytorch_model*.bin is a checkpoint folder");
        Assert.That(HuggingFaceModel.WeightsFormatOf(bin), Is.EqualTo(HfWeightsFormat.PyTorch));
        Assert.That(File.Exists(Path.Combine(bin, "pytorch_model.bin.index.json")));

        using (var a = HuggingFaceModel.OpenWeights(bin))
        using (var b = HuggingFaceModel.OpenWeights(st))
        {
            Assert.That(a, Is.InstanceOf<PyTorchCheckpoint>());
            Assert.That(a.Tensors.Keys, Is.EquivalentTo(b.Tensors.Keys));
            foreach (var name in b.Tensors.Keys)
            {
                Assert.That(a.Tensors[name].Shape, Is.EqualTo(b.Tensors[name].Shape), name);
                Assert.That(a.ReadF32(name), Is.EqualTo(b.ReadF32(name)), name);
            }
        }
        var wb = HuggingFaceModel.Load(bin);
        var ws = HuggingFaceModel.Load(st);
        Assert.That(wb.Config, Is.EqualTo(ws.Config));
        Assert.That(wb.Layers[1].WDown.ToFloat32(), Is.EqualTo(ws.Layers[1].WDown.ToFloat32()));
        Assert.That(wb.Output.ToFloat32(), Is.EqualTo(ws.Output.ToFloat32()));
    }

    [TestCase("llama", false, 0L)]
    [TestCase("qwen2", true, 0L)]
    [TestCase("llama", true, 600L)]
    public void BinAndSafetensorsFormsOfOneModelLoadIdentically(string arch, bool tied, long maxShardBytes)
    {
        using var dirBin = new TempDir();
        using var dirSt = new TempDir();
        var w = TestModels.Weights(TestModels.Config(arch, tied));
        HuggingFaceModel.Save(dirBin.Path, w, TensorType.F16, maxShardBytes, format: HfWeightsFormat.PyTorch);
        HuggingFaceModel.Save(dirSt.Path, w, TensorType.F16, maxShardBytes);
        Assert.That(Directory.GetFiles(dirBin.Path, "*.safetensors"), Is.Empty);
        Assert.That(File.Exists(dirBin.File("pytorch_model.bin.index.json")), Is.EqualTo(maxShardBytes > 0));

        var fromBin = ModelLoader.Load(dirBin.Path);
        var fromSt = ModelLoader.Load(dirSt.Path);
        Assert.That(fromBin.Format, Is.EqualTo(ModelFormat.HuggingFace));
        Assert.That(fromBin.Config, Is.EqualTo(fromSt.Config));
        var (a, b) = (fromBin.Weights, fromSt.Weights);
        Assert.That(a.TokenEmbedding.ToFloat32(), Is.EqualTo(b.TokenEmbedding.ToFloat32()));
        Assert.That(a.Output.ToFloat32(), Is.EqualTo(b.Output.ToFloat32()));
        Assert.That(a.OutputNorm, Is.EqualTo(b.OutputNorm));
        for (int i = 0; i < a.Layers.Length; i++)
        {
            var (x, y) = (a.Layers[i], b.Layers[i]);
            foreach (var (name, u, v) in new (string, WeightMatrix?, WeightMatrix?)[] { ("q", x.Wq, y.Wq), ("k", x.Wk, y.Wk), ("v", x.Wv, y.Wv), ("o", x.Wo, y.Wo),
                         ("gate", x.WGate, y.WGate), ("up", x.WUp, y.WUp), ("down", x.WDown, y.WDown) })
                Assert.That(u!.ToFloat32(), Is.EqualTo(v!.ToFloat32()), $"layer {i} {name}");
            foreach (var (name, u, v) in new[] { ("norm", x.AttnNorm, y.AttnNorm), ("ffn norm", x.FfnNorm, y.FfnNorm), ("q bias", x.Bq, y.Bq), ("k bias", x.Bk, y.Bk) })
                Assert.That(u, Is.EqualTo(v), $"layer {i} {name}");
        }
        Assert.That(a.Layers[0].Wq.ToFloat32(), Is.EqualTo(w.Layers[0].Wq.ToFloat32().Select(AsF16).ToArray()), "and they are the saved weights at f16");

        var desc = ModelLoader.Describe(dirBin.Path);
        Assert.That(desc.Tensors.Select(t => t.Name), Is.EquivalentTo(ModelLoader.Describe(dirSt.Path).Tensors.Select(t => t.Name)));
    }

    [Test]
    public void SafetensorsWinOverBinAndSavingBinRemovesThem()
    {
        using var dir = new TempDir();
        var w = TestModels.Weights(TestModels.Config());
        HuggingFaceModel.Save(dir.Path, w, TensorType.F32);
        Assert.That(HuggingFaceModel.WeightsFormatOf(dir.Path), Is.EqualTo(HfWeightsFormat.Safetensors));
        HuggingFaceModel.Save(dir.Path, w, TensorType.F32, format: HfWeightsFormat.PyTorch);
        Assert.That(File.Exists(dir.File("model.safetensors")), Is.False, "stale safetensors would shadow the new .bin");
        Assert.That(HuggingFaceModel.WeightsFormatOf(dir.Path), Is.EqualTo(HfWeightsFormat.PyTorch));
        HuggingFaceModel.Save(dir.Path, w, TensorType.F32);
        Assert.That(HuggingFaceModel.WeightsFormatOf(dir.Path), Is.EqualTo(HfWeightsFormat.Safetensors), "safetensors first, as transformers");
    }

    [Test]
    public void ShardIndexMustAgreeWithTheShards()
    {
        using var dir = new TempDir();
        var rng = new Random(5);
        PyTorchWriter.Write(dir.Path, [("a", TestModels.Random(rng, 6), [2, 3]), ("b", TestModels.Random(rng, 4), [4])], TensorType.F32, maxShardBytes: 16);
        Assert.That(File.Exists(dir.File("pytorch_model-00001-of-00002.bin")));
        using (var ck = PyTorchCheckpoint.Open(dir.Path)) Assert.That(ck.ReadF32("b"), Has.Length.EqualTo(4));

        string index = dir.File("pytorch_model.bin.index.json");
        string good = File.ReadAllText(index);
        File.WriteAllText(index, good.Replace("\"b\": \"pytorch_model-00002-of-00002.bin\"", "\"b\": \"pytorch_model-00001-of-00002.bin\""));
        var e = Assert.Throws<ModelFormatException>(() => PyTorchCheckpoint.Open(dir.Path).Dispose());
        Assert.That(e!.Message, Does.Contain("weight_map puts tensor 'b'"));

        File.WriteAllText(index, good.Replace("pytorch_model-00002-of-00002.bin", "../elsewhere.bin"));
        e = Assert.Throws<ModelFormatException>(() => PyTorchCheckpoint.Open(dir.Path).Dispose());
        Assert.That(e!.Message, Does.Contain("expected a file name inside the checkpoint folder"));

        File.WriteAllText(index, good.Replace("pytorch_model-00002-of-00002.bin", "pytorch_model-00009-of-00009.bin"));
        e = Assert.Throws<ModelFormatException>(() => PyTorchCheckpoint.Open(dir.Path).Dispose());
        Assert.That(e!.Message, Does.Contain("not in the folder"));
    }

    [Test]
    public void ReadsFromSeveralThreadsAgree()
    {
        using var dir = new TempDir();
        var rng = new Random(9);
        var tensors = Enumerable.Range(0, 8).Select(i => ($"t{i}", TestModels.Random(rng, 5000), new long[] { 50, 100 })).ToList();
        PyTorchWriter.Write(dir.Path, tensors, TensorType.F16);
        using var ck = PyTorchCheckpoint.Open(dir.Path);
        var expected = tensors.ToDictionary(t => t.Item1, t => ck.ReadF32(t.Item1));
        Parallel.For(0, 64, k =>
        {
            string name = $"t{k % 8}";
            Assert.That(ck.ReadF32(name), Is.EqualTo(expected[name]));
        });
    }

    /// <summary>Our writer's files are read by torch itself (when Debian's python3-torch is installed).</summary>
    [Test]
    public void TorchLoadsWhatTheWriterWrites()
    {
        const string python = "/usr/bin/python3";
        const string noTorch = "python3-torch is not installed (apt-get install python3-torch); the check that torch.load reads our .bin files is skipped";
        if (!File.Exists(python)) Assert.Ignore(noTorch);

        using var dir = new TempDir();
        var a = Enumerable.Range(0, 12).Select(i => i * 0.25f - 1).ToArray();
        var views = new List<PyTorchWriter.TorchView>
        {
            new("a", 0, 0, [3, 4], [4, 1]),
            new("a_t", 0, 0, [4, 3], [1, 4]),
            new("slice", 0, 5, [2, 2], [4, 1]),
        };
        string path = dir.File("w.bin");
        PyTorchWriter.WriteArchive(path, "w", views, [(a, T("BFloat16Storage"))]);
        string script = """
            import sys
            try:
                import torch
            except ImportError:
                sys.exit(3)
            sd = torch.load(sys.argv[1])
            same = sd['a'].data_ptr() == sd['a_t'].data_ptr()
            print(list(sd), same, sd['a'].dtype, sd['a_t'].stride(), sd['slice'].float().reshape(-1).tolist())
            """;
        var psi = new ProcessStartInfo(python) { RedirectStandardOutput = true, RedirectStandardError = true };
        psi.ArgumentList.Add("-c");
        psi.ArgumentList.Add(script);
        psi.ArgumentList.Add(path);
        using var p = Process.Start(psi)!;
        string output = p.StandardOutput.ReadToEnd();
        string err = p.StandardError.ReadToEnd();
        p.WaitForExit();
        if (p.ExitCode == 3) Assert.Ignore(noTorch);
        Assert.That(p.ExitCode, Is.EqualTo(0), err);
        Assert.That(output.Trim(), Is.EqualTo("['a', 'a_t', 'slice'] True torch.bfloat16 (1, 4) [0.25, 0.5, 1.25, 1.5]"));
    }
}
