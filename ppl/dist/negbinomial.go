package dist

import (
	"math"
	"math/rand/v2"

	"github.com/backpropq/backpropq/ad"
)

// Geometric is a batch of independent geometric distributions: the number
// of failures before the first success in trials with success probability
// Probs, elementwise: probability (1-p)^k·p of k. Probs must be in (0, 1];
// it is [B x D] or broadcast to it.
//
// Support: the integers 0, 1, 2, ...; LogProb is -Inf at any other value.
type Geometric struct {
	Probs *ad.Tensor
}

// Shape returns the shape of Probs.
func (d Geometric) Shape() (batch, event int) { return shapeOf(d.Probs) }

// Sample draws counts of shape [Geometric.Shape] by inversion,
// ⌊log u / log(1-p)⌋.
func (d Geometric) Sample(rng *rand.Rand) *ad.Tensor {
	rows, cols := d.Shape()
	p := viewOf(d.Probs)
	return fill(d.Probs.Tape(), rows, cols, func(i, j int) float64 {
		pr := p.at(i, j)
		if pr == 1 {
			return 0
		}
		return math.Floor(math.Log(uniformOpen(rng)) / math.Log1p(-pr))
	})
}

// LogProb returns Σ_j k_j log(1-p_j) + log p_j per row, as [B x 1].
func (d Geometric) LogProb(value *ad.Tensor) *ad.Tensor { return sumRows(d.LogProbElements(value)) }

// LogProbElements returns the log-pmf of each element of value, [B x D]
// (-Inf outside the support): the terms LogProb sums.
func (d Geometric) LogProbElements(value *ad.Tensor) *ad.Tensor {
	rows, cols := shapeOf(value, d.Probs)
	return maskedLogProb(value, rows, cols, isNonNegativeInteger, 0, func(k *ad.Tensor) *ad.Tensor {
		return ad.Add(xlogy(k, ad.Sub(k.Tape().Scalar(1), d.Probs)), ad.Log(d.Probs))
	})
}

// Mean returns (1-p)/p, [B x D].
func (d Geometric) Mean() *ad.Tensor {
	return ad.Div(ad.Sub(d.Probs.Tape().Scalar(1), d.Probs), d.Probs)
}

// Variance returns (1-p)/p², [B x D].
func (d Geometric) Variance() *ad.Tensor { return ad.Div(d.Mean(), d.Probs) }

// Validate reports nil probs or probabilities outside (0, 1].
func (d Geometric) Validate() error {
	if d.Probs == nil {
		return wholeErr("Geometric", "probs", "is nil")
	}
	return checkElems("Geometric", "probs", d.Probs, "must be in (0, 1]", func(v float64) bool { return v > 0 && v <= 1 })
}

// ValidateValue reports a value of the wrong shape or that is not a
// non-negative integer.
func (d Geometric) ValidateValue(value *ad.Tensor) error {
	return validateElementwiseValue("Geometric", d, d.Probs, value, ruleCount, isNonNegativeInteger)
}

// Support returns [NonNegativeInteger].
func (Geometric) Support() Constraint { return NonNegativeInteger }

// ParamConstraints returns probs: the interval (0, 1].
func (Geometric) ParamConstraints() map[string]Constraint {
	return params{"probs": elementwise{name: "interval (0, 1]", ok: func(v float64) bool { return v > 0 && v <= 1 }}}
}

// NegativeBinomial is a batch of independent negative binomial
// distributions: the number of successes, with success probability Probs,
// before TotalCount (r) failures, elementwise: probability
// Γ(k+r)/(k!·Γ(r))·p^k·(1-p)^r of k. TotalCount must be > 0 (not
// necessarily an integer) and Probs in [0, 1); they are [B x D] or
// broadcast to it. It is the Poisson distribution whose rate is drawn from
// Gamma(r, (1-p)/p).
//
// Support: the integers 0, 1, 2, ...; LogProb is -Inf at any other value.
type NegativeBinomial struct {
	TotalCount, Probs *ad.Tensor
}

