using System.Text;
using LongDep.Core.Records;
using LongDep.Core.Selection;

namespace LongDep.Core.Tests;

public class SelectionTests
{
    private static ScoredItem Ok(long index, double score, long tokens = 10, string? domain = null) =>
        new(index, ScoreStatus.Ok, score, tokens, domain);

    private static ScoredItem NotOk(long index, ScoreStatus status, string? domain = null) => new(index, status, null, 0, domain);

    private static readonly ScoredItem[] Mixed =
    [
        Ok(0, 0.5, domain: "A"),
        Ok(1, 0.9, domain: "B"),
        NotOk(2, ScoreStatus.BadRecord, "A"),
        Ok(3, 0.5, domain: "A"),
        NotOk(4, ScoreStatus.TooShort, "B"),
        Ok(5, 0.7, domain: "B"),
        NotOk(6, ScoreStatus.NumericError),
    ];

    [Test]
    public void Rank_OnlyOkCompete_ScoreDescThenIndexAsc()
    {
        Assert.That(Selector.Rank(Mixed).Select(i => i.Index), Is.EqualTo(new long[] { 1, 5, 0, 3 }));
    }

    [Test]
    public void TopPercent_Global_FloorsAndBreaksTiesByIndex()
    {
        Assert.Multiple(() =>
        {
            Assert.That(Selector.Select(Mixed, SelectionOptions.TopPercent(50)).SelectedIndices, Is.EqualTo(new long[] { 1, 5 }));
            // floor(4 · 0.75) = 3: of the tied 0.5 scores, index 0 wins over index 3.
            Assert.That(Selector.Select(Mixed, SelectionOptions.TopPercent(75)).SelectedIndices, Is.EqualTo(new long[] { 0, 1, 5 }));
            Assert.That(Selector.Select(Mixed, SelectionOptions.TopPercent(24)).SelectedIndices, Is.Empty); // floor(0.96)
            Assert.That(Selector.Select(Mixed, SelectionOptions.TopPercent(100)).SelectedIndices, Is.EqualTo(new long[] { 0, 1, 3, 5 }));
        });
    }

    [Test]
    public void TopK_Global()
    {
        Assert.That(Selector.Select(Mixed, SelectionOptions.TopK(3)).SelectedIndices, Is.EqualTo(new long[] { 0, 1, 5 }));
        Assert.That(Selector.Select(Mixed, SelectionOptions.TopK(99)).SelectedIndices, Has.Length.EqualTo(4));
    }

    [Test]
    public void Summary_CountsTokensCutAndExcluded()
    {
        SelectionSummary s = Selector.Select(Mixed, SelectionOptions.TopK(3)).Summary;
        Assert.Multiple(() =>
        {
            Assert.That(s.CountBefore, Is.EqualTo(4));
            Assert.That(s.CountAfter, Is.EqualTo(3));
            Assert.That(s.TokensAfter, Is.EqualTo(30));
            Assert.That(s.ScoreCut, Is.EqualTo(0.5));
            Assert.That(s.NotOk, Is.EqualTo(3));
            Assert.That(s.Domains.Select(d => d.Domain), Is.EqualTo(new[] { null, "A", "B" }));
            DomainSelection a = s.Domains[1];
            Assert.That((a.CountBefore, a.TokensBefore, a.CountAfter, a.TokensAfter, a.ScoreCut, a.NotOk), Is.EqualTo((2L, 20L, 1L, 10L, (double?)0.5, 1L)));
            DomainSelection none = s.Domains[0];
            Assert.That((none.CountBefore, none.CountAfter, none.ScoreCut, none.NotOk), Is.EqualTo((0L, 0L, (double?)null, 1L)));
        });
    }

    private static ScoredItem[] TwoDomains()
    {
        // A: 7 records scored 0.10 .. 0.70; B: 3 records scored 0.91 .. 0.93 (B would win a global ranking).
        var items = new List<ScoredItem>();
        for (int k = 0; k < 7; k++) items.Add(Ok(k, 0.1 * (k + 1), 10, "A"));
        for (int k = 0; k < 3; k++) items.Add(Ok(7 + k, 0.91 + 0.01 * k, 10, "B"));
        return items.ToArray();
    }

