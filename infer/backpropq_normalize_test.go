package infer

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/backpropq/backpropq/ad"
	"github.com/backpropq/backpropq/nn"
	"github.com/backpropq/backpropq/ppl"
	"github.com/backpropq/backpropq/ppl/dist"
	"github.com/backpropq/backpropq/q"
	"github.com/backpropq/backpropq/vi"
)

// wideCostModel has one Bernoulli site whose cost spreads over tens of
// units, so that its learning signal's variance is well above 1.
func wideCostModel(ctx *ppl.Ctx) {
	theta := ppl.Param(ctx, "theta", 1, 1, values(0.2))
	z := ppl.Sample(ctx, "z", dist.BernoulliLogits(ppl.Expand(ctx, theta)))
	ppl.Cost(ctx, "f", ad.Scale(z, 30))
}

// TestBackpropQNormalize checks that Normalize leaves the first step alone
// and divides the second step's term by the standard deviation of the
// first step's signal: with plain gradient descent, the second update of
// a normalized run is the unnormalized run's divided by σ, while the
// first updates agree. (Mode QControlVariate: its first signal is the
// return less nothing, where QLocal's is the critics' zero.)
func TestBackpropQNormalize(t *testing.T) {
	obj := vi.Program{Model: wideCostModel}
	// run returns the two updates of theta and the estimator, with the
	// variance its statistics held after the first step.
	run := func(normalize bool) (deltas []float64, est *QControlVariate, v1 float64) {
		est = NewQControlVariate(q.Config{Kind: q.TabularKind, LR: 0.5}, q.TD{})
		est.Normalize = normalize
		s := &SVI{Objective: obj, Estimators: Estimators{Default: est}, Optimizer: &nn.SGD{LR: 0.01},
			Params: initObjectiveStore(t, obj), Particles: 32, Seed: 7}
		prev := s.Params.Get("theta").Value.At(0, 0)
		for step := range 2 {
			_, err := s.Step()
			require.NoError(t, err)
			v := s.Params.Get("theta").Value.At(0, 0)
			deltas = append(deltas, v-prev)
			prev = v
			if step == 0 {
				v1 = est.sites.norm["z"].variance
			}
		}
		return deltas, est, v1
	}
	plain, _, _ := run(false)
	norm, est, v1 := run(true)
	require.Equal(t, plain[0], norm[0], "the first step has no statistics to normalize by")
	st, ok := est.sites.norm["z"]
	require.True(t, ok)
	require.Greater(t, st.variance, 1.0, "the test needs a signal wider than 1")
	require.NotZero(t, plain[1])
	// The statistics after two steps decay the first step's variance with
	// the second's; the second step used the first step's alone.
	require.Greater(t, v1, 1.0)
	require.InDelta(t, math.Sqrt(v1), plain[1]/norm[1], 1e-9*math.Sqrt(v1))
}

// TestBackpropQSkippedUpdates checks that a critic update that fails after
// its step succeeded (here a cost made non-finite behind the step's back)
// is counted with its error and changes no critic.
func TestBackpropQSkippedUpdates(t *testing.T) {
	obj := vi.Program{Model: chainModel}
	est := NewQLocal(q.Config{Kind: q.TabularKind, LR: 0.1}, q.TD{})
	s := &SVI{Objective: obj, Estimators: Estimators{Default: est}, Optimizer: nn.NewAdam(0.01),
		Params: initObjectiveStore(t, obj), Particles: 8, Seed: 3}
	_, err := s.Step()
	require.NoError(t, err)
	n, err := est.SkippedUpdates()
	require.Zero(t, n)
	require.NoError(t, err)

	tr, err := obj.Run(ppl.Config{Params: s.Params, Rand: rand.New(rand.NewPCG(1, 2)), Batch: 8})
	require.NoError(t, err)
	var cache q.Cache
	net, err := cache.Network(tr.Graph())
	require.NoError(t, err)
	vals, err := est.Critics.Set.Evaluate(net, tr)
	require.NoError(t, err)
	before, err := est.Critics.Set.MarshalState()
	require.NoError(t, err)
	vals.Costs["f"][2] = math.NaN()
	est.apply(&qEval{net: net, vals: vals}, nil)
	n, err = est.SkippedUpdates()
	require.Equal(t, 1, n)
	require.ErrorContains(t, err, `"f"`)
	after, err := est.Critics.Set.MarshalState()
	require.NoError(t, err)
	require.Equal(t, before, after, "a skipped update changes no critic")
}
