package ppl_test

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
	"gonum.org/v1/gonum/mat"

	"github.com/backpropq/backpropq/ad"
	"github.com/backpropq/backpropq/nn"
	"github.com/backpropq/backpropq/ppl"
	"github.com/backpropq/backpropq/ppl/dist"
)

func TestParamInStoresUnconstrained(t *testing.T) {
	third := 1.0 / 3
	cases := []struct {
		name       string
		c          dist.Constraint
		rows, cols int
		init       nn.Initializer
		stored     []float64 // the unconstrained value in the store
	}{
		{"positive", dist.Positive, 1, 2, nn.Constant(2), []float64{math.Log(2), math.Log(2)}},
		{"interval", dist.Interval(-1, 3), 1, 1, nn.Constant(1), []float64{0}},
		{"simplex", dist.Simplex, 1, 3, nn.Constant(third), []float64{0, 0}},
		{"lower-cholesky", dist.LowerCholesky, 2, 2, nn.InitFunc(func(m *mat.Dense, _ *rand.Rand) {
			m.Set(0, 0, 1)
			m.Set(1, 0, 0.5)
			m.Set(1, 1, math.E)
		}), []float64{0, 0, 0.5, 1}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			store := nn.NewStore()
			var got *ad.Tensor
			err := ppl.Run(func(ctx *ppl.Ctx) {
				got = ppl.ParamIn(ctx, "p", c.rows, c.cols, c.c, c.init)
			}, ppl.Config{Params: store})
			require.NoError(t, err)
			require.NoError(t, dist.Check(c.c, got))
			require.Equal(t, [2]int{c.rows, c.cols}, [2]int{got.Rows(), got.Cols()})
			require.InDeltaSlice(t, c.stored, store.Get("p").Value.RawMatrix().Data, 1e-12)
			want := mat.NewDense(c.rows, c.cols, nil)
			c.init.Init(want, nil)
			require.InDeltaSlice(t, want.RawMatrix().Data, got.Data(), 1e-12, "the model sees the initial value")
		})
	}
}

// Gradient steps on the unconstrained value never leave the constraint,
// however large, and the gradient is the chain rule through the bijection.
func TestParamInGradientSteps(t *testing.T) {
	store := nn.NewStore()
	tp := ad.NewTape()
	for step := range 5 {
		var scale *ad.Tensor
		require.NoError(t, ppl.Run(func(ctx *ppl.Ctx) {
			scale = ppl.ParamIn(ctx, "scale", 1, 1, dist.Positive, nn.Constant(0.5))
		}, ppl.Config{Tape: tp, Params: store}))
		require.Greater(t, scale.Item(), 0.0, "step %d", step)
		p := store.Get("scale")
		p.ZeroGrad()
		tp.Backward(scale) // d scale / d u = exp(u) = scale
		require.InDelta(t, scale.Item(), p.Grad.At(0, 0), 1e-15)
		p.Value.Set(0, 0, p.Value.At(0, 0)-10*p.Grad.At(0, 0)) // a step far past zero
		tp.Reset()
	}
}

func TestParamInErrors(t *testing.T) {
	for _, c := range []struct {
		name string
		c    dist.Constraint
		init nn.Initializer
	}{
		{"outside", dist.Positive, nn.Constant(-1)},
		{"boundary", dist.UnitInterval, nn.Constant(1)},
		{"discrete", dist.Boolean, nn.Constant(1)},
	} {
		err := ppl.Run(func(ctx *ppl.Ctx) {
			ppl.ParamIn(ctx.Scope("enc"), "w", 1, 1, c.c, c.init)
		}, ppl.Config{Params: nn.NewStore()})
		var se *ppl.SiteError
		require.True(t, errors.As(err, &se), "%s: %v", c.name, err)
		require.Equal(t, "enc/w", se.Addr, c.name)
	}
}

// ParamIn keeps a scale positive: the store holds its logarithm, which
// the optimizer updates freely.
func ExampleParamIn() {
	store := nn.NewStore()
	_ = ppl.Run(func(ctx *ppl.Ctx) {
		scale := ppl.ParamIn(ctx, "scale", 1, 2, dist.Positive, nn.Constant(2))
		weights := ppl.ParamIn(ctx, "weights", 1, 3, dist.Simplex, nn.Constant(1.0/3))
		fmt.Printf("scale %.3f, weights %.3f\n", scale.Data(), weights.Data())
	}, ppl.Config{Params: store})
	w := store.Get("weights").Value
	fmt.Printf("stored: scale %.3f (log 2), weights %d unconstrained numbers\n", store.Get("scale").Value.RawMatrix().Data, w.RawMatrix().Cols)
	// Output:
	// scale [2.000 2.000], weights [0.333 0.333 0.333]
	// stored: scale [0.693 0.693] (log 2), weights 2 unconstrained numbers
}

// A full-rank Gaussian guide: a free location and a scale constrained to
// lower Cholesky factors, so that every optimizer step leaves a valid
// covariance.
func ExampleParamIn_fullRank() {
	env := ppl.Config{Tape: ad.NewTape(), Params: nn.NewStore(), Rand: rand.New(rand.NewPCG(1, 2)), Batch: 4}
	guide := func(ctx *ppl.Ctx) {
		loc := ppl.Param(ctx, "loc", 1, 3, nn.Zeros{})
		tril := ppl.ParamIn(ctx, "scale_tril", 3, 3, dist.LowerCholesky, nn.InitFunc(func(m *mat.Dense, _ *rand.Rand) {
			for i := range 3 {
				m.Set(i, i, 0.1)
			}
		}))
		z := ppl.Sample(ctx, "z", dist.MultivariateNormal{Loc: ppl.Expand(ctx, loc), ScaleTril: tril})
		fmt.Println(z.Dims())
	}
	if err := ppl.Run(guide, env); err != nil {
		fmt.Println(err)
	}
	fmt.Printf("%.3f\n", env.Params.Get("scale_tril").Value.RawMatrix().Data)
	// Output:
	// 4 3
	// [-2.303 0.000 0.000 0.000 -2.303 0.000 0.000 0.000 -2.303]
}
