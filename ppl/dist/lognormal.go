package dist

import (
	"math"
	"math/rand/v2"

	"github.com/backpropq/backpropq/ad"
)

// LogNormal is a batch of independent log-normal distributions: the
// distribution of exp(y) for y ~ [Normal]{Loc, Scale}, elementwise. Loc
// must be finite and Scale > 0 and finite; they are [B x D] or broadcast
// to it.
//
// Support: (0, ∞). At 0 LogProb is -Inf (the density's limit), as it is
// below 0.
//
// LogNormal is [Reparameterized]: RSample returns exp(Loc + Scale·ε).
type LogNormal struct {
	Loc, Scale *ad.Tensor
}

// Shape returns the broadcast shape of Loc and Scale.
func (d LogNormal) Shape() (batch, event int) { return shapeOf(d.Loc, d.Scale) }

// Sample draws a value of shape [LogNormal.Shape] without a gradient path.
// With the same source it returns the same numbers as [LogNormal.RSample].
func (d LogNormal) Sample(rng *rand.Rand) *ad.Tensor {
	rows, cols := d.Shape()
	loc, scale := viewOf(d.Loc), viewOf(d.Scale)
	return fill(d.Loc.Tape(), rows, cols, func(i, j int) float64 {
		return math.Exp(loc.at(i, j) + scale.at(i, j)*rng.NormFloat64())
	})
}

// RSample draws exp(Loc + Scale·ε), differentiable in Loc and Scale.
func (d LogNormal) RSample(rng *rand.Rand) *ad.Tensor {
	return ad.Exp(Normal(d).RSample(rng))
}

// LogProb returns Σ_j log p(value_j) per row, as [B x 1]: the Normal
// log-density of log value minus log value.
func (d LogNormal) LogProb(value *ad.Tensor) *ad.Tensor { return sumRows(d.LogProbElements(value)) }

// LogProbElements returns the log-density of each element of value, [B x D]
// (-Inf outside the support): the terms LogProb sums.
func (d LogNormal) LogProbElements(value *ad.Tensor) *ad.Tensor {
	rows, cols := shapeOf(value, d.Loc, d.Scale)
	return maskedLogProb(value, rows, cols, isPositive, 1, func(x *ad.Tensor) *ad.Tensor {
		logX := ad.Log(x)
		z := ad.Div(ad.Sub(logX, d.Loc), d.Scale)
		lp := ad.Sub(ad.Scale(ad.Square(z), -0.5), ad.Add(ad.Log(d.Scale), logX))
		return ad.Sub(lp, x.Tape().Scalar(logSqrt2Pi))
	})
}

// Mean returns exp(Loc + Scale²/2), [B x D].
func (d LogNormal) Mean() *ad.Tensor {
	rows, cols := d.Shape()
	return expand(ad.Exp(ad.Add(d.Loc, ad.Scale(ad.Square(d.Scale), 0.5))), rows, cols)
}

// Variance returns (exp(Scale²) - 1)·exp(2·Loc + Scale²), [B x D].
func (d LogNormal) Variance() *ad.Tensor {
	rows, cols := d.Shape()
	s2 := ad.Square(d.Scale)
	return expand(ad.Mul(ad.Expm1(s2), ad.Exp(ad.Add(ad.Scale(d.Loc, 2), s2))), rows, cols)
}

// Entropy returns Σ_j Loc_j + ½·log(2πe) + log Scale_j per row, as [B x 1].
func (d LogNormal) Entropy() *ad.Tensor {
	rows, cols := d.Shape()
	return ad.Add(Normal(d).Entropy(), ad.RowSum(expand(d.Loc, rows, cols)))
}

// Validate reports nil parameters, shapes that do not broadcast, a loc that
// is not finite and a scale that is not > 0 and finite.
func (d LogNormal) Validate() error { return renameErr(Normal(d).Validate(), "LogNormal") }

// ValidateValue reports a value of the wrong shape or not > 0 and finite.
func (d LogNormal) ValidateValue(value *ad.Tensor) error {
	return validateElementwiseValue("LogNormal", d, d.Loc, value, rulePositive, isPositive)
}

// renameErr returns err with its distribution's name replaced by name.
func renameErr(err error, name string) error {
	if e, ok := err.(*Error); ok {
		c := *e
		c.Dist = name
		return &c
	}
	return err
}
