package dist

import (
	"math"
	"math/rand/v2"

	"github.com/backpropq/backpropq/ad"
)

// HalfNormal is a batch of independent half-normal distributions, the
// distribution of |y| for y ~ Normal(0, Scale), elementwise: density
// √(2/π)/σ · exp(-x²/(2σ²)) on x >= 0. Scale must be > 0 and finite; it is
// [B x D] or broadcast to it.
//
// Support: [0, ∞); below 0 LogProb is -Inf.
//
// HalfNormal is [Reparameterized]: RSample returns Scale·|ε|.
type HalfNormal struct {
	Scale *ad.Tensor
}

// Shape returns the shape of Scale.
func (d HalfNormal) Shape() (batch, event int) { return shapeOf(d.Scale) }

// Sample draws a value of shape [HalfNormal.Shape] without a gradient
// path. With the same source it returns the same numbers as
// [HalfNormal.RSample].
func (d HalfNormal) Sample(rng *rand.Rand) *ad.Tensor {
	rows, cols := d.Shape()
	s := viewOf(d.Scale)
	return fill(d.Scale.Tape(), rows, cols, func(i, j int) float64 { return s.at(i, j) * math.Abs(rng.NormFloat64()) })
}

// RSample draws Scale·|ε|, differentiable in Scale.
func (d HalfNormal) RSample(rng *rand.Rand) *ad.Tensor {
	rows, cols := d.Shape()
	eps := fill(d.Scale.Tape(), rows, cols, func(int, int) float64 { return math.Abs(rng.NormFloat64()) })
	return ad.Mul(d.Scale, eps)
}

// LogProb returns Σ_j log p(value_j) per row, as [B x 1].
func (d HalfNormal) LogProb(value *ad.Tensor) *ad.Tensor { return sumRows(d.LogProbElements(value)) }

// LogProbElements returns the log-density of each element of value, [B x D]
// (-Inf outside the support): the terms LogProb sums.
func (d HalfNormal) LogProbElements(value *ad.Tensor) *ad.Tensor {
	rows, cols := shapeOf(value, d.Scale)
	return maskedLogProb(value, rows, cols, isNonNegative, 0, func(x *ad.Tensor) *ad.Tensor {
		z := ad.Div(x, d.Scale)
		return ad.Sub(ad.Scale(ad.Square(z), -0.5), ad.Add(ad.Log(d.Scale), x.Tape().Scalar(logSqrt2Pi-math.Ln2)))
	})
}

// Mean returns Scale·√(2/π), [B x D].
func (d HalfNormal) Mean() *ad.Tensor { return ad.Scale(d.Scale, math.Sqrt(2/math.Pi)) }

// Variance returns Scale²·(1 - 2/π), [B x D].
func (d HalfNormal) Variance() *ad.Tensor { return ad.Scale(ad.Square(d.Scale), 1-2/math.Pi) }

// Entropy returns Σ_j ½·log(πe/2) + log σ_j per row, as [B x 1].
func (d HalfNormal) Entropy() *ad.Tensor {
	return ad.RowSum(ad.Add(ad.Log(d.Scale), d.Scale.Tape().Scalar(0.5*math.Log(math.Pi*math.E/2))))
}

// Validate reports a nil scale or one that is not > 0 and finite.
func (d HalfNormal) Validate() error { return validatePositive("HalfNormal", param{"scale", d.Scale}) }

// ValidateValue reports a value of the wrong shape or not >= 0 and finite.
func (d HalfNormal) ValidateValue(value *ad.Tensor) error {
	return validateElementwiseValue("HalfNormal", d, d.Scale, value, ruleNonNegative, isNonNegative)
}

// HalfCauchy is a batch of independent half-Cauchy distributions, the
// distribution of |y| for y ~ Cauchy(0, Scale), elementwise: density
// 2/(πσ(1+(x/σ)²)) on x >= 0. Scale must be > 0 and finite; it is [B x D]
// or broadcast to it. It has no mean or variance.
//
// Support: [0, ∞); below 0 LogProb is -Inf.
//
// HalfCauchy is [Reparameterized]: RSample returns Scale·|tan(π(u-½))|.
type HalfCauchy struct {
	Scale *ad.Tensor
}

// Shape returns the shape of Scale.
func (d HalfCauchy) Shape() (batch, event int) { return shapeOf(d.Scale) }

// Sample draws a value of shape [HalfCauchy.Shape] without a gradient
// path. With the same source it returns the same numbers as
// [HalfCauchy.RSample].
func (d HalfCauchy) Sample(rng *rand.Rand) *ad.Tensor {
	rows, cols := d.Shape()
	s := viewOf(d.Scale)
	return fill(d.Scale.Tape(), rows, cols, func(i, j int) float64 { return s.at(i, j) * math.Abs(cauchyNoise(rng)) })
}

// RSample draws Scale·|ε| with ε standard Cauchy noise.
func (d HalfCauchy) RSample(rng *rand.Rand) *ad.Tensor {
	rows, cols := d.Shape()
	eps := fill(d.Scale.Tape(), rows, cols, func(int, int) float64 { return math.Abs(cauchyNoise(rng)) })
	return ad.Mul(d.Scale, eps)
}

// LogProb returns Σ_j log p(value_j) per row, as [B x 1].
func (d HalfCauchy) LogProb(value *ad.Tensor) *ad.Tensor { return sumRows(d.LogProbElements(value)) }

// LogProbElements returns the log-density of each element of value, [B x D]
// (-Inf outside the support): the terms LogProb sums.
func (d HalfCauchy) LogProbElements(value *ad.Tensor) *ad.Tensor {
	rows, cols := shapeOf(value, d.Scale)
	return maskedLogProb(value, rows, cols, isNonNegative, 0, func(x *ad.Tensor) *ad.Tensor {
		z := ad.Div(x, d.Scale)
		return ad.Neg(ad.Add(ad.Log(ad.Scale(d.Scale, math.Pi/2)), ad.Log1p(ad.Square(z))))
	})
}

// Entropy returns Σ_j log(2πσ_j) per row, as [B x 1].
func (d HalfCauchy) Entropy() *ad.Tensor {
	return ad.RowSum(ad.Log(ad.Scale(d.Scale, 2*math.Pi)))
}

// Validate reports a nil scale or one that is not > 0 and finite.
func (d HalfCauchy) Validate() error { return validatePositive("HalfCauchy", param{"scale", d.Scale}) }

// ValidateValue reports a value of the wrong shape or not >= 0 and finite.
func (d HalfCauchy) ValidateValue(value *ad.Tensor) error {
	return validateElementwiseValue("HalfCauchy", d, d.Scale, value, ruleNonNegative, isNonNegative)
}
