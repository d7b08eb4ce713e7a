package dist

import (
	"fmt"
	"math"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/backpropq/backpropq/ad"
)

// countRows returns every row of K non-negative integers summing to n.
func countRows(n, k int) [][]float64 {
	if k == 1 {
		return [][]float64{{float64(n)}}
	}
	var out [][]float64
	for first := 0; first <= n; first++ {
		for _, rest := range countRows(n-first, k-1) {
			out = append(out, append([]float64{float64(first)}, rest...))
		}
	}
	return out
}

func TestMultinomial(t *testing.T) {
	logits := []float64{0.3, -1, 1.2}
	p := logSoftmaxF(logits)
	for _, n := range []int{0, 1, 4, 30} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			tp := ad.NewTape()
			d := Multinomial{TotalCount: n, Logits: row(tp, logits...)}
			require.NoError(t, d.Validate())
			rows := countRows(n, 3)
			var flat []float64
			for _, r := range rows {
				flat = append(flat, r...)
			}
			lp := d.LogProb(tp.FromData(len(rows), 3, flat))
			sum := 0.0
			for i, r := range rows {
				want, _ := math.Lgamma(float64(n) + 1)
				for k, x := range r {
					lg, _ := math.Lgamma(x + 1)
					want += x*p[k] - lg
				}
				require.InDelta(t, want, lp.At(i, 0), 1e-10*(1+math.Abs(want)), "%v", r)
				sum += math.Exp(lp.At(i, 0))
			}
			require.InDelta(t, 1, sum, 1e-12, "the pmf sums to 1")
			for _, bad := range [][]float64{{-1, float64(n), 1}, {0.5, float64(n) - 0.5, 0}, {float64(n), 1, 0}} {
				require.Equal(t, math.Inf(-1), d.LogProb(row(tp, bad...)).Item(), "%v", bad)
				require.Error(t, d.ValidateValue(row(tp, bad...)))
			}
			many := Multinomial{TotalCount: n, Logits: repeatRows(tp, nDraws, logits...)}
			x := many.Sample(newRNG())
			require.NoError(t, many.ValidateValue(x))
			for k := range 3 {
				pk := math.Exp(p[k])
				requireMoments(t, column(x, k), float64(n)*pk, float64(n)*pk*(1-pk), fmt.Sprintf("class %d", k))
			}
		})
	}
	tp := ad.NewTape()
	require.Error(t, Multinomial{TotalCount: -1, Logits: row(tp, 0, 0)}.Validate())
}

// At probabilities 0 and 1 the binomial is a point mass, without NaN.
func TestBinomialEdgeProbabilities(t *testing.T) {
	tp := ad.NewTape()
	ks := col(tp, 0, 3, 10)
	for _, c := range []struct {
		p    float64
		want []float64
	}{{0, []float64{0, math.Inf(-1), math.Inf(-1)}}, {1, []float64{math.Inf(-1), math.Inf(-1), 0}}} {
		lp := Binomial{TotalCount: tp.Scalar(10), Probs: tp.Scalar(c.p)}.LogProb(ks)
		require.Equal(t, c.want, lp.Data(), "p %v", c.p)
	}
}
