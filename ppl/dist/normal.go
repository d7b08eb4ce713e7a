package dist

import (
	"math"
	"math/rand/v2"

	"github.com/backpropq/backpropq/ad"
)

var logSqrt2Pi = 0.5 * math.Log(2*math.Pi)

// Normal is a batch of independent normal (Gaussian) distributions with
// mean Loc and standard deviation Scale, elementwise. Loc and Scale are
// [B x D] or broadcast to it ([1 x D], [B x 1], [1 x 1]).
//
// Normal is [Reparameterized]: RSample returns Loc + Scale·ε with ε
// standard normal noise, so gradients reach both parameters.
type Normal struct {
	Loc, Scale *ad.Tensor
}

// Shape returns the broadcast shape of Loc and Scale.
func (d Normal) Shape() (batch, event int) { return shapeOf(d.Loc, d.Scale) }

// Sample draws a value of shape [Normal.Shape] without a gradient path.
// With the same source it returns the same numbers as [Normal.RSample].
func (d Normal) Sample(rng *rand.Rand) *ad.Tensor {
	rows, cols := d.Shape()
	loc, scale := viewOf(d.Loc), viewOf(d.Scale)
	return fill(d.Loc.Tape(), rows, cols, func(i, j int) float64 {
		return loc.at(i, j) + scale.at(i, j)*rng.NormFloat64()
	})
}

// RSample draws Loc + Scale·ε, differentiable in Loc and Scale.
func (d Normal) RSample(rng *rand.Rand) *ad.Tensor {
	rows, cols := d.Shape()
	eps := fill(d.Loc.Tape(), rows, cols, func(int, int) float64 { return rng.NormFloat64() })
	return ad.Add(d.Loc, ad.Mul(d.Scale, eps))
}

// LogProb returns the log-density of value summed over its columns, as
// [B x 1]. The value may have more rows or columns than the parameters
// where they broadcast.
func (d Normal) LogProb(value *ad.Tensor) *ad.Tensor {
	z := ad.Div(ad.Sub(value, d.Loc), d.Scale)
	lp := ad.RowSum(ad.Sub(ad.Scale(ad.Square(z), -0.5), ad.Log(d.Scale)))
	return ad.Add(lp, value.Tape().Scalar(-logSqrt2Pi*float64(z.Cols())))
}

// LogProbElements returns the log-density of each element of value, [B x D]:
// the terms LogProb sums.
func (d Normal) LogProbElements(value *ad.Tensor) *ad.Tensor {
	z := ad.Div(ad.Sub(value, d.Loc), d.Scale)
	lp := ad.Sub(ad.Scale(ad.Square(z), -0.5), ad.Add(ad.Log(d.Scale), value.Tape().Scalar(logSqrt2Pi)))
	rows, cols := shapeOf(value, d.Loc, d.Scale)
	return expand(lp, rows, cols)
}

// Mean returns Loc broadcast to [Normal.Shape] (Loc itself when it has
// that shape).
func (d Normal) Mean() *ad.Tensor {
	rows, cols := d.Shape()
	return expand(d.Loc, rows, cols)
}

// Entropy returns Σ_j (½·log(2πe) + log Scale_j) per row, as [B x 1].
func (d Normal) Entropy() *ad.Tensor {
	rows, cols := d.Shape()
	h := ad.RowSum(expand(ad.Log(d.Scale), rows, cols))
	return ad.Add(h, d.Loc.Tape().Scalar(float64(cols)*(0.5+logSqrt2Pi)))
}

// Validate reports a nil parameter, shapes that do not broadcast, a loc
// that is not finite and a scale that is not > 0 and finite.
func (d Normal) Validate() error {
	if _, _, err := checkParams("Normal", param{"loc", d.Loc}, param{"scale", d.Scale}); err != nil {
		return err
	}
	if err := checkElems("Normal", "loc", d.Loc, ruleFinite, isFinite); err != nil {
		return err
	}
	return checkElems("Normal", "scale", d.Scale, rulePositive, isPositive)
}

// ValidateValue reports a value of the wrong shape or not finite.
func (d Normal) ValidateValue(value *ad.Tensor) error {
	rows, cols := d.Shape()
	if err := checkValueShape("Normal", value, d.Loc, rows, cols, false); err != nil {
		return err
	}
	return checkElems("Normal", "value", value, ruleFinite, isFinite)
}
