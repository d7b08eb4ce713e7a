package q

import (
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
	"gonum.org/v1/gonum/mat"

	"github.com/backpropq/backpropq/nn"
)

// PredictFlips agrees with two Predict calls per column (the column set
// to 1 and to 0, the rest of each row as it is), for Linear and MLP
// critics, in plain and normalized units, and leaves x unchanged.
func TestPredictFlips(t *testing.T) {
	layout := Layout{Fields: []Field{
		{Addr: "x@q", Kind: Extra, Width: 3},
		{Addr: "b", Kind: Binary, Width: 4},
	}}
	rng := rand.New(rand.NewPCG(1, 2))
	norm := NewMLP(layout, []int{6}, 0.01, rand.New(rand.NewPCG(7, 8)))
	norm.NormalizeTargets()
	// Large first-layer weights saturate the tanh units, where the
	// addition formula gives way to a direct evaluation.
	saturated := NewMLP(layout, []int{6}, 0.01, rand.New(rand.NewPCG(9, 10)))
	w := saturated.mlp.Layers[0].W.Value.RawMatrix().Data
	for i := range w {
		w[i] *= 60
	}
	// A first layer that is not tanh takes the general path.
	relu := NewMLP(layout, []int{6}, 0.01, rand.New(rand.NewPCG(11, 12)))
	relu.mlp.Activations[0] = nn.ReLU
	nets := map[string]*NetCritic{
		"linear":         NewLinear(layout, 0.01, rand.New(rand.NewPCG(3, 4))),
		"mlp":            NewMLP(layout, []int{6, 3}, 0.01, rand.New(rand.NewPCG(5, 6))),
		"mlp-relu":       relu,
		"mlp-normalized": norm,
		"mlp-saturated":  saturated,
	}
	const rows = 5
	x := mat.NewDense(rows, layout.Width(), nil)
	for i := range rows {
		for j := range 3 {
			x.Set(i, j, rng.NormFloat64())
		}
		for j := 3; j < 7; j++ {
			x.Set(i, j, float64(rng.IntN(2)))
		}
	}
	target := make([]float64, rows)
	for i := range target {
		target[i] = 100 + 30*rng.NormFloat64()
	}
	require.NoError(t, norm.Update(x, target))
	require.NoError(t, norm.Update(x, target))
	for name, n := range nets {
		dst := make([][]float64, 4)
		for c := range dst {
			dst[c] = make([]float64, rows)
		}
		before := mat.DenseCopyOf(x)
		n.PredictFlips(x, 3, dst)
		require.Equal(t, before.RawMatrix().Data, x.RawMatrix().Data, "%s: x unchanged", name)
		for c := range dst {
			hi, lo := make([]float64, rows), make([]float64, rows)
			alt := mat.DenseCopyOf(x)
			for i := range rows {
				alt.Set(i, 3+c, 1)
			}
			n.Predict(alt, hi)
			for i := range rows {
				alt.Set(i, 3+c, 0)
			}
			n.Predict(alt, lo)
			for i := range rows {
				require.InDelta(t, hi[i]-lo[i], dst[c][i], 1e-9, "%s column %d row %d", name, c, i)
			}
		}
		require.Panics(t, func() { n.PredictFlips(x, 5, dst) }, "%s: columns outside x", name)
		short := [][]float64{make([]float64, rows-1)}
		require.Panics(t, func() { n.PredictFlips(x, 3, short) }, "%s: destination too short", name)
		require.Panics(t, func() { n.PredictFlips(x, 0, dst) }, "%s: columns that are not binary", name)
	}
}

// BenchmarkFlips compares the local-expectation evaluations of a critic of
// a 200-unit Bernoulli layer that also reads the 784-pixel image, at 24
// rows: one PredictFlips call against two Predict calls per unit, and one
// Predict call (the cost of evaluating the critic once).
func BenchmarkFlips(b *testing.B) {
	const units, rows = 200, 24
	layout := Layout{Fields: []Field{{Addr: "h", Kind: Binary, Width: units}, {Addr: "h@q", Kind: Extra, Width: 784}}}
	n := NewMLP(layout, []int{64}, 0.001, rand.New(rand.NewPCG(1, 2)))
	x := mat.NewDense(rows, layout.Width(), nil)
	rng := rand.New(rand.NewPCG(3, 4))
	for i := range rows {
		for j := range layout.Width() {
			v := rng.Float64()
			if j < units {
				v = float64(rng.IntN(2))
			}
			x.Set(i, j, v)
		}
	}
	dst := make([][]float64, units)
	for c := range dst {
		dst[c] = make([]float64, rows)
	}
	b.Run("PredictFlips", func(b *testing.B) {
		for b.Loop() {
			n.PredictFlips(x, 0, dst)
		}
	})
	b.Run("Predict-per-flip", func(b *testing.B) {
		alt := mat.DenseCopyOf(x)
		lo := make([]float64, rows)
		for b.Loop() {
			for c := range units {
				for i := range rows {
					alt.Set(i, c, 1)
				}
				n.Predict(alt, dst[c])
				for i := range rows {
					alt.Set(i, c, 0)
				}
				n.Predict(alt, lo)
				for i := range rows {
					alt.Set(i, c, x.At(i, c))
				}
			}
		}
	})
	b.Run("Predict-once", func(b *testing.B) {
		for b.Loop() {
			n.Predict(x, dst[0])
		}
	})
}
