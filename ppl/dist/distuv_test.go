package dist

import (
	"math"
	"testing"

	"github.com/stretchr/testify/require"
	"gonum.org/v1/gonum/stat/distuv"

	"github.com/backpropq/backpropq/ad"
)

// requireClose compares with a relative tolerance, treating equal
// infinities as equal.
func requireClose(t *testing.T, want, got float64, msg string, args ...any) {
	t.Helper()
	if math.IsInf(want, 0) {
		require.Equalf(t, want, got, msg, args...)
		return
	}
	require.InDeltaf(t, want, got, 1e-12*(1+math.Abs(want)), msg, args...)
}

// LogProb, Mean and Entropy agree with gonum's stat/distuv on scalars.
func TestAgreesWithDistuv(t *testing.T) {
	tp := ad.NewTape()
	t.Run("Normal", func(t *testing.T) {
		for _, p := range []struct{ mu, sigma float64 }{{0, 1}, {-3, 0.2}, {10, 40}} {
			d := Normal{Loc: tp.Scalar(p.mu), Scale: tp.Scalar(p.sigma)}
			g := distuv.Normal{Mu: p.mu, Sigma: p.sigma}
			for _, x := range []float64{-5, -0.1, 0, 2.5, 100} {
				requireClose(t, g.LogProb(x), d.LogProb(tp.Scalar(x)).Item(), "%+v x %v", p, x)
			}
			requireClose(t, g.Mean(), d.Mean().Item(), "mean %+v", p)
			requireClose(t, g.Entropy(), d.Entropy().Item(), "entropy %+v", p)
		}
	})
	t.Run("Bernoulli", func(t *testing.T) {
		for _, p := range []float64{0.01, 0.3, 0.5, 0.999} {
			g := distuv.Bernoulli{P: p}
			logit := math.Log(p) - math.Log1p(-p)
			for _, d := range []Bernoulli{BernoulliProbs(tp.Scalar(p)), BernoulliLogits(tp.Scalar(logit))} {
				for _, x := range []float64{0, 1} {
					requireClose(t, g.LogProb(x), d.LogProb(tp.Scalar(x)).Item(), "p %v x %v", p, x)
				}
				requireClose(t, g.Mean(), d.Mean().Item(), "mean p %v", p)
				requireClose(t, g.Entropy(), d.Entropy().Item(), "entropy p %v", p)
			}
		}
		// At the boundary only the probs form applies.
		for _, p := range []float64{0, 1} {
			g, d := distuv.Bernoulli{P: p}, BernoulliProbs(tp.Scalar(p))
			for _, x := range []float64{0, 1} {
				requireClose(t, g.LogProb(x), d.LogProb(tp.Scalar(x)).Item(), "p %v x %v", p, x)
			}
			require.Equal(t, 0.0, d.Entropy().Item())
		}
	})
	t.Run("Categorical", func(t *testing.T) {
		w := []float64{0.1, 2, 0.7, 1.2}
		g := distuv.NewCategorical(w, nil)
		logits := make([]float64, len(w))
		for k, v := range w {
			logits[k] = math.Log(v) + 3 // unnormalized and shifted
		}
		d := Categorical{Logits: row(tp, logits...)}
		oh := OneHotCategorical{Logits: row(tp, logits...)}
		for k := range w {
			requireClose(t, g.LogProb(float64(k)), d.LogProb(tp.Scalar(float64(k))).Item(), "class %d", k)
			onehot := make([]float64, len(w))
			onehot[k] = 1
			requireClose(t, g.LogProb(float64(k)), oh.LogProb(row(tp, onehot...)).Item(), "one-hot class %d", k)
		}
		requireClose(t, g.Entropy(), d.Entropy().Item(), "entropy")
		requireClose(t, g.Entropy(), oh.Entropy().Item(), "one-hot entropy")
	})
	t.Run("Uniform", func(t *testing.T) {
		for _, p := range []struct{ lo, hi float64 }{{0, 1}, {-2, 5}, {1e3, 1e3 + 1e-3}} {
			d := Uniform{Low: tp.Scalar(p.lo), High: tp.Scalar(p.hi)}
			g := distuv.Uniform{Min: p.lo, Max: p.hi}
			for _, x := range []float64{p.lo - 1, p.lo, (p.lo + p.hi) / 2, p.hi, p.hi + 1} {
				requireClose(t, g.LogProb(x), d.LogProb(tp.Scalar(x)).Item(), "%+v x %v", p, x)
			}
			requireClose(t, g.Mean(), d.Mean().Item(), "mean %+v", p)
			requireClose(t, g.Entropy(), d.Entropy().Item(), "entropy %+v", p)
		}
	})
}

// LogProb sums over the event's columns and broadcasts one-row parameters
// over the rows of the value.
func TestLogProbSumsColumnsAndBroadcasts(t *testing.T) {
	tp := ad.NewTape()
	d := Normal{Loc: row(tp, 0, 1, 2), Scale: tp.Scalar(2)}
	x := tp.FromData(2, 3, []float64{0.5, -1, 4, 3, 3, 3})
	lp := d.LogProb(x)
	require.Equal(t, []int{2, 1}, []int{lp.Rows(), lp.Cols()})
	for i := range 2 {
		want := 0.0
		for j := range 3 {
			want += distuv.Normal{Mu: float64(j), Sigma: 2}.LogProb(x.At(i, j))
		}
		requireClose(t, want, lp.At(i, 0), "row %d", i)
	}
	rows, cols := d.Shape()
	require.Equal(t, []int{1, 3}, []int{rows, cols})
	require.NoError(t, d.ValidateValue(x))
	h := d.Entropy()
	requireClose(t, 3*distuv.Normal{Mu: 0, Sigma: 2}.Entropy(), h.Item(), "entropy sums the broadcast columns")
}
