using LongDep.Cuda.SelfTest;
using LongDep.Cuda.Twins;
using LongDep.Models;
using LongDep.Models.Cpu;
using LongDep.Models.Synthetic;
using NUnit.Framework;

namespace LongDep.Cuda.Tests;

/// <summary>The GPU per-token NLL (longdep ppl) on the simulated backend against the CPU forward.</summary>
public class SequenceNllTests
{
    [Test]
    public void TokenNll_F32_MatchesTheCpuForward_AndIsShiftedToTheTokenItScores()
    {
        var config = RandomModel.TinyConfig(RopeStyle.Halves, qkvBias: true);
        var weights = RandomModel.Create(config, 21);
        var tokens = CudaSelfTest.RandomTokens(300, config.VocabSize, 5);
        using var backend = new SimulatedBackend();
        double[] gpu;
        using (var model = new CudaModel(backend, weights, new CudaModelOptions { Precision = CudaPrecision.F32, MlpTileRows = 64, LogitsTileBytes = 40L * config.VocabSize * 4 }))
        using (var nll = new CudaSequenceNll(model))
        {
            gpu = nll.TokenNll(tokens);
            var again = nll.TokenNll(tokens.AsSpan(0, 120)); // reuses the workspace for a shorter sequence
            Assert.That(again, Is.EqualTo(gpu[..120]).Within(1e-6));
        }
        var targets = tokens.Skip(1).Append(-1).ToArray();
        var cpu = new CpuForward(weights).TokenNll(tokens, targets, null, out _, keepCache: false);
        Assert.That(double.IsNaN(gpu[0]), Is.True, "the first token has no prediction");
        for (int t = 1; t < tokens.Length; t++)
            Assert.That(gpu[t], Is.EqualTo(cpu[t - 1]).Within(1e-5 * Math.Abs(cpu[t - 1]) + 1e-6), $"token {t}");
        Assert.That(backend.LiveAllocations, Is.Zero);
    }
}
