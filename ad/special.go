package ad

import (
	"fmt"
	"math"
)

// specialFn selects the function of an opSpecial node (its i1).
type specialFn int

const (
	fnWithDerivative specialFn = iota // the derivative is saved in aux
	fnLgamma
	fnDigamma
	fnExpm1
	fnErf
	fnNormalCDF
	fnLogNormalCDF
)

// special appends an elementwise node computing f of a; the derivative is
// computed in the backward pass from a's and the output's values.
func special(fn specialFn, a *Tensor, f func(float64) float64) *Tensor {
	t := unaryNode(opSpecial, a, a.rows, a.cols)
	t.i1 = int(fn)
	y := t.data[:len(a.data)]
	for i, v := range a.data {
		y[i] = f(v)
	}
	return t
}

// Lgamma returns log|Γ(a)| elementwise; its derivative is the digamma
// function ψ. At the poles (0, -1, -2, ...) the value is +Inf.
func Lgamma(a *Tensor) *Tensor {
	return special(fnLgamma, a, func(x float64) float64 {
		v, _ := math.Lgamma(x)
		return v
	})
}

// Digamma returns ψ(a) = d/da log Γ(a) elementwise; its derivative is the
// trigamma function. It is NaN at the poles 0, -1, -2, ...
func Digamma(a *Tensor) *Tensor { return special(fnDigamma, a, digamma) }

// Expm1 returns exp(a)-1 elementwise, accurate for small a.
func Expm1(a *Tensor) *Tensor { return special(fnExpm1, a, math.Expm1) }

// Erf returns the error function of a elementwise.
func Erf(a *Tensor) *Tensor { return special(fnErf, a, math.Erf) }

// NormalCDF returns Φ(a), the standard Normal distribution function,
// elementwise; it is accurate in both tails (computed with erfc).
func NormalCDF(a *Tensor) *Tensor { return special(fnNormalCDF, a, normalCDF) }

// LogNormalCDF returns log Φ(a) elementwise, finite and accurate far into
// the lower tail (a down to about -1e154) where Φ(a) underflows.
func LogNormalCDF(a *Tensor) *Tensor { return special(fnLogNormalCDF, a, logNormalCDF) }

// WithDerivative returns a tensor holding value, a function f of a
// evaluated elementwise by the caller, whose gradient reaches a through the
// elementwise derivative deriv = f'(a). It records ops whose value comes
// from outside the tape, such as a sample drawn by inverting a
// distribution function, with an exact (implicit) derivative. value and
// deriv are copied. It panics if either length differs from a's size.
func WithDerivative(a *Tensor, value, deriv []float64) *Tensor {
	if len(value) != len(a.data) || len(deriv) != len(a.data) {
		panic(fmt.Sprintf("ad: WithDerivative: %d values and %d derivatives for a %s tensor", len(value), len(deriv), a.shape()))
	}
	t := unaryNode(opSpecial, a, a.rows, a.cols)
	t.i1 = int(fnWithDerivative)
	copy(t.data, value)
	t.aux = a.tape.alloc(len(deriv))
	copy(t.aux, deriv)
	return t
}

func (t *Tensor) backwardSpecial() {
	a, g := t.a, t.grad
	buf, add := a.gradDst()
	x, y, d := a.data[:len(g)], t.data[:len(g)], buf[:len(g)]
	var deriv func(x, y float64) float64
	switch specialFn(t.i1) {
	case fnWithDerivative:
		for i, v := range g {
			put(d, i, v*t.aux[i], add)
		}
		return
	case fnLgamma:
		deriv = func(x, _ float64) float64 { return digamma(x) }
	case fnDigamma:
		deriv = func(x, _ float64) float64 { return trigamma(x) }
	case fnExpm1:
		deriv = func(x, _ float64) float64 { return math.Exp(x) }
	case fnErf:
		deriv = func(x, _ float64) float64 { return 2 / math.SqrtPi * math.Exp(-x*x) }
	case fnNormalCDF:
		deriv = func(x, _ float64) float64 { return normalPDF(x) }
	case fnLogNormalCDF:
		deriv = func(x, _ float64) float64 { return normalMillsInverse(x) }
	}
	for i, v := range g {
		put(d, i, v*deriv(x[i], y[i]), add)
	}
}

const invSqrt2Pi = 0.3989422804014327 // 1/√(2π)

