package dist

import (
	"math"
	"math/rand/v2"

	"github.com/backpropq/backpropq/ad"
)

// Exponential is a batch of independent exponential distributions with
// Rate λ, elementwise: density λe^(-λx) on x >= 0. Rate must be > 0 and
// finite; it is [B x D] or broadcast to it.
//
// Support: [0, ∞); below 0 LogProb is -Inf.
//
// Exponential is [Reparameterized]: RSample returns ε/Rate with ε a
// standard exponential draw.
type Exponential struct {
	Rate *ad.Tensor
}

// Shape returns the shape of Rate.
func (d Exponential) Shape() (batch, event int) { return shapeOf(d.Rate) }

// Sample draws a value of shape [Exponential.Shape] without a gradient
// path. With the same source it returns the same numbers as
// [Exponential.RSample].
func (d Exponential) Sample(rng *rand.Rand) *ad.Tensor {
	rows, cols := d.Shape()
	r := viewOf(d.Rate)
	return fill(d.Rate.Tape(), rows, cols, func(i, j int) float64 { return -math.Log(uniformOpen(rng)) / r.at(i, j) })
}

// RSample draws ε/Rate, differentiable in Rate.
func (d Exponential) RSample(rng *rand.Rand) *ad.Tensor {
	rows, cols := d.Shape()
	eps := fill(d.Rate.Tape(), rows, cols, func(int, int) float64 { return -math.Log(uniformOpen(rng)) })
	return ad.Div(eps, d.Rate)
}

// LogProb returns Σ_j log λ_j - λ_j·value_j per row, as [B x 1], or -Inf
// for a row with a negative element.
func (d Exponential) LogProb(value *ad.Tensor) *ad.Tensor { return sumRows(d.LogProbElements(value)) }

// LogProbElements returns the log-density of each element of value, [B x D]
// (-Inf outside the support): the terms LogProb sums.
func (d Exponential) LogProbElements(value *ad.Tensor) *ad.Tensor {
	rows, cols := shapeOf(value, d.Rate)
	return maskedLogProb(value, rows, cols, isNonNegative, 0, func(x *ad.Tensor) *ad.Tensor {
		return ad.Sub(ad.Log(d.Rate), ad.Mul(d.Rate, x))
	})
}

// Mean returns 1/λ, [B x D].
func (d Exponential) Mean() *ad.Tensor {
	return ad.Div(d.Rate.Tape().Scalar(1), d.Rate)
}

// Variance returns 1/λ², [B x D].
func (d Exponential) Variance() *ad.Tensor { return ad.Square(d.Mean()) }

// Entropy returns Σ_j 1 - log λ_j per row, as [B x 1].
func (d Exponential) Entropy() *ad.Tensor {
	return ad.RowSum(ad.Sub(d.Rate.Tape().Scalar(1), ad.Log(d.Rate)))
}

// Validate reports a nil rate or one that is not > 0 and finite.
func (d Exponential) Validate() error {
	return validatePositive("Exponential", param{"rate", d.Rate})
}

// ValidateValue reports a value of the wrong shape or not >= 0 and finite.
func (d Exponential) ValidateValue(value *ad.Tensor) error {
	return validateElementwiseValue("Exponential", d, d.Rate, value, ruleNonNegative, isNonNegative)
}
