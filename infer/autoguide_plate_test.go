package infer_test

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gonum.org/v1/gonum/mat"

	"github.com/backpropq/backpropq/ad"
	"github.com/backpropq/backpropq/infer"
	"github.com/backpropq/backpropq/nn"
	"github.com/backpropq/backpropq/ppl"
	"github.com/backpropq/backpropq/ppl/dist"
	"github.com/backpropq/backpropq/trace"
	"github.com/backpropq/backpropq/vi"
)

// The hierarchical model mu ~ N(0, 3²), z_i ~ N(mu, 1), x_i ~ N(z_i,
// 0.5²) for hierN points, seen in minibatches of hierSub.
const (
	hierN   = 12
	hierSub = 4
)

func hierModel(xs []float64, sub int) ppl.Model {
	return func(ctx *ppl.Ctx) {
		tp, p := ctx.Tape(), ctx.Batch()
		mu := ppl.Sample(ctx, "mu", dist.Normal{Loc: tp.Zeros(p, 1), Scale: tp.Full(p, 1, 3)})
		data := ppl.Plate(ctx, "data", len(xs), ppl.Subsample(sub))
		z := ppl.Sample(data, "z", dist.Normal{Loc: ppl.Broadcast(data, mu), Scale: tp.Full(data.Rows(), 1, 1)})
		ppl.Observe(data, "x", dist.Normal{Loc: z, Scale: tp.Full(data.Rows(), 1, 0.5)}, ppl.Data(data, tp.FromData(len(xs), 1, xs)))
	}
}

// hierOptimum returns the means and sds of the mean-field optimum over
// (mu, z_1, ..., z_N): the exact posterior means and the inverse square
// roots of the posterior precision's diagonal.
func hierOptimum(xs []float64) (mean, sd []float64) {
	n := len(xs) + 1
	prec := mat.NewSymDense(n, nil)
	rhs := mat.NewVecDense(n, nil)
	prec.SetSym(0, 0, 1.0/9)
	for i, x := range xs {
		prec.SetSym(0, 0, prec.At(0, 0)+1)
		prec.SetSym(i+1, i+1, 1+4)
		prec.SetSym(0, i+1, -1)
		rhs.SetVec(i+1, 4*x)
	}
	var m mat.VecDense
	if err := m.SolveVec(prec, rhs); err != nil {
		panic(err)
	}
	for j := range n {
		mean = append(mean, m.AtVec(j))
		sd = append(sd, 1/math.Sqrt(prec.At(j, j)))
	}
	return mean, sd
}

// TestAutoNormalSubsampledPlate: a local latent in a subsampled plate
// gets a location and scale per member, trained on the members of each
// minibatch, and reaches the mean-field optimum.
func TestAutoNormalSubsampledPlate(t *testing.T) {
	if testing.Short() {
		t.Skip("trains to convergence; run without -short")
	}
	rng := rand.New(rand.NewPCG(3, 4))
	xs := make([]float64, hierN)
	for i := range xs {
		xs[i] = 2 + rng.NormFloat64()*1.2
	}
	model := hierModel(xs, hierSub)
	guide, err := infer.NewAutoNormal(model, infer.AutoOptions{})
	require.NoError(t, err)
	store := trainAuto(t, model, guide.Guide, 6000)
	mean, sd := hierOptimum(xs)
	loc, scale, err := guide.Params(store, "mu")
	require.NoError(t, err)
	assert.InDelta(t, mean[0], loc.At(0, 0), 0.05, "mean of mu")
	assert.InEpsilon(t, sd[0], scale.At(0, 0), 0.05, "sd of mu")
	loc, scale, err = guide.Params(store, "z")
	require.NoError(t, err)
	require.Equal(t, hierN, loc.RawMatrix().Rows, "one row per member")
	for i := range xs {
		assert.InDelta(t, mean[i+1], loc.At(i, 0), 0.05, "mean of z[%d]", i)
		assert.InEpsilon(t, sd[i+1], scale.At(i, 0), 0.05, "sd of z[%d]", i)
	}
}

