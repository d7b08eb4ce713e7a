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

// formsModel has a Bernoulli site "b" and a Categorical site "k", passed
// to ppl.Sample by value or, with pointers set, by pointer.
func formsModel(pointers bool) ppl.Model {
	return func(ctx *ppl.Ctx) {
		tp := ctx.Tape()
		th := ppl.Param(ctx, "th", 1, 1, values(0.3))
		lg := ppl.Param(ctx, "lg", 1, 3, values(0.2, -0.5, 0.1))
		var bd, kd dist.Distribution = dist.BernoulliLogits(ppl.Expand(ctx, th)), dist.Categorical{Logits: ppl.Expand(ctx, lg)}
		if pointers {
			bv, kv := bd.(dist.Bernoulli), kd.(dist.Categorical)
			bd, kd = &bv, &kv
		}
		b := ppl.Sample(ctx, "b", bd)
		k := ppl.Sample(ctx, "k", kd)
		ppl.Cost(ctx, "f", ad.Square(ad.Sub(ad.Add(b, k), tp.Scalar(1.2))))
	}
}

// TestFiniteValueAndPointerForms trains each estimator that enumerates or
// featurizes discrete sites on a model whose distributions are passed by
// value, then by pointer: both runs end with the same bytes.
func TestFiniteValueAndPointerForms(t *testing.T) {
	relaxed := func() Estimator {
		b := NewQControlVariate(q.Config{Kind: q.MLPKind, Hidden: []int{4}, Seed: 2}, q.TD{})
		b.Relaxed = true
		return b
	}
	cases := []struct {
		name string
		make func() Estimators
	}{
		{"Enumerate", func() Estimators { return Estimators{Default: Enumerate{}} }},
		{"ARM", func() Estimators {
			return Estimators{Default: ScoreFunction{}, Sites: map[string]Estimator{"b": ARM{}}}
		}},
		{"DisARM", func() Estimators {
			return Estimators{Default: ScoreFunction{}, Sites: map[string]Estimator{"b": DisARM{}}}
		}},
		{"REBAR", func() Estimators {
			return Estimators{Default: ScoreFunction{}, Sites: map[string]Estimator{"b": &REBAR{}}}
		}},
		{"BackpropQ local", func() Estimators {
			b := NewQLocal(q.Config{Kind: q.TabularKind, LR: 0.1}, q.TD{})
			b.ValueBaseline = true
			return Estimators{Default: b}
		}},
		{"BackpropQ control variate", func() Estimators {
			return Estimators{Default: NewQControlVariate(q.Config{Kind: q.TabularKind, LR: 0.1}, q.TD{})}
		}},
		{"BackpropQ relaxed control variate", func() Estimators { return Estimators{Default: relaxed()} }},
		{"BackpropQ advantage", func() Estimators {
			return Estimators{Default: NewQAdvantage(q.Config{Kind: q.TabularKind, LR: 0.1}, q.TD{})}
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			run := func(pointers bool) []byte {
				s := &SVI{Objective: vi.Program{Model: formsModel(pointers)}, Estimators: c.make(),
					Optimizer: nn.NewAdam(0.05), Params: nn.NewStore(), Particles: 8, Seed: 6}
				for i := 0; i < 4; i++ {
					_, err := s.Step()
					require.NoError(t, err)
				}
				return checkpointBytes(t, s)
			}
			require.Equal(t, run(false), run(true))
		})
	}
}
