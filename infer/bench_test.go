package infer

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"gonum.org/v1/gonum/mat"

	"github.com/backpropq/backpropq/ad"
	"github.com/backpropq/backpropq/nn"
	"github.com/backpropq/backpropq/ppl"
	"github.com/backpropq/backpropq/ppl/dist"
	"github.com/backpropq/backpropq/vi"
)

// noTerm is an estimator that adds nothing: with it a step is the model's
// and guide's forward and backward passes and the optimizer step alone,
// the reference the estimators' overhead is measured from.
type noTerm struct{}

func (noTerm) Unbiased() bool                       { return false }
func (noTerm) Surrogate(*SiteContext) (Term, error) { return Term{}, nil }

// linearSBN returns the ELBO of a linear sigmoid belief network with 784
// visible and 200 latent units on a batch x of binary data: the guide
// q(h|x) = Bernoulli(x·Wq + bq), the prior p(h) = Bernoulli(prior) and the
// likelihood p(x|h) = Bernoulli(h·W + b).
func linearSBN(x *mat.Dense) vi.ELBO {
	return vi.ELBO{
		Model: func(ctx *ppl.Ctx) {
			tp := ctx.Tape()
			prior := ppl.Param(ctx, "p/prior", 1, 200, nn.Zeros{})
			dec := ppl.Param(ctx, "p/W", 200, 784, nn.Normal{Std: 0.01})
			decB := ppl.Param(ctx, "p/b", 1, 784, nn.Zeros{})
			h := ppl.Sample(ctx, "h", dist.BernoulliLogits(ppl.Expand(ctx, prior)))
			ppl.Observe(ctx, "x", dist.BernoulliLogits(ad.Add(ad.MatMul(h, dec), decB)), tp.Const(x))
		},
		Guide: func(ctx *ppl.Ctx) {
			enc := ppl.Param(ctx, "q/W", 784, 200, nn.Normal{Std: 0.01})
			encB := ppl.Param(ctx, "q/b", 1, 200, nn.Zeros{})
			ppl.Sample(ctx, "h", dist.BernoulliLogits(ad.Add(ad.MatMul(ctx.Tape().Const(x), enc), encB)))
		},
	}
}

// binaryImages returns batch rows of 784 seeded random binary pixels, 30%
// of them on.
func binaryImages(batch int) *mat.Dense {
	rng := rand.New(rand.NewPCG(1, 2))
	data := make([]float64, batch*784)
	for i := range data {
		if rng.Float64() < 0.3 {
			data[i] = 1
		}
	}
	return mat.NewDense(batch, 784, data)
}

// BenchmarkSVIStep times one SVI step of a 784-200 linear SBN at B = 24
// per estimator; "model" is the forward and backward passes and the
// optimizer step without any estimator term, so an estimator's overhead
// is its time minus model's.
func BenchmarkSVIStep(b *testing.B) {
	const batch = 24
	x := binaryImages(batch)
	features := func(sc *SiteContext) (*ad.Tensor, error) {
		return sc.Signal.Tape().Const(x), nil
	}
	cases := []struct {
		name string
		est  func() Estimator
	}{
		{"model", func() Estimator { return noTerm{} }},
		{"REINFORCE", func() Estimator { return ScoreFunction{} }},
		{"REINFORCE+MovingAverage", func() Estimator { return ScoreFunction{Baseline: NewMovingAverage(0.9)} }},
		{"NVIL", func() Estimator {
			n := NewNVIL(100)
			n.Features = features
			return ScoreFunction{Baseline: n}
		}},
		{"ARM", func() Estimator { return ARM{} }},
		{"DisARM", func() Estimator { return DisARM{} }},
	}
	// modelNs is the time of a step of the "model" case, which runs
	// first; each estimator reports its time beyond it.
	var modelNs float64
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			s := &SVI{
				Objective:  linearSBN(x),
				Estimators: Estimators{Default: c.est()},
				Optimizer:  nn.NewAdam(1e-3),
				Params:     nn.NewStore(),
				Particles:  batch,
				Seed:       1,
			}
			if _, err := s.Step(); err != nil {
				b.Fatal(err)
			}
			var m Metrics
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if err := s.StepInto(&m); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			perStep := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
			if c.name == "model" {
				modelNs = perStep
			} else if modelNs > 0 {
				b.ReportMetric(perStep-modelNs, "overhead-ns/op")
			}
		})
	}
}

