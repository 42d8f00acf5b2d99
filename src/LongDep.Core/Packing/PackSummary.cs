using System.Text.Json;
using LongDep.Core.Corpus.Mds;

namespace LongDep.Core.Packing;

/// <summary>What one source gave to the mixture.</summary>
public sealed record PackSourceSummary
{
    public required string Name { get; init; }
    public required string Path { get; init; }
    /// <summary>The share asked for.</summary>
    public required double Share { get; init; }
    /// <summary>Its sequences' tokens over all tokens written.</summary>
    public required double AchievedShare { get; init; }
    /// <summary>Share × all tokens written.</summary>
    public required double TargetTokens { get; init; }
    public required long Sequences { get; init; }
    /// <summary>Tokens in its sequences (sequences × sequence length).</summary>
    public required long Tokens { get; init; }
    /// <summary>Records read from the source, usable or not.</summary>
    public required long Records { get; init; }
    /// <summary>Records skipped as unusable, and why the first one was.</summary>
    public required long BadRecords { get; init; }
    public string? FirstBad { get; init; }
    /// <summary>Empty documents skipped.</summary>
    public required long EmptyDocuments { get; init; }
    /// <summary>Documents packed (in part or whole).</summary>
    public required long Documents { get; init; }
    /// <summary>Documents that continue into a following sequence.</summary>
    public required long DocumentsSplit { get; init; }
    /// <summary>Tokens taken from documents, BOS/EOS included.</summary>
    public required long TokensRead { get; init; }
    public required long SpecialTokensAdded { get; init; }
    /// <summary>Tokens of continuations shorter than the minimum length, dropped.</summary>
    public required long TokensDroppedShort { get; init; }
    /// <summary>Tokens read but in sequences unfinished (or finished but not needed) when the run stopped, dropped.</summary>
    public required long TokensLeftOver { get; init; }
}

/// <summary>The outcome of <see cref="PackRun"/>, printed by the command and written as JSON beside the shards.</summary>
public sealed record PackSummary
{
    public required int SeqLen { get; init; }
    public required int Bins { get; init; }
    public required int MinLength { get; init; }
    public required long Seed { get; init; }
    public required bool Shuffle { get; init; }
    public int? Bos { get; init; }
    public int? Eos { get; init; }
    public long? TokenBudget { get; init; }
    public required long Sequences { get; init; }
    public required long Tokens { get; init; }
    /// <summary>"token budget reached", or which source ran out.</summary>
    public required string Stopped { get; init; }
    public required MdsWriteSummary Output { get; init; }
    public required double Seconds { get; init; }
    public required IReadOnlyList<PackSourceSummary> Sources { get; init; }

    /// <summary>Tokens written per minute of the whole run.</summary>
    public double TokensPerMinute => Seconds > 0 ? Tokens / Seconds * 60 : 0;
    /// <summary>Tokens read but not written, over all sources.</summary>
    public long TokensDropped => Sources.Sum(s => s.TokensDroppedShort + s.TokensLeftOver);

    internal static PackSummary Create(PackOptions options, (PackSource Spec, PackDocuments Documents, SequencePacker Packer, long Sequences)[] sources,
        long total, long? budgetSequences, string? stoppedBy, MdsWriteSummary output, TimeSpan elapsed)
    {
        long tokens = total * options.SeqLen;
        return new PackSummary
        {
            SeqLen = options.SeqLen, Bins = options.Bins, MinLength = options.MinLength, Seed = options.Seed, Shuffle = options.Shuffle,
            Bos = options.Bos, Eos = options.Eos, TokenBudget = options.TokenBudget, Sequences = total, Tokens = tokens,
            Stopped = stoppedBy is null ? "token budget reached" : $"source '{stoppedBy}' ran out of documents",
            Output = output, Seconds = elapsed.TotalSeconds,
            Sources = sources.Select(s => new PackSourceSummary
            {
                Name = s.Spec.Name, Path = s.Spec.Path, Share = s.Spec.Share,
                AchievedShare = total == 0 ? 0 : (double)s.Sequences / total,
                TargetTokens = s.Spec.Share * tokens,
                Sequences = s.Sequences, Tokens = s.Sequences * options.SeqLen,
                Records = s.Documents.Records, BadRecords = s.Documents.BadRecords, FirstBad = s.Documents.FirstBad,
                EmptyDocuments = s.Packer.EmptyDocuments, Documents = s.Packer.Documents, DocumentsSplit = s.Packer.DocumentsSplit,
                TokensRead = s.Packer.TokensIn, SpecialTokensAdded = s.Packer.SpecialTokensAdded,
                TokensDroppedShort = s.Packer.TokensDroppedShort,
                TokensLeftOver = s.Packer.TokensIn - s.Packer.TokensDroppedShort - s.Sequences * options.SeqLen,
            }).ToArray(),
        };
    }

    /// <summary>The summary as JSON (written by hand: the trimmed bundle has no reflection-based serializer).</summary>
    public string ToJson()
    {
        using var stream = new MemoryStream();
        using (var w = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true }))
        {
            void Nullable(string name, long? v)
            {
                if (v is { } x) w.WriteNumber(name, x);
                else w.WriteNull(name);
            }
            w.WriteStartObject();
            w.WriteNumber("seq_len", SeqLen);
            w.WriteNumber("bins", Bins);
            w.WriteNumber("min_length", MinLength);
            w.WriteNumber("seed", Seed);
            w.WriteBoolean("shuffle", Shuffle);
            Nullable("bos", Bos);
            Nullable("eos", Eos);
            Nullable("token_budget", TokenBudget);
            w.WriteNumber("sequences", Sequences);
            w.WriteNumber("tokens", Tokens);
            w.WriteNumber("tokens_dropped", TokensDropped);
            w.WriteString("stopped", Stopped);
            w.WriteNumber("seconds", Math.Round(Seconds, 3));
            w.WriteNumber("tokens_per_minute", Math.Round(TokensPerMinute));
            w.WriteStartObject("output");
            w.WriteString("directory", Output.Directory);
            w.WriteNumber("shards", Output.Shards);
            w.WriteNumber("samples", Output.Samples);
            w.WriteNumber("raw_bytes", Output.RawBytes);
            w.WriteNumber("file_bytes", Output.FileBytes);
            w.WriteEndObject();
            w.WriteStartArray("sources");
            foreach (PackSourceSummary s in Sources)
            {
                w.WriteStartObject();
                w.WriteString("name", s.Name);
                w.WriteString("path", s.Path);
                w.WriteNumber("share", s.Share);
                w.WriteNumber("achieved_share", s.AchievedShare);
                w.WriteNumber("target_tokens", s.TargetTokens);
                w.WriteNumber("tokens", s.Tokens);
                w.WriteNumber("sequences", s.Sequences);
                w.WriteNumber("records", s.Records);
                w.WriteNumber("bad_records", s.BadRecords);
                if (s.FirstBad is { } fb) w.WriteString("first_bad", fb);
                w.WriteNumber("empty_documents", s.EmptyDocuments);
                w.WriteNumber("documents", s.Documents);
                w.WriteNumber("documents_split", s.DocumentsSplit);
                w.WriteNumber("tokens_read", s.TokensRead);
                w.WriteNumber("special_tokens_added", s.SpecialTokensAdded);
                w.WriteNumber("tokens_dropped_short", s.TokensDroppedShort);
                w.WriteNumber("tokens_left_over", s.TokensLeftOver);
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteEndObject();
        }
        return System.Text.Encoding.UTF8.GetString(stream.ToArray());
    }
}
