package dist

import (
	"math"
	"testing"

	"github.com/stretchr/testify/require"
	"gonum.org/v1/gonum/integrate/quad"

	"github.com/backpropq/backpropq/ad"
)

// Every pmf, evaluated at all points of its support in one batched
// LogProb call with a one-row parameter, sums to 1.
func TestDiscretePMFSumsToOne(t *testing.T) {
	// All 2^3 binary vectors of length 3, as rows.
	var bits []float64
	for v := range 8 {
		for j := range 3 {
			bits = append(bits, float64(v>>j&1))
		}
	}
	cases := []struct {
		name   string
		dist   func(tp *ad.Tape) Distribution
		values func(tp *ad.Tape) *ad.Tensor
	}{
		{"BernoulliLogits", func(tp *ad.Tape) Distribution { return BernoulliLogits(row(tp, -1.3, 0, 4.2)) },
			func(tp *ad.Tape) *ad.Tensor { return tp.FromData(8, 3, bits) }},
		{"BernoulliProbs", func(tp *ad.Tape) Distribution { return BernoulliProbs(row(tp, 0.2, 0.5, 0.93)) },
			func(tp *ad.Tape) *ad.Tensor { return tp.FromData(8, 3, bits) }},
		{"BernoulliProbsBoundary", func(tp *ad.Tape) Distribution { return BernoulliProbs(row(tp, 0, 1, 0.25)) },
			func(tp *ad.Tape) *ad.Tensor { return tp.FromData(8, 3, bits) }},
		{"BernoulliExtremeLogits", func(tp *ad.Tape) Distribution { return BernoulliLogits(row(tp, -50, 40, 700)) },
			func(tp *ad.Tape) *ad.Tensor { return tp.FromData(8, 3, bits) }},
		{"Categorical", func(tp *ad.Tape) Distribution { return Categorical{Logits: row(tp, 0.3, -2, 1.5, 0, 7)} },
			func(tp *ad.Tape) *ad.Tensor { return col(tp, 0, 1, 2, 3, 4) }},
		{"CategoricalK1", func(tp *ad.Tape) Distribution { return Categorical{Logits: row(tp, -3)} },
			func(tp *ad.Tape) *ad.Tensor { return col(tp, 0) }},
		{"OneHotCategorical", func(tp *ad.Tape) Distribution { return OneHotCategorical{Logits: row(tp, 0.3, -2, 1.5, 0)} },
			func(tp *ad.Tape) *ad.Tensor {
				return tp.FromData(4, 4, []float64{1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1})
			}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tp := ad.NewTape()
			d, v := c.dist(tp), c.values(tp)
			lp := d.LogProb(v)
			require.Equal(t, v.Rows(), lp.Rows())
			require.Equal(t, 1, lp.Cols())
			sum := 0.0
			for _, l := range lp.Data() {
				sum += math.Exp(l)
			}
			require.InDelta(t, 1, sum, 1e-12)
		})
	}
}

// The Normal density integrates to 1 by Gauss-Legendre quadrature on
// loc ± 20 scale (the mass outside is below 1e-88).
func TestNormalDensityIntegratesToOne(t *testing.T) {
	for _, c := range []struct{ loc, scale float64 }{{0, 1}, {3, 0.01}, {-2, 7}, {1e3, 1e-3}} {
		tp := ad.NewTape()
		density := func(x float64) float64 {
			tp.Reset()
			d := Normal{Loc: tp.Scalar(c.loc), Scale: tp.Scalar(c.scale)}
			return math.Exp(d.LogProb(tp.Scalar(x)).Item())
		}
		got := quad.Fixed(density, c.loc-20*c.scale, c.loc+20*c.scale, 400, nil, 0)
		require.InDeltaf(t, 1, got, 1e-10, "loc %v scale %v", c.loc, c.scale)
	}
}

