namespace LongDep.Core.Packing;

/// <summary>A finished sequence: exactly the sequence length of tokens, and the (start, end) of each document piece in it.</summary>
public sealed class PackedSequence(int[] tokens, int[] indices, int pieces)
{
    /// <summary>The tokens (the array may be reused once the sequence is written).</summary>
    public int[] Tokens { get; } = tokens;
    /// <summary>start0, end0, start1, end1, ...: <see cref="Pieces"/> pairs.</summary>
    public int[] Indices { get; } = indices;
    public int Pieces { get; } = pieces;
}

/// <summary>
/// Packs documents into sequences of exactly <c>seqLen</c> tokens the way datatools' <c>pack</c> does
/// (CodeCreator/datatools, scripts/pack.py): BOS before and EOS after each document (unless it already starts or ends
/// with them); a document that does not fit fills the sequence and continues at the start of the next one; a
/// continuation shorter than <c>minLength</c> is dropped; each sequence records the (start, end) of every document piece
/// in it. With one bin documents go in order into one open sequence; with several, best-fit-decreasing: a document goes
/// to the fullest open sequence it fits in, else to the emptiest one (where it overflows). Sequences still open at the end
/// are not emitted (their tokens are counted in <see cref="TokensOpen"/>).
/// </summary>
public sealed class SequencePacker
{
    private sealed class Bin(int seqLen)
    {
        public int[] Tokens = new int[seqLen];
        public readonly List<int> Indices = [];
        public int Fill;
    }

    private readonly int _seqLen, _minLength;
    private readonly int? _bos, _eos;
    private readonly Bin[] _bins;
    private readonly Queue<PackedSequence> _done = new();
    private readonly Stack<int[]> _free = new();

    public SequencePacker(int seqLen, int bins = 1, int minLength = 1, int? bos = null, int? eos = null)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(seqLen, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(bins, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(minLength, 1);
        _seqLen = seqLen;
        _minLength = minLength;
        _bos = bos;
        _eos = eos;
        _bins = Enumerable.Range(0, bins).Select(_ => new Bin(seqLen)).ToArray();
    }

    /// <summary>Documents added (not counting empty ones).</summary>
    public long Documents { get; private set; }
    /// <summary>Empty documents (skipped: MDS cannot hold an empty piece).</summary>
    public long EmptyDocuments { get; private set; }
    /// <summary>Documents whose tokens continue into a following sequence.</summary>
    public long DocumentsSplit { get; private set; }
    /// <summary>Tokens added, BOS/EOS included.</summary>
    public long TokensIn { get; private set; }
    /// <summary>BOS and EOS tokens added.</summary>
    public long SpecialTokensAdded { get; private set; }
    /// <summary>Tokens of continuations dropped for being shorter than the minimum length.</summary>
    public long TokensDroppedShort { get; private set; }
    /// <summary>Continuations dropped for being shorter than the minimum length.</summary>
    public long ContinuationsDropped { get; private set; }
    /// <summary>Tokens in sequences emitted so far (including those not yet taken).</summary>
    public long TokensOut { get; private set; }
    /// <summary>Tokens in open (unfinished) sequences.</summary>
    public long TokensOpen => _bins.Sum(b => (long)b.Fill);
    /// <summary>Finished sequences not yet taken.</summary>
    public int Ready => _done.Count;

    /// <summary>The next finished sequence, or null when none is ready.</summary>
    public PackedSequence? Take() => _done.TryDequeue(out PackedSequence? s) ? s : null;

    /// <summary>Gives a taken sequence's token array back for reuse (after it is written).</summary>
    public void Recycle(PackedSequence sequence)
    {
        if (_free.Count < 4) _free.Push(sequence.Tokens);
    }

    /// <summary>Adds a document (without BOS/EOS: they are added here).</summary>
    public void Add(ReadOnlySpan<int> document)
    {
        if (document.Length == 0)
        {
            EmptyDocuments++;
            return;
        }
        bool bos = _bos is { } b && document[0] != b;
        bool eos = _eos is { } e && document[^1] != e;
        long n = document.Length + (bos ? 1 : 0) + (eos ? 1 : 0);
        Documents++;
        TokensIn += n;
        SpecialTokensAdded += (bos ? 1 : 0) + (eos ? 1 : 0);
        Place(Choose(n), document, bos, eos, n);
    }

    /// <summary>datatools' BFDBuffer.add: the fullest bin with room for all of it, else the emptiest (first on ties).</summary>
    private Bin Choose(long n)
    {
        if (_bins.Length == 1) return _bins[0];
        Bin? fit = null, emptiest = null;
        foreach (Bin bin in _bins)
        {
            int available = _seqLen - bin.Fill;
            if (available >= n && (fit is null || available < _seqLen - fit.Fill)) fit = bin;
            if (emptiest is null || available > _seqLen - emptiest.Fill) emptiest = bin;
        }
        return fit ?? emptiest!;
    }

    private void Place(Bin bin, ReadOnlySpan<int> document, bool bos, bool eos, long n)
    {
        long pos = 0;
        bool continuing = false;
        while (true)
        {
            if (continuing && n - pos < _minLength)
            {
                TokensDroppedShort += n - pos;
                ContinuationsDropped++;
                return;
            }
            int take = (int)Math.Min(_seqLen - bin.Fill, n - pos);
            Copy(document, bos, eos, pos, bin.Tokens.AsSpan(bin.Fill, take));
            bin.Indices.Add(bin.Fill);
            bin.Indices.Add(bin.Fill + take);
            bin.Fill += take;
            pos += take;
            if (bin.Fill < _seqLen) return;

            _done.Enqueue(new PackedSequence(bin.Tokens, bin.Indices.ToArray(), bin.Indices.Count / 2));
            TokensOut += _seqLen;
            bin.Tokens = _free.Count > 0 ? _free.Pop() : new int[_seqLen];
            bin.Indices.Clear();
            bin.Fill = 0;
            if (pos == n) return;
            if (!continuing && n - pos >= _minLength) DocumentsSplit++;
            continuing = true;
        }
    }

    /// <summary>Copies tokens [pos, pos + destination.Length) of BOS? + document + EOS?.</summary>
    private void Copy(ReadOnlySpan<int> document, bool bos, bool eos, long pos, Span<int> destination)
    {
        int at = 0;
        long docPos = pos - (bos ? 1 : 0);
        if (bos && pos == 0)
        {
            destination[at++] = _bos!.Value;
            docPos = 0;
        }
        int fromDoc = (int)Math.Min(destination.Length - at, document.Length - docPos);
        if (fromDoc > 0)
        {
            document.Slice((int)docPos, fromDoc).CopyTo(destination[at..]);
            at += fromDoc;
        }
        if (at < destination.Length)
        {
            // Only the EOS can remain.
            if (!eos || at != destination.Length - 1) throw new InvalidOperationException("packing went past the document");
            destination[at] = _eos!.Value;
        }
    }
}
