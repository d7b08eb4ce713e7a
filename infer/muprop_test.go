package infer

import (
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/backpropq/backpropq/ad"
	"github.com/backpropq/backpropq/nn"
	"github.com/backpropq/backpropq/ppl"
	"github.com/backpropq/backpropq/ppl/dist"
	"github.com/backpropq/backpropq/vi"
)

// TestMuPropExactForLinearCosts checks the Taylor control variate: for a
// cost linear in the site's value it equals the cost, so every single
// estimate is the exact gradient.
func TestMuPropExactForLinearCosts(t *testing.T) {
	model := func(ctx *ppl.Ctx) {
		tp := ctx.Tape()
		l := ppl.Param(ctx, "logits", 1, 4, nn.Zeros{})
		v := ppl.Sample(ctx, "v", dist.OneHotCategorical{Logits: ppl.Expand(ctx, l)})
		ppl.Cost(ctx, "c", ad.Add(ad.RowSum(ad.Mul(v, tp.FromData(1, 4, []float64{1, -2, 3, 0.5}))), tp.Scalar(0.7)))
	}
	m := rxModel{
		name:    "linear",
		model:   model,
		sites:   []string{"v"},
		support: rxOneHot().support,
		params:  map[string][]float64{"logits": {0.2, -0.5, 0.1, 0.4}},
	}
	exact := m.exactGrad(t)
	st := m.store(t)
	tp := ad.NewTape()
	rng := rand.New(rand.NewPCG(1, 2))
	for rep := 0; rep < 20; rep++ {
		tp.Reset()
		st.ZeroGrad()
		sur, err := BuildSurrogate(vi.Program{Model: model}, Estimators{Default: MuProp{}}, ppl.Config{Tape: tp, Rand: rng, Params: st, Batch: 1})
		require.NoError(t, err)
		tp.Backward(sur.Loss)
		got := rxFlatGrads(st, m.paramNames())
		require.InDeltaSlice(t, exact, got, 1e-12)
		_, signals := sur.Signals()
		require.InDelta(t, 0, signals[0].Item(), 1e-12)
	}
}

// TestRelaxedRerunsSendNoGradientDownstream checks that the re-runs of
// MuProp, REBAR and RELAX reach only the site's parameters: the gradient
// of a parameter used only downstream of the site is exactly that of the
// training run's costs.
func TestRelaxedRerunsSendNoGradientDownstream(t *testing.T) {
	model := func(ctx *ppl.Ctx) {
		tp := ctx.Tape()
		l := ppl.Param(ctx, "logits", 1, 2, nn.Zeros{})
		w := ppl.Param(ctx, "w", 1, 2, nn.Constant(0.8))
		b := ppl.Sample(ctx, "b", dist.BernoulliLogits(ppl.Expand(ctx, l)))
		ppl.Cost(ctx, "c", ad.Square(ad.Sub(ad.RowSum(ad.Mul(b, w)), tp.Scalar(0.3))))
	}
	for _, est := range []Estimator{MuProp{}, REBAR{}, RELAX{Concrete: true}} {
		st := nn.NewStore()
		tp := ad.NewTape()
		sur, err := BuildSurrogate(vi.Program{Model: model}, Estimators{Default: est}, ppl.Config{Tape: tp, Rand: rand.New(rand.NewPCG(3, 4)), Params: st, Batch: 64})
		require.NoError(t, err)
		w := sur.Trace.Site("w").Value
		want := tp.Gradients(ad.Sum(sur.Trace.Site("c").Cost), w)[0]
		st.ZeroGrad()
		tp.Backward(sur.Loss)
		require.InDeltaSlice(t, want.RawMatrix().Data, st.Get("w").Grad.RawMatrix().Data, 1e-12, "%T", est)
	}
}
