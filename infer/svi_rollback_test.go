package infer

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/backpropq/backpropq/ad"
	"github.com/backpropq/backpropq/nn"
	"github.com/backpropq/backpropq/ppl"
	"github.com/backpropq/backpropq/ppl/dist"
	"github.com/backpropq/backpropq/vi"
)

// mixtureRegression is a model none of the other tests use: a class k
// drawn from learned mixture weights picks, through a registered layer, the
// mean of an observed value; its noise scale is a parameter created after
// the draw. When *fail is set its last cost is NaN, which fails the step
// after every parameter has been created.
func mixtureRegression(layer *nn.Linear, fail *bool) ppl.Model {
	return func(ctx *ppl.Ctx) {
		tp := ctx.Tape()
		ppl.Module(ctx, "net", layer)
		logits := ppl.Param(ctx, "mix/logits", 1, 3, nn.Normal{Std: 1})
		k := ppl.Sample(ctx, "k", dist.Categorical{Logits: ppl.Expand(ctx, logits)})
		loc := layer.Forward(ad.OneHot(k, 3))
		logScale := ppl.Param(ctx, "noise/log", 1, 1, nn.Normal{Std: 0.3})
		y := ppl.Expand(ctx, tp.FromData(1, 1, []float64{0.8}))
		ppl.Observe(ctx, "y", dist.Normal{Loc: loc, Scale: ppl.Expand(ctx, ad.Exp(logScale))}, y)
		if *fail {
			ppl.Cost(ctx, "broken", ppl.Expand(ctx, tp.FromData(1, 1, []float64{math.NaN()})))
		}
	}
}

// newMixtureSVI returns an SVI on mixtureRegression with fresh state.
func newMixtureSVI(fail *bool) *SVI {
	layer := nn.NewLinear(3, 1, rand.New(rand.NewPCG(3, 4)))
	return &SVI{
		Objective:  vi.Program{Model: mixtureRegression(layer, fail)},
		Estimators: Estimators{Default: ScoreFunction{Baseline: NewMovingAverage(0.9)}},
		Optimizer:  nn.NewAdam(0.05),
		Params:     nn.NewStore(),
		Particles:  8,
		Chunks:     2,
		Workers:    2,
		Seed:       11,
	}
}

// A first step that fails after creating parameters leaves no trace: the
// store is as before (the registered layer keeps its own names), and the
// retried run gives the numbers of a run that never failed.
func TestFailedFirstStepIsUndone(t *testing.T) {
	never := false
	clean := newMixtureSVI(&never)
	var want []Metrics
	for i := 0; i < 3; i++ {
		m, err := clean.Step()
		require.NoError(t, err)
		want = append(want, m)
	}

	fail := true
	retried := newMixtureSVI(&fail)
	_, err := retried.Step()
	require.ErrorContains(t, err, "broken")
	require.Zero(t, retried.Params.Len(), "parameters the failed step created")
	require.Zero(t, retried.StepCount())
	fail = false
	var got []Metrics
	for i := 0; i < 3; i++ {
		m, err := retried.Step()
		require.NoError(t, err)
		got = append(got, m)
	}
	require.Equal(t, fmt.Sprint(want), fmt.Sprint(got))
	require.Equal(t, checkpointBytes(t, clean), checkpointBytes(t, retried))

	// A later failed step, too, leaves the checkpoint as it was.
	before := checkpointBytes(t, retried)
	fail = true
	_, err = retried.Step()
	require.Error(t, err)
	require.Equal(t, before, checkpointBytes(t, retried))
}
