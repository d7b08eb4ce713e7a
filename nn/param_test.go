package nn

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
	"gonum.org/v1/gonum/mat"
)

func TestInitializers(t *testing.T) {
	const rows, cols = 200, 300
	n := float64(rows * cols)
	glorotA := math.Sqrt(6.0 / (rows + cols))
	tests := []struct {
		name     string
		init     Initializer
		mean     float64
		variance float64 // of one element
		fourth   float64 // E[(x-mean)^4], for the standard error of the variance
		lo, hi   float64
	}{
		{"GlorotUniform", GlorotUniform{}, 0, glorotA * glorotA / 3, math.Pow(glorotA, 4) / 5, -glorotA, glorotA},
		{"Normal", Normal{Std: 0.5}, 0, 0.25, 3 * 0.0625, math.Inf(-1), math.Inf(1)},
		{"Zeros", Zeros{}, 0, 0, 0, 0, 0},
		{"Constant", Constant(1.5), 1.5, 0, 0, 1.5, 1.5},
		{"InitFunc", InitFunc(func(m *mat.Dense, _ *rand.Rand) { m.Apply(func(int, int, float64) float64 { return -2 }, m) }), -2, 0, 0, -2, -2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := mat.NewDense(rows, cols, nil)
			tc.init.Init(m, newRand())
			var sum, sq float64
			for _, x := range m.RawMatrix().Data {
				require.GreaterOrEqual(t, x, tc.lo)
				require.LessOrEqual(t, x, tc.hi)
				sum += x
			}
			mean := sum / n
			for _, x := range m.RawMatrix().Data {
				sq += (x - mean) * (x - mean)
			}
			variance := sq / n
			// Five standard errors: sd/sqrt(n) for the mean and
			// sqrt((μ4 - σ⁴)/n) for the variance.
			require.InDelta(t, tc.mean, mean, 5*math.Sqrt(tc.variance/n)+1e-12)
			require.InDelta(t, tc.variance, variance, 5*math.Sqrt((tc.fourth-tc.variance*tc.variance)/n)+1e-12)

			// Same seed, same values.
			again := mat.NewDense(rows, cols, nil)
			tc.init.Init(again, newRand())
			require.Equal(t, m.RawMatrix().Data, again.RawMatrix().Data)
		})
	}
}

func TestRandomInitializersNeedRand(t *testing.T) {
	for _, init := range []Initializer{GlorotUniform{}, Normal{Std: 1}} {
		require.Panics(t, func() { init.Init(mat.NewDense(2, 2, nil), nil) })
	}
	for _, init := range []Initializer{Zeros{}, Constant(3)} {
		require.NotPanics(t, func() { init.Init(mat.NewDense(2, 2, nil), nil) })
	}
}
