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
)

// The Bayesian linear regression y = w x + b + ε, ε ~ N(0, linNoise²),
// w, b ~ N(0, linPrior²), on linN points.
const (
	linN     = 200
	linNoise = 0.5
	linPrior = 2.0
)

// linData draws the regression's data from seed with w = 1.5, b = -0.7.
func linData(seed uint64) (xs, ys []float64) {
	rng := rand.New(rand.NewPCG(seed, 12))
	xs, ys = make([]float64, linN), make([]float64, linN)
	for i := range xs {
		xs[i] = 4*rng.Float64() - 2
		ys[i] = 1.5*xs[i] - 0.7 + linNoise*rng.NormFloat64()
	}
	return xs, ys
}

// linModel is the regression on inputs xs; it observes ys, or draws y
// when ys is nil (prediction at new inputs).
func linModel(xs, ys []float64) ppl.Model {
	return func(ctx *ppl.Ctx) {
		tp, p := ctx.Tape(), ctx.Batch()
		prior := dist.Normal{Loc: tp.Zeros(p, 1), Scale: tp.Full(p, 1, linPrior)}
		w, b := ppl.Sample(ctx, "w", prior), ppl.Sample(ctx, "b", prior)
		data := ppl.Plate(ctx, "data", len(xs))
		loc := ad.Add(ad.Mul(ppl.Broadcast(data, w), ppl.Data(data, tp.FromData(len(xs), 1, xs))), ppl.Broadcast(data, b))
		lik := dist.Normal{Loc: loc, Scale: tp.Full(data.Rows(), 1, linNoise)}
		if ys == nil {
			ppl.Sample(data, "y", lik)
			return
		}
		ppl.Observe(data, "y", lik, ppl.Data(data, tp.FromData(len(ys), 1, ys)))
	}
}

// linPosterior returns the exact posterior of (w, b): its mean and
// covariance.
func linPosterior(xs, ys []float64) (*mat.VecDense, *mat.SymDense) {
	prec := mat.NewSymDense(2, []float64{1 / (linPrior * linPrior), 0, 0, 1 / (linPrior * linPrior)})
	rhs := mat.NewVecDense(2, nil)
	v := linNoise * linNoise
	for i, x := range xs {
		f := mat.NewVecDense(2, []float64{x, 1})
		prec.SymRankOne(prec, 1/v, f)
		rhs.AddScaledVec(rhs, ys[i]/v, f)
	}
	var chol mat.Cholesky
	if !chol.Factorize(prec) {
		panic("posterior precision not positive definite")
	}
	var cov mat.SymDense
	if err := chol.InverseTo(&cov); err != nil {
		panic(err)
	}
	var mean mat.VecDense
	mean.MulVec(&cov, rhs)
	return &mean, &cov
}

// linExactGuide samples (w, b) from the exact posterior: w from its
// marginal, b from its conditional given w.
func linExactGuide(mean *mat.VecDense, cov *mat.SymDense) ppl.Model {
	mw, mb := mean.AtVec(0), mean.AtVec(1)
	sw := math.Sqrt(cov.At(0, 0))
	slope := cov.At(0, 1) / cov.At(0, 0)
	sb := math.Sqrt(cov.At(1, 1) - slope*cov.At(0, 1))
	return func(ctx *ppl.Ctx) {
		tp, p := ctx.Tape(), ctx.Batch()
		w := ppl.Sample(ctx, "w", dist.Normal{Loc: tp.Full(p, 1, mw), Scale: tp.Full(p, 1, sw)})
		loc := ad.Add(tp.Full(p, 1, mb-slope*mw), ad.Scale(w, slope))
		ppl.Sample(ctx, "b", dist.Normal{Loc: loc, Scale: tp.Full(p, 1, sb)})
	}
}

// linPredictive returns the mean and sd of the posterior predictive of y
// at x.
func linPredictive(mean *mat.VecDense, cov *mat.SymDense, x float64) (m, sd float64) {
	f := mat.NewVecDense(2, []float64{x, 1})
	return mat.Dot(f, mean), math.Sqrt(mat.Inner(f, cov, f) + linNoise*linNoise)
}

var linInputs = []float64{-1.5, 1, 2.5}

