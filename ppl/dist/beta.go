package dist

import (
	"math/rand/v2"

	"github.com/backpropq/backpropq/ad"
)

// Beta is a batch of independent beta distributions on [0, 1] with
// concentrations Alpha and Beta, elementwise: density
// x^(α-1) (1-x)^(β-1) / B(α, β). Both must be > 0 and finite; they are
// [B x D] or broadcast to it.
//
// Support: [0, 1]. At 0 and 1 LogProb is the density's limit (+Inf, a
// finite value or -Inf as the concentration at that end is below, equal
// to or above 1); outside it is -Inf.
//
// Beta is [Reparameterized]: RSample draws x = g₁/(g₁+g₂) from two
// implicitly reparameterized gamma draws (see [Gamma]), clamped to the
// open interval (0, 1) so that its log-density stays finite.
type Beta struct {
	Alpha, Beta *ad.Tensor
}

// Shape returns the broadcast shape of Alpha and Beta.
func (d Beta) Shape() (batch, event int) { return shapeOf(d.Alpha, d.Beta) }

// Sample draws a value of shape [Beta.Shape] without a gradient path.
// With the same source it returns the same numbers as [Beta.RSample].
func (d Beta) Sample(rng *rand.Rand) *ad.Tensor {
	rows, cols := d.Shape()
	a, b := viewOf(d.Alpha), viewOf(d.Beta)
	return fill(d.Alpha.Tape(), rows, cols, func(i, j int) float64 {
		g1 := standardGamma(rng, a.at(i, j))
		g2 := standardGamma(rng, b.at(i, j))
		return min(max(g1/(g1+g2), tiny), belowOne)
	})
}

// RSample draws g₁/(g₁+g₂), differentiable in both concentrations.
func (d Beta) RSample(rng *rand.Rand) *ad.Tensor {
	rows, cols := d.Shape()
	// Interleave the two concentrations so that the draws come in the
	// order Sample takes them.
	both := ad.Concat(ad.Reshape(expand(d.Alpha, rows, cols), rows*cols, 1), ad.Reshape(expand(d.Beta, rows, cols), rows*cols, 1))
	g := rsampleStandardGamma(both, rng)
	g1 := ad.Reshape(ad.Slice(g, 0, 1), rows, cols)
	x := ad.Div(g1, ad.Add(g1, ad.Reshape(ad.Slice(g, 1, 2), rows, cols)))
	return ad.Clamp(x, tiny, belowOne)
}

// LogProb returns Σ_j log p(value_j) per row, as [B x 1], with the edge
// values described on [Beta].
func (d Beta) LogProb(value *ad.Tensor) *ad.Tensor { return sumRows(d.LogProbElements(value)) }

// LogProbElements returns the log-density of each element of value, [B x D]
// (-Inf outside the support): the terms LogProb sums.
func (d Beta) LogProbElements(value *ad.Tensor) *ad.Tensor {
	rows, cols := shapeOf(value, d.Alpha, d.Beta)
	a, b := d.Alpha, d.Beta
	one := a.Tape().Scalar(1)
	return maskedLogProb(value, rows, cols, inUnit, 0.5, func(x *ad.Tensor) *ad.Tensor {
		kernel := ad.Add(xlogy(ad.Sub(a, one), x), xlogy(ad.Sub(b, one), ad.Sub(one, x)))
		return ad.Sub(kernel, logBeta(a, b))
	})
}

// logBeta returns log B(a, b) = log Γ(a) + log Γ(b) - log Γ(a+b).
func logBeta(a, b *ad.Tensor) *ad.Tensor {
	return ad.Sub(ad.Add(ad.Lgamma(a), ad.Lgamma(b)), ad.Lgamma(ad.Add(a, b)))
}

// Mean returns α/(α+β), [B x D].
func (d Beta) Mean() *ad.Tensor {
	rows, cols := d.Shape()
	return expand(ad.Div(d.Alpha, ad.Add(d.Alpha, d.Beta)), rows, cols)
}

// Variance returns αβ/((α+β)²(α+β+1)), [B x D].
func (d Beta) Variance() *ad.Tensor {
	rows, cols := d.Shape()
	s := ad.Add(d.Alpha, d.Beta)
	v := ad.Div(ad.Mul(d.Alpha, d.Beta), ad.Mul(ad.Square(s), ad.Add(s, s.Tape().Scalar(1))))
	return expand(v, rows, cols)
}

// Entropy returns Σ_j log B(α,β) - (α-1)ψ(α) - (β-1)ψ(β) + (α+β-2)ψ(α+β)
// per row, as [B x 1].
func (d Beta) Entropy() *ad.Tensor {
	rows, cols := d.Shape()
	a, b := d.Alpha, d.Beta
	one, two := a.Tape().Scalar(1), a.Tape().Scalar(2)
	s := ad.Add(a, b)
	h := ad.Sub(logBeta(a, b), ad.Mul(ad.Sub(a, one), ad.Digamma(a)))
	h = ad.Sub(h, ad.Mul(ad.Sub(b, one), ad.Digamma(b)))
	h = ad.Add(h, ad.Mul(ad.Sub(s, two), ad.Digamma(s)))
	return ad.RowSum(expand(h, rows, cols))
}

// Validate reports nil parameters, shapes that do not broadcast, and a
// concentration that is not > 0 and finite.
func (d Beta) Validate() error {
	return validatePositive("Beta", param{"alpha", d.Alpha}, param{"beta", d.Beta})
}

// ValidateValue reports a value of the wrong shape or outside [0, 1].
func (d Beta) ValidateValue(value *ad.Tensor) error {
	return validateElementwiseValue("Beta", d, d.Alpha, value, ruleUnit, inUnit)
}
