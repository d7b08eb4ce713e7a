package vi_test

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gonum.org/v1/gonum/mat"

	"github.com/backpropq/backpropq/ad"
	"github.com/backpropq/backpropq/infer"
	"github.com/backpropq/backpropq/nn"
	"github.com/backpropq/backpropq/ppl"
	"github.com/backpropq/backpropq/ppl/dist"
	"github.com/backpropq/backpropq/vi"
)

// The Gaussian mixture of mixK unit-variance components in 1-D, weights
// ~ Dirichlet(1, ..., 1), means ~ N(0, 10²), assignments z_i ~
// Categorical(weights), x_i ~ N(means[z_i], 1).
const mixK = 3

func mixData(seed uint64, n int) []float64 {
	rng := rand.New(rand.NewPCG(seed, 99))
	means, cum := []float64{-4, 0, 3.5}, []float64{0.3, 0.6, 1}
	xs := make([]float64, n)
	for i := range xs {
		u, k := rng.Float64(), 0
		for u > cum[k] {
			k++
		}
		xs[i] = means[k] + rng.NormFloat64()
	}
	return xs
}

func mixModel(xs []float64) ppl.Model {
	return func(ctx *ppl.Ctx) {
		tp, p := ctx.Tape(), ctx.Batch()
		w := ppl.Sample(ctx, "weights", dist.Dirichlet{Concentration: tp.Full(p, mixK, 1)})
		mu := ppl.Sample(ctx, "means", dist.Normal{Loc: tp.Zeros(p, mixK), Scale: tp.Full(p, mixK, 10)})
		data := ppl.Plate(ctx, "data", len(xs))
		z := ppl.Sample(data, "z", dist.Categorical{Logits: ppl.Broadcast(data, ad.Log(w))})
		loc := ad.Gather(ppl.Broadcast(data, mu), z)
		ppl.Observe(data, "x", dist.Normal{Loc: loc, Scale: tp.Full(data.Rows(), 1, 1)}, ppl.Data(data, tp.FromData(len(xs), 1, xs)))
	}
}

// mixGuide is the MAP guide of the weights and means, starting from
// uniform weights and the means start.
func mixGuide(start []float64) ppl.Model {
	return func(ctx *ppl.Ctx) {
		w := ppl.ParamIn(ctx, "w", 1, mixK, dist.Simplex, nn.Constant(1.0/mixK))
		mu := ppl.Param(ctx, "mu", 1, mixK, nn.InitFunc(func(m *mat.Dense, _ *rand.Rand) { m.SetRow(0, start) }))
		ppl.Sample(ctx, "weights", dist.Delta{Value: ppl.Expand(ctx, w)})
		ppl.Sample(ctx, "means", dist.Delta{Value: ppl.Expand(ctx, mu)})
	}
}

// mixLogLik returns Σ_i log Σ_k w_k N(x_i; mu_k, 1) and the
// responsibilities p(z_i = k | x_i).
func mixLogLik(xs, w, mu []float64) (float64, [][]float64) {
	var ll float64
	resp := make([][]float64, len(xs))
	for i, x := range xs {
		r, tot := make([]float64, mixK), 0.0
		for k := range mixK {
			r[k] = w[k] * math.Exp(-0.5*(x-mu[k])*(x-mu[k])) / math.Sqrt(2*math.Pi)
			tot += r[k]
		}
		for k := range r {
			r[k] /= tot
		}
		resp[i], ll = r, ll+math.Log(tot)
	}
	return ll, resp
}

// mixEM runs EM on the weights and means from uniform weights and start.
func mixEM(xs, start []float64) (w, mu []float64) {
	w, mu = []float64{1.0 / mixK, 1.0 / mixK, 1.0 / mixK}, slices.Clone(start)
	for range 2000 {
		_, resp := mixLogLik(xs, w, mu)
		for k := range mixK {
			var nk, sx float64
			for i, r := range resp {
				nk += r[k]
				sx += r[k] * xs[i]
			}
			w[k], mu[k] = nk/float64(len(xs)), sx/nk
		}
	}
	return w, mu
}

// TestTraceEnumMixture: the mixture trained with its assignments summed
// out in the model reaches the log-likelihood of EM run from the same
// start within 1 nat on at least 4 of 5 seeds, and the posterior of the
// assignments is the responsibilities computed by hand from the learned
// parameters.
func TestTraceEnumMixture(t *testing.T) {
	reached := 0
	for seed := range uint64(5) {
		xs := mixData(seed, 300)
		rng := rand.New(rand.NewPCG(seed, 5))
		start := []float64{xs[rng.IntN(300)], xs[rng.IntN(300)], xs[rng.IntN(300)]}
		obj := vi.TraceEnum{ELBO: vi.ELBO{Model: mixModel(xs), Guide: mixGuide(start)}, Site: "z"}
		adam := nn.NewAdam(0.05)
		svi := &infer.SVI{Objective: obj, Optimizer: adam, Params: nn.NewStore(), Particles: 1, Seed: seed}
		for i := range 1500 {
			if i == 1000 {
				adam.LR = 0.005
			}
			_, err := svi.Step()
			require.NoError(t, err)
		}
		simplex, err := dist.BijectTo(dist.Simplex)
		require.NoError(t, err)
		weights := simplex.Forward(ad.NewTape().Const(svi.Params.Get("w").Value)).Data()
		means := svi.Params.Get("mu").Value.RawRowView(0)
		ll, resp := mixLogLik(xs, weights, means)
		emW, emMu := mixEM(xs, start)
		emLL, _ := mixLogLik(xs, emW, emMu)
		t.Logf("seed %d: log-likelihood %.3f, EM %.3f; weights %.3f means %.3f; EM %.3f %.3f", seed, ll, emLL, weights, means, emW, emMu)
		if ll > emLL-1 {
			reached++
		}

		post, err := obj.Posterior(ppl.Config{Params: svi.Params, Batch: 1, Rand: rng})
		require.NoError(t, err)
		for i := range xs {
			for k := range mixK {
				require.InDelta(t, resp[i][k], post.At(i, k), 1e-9, "p(z[%d] = %d)", i, k)
			}
		}
	}
	assert.GreaterOrEqual(t, reached, 4, "seeds reaching EM's log-likelihood within 1 nat")
}

