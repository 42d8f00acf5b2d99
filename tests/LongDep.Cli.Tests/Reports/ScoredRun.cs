using System.Text;
using System.Text.Json;
using LongDep.Core.Detail;
using LongDep.Core.Pipeline;
using LongDep.Core.Probes;

namespace LongDep.Cli.Tests.Reports;

/// <summary>
/// A small LADM run through the real pipeline with a fake probe: an input with hostile texts and domains, its score file
/// and its detail file, consistent with one another (indices, input hashes).
/// </summary>
internal sealed class ScoredRun : IDisposable
{
    public const string HostileText = "<script>alert('x')</script> & \"quoted\" <img src=x onerror=alert(1)>";
    public const string HostileDomain = "<b>Law & Order</b>";
    public const string TailMarker = "TAIL_MARKER_AFTER_300";

    private readonly TempDir _dir = new();

    public string Input { get; }
    public string Scores { get; }
    public string Detail { get; }
    public string Dir => _dir.Path;

    public ScoredRun()
    {
        Input = _dir.File("input.jsonl");
        Scores = _dir.File("scores.jsonl");
        Detail = _dir.File("scores.lddt");
        var rng = new Random(3);
        var lines = new StringBuilder();
        string[] domains = ["ArXiv", "Wiki", HostileDomain];
        for (int i = 0; i < 30; i++)
        {
            string text = i switch
            {
                0 => HostileText + new string('x', 80),
                1 => new string('a', 300) + TailMarker + new string('b', 50),
                _ => new string(Enumerable.Range(0, 60 + rng.Next(300)).Select(_ => (char)('a' + rng.Next(26))).ToArray()),
            };
            if (i == 7) { lines.Append("this line is not json\n"); continue; }
            if (i == 9) { lines.Append("{\"text\":\"tiny\"}\n"); continue; } // too short
            if (i == 11)
            {
                lines.Append("{\"input_ids\":[").Append(string.Join(",", Enumerable.Range(0, 90).Select(k => k % 50))).Append("],\"meta\":{\"pile_set_name\":\"Wiki\"}}\n");
                continue;
            }
            lines.Append(JsonSerializer.Serialize(new { id = $"doc-{i}", text, meta = new { pile_set_name = domains[i % 3] } })).Append('\n');
        }
        System.IO.File.WriteAllText(Input, lines.ToString());

        var settings = new ScoreSettings { Method = ScoreMethod.Ladm, Window = 4096, Chunk = 8, DAfs = 1, DCds = 1 };
        var tokenizer = new ScoreRun.Tokenizer(text => text.Select(c => (int)c % 50).ToArray(), 50);
        IScoringWorker[] workers = [new ScoringWorker("fake:0", new RecordScorer(settings, new FakeLadmProbe(), null))];
        using var sink = new DetailWriter(Detail, settings, append: false);
        ScoreRun.Execute(new ScoreRunOptions { InputPath = Input, OutputPath = Scores }, settings, tokenizer, workers, sink);
    }

    public string File(string name) => _dir.File(name);

    public void Dispose() => _dir.Dispose();

    /// <summary>PFS from the tokens: two layers, values that vary with the span and the interval.</summary>
    private sealed class FakeLadmProbe : ILadmProbe
    {
        public LadmMeasurement Measure(ReadOnlySpan<int> tokens, LadmSchedule schedule, CancellationToken cancellationToken = default)
        {
            int seed = 0;
            foreach (int t in tokens) seed = seed * 31 + t;
            var rng = new Random(seed);
            var pfs = new double[2][][];
            for (int y = 0; y < 2; y++)
                pfs[y] = schedule.Spans.Select(s => s.Intervals.Select(iv => rng.NextDouble() * (1 + y) / (1 + iv / 64.0)).ToArray()).ToArray();
            return new LadmMeasurement(schedule, pfs);
        }

        public void Dispose() { }
    }
}
