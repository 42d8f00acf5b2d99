using NUnit.Framework;
using LongDep.Models.Gguf;
using LongDep.Models.HuggingFace;
using LongDep.Models.Synthetic;

namespace LongDep.Models.Tests;

/// <summary>The model identity in score files, and the load-time check that the tokenizer fits the embedding.</summary>
public class ModelFingerprintTests
{
    private static string Folder() => Directory.CreateTempSubdirectory("longdep-fingerprint-").FullName;

    [Test]
    public void Gguf_SameBytesSameIdentity_AnyChangedTensorOrSizeAnotherOne()
    {
        string dir = Folder();
        try
        {
            var cfg = RandomModel.Shape("tiny", vocabSize: 300, contextLength: 512);
            var vocab = SyntheticText.Vocabulary(300, SyntheticText.Words(40));
            string a = Path.Combine(dir, "a.gguf"), copy = Path.Combine(dir, "copy.gguf"), b = Path.Combine(dir, "b.gguf");
            GgufModel.Save(a, RandomModel.Create(cfg, 1), TensorType.F32, vocab);
            GgufModel.Save(b, RandomModel.Create(cfg, 2), TensorType.F32, vocab);
            File.Copy(a, copy);
            string id = ModelFingerprint.Compute(a);
            Assert.That(id, Does.Match("^[0-9a-f]{32}$"));
            Assert.That(ModelFingerprint.Compute(copy), Is.EqualTo(id), "a copy (another path) is the same model");
            Assert.That(ModelFingerprint.Compute(b), Is.Not.EqualTo(id), "other weights, same header");

            // One byte of each tensor's first, middle and last 4 KiB is seen; so is the metadata.
            using (var file = GgufFile.Open(a))
            {
                foreach (TensorInfo t in file.TensorList.Where(t => t.ByteSize > 3 * ModelFingerprint.BlockBytes).Take(3))
                {
                    long start = file.DataOffset(t.Name);
                    foreach (long at in new[] { start, start + t.ByteSize / 2, start + t.ByteSize - 1 })
                    {
                        byte[] bytes = File.ReadAllBytes(a);
                        bytes[at] ^= 0x40;
                        File.WriteAllBytes(copy, bytes);
                        Assert.That(ModelFingerprint.Compute(copy), Is.Not.EqualTo(id), $"{t.Name} byte {at - start}");
                    }
                }
            }
            GgufModel.Save(copy, RandomModel.Create(cfg, 1), TensorType.F32, vocab, name: "another name");
            Assert.That(ModelFingerprint.Compute(copy), Is.Not.EqualTo(id), "other metadata");
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }

    [Test]
    public void HuggingFaceFolder_ConfigAndTensorsAreCovered()
    {
        string dir = Folder();
        try
        {
            var cfg = RandomModel.Shape("tiny", vocabSize: 300, contextLength: 512);
            string a = Path.Combine(dir, "a"), b = Path.Combine(dir, "b");
            HuggingFaceModel.Save(a, RandomModel.Create(cfg, 1), TensorType.F32);
            HuggingFaceModel.Save(b, RandomModel.Create(cfg, 1), TensorType.F32);
            string id = ModelFingerprint.Compute(a);
            Assert.That(ModelFingerprint.Compute(b), Is.EqualTo(id), "the same weights written twice");
            string config = File.ReadAllText(Path.Combine(b, "config.json"));
            File.WriteAllText(Path.Combine(b, "config.json"), config + " ");
            Assert.That(ModelFingerprint.Compute(b), Is.Not.EqualTo(id), "config.json is hashed whole");
            HuggingFaceModel.Save(b, RandomModel.Create(cfg, 3), TensorType.F32);
            Assert.That(ModelFingerprint.Compute(b), Is.Not.EqualTo(id), "other weights");
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }

    [Test]
    public void TokenizerPastTheEmbedding_IsRefusedAtLoad_NamingBothSizes()
    {
        string dir = Folder();
        try
        {
            var cfg = RandomModel.Shape("tiny", vocabSize: 300, contextLength: 512);
            string path = Path.Combine(dir, "m.gguf");
            GgufModel.Save(path, RandomModel.Create(cfg, 1), TensorType.F32, SyntheticText.Vocabulary(420, SyntheticText.Words(40)));
            var e = Assert.Throws<ModelFormatException>(() => ModelLoader.Load(path))!;
            Assert.That(e.Message, Does.Contain("420 token ids").And.Contain("300 rows"));

            GgufModel.Save(path, RandomModel.Create(cfg, 1), TensorType.F32, SyntheticText.Vocabulary(300, SyntheticText.Words(40)));
            Assert.That(ModelLoader.Load(path).Tokenizer!.VocabSize, Is.EqualTo(300), "a tokenizer that fits loads");
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }
}