// Shape returns the broadcast shape of the parameters.
func (d NegativeBinomial) Shape() (batch, event int) { return shapeOf(d.TotalCount, d.Probs) }

// Sample draws counts of shape [NegativeBinomial.Shape] as Poisson draws
// with Gamma(r, (1-p)/p) rates.
func (d NegativeBinomial) Sample(rng *rand.Rand) *ad.Tensor {
	rows, cols := d.Shape()
	r, p := viewOf(d.TotalCount), viewOf(d.Probs)
	return fill(d.Probs.Tape(), rows, cols, func(i, j int) float64 {
		pr := p.at(i, j)
		if pr == 0 {
			return 0
		}
		return samplePoisson(rng, standardGamma(rng, r.at(i, j))*pr/(1-pr))
	})
}

// LogProb returns Σ_j log Γ(k+r) - log k! - log Γ(r) + k log p + r log(1-p)
// per row, as [B x 1].
func (d NegativeBinomial) LogProb(value *ad.Tensor) *ad.Tensor {
	return sumRows(d.LogProbElements(value))
}

// LogProbElements returns the log-pmf of each element of value, [B x D]
// (-Inf outside the support): the terms LogProb sums.
func (d NegativeBinomial) LogProbElements(value *ad.Tensor) *ad.Tensor {
	rows, cols := shapeOf(value, d.TotalCount, d.Probs)
	r, p := d.TotalCount, d.Probs
	return maskedLogProb(value, rows, cols, isNonNegativeInteger, 0, func(k *ad.Tensor) *ad.Tensor {
		one := k.Tape().Scalar(1)
		lp := ad.Sub(ad.Lgamma(ad.Add(k, r)), ad.Add(ad.Lgamma(ad.Add(k, one)), ad.Lgamma(r)))
		return ad.Add(lp, ad.Add(xlogy(k, p), ad.Mul(r, ad.Log1p(ad.Neg(p)))))
	})
}

// Mean returns r·p/(1-p), [B x D].
func (d NegativeBinomial) Mean() *ad.Tensor {
	rows, cols := d.Shape()
	odds := ad.Div(d.Probs, ad.Sub(d.Probs.Tape().Scalar(1), d.Probs))
	return expand(ad.Mul(d.TotalCount, odds), rows, cols)
}

// Variance returns r·p/(1-p)², [B x D].
func (d NegativeBinomial) Variance() *ad.Tensor {
	return ad.Div(d.Mean(), ad.Sub(d.Probs.Tape().Scalar(1), d.Probs))
}

// Validate reports nil parameters, shapes that do not broadcast, a total
// count that is not > 0 and finite and probabilities outside [0, 1).
func (d NegativeBinomial) Validate() error {
	if _, _, err := checkParams("NegativeBinomial", param{"total_count", d.TotalCount}, param{"probs", d.Probs}); err != nil {
		return err
	}
	if err := checkElems("NegativeBinomial", "total_count", d.TotalCount, rulePositive, isPositive); err != nil {
		return err
	}
	return checkElems("NegativeBinomial", "probs", d.Probs, "must be in [0, 1)", func(v float64) bool { return v >= 0 && v < 1 })
}

// ValidateValue reports a value of the wrong shape or that is not a
// non-negative integer.
func (d NegativeBinomial) ValidateValue(value *ad.Tensor) error {
	return validateElementwiseValue("NegativeBinomial", d, d.Probs, value, ruleCount, isNonNegativeInteger)
}

// Support returns [NonNegativeInteger].
func (NegativeBinomial) Support() Constraint { return NonNegativeInteger }

// ParamConstraints returns total_count: [Positive], probs: the interval
// [0, 1).
func (NegativeBinomial) ParamConstraints() map[string]Constraint {
	return params{"total_count": Positive, "probs": elementwise{name: "interval [0, 1)", ok: func(v float64) bool { return v >= 0 && v < 1 }}}
}