// TestTraceEnumLoss: the loss is minus the log joint of the guide's point
// estimates with the assignments summed out, by hand.
func TestTraceEnumLoss(t *testing.T) {
	xs := mixData(7, 20)
	start := []float64{-1, 0.5, 2}
	obj := vi.TraceEnum{ELBO: vi.ELBO{Model: mixModel(xs), Guide: mixGuide(start)}, Site: "z"}
	tr, err := obj.Run(ppl.Config{Params: nn.NewStore(), Rand: rand.New(rand.NewPCG(1, 2)), Batch: 1})
	require.NoError(t, err)
	ll, _ := mixLogLik(xs, []float64{1.0 / 3, 1.0 / 3, 1.0 / 3}, start)
	logPrior := math.Log(2) // Dirichlet(1, 1, 1) has density Γ(3) = 2
	for _, m := range start {
		logPrior += -0.5*m*m/100 - math.Log(10*math.Sqrt(2*math.Pi))
	}
	assert.InDelta(t, -(ll + logPrior), vi.Loss(tr).Item(), 1e-9)
	assert.NotNil(t, tr.Site(vi.EnumAddr("z")))
	assert.Nil(t, tr.Site("x"), "the observations inside the plate are summed into enum(z)")
}

// TestTraceEnumErrors: misuse is an error naming the address.
func TestTraceEnumErrors(t *testing.T) {
	xs := mixData(7, 20)
	guide := mixGuide([]float64{-1, 0.5, 2})
	run := func(obj vi.TraceEnum) error {
		_, err := obj.Run(ppl.Config{Params: nn.NewStore(), Rand: rand.New(rand.NewPCG(1, 2)), Batch: 1})
		return err
	}
	err := run(vi.TraceEnum{ELBO: vi.ELBO{Model: mixModel(xs), Guide: guide}, Site: "z", MaxValues: 2})
	assert.ErrorContains(t, err, `"z"`, "more values than the limit")
	assert.ErrorContains(t, err, "limit of 2")
	err = run(vi.TraceEnum{ELBO: vi.ELBO{Model: mixModel(xs), Guide: guide}, Site: "nope"})
	assert.ErrorContains(t, err, `"z"`, "a latent neither summed out nor guided")

	continuous := func(ctx *ppl.Ctx) {
		tp, p := ctx.Tape(), ctx.Batch()
		ppl.Sample(ctx, "means", dist.Normal{Loc: tp.Zeros(p, mixK), Scale: tp.Full(p, mixK, 10)})
		ppl.Sample(ctx, "weights", dist.Dirichlet{Concentration: tp.Full(p, mixK, 1)})
		ppl.Sample(ctx, "u", dist.Normal{Loc: tp.Zeros(p, 1), Scale: tp.Full(p, 1, 1)})
	}
	err = run(vi.TraceEnum{ELBO: vi.ELBO{Model: continuous, Guide: guide}, Site: "u"})
	assert.ErrorContains(t, err, `"u"`, "a continuous latent")
	assert.ErrorContains(t, err, "discrete")

	outer := func(ctx *ppl.Ctx) {
		mixModel(xs)(ctx)
		tp, p := ctx.Tape(), ctx.Batch()
		ppl.Sample(ctx, "c", dist.BernoulliProbs(tp.Full(p, 1, 0.5)))
	}
	err = run(vi.TraceEnum{ELBO: vi.ELBO{Model: outer, Guide: guide}, Site: "[zc]"})
	assert.ErrorContains(t, err, "a second latent", "two latents match")

	leaky := func(ctx *ppl.Ctx) {
		tp, p := ctx.Tape(), ctx.Batch()
		w := ppl.Sample(ctx, "weights", dist.Dirichlet{Concentration: tp.Full(p, mixK, 1)})
		ppl.Sample(ctx, "means", dist.Normal{Loc: tp.Zeros(p, mixK), Scale: tp.Full(p, mixK, 10)})
		data := ppl.Plate(ctx, "data", len(xs))
		z := ppl.Sample(data, "z", dist.Categorical{Logits: ppl.Broadcast(data, ad.Log(w))})
		ppl.Cost(ctx, "total", ppl.SumOut(data, z))
	}
	err = run(vi.TraceEnum{ELBO: vi.ELBO{Model: leaky, Guide: guide}, Site: "z"})
	assert.ErrorContains(t, err, `"total"`, "a cost outside the plates that depends on z")
}
