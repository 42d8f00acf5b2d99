using LongDep.Core.Packing;

namespace LongDep.Core.Tests.Packing;

public class SequencePackerTests
{
    /// <summary>
    /// datatools' scripts/pack.py (SingleBuffer, BFDBuffer, add_special_tokens) written out plainly with lists, as the
    /// Python does it: concatenate, cut at the pack length, keep the rest when long enough.
    /// </summary>
    private sealed class Reference(int packLength, int minLength, int? bos, int? eos, int bins)
    {
        private readonly List<List<int[]>> _buffers = Enumerable.Range(0, bins).Select(_ => new List<int[]>()).ToList();
        public readonly List<(int[] Tokens, (int, int)[] Indices)> Out = [];

        private static int Count(List<int[]> b) => b.Sum(t => t.Length);

        public void Add(int[] doc)
        {
            // datatools would append an empty piece (an (s, s) index pair); the engine skips empty documents.
            if (doc.Length == 0) return;
            var t = new List<int>();
            if (bos is { } b && doc.Length > 0 && doc[0] != b) t.Add(b);
            t.AddRange(doc);
            if (eos is { } e && doc.Length > 0 && doc[^1] != e) t.Add(e);
            int[] tokens = t.ToArray();
            var fits = _buffers.Where(x => packLength - Count(x) >= tokens.Length).ToList();
            List<int[]> buffer = fits.Count > 0
                ? fits.OrderBy(x => packLength - Count(x)).First() // Python's min: the first minimum
                : _buffers.OrderByDescending(x => packLength - Count(x)).First();
            Process(buffer, tokens);
        }

        private void Process(List<int[]> buffer, int[] tokens)
        {
            buffer.Add(tokens);
            while (Count(buffer) >= packLength)
            {
                int[] all = buffer.SelectMany(x => x).ToArray();
                var indices = new List<(int, int)>();
                int start = 0;
                foreach (int[] seq in buffer)
                {
                    indices.Add((start, Math.Min(start + seq.Length, packLength)));
                    start += seq.Length;
                    if (start >= packLength) break;
                }
                Out.Add((all[..packLength], indices.ToArray()));
                buffer.Clear();
                int[] rest = all[packLength..];
                if (rest.Length >= minLength) buffer.Add(rest);
            }
        }
    }

    private static List<(int[] Tokens, (int, int)[] Indices)> Drain(SequencePacker p)
    {
        var list = new List<(int[], (int, int)[])>();
        while (p.Take() is { } s)
            list.Add((s.Tokens, Enumerable.Range(0, s.Pieces).Select(k => (s.Indices[2 * k], s.Indices[2 * k + 1])).ToArray()));
        return list;
    }

    [Test]
    public void HandWorkedExample_SplitsCarriesAndDrops()
    {
        // seq-len 8, BOS 1, EOS 2: A = [1 10 11 12 2] (5), B = [1 20..29 2] (12), C = [1 30 2] (3).
        var p = new SequencePacker(8, bins: 1, minLength: 1, bos: 1, eos: 2);
        p.Add([10, 11, 12]);
        p.Add(Enumerable.Range(20, 10).ToArray());
        p.Add([30]);
        var seqs = Drain(p);
        Assert.Multiple(() =>
        {
            Assert.That(seqs, Has.Count.EqualTo(2));
            Assert.That(seqs[0].Tokens, Is.EqualTo(new[] { 1, 10, 11, 12, 2, 1, 20, 21 }));
            Assert.That(seqs[0].Indices, Is.EqualTo(new[] { (0, 5), (5, 8) }));
            Assert.That(seqs[1].Tokens, Is.EqualTo(new[] { 22, 23, 24, 25, 26, 27, 28, 29 }));
            Assert.That(seqs[1].Indices, Is.EqualTo(new[] { (0, 8) }));
            // B's last token (EOS) and C wait in the open sequence: [2 | 1 30 2].
            Assert.That(p.TokensOpen, Is.EqualTo(4));
            Assert.That(p.DocumentsSplit, Is.EqualTo(1));
            Assert.That(p.TokensIn, Is.EqualTo(20));
            Assert.That(p.SpecialTokensAdded, Is.EqualTo(6));
        });

        // min-length 2: B's one-token tail (its EOS) is dropped.
        var q = new SequencePacker(8, bins: 1, minLength: 2, bos: 1, eos: 2);
        q.Add([10, 11, 12]);
        q.Add(Enumerable.Range(20, 10).ToArray());
        q.Add([30]);
        Assert.That(q.TokensDroppedShort, Is.EqualTo(1));
        Assert.That(q.TokensOpen, Is.EqualTo(3));

        // A document that already starts with BOS and ends with EOS gets neither again; an empty one is skipped.
        var r = new SequencePacker(4, bos: 1, eos: 2);
        r.Add([1, 7, 2]);
        r.Add([]);
        r.Add([8]);
        Assert.That(Drain(r).Single().Tokens, Is.EqualTo(new[] { 1, 7, 2, 1 }));
        Assert.That(r.EmptyDocuments, Is.EqualTo(1));
    }

    [TestCase(1, 1)]
    [TestCase(1, 5)]
    [TestCase(4, 1)]
    [TestCase(7, 3)]
    public void RandomDocuments_PackExactlyAsDatatoolsPacks(int bins, int minLength)
    {
        var rng = new Random(bins * 31 + minLength);
        const int L = 64;
        var packer = new SequencePacker(L, bins, minLength, bos: 1, eos: 2);
        var reference = new Reference(L, minLength, 1, 2, bins);
        var got = new List<(int[] Tokens, (int, int)[] Indices)>();
        for (int d = 0; d < 600; d++)
        {
            int len = rng.Next(4) == 0 ? rng.Next(L, 4 * L) : rng.Next(0, L);
            int[] doc = Enumerable.Range(0, len).Select(_ => rng.Next(3, 1000)).ToArray();
            if (len > 0 && rng.Next(10) == 0) doc[0] = 1; // already has BOS
            packer.Add(doc);
            reference.Add(doc);
            got.AddRange(Drain(packer));
        }
        Assert.That(got.Count, Is.EqualTo(reference.Out.Count));
        for (int k = 0; k < got.Count; k++)
        {
            Assert.That(got[k].Tokens, Is.EqualTo(reference.Out[k].Tokens), $"sequence {k}");
            Assert.That(got[k].Indices, Is.EqualTo(reference.Out[k].Indices), $"indices of sequence {k}");
            Assert.That(got[k].Tokens, Has.Length.EqualTo(L));
        }
        Assert.That(packer.TokensIn, Is.EqualTo(packer.TokensOut + packer.TokensOpen + packer.TokensDroppedShort), "every token accounted for");
    }
}
