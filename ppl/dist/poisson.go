package dist

import (
	"math"
	"math/rand/v2"

	"github.com/backpropq/backpropq/ad"
)

// Poisson is a batch of independent Poisson distributions with Rate λ,
// elementwise: probability λ^k e^(-λ) / k! of the count k. Rate must be
// > 0 and finite; it is [B x D] or broadcast to it. Values are counts held
// as floats.
//
// Support: the integers 0, 1, 2, ...; LogProb is -Inf at any other value.
type Poisson struct {
	Rate *ad.Tensor
}

// Shape returns the shape of Rate.
func (d Poisson) Shape() (batch, event int) { return shapeOf(d.Rate) }

// Sample draws counts of shape [Poisson.Shape]: by inversion for λ < 10,
// by Hörmann's transformed rejection (PTRS) above.
func (d Poisson) Sample(rng *rand.Rand) *ad.Tensor {
	rows, cols := d.Shape()
	r := viewOf(d.Rate)
	return fill(d.Rate.Tape(), rows, cols, func(i, j int) float64 { return samplePoisson(rng, r.at(i, j)) })
}

// LogProb returns Σ_j k_j log λ_j - λ_j - log k_j! per row, as [B x 1].
func (d Poisson) LogProb(value *ad.Tensor) *ad.Tensor { return sumRows(d.LogProbElements(value)) }

// LogProbElements returns the log-pmf of each element of value, [B x D]
// (-Inf outside the support): the terms LogProb sums.
func (d Poisson) LogProbElements(value *ad.Tensor) *ad.Tensor {
	rows, cols := shapeOf(value, d.Rate)
	return maskedLogProb(value, rows, cols, isNonNegativeInteger, 0, func(k *ad.Tensor) *ad.Tensor {
		one := k.Tape().Scalar(1)
		return ad.Sub(ad.Sub(ad.Mul(k, ad.Log(d.Rate)), d.Rate), ad.Lgamma(ad.Add(k, one)))
	})
}

// Mean returns λ.
func (d Poisson) Mean() *ad.Tensor { return d.Rate }

// Variance returns λ.
func (d Poisson) Variance() *ad.Tensor { return d.Rate }

// Validate reports a nil rate or one that is not > 0 and finite.
func (d Poisson) Validate() error { return validatePositive("Poisson", param{"rate", d.Rate}) }

// ValidateValue reports a value of the wrong shape or that is not a
// non-negative integer.
func (d Poisson) ValidateValue(value *ad.Tensor) error {
	return validateElementwiseValue("Poisson", d, d.Rate, value, ruleCount, isNonNegativeInteger)
}

func samplePoisson(rng *rand.Rand, lam float64) float64 {
	if lam < 10 {
		k, p := 0.0, math.Exp(-lam)
		s, u := p, rng.Float64()
		for u > s && p > 0 {
			k++
			p *= lam / k
			s += p
		}
		return k
	}
	// PTRS, W. Hörmann, "The transformed rejection method for generating
	// Poisson random variables", 1993.
	slam, logLam := math.Sqrt(lam), math.Log(lam)
	b := 0.931 + 2.53*slam
	a := -0.059 + 0.02483*b
	invAlpha := 1.1239 + 1.1328/(b-3.4)
	vr := 0.9277 - 3.6224/(b-2)
	for {
		u := rng.Float64() - 0.5
		v := rng.Float64()
		us := 0.5 - math.Abs(u)
		k := math.Floor((2*a/us+b)*u + lam + 0.43)
		if us >= 0.07 && v <= vr {
			return k
		}
		if k < 0 || (us < 0.013 && v > us) {
			continue
		}
		lg, _ := math.Lgamma(k + 1)
		if math.Log(v)+math.Log(invAlpha)-math.Log(a/(us*us)+b) <= -lam+k*logLam-lg {
			return k
		}
	}
}
