package dist

import (
	"math"
	"math/rand/v2"

	"github.com/backpropq/backpropq/ad"
)

// StudentT is a batch of independent Student's t distributions with Df
// degrees of freedom (ν), location Loc and scale Scale, elementwise:
// density Γ((ν+1)/2)/(Γ(ν/2)·√(νπ)·σ) · (1 + z²/ν)^(-(ν+1)/2) with
// z = (x-μ)/σ. Df and Scale must be > 0 and finite, Loc finite; they are
// [B x D] or broadcast to it.
//
// Support: the real line.
//
// StudentT is [Reparameterized]: RSample returns Loc + Scale·ε·√(ν/(2g))
// with ε standard normal and g ~ Gamma(ν/2, 1) implicitly reparameterized
// (see [Gamma]), so gradients reach all three parameters.
type StudentT struct {
	Df, Loc, Scale *ad.Tensor
}

// Shape returns the broadcast shape of the parameters.
func (d StudentT) Shape() (batch, event int) { return shapeOf(d.Df, d.Loc, d.Scale) }

// Sample draws a value of shape [StudentT.Shape] without a gradient path.
// With the same source it returns the same numbers as [StudentT.RSample].
func (d StudentT) Sample(rng *rand.Rand) *ad.Tensor {
	rows, cols := d.Shape()
	df, loc, scale := viewOf(d.Df), viewOf(d.Loc), viewOf(d.Scale)
	eps := make([]float64, rows*cols)
	for k := range eps {
		eps[k] = rng.NormFloat64()
	}
	return fill(d.Loc.Tape(), rows, cols, func(i, j int) float64 {
		nu := df.at(i, j)
		g := standardGamma(rng, nu/2)
		return loc.at(i, j) + scale.at(i, j)*eps[i*cols+j]*math.Sqrt(nu/(2*g))
	})
}

// RSample draws Loc + Scale·ε·√(ν/(2g)), differentiable in every
// parameter.
func (d StudentT) RSample(rng *rand.Rand) *ad.Tensor {
	rows, cols := d.Shape()
	tp := d.Loc.Tape()
	eps := fill(tp, rows, cols, func(int, int) float64 { return rng.NormFloat64() })
	half := ad.Scale(expand(d.Df, rows, cols), 0.5)
	g := rsampleStandardGamma(half, rng)
	return ad.Add(d.Loc, ad.Mul(d.Scale, ad.Mul(eps, ad.Sqrt(ad.Div(half, g)))))
}

// LogProb returns Σ_j log p(value_j) per row, as [B x 1].
func (d StudentT) LogProb(value *ad.Tensor) *ad.Tensor { return sumRows(d.LogProbElements(value)) }

// LogProbElements returns the log-density of each element of value, [B x D]:
// the terms LogProb sums.
func (d StudentT) LogProbElements(value *ad.Tensor) *ad.Tensor {
	tp := value.Tape()
	nu := d.Df
	half := ad.Scale(nu, 0.5)
	halfPlus := ad.Add(half, tp.Scalar(0.5))
	norm := ad.Sub(ad.Lgamma(halfPlus), ad.Lgamma(half))
	norm = ad.Sub(norm, ad.Add(ad.Scale(ad.Log(ad.Scale(nu, math.Pi)), 0.5), ad.Log(d.Scale)))
	z := ad.Div(ad.Sub(value, d.Loc), d.Scale)
	lp := ad.Sub(norm, ad.Mul(halfPlus, ad.Log1p(ad.Div(ad.Square(z), nu))))
	rows, cols := shapeOf(value, d.Df, d.Loc, d.Scale)
	return expand(lp, rows, cols)
}

// Mean returns Loc broadcast to [StudentT.Shape], or NaN where ν <= 1 (no
// mean exists).
func (d StudentT) Mean() *ad.Tensor {
	rows, cols := d.Shape()
	undefined := constOf(expand(d.Df, rows, cols), func(nu float64) float64 { return b2f(nu <= 1) })
	return ad.Where(undefined, d.Df.Tape().Scalar(math.NaN()), expand(d.Loc, rows, cols))
}

// Variance returns Scale²·ν/(ν-2) for ν > 2, +Inf for 1 < ν <= 2 and NaN
// for ν <= 1, [B x D].
func (d StudentT) Variance() *ad.Tensor {
	rows, cols := d.Shape()
	tp := d.Df.Tape()
	nu := expand(d.Df, rows, cols)
	v := ad.Mul(ad.Square(d.Scale), ad.Div(nu, ad.Sub(nu, tp.Scalar(2))))
	edge := constOf(nu, func(nu float64) float64 {
		if nu <= 1 {
			return math.NaN()
		}
		return math.Inf(1)
	})
	return ad.Where(constOf(nu, func(nu float64) float64 { return b2f(nu > 2) }), v, edge)
}

