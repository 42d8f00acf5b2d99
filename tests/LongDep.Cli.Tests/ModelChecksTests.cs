using LongDep.Cli.Runtime;
using LongDep.Core.Pipeline;
using LongDep.Models;
using LongDep.Models.Synthetic;
using NUnit.Framework;

namespace LongDep.Cli.Tests;

/// <summary>What a model's own limits say about a run, before its first record.</summary>
public class ModelChecksTests
{
    [Test]
    public void OptWindowPastItsLearnedPositions_IsRefusedForLadm_ButAllowedForProLong()
    {
        var opt = RandomModel.Shape("opt-350m"); // 2,048 learned positions
        var ladm = new ScoreSettings { Method = ScoreMethod.Ladm, Window = 32768 };
        var e = Assert.Throws<CliException>(() => ModelChecks.BeforeScoring(opt, ladm));
        Assert.That(e!.Message, Does.Contain("2,048 learned positions").And.Contain("--window 2,048 or less"));
        Assert.That(ModelChecks.BeforeScoring(opt, ladm with { Window = 2048 }), Is.Empty);

        // ProLong's paper setting on opt-350m: W = 32768, but only a pair (256 tokens) runs at once.
        var prolong = new ScoreSettings { Method = ScoreMethod.ProLong, Window = 32768, Chunk = 128 };
        Assert.That(ModelChecks.BeforeScoring(opt, prolong), Is.Empty);
        Assert.That(() => ModelChecks.BeforeScoring(opt, prolong with { Chunk = 1100 }),
            Throws.TypeOf<CliException>().With.Message.Contains("--chunk 1024 or less"));
    }

    [Test]
    public void AWindowPastTheTrainedContext_IsSaidOnce_NamingBothLengths()
    {
        var llama = RandomModel.Shape("tiny") with { ContextLength = 8192 };
        var warnings = ModelChecks.BeforeScoring(llama, new ScoreSettings { Method = ScoreMethod.Ladm, Window = 32768 });
        Assert.That(warnings, Has.Count.EqualTo(1));
        Assert.That(warnings[0], Does.Contain("8,192").And.Contain("32,768"));
        Assert.That(ModelChecks.BeforeScoring(llama, new ScoreSettings { Method = ScoreMethod.Ladm, Window = 8192 }), Is.Empty);
        Assert.That(ModelChecks.BeforeScoring(llama, new ScoreSettings { Method = ScoreMethod.ProLong, Window = 32768 }), Is.Empty,
            "ProLong runs pairs of 2l tokens");
    }
}
