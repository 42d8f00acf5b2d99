using System.Diagnostics;
using System.Threading.Channels;
using LongDep.Core.Corpus;
using LongDep.Core.Diagnostics;
using LongDep.Core.Records;

namespace LongDep.Core.Pipeline;

/// <summary>One scoring backend instance (the CPU, or one GPU): scores tokenized records one at a time.</summary>
public interface IScoringWorker : IDisposable
{
    /// <summary>The device, as users name it ("cpu", "cuda:0").</summary>
    string Device { get; }
    ScoreOutcome Score(InputRecord input, int[] tokens, CancellationToken cancellationToken);
}

/// <summary>A worker that runs a <see cref="RecordScorer"/> over probes it owns.</summary>
public sealed class ScoringWorker(string device, RecordScorer scorer, IDisposable? owned = null) : IScoringWorker
{
    public string Device { get; } = device;
    public ScoreOutcome Score(InputRecord input, int[] tokens, CancellationToken cancellationToken) => scorer.Score(input, tokens, cancellationToken);
    public void Dispose() => owned?.Dispose();
}

/// <summary>Receives the measurements behind each written record (for <c>--detail</c>), in output order.</summary>
public interface IDetailSink : IDisposable
{
    void Write(ScoreOutcome outcome);
    void Flush();

    /// <summary>True when the sink already holds the entry of record <paramref name="index"/> (written by an earlier run).</summary>
    bool Holds(long index);
}

/// <summary>Where a run stands, reported after every written record.</summary>
public sealed record RunProgress(long Written, long Resumed, long Ok, long TooShort, long BadRecord, long NumericError,
    long Tokens, TimeSpan Elapsed, double? InputFraction);

/// <summary>Input, output and batching of a scoring run.</summary>
public sealed record ScoreRunOptions
{
    public required string InputPath { get; init; }
    public required string OutputPath { get; init; }
    public RecordFieldOptions Fields { get; init; } = RecordFieldOptions.Default;
    /// <summary>Shard i of N: the records whose index ≡ i (mod N).</summary>
    public int ShardIndex { get; init; }
    public int ShardCount { get; init; } = 1;
    /// <summary>Replace an existing output instead of resuming it.</summary>
    public bool Overwrite { get; init; }
    public int FlushEvery { get; init; } = 8;
    /// <summary>Records read ahead of the writer at most (bounds memory).</summary>
    public int MaxInFlight { get; init; } = 32;
    /// <summary>
    /// Bytes of input lines read ahead of the writer at most (bounds memory whatever the record sizes); a single record
    /// longer than this is read alone.
    /// </summary>
    public long MaxInFlightBytes { get; init; } = DefaultMaxInFlightBytes;
    /// <summary>The default of <see cref="MaxInFlightBytes"/>: 256 MiB.</summary>
    public const long DefaultMaxInFlightBytes = 256L << 20;
    /// <summary>
    /// The settings header written as the output's first line and checked on resume (null: none is written or checked).
    /// </summary>
    public ScoreHeader? Header { get; init; }
    /// <summary>
    /// Write the records to this stream instead of <see cref="OutputPath"/> (standard output, a pipe): nothing is
    /// resumed, the stream is not closed.
    /// </summary>
    public Stream? OutputStream { get; init; }
    /// <summary>Where notes for the user go (one line each), e.g. standard error.</summary>
    public Action<string>? Log { get; init; }
    /// <summary>Threads that parse and tokenize ahead of the workers.</summary>
    public int PrepThreads { get; init; } = Math.Clamp(Environment.ProcessorCount / 4, 1, 4);
}

/// <summary>A run stopped by something other than a bad record: names what failed; what was written stays.</summary>
public sealed class ScoreRunException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>An output that another process holds (its exclusive lock); <see cref="Path"/> names the file.</summary>
public sealed class OutputBusyException(string path, string what) : IOException($"{what} '{path}' is being written by another process")
{
    public string Path { get; } = path;
    public string What { get; } = what;
}

/// <summary>
/// The scoring pipeline: corpus reader → parse and tokenize → workers (one per device) → writer in input order.
/// Output is appended and flushed in small batches; rerunning with the same output resumes after the last complete
/// record (checked by index and input hash), so a run killed at any moment and rerun ends byte-identical to an
/// uninterrupted one. Memory is bounded by <see cref="ScoreRunOptions.MaxInFlight"/> records.
/// </summary>
public static class ScoreRun
{
    /// <summary>Tokenizes text; ids outside [0, vocabSize) in <c>input_ids</c> make a record bad.</summary>
    public sealed record Tokenizer(Func<string, int[]> Encode, int VocabSize);

