package dist

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/backpropq/backpropq/ad"
)

const nDraws = 20000

// Sample means and variances of every distribution agree with the true
// ones within kSE standard errors, column by column.
func TestSampleMoments(t *testing.T) {
	pBern := []float64{sigmoidF(-1), sigmoidF(2), sigmoidF(0)}
	catLogits := []float64{0.1, 1, -1, 0.5}
	catP := make([]float64, len(catLogits))
	catMean, catSecond := 0.0, 0.0
	for k, l := range logSoftmaxF(catLogits) {
		catP[k] = math.Exp(l)
		catMean += float64(k) * catP[k]
		catSecond += float64(k*k) * catP[k]
	}
	bernVar := func(p []float64) []float64 {
		v := make([]float64, len(p))
		for i, q := range p {
			v[i] = q * (1 - q)
		}
		return v
	}
	// Moments of the relaxed distributions by quadrature of LogProb, so
	// the check ties the sampler to the density.
	relaxedBern := func(logit, temp float64) (mean, variance float64) {
		m := binaryConcreteQuadrature(logit, temp, func(x float64) float64 { return x }, func(x float64) float64 { return x * x })
		return m[0], m[1] - m[0]*m[0]
	}
	rbMean0, rbVar0 := relaxedBern(0.3, 0.5)
	rbMean1, rbVar1 := relaxedBern(-1, 2)
	conLogits, conTemp := []float64{1, -0.5, 0.2}, 0.6
	var conFs []func([]float64) float64
	for k := range 3 {
		conFs = append(conFs, func(x []float64) float64 { return x[k] }, func(x []float64) float64 { return x[k] * x[k] })
	}
	conM := concreteQuadrature(conLogits, conTemp, 40/conTemp, 400, conFs...)
	conMean := []float64{conM[0], conM[2], conM[4]}
	conVar := []float64{conM[1] - conM[0]*conM[0], conM[3] - conM[2]*conM[2], conM[5] - conM[4]*conM[4]}

	cases := []struct {
		name           string
		dist           func(tp *ad.Tape) Distribution
		reparam        bool
		mean, variance []float64
	}{
		{"Normal", func(tp *ad.Tape) Distribution {
			return Normal{Loc: repeatRows(tp, nDraws, 0.5, -2), Scale: row(tp, 1, 0.3)}
		}, false, []float64{0.5, -2}, []float64{1, 0.09}},
		{"NormalRSample", func(tp *ad.Tape) Distribution {
			return Normal{Loc: row(tp, 0.5, -2), Scale: repeatRows(tp, nDraws, 1, 0.3)}
		}, true, []float64{0.5, -2}, []float64{1, 0.09}},
		{"BernoulliLogits", func(tp *ad.Tape) Distribution { return BernoulliLogits(repeatRows(tp, nDraws, -1, 2, 0)) },
			false, pBern, bernVar(pBern)},
		{"BernoulliProbs", func(tp *ad.Tape) Distribution { return BernoulliProbs(repeatRows(tp, nDraws, 0.1, 0.5, 0.97, 0, 1)) },
			false, []float64{0.1, 0.5, 0.97, 0, 1}, bernVar([]float64{0.1, 0.5, 0.97, 0, 1})},
		{"Categorical", func(tp *ad.Tape) Distribution { return Categorical{Logits: repeatRows(tp, nDraws, catLogits...)} },
			false, []float64{catMean}, []float64{catSecond - catMean*catMean}},
		{"OneHotCategorical", func(tp *ad.Tape) Distribution {
			return OneHotCategorical{Logits: repeatRows(tp, nDraws, catLogits...)}
		}, false, catP, bernVar(catP)},
		{"Uniform", func(tp *ad.Tape) Distribution {
			return Uniform{Low: repeatRows(tp, nDraws, 0, -1), High: row(tp, 1, 3)}
		}, false, []float64{0.5, 1}, []float64{1.0 / 12, 16.0 / 12}},
		{"UniformRSample", func(tp *ad.Tape) Distribution {
			return Uniform{Low: repeatRows(tp, nDraws, 0, -1), High: row(tp, 1, 3)}
		}, true, []float64{0.5, 1}, []float64{1.0 / 12, 16.0 / 12}},
		{"Delta", func(tp *ad.Tape) Distribution { return Delta{Value: repeatRows(tp, nDraws, 2.5, -1)} },
			false, []float64{2.5, -1}, []float64{0, 0}},
		{"RelaxedBernoulli", func(tp *ad.Tape) Distribution {
			return RelaxedBernoulli{Logits: repeatRows(tp, nDraws, 0.3, -1), Temperature: row(tp, 0.5, 2)}
		}, false, []float64{rbMean0, rbMean1}, []float64{rbVar0, rbVar1}},
		{"RelaxedBernoulliRSample", func(tp *ad.Tape) Distribution {
			return RelaxedBernoulli{Logits: repeatRows(tp, nDraws, 0.3, -1), Temperature: row(tp, 0.5, 2)}
		}, true, []float64{rbMean0, rbMean1}, []float64{rbVar0, rbVar1}},
		{"RelaxedOneHotCategorical", func(tp *ad.Tape) Distribution {
			return RelaxedOneHotCategorical{Logits: repeatRows(tp, nDraws, conLogits...), Temperature: tp.Scalar(conTemp)}
		}, false, conMean, conVar},
		{"RelaxedOneHotCategoricalRSample", func(tp *ad.Tape) Distribution {
			return RelaxedOneHotCategorical{Logits: row(tp, conLogits...), Temperature: tp.Full(nDraws, 1, conTemp)}
		}, true, conMean, conVar},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tp := ad.NewTape()
			d := c.dist(tp)
			var x *ad.Tensor
			if c.reparam {
				x = d.(Reparameterized).RSample(newRNG())
			} else {
				x = d.Sample(newRNG())
			}
			rows, cols := d.Shape()
			require.Equal(t, []int{rows, cols}, []int{x.Rows(), x.Cols()})
			require.Equal(t, nDraws, rows)
			require.True(t, x.Provenance().Empty())
			require.NoError(t, d.ValidateValue(x))
			for j := range cols {
				requireMoments(t, column(x, j), c.mean[j], c.variance[j], c.name)
			}
		})
	}
}