// TestAutoDiscreteCombined trains a model with a discrete latent z and a
// continuous one mu, each covered by its own automatic guide, with z's
// estimator enumerating it: the guide of z reaches the exact posterior
// of z given the guide of mu's point estimate.
func TestAutoDiscreteCombined(t *testing.T) {
	if testing.Short() {
		t.Skip("trains to convergence; run without -short")
	}
	model := func(ctx *ppl.Ctx) {
		tp, p := ctx.Tape(), ctx.Batch()
		mu := ppl.Sample(ctx, "mu", dist.Normal{Loc: tp.Zeros(p, 1), Scale: tp.Full(p, 1, 1)})
		z := ppl.Sample(ctx, "z", dist.BernoulliProbs(tp.Full(p, 1, 0.3)))
		loc := ad.Add(mu, ad.Scale(z, 2))
		ppl.Observe(ctx, "x", dist.Normal{Loc: loc, Scale: tp.Full(p, 1, 1)}, tp.Full(p, 1, 1.5))
	}
	delta, err := infer.NewAutoDelta(model, infer.AutoOptions{Sites: []string{"mu"}})
	require.NoError(t, err)
	disc, err := infer.NewAutoDiscrete(model, infer.AutoOptions{Sites: []string{"z"}})
	require.NoError(t, err)
	adam := nn.NewAdam(0.05)
	svi := &infer.SVI{Objective: vi.ELBO{Model: model, Guide: infer.Guides(delta.Guide, disc.Guide)},
		Estimators: infer.Estimators{Sites: map[string]infer.Estimator{"z": infer.Enumerate{}}},
		Optimizer:  adam, Params: nn.NewStore(), Particles: 16, Seed: 1}
	for i := range 4000 {
		switch i {
		case 2000:
			adam.LR = 0.005
		case 3000:
			adam.LR = 0.001
		}
		_, err := svi.Step()
		require.NoError(t, err)
	}
	mu, err := delta.Value(svi.Params, "mu")
	require.NoError(t, err)
	m := mu.At(0, 0)
	// At the optimum, q(z=1) is the posterior of z given mu = m, and m
	// maximizes E_q[log p(mu, z, x)]: m = q(z=1)·(x-2)+(1-q(z=1))·x over 2.
	logOdds := math.Log(0.3/0.7) - 0.5*(1.5-m-2)*(1.5-m-2) + 0.5*(1.5-m)*(1.5-m)
	logits := svi.Params.Get("AutoDiscrete/z/logits").Value.At(0, 0)
	assert.InDelta(t, logOdds, logits, 0.05, "logits of z")
	q1 := 1 / (1 + math.Exp(-logits))
	assert.InDelta(t, (1.5-2*q1)/2, m, 0.02, "MAP of mu")
}

// TestAutoGuideErrors: misuse is an error naming the address or pattern.
func TestAutoGuideErrors(t *testing.T) {
	mixed := func(ctx *ppl.Ctx) {
		tp, p := ctx.Tape(), ctx.Batch()
		ppl.Sample(ctx, "mu", dist.Normal{Loc: tp.Zeros(p, 1), Scale: tp.Full(p, 1, 1)})
		ppl.Sample(ctx, "z", dist.BernoulliProbs(tp.Full(p, 1, 0.3)))
	}
	_, err := infer.NewAutoNormal(mixed, infer.AutoOptions{})
	assert.ErrorContains(t, err, `"z"`, "a discrete latent under AutoNormal")
	_, err = infer.NewAutoDiscrete(mixed, infer.AutoOptions{})
	assert.ErrorContains(t, err, `"mu"`, "a continuous latent under AutoDiscrete")
	_, err = infer.NewAutoNormal(mixed, infer.AutoOptions{Sites: []string{"mu", "w*"}})
	assert.ErrorContains(t, err, `"w*"`, "a pattern that matches nothing")
	_, err = infer.NewAutoMultivariateNormal(hierModel(make([]float64, hierN), hierSub), infer.AutoOptions{})
	assert.ErrorContains(t, err, `"z"`, "a local latent under the full-rank guide")

	// The model gains a latent, changes one's shape or drops one after the
	// guide was built.
	for _, change := range []string{"extra", "shape", "drop"} {
		built := false
		model := func(ctx *ppl.Ctx) {
			tp, p := ctx.Tape(), ctx.Batch()
			cols := 1
			if built && change == "shape" {
				cols = 2
			}
			if !built || change != "drop" {
				ppl.Sample(ctx, "a", dist.Normal{Loc: tp.Zeros(p, cols), Scale: tp.Full(p, cols, 1)})
			}
			if built && change == "extra" {
				ppl.Sample(ctx, "b", dist.Normal{Loc: tp.Zeros(p, 1), Scale: tp.Full(p, 1, 1)})
			}
			ppl.Observe(ctx, "x", dist.Normal{Loc: tp.Zeros(p, 1), Scale: tp.Full(p, 1, 1)}, tp.Zeros(p, 1))
		}
		guide, err := infer.NewAutoNormal(model, infer.AutoOptions{})
		require.NoError(t, err)
		built = true
		svi := &infer.SVI{Objective: vi.ELBO{Model: model, Guide: guide.Guide}, Optimizer: nn.NewAdam(0.1), Params: nn.NewStore(), Particles: 2}
		_, err = svi.Step()
		want := map[string]string{"extra": `"b"`, "shape": `"a"`, "drop": `"a"`}[change]
		assert.ErrorContains(t, err, want, change)
	}
}

