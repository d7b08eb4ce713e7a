package trace_test

import (
	"testing"

	"github.com/backpropq/backpropq/ad"
	"github.com/backpropq/backpropq/ppl"
	"github.com/backpropq/backpropq/ppl/dist"
	"github.com/backpropq/backpropq/trace"
)

// chain100 is a chain of 100 scalar Bernoulli sites with one cost: the
// per-site overhead of tracing dominates.
func chain100(ctx *ppl.Ctx) {
	tp := ctx.Tape()
	x := tp.Zeros(1, 1)
	for t := 0; t < 100; t++ {
		x = ppl.Sample(ctx, ppl.At("x", t), dist.BernoulliLogits(ad.Sub(x, tp.Scalar(0.5))))
	}
	ppl.Cost(ctx, "f", x)
}

// chain100Bare is chain100 without ppl: the same draws and log-probs.
func chain100Bare(tp *ad.Tape, env ppl.Config) {
	x := tp.Zeros(1, 1)
	for t := 0; t < 100; t++ {
		d := dist.BernoulliLogits(ad.Sub(x, tp.Scalar(0.5)))
		x = d.Sample(env.Rand)
		d.LogProb(x)
	}
}

func BenchmarkRunChain100(b *testing.B) {
	tp := ad.NewTape()
	env := ppl.Config{Tape: tp, Rand: seeded()}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := trace.Run(chain100, env); err != nil {
			b.Fatal(err)
		}
		tp.Reset()
	}
}

func BenchmarkRunChain100Bare(b *testing.B) {
	tp := ad.NewTape()
	env := ppl.Config{Tape: tp, Rand: seeded()}
	b.ReportAllocs()
	for b.Loop() {
		chain100Bare(tp, env)
		tp.Reset()
	}
}

func BenchmarkGraphScopesChain100(b *testing.B) {
	tr, err := trace.Run(chain100, trace.Seed(seeded()))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		tr.Graph()
		g := tr.Graph()
		for _, x := range g.Stochastic() {
			g.Scope(x, "f")
		}
	}
}
