package dist

import (
	"math"
	"math/rand/v2"

	"github.com/backpropq/backpropq/ad"
)

// Gamma is a batch of independent gamma distributions with shape
// Concentration (α) and Rate (β), elementwise: density
// β^α x^(α-1) e^(-βx) / Γ(α) on x >= 0. Both parameters must be > 0 and
// finite; they are [B x D] or broadcast to it.
//
// Support: [0, ∞). At x = 0 LogProb is the density's limit (+Inf for
// α < 1, log β for α = 1, -Inf for α > 1); below 0 it is -Inf.
//
// Gamma is [Reparameterized] by implicit reparameterization (Figurnov et
// al., 2018): RSample draws z with the Marsaglia-Tsang method and
// differentiates it as z(α, u) = F⁻¹(u; α)/β at fixed u = F(z; α), which
// gives dz/dα = -(∂F/∂α)(z)/p(z) exactly; ∂F/∂α comes from the series of
// the incomplete gamma function below α+1 and from its continued fraction
// above. A draw below the smallest normal float (likely when α < 0.01) is
// returned as that float.
type Gamma struct {
	Concentration, Rate *ad.Tensor
}

// Shape returns the broadcast shape of Concentration and Rate.
func (d Gamma) Shape() (batch, event int) { return shapeOf(d.Concentration, d.Rate) }

// Sample draws a value of shape [Gamma.Shape] without a gradient path.
// With the same source it returns the same numbers as [Gamma.RSample].
func (d Gamma) Sample(rng *rand.Rand) *ad.Tensor {
	rows, cols := d.Shape()
	a, b := viewOf(d.Concentration), viewOf(d.Rate)
	return fill(d.Rate.Tape(), rows, cols, func(i, j int) float64 {
		return standardGamma(rng, a.at(i, j)) / b.at(i, j)
	})
}

// RSample draws z = g/Rate with g a standard gamma draw that carries the
// implicit gradient dg/dα, so gradients reach both parameters.
func (d Gamma) RSample(rng *rand.Rand) *ad.Tensor {
	rows, cols := d.Shape()
	return ad.Div(rsampleStandardGamma(expand(d.Concentration, rows, cols), rng), d.Rate)
}

// LogProb returns Σ_j log p(value_j) per row, as [B x 1], with the edge
// values described on [Gamma].
func (d Gamma) LogProb(value *ad.Tensor) *ad.Tensor { return sumRows(d.LogProbElements(value)) }

// LogProbElements returns the log-density of each element of value, [B x D]
// (-Inf outside the support): the terms LogProb sums.
func (d Gamma) LogProbElements(value *ad.Tensor) *ad.Tensor {
	rows, cols := shapeOf(value, d.Concentration, d.Rate)
	a, b := d.Concentration, d.Rate
	return maskedLogProb(value, rows, cols, isNonNegative, 1, func(x *ad.Tensor) *ad.Tensor {
		norm := ad.Sub(ad.Mul(a, ad.Log(b)), ad.Lgamma(a))
		kernel := ad.Sub(xlogy(ad.Sub(a, a.Tape().Scalar(1)), x), ad.Mul(b, x))
		return ad.Add(norm, kernel)
	})
}

// Mean returns α/β, [B x D].
func (d Gamma) Mean() *ad.Tensor {
	rows, cols := d.Shape()
	return expand(ad.Div(d.Concentration, d.Rate), rows, cols)
}

// Variance returns α/β², [B x D].
func (d Gamma) Variance() *ad.Tensor {
	rows, cols := d.Shape()
	return expand(ad.Div(d.Concentration, ad.Square(d.Rate)), rows, cols)
}

// Entropy returns Σ_j α - log β + log Γ(α) + (1-α)ψ(α) per row, as [B x 1].
func (d Gamma) Entropy() *ad.Tensor {
	rows, cols := d.Shape()
	a := d.Concentration
	h := ad.Add(ad.Sub(a, ad.Log(d.Rate)), ad.Lgamma(a))
	h = ad.Add(h, ad.Mul(ad.Sub(a.Tape().Scalar(1), a), ad.Digamma(a)))
	return ad.RowSum(expand(h, rows, cols))
}

// Validate reports nil parameters, shapes that do not broadcast, and a
// concentration or rate that is not > 0 and finite.
func (d Gamma) Validate() error {
	return validatePositive("Gamma", param{"concentration", d.Concentration}, param{"rate", d.Rate})
}

// ValidateValue reports a value of the wrong shape or not >= 0 and finite.
func (d Gamma) ValidateValue(value *ad.Tensor) error {
	return validateElementwiseValue("Gamma", d, d.Rate, value, ruleNonNegative, isNonNegative)
}

// validatePositive validates parameters that must all be > 0 and finite.
func validatePositive(dist string, ps ...param) error {
	if _, _, err := checkParams(dist, ps...); err != nil {
		return err
	}
	for _, p := range ps {
		if err := checkElems(dist, p.name, p.t, rulePositive, isPositive); err != nil {
			return err
		}
	}
	return nil
}

