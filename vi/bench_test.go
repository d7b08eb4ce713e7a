package vi_test

import (
	"math/rand/v2"
	"testing"

	"github.com/backpropq/backpropq/ad"
	"github.com/backpropq/backpropq/nn"
	"github.com/backpropq/backpropq/ppl"
	"github.com/backpropq/backpropq/ppl/dist"
	"github.com/backpropq/backpropq/trace"
	"github.com/backpropq/backpropq/vi"
)

// linearSBN returns the model and guide of a one-layer sigmoid belief net
// with 200 latents and 784 visible units on a fixed binary batch.
func linearSBN(batch int) (model, guide ppl.Model) {
	rng := rand.New(rand.NewPCG(3, 4))
	data := make([]float64, batch*784)
	for i := range data {
		if rng.Float64() < 0.3 {
			data[i] = 1
		}
	}
	model = func(ctx *ppl.Ctx) {
		prior := ppl.Param(ctx, "p/prior", 1, 200, nn.Zeros{})
		h := ppl.Sample(ctx, "h", dist.BernoulliLogits(ppl.Expand(ctx, prior)))
		w := ppl.Param(ctx, "p/w", 200, 784, nn.Zeros{})
		x := ppl.Tile(ctx, ctx.Tape().FromData(batch, 784, data))
		ppl.Observe(ctx, "x", dist.BernoulliLogits(ad.MatMul(h, w)), x)
	}
	guide = func(ctx *ppl.Ctx) {
		x := ppl.Tile(ctx, ctx.Tape().FromData(batch, 784, data))
		w := ppl.Param(ctx, "q/w", 784, 200, nn.Zeros{})
		ppl.Sample(ctx, "h", dist.BernoulliLogits(ad.MatMul(x, w)))
	}
	return model, guide
}

// BenchmarkELBORun measures ELBO.Run on a 784-200 linear SBN at B=24;
// BenchmarkTwoRuns the guide and the replayed model alone, so that the
// difference is the objective's own overhead.
func BenchmarkELBORun(b *testing.B) {
	model, guide := linearSBN(24)
	store, tp := nn.NewStore(), ad.NewTape()
	rng := rand.New(rand.NewPCG(1, 2))
	obj := vi.ELBO{Model: model, Guide: guide}
	b.ReportAllocs()
	for b.Loop() {
		tp.Reset()
		tr, err := obj.Run(ppl.Config{Tape: tp, Rand: rng, Params: store, Batch: 24})
		if err != nil {
			b.Fatal(err)
		}
		vi.Loss(tr)
	}
}

func BenchmarkTwoRuns(b *testing.B) {
	model, guide := linearSBN(24)
	store, tp := nn.NewStore(), ad.NewTape()
	rng := rand.New(rand.NewPCG(1, 2))
	b.ReportAllocs()
	for b.Loop() {
		tp.Reset()
		env := ppl.Config{Tape: tp, Rand: rng, Params: store, Batch: 24}
		g, err := trace.Run(guide, env)
		if err != nil {
			b.Fatal(err)
		}
		m, err := trace.Run(model, ppl.Config{Tape: tp, Params: store, Batch: 24, FirstID: g.NextID()}, trace.Replay(g))
		if err != nil {
			b.Fatal(err)
		}
		ad.Sum(ad.Sub(m.LogProbSum(), g.LogProbSum()))
	}
}

// BenchmarkIWAERun is IWAE.Run with K=5 particles on the same model.
func BenchmarkIWAERun(b *testing.B) {
	model, guide := linearSBN(24)
	store, tp := nn.NewStore(), ad.NewTape()
	rng := rand.New(rand.NewPCG(1, 2))
	obj := vi.IWAE{Model: model, Guide: guide, K: 5}
	b.ReportAllocs()
	for b.Loop() {
		tp.Reset()
		tr, err := obj.Run(ppl.Config{Tape: tp, Rand: rng, Params: store, Batch: 24})
		if err != nil {
			b.Fatal(err)
		}
		vi.Loss(tr)
	}
}
