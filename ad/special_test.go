package ad_test

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
	"gonum.org/v1/gonum/mat"
	"gonum.org/v1/gonum/mathext"

	"github.com/backpropq/backpropq/ad"
)

// Generators for the special functions' ranges.
var (
	// negativeNonInteger draws from (-4, 0) at least 0.15 from an integer.
	negativeNonInteger = func(rng *rand.Rand) float64 {
		return -float64(rng.IntN(4)) - 0.15 - 0.7*rng.Float64()
	}
	largePositive = func(rng *rand.Rand) float64 { return 10 + 200*rng.Float64() }
	moderate      = func(rng *rand.Rand) float64 { return 4 * (rng.Float64() - 0.5) }
)

func specialCases() []gradCase {
	withDeriv := func(a *ad.Tensor) *ad.Tensor {
		// sinh computed outside the tape, with its derivative cosh.
		v, d := make([]float64, len(a.Data())), make([]float64, len(a.Data()))
		for i, x := range a.Data() {
			v[i], d[i] = math.Sinh(x), math.Cosh(x)
		}
		return ad.WithDerivative(a, v, d)
	}
	cases := []gradCase{
		unaryCase("Lgamma", positive, ad.Lgamma),
		unaryCase("Lgamma/large", largePositive, ad.Lgamma),
		unaryCase("Lgamma/negative", negativeNonInteger, ad.Lgamma),
		unaryCase("Digamma", positive, ad.Digamma),
		unaryCase("Digamma/large", largePositive, ad.Digamma),
		unaryCase("Digamma/negative", negativeNonInteger, ad.Digamma),
		unaryCase("Expm1", moderate, ad.Expm1),
		unaryCase("Erf", nil, ad.Erf),
		unaryCase("Erf/wide", wide, ad.Erf),
		unaryCase("NormalCDF", nil, ad.NormalCDF),
		unaryCase("NormalCDF/wide", wide, ad.NormalCDF),
		unaryCase("LogNormalCDF", nil, ad.LogNormalCDF),
		unaryCase("LogNormalCDF/wide", wide, ad.LogNormalCDF),
		unaryCase("WithDerivative", nil, withDeriv),
	}
	for _, c := range cases[:len(cases):len(cases)] {
		cases = append(cases, fanout(c))
	}
	return cases
}

// fanout applies c's op twice to the same operands, so that the second
// backward kernel adds into a gradient the first one wrote.
func fanout(c gradCase) gradCase {
	return gradCase{
		name:   c.name + "/fanout",
		inputs: c.inputs,
		f: func(tp *ad.Tape, in []*ad.Tensor) *ad.Tensor {
			return ad.Concat(c.f(tp, in), ad.Scale(c.f(tp, in), 0.5))
		},
	}
}

func TestSpecialGradientsMatchFiniteDifferences(t *testing.T) {
	defer ad.SetPoison()()
	rng := rand.New(rand.NewPCG(1, 2))
	for _, c := range specialCases() {
		for _, d := range testDims(rng) {
			t.Run(fmt.Sprintf("%s/B=%d,D=%d,K=%d", c.name, d.B, d.D, d.K), func(t *testing.T) {
				checkCase(t, rng, c, d)
			})
		}
	}
}

// derivative5 returns the five-point central difference of f at x with
// step h, accurate to O(h⁴) plus rounding of about 1e-16·|f|/h.
func derivative5(f func(float64) float64, x, h float64) float64 {
	return (f(x-2*h) - 8*f(x-h) + 8*f(x+h) - f(x+2*h)) / (12 * h)
}

// stepFor returns a difference step for x that is small against the scale
// on which the special functions vary there: |x| near 0 and far out, and
// the distance to the nearest pole of the gamma function (the non-positive
// integers) when poles is set.
func stepFor(x float64, poles bool) float64 {
	h := 1e-3 * max(math.Abs(x), 1e-300)
	if x == 0 {
		h = 1e-3
	}
	if poles && x < 0 {
		h = min(h, 1e-3*math.Abs(x-math.Round(x)))
	}
	return h
}

