using LongDep.Core.Probes;

namespace LongDep.Cuda.Tests;

/// <summary>The key-tile mask of PFS pass 2: which 16-key tiles a span's windows read.</summary>
public class PfsKeyTilesTests
{
    [Test]
    public void OneWindow_MarksTheTilesItTouches_AndNoOther()
    {
        // span [600, 728) at interval 512: window [88, 216) = tiles 5 (keys 80..95) to 13 (keys 208..223)
        var mask = PfsKeyTiles.Build([new LadmSpan(600, 728, [512])], T: 1000);
        Assert.That(PfsKeyTiles.WordsPerSpan(1000), Is.EqualTo(2)); // 63 tiles
        Assert.That(mask, Is.EqualTo(new uint[] { 0b11_1111_1110_0000u, 0u }));
        Assert.That(PfsKeyTiles.IsMarked(mask, 0, 1000, 79), Is.False);
        Assert.That(PfsKeyTiles.IsMarked(mask, 0, 1000, 80), Is.True);
        Assert.That(PfsKeyTiles.IsMarked(mask, 0, 1000, 223), Is.True);
        Assert.That(PfsKeyTiles.IsMarked(mask, 0, 1000, 224), Is.False);
        Assert.That(PfsKeyTiles.MarkedKeys(mask, 0, 1000, 600), Is.EqualTo(9 * 16));
    }

    [Test]
    public void Spans_HaveTheirOwnRows_AndWindowsAreClippedToTheSample()
    {
        // span 1's second window starts before key 0 and its first ends past T: clipped like pfs_window_sum clips them
        var mask = PfsKeyTiles.Build(nSpans: 2, T: 600, itemSpan: [1, 1, 0], itemLo: [-20, 590, 512], itemHi: [20, 700, 513]);
        int words = PfsKeyTiles.WordsPerSpan(600);
        Assert.That(words, Is.EqualTo(2));
        Assert.That(mask, Has.Length.EqualTo(4));
        Assert.That(mask[0], Is.Zero);
        Assert.That(mask[1], Is.EqualTo(1u)); // span 0: key 512 = tile 32 = word 1, bit 0
        Assert.That(mask[words], Is.EqualTo(0b11u)); // span 1: keys 0..19 = tiles 0, 1
        Assert.That(mask[words + 1], Is.EqualTo(1u << (36 - 32) | 1u << (37 - 32))); // keys 590..599 = tiles 36, 37
    }

    [Test]
    public void EmptyMask_MarksEverything_AndBadItemsAreRejected()
    {
        Assert.That(PfsKeyTiles.IsMarked([], 3, 100, 99), Is.True);
        Assert.That(PfsKeyTiles.MarkedKeys([], 0, 100, 64), Is.EqualTo(64));
        Assert.Throws<ArgumentException>(() => PfsKeyTiles.Build(1, 100, [1], [0], [10]));
        Assert.Throws<ArgumentException>(() => PfsKeyTiles.Build(1, 100, [0, 0], [0], [10]));
        Assert.Throws<ArgumentOutOfRangeException>(() => PfsKeyTiles.WordsPerSpan(0));
    }

    [TestCase(32768, 4, 0.25)]
    [TestCase(32768, 2, 0.5)]
    [TestCase(30001, 4, 0.25)] // windows not aligned to tiles: a window touches 9 tiles
    public void LadmDefaults_LeavePassTwoTheWindowsShareOfTheKeys(int T, int dAfs, double share)
    {
        var schedule = LadmSchedule.Create(T, chunk: 128, dAfs: dAfs, dCds: 4);
        var mask = PfsKeyTiles.Build(schedule.Spans, T);
        double marked = 0, all = 0;
        for (int s = 0; s < schedule.Spans.Count; s++)
        {
            marked += PfsKeyTiles.MarkedKeys(mask, s, T, schedule.Spans[s].Start);
            all += schedule.Spans[s].Start;
        }
        // the windows cover keep..start in steps of one interval; keys below the lowest window are never read
        Assert.That(marked / all, Is.InRange(share * 0.9, share * (T % 16 == 0 ? 1.0 : 9.0 / 8)));
    }
}
