using LongDep.Core.Probes;

namespace LongDep.Cuda.Tests;

/// <summary>The key tiles of PFS pass 2: which 16-key tiles a span's windows read, as a mask and as the kernels' list.</summary>
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
    public void WithinWindow_DropsTheTilesNoRowOfTheSpanSees()
    {
        // span start 600, window 200: its first row sees keys 401.., so tiles whose last key is at most 400 (tiles 0..24,
        // keys 0..399) go; tile 25 (keys 400..415) holds key 401 and stays. Span 1 (start 100) with every tile marked:
        // keys 0..99 seen from key 0 on (100 − 200 < 0), nothing goes.
        var mask = PfsKeyTiles.Build(nSpans: 2, T: 1000, itemSpan: [0, 1], itemLo: [0, 0], itemHi: [600, 100]);
        var within = PfsKeyTiles.WithinWindow(mask, [600, 100], 1000, 200);
        for (int key = 0; key < 600; key++)
            Assert.That(PfsKeyTiles.IsMarked(within, 0, 1000, key), Is.EqualTo(key >= 400), $"span 0 key {key}");
        for (int key = 0; key < 100; key++)
            Assert.That(PfsKeyTiles.IsMarked(within, 1, 1000, key), Is.True, $"span 1 key {key}");
        Assert.That(mask[0], Is.EqualTo(uint.MaxValue), "the mask given is not changed");
        // a window of one key: no row sees a key before the span; only the tile holding each start stays (a tile goes only
        // when all its keys are unseen, and tile 37 = keys 592..607, tile 6 = keys 96..111 hold keys past the start)
        var none = PfsKeyTiles.WithinWindow(mask, [600, 100], 1000, 1);
        var list = PfsKeyTiles.List(none, [600, 100], 1000);
        Assert.That(list.Rows, Is.EqualTo(new[] { 1, 37, 1, 6 }));
        Assert.Throws<ArgumentOutOfRangeException>(() => PfsKeyTiles.WithinWindow(mask, [600, 100], 1000, 0));
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

    [Test]
    public void List_HoldsEachSpansCountThenItsTilesBelowItsStart_InOrder()
    {
        // span 0: tiles 5..13 (one window); span 1 (start 100): tiles 2 and 6 marked, and tile 7 (keys 112..127) past its start
        var mask = PfsKeyTiles.Build(nSpans: 2, T: 1000, itemSpan: [0, 1, 1, 1], itemLo: [88, 32, 96, 112], itemHi: [216, 48, 100, 120]);
        var list = PfsKeyTiles.List(mask, [600, 100], 1000);
        Assert.That(list.MostTiles, Is.EqualTo(9));
        Assert.That(list.Stride, Is.EqualTo(10));
        Assert.That(list.Rows, Is.EqualTo(new[] { 9, 5, 6, 7, 8, 9, 10, 11, 12, 13, 2, 2, 6, 0, 0, 0, 0, 0, 0, 0 }));
        // and back: the listed tiles, tile 7 of span 1 dropped
        var back = PfsKeyTiles.MaskOf(list.Rows, list.Stride, 2, 1000);
        Assert.That(back[0], Is.EqualTo(mask[0]));
        Assert.That(back[2], Is.EqualTo(1u << 2 | 1u << 6));
        Assert.That(mask[2], Is.EqualTo(1u << 2 | 1u << 6 | 1u << 7));
        Assert.Throws<ArgumentException>(() => PfsKeyTiles.MaskOf([5, 1, 2], 3, 1, 1000));   // count past the row
        Assert.Throws<ArgumentException>(() => PfsKeyTiles.MaskOf([1, 63], 2, 1, 1000));     // T = 1000 has tiles 0..62
        Assert.Throws<ArgumentException>(() => PfsKeyTiles.List(mask, [600], 1000));         // two spans' mask, one start
    }

    [Test]
    public void SimulatedPassTwo_RejectsAListThatIsNotIncreasingTilesBelowTheStart()
    {
        using var backend = new LongDep.Cuda.Twins.SimulatedBackend();
        var ops = new KernelOps(backend, AttentionKernels.Simple);
        int T = 200, heads = 2, d = 32;
        using var q = backend.Allocate<float>((long)T * heads * d, "q", "");
        using var k = backend.Allocate<float>((long)T * heads * d, "k", "");
        using var start = backend.Allocate<int>(1, "start", "");
        using var end = backend.Allocate<int>(1, "end", "");
        using var stats = backend.Allocate<float>(heads * 16, "stats", "");
        using var col = backend.Allocate<float>(T, "col", "");
        using var list = backend.Allocate<int>(4, "list", "");
        q.Clear(); k.Clear(); stats.Clear();
        start.CopyFrom([150]);
        end.CopyFrom([166]);
        void Run(int[] rows)
        {
            list.CopyFrom(rows);
            ops.PfsColumnMass(q.Pointer, k.Pointer, start.Pointer, end.Pointer, stats.Pointer, stats.Pointer, col.Pointer, list.Pointer, 4,
                3, 1, 16, 150, T, heads, heads, d);
        }
        Assert.DoesNotThrow(() => Run([3, 0, 4, 9]));
        Assert.That(Assert.Throws<InvalidOperationException>(() => Run([3, 4, 0, 9]))!.Message, Does.Contain("not increasing"));
        Assert.That(Assert.Throws<InvalidOperationException>(() => Run([3, 0, 4, 10]))!.Message, Does.Contain("below its start 150"));
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
