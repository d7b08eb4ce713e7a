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

// yChain is a chain of four Bernoulli sites y[0] -> ... -> y[3] with one
// delayed nonlinear cost of the last two, so that the scope of y[3] holds
// y[2] and those of the others their own value only: a template critic
// "y[*]" has the union layout (y[*]@-1, y[*]@0, index).
func yChain(ctx *ppl.Ctx) {
	tp := ctx.Tape()
	theta := ppl.Param(ctx, "theta", 1, 4, values(0.4, -0.6, 0.2, -0.3))
	w := ppl.Param(ctx, "w", 1, 1, values(1.2))
	var z, prev *ad.Tensor
	for i := range 4 {
		logits := ppl.Expand(ctx, ad.Slice(theta, i, i+1))
		if z != nil {
			logits = ad.Add(logits, ad.Mul(z, w))
		}
		prev = z
		z = ppl.Sample(ctx, ppl.At("y", i), dist.BernoulliLogits(logits))
	}
	ppl.Cost(ctx, "f", ad.Scale(ad.Square(ad.Sub(ad.Add(prev, ad.Scale(z, 2)), tp.Scalar(1.2))), 2))
}

var yChainSupport = []siteSupport{
	{"y[0]", [][]float64{{0}, {1}}},
	{"y[1]", [][]float64{{0}, {1}}},
	{"y[2]", [][]float64{{0}, {1}}},
	{"y[3]", [][]float64{{0}, {1}}},
}

// TestBackpropQTemplatedCritics runs modes QLocal and QControlVariate
// (enumerated with a tabular template critic, relaxed with an MLP one)
// with one critic "y[*]" serving every y[i], and checks the gradient
// against the exact one: QLocal after TD has brought the critic near the
// exact Q-functions (Monte Carlo returns, running cell averages),
// QControlVariate with a partly trained critic.
func TestBackpropQTemplatedCritics(t *testing.T) {
	cases := []struct {
		name  string
		make  func() qEstimator
		train int
		rows  int
	}{
		{"local", func() qEstimator {
			return NewQLocal(q.Config{Kind: q.TabularKind, Templates: []string{"y[*]"}}, q.TD{Lambda: 1})
		}, 100, 200},
		{"control-variate", func() qEstimator {
			return NewQControlVariate(q.Config{Kind: q.TabularKind, LR: 0.05, Templates: []string{"y[*]"}}, q.TD{})
		}, 50, 20},
		{"control-variate-relaxed", func() qEstimator {
			cfg := mlpCritics(6)
			cfg.Templates = []string{"y[*]"}
			b := NewQControlVariate(cfg, q.TD{})
			b.Relaxed = true
			return b
		}, 50, 20},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			obj := vi.Program{Model: yChain}
			store := initObjectiveStore(t, obj)
			exact := exactObjectiveGradient(t, obj, store, yChainSupport)
			est := c.make()
			s := &SVI{
				Objective: obj, Estimators: Estimators{Default: est},
				Optimizer: nn.NewAdam(0.01), Params: store, Particles: c.rows, Seed: 3,
			}
			trainCritics(t, s, c.train)
			require.Equal(t, []string{"y[*]|f"}, est.QCritics().Set.Keys(), "one critic serves every index")
			require.Equal(t, "y[*]@-1:binary1 y[*]@0:binary1 index:index1", est.QCritics().Set.Critic("y[*]|f").Layout().String())
			if cv, ok := est.(*QControlVariate); ok {
				for i := range 4 {
					a, _ := cv.Coefficients(ppl.At("y", i))
					require.NotZero(t, a, "y[%d]: the control variate is in use", i)
				}
			}
			s.Particles = 20
			mean, se := estimateGradient(t, s, repetitions())
			requireAgree(t, exact, mean, se)
		})
	}
}