// For the Concrete distribution P(argmax x = k) = softmax(logits)_k at
// every temperature.
func TestConcreteArgmaxIsCategorical(t *testing.T) {
	logits := []float64{0.4, -1, 1.2, 0}
	lp := logSoftmaxF(logits)
	for _, temp := range []float64{0.1, 1, 10} {
		tp := ad.NewTape()
		d := RelaxedOneHotCategorical{Logits: repeatRows(tp, nDraws, logits...), Temperature: tp.Scalar(temp)}
		x := d.RSample(newRNG())
		counts := make([]int, len(logits))
		for i := range nDraws {
			counts[argmaxRow(x.Data()[i*4:(i+1)*4])]++
		}
		for k := range logits {
			requireFraction(t, math.Exp(lp[k]), counts[k], nDraws, "temperature %v class %d", temp, k)
		}
	}
}

// The same seed gives the same numbers, and Sample and RSample of a
// continuous distribution draw the same noise.
func TestSampleReproducibleAndEqualToRSample(t *testing.T) {
	cases := []struct {
		name string
		dist func(tp *ad.Tape) Reparameterized
	}{
		{"Normal", func(tp *ad.Tape) Reparameterized { return Normal{Loc: repeatRows(tp, 5, 1, 2), Scale: row(tp, 0.5, 3)} }},
		{"Uniform", func(tp *ad.Tape) Reparameterized { return Uniform{Low: repeatRows(tp, 5, 1, 2), High: row(tp, 1.5, 3)} }},
		{"RelaxedBernoulli", func(tp *ad.Tape) Reparameterized {
			return RelaxedBernoulli{Logits: repeatRows(tp, 5, 1, -2), Temperature: tp.Scalar(0.3)}
		}},
		{"RelaxedOneHotCategorical", func(tp *ad.Tape) Reparameterized {
			return RelaxedOneHotCategorical{Logits: repeatRows(tp, 5, 1, -2, 0), Temperature: tp.Scalar(0.3)}
		}},
		{"Delta", func(tp *ad.Tape) Reparameterized { return Delta{Value: repeatRows(tp, 5, 1, -2)} }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tp := ad.NewTape()
			d := c.dist(tp)
			a, b, r := d.Sample(newRNG()), d.Sample(newRNG()), d.RSample(newRNG())
			require.Equal(t, a.Data(), b.Data())
			require.InDeltaSlice(t, a.Data(), r.Data(), 1e-12)
			other := d.Sample(rand.New(rand.NewPCG(3, 4))).Data()
			if _, isDelta := d.(Delta); isDelta {
				require.Equal(t, a.Data(), other, "a Delta ignores the source")
			} else {
				require.NotEqual(t, a.Data(), other, "another seed gives other numbers")
			}
		})
	}
}