    [Test]
    public void TopPercent_PerDomain_FloorsEachDomain()
    {
        // 50 %: A keeps floor(3.5) = 3 (its best: 4, 5, 6), B keeps floor(1.5) = 1 (its best: 9).
        SelectionResult r = Selector.Select(TwoDomains(), SelectionOptions.TopPercent(50, perDomain: true));
        Assert.That(r.SelectedIndices, Is.EqualTo(new long[] { 4, 5, 6, 9 }));
        // The global 50 % would be 5 records: all of B and A's two best.
        Assert.That(Selector.Select(TwoDomains(), SelectionOptions.TopPercent(50)).SelectedIndices, Is.EqualTo(new long[] { 5, 6, 7, 8, 9 }));
    }

    [Test]
    public void ProportionalQuotas_LargestRemainder()
    {
        Assert.Multiple(() =>
        {
            // 5 of [5, 3, 2]: exact 2.5, 1.5, 1 → floors 2, 1, 1; one left; remainders tie (.5, .5) → first domain.
            Assert.That(Selector.ProportionalQuotas([5, 3, 2], 5), Is.EqualTo(new long[] { 3, 1, 1 }));
            // 7 of [5, 3, 2]: exact 3.5, 2.1, 1.4 → floors 3, 2, 1; one left to the largest remainder (.5).
            Assert.That(Selector.ProportionalQuotas([5, 3, 2], 7), Is.EqualTo(new long[] { 4, 2, 1 }));
            // 2 of [1, 1, 8]: exact .2, .2, 1.6 → floors 0, 0, 1; one left to remainder .6.
            Assert.That(Selector.ProportionalQuotas([1, 1, 8], 2), Is.EqualTo(new long[] { 0, 0, 2 }));
            Assert.That(Selector.ProportionalQuotas([5, 3, 2], 50), Is.EqualTo(new long[] { 5, 3, 2 }));
            Assert.That(Selector.ProportionalQuotas([5, 3, 2], 0), Is.EqualTo(new long[] { 0, 0, 0 }));
        });
    }

    [Test]
    public void TopK_PerDomain_UsesProportionalQuotas()
    {
        // 5 of (A 7, B 3): exact 3.5, 1.5 → floors 3, 1; remainders tie → A (first by name) gets the last one.
        SelectionResult r = Selector.Select(TwoDomains(), SelectionOptions.TopK(5, perDomain: true));
        Assert.That(r.SelectedIndices, Is.EqualTo(new long[] { 3, 4, 5, 6, 9 }));
    }

    [Test]
    public void TokenBudget_Global_StopsBeforeTheFirstRecordThatWouldExceed()
    {
        ScoredItem[] items = [Ok(0, 0.9, 5), Ok(1, 0.8, 4), Ok(2, 0.7, 3), Ok(3, 0.6, 1)];
        SelectionResult r = Selector.Select(items, SelectionOptions.TokenBudget(10));
        // 5 + 4 = 9; + 3 would be 12 > 10 → stop (record 3's single token is not taken in its place).
        Assert.That(r.SelectedIndices, Is.EqualTo(new long[] { 0, 1 }));
        Assert.That(r.Summary.TokensAfter, Is.EqualTo(9));
        Assert.That(Selector.Select(items, SelectionOptions.TokenBudget(13)).SelectedIndices, Has.Length.EqualTo(4));
        Assert.That(Selector.Select(items, SelectionOptions.TokenBudget(12)).SelectedIndices, Has.Length.EqualTo(3));
    }

    private static ScoredItem[] BudgetExample()
    {
        // Rank order inside each domain = token lists below (scores descending).
        long[] a = [300, 200, 100, 50, 10, 5, 5, 5, 5, 5];
        long[] b = [40, 30, 20, 10, 5, 5, 5];
        var items = new List<ScoredItem>();
        for (int k = 0; k < a.Length; k++) items.Add(Ok(items.Count, 1.0 - 0.01 * k, a[k], "A"));
        for (int k = 0; k < b.Length; k++) items.Add(Ok(items.Count, 0.5 - 0.01 * k, b[k], "B"));
        return items.ToArray();
    }

