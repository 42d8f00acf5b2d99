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
    /// <summary>Threads that parse and tokenize ahead of the workers.</summary>
    public int PrepThreads { get; init; } = Math.Clamp(Environment.ProcessorCount / 4, 1, 4);
}

/// <summary>A run stopped by something other than a bad record: names what failed; what was written stays.</summary>
public sealed class ScoreRunException(string message, Exception? inner = null) : Exception(message, inner);

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

    private sealed record Item(long Seq, InputRecord Input, int[]? Tokens, ScoreOutcome? Done);

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
        var resume = ResumeState.Prepare(options, settings);
        var position = new CorpusPosition();
        IEnumerable<RawRecord> raw = CorpusReader.Open(options.InputPath, options.Fields, position: position);

        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        CancellationToken ct = linked.Token;
        var inFlight = new SemaphoreSlim(options.MaxInFlight, options.MaxInFlight);
        var rawChannel = Channel.CreateBounded<(long Seq, RawRecord Raw)>(Math.Max(4, options.MaxInFlight / 2));
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

        // Stage 1: read, shard, skip what the output already holds.
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
                    if (shardPos++ < resume.Completed)
                    {
                        resume.Verify(shardPos - 1, r);
                        continue;
                    }
                    await inFlight.WaitAsync(ct).ConfigureAwait(false);
                    await rawChannel.Writer.WriteAsync((seq++, r), ct).ConfigureAwait(false);
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
                await foreach (var (seq, r) in rawChannel.Reader.ReadAllAsync(ct).ConfigureAwait(false))
                    await readyChannel.Writer.WriteAsync(Prepare(seq, r, parser, settings, tokenizer), ct).ConfigureAwait(false);
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

        // Stage 4 (this thread): write in input order.
        using (var writer = new ScoreWriter(options.OutputPath, append: resume.Completed > 0, options.FlushEvery))
        {
            var pending = new SortedDictionary<long, Item>();
            long next = 0;
            try
            {
                while (doneChannel.Reader.WaitToReadAsync(CancellationToken.None).AsTask().GetAwaiter().GetResult())
                {
                    while (doneChannel.Reader.TryRead(out Item? item))
                    {
                        pending.Add(item.Seq, item);
                        while (pending.Remove(next, out Item? ready))
                        {
                            ScoreOutcome outcome = ready.Done!;
                            using (Phases.Begin("write"))
                            {
                                detail?.Write(outcome);
                                writer.Write(outcome.Record);
                            }
                            summary.Add(outcome.Record);
                            next++;
                            inFlight.Release();
                            if (progress is not null) Report(progress, summary, resumed, clock, position);
                        }
                    }
                }
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
        failure ??= readFailure;
        if (failure is not null)
            throw failure as ScoreRunException ?? new ScoreRunException(failure.Message, failure);
        cancellationToken.ThrowIfCancellationRequested();
        return summary;
    }

    private static void Report(IProgress<RunProgress> progress, RunSummary s, long resumed, Stopwatch clock, CorpusPosition position) =>
        progress.Report(new RunProgress(s.Records, resumed, s.Count(ScoreStatus.Ok), s.Count(ScoreStatus.TooShort),
            s.Count(ScoreStatus.BadRecord), s.Count(ScoreStatus.NumericError), s.Tokens, clock.Elapsed, position.Fraction));

    private static Item Prepare(long seq, RawRecord raw, RecordParser parser, ScoreSettings settings, Tokenizer tokenizer)
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
