package q_test

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gonum.org/v1/gonum/mat"

	"github.com/backpropq/backpropq/ad"
	"github.com/backpropq/backpropq/q"
)

// TestNormalizeTargetsKeepsValues checks that the rescaling of a
// normalized critic's last layer leaves its values unchanged: with a zero
// learning rate an update after the first moves μ and σ but no value, on
// the arrays (Predict) and on a tape (Forward).
func TestNormalizeTargetsKeepsValues(t *testing.T) {
	layout := q.Layout{Fields: []q.Field{{Addr: "x", Kind: q.Real, Width: 3}}}
	n := q.NewMLP(layout, []int{5}, 0, rand.New(rand.NewPCG(1, 2)))
	n.NormalizeTargets()
	rng := rand.New(rand.NewPCG(3, 4))
	x := mat.NewDense(6, 3, nil)
	for i := range 18 {
		x.RawMatrix().Data[i] = rng.NormFloat64()
	}
	// The first update sets μ and σ from its targets and leaves the
	// weights; the later ones preserve the values.
	first := make([]float64, 6)
	for i := range first {
		first[i] = 100 + 10*rng.NormFloat64()
	}
	require.NoError(t, n.Update(x, first))
	before := make([]float64, 6)
	n.Predict(x, before)
	for k := range 4 {
		target := make([]float64, 6)
		for i := range target {
			target[i] = 200*float64(k+1) + 30*rng.NormFloat64()
		}
		require.NoError(t, n.Update(x, target))
		got := make([]float64, 6)
		n.Predict(x, got)
		for i := range got {
			assert.InDelta(t, before[i], got[i], 1e-9*(1+math.Abs(before[i])), "update %d row %d", k, i)
		}
		tp := ad.NewTape()
		fwd := n.Forward(tp.Const(x)).Data()
		for i := range got {
			assert.InDelta(t, got[i], fwd[i], 1e-9*(1+math.Abs(got[i])))
		}
	}
	w := n.Weights()
	norm := w[len(w)-1]
	assert.Greater(t, norm[0], 105.0, "μ follows the targets (100, then 200 to 800 at weight 0.01)")
	assert.Greater(t, norm[1], 1.0, "σ follows the targets")
}

// TestNormalizeTargetsLearnsLargeValues compares an MLP critic with and
// without normalized targets on values around 200 that depend linearly on
// the input: after 300 Adam steps at rate 0.01 the normalized one fits
// them, the plain one is still far off.
func TestNormalizeTargetsLearnsLargeValues(t *testing.T) {
	layout := q.Layout{Fields: []q.Field{{Addr: "x", Kind: q.Real, Width: 4}}}
	coef := []float64{25, -15, 10, 30}
	value := func(row []float64) float64 {
		v := 200.0
		for j, c := range coef {
			v += c * row[j]
		}
		return v
	}
	mse := func(normalize bool) float64 {
		n := q.NewMLP(layout, []int{16}, 0.01, rand.New(rand.NewPCG(1, 2)))
		if normalize {
			n.NormalizeTargets()
		}
		rng := rand.New(rand.NewPCG(5, 6))
		batch := func() (*mat.Dense, []float64) {
			x := mat.NewDense(32, 4, nil)
			y := make([]float64, 32)
			for i := range 32 {
				for j := range 4 {
					x.Set(i, j, rng.Float64()*2-1)
				}
				y[i] = value(x.RawRowView(i)) + rng.NormFloat64()
			}
			return x, y
		}
		for range 300 {
			x, y := batch()
			require.NoError(t, n.Update(x, y))
		}
		x, y := batch()
		pred := make([]float64, len(y))
		n.Predict(x, pred)
		s := 0.0
		for i := range y {
			s += (pred[i] - y[i]) * (pred[i] - y[i])
		}
		return s / float64(len(y))
	}
	plain, normalized := mse(false), mse(true)
	t.Logf("mean squared error after 300 steps: plain %.4g, normalized %.4g (target variance about %.0f)", plain, normalized, (25*25+15*15+10*10+30*30)/3.0)
	assert.Less(t, normalized, 30.0)
	assert.Greater(t, plain, 10*normalized)
}