func normalPDF(x float64) float64 { return invSqrt2Pi * math.Exp(-x*x/2) }

func normalCDF(x float64) float64 { return 0.5 * math.Erfc(-x/math.Sqrt2) }

// logNormalCDF returns log Φ(x). Down to x = -37 Φ is a normal float and
// is computed with erfc; below, log Φ(x) = log φ(x) - log|x| + log m(x)
// with the asymptotic series m(x) = 1 - 1/x² + 3/x⁴ - ... of the Mills
// ratio, whose first omitted term is below 2e-15 there.
func logNormalCDF(x float64) float64 {
	switch {
	case x > 5:
		return math.Log1p(-0.5 * math.Erfc(x/math.Sqrt2))
	case x > -37:
		return math.Log(normalCDF(x))
	}
	return -x*x/2 - math.Log(-x) - 0.5*math.Log(2*math.Pi) + math.Log(millsSeries(x))
}

func millsSeries(x float64) float64 {
	z := 1 / (x * x)
	return 1 - z*(1-3*z*(1-5*z*(1-7*z*(1-9*z*(1-11*z)))))
}

// normalMillsInverse returns d/dx log Φ(x) = φ(x)/Φ(x), which is
// -x/m(x) in the far lower tail.
func normalMillsInverse(x float64) float64 {
	if x > -37 {
		return normalPDF(x) / normalCDF(x)
	}
	return -x / millsSeries(x)
}

// Bernoulli numbers B_2k/(2k) and B_2k for the asymptotic series of the
// digamma and trigamma functions, applied from x >= 10, where the first
// omitted term is below 1e-16 relative.
var (
	digammaSeries  = [...]float64{1.0 / 12, -1.0 / 120, 1.0 / 252, -1.0 / 240, 1.0 / 132, -691.0 / 32760, 1.0 / 12}
	trigammaSeries = [...]float64{1.0 / 6, -1.0 / 30, 1.0 / 42, -1.0 / 30, 5.0 / 66, -691.0 / 2730, 7.0 / 6}
)

// digamma returns ψ(x): the recurrence ψ(x) = ψ(x+1) - 1/x up to x >= 10,
// then ψ(x) ~ log x - 1/(2x) - Σ B_2k/(2k x^2k); below 0 the reflection
// ψ(x) = ψ(1-x) - π/tan(πx).
func digamma(x float64) float64 {
	switch {
	case math.IsNaN(x) || math.IsInf(x, -1):
		return math.NaN()
	case x <= 0 && x == math.Floor(x):
		return math.NaN()
	case x < 0:
		return digamma(1-x) - math.Pi/math.Tan(math.Pi*reduceHalf(x))
	}
	acc := 0.0
	for ; x < 10; x++ {
		acc -= 1 / x
	}
	z := 1 / (x * x)
	s := 0.0
	for k := len(digammaSeries) - 1; k >= 0; k-- {
		s = s*z + digammaSeries[k]
	}
	return acc + math.Log(x) - 0.5/x - s*z
}

// trigamma returns ψ'(x) in the same way: ψ'(x) = ψ'(x+1) + 1/x², then
// ψ'(x) ~ 1/x + 1/(2x²) + Σ B_2k/x^(2k+1); below 0 the reflection
// ψ'(x) = π²/sin²(πx) - ψ'(1-x). It is +Inf at the poles.
func trigamma(x float64) float64 {
	switch {
	case math.IsNaN(x) || math.IsInf(x, -1):
		return math.NaN()
	case x <= 0 && x == math.Floor(x):
		return math.Inf(1)
	case x < 0:
		s := math.Sin(math.Pi * reduceHalf(x))
		return math.Pi*math.Pi/(s*s) - trigamma(1-x)
	}
	acc := 0.0
	for ; x < 10; x++ {
		acc += 1 / (x * x)
	}
	z := 1 / (x * x)
	s := 0.0
	for k := len(trigammaSeries) - 1; k >= 0; k-- {
		s = s*z + trigammaSeries[k]
	}
	return acc + 1/x + 0.5*z + s*z/x
}

// reduceHalf returns x minus the nearest even integer, which leaves tan(πx)
// and sin²(πx) unchanged but keeps π·x small and exact to rounding.
func reduceHalf(x float64) float64 { return x - 2*math.Round(x/2) }
