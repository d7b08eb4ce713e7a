package infer

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/backpropq/backpropq/ad"
	"github.com/backpropq/backpropq/ppl"
	"github.com/backpropq/backpropq/ppl/dist"
	"github.com/backpropq/backpropq/vi"
)

// biasNorm returns the Euclidean norm of mean - exact and its standard
// error (delta method, treating the components as independent).
func biasNorm(mean, se, exact []float64) (norm, normSE float64) {
	var s, v float64
	for i := range mean {
		d := mean[i] - exact[i]
		s += d * d
	}
	norm = math.Sqrt(s)
	for i := range mean {
		d := mean[i] - exact[i]
		v += (d / norm) * (d / norm) * se[i] * se[i]
	}
	return norm, math.Sqrt(v)
}

// TestGumbelBiasShrinksWithTemperature compares the relaxed estimator's
// mean gradient with the exact one on the Bernoulli chain and the
// 4-class one-hot site: the bias is clearly non-zero at high temperature
// and falls as the temperature falls.
func TestGumbelBiasShrinksWithTemperature(t *testing.T) {
	temps := []float64{2, 0.5, 0.1}
	for mi, m := range []rxModel{rxChain(), rxOneHot()} {
		t.Run(m.name, func(t *testing.T) {
			exact := m.exactGrad(t)
			norms := make([]float64, len(temps))
			ses := make([]float64, len(temps))
			for i, lambda := range temps {
				est := GumbelSoftmax{Temperature: lambda}
				require.False(t, est.Unbiased())
				rng := rand.New(rand.NewPCG(uint64(mi), uint64(i)))
				mean, se := m.estimate(t, Estimators{Default: est}, 200, 100, rng)
				norms[i], ses[i] = biasNorm(mean, se, exact)
				t.Logf("temperature %.2f: |bias| %.4f ± %.4f", lambda, norms[i], ses[i])
			}
			require.Greater(t, norms[0], 4*ses[0], "bias at the highest temperature is not detectable")
			for i := 1; i < len(temps); i++ {
				diff := norms[i-1] - norms[i]
				require.Greater(t, diff, 3*math.Hypot(ses[i-1], ses[i]), "bias did not shrink from temperature %v to %v", temps[i-1], temps[i])
			}
		})
	}
}

// TestStraightThroughValuesAreHard checks that the straight-through form
// puts exact 0/1 and one-hot values in the run, distributed as the site's
// distribution, while the gradient reaches the logits.
func TestStraightThroughValuesAreHard(t *testing.T) {
	for _, c := range []struct {
		name string
		d    func(tp *ad.Tape) (dist.Distribution, *ad.Tensor)
		prob float64 // probability of a 1 in column 0
	}{
		{"bernoulli", func(tp *ad.Tape) (dist.Distribution, *ad.Tensor) {
			l := tp.Full(4000, 1, 0.7)
			return dist.BernoulliLogits(l), l
		}, 1 / (1 + math.Exp(-0.7))},
		{"onehot", func(tp *ad.Tape) (dist.Distribution, *ad.Tensor) {
			l := ad.Add(tp.Zeros(4000, 3), tp.FromData(1, 3, []float64{0.5, -1, 0.2}))
			return dist.OneHotCategorical{Logits: l}, l
		}, math.Exp(0.5) / (math.Exp(0.5) + math.Exp(-1) + math.Exp(0.2))},
	} {
		t.Run(c.name, func(t *testing.T) {
			tp := ad.NewTape()
			d, logits := c.d(tp)
			site := &ppl.Site{Addr: "b", Kind: ppl.KindSample, Dist: d}
			v := GumbelSoftmax{Temperature: 0.3, StraightThrough: true}.Draw(site, rand.New(rand.NewPCG(1, 2)))
			require.NotNil(t, v)
			rows, cols := v.Dims()
			ones := 0.0
			for i := 0; i < rows; i++ {
				sum := 0.0
				for j := 0; j < cols; j++ {
					x := v.At(i, j)
					require.True(t, x == 0 || x == 1, "value %v at row %d", x, i)
					sum += x
				}
				if cols > 1 {
					require.Equal(t, 1.0, sum)
				}
				ones += v.At(i, 0)
			}
			p := ones / float64(rows)
			require.InDelta(t, c.prob, p, 4*math.Sqrt(c.prob*(1-c.prob)/float64(rows)))
			g := tp.Gradients(ad.Sum(ad.Slice(v, 0, 1)), logits)[0]
			require.NotZero(t, g.At(0, 0))
		})
	}
}

// TestGumbelRejectsIndexSites checks that a Categorical site, whose values
// are class indices, is not relaxed and the step fails naming it.
func TestGumbelRejectsIndexSites(t *testing.T) {
	m := rxIndex()
	st := m.store(t)
	_, err := BuildSurrogate(vi.Program{Model: m.model}, Estimators{Default: GumbelSoftmax{}},
		ppl.Config{Tape: ad.NewTape(), Rand: rand.New(rand.NewPCG(1, 2)), Params: st, Batch: 4})
	require.ErrorContains(t, err, `"v"`)
	require.ErrorContains(t, err, "OneHotCategorical")
}
