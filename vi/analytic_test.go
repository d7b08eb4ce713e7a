package vi_test

import (
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/backpropq/backpropq/ad"
	"github.com/backpropq/backpropq/ppl"
	"github.com/backpropq/backpropq/ppl/dist"
	"github.com/backpropq/backpropq/trace"
	"github.com/backpropq/backpropq/vi"
)

// expectedLoss returns E_q[loss] of obj by enumerating the binary latents
// addrs, one row each.
func expectedLoss(t *testing.T, obj vi.ELBO, addrs ...string) float64 {
	t.Helper()
	total := 0.0
	for c := 0; c < 1<<len(addrs); c++ {
		tp := ad.NewTape()
		values := map[string]*ad.Tensor{}
		for i, a := range addrs {
			values[a] = tp.Scalar(float64(c >> i & 1))
		}
		tr, err := obj.Run(ppl.Config{Tape: tp, Batch: 1}, trace.ReplayValues(values))
		require.NoError(t, err)
		logq := 0.0
		for _, s := range tr.Sites() {
			if s.Stochastic() {
				logq += s.LogProb.Item()
			}
		}
		total += exp(logq) * vi.Loss(tr).Item()
	}
	return total
}

// TestAnalyticKLWhateverTheGuideOrder holds the closed-form KL to the
// sampled ELBO's expectation on models whose guide samples the latents
// in another order than the model, so that a latent's prior depends on a
// latent the guide draws after it.
func TestAnalyticKLWhateverTheGuideOrder(t *testing.T) {
	bern := func(tp *ad.Tape, logit float64, given *ad.Tensor, w float64) dist.Bernoulli {
		l := tp.Scalar(logit)
		if given != nil {
			l = ad.Add(l, ad.Scale(given, w))
		}
		return dist.BernoulliLogits(l)
	}
	model := func(ctx *ppl.Ctx) {
		tp := ctx.Tape()
		z1 := ppl.Sample(ctx, "z1", bern(tp, 0.3, nil, 0))
		z2 := ppl.Sample(ctx, "z2", bern(tp, -0.8, z1, 2.1))
		ppl.Observe(ctx, "x", dist.Normal{Loc: ad.Add(z1, z2), Scale: tp.Scalar(0.7)}, tp.Scalar(1.4))
	}
	guides := map[string]ppl.Model{
		"same order": func(ctx *ppl.Ctx) {
			tp := ctx.Tape()
			z1 := ppl.Sample(ctx, "z1", bern(tp, 0.5, nil, 0))
			ppl.Sample(ctx, "z2", bern(tp, 0.2, z1, -1.3))
		},
		"reversed": func(ctx *ppl.Ctx) {
			tp := ctx.Tape()
			z2 := ppl.Sample(ctx, "z2", bern(tp, 0.4, nil, 0))
			ppl.Sample(ctx, "z1", bern(tp, -0.6, z2, 1.7))
		},
	}
	for name, guide := range guides {
		sampled := expectedLoss(t, vi.ELBO{Model: model, Guide: guide}, "z1", "z2")
		analytic := expectedLoss(t, vi.ELBO{Model: model, Guide: guide, AnalyticKL: true}, "z1", "z2")
		t.Logf("%s: sampled %.4f, analytic %.4f", name, sampled, analytic)
		assert.InDelta(t, sampled, analytic, 1e-12, name)
	}
}

func exp(x float64) float64 { return math.Exp(x) }