    private sealed record Item(long Seq, InputRecord Input, int[]? Tokens, ScoreOutcome? Done)
    {
        /// <summary>Offset past the record's line in the decompressed input (see <see cref="RawRecord.EndOffset"/>).</summary>
        public long EndOffset { get; init; }
        /// <summary>Input bytes held for this record (released when it is written).</summary>
        public int Bytes { get; init; }
        /// <summary>Already in the score file: only its detail entry is written.</summary>
        public bool DetailOnly { get; init; }
    }

    public static RunSummary Execute(ScoreRunOptions options, ScoreSettings settings, Tokenizer tokenizer,
        IReadOnlyList<IScoringWorker> workers, IDetailSink? detail = null, IProgress<RunProgress>? progress = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (workers.Count == 0) throw new ArgumentException("at least one worker is needed", nameof(workers));
        if (options.ShardCount < 1 || options.ShardIndex < 0 || options.ShardIndex >= options.ShardCount)
            throw new ScoreRunException($"--shard {options.ShardIndex}/{options.ShardCount} is not valid: expected i/N with 0 <= i < N");
        if (settings.Validate() is { } bad) throw new ScoreRunException(bad);

        var clock = Stopwatch.StartNew();
        var summary = new RunSummary();
        FileStream? file = null;
        ResumeState resume;
        if (options.OutputStream is null)
        {
            file = OutputFiles.OpenLocked(options.OutputPath, "--output");
            try
            {
                resume = ResumeState.Prepare(file, options, settings);
            }
            catch
            {
                file.Dispose();
                throw;
            }
        }
        else
        {
            resume = ResumeState.None;
        }
        using FileStream? ownedFile = file;
        var missingDetail = new HashSet<long>();
        if (detail is not null)
        {
            foreach (long index in resume.Indices)
                if (!detail.Holds(index)) missingDetail.Add(index);
        }
        if (missingDetail.Count > 0)
            options.Log?.Invoke($"the detail file lacks the entries of {missingDetail.Count} record(s) the score file holds (e.g. {string.Join(", ", missingDetail.Order().Take(5))}); rescoring them for the detail file only");
        var position = new CorpusPosition();
        IEnumerable<RawRecord> raw = CorpusReader.Open(options.InputPath, options.Fields, position: position);
        using CorpusIntegrity? integrity = CorpusIntegrity.Start(options.InputPath);

        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        CancellationToken ct = linked.Token;
        var inFlight = new SemaphoreSlim(options.MaxInFlight, options.MaxInFlight);
        var budget = new ByteBudget(options.MaxInFlightBytes);
        var rawChannel = Channel.CreateBounded<(long Seq, RawRecord Raw, bool DetailOnly)>(Math.Max(4, options.MaxInFlight / 2));
        var readyChannel = Channel.CreateBounded<Item>(Math.Max(2, workers.Count * 2));
        var doneChannel = Channel.CreateUnbounded<Item>();
        Exception? failure = null, readFailure = null;
        void Fail(Exception e)
        {
            Interlocked.CompareExchange(ref failure, e, null);
            linked.Cancel();
        }

        var parser = new RecordParser(options.Fields);
        long resumed = resume.Completed;
        long lastWritten = resume.LastIndex;

        // Stage 1: read, shard, skip what the output already holds (unless its detail entry is missing).
        var reader = Task.Run(async () =>
        {
            try
            {
                long seq = 0, shardPos = 0;
                using IEnumerator<RawRecord> records = raw.GetEnumerator();
                while (true)
                {
                    ct.ThrowIfCancellationRequested();
                    using (Phases.Begin("read"))
                    {
                        if (!records.MoveNext()) break;
                    }
                    RawRecord r = records.Current;
                    if (r.Index % options.ShardCount != options.ShardIndex) continue;
                    bool detailOnly = false;
                    if (shardPos++ < resume.Completed)
                    {
                        resume.Verify(shardPos - 1, r);
                        if (!missingDetail.Contains(r.Index)) continue;
                        detailOnly = true;
                    }
                    await inFlight.WaitAsync(ct).ConfigureAwait(false);
                    await budget.AcquireAsync(r.Line.Length, ct).ConfigureAwait(false);
                    await rawChannel.Writer.WriteAsync((seq++, r, detailOnly), ct).ConfigureAwait(false);
                }
                if (shardPos < resume.Completed)
                    throw new ScoreRunException($"{options.OutputPath} holds {resume.Completed} records but the input has only {shardPos} for this shard; it was written for another input: use another --output or --overwrite");
                rawChannel.Writer.Complete();
            }
            catch (OperationCanceledException) { rawChannel.Writer.TryComplete(); }
            catch (Exception e)
            {
                // Damaged input (a truncated .zst, an unreadable file): the records read before it are still scored
                // and written, then the run reports it.
                readFailure = e;
                rawChannel.Writer.TryComplete();
            }
        });

        // Stage 2: parse and tokenize (several threads; order restored by the writer).
        var preps = Enumerable.Range(0, options.PrepThreads).Select(_ => Task.Run(async () =>
        {
            try
            {
                await foreach (var (seq, r, detailOnly) in rawChannel.Reader.ReadAllAsync(ct).ConfigureAwait(false))
                    await readyChannel.Writer.WriteAsync(Prepare(seq, r, parser, settings, tokenizer) with { DetailOnly = detailOnly }, ct).ConfigureAwait(false);
            }
            catch (OperationCanceledException) { }
            catch (Exception e) { Fail(e); }
        })).ToArray();
        var prepsDone = Task.WhenAll(preps).ContinueWith(_ => readyChannel.Writer.TryComplete(), TaskScheduler.Default);

        // Stage 3: one worker per device, each on its own thread.
        var workerTasks = workers.Select(worker => Task.Factory.StartNew(() =>
        {
            try
            {
                while (readyChannel.Reader.WaitToReadAsync(ct).AsTask().GetAwaiter().GetResult())
                {
                    while (readyChannel.Reader.TryRead(out Item? item))
                    {
                        ct.ThrowIfCancellationRequested();
                        if (item.Done is null)
                        {
                            try
                            {
                                item = item with { Done = worker.Score(item.Input, item.Tokens!, ct) };
                            }
                            catch (OperationCanceledException) { throw; }
                            catch (Exception e)
                            {
                                throw new ScoreRunException($"{worker.Device} failed on record {item.Input.Index}: {e.Message}", e);
                            }
                        }
                        doneChannel.Writer.TryWrite(item);
                    }
                }
            }
            catch (OperationCanceledException) { }
            catch (Exception e) { Fail(e); }
        }, CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default)).ToArray();
        var workersDone = Task.WhenAll(workerTasks).ContinueWith(_ => doneChannel.Writer.TryComplete(), TaskScheduler.Default);

        // Stage 4 (this thread): write in input order; a record of a compressed input waits until the bytes it came from
        // have passed their check.
        bool damaged = false;
        Stream target = options.OutputStream ?? file!;
        using (var writer = new ScoreWriter(target, leaveOpen: true, options.FlushEvery))
        {
            if (resume.Completed == 0 && !resume.HasHeader && options.Header is { } header)
                writer.WriteHeader(header);
            var pending = new SortedDictionary<long, Item>();
            long next = 0;
            try
            {
                while (doneChannel.Reader.WaitToReadAsync(CancellationToken.None).AsTask().GetAwaiter().GetResult())
                {
                    while (doneChannel.Reader.TryRead(out Item? item))
                    {
                        if (damaged) continue;
                        pending.Add(item.Seq, item);
                        while (pending.Remove(next, out Item? ready))
                        {
                            if (integrity is not null && !integrity.WaitGood(ready.EndOffset, ct))
                            {
                                damaged = true; // this record and every later one came from bytes that failed their check
                                linked.Cancel();
                                break;
                            }
                            ScoreOutcome outcome = ready.Done!;
                            using (Phases.Begin("write"))
                            {
                                detail?.Write(outcome);
                                if (!ready.DetailOnly) writer.Write(outcome.Record);
                            }
                            if (!ready.DetailOnly)
                            {
                                summary.Add(outcome.Record);
                                lastWritten = outcome.Record.Index;
                            }
                            next++;
                            inFlight.Release();
                            budget.Release(ready.Bytes);
                            if (progress is not null && !ready.DetailOnly) Report(progress, summary, resumed, clock, position);
                        }
                    }
                }
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                // stopped (interrupted, or another stage failed) while a record waited for its bytes' check: it is
                // dropped, what was written is kept, and the cause is reported below
            }
            catch
            {
                linked.Cancel(); // a failed write (disk full, ...) stops the stages feeding the writer
                throw;
            }
            finally
            {
                detail?.Flush();
                writer.Flush();
            }
        }
        Task.WaitAll([reader, .. preps, prepsDone, .. workerTasks, workersDone], CancellationToken.None);
        summary.Seconds = clock.Elapsed.TotalSeconds;
        if (integrity is not null && (damaged || readFailure is not null) && integrity.WaitGood(long.MaxValue, cancellationToken) == false
            && integrity.Problem is { } problem)
        {
            throw new ScoreRunException(Damaged(options, problem, summary.Records + resumed, lastWritten), readFailure);
        }
        failure ??= readFailure is CorpusFormatException { RecordsBefore: not null }
            ? new ScoreRunException(Damaged(options, readFailure.InnerException?.Message ?? readFailure.Message, summary.Records + resumed, lastWritten), readFailure)
            : readFailure;
        if (failure is not null)
            throw failure as ScoreRunException ?? new ScoreRunException(failure.Message, failure);
        cancellationToken.ThrowIfCancellationRequested();
        return summary;
    }

