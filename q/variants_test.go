package q

import (
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
	"gonum.org/v1/gonum/mat"
)

// PredictVariants agrees with Predict on inputs whose columns were
// replaced by each variant, for Linear and MLP critics, in plain and
// normalized units, and leaves x unchanged.
func TestPredictVariants(t *testing.T) {
	layout := Layout{Fields: []Field{
		{Addr: "a", Kind: Binary, Width: 2},
		{Addr: "c", Kind: OneHot, Width: 4, Classes: 4},
		{Addr: "x@q", Kind: Extra, Width: 5},
	}}
	rng := rand.New(rand.NewPCG(1, 2))
	nets := map[string]*NetCritic{
		"linear": NewLinear(layout, 0.01, rand.New(rand.NewPCG(3, 4))),
		"mlp":    NewMLP(layout, []int{6, 3}, 0.01, rand.New(rand.NewPCG(5, 6))),
	}
	norm := NewMLP(layout, []int{6}, 0.01, rand.New(rand.NewPCG(7, 8)))
	norm.NormalizeTargets()
	nets["mlp-normalized"] = norm
	const rows = 7
	x := mat.NewDense(rows, layout.Width(), nil)
	for i := range x.RawMatrix().Data {
		x.RawMatrix().Data[i] = rng.NormFloat64()
	}
	for name, n := range nets {
		if name == "mlp-normalized" {
			target := make([]float64, rows)
			for i := range target {
				target[i] = 100 + 30*rng.NormFloat64()
			}
			require.NoError(t, n.Update(x, target))
		}
		var variants [][]float64
		for k := range 4 {
			v := make([]float64, 4)
			v[k] = 1
			variants = append(variants, v)
		}
		variants = append(variants, []float64{0.2, -1, 0, 3})
		dst := make([][]float64, len(variants))
		for k := range dst {
			dst[k] = make([]float64, rows)
		}
		before := mat.DenseCopyOf(x)
		n.PredictVariants(x, 2, variants, dst)
		require.Equal(t, before.RawMatrix().Data, x.RawMatrix().Data, "%s: x unchanged", name)
		for k, v := range variants {
			alt := mat.DenseCopyOf(x)
			for i := range rows {
				copy(alt.RawRowView(i)[2:6], v)
			}
			want := make([]float64, rows)
			n.Predict(alt, want)
			require.InDeltaSlice(t, want, dst[k], 1e-9, "%s variant %d", name, k)
		}
		require.Panics(t, func() { n.PredictVariants(x, 9, variants, dst) }, "%s: columns outside x", name)
	}
}

// BenchmarkVariants compares summing an MLP critic over the 10 classes of
// a site whose critic also reads a 784-pixel image (the discrete VAE's
// critics): one PredictVariants call against ten Predict calls.
func BenchmarkVariants(b *testing.B) {
	layout := Layout{Fields: []Field{{Addr: "c", Kind: OneHot, Width: 10, Classes: 10}, {Addr: "c@q", Kind: Extra, Width: 784}}}
	n := NewMLP(layout, []int{64}, 0.001, rand.New(rand.NewPCG(1, 2)))
	const rows = 20
	x := mat.NewDense(rows, layout.Width(), nil)
	rng := rand.New(rand.NewPCG(3, 4))
	for i := range x.RawMatrix().Data {
		x.RawMatrix().Data[i] = rng.Float64()
	}
	variants := make([][]float64, 10)
	dst := make([][]float64, 10)
	for k := range variants {
		variants[k] = make([]float64, 10)
		variants[k][k] = 1
		dst[k] = make([]float64, rows)
	}
	b.Run("PredictVariants", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			n.PredictVariants(x, 0, variants, dst)
		}
	})
	b.Run("Predict", func(b *testing.B) {
		b.ReportAllocs()
		alt := mat.DenseCopyOf(x)
		for b.Loop() {
			for k, v := range variants {
				for i := range rows {
					copy(alt.RawRowView(i), v)
				}
				n.Predict(alt, dst[k])
			}
		}
	})
}
