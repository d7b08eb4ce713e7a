package infer

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/backpropq/backpropq/ad"
	"github.com/backpropq/backpropq/nn"
	"github.com/backpropq/backpropq/ppl"
	"github.com/backpropq/backpropq/ppl/dist"
	"github.com/backpropq/backpropq/q"
	"github.com/backpropq/backpropq/vi"
)

// ladderModel has three binary sites, each with its own parameter: u1,
// then u2 given u1, then u3 given both, and two costs.
func ladderModel(ctx *ppl.Ctx) {
	tp := ctx.Tape()
	a1 := ppl.Param(ctx, "a1", 1, 1, values(0.4))
	a2 := ppl.Param(ctx, "a2", 1, 1, values(-0.3))
	a3 := ppl.Param(ctx, "a3", 1, 1, values(0.2))
	u1 := ppl.Sample(ctx, "u1", dist.BernoulliLogits(ppl.Expand(ctx, a1)))
	u2 := ppl.Sample(ctx, "u2", dist.BernoulliLogits(ad.Add(ppl.Expand(ctx, a2), ad.Scale(u1, 1.3))))
	l3 := ad.Add(ad.Add(ppl.Expand(ctx, a3), ad.Scale(u2, -0.8)), ad.Scale(u1, 0.6))
	u3 := ppl.Sample(ctx, "u3", dist.BernoulliLogits(l3))
	s := ad.Sub(ad.Add(u1, ad.Scale(u2, 1.5)), u3)
	ppl.Cost(ctx, "f", ad.Square(ad.Sub(s, tp.Scalar(0.3))))
	ppl.Cost(ctx, "g", ad.Scale(ad.Mul(u2, u3), 0.8))
}

var ladderSupport = []siteSupport{
	{"u1", [][]float64{{0}, {1}}},
	{"u2", [][]float64{{0}, {1}}},
	{"u3", [][]float64{{0}, {1}}},
}

// TestBackpropQModesShareCritics serves u1 in mode QLocal and u2, u3 in
// mode QControlVariate on one set of critics. The critics are trained once
// per trace (they end as those of a single estimator serving every site),
// and the gradient of the control-variate sites' parameters, a2 and a3,
// which only those sites' terms reach, agrees with the exact gradient.
func TestBackpropQModesShareCritics(t *testing.T) {
	obj := vi.Program{Model: ladderModel}
	newSVI := func(est Estimators) *SVI {
		return &SVI{Objective: obj, Estimators: est, Optimizer: nn.NewAdam(0.01),
			Params: initObjectiveStore(t, obj), Particles: 20, Seed: 8}
	}
	cfg, td := q.Config{Kind: q.TabularKind, LR: 0.05}, q.TD{}
	critics := NewCritics(cfg, td)
	local := &QLocal{Critics: critics}
	cv := &QControlVariate{Critics: critics}
	s := newSVI(Estimators{Sites: map[string]Estimator{"u1": local, "u2": cv, "u3": cv}})
	trainCritics(t, s, 200)

	single := NewQLocal(cfg, td)
	trainCritics(t, newSVI(Estimators{Default: single}), 200)
	got, err := critics.Set.MarshalState()
	require.NoError(t, err)
	want, err := single.Critics.Set.MarshalState()
	require.NoError(t, err)
	require.Equal(t, want, got, "the shared critics are trained once per trace")

	a, _ := cv.Coefficients("u2")
	require.NotZero(t, a, "the control variate is in use")
	for _, site := range []string{"u1", "u2", "u3"} {
		_, ok := critics.TDError(site)
		require.True(t, ok, site)
	}

	exact := exactObjectiveGradient(t, obj, s.Params, ladderSupport)
	mean, se := estimateGradient(t, s, repetitions())
	// The parameters are a1, a2, a3 in the store's order.
	requireAgree(t, exact[1:], mean[1:], se[1:])
}