// opDerivative returns f's value and its derivative from a backward pass
// through op at the points xs.
func opDerivative(op func(*ad.Tensor) *ad.Tensor, xs []float64) (val, grad []float64) {
	v := ad.NewVar(mat.NewDense(1, len(xs), append([]float64(nil), xs...)))
	tp := ad.NewTape()
	out := op(tp.Var(v))
	tp.Backward(ad.Sum(out))
	return append([]float64(nil), out.Data()...), v.Grad.RawMatrix().Data
}

// TestSpecialHardRegions checks values and derivatives where the special
// functions are hard: near 0, at poles' neighbours, far into the tails and
// at large arguments. The references are the Go and gonum functions and a
// five-point difference of an independently computed function.
func TestSpecialHardRegions(t *testing.T) {
	lgamma := func(x float64) float64 { v, _ := math.Lgamma(x); return v }
	cases := []struct {
		name    string
		op      func(*ad.Tensor) *ad.Tensor
		f       func(float64) float64 // reference value
		df      func(float64) float64 // reference derivative; nil: difference f
		xs      []float64
		tolVal  float64 // relative
		tolGrad float64 // relative
		poles   bool    // at the non-positive integers
	}{
		{"Lgamma", ad.Lgamma, lgamma, nil,
			[]float64{1e-8, 1e-3, 0.1, 1, 1.4616321449683622, 2, 9.99, 10, 10.01, 1e3, 1e6, -0.5, -2.3, -10.9}, 1e-15, 1e-8, true},
		// gonum's digamma is accurate to about 5e-11 absolute.
		{"Digamma", ad.Digamma, mathext.Digamma, nil,
			[]float64{1e-8, 1e-3, 0.1, 1, 2, 9.99, 10, 10.01, 1e3, 1e6, -0.5, -2.3, -10.9}, 1e-10, 1e-8, true},
		{"Expm1", ad.Expm1, math.Expm1, math.Exp, []float64{-1e-12, 1e-10, -0.3, 0.5, -40, 30}, 1e-15, 1e-15, false},
		{"Erf", ad.Erf, math.Erf, func(x float64) float64 { return 2 / math.SqrtPi * math.Exp(-x*x) },
			[]float64{0, 1e-9, 0.5, -3, 6, -27}, 1e-15, 1e-15, false},
		{"NormalCDF", ad.NormalCDF, func(x float64) float64 { return 0.5 * math.Erfc(-x/math.Sqrt2) },
			func(x float64) float64 { return math.Exp(-x*x/2) / math.Sqrt(2*math.Pi) },
			[]float64{0, -1, 2, -10, -37, 9}, 1e-15, 1e-15, false},
		{"Log1p", ad.Log1p, math.Log1p, func(x float64) float64 { return 1 / (1 + x) },
			[]float64{-0.999999, -1e-12, 1e-12, 0.5, 1e10}, 1e-15, 1e-15, false},
		{"Softplus", ad.Softplus, func(x float64) float64 { return max(x, 0) + math.Log1p(math.Exp(-math.Abs(x))) },
			func(x float64) float64 { return 1 / (1 + math.Exp(-x)) }, []float64{-745, -40, -1e-9, 0, 3, 40, 700}, 1e-15, 1e-15, false},
		{"LogSigmoid", ad.LogSigmoid, func(x float64) float64 { return min(x, 0) - math.Log1p(math.Exp(-math.Abs(x))) },
			func(x float64) float64 { return 1 / (1 + math.Exp(x)) }, []float64{-700, -40, 0, 1e-9, 40, 745}, 1e-15, 1e-15, false},
		// Below -37, log Φ is checked by its derivative only, since Φ
		// underflows; the derivative tends to -x.
		{"LogNormalCDF", ad.LogNormalCDF, nil, nil,
			[]float64{-1, 0, 3, 8, -19.9, -20.1, -36.9, -37.1, -100, -1e5}, 0, 1e-9, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			val, grad := opDerivative(c.op, c.xs)
			for i, x := range c.xs {
				if c.f != nil {
					want := c.f(x)
					require.InDeltaf(t, want, val[i], c.tolVal*max(math.Abs(want), 1), "value at %v", x)
				}
				var want float64
				switch {
				case c.df != nil:
					want = c.df(x)
				default:
					f := func(x float64) float64 { v, _ := opDerivative(c.op, []float64{x}); return v[0] }
					want = derivative5(f, x, stepFor(x, c.poles))
				}
				require.InDeltaf(t, want, grad[i], c.tolGrad*max(math.Abs(want), 1e-3), "derivative at %v", x)
			}
		})
	}
}