// validateElementwiseValue checks value's shape against d's and each of
// its elements against ok.
func validateElementwiseValue(dist string, d Distribution, anyParam, value *ad.Tensor, rule string, ok func(float64) bool) error {
	rows, cols := d.Shape()
	if err := checkValueShape(dist, value, anyParam, rows, cols, false); err != nil {
		return err
	}
	return checkElems(dist, "value", value, rule, ok)
}

// standardGamma draws from Gamma(a, 1) by Marsaglia and Tsang's method,
// boosting a < 1 by the identity G(a) = G(a+1)·U^(1/a) (computed in logs).
// The result is at least the smallest normal float.
func standardGamma(rng *rand.Rand, a float64) float64 {
	logBoost := 0.0
	if a < 1 {
		logBoost = math.Log(uniformOpen(rng)) / a
		a++
	}
	d := a - 1.0/3
	c := 1 / math.Sqrt(9*d)
	for {
		x := rng.NormFloat64()
		v := 1 + c*x
		if v <= 0 {
			continue
		}
		v = v * v * v
		u := uniformOpen(rng)
		x2 := x * x
		if u < 1-0.0331*x2*x2 || math.Log(u) < 0.5*x2+d*(1-v+math.Log(v)) {
			return max(math.Exp(math.Log(d*v)+logBoost), tiny)
		}
	}
}

// rsampleStandardGamma draws standard gamma variables of concentrations
// alpha, one per element, with their implicit derivatives dg/dα.
func rsampleStandardGamma(alpha *ad.Tensor, rng *rand.Rand) *ad.Tensor {
	a := alpha.Data()
	g := make([]float64, len(a))
	for i, ai := range a {
		g[i] = standardGamma(rng, ai)
	}
	psi := ad.Digamma(constOf(alpha, func(v float64) float64 { return v + 1 })).Data()
	deriv := make([]float64, len(a))
	for i, ai := range a {
		deriv[i] = gammaSampleDerivative(ai, g[i], psi[i])
	}
	return ad.WithDerivative(alpha, g, deriv)
}

// gammaSampleDerivative returns dz/da = -(∂P/∂a)(a, z)/p(z; a) for the
// regularized lower incomplete gamma function P, the distribution function
// of Gamma(a, 1), and its density p; psi1 is ψ(a+1).
func gammaSampleDerivative(a, z, psi1 float64) float64 {
	if z < a+1 {
		return -gammaSeriesRatio(a, z, psi1)
	}
	return gammaFractionRatio(a, z, psi1-1/a)
}

// gammaSeriesRatio returns (∂P/∂a)/p from the series
// P(a, z) = z^a e^(-z) Σ_n z^n / Γ(a+n+1), which gives
//
//	(∂P/∂a)/p = Σ_{n>=0} t_n (log z - ψ(a+n+1)),   t_n = Π_{k=0..n} z/(a+k).
func gammaSeriesRatio(a, z, psi1 float64) float64 {
	logZ := math.Log(z)
	t, psi, sum := z/a, psi1, 0.0
	for n := 0; n < 100000; n++ {
		term := t * (logZ - psi)
		sum += term
		if float64(n) > z-a && math.Abs(term) <= 1e-17*math.Abs(sum) {
			break
		}
		psi += 1 / (a + float64(n) + 1)
		t *= z / (a + float64(n) + 1)
	}
	return sum
}

// gammaFractionRatio returns -(∂P/∂a)/p = (∂Q/∂a)/p for z >= a+1 from the
// continued fraction Q(a, z) = z^a e^(-z) h(a, z)/Γ(a), evaluated by the
// modified Lentz method together with its derivative h' in a (forward
// mode), which gives (∂Q/∂a)/p = z·((log z - ψ(a))·h + h'); psi is ψ(a).
func gammaFractionRatio(a, z, psi float64) float64 {
	const fpmin = 1e-300
	b, db := z+1-a, -1.0
	c, dc := 1/fpmin, 0.0
	d, dd := 1/b, 1/(b*b) // d = 1/b, so d' = -b'/b²
	h, dh := d, dd
	for i := 1; i < 100000; i++ {
		fi := float64(i)
		an, dan := -fi*(fi-a), fi
		b += 2
		// d ← 1/(an·d + b), c ← b + an/c
		den := an*d + b
		dden := dan*d + an*dd + db
		if math.Abs(den) < fpmin {
			den = fpmin
		}
		cNew := b + an/c
		dcNew := db + (dan*c-an*dc)/(c*c)
		if math.Abs(cNew) < fpmin {
			cNew = fpmin
		}
		c, dc = cNew, dcNew
		d, dd = 1/den, -dden/(den*den)
		del, ddel := d*c, dd*c+d*dc
		h, dh = h*del, dh*del+h*ddel
		if math.Abs(del-1) < 1e-16 && math.Abs(ddel) <= 1e-16*math.Abs(dh/h) {
			break
		}
	}
	return z * ((math.Log(z)-psi)*h + dh)
}