    private static string Damaged(ScoreRunOptions options, string problem, long kept, long lastIndex) =>
        $"{Path.GetFileName(options.InputPath)} is damaged: {problem.TrimEnd('.')}. " +
        (kept > 0 ? $"{kept} record(s) before the damage are in {options.OutputPath} (last good record: index {lastIndex}); " : "no record before the damage could be kept; ") +
        "repair or re-download the file and rerun the same command to go on from there";

    /// <summary>A count of bytes that may be held at once; one holder may always take more than the whole, alone.</summary>
    private sealed class ByteBudget(long capacity)
    {
        private readonly SemaphoreSlim _changed = new(0);
        private readonly Lock _gate = new();
        private long _used;

        public async Task AcquireAsync(long bytes, CancellationToken ct)
        {
            while (true)
            {
                lock (_gate)
                {
                    if (_used == 0 || _used + bytes <= capacity)
                    {
                        _used += bytes;
                        return;
                    }
                }
                await _changed.WaitAsync(TimeSpan.FromMilliseconds(200), ct).ConfigureAwait(false);
            }
        }

        public void Release(long bytes)
        {
            lock (_gate) _used -= bytes;
            _changed.Release();
        }
    }

    private static void Report(IProgress<RunProgress> progress, RunSummary s, long resumed, Stopwatch clock, CorpusPosition position) =>
        progress.Report(new RunProgress(s.Records, resumed, s.Count(ScoreStatus.Ok), s.Count(ScoreStatus.TooShort),
            s.Count(ScoreStatus.BadRecord), s.Count(ScoreStatus.NumericError), s.Tokens, clock.Elapsed, position.Fraction));

