package dist

import (
	"math"
	"math/rand/v2"

	"github.com/backpropq/backpropq/ad"
)

// Laplace is a batch of independent Laplace (double exponential)
// distributions with location Loc and scale Scale, elementwise: density
// exp(-|x-μ|/b)/(2b). Loc must be finite and Scale > 0 and finite; they
// are [B x D] or broadcast to it.
//
// Support: the real line.
//
// Laplace is [Reparameterized]: RSample returns Loc - Scale·sign(u)·log(1-2|u|)
// with u uniform on (-½, ½).
type Laplace struct {
	Loc, Scale *ad.Tensor
}

// Shape returns the broadcast shape of Loc and Scale.
func (d Laplace) Shape() (batch, event int) { return shapeOf(d.Loc, d.Scale) }

func laplaceNoise(rng *rand.Rand) float64 {
	u := uniformOpen(rng) - 0.5
	return -math.Copysign(math.Log1p(-2*math.Abs(u)), u)
}

// Sample draws a value of shape [Laplace.Shape] without a gradient path.
// With the same source it returns the same numbers as [Laplace.RSample].
func (d Laplace) Sample(rng *rand.Rand) *ad.Tensor {
	rows, cols := d.Shape()
	loc, scale := viewOf(d.Loc), viewOf(d.Scale)
	return fill(d.Loc.Tape(), rows, cols, func(i, j int) float64 { return loc.at(i, j) + scale.at(i, j)*laplaceNoise(rng) })
}

// RSample draws Loc + Scale·ε with ε standard Laplace noise,
// differentiable in Loc and Scale.
func (d Laplace) RSample(rng *rand.Rand) *ad.Tensor {
	rows, cols := d.Shape()
	eps := fill(d.Loc.Tape(), rows, cols, func(int, int) float64 { return laplaceNoise(rng) })
	return ad.Add(d.Loc, ad.Mul(d.Scale, eps))
}

// LogProb returns Σ_j -log(2b_j) - |value_j - μ_j|/b_j per row, as [B x 1].
func (d Laplace) LogProb(value *ad.Tensor) *ad.Tensor { return sumRows(d.LogProbElements(value)) }

// LogProbElements returns the log-density of each element of value, [B x D]:
// the terms LogProb sums.
func (d Laplace) LogProbElements(value *ad.Tensor) *ad.Tensor {
	lp := ad.Neg(ad.Add(ad.Log(ad.Scale(d.Scale, 2)), ad.Div(ad.Abs(ad.Sub(value, d.Loc)), d.Scale)))
	rows, cols := shapeOf(value, d.Loc, d.Scale)
	return expand(lp, rows, cols)
}

// Mean returns Loc broadcast to [Laplace.Shape].
func (d Laplace) Mean() *ad.Tensor {
	rows, cols := d.Shape()
	return expand(d.Loc, rows, cols)
}

// Variance returns 2·Scale², [B x D].
func (d Laplace) Variance() *ad.Tensor {
	rows, cols := d.Shape()
	return expand(ad.Scale(ad.Square(d.Scale), 2), rows, cols)
}

// Entropy returns Σ_j 1 + log(2b_j) per row, as [B x 1].
func (d Laplace) Entropy() *ad.Tensor {
	rows, cols := d.Shape()
	h := ad.Add(ad.Log(ad.Scale(d.Scale, 2)), d.Scale.Tape().Scalar(1))
	return ad.RowSum(expand(h, rows, cols))
}

// Validate reports nil parameters, shapes that do not broadcast, a loc that
// is not finite and a scale that is not > 0 and finite.
func (d Laplace) Validate() error { return renameErr(Normal(d).Validate(), "Laplace") }

// ValidateValue reports a value of the wrong shape or not finite.
func (d Laplace) ValidateValue(value *ad.Tensor) error {
	return validateElementwiseValue("Laplace", d, d.Loc, value, ruleFinite, isFinite)
}