// TestAutoNormalPositive: a latent with a positive support is drawn
// through dist.BijectTo(dist.Positive); for the precision τ ~ Gamma(2, 2)
// of 100 points x_i ~ N(0, 1/τ) the posterior is Gamma(2 + 50, 2 + Σx²/2),
// whose log is nearly Normal at this size, so the guide's mean of τ,
// exp(loc + scale²/2), is within 2% of the posterior mean and its sd of
// log τ within 5% of 1/sqrt(52), the sd of the log of a Gamma(52).
func TestAutoNormalPositive(t *testing.T) {
	if testing.Short() {
		t.Skip("trains to convergence; run without -short")
	}
	rng := rand.New(rand.NewPCG(8, 9))
	xs := make([]float64, 100)
	var ss float64
	for i := range xs {
		xs[i] = rng.NormFloat64() / math.Sqrt(2.5)
		ss += xs[i] * xs[i]
	}
	model := func(ctx *ppl.Ctx) {
		tp, p := ctx.Tape(), ctx.Batch()
		tau := ppl.Sample(ctx, "tau", dist.Gamma{Concentration: tp.Full(p, 1, 2), Rate: tp.Full(p, 1, 2)})
		data := ppl.Plate(ctx, "data", len(xs))
		scale := ad.Div(tp.Full(data.Rows(), 1, 1), ad.Sqrt(ppl.Broadcast(data, tau)))
		ppl.Observe(data, "x", dist.Normal{Loc: tp.Zeros(data.Rows(), 1), Scale: scale}, ppl.Data(data, tp.FromData(len(xs), 1, xs)))
	}
	guide, err := infer.NewAutoNormal(model, infer.AutoOptions{})
	require.NoError(t, err)
	store := trainAuto(t, model, guide.Guide, 3000)
	loc, scale, err := guide.Params(store, "tau")
	require.NoError(t, err)
	m, s := loc.At(0, 0), scale.At(0, 0)
	assert.InEpsilon(t, 52/(2+ss/2), math.Exp(m+s*s/2), 0.02, "posterior mean of tau")
	assert.InEpsilon(t, 1/math.Sqrt(52), s, 0.05, "posterior sd of log tau")
}

// TestAutoNormalAmortized: with the plate's data as inputs, the local
// latent's location and scale come from a network of its member's
// observation; the mean-field optimum is linear in the observation (mean
// (4x + E mu)/5, sd 1/sqrt(5)), which the network learns.
func TestAutoNormalAmortized(t *testing.T) {
	if testing.Short() {
		t.Skip("trains to convergence; run without -short")
	}
	rng := rand.New(rand.NewPCG(3, 4))
	xs := make([]float64, hierN)
	for i := range xs {
		xs[i] = 2 + rng.NormFloat64()*1.2
	}
	model := hierModel(xs, hierSub)
	inputs := ad.NewTape().FromData(hierN, 1, xs)
	guide, err := infer.NewAutoNormal(model, infer.AutoOptions{Amortize: map[string]*ad.Tensor{"data": inputs}})
	require.NoError(t, err)
	store := trainAuto(t, model, guide.Guide, 6000)
	mean, sd := hierOptimum(xs)
	_, _, err = guide.Params(store, "z")
	assert.ErrorContains(t, err, `"z"`, "an amortized latent has no parameters of its own")
	for range 3 {
		tr, err := trace.Run(guide.Guide, ppl.Config{Params: store, Rand: rng, Batch: 1})
		require.NoError(t, err)
		z := tr.Site("z")
		q := z.Dist.(dist.Normal)
		for r, i := range z.Plates[0].Indices {
			assert.InDelta(t, mean[i+1], q.Loc.At(r, 0), 0.05, "mean of z[%d]", i)
			assert.InEpsilon(t, sd[i+1], q.Scale.At(r, 0), 0.05, "sd of z[%d]", i)
		}
	}

	_, err = infer.NewAutoNormal(model, infer.AutoOptions{Amortize: map[string]*ad.Tensor{"data": ad.NewTape().Zeros(3, 1)}})
	assert.ErrorContains(t, err, `"data"`, "inputs without a row per member")
	_, err = infer.NewAutoNormal(model, infer.AutoOptions{Amortize: map[string]*ad.Tensor{"nope": inputs}})
	assert.ErrorContains(t, err, `"nope"`, "a plate without latents")
}
