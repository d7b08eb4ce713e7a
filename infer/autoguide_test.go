package infer_test

import (
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gonum.org/v1/gonum/mat"

	"github.com/backpropq/backpropq/infer"
	"github.com/backpropq/backpropq/nn"
	"github.com/backpropq/backpropq/ppl"
	"github.com/backpropq/backpropq/vi"
)

// trainAuto trains guide on model for steps steps of 16 particles, Adam
// with a step size that falls tenfold twice, and returns the store.
func trainAuto(t *testing.T, model, guide ppl.Model, steps int) *nn.Store {
	t.Helper()
	adam := nn.NewAdam(0.05)
	svi := &infer.SVI{Objective: vi.ELBO{Model: model, Guide: guide}, Optimizer: adam, Params: nn.NewStore(), Particles: 16, Seed: 7}
	for i := range steps {
		switch i {
		case steps / 2:
			adam.LR = 0.005
		case 3 * steps / 4:
			adam.LR = 0.001
		}
		_, err := svi.Step()
		require.NoError(t, err)
	}
	return svi.Params
}

// TestAutoNormalRegression: the mean-field guide reaches the mean-field
// optimum, whose means are the exact posterior means and whose variances
// are the inverses of the diagonal of the posterior precision.
func TestAutoNormalRegression(t *testing.T) {
	if testing.Short() {
		t.Skip("trains to convergence; run without -short")
	}
	xs, ys := linData(11)
	mean, cov := linPosterior(xs, ys)
	var prec mat.SymDense
	require.NoError(t, prec.PowPSD(cov, -1))
	model := linModel(xs, ys)
	guide, err := infer.NewAutoNormal(model, infer.AutoOptions{})
	require.NoError(t, err)
	store := trainAuto(t, model, guide.Guide, 3000)
	for j, addr := range []string{"w", "b"} {
		loc, scale, err := guide.Params(store, addr)
		require.NoError(t, err)
		assert.InEpsilon(t, mean.AtVec(j), loc.At(0, 0), 0.05, "mean of %s", addr)
		assert.InEpsilon(t, 1/math.Sqrt(prec.At(j, j)), scale.At(0, 0), 0.05, "sd of %s", addr)
	}
}

// TestAutoMultivariateNormalRegression: the full-rank guide reaches the
// exact posterior, correlation included, and its posterior predictive
// at three inputs is the closed form's. The inputs are shifted away from
// 0 so that slope and intercept are strongly correlated (about -0.9),
// which a mean-field guide could not represent.
func TestAutoMultivariateNormalRegression(t *testing.T) {
	if testing.Short() {
		t.Skip("trains to convergence; run without -short")
	}
	xs, ys := linData(11)
	for i := range xs {
		xs[i] += 2
	}
	mean, cov := linPosterior(xs, ys)
	model := linModel(xs, ys)
	guide, err := infer.NewAutoMultivariateNormal(model, infer.AutoOptions{})
	require.NoError(t, err)
	store := trainAuto(t, model, guide.Guide, 3000)
	gotMean, gotCov, err := guide.Moments(store)
	require.NoError(t, err)
	for j, addr := range []string{"w", "b"} {
		from, _, ok := guide.Columns(addr)
		require.True(t, ok)
		assert.InEpsilon(t, mean.AtVec(j), gotMean.AtVec(from), 0.05, "mean of %s", addr)
		assert.InEpsilon(t, math.Sqrt(cov.At(j, j)), math.Sqrt(gotCov.At(from, from)), 0.05, "sd of %s", addr)
	}
	corr := func(c mat.Symmetric) float64 { return c.At(0, 1) / math.Sqrt(c.At(0, 0)*c.At(1, 1)) }
	assert.InDelta(t, corr(cov), corr(gotCov), 0.05, "correlation of w and b")

	inputs := make([]float64, len(linInputs))
	for i, x := range linInputs {
		inputs[i] = x + 2
	}
	got, err := infer.Predictive{Model: linModel(inputs, nil), Guide: guide.Guide, Params: store,
		Sites: []string{"y"}, Samples: 20000, Batch: 5000, Seed: 3}.Run()
	require.NoError(t, err)
	sum, err := got.Summary("y")
	require.NoError(t, err)
	for i, x := range inputs {
		m, sd := linPredictive(mean, cov, x)
		assert.InEpsilon(t, m, sum.Mean.At(i, 0), 0.02, "predictive mean at x=%v", x)
		assert.InEpsilon(t, sd, sum.SD.At(i, 0), 0.02, "predictive sd at x=%v", x)
	}
}

// TestAutoGuideCheckpoint: the guide's parameters are in the training
// store under its prefix, so a run restored from a checkpoint continues
// bit for bit with a guide built anew.
func TestAutoGuideCheckpoint(t *testing.T) {
	xs, ys := linData(11)
	model := linModel(xs, ys)
	newSVI := func() *infer.SVI {
		guide, err := infer.NewAutoMultivariateNormal(model, infer.AutoOptions{Prefix: "q"})
		require.NoError(t, err)
		return &infer.SVI{Objective: vi.ELBO{Model: model, Guide: guide.Guide}, Optimizer: nn.NewAdam(0.05), Params: nn.NewStore(), Particles: 4, Seed: 2}
	}
	first := newSVI()
	for range 20 {
		_, err := first.Step()
		require.NoError(t, err)
	}
	require.NotNil(t, first.Params.Get("q/scale_tril"))
	sections, err := first.Sections()
	require.NoError(t, err)
	second := newSVI()
	require.NoError(t, second.Restore(sections, infer.LoadOptions{}))
	for range 10 {
		_, err := first.Step()
		require.NoError(t, err)
		_, err = second.Step()
		require.NoError(t, err)
	}
	for _, name := range []string{"q/loc", "q/scale_tril"} {
		assert.Equal(t, first.Params.Get(name).Value.RawMatrix().Data, second.Params.Get(name).Value.RawMatrix().Data, name)
	}
}