    private static Item Prepare(long seq, RawRecord raw, RecordParser parser, ScoreSettings settings, Tokenizer tokenizer) =>
        PrepareItem(seq, raw, parser, settings, tokenizer) with { EndOffset = raw.EndOffset, Bytes = raw.Line.Length };

    private static Item PrepareItem(long seq, RawRecord raw, RecordParser parser, ScoreSettings settings, Tokenizer tokenizer)
    {
        using var phase = Phases.Begin("tokenize");
        InputRecord input = parser.Parse(raw);
        if (input.IsBad)
            return new Item(seq, input, null, new ScoreOutcome(RecordScorer.Base(settings, input, ScoreStatus.BadRecord, null, input.Error)));
        int[] tokens;
        if (input.InputIds is { } ids)
        {
            if (InputRecord.CheckVocabulary(ids, tokenizer.VocabSize) is { } oov)
                return new Item(seq, input, null, new ScoreOutcome(RecordScorer.Base(settings, input, ScoreStatus.BadRecord, null, oov)));
            tokens = ids;
        }
        else
        {
            try
            {
                tokens = tokenizer.Encode(input.Text ?? "");
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                return new Item(seq, input, null, new ScoreOutcome(RecordScorer.Base(settings, input, ScoreStatus.BadRecord, null, $"the tokenizer failed: {e.Message}")));
            }
        }
        return new Item(seq, input, tokens, null);
    }
}
