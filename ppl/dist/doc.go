// Package dist holds the probability distributions of the modeling layer:
// batches of independent distributions whose parameters are [ad.Tensor]s,
// so that log-densities, samples and entropies are differentiable and
// carry the provenance the tracer rebuilds the computation graph from.
//
// # Distributions
//
// Each distribution is a value struct with exported tensor parameters, in
// the style of gonum's stat/distuv:
//
//   - [Normal]{Loc, Scale}: reparameterized.
//   - [Bernoulli]{Logits} or {Probs}, built with [BernoulliLogits] or
//     [BernoulliProbs]: 0/1 values; relaxable.
//   - [Categorical]{Logits}: [B x 1] class indices; relaxable.
//   - [OneHotCategorical]{Logits}: one-hot [B x K] rows; relaxable.
//   - [RelaxedBernoulli]{Logits, Temperature} (binary Concrete) and
//     [RelaxedOneHotCategorical]{Logits, Temperature} (Gumbel-softmax):
//     reparameterized, with a temperature that may be learned.
//   - [Uniform]{Low, High}: reparameterized.
//   - [Delta]{Value}: the point mass; reparameterized.
//
// [KL] gives closed-form divergences between pairs of the same family.
//
// # Shapes
//
// Dimension 0 is the batch. A value is [B x D]; [Distribution.LogProb]
// sums over the D event columns and returns [B x 1]. A parameter may be
// [B x D] or a [1 x D] row (or [B x 1] column, or [1 x 1] scalar) that
// broadcasts: Shape returns the broadcast shape of the parameters, Sample
// draws values of that shape, and LogProb accepts values with more rows
// than a one-row parameter, scoring each row against it.
//
// # Capabilities
//
// Optional capabilities are interfaces checked with a type assertion, as
// database/sql/driver does: [Reparameterized] (a pathwise RSample),
// [Meaner], [Entropier] and [Relaxable] (the relaxed sample z, its hard
// value b = H(z) and the conditional sample z~ given b that REBAR and
// RELAX need, paper appendix 5.5-5.7), and [Finite] (a discrete
// distribution whose rows take finitely many values: how a value is
// encoded, its number of classes, and the enumeration of its support).
// The distributions have value receivers, so a pointer to one has the same
// capabilities as the value.
//
// # Randomness
//
// Every draw takes a *rand.Rand from the caller; the same seed gives the
// same numbers. Sample and RSample of a continuous distribution draw the
// same noise in the same order, so with equal seeds they return equal
// values. Sampled values are new constant tensors on the parameters' tape.
//
// # Errors and panics
//
// Validate and ValidateValue return an *[Error] naming the distribution,
// the parameter or value, the element's row and column, the number found
// and the rule, for example
//
//	dist: Normal: scale must be > 0 and finite, got -1 at row 3, column 0
//
// The other methods do not validate: like the ad ops they panic on shape
// mismatches, nil parameters and tensors of two tapes, and an invalid
// parameter or value gives NaN or -Inf rather than an error.
//
// # Concurrency
//
// A distribution is a small value holding tensors; its methods append
// nodes to the parameters' tape, and a tape is not safe for concurrent
// use, so neither are the methods. Distributions on different tapes may
// be used from different goroutines.
package dist