// BenchmarkSVIStepWorkers times an NVIL step of the linear SBN at B = 50
// with the batch in one run (the matrix products and costly elementwise
// ops use the idle cores themselves) and in two chunks run by one or two
// workers (particles in parallel).
func BenchmarkSVIStepWorkers(b *testing.B) {
	const batch = 50
	x := binaryImages(batch)
	for _, c := range []struct{ chunks, workers int }{{1, 1}, {2, 1}, {2, 2}} {
		b.Run(fmt.Sprintf("chunks=%d/workers=%d", c.chunks, c.workers), func(b *testing.B) {
			s := &SVI{
				Objective: linearSBN(x),
				Chunk: func(from, to int) vi.Objective {
					return linearSBN(x.Slice(from, to, 0, 784).(*mat.Dense))
				},
				Estimators: Estimators{Default: ScoreFunction{Baseline: NewNVIL(100)}},
				Optimizer:  nn.NewAdam(1e-3),
				Params:     nn.NewStore(),
				Particles:  batch,
				Chunks:     c.chunks,
				Workers:    c.workers,
				Seed:       1,
			}
			if _, err := s.Step(); err != nil {
				b.Fatal(err)
			}
			var m Metrics
			b.ReportAllocs()
			for b.Loop() {
				if err := s.StepInto(&m); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// gaussVAE returns the ELBO of a variational autoencoder on a batch x of
// binary images: 20 standard normal latents, a decoder and an encoder of
// two 200-unit tanh layers each, the guide's scales through softplus, and
// a Bernoulli likelihood of the 784 pixels.
func gaussVAE(x *mat.Dense) vi.ELBO {
	const latents, hidden = 20, 200
	dense := func(ctx *ppl.Ctx, w, b string, x *ad.Tensor, out int) *ad.Tensor {
		return ad.Add(ad.MatMul(x, ppl.Param(ctx, w, x.Cols(), out, nn.GlorotUniform{})), ppl.Param(ctx, b, 1, out, nn.Zeros{}))
	}
	net := func(ctx *ppl.Ctx, names [6]string, x *ad.Tensor, out int) *ad.Tensor {
		x = ad.Tanh(dense(ctx, names[0], names[1], x, hidden))
		x = ad.Tanh(dense(ctx, names[2], names[3], x, hidden))
		return dense(ctx, names[4], names[5], x, out)
	}
	return vi.ELBO{
		Model: func(ctx *ppl.Ctx) {
			tp := ctx.Tape()
			z := ppl.Sample(ctx, "z", dist.Normal{Loc: ppl.Expand(ctx, tp.Zeros(1, latents)), Scale: tp.Scalar(1)})
			logits := net(ctx, [6]string{"p/W0", "p/b0", "p/W1", "p/b1", "p/W2", "p/b2"}, z, 784)
			ppl.Observe(ctx, "x", dist.BernoulliLogits(logits), tp.Const(x))
		},
		Guide: func(ctx *ppl.Ctx) {
			out := net(ctx, [6]string{"q/W0", "q/b0", "q/W1", "q/b1", "q/W2", "q/b2"}, ctx.Tape().Const(x), 2*latents)
			scale := ad.Add(ad.Softplus(ad.Slice(out, latents, 2*latents)), ctx.Tape().Scalar(1e-4))
			ppl.Sample(ctx, "z", dist.Normal{Loc: ad.Slice(out, 0, latents), Scale: scale})
		},
	}
}

// BenchmarkSVIStepGaussVAE times one SVI step of the Gaussian VAE at
// B = 20 with the pathwise gradient.
func BenchmarkSVIStepGaussVAE(b *testing.B) {
	const batch = 20
	x := binaryImages(batch)
	s := &SVI{
		Objective: gaussVAE(x),
		Optimizer: nn.NewAdam(1e-3),
		Params:    nn.NewStore(),
		Particles: batch,
		Seed:      1,
	}
	if _, err := s.Step(); err != nil {
		b.Fatal(err)
	}
	var m Metrics
	b.ReportAllocs()
	for b.Loop() {
		if err := s.StepInto(&m); err != nil {
			b.Fatal(err)
		}
	}
}
