using System.Collections.Concurrent;
using System.Diagnostics;

namespace LongDep.Core.Diagnostics;

/// <summary>
/// Named phases of a run (read, tokenize, h2d, layer, pfs, loss, d2h, write, ...): each <see cref="Begin"/> opens a
/// range that is timed for <c>--profile</c> and forwarded to a range listener (the CUDA layer plugs NVTX in), so
/// Nsight Systems shows the pipeline as users think of it. Cheap when nobody listens and timing is off.
/// </summary>
public static class Phases
{
    private static readonly ConcurrentDictionary<string, PhaseTotals> Totals = new(StringComparer.Ordinal);
    private static volatile bool _timing;
    private static IRangeListener? _listener;

    /// <summary>Receives range pushes and pops (NVTX). Must be cheap and thread-safe.</summary>
    public interface IRangeListener
    {
        void Push(string name);
        void Pop();
    }

    /// <summary>Turns per-phase timing on or off (off by default).</summary>
    public static bool Timing
    {
        get => _timing;
        set => _timing = value;
    }

    /// <summary>Installs the range listener (null removes it).</summary>
    public static void SetListener(IRangeListener? listener) => Volatile.Write(ref _listener, listener);

    /// <summary>Opens a phase; dispose the result to close it.</summary>
    public static Scope Begin(string name)
    {
        var listener = Volatile.Read(ref _listener);
        listener?.Push(name);
        return new Scope(name, _timing ? Stopwatch.GetTimestamp() : 0, listener);
    }

    /// <summary>Adds time measured elsewhere (e.g. GPU event timings) to a phase.</summary>
    public static void Add(string name, TimeSpan elapsed, long count = 1)
    {
        var t = Totals.GetOrAdd(name, _ => new PhaseTotals());
        Interlocked.Add(ref t.Ticks, elapsed.Ticks);
        Interlocked.Add(ref t.Count, count);
    }

    /// <summary>Totals per phase so far: name, total time, number of ranges.</summary>
    public static IReadOnlyList<(string Name, TimeSpan Total, long Count)> Snapshot() =>
        Totals.Select(kv => (kv.Key, TimeSpan.FromTicks(Interlocked.Read(ref kv.Value.Ticks)), Interlocked.Read(ref kv.Value.Count)))
              .OrderByDescending(x => x.Item2).ToList();

    /// <summary>Forgets all totals.</summary>
    public static void Reset() => Totals.Clear();

    private sealed class PhaseTotals
    {
        public long Ticks;
        public long Count;
    }

    /// <summary>An open phase.</summary>
    public readonly struct Scope : IDisposable
    {
        private readonly string _name;
        private readonly long _start;
        private readonly IRangeListener? _listener;

        internal Scope(string name, long start, IRangeListener? listener)
        {
            _name = name;
            _start = start;
            _listener = listener;
        }

        public void Dispose()
        {
            _listener?.Pop();
            if (_start != 0) Add(_name, Stopwatch.GetElapsedTime(_start));
        }
    }
}
