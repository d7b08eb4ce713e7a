package dist

import (
	"math/rand/v2"

	"github.com/backpropq/backpropq/ad"
)

// Distribution is a batch of independent distributions over [B x D]
// values, with parameters held as tensors of one tape.
type Distribution interface {
	// Sample draws a [B x D] value from rng on the parameters' tape. The
	// value carries no gradient path to the parameters.
	Sample(rng *rand.Rand) *ad.Tensor
	// LogProb returns log p(value) as [B x 1], summed over the event's
	// columns. It does not validate value; see ValidateValue.
	LogProb(value *ad.Tensor) *ad.Tensor
	// Shape returns the shape of a value: batch rows and event columns.
	Shape() (batch, event int)
	// Validate reports invalid parameters, naming the parameter and how
	// it is wrong.
	Validate() error
	// ValidateValue reports a value outside the support or of the wrong
	// shape, naming the row and column and how it is wrong.
	ValidateValue(value *ad.Tensor) error
}

// Reparameterized is a [Distribution] with a pathwise sample: the value is
// a differentiable function of the parameters and noise from rng.
type Reparameterized interface {
	Distribution
	RSample(rng *rand.Rand) *ad.Tensor
}

// Meaner is a [Distribution] with a mean.
type Meaner interface {
	Mean() *ad.Tensor
}

// Entropier is a [Distribution] with a closed-form entropy, [B x 1].
type Entropier interface {
	Entropy() *ad.Tensor
}

// Relaxable is a discrete [Distribution] with a continuous relaxation, as
// REBAR and RELAX use it (paper appendix 5.5-5.7).
type Relaxable interface {
	Distribution
	// RelaxedSample draws the reparameterized pre-threshold sample z and
	// its hard value b = H(z), which is distributed as a sample.
	RelaxedSample(rng *rand.Rand) (z, b *ad.Tensor)
	// ConditionalRelaxedSample draws z~ from p(z | b), reparameterized,
	// so that H(z~) = b.
	ConditionalRelaxedSample(b *ad.Tensor, rng *rand.Rand) *ad.Tensor
	// Hard returns H(z), the discrete value of a relaxed sample.
	Hard(z *ad.Tensor) *ad.Tensor
}