// TestPredictivePosterior draws the posterior predictive at three inputs
// from the exact posterior as guide: with 20000 draws the sample mean's
// standard error is under 0.5% of each predictive mean here and the sd's
// relative error about 0.5%, so 2% is four standard errors.
func TestPredictivePosterior(t *testing.T) {
	xs, ys := linData(11)
	mean, cov := linPosterior(xs, ys)
	pred := infer.Predictive{Model: linModel(linInputs, nil), Guide: linExactGuide(mean, cov),
		Sites: []string{"y", "w"}, Samples: 20000, Batch: 5000, Seed: 3}
	got, err := pred.Run()
	require.NoError(t, err)
	require.Equal(t, 20000, got.Draws)
	require.Equal(t, 20000*len(linInputs), got.Sites["y"].Rows())
	sum, err := got.Summary("y", 0.5)
	require.NoError(t, err)
	for i, x := range linInputs {
		m, sd := linPredictive(mean, cov, x)
		assert.InEpsilon(t, m, sum.Mean.At(i, 0), 0.02, "mean at x=%v", x)
		assert.InEpsilon(t, sd, sum.SD.At(i, 0), 0.02, "sd at x=%v", x)
		assert.InDelta(t, m, sum.Quantiles[0].At(i, 0), 0.05, "median at x=%v", x)
	}
	w, err := got.Summary("w")
	require.NoError(t, err)
	assert.InDelta(t, mean.AtVec(0), w.Mean.At(0, 0), 4*math.Sqrt(cov.At(0, 0)/20000))
}

// TestPredictivePrior draws the prior predictive, N(0, linPrior²(x²+1) +
// linNoise²) at x, and redraws the observations of the training model.
func TestPredictivePrior(t *testing.T) {
	pred := infer.Predictive{Model: linModel(linInputs, nil), Samples: 20000, Seed: 4}
	got, err := pred.Run()
	require.NoError(t, err)
	sum, err := got.Summary("y")
	require.NoError(t, err)
	for i, x := range linInputs {
		sd := math.Sqrt(linPrior*linPrior*(x*x+1) + linNoise*linNoise)
		assert.InDelta(t, 0, sum.Mean.At(i, 0), 4*sd/math.Sqrt(20000), "mean at x=%v", x)
		assert.InEpsilon(t, sd, sum.SD.At(i, 0), 0.03, "sd at x=%v", x)
	}

	xs, ys := linData(11)
	got, err = infer.Predictive{Model: linModel(xs, ys), Samples: 2, Seed: 4}.Run()
	require.NoError(t, err)
	y := got.Sites["y"]
	require.Equal(t, 2*linN, y.Rows())
	assert.NotEqual(t, ys[0], y.At(0, 0), "observations are drawn, not copied")
}

// TestPredictiveTraces replays recorded traces: each row of each trace is
// a draw, and the model's y follows each draw's w and b.
func TestPredictiveTraces(t *testing.T) {
	xs, ys := linData(11)
	mean, cov := linPosterior(xs, ys)
	rng := rand.New(rand.NewPCG(1, 2))
	var trs []*trace.Trace
	for range 2 {
		tr, err := trace.Run(linExactGuide(mean, cov), ppl.Config{Rand: rng, Batch: 3})
		require.NoError(t, err)
		trs = append(trs, tr)
	}
	got, err := infer.Predictive{Model: linModel([]float64{0}, nil), Traces: trs, Sites: []string{"b", "y"}}.Run()
	require.NoError(t, err)
	require.Equal(t, 6, got.Draws)
	for d := range 6 {
		assert.Equal(t, trs[d/3].Site("b").Value.At(d%3, 0), got.Sites["b"].At(d, 0))
		assert.InDelta(t, got.Sites["b"].At(d, 0), got.Sites["y"].At(d, 0), 6*linNoise)
	}
}

// TestPredictiveErrors: an address the model never reaches, and a guide
// parameter the store lacks, are errors naming them.
func TestPredictiveErrors(t *testing.T) {
	_, err := infer.Predictive{Model: linModel(linInputs, nil), Sites: []string{"y", "nope"}, Samples: 2}.Run()
	require.Error(t, err)
	assert.Contains(t, err.Error(), `"nope"`)

	guide := func(ctx *ppl.Ctx) {
		loc := ppl.Param(ctx, "w/loc", 1, 1, nn.Zeros{})
		ppl.Sample(ctx, "w", dist.Normal{Loc: ppl.Expand(ctx, loc), Scale: ctx.Tape().Full(ctx.Batch(), 1, 1)})
	}
	store := nn.NewStore()
	_, err = infer.Predictive{Model: linModel(linInputs, nil), Guide: guide, Params: store, Samples: 2}.Run()
	require.Error(t, err)
	assert.Contains(t, err.Error(), `"w/loc"`)
	assert.Zero(t, store.Len(), "the failed run leaves the store as it was")

	got, err := infer.Predictive{Model: linModel(linInputs, nil), Samples: 3}.Run()
	require.NoError(t, err)
	_, err = got.Summary("z")
	assert.ErrorContains(t, err, `"z"`)
}
