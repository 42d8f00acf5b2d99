namespace LongDep.Core.Selection;

/// <summary>One domain before and after selection. Counts and tokens "before" are of its ok records (the ones that compete).</summary>
/// <param name="Domain">The domain; null for records without one.</param>
/// <param name="CountBefore">Ok records of the domain.</param>
/// <param name="TokensBefore">Their tokens.</param>
/// <param name="CountAfter">Selected records of the domain.</param>
/// <param name="TokensAfter">Their tokens.</param>
/// <param name="ScoreCut">Lowest selected score in the domain; null when none is selected.</param>
/// <param name="NotOk">Records of the domain that did not compete (status not ok).</param>
public sealed record DomainSelection(
    string? Domain, long CountBefore, long TokensBefore, long CountAfter, long TokensAfter, double? ScoreCut, long NotOk);

/// <summary>What a selection kept, overall and per domain (domains sorted by name, null first).</summary>
/// <param name="Options">The request.</param>
/// <param name="Domains">Per-domain counts.</param>
/// <param name="CountBefore">Ok records.</param>
/// <param name="TokensBefore">Their tokens.</param>
/// <param name="CountAfter">Selected records.</param>
/// <param name="TokensAfter">Their tokens.</param>
/// <param name="ScoreCut">Lowest selected score; null when nothing is selected.</param>
/// <param name="NotOk">Records that did not compete.</param>
/// <param name="Percent">Per-domain token budget only: the percentage LADM's loop stopped at.</param>
public sealed record SelectionSummary(
    SelectionOptions Options,
    IReadOnlyList<DomainSelection> Domains,
    long CountBefore,
    long TokensBefore,
    long CountAfter,
    long TokensAfter,
    double? ScoreCut,
    long NotOk,
    int? Percent);

/// <summary>The chosen input indices (ascending: input order) and the summary.</summary>
public sealed record SelectionResult(long[] SelectedIndices, SelectionSummary Summary);
