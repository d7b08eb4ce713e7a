package infer

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/backpropq/backpropq/ad"
	"github.com/backpropq/backpropq/nn"
	"github.com/backpropq/backpropq/ppl"
	"github.com/backpropq/backpropq/ppl/dist"
	"github.com/backpropq/backpropq/vi"
)

// switchModel uses a Bernoulli draw as an index: the bit picks one of two
// learned rewards with ad.Gather, a use that only a 0 or a 1 can serve.
func switchModel(ctx *ppl.Ctx) {
	tp := ctx.Tape()
	logit := ppl.Param(ctx, "gate", 1, 1, nn.Normal{Std: 0.5})
	bit := ppl.Sample(ctx, "bit", dist.BernoulliLogits(ppl.Expand(ctx, logit)))
	rewards := ppl.Expand(ctx, tp.FromData(1, 2, []float64{1.5, -0.5}))
	ppl.Cost(ctx, "reward", ad.Gather(rewards, bit))
}

// An estimator that puts a relaxed or mean-field value where the model
// needs an index fails with a SiteError naming the site, not a panic.
func TestIndexSiteNamedByRelaxingEstimators(t *testing.T) {
	for _, est := range []Estimator{MuProp{}, &REBAR{}, GumbelSoftmax{}, GumbelSoftmax{StraightThrough: true}} {
		s := &SVI{Objective: vi.Program{Model: switchModel}, Estimators: Estimators{Default: est},
			Optimizer: nn.NewAdam(0.1), Params: nn.NewStore(), Particles: 6, Seed: 5}
		var err error
		require.NotPanics(t, func() { _, err = s.Step() }, "%T", est)
		var se *ppl.SiteError
		require.ErrorAs(t, err, &se, "%T", est)
		require.Equal(t, "bit", se.Addr, "%T: %v", est, err)
		require.Zero(t, s.Params.Len(), "%T", est)
	}
	// The score function, which never changes the value, trains it.
	s := &SVI{Objective: vi.Program{Model: switchModel}, Estimators: Estimators{Default: ScoreFunction{}},
		Optimizer: nn.NewAdam(0.1), Params: nn.NewStore(), Particles: 6, Seed: 5}
	_, err := s.Step()
	require.NoError(t, err)
}
