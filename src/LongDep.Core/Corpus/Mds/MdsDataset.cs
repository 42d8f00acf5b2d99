namespace LongDep.Core.Corpus.Mds;

/// <summary>
/// An MDS dataset folder (<c>index.json</c> + shards) opened for reading: the index is read and checked now; shards
/// are read whole, one at a time, as they are enumerated (memory: the shard in use and the next one being read).
/// </summary>
public sealed class MdsDataset
{
    private MdsDataset(string directory, IReadOnlyList<MdsShardInfo> shards)
    {
        Directory = directory;
        Shards = shards;
        SampleCount = shards.Sum(s => s.Samples);
    }

    /// <summary>The dataset folder.</summary>
    public string Directory { get; }
    public IReadOnlyList<MdsShardInfo> Shards { get; }
    /// <summary>Samples in all shards.</summary>
    public long SampleCount { get; }

    /// <summary>Opens the dataset in <paramref name="directory"/> and checks its index.</summary>
    /// <exception cref="CorpusFormatException">No index or a malformed one.</exception>
    public static MdsDataset Open(string directory) => new(directory, MdsIndex.Load(directory));

    /// <summary>The columns shared by every shard, or null when shards differ (or there are none).</summary>
    public IReadOnlyList<MdsColumn>? CommonColumns =>
        Shards.Count > 0 && Shards.All(s => s.SameColumns(Shards[0])) ? Shards[0].Columns : null;

    /// <summary>Reads and checks shard <paramref name="position"/>.</summary>
    public MdsShard LoadShard(int position) => MdsShard.Load(Directory, Shards[position]);

    /// <summary>
    /// The shards in index order (or in <paramref name="order"/>, a list of shard positions), each read and checked;
    /// the next one is read on a background thread while the caller works on the current one. A shard's bytes stay
    /// valid only until the one after it is asked for (its array is reused).
    /// </summary>
    public IEnumerable<MdsShard> ReadShards(IReadOnlyList<int>? order = null)
    {
        order ??= Enumerable.Range(0, Shards.Count).ToArray();
        if (order.Count == 0) yield break;
        Task<MdsShard> next = Task.Run(() => LoadShard(order[0]));
        MdsShard? previous = null;
        try
        {
            for (int k = 0; k < order.Count; k++)
            {
                MdsShard current = next.GetAwaiter().GetResult();
                if (k + 1 < order.Count)
                {
                    // The caller has moved past the shard before this one: its array takes the shard after this one.
                    byte[]? reuse = previous?.Buffer;
                    int position = order[k + 1];
                    next = Task.Run(() => MdsShard.Load(Directory, Shards[position], reuse));
                }
                previous = current;
                yield return current;
            }
        }
        finally
        {
            // An abandoned read ahead: let it end and drop what it read or threw.
            next.ContinueWith(t => _ = t.Exception, TaskScheduler.Default);
        }
    }
}
