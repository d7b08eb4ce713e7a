package dist

import (
	"math/rand/v2"

	"github.com/backpropq/backpropq/ad"
)

// Elementwise is a [Distribution] whose columns are independent scalar
// variables: its log-probability is the sum of one term per element,
// which LogProbElements returns, [B x D]. A distribution that is not
// Elementwise treats each row as one event (MultivariateNormal, Dirichlet,
// OneHotCategorical, Multinomial), and so does an Elementwise one wrapped
// in [Independent].
type Elementwise interface {
	Distribution
	LogProbElements(value *ad.Tensor) *ad.Tensor
}

// EventColumns returns how many columns of d's value form one event: 1
// for an [Elementwise] distribution, all of them otherwise.
func EventColumns(d Distribution) int {
	if _, ok := d.(Elementwise); ok {
		return 1
	}
	_, cols := d.Shape()
	return cols
}

// Independent declares the columns of base one event: the result has
// base's samples and log-probabilities (LogProb sums the row either way)
// but is not [Elementwise], so [EventColumns] counts the whole row. It is
// [Reparameterized] when base is; [KL] of two Independent distributions
// is the KL of their bases. Other capabilities of base are reached
// through Base.
func Independent(base Distribution) Distribution {
	if r, ok := base.(Reparameterized); ok {
		return IndependentReparameterized{independent{r}}
	}
	return IndependentEvents{independent{base}}
}

type independent struct{ base Distribution }

func (d independent) Sample(rng *rand.Rand) *ad.Tensor        { return d.base.Sample(rng) }
func (d independent) LogProb(value *ad.Tensor) *ad.Tensor     { return d.base.LogProb(value) }
func (d independent) Shape() (batch, event int)               { return d.base.Shape() }
func (d independent) Validate() error                         { return d.base.Validate() }
func (d independent) ValidateValue(value *ad.Tensor) error    { return d.base.ValidateValue(value) }
func (d independent) Base() Distribution                      { return d.base }
func (d independent) Support() Constraint                     { return supportOf(d.base) }
func (d independent) ParamConstraints() map[string]Constraint { return paramConstraintsOf(d.base) }

// IndependentEvents is what [Independent] returns for a base that is not
// [Reparameterized].
type IndependentEvents struct{ independent }

// IndependentReparameterized is what [Independent] returns for a
// [Reparameterized] base.
type IndependentReparameterized struct{ independent }

// RSample returns the base's RSample.
func (d IndependentReparameterized) RSample(rng *rand.Rand) *ad.Tensor {
	return d.base.(Reparameterized).RSample(rng)
}

func supportOf(d Distribution) Constraint {
	if dd, ok := d.(Declared); ok {
		return dd.Support()
	}
	return predicate{"unknown", func(*ad.Tensor, int) bool { return true }}
}

func paramConstraintsOf(d Distribution) map[string]Constraint {
	if dd, ok := d.(Declared); ok {
		return dd.ParamConstraints()
	}
	return params{}
}

// Interface checks.
var (
	_ Elementwise     = Normal{}
	_ Elementwise     = Bernoulli{}
	_ Elementwise     = Gamma{}
	_ Elementwise     = Beta{}
	_ Elementwise     = Exponential{}
	_ Elementwise     = LogNormal{}
	_ Elementwise     = Laplace{}
	_ Elementwise     = StudentT{}
	_ Elementwise     = Cauchy{}
	_ Elementwise     = HalfNormal{}
	_ Elementwise     = HalfCauchy{}
	_ Elementwise     = Poisson{}
	_ Elementwise     = Binomial{}
	_ Elementwise     = Geometric{}
	_ Elementwise     = NegativeBinomial{}
	_ Reparameterized = IndependentReparameterized{}
	_ Declared        = IndependentEvents{}
	_ Declared        = IndependentReparameterized{}
)