// binaryConcreteQuadrature integrates f(x) against the RelaxedBernoulli
// density by quadrature in y = logit(x) on [-30, 30], evaluating the
// density through LogProb in one batch.
func binaryConcreteQuadrature(logit, temp float64, fs ...func(x float64) float64) []float64 {
	ys, ws := legendre(3000, -30, 30)
	tp := ad.NewTape()
	xs := make([]float64, len(ys))
	for i, y := range ys {
		xs[i] = sigmoidF(y)
	}
	d := RelaxedBernoulli{Logits: tp.Scalar(logit), Temperature: tp.Scalar(temp)}
	lp := d.LogProb(tp.FromData(len(xs), 1, xs)).Data()
	out := make([]float64, len(fs))
	for i, x := range xs {
		dens := math.Exp(lp[i]) * x * (1 - x) // dx = x(1-x) dy
		for k, f := range fs {
			out[k] += ws[i] * dens * f(x)
		}
	}
	return out
}

// concreteQuadrature integrates f(x) against the density of a 3-class
// RelaxedOneHotCategorical by tensor-product quadrature in
// y = (log x1/x3, log x2/x3) on [-r, r]²; x = softmax(y1, y2, 0), whose
// Jacobian determinant is x1·x2·x3.
func concreteQuadrature(logits []float64, temp, r float64, n int, fs ...func(x []float64) float64) []float64 {
	ys, ws := legendre(n, -r, r)
	pts := make([]float64, 0, 3*n*n)
	for _, y1 := range ys {
		for _, y2 := range ys {
			m := max(y1, y2, 0)
			e1, e2, e3 := math.Exp(y1-m), math.Exp(y2-m), math.Exp(-m)
			s := e1 + e2 + e3
			pts = append(pts, e1/s, e2/s, e3/s)
		}
	}
	tp := ad.NewTape()
	d := RelaxedOneHotCategorical{Logits: row(tp, logits...), Temperature: tp.Scalar(temp)}
	lp := d.LogProb(tp.FromData(n*n, 3, pts)).Data()
	out := make([]float64, len(fs))
	for a := range n {
		for b := range n {
			i := a*n + b
			x := pts[3*i : 3*i+3]
			dens := math.Exp(lp[i]) * x[0] * x[1] * x[2] * ws[a] * ws[b]
			for k, f := range fs {
				out[k] += dens * f(x)
			}
		}
	}
	return out
}

func TestRelaxedDensitiesIntegrateToOne(t *testing.T) {
	one := func(float64) float64 { return 1 }
	for _, c := range []struct{ logit, temp float64 }{{0, 1}, {1.5, 0.7}, {-2, 2}, {0.3, 5}} {
		got := binaryConcreteQuadrature(c.logit, c.temp, one)[0]
		require.InDeltaf(t, 1, got, 1e-7, "RelaxedBernoulli logit %v temperature %v", c.logit, c.temp)
	}
	oneK := func([]float64) float64 { return 1 }
	for _, c := range []struct {
		logits []float64
		temp   float64
	}{{[]float64{0, 0, 0}, 1}, {[]float64{1, -0.5, 0.2}, 0.6}, {[]float64{2, 0, -1}, 1.5}} {
		got := concreteQuadrature(c.logits, c.temp, 40/c.temp, 400, oneK)[0]
		require.InDeltaf(t, 1, got, 1e-6, "RelaxedOneHotCategorical logits %v temperature %v", c.logits, c.temp)
	}
}

// With two classes the Concrete density of (x, 1-x) is the binary
// Concrete density of x with logit l1 - l2.
func TestConcreteTwoClassesIsBinaryConcrete(t *testing.T) {
	tp := ad.NewTape()
	xs := []float64{1e-9, 0.01, 0.3, 0.5, 0.77, 0.999}
	pairs := make([]float64, 0, 2*len(xs))
	for _, x := range xs {
		pairs = append(pairs, x, 1-x)
	}
	for _, temp := range []float64{0.2, 1, 3} {
		k := RelaxedOneHotCategorical{Logits: row(tp, 0.4, -1.1), Temperature: tp.Scalar(temp)}
		b := RelaxedBernoulli{Logits: tp.Scalar(1.5), Temperature: tp.Scalar(temp)}
		got := k.LogProb(tp.FromData(len(xs), 2, pairs)).Data()
		want := b.LogProb(col(tp, xs...)).Data()
		for i := range xs {
			require.InDeltaf(t, want[i], got[i], 1e-9*(1+math.Abs(want[i])), "x %v temperature %v", xs[i], temp)
		}
	}
}
