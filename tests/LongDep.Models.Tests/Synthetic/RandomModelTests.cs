using LongDep.Models.Synthetic;
using NUnit.Framework;

namespace LongDep.Models.Tests.Synthetic;

[TestFixture]
public class RandomModelTests
{
    [Test]
    public void Lazy_GivesTheSameValuesAsHeld_ForAnyRange()
    {
        // A vocabulary of 2100 × 64 = 134,400 values: three fill blocks of 2^16, so ranges cross block boundaries.
        var cfg = RandomModel.Shape("tiny", vocabSize: 2100);
        var held = RandomModel.Create(cfg, 17);
        var lazy = RandomModel.Create(cfg, 17, lazy: true);
        Assert.That(held.TokenEmbedding.Float32Array, Is.Not.Null);
        Assert.That(lazy.TokenEmbedding.Float32Array, Is.Null, "nothing is held");
        foreach (var (want, got) in held.Tensors().Zip(lazy.Tensors()))
        {
            Assert.That(got.Name, Is.EqualTo(want.Name));
            Assert.That(got.Data.ToFloat32(), Is.EqualTo(want.Data.ToFloat32()), want.Name);
        }
        var all = held.TokenEmbedding.ToFloat32();
        foreach (var (first, count) in new[] { (65_530L, 20), (0L, 7), (131_070L, 3_330), (70_000L, 1) })
        {
            var part = new float[count];
            lazy.TokenEmbedding.ReadF32(first, part);
            Assert.That(part, Is.EqualTo(all.AsSpan((int)first, count).ToArray()), $"values [{first}, {first + count})");
        }
        Assert.That(RandomModel.Create(cfg, 18, lazy: true).TokenEmbedding.ToFloat32(), Is.Not.EqualTo(all), "another seed");
    }
}
