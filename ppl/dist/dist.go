package dist

import (
	"math/rand/v2"

	"github.com/backpropq/backpropq/ad"
)

// Distribution is a batch of independent distributions over [B x D]
// values, with parameters held as tensors of one tape.
type Distribution interface {
	// Sample draws a [B x D] value, with (B, D) from Shape, from rng on the
	// parameters' tape. The value is a constant: it carries no gradient
	// path to the parameters and no provenance (the tracer gives it the
	// provenance of its site).
	Sample(rng *rand.Rand) *ad.Tensor
	// LogProb returns log p(value) as [B x 1], summed over the event's
	// columns. Parameters of one row (or column) broadcast against a value
	// of many. It is differentiable in the parameters and carries their
	// provenance and value's. It does not validate value (see
	// ValidateValue) and panics, as the ad ops do, when shapes do not
	// broadcast.
	LogProb(value *ad.Tensor) *ad.Tensor
	// Shape returns the shape of a value drawn by Sample: batch rows and
	// event columns. It is the broadcast shape of the parameters (for
	// Categorical, one index column).
	Shape() (batch, event int)
	// Validate reports invalid parameters, naming the parameter and how
	// it is wrong; the error is an *[Error]. The other methods assume valid
	// parameters and may panic on a nil one.
	Validate() error
	// ValidateValue reports a value outside the support or of the wrong
	// shape, naming the row and column and how it is wrong; the error is
	// an *[Error]. A value may have more rows (or columns) than Shape where
	// the parameters broadcast.
	ValidateValue(value *ad.Tensor) error
}

// Reparameterized is a [Distribution] with a pathwise sample: the value is
// a differentiable function of the parameters and noise from rng, so the
// pathwise (reparameterization) gradient estimator applies. A sampler that
// finds a Distribution is not Reparameterized falls back to score-function
// estimators.
type Reparameterized interface {
	Distribution
	// RSample draws a value of shape Shape whose gradient reaches the
	// parameters.
	RSample(rng *rand.Rand) *ad.Tensor
}

// Meaner is a [Distribution] with a mean, of the value's shape.
type Meaner interface {
	Mean() *ad.Tensor
}

// Entropier is a [Distribution] with a closed-form entropy, [B x 1],
// summed over the event's columns.
type Entropier interface {
	Entropy() *ad.Tensor
}

// Relaxable is a discrete [Distribution] with a continuous relaxation, as
// REBAR and RELAX use it (paper appendix 5.5-5.7): a reparameterized
// pre-threshold sample z, its hard value b = H(z) distributed as Sample,
// and a second reparameterized sample z~ drawn from p(z | b).
type Relaxable interface {
	Distribution
	// RelaxedSample draws the reparameterized pre-threshold sample z and
	// its hard value b = H(z), which is distributed as a sample and
	// encoded as Sample encodes values.
	RelaxedSample(rng *rand.Rand) (z, b *ad.Tensor)
	// ConditionalRelaxedSample draws z~ from p(z | b), reparameterized,
	// so that H(z~) = b exactly.
	ConditionalRelaxedSample(b *ad.Tensor, rng *rand.Rand) *ad.Tensor
	// Hard returns H(z), the discrete value of a relaxed sample, with z's
	// provenance and no gradient.
	Hard(z *ad.Tensor) *ad.Tensor
}

// Interface checks.
var (
	_ Reparameterized = Normal{}
	_ Reparameterized = Uniform{}
	_ Reparameterized = Delta{}
	_ Reparameterized = RelaxedBernoulli{}
	_ Reparameterized = RelaxedOneHotCategorical{}
	_ Reparameterized = Gamma{}
	_ Reparameterized = Beta{}
	_ Reparameterized = Dirichlet{}
	_ Reparameterized = Exponential{}
	_ Reparameterized = LogNormal{}
	_ Reparameterized = Laplace{}
	_ Reparameterized = StudentT{}
	_ Reparameterized = Cauchy{}
	_ Reparameterized = HalfNormal{}
	_ Reparameterized = HalfCauchy{}
	_ Distribution    = Poisson{}
	_ Reparameterized = MultivariateNormal{}
	_ Reparameterized = MultivariateNormalDiag{}
	_ Entropier       = MultivariateNormal{}
	_ Entropier       = MultivariateNormalDiag{}
	_ Relaxable       = Bernoulli{}
	_ Relaxable       = Categorical{}
	_ Relaxable       = OneHotCategorical{}
	_ Meaner          = Normal{}
	_ Meaner          = Bernoulli{}
	_ Meaner          = OneHotCategorical{}
	_ Meaner          = Uniform{}
	_ Meaner          = Delta{}
	_ Entropier       = Normal{}
	_ Entropier       = Bernoulli{}
	_ Entropier       = Categorical{}
	_ Entropier       = OneHotCategorical{}
	_ Entropier       = Uniform{}
	_ Entropier       = Delta{}
	_ Entropier       = Gamma{}
	_ Entropier       = Beta{}
	_ Entropier       = Dirichlet{}
	_ Entropier       = Exponential{}
	_ Entropier       = LogNormal{}
	_ Entropier       = Laplace{}
	_ Entropier       = Cauchy{}
	_ Entropier       = HalfNormal{}
	_ Entropier       = HalfCauchy{}
	_ Meaner          = Gamma{}
	_ Meaner          = Beta{}
	_ Meaner          = Dirichlet{}
	_ Meaner          = Exponential{}
	_ Meaner          = LogNormal{}
	_ Meaner          = Laplace{}
	_ Meaner          = StudentT{}
	_ Meaner          = HalfNormal{}
	_ Meaner          = Poisson{}
	_ Meaner          = Binomial{}
	_ Meaner          = Geometric{}
	_ Meaner          = NegativeBinomial{}
	_ Meaner          = Multinomial{}
)