// TestLogNormalCDFTail checks log Φ against log Φ where Φ is representable
// and its slope against -x - 1/x, the leading terms of φ/Φ, far out.
func TestLogNormalCDFTail(t *testing.T) {
	xs := []float64{-5, -19.99, -20.01, -30, -36.99, -37.01}
	val, _ := opDerivative(ad.LogNormalCDF, xs)
	for i, x := range xs {
		want := math.Log(0.5 * math.Erfc(-x/math.Sqrt2))
		require.InDeltaf(t, want, val[i], 1e-13*math.Abs(want), "log Φ(%v)", x)
	}
	_, grad := opDerivative(ad.LogNormalCDF, []float64{-1e3, -1e6})
	for i, x := range []float64{-1e3, -1e6} {
		require.InDeltaf(t, -x-1/x, grad[i], 1e-9*math.Abs(x), "slope at %v", x)
	}
}

// TestDigammaAgainstHighPrecision checks ψ and ψ' against values computed
// to 30 digits (mpmath), at points where the series, the recurrence and
// the reflection meet.
func TestDigammaAgainstHighPrecision(t *testing.T) {
	cases := []struct{ x, psi, psi1 float64 }{
		{1e-8, -100000000.57721564, 1.0000000000000002e+16},
		{0.1, -10.423754940411076, 101.43329915079275},
		{1.4616321449683622, -9.241265521729427e-17, 0.9676722454476212},
		{9.999, 2.2516474172057355, 0.10517738667672887},
		{10, 2.251752589066721, 0.10516633568168575},
		{123.456, 4.811829323828985, 0.008132945834278198},
		{-0.5, 0.03648997397857652, 8.934802200544679},
		{-2.3, 3.3173231575618227, 14.725912160961292},
	}
	xs := make([]float64, len(cases))
	for i, c := range cases {
		xs[i] = c.x
	}
	psi, psi1 := opDerivative(ad.Digamma, xs)
	for i, c := range cases {
		require.InDeltaf(t, c.psi, psi[i], 2e-15*max(1, math.Abs(c.psi)), "ψ(%v)", c.x)
		require.InDeltaf(t, c.psi1, psi1[i], 2e-15*math.Abs(c.psi1), "ψ'(%v)", c.x)
	}
}

func TestSpecialPoles(t *testing.T) {
	val, grad := opDerivative(ad.Digamma, []float64{0, -1, -3})
	for i := range val {
		require.True(t, math.IsNaN(val[i]), "ψ at a pole")
		require.True(t, math.IsInf(grad[i], 1), "ψ' at a pole")
	}
	val, _ = opDerivative(ad.Lgamma, []float64{0, -2})
	for _, v := range val {
		require.True(t, math.IsInf(v, 1), "log Γ at a pole")
	}
}

func TestWithDerivativePanicsOnLength(t *testing.T) {
	tp := ad.NewTape()
	a := tp.Zeros(2, 2)
	require.Panics(t, func() { ad.WithDerivative(a, make([]float64, 3), make([]float64, 4)) })
	require.Panics(t, func() { ad.WithDerivative(a, make([]float64, 4), make([]float64, 3)) })
}