    [Test]
    public void TokenBudget_PerDomain_IsFilterPyLoop_KeepingTheFirstSelectionOverBudget()
    {
        // filter.py, budget 600: p = 29 → A int(2.9) = 2 (500 tokens), B int(2.03) = 2 (70) → 570 ≤ 600, go on;
        // p = 30 → A 3 (600), B int(2.1) = 2 (70) → 670 > 600 → break, keeping p = 30's selection (over budget).
        SelectionResult r = Selector.Select(BudgetExample(), SelectionOptions.TokenBudget(600, perDomain: true));
        Assert.Multiple(() =>
        {
            Assert.That(r.Summary.Percent, Is.EqualTo(30));
            Assert.That(r.SelectedIndices, Is.EqualTo(new long[] { 0, 1, 2, 10, 11 }));
            Assert.That(r.Summary.TokensAfter, Is.EqualTo(670));
            Assert.That(r.Summary.Domains.Select(d => d.CountAfter), Is.EqualTo(new long[] { 3, 2 }));
        });
    }

    [Test]
    public void TokenBudget_PerDomain_EdgeCases()
    {
        // Budget 0: p = 1..9 select nothing (0 tokens, not > 0); p = 10 → A int(1.0) = 1 → 300 > 0 → keep that.
        SelectionResult zero = Selector.Select(BudgetExample(), SelectionOptions.TokenBudget(0, perDomain: true));
        Assert.That(zero.Summary.Percent, Is.EqualTo(10));
        Assert.That(zero.SelectedIndices, Is.EqualTo(new long[] { 0 }));
        // Budget never exceeded: p runs to 100 and everything is kept.
        SelectionResult all = Selector.Select(BudgetExample(), SelectionOptions.TokenBudget(1_000_000, perDomain: true));
        Assert.That(all.Summary.Percent, Is.EqualTo(100));
        Assert.That(all.SelectedIndices, Has.Length.EqualTo(17));
    }

    [Test]
    public void FilterPyCount_IsIntOfLenTimesPercentTimesPointZeroOne()
    {
        Assert.Multiple(() =>
        {
            Assert.That(Selector.FilterPyCount(7, 29), Is.EqualTo(2));
            Assert.That(Selector.FilterPyCount(10, 10), Is.EqualTo(1));
            Assert.That(Selector.FilterPyCount(10, 9), Is.EqualTo(0));
            Assert.That(Selector.FilterPyCount(123456, 100), Is.EqualTo(123456));
        });
    }

    [Test]
    public void Invalid_Input_IsRejected()
    {
        Assert.Throws<ArgumentException>(() => Selector.Rank([Ok(0, 0.5), Ok(0, 0.6)]));
        Assert.Throws<ArgumentException>(() => Selector.Rank([new ScoredItem(0, ScoreStatus.Ok, double.NaN, 1, null)]));
        Assert.Throws<ArgumentOutOfRangeException>(() => SelectionOptions.TopPercent(0));
        Assert.Throws<ArgumentOutOfRangeException>(() => SelectionOptions.TopPercent(100.5));
    }

    [Test]
    public void Copier_CopiesChosenLinesUnchanged_InInputOrder()
    {
        using var dir = new TempDir();
        string input = dir.File("in.jsonl");
        string[] lines = ["{\"text\":  \"zero\"}", "{ \"text\" : \"one\" , \"x\":1.50 }", "{\"text\": \"two\"}", "{\"text\":\"thrée\"}", "{\"text\": \"four\"}"];
        File.WriteAllText(input, string.Join("\r\n", lines) + "\r\n");
        var output = new MemoryStream();
        (long read, long written) = SelectionCopier.Copy(input, [1, 3], output, expectedRecordCount: 5);
        Assert.Multiple(() =>
        {
            Assert.That((read, written), Is.EqualTo((5L, 2L)));
            Assert.That(Encoding.UTF8.GetString(output.ToArray()), Is.EqualTo(lines[1] + "\n" + lines[3] + "\n"));
        });
    }

    [Test]
    public void Copier_InputThatDoesNotMatchTheScores_Throws()
    {
        using var dir = new TempDir();
        string input = dir.File("in.jsonl");
        File.WriteAllText(input, "{\"text\": \"a\"}\n{\"text\": \"b\"}\n");
        var e = Assert.Throws<InvalidOperationException>(() => SelectionCopier.Copy(input, [0, 7], new MemoryStream()));
        Assert.That(e!.Message, Does.Contain("record 7").And.Contain("only 2 records"));
        Assert.Throws<InvalidOperationException>(() => SelectionCopier.Copy(input, [0], new MemoryStream(), expectedRecordCount: 3));
        Assert.Throws<ArgumentException>(() => SelectionCopier.Copy(input, [1, 0], new MemoryStream()));
    }
}