// Validate reports nil parameters, shapes that do not broadcast, a df or
// scale that is not > 0 and finite and a loc that is not finite.
func (d StudentT) Validate() error {
	if _, _, err := checkParams("StudentT", param{"df", d.Df}, param{"loc", d.Loc}, param{"scale", d.Scale}); err != nil {
		return err
	}
	if err := checkElems("StudentT", "df", d.Df, rulePositive, isPositive); err != nil {
		return err
	}
	if err := checkElems("StudentT", "loc", d.Loc, ruleFinite, isFinite); err != nil {
		return err
	}
	return checkElems("StudentT", "scale", d.Scale, rulePositive, isPositive)
}

// ValidateValue reports a value of the wrong shape or not finite.
func (d StudentT) ValidateValue(value *ad.Tensor) error {
	return validateElementwiseValue("StudentT", d, d.Loc, value, ruleFinite, isFinite)
}

// Cauchy is a batch of independent Cauchy distributions with location Loc
// and scale Scale, elementwise: density 1/(πσ(1+z²)), z = (x-μ)/σ. Loc
// must be finite and Scale > 0 and finite; they are [B x D] or broadcast
// to it. It has no mean or variance.
//
// Support: the real line.
//
// Cauchy is [Reparameterized]: RSample returns Loc + Scale·tan(π(u-½)).
type Cauchy struct {
	Loc, Scale *ad.Tensor
}

// Shape returns the broadcast shape of Loc and Scale.
func (d Cauchy) Shape() (batch, event int) { return shapeOf(d.Loc, d.Scale) }

func cauchyNoise(rng *rand.Rand) float64 { return math.Tan(math.Pi * (uniformOpen(rng) - 0.5)) }

// Sample draws a value of shape [Cauchy.Shape] without a gradient path.
// With the same source it returns the same numbers as [Cauchy.RSample].
func (d Cauchy) Sample(rng *rand.Rand) *ad.Tensor {
	rows, cols := d.Shape()
	loc, scale := viewOf(d.Loc), viewOf(d.Scale)
	return fill(d.Loc.Tape(), rows, cols, func(i, j int) float64 { return loc.at(i, j) + scale.at(i, j)*cauchyNoise(rng) })
}

// RSample draws Loc + Scale·ε with ε standard Cauchy noise.
func (d Cauchy) RSample(rng *rand.Rand) *ad.Tensor {
	rows, cols := d.Shape()
	eps := fill(d.Loc.Tape(), rows, cols, func(int, int) float64 { return cauchyNoise(rng) })
	return ad.Add(d.Loc, ad.Mul(d.Scale, eps))
}

// LogProb returns Σ_j -log(πσ_j(1+z_j²)) per row, as [B x 1].
func (d Cauchy) LogProb(value *ad.Tensor) *ad.Tensor { return sumRows(d.LogProbElements(value)) }

// LogProbElements returns the log-density of each element of value, [B x D]:
// the terms LogProb sums.
func (d Cauchy) LogProbElements(value *ad.Tensor) *ad.Tensor {
	z := ad.Div(ad.Sub(value, d.Loc), d.Scale)
	lp := ad.Neg(ad.Add(ad.Log(ad.Scale(d.Scale, math.Pi)), ad.Log1p(ad.Square(z))))
	rows, cols := shapeOf(value, d.Loc, d.Scale)
	return expand(lp, rows, cols)
}

// Entropy returns Σ_j log(4πσ_j) per row, as [B x 1].
func (d Cauchy) Entropy() *ad.Tensor {
	rows, cols := d.Shape()
	return ad.RowSum(expand(ad.Log(ad.Scale(d.Scale, 4*math.Pi)), rows, cols))
}

// Validate reports nil parameters, shapes that do not broadcast, a loc that
// is not finite and a scale that is not > 0 and finite.
func (d Cauchy) Validate() error { return renameErr(Normal(d).Validate(), "Cauchy") }

// ValidateValue reports a value of the wrong shape or not finite.
func (d Cauchy) ValidateValue(value *ad.Tensor) error {
	return validateElementwiseValue("Cauchy", d, d.Loc, value, ruleFinite, isFinite)
}
