// Package dist holds the probability distributions of the modeling layer:
// batches of independent distributions whose parameters are [ad.Tensor]s,
// so that log-densities, samples and entropies are differentiable and
// carry the provenance the tracer rebuilds the computation graph from.
//
// # Distributions
//
// Each distribution is a value struct with exported tensor parameters, in
// the style of gonum's stat/distuv. Continuous, elementwise (each column an
// independent scalar):
//
//   - [Normal]{Loc, Scale}: real line; scale > 0. Reparameterized.
//   - [LogNormal]{Loc, Scale}: (0, ∞); scale > 0. Reparameterized.
//   - [Gamma]{Concentration, Rate}: [0, ∞); both > 0. Reparameterized
//     (implicit gradients).
//   - [Exponential]{Rate}: [0, ∞); rate > 0. Reparameterized.
//   - [Beta]{Alpha, Beta}: [0, 1]; both > 0. Reparameterized (implicit).
//   - [Laplace]{Loc, Scale}, [Cauchy]{Loc, Scale}: real line; scale > 0.
//     Reparameterized.
//   - [StudentT]{Df, Loc, Scale}: real line; df, scale > 0.
//     Reparameterized (implicit in df).
//   - [HalfNormal]{Scale}, [HalfCauchy]{Scale}: [0, ∞); scale > 0.
//     Reparameterized.
//   - [Uniform]{Low, High}: [low, high]; high > low. Reparameterized.
//   - [Delta]{Value}: the point mass; reparameterized.
//
// Continuous, one event per row (the columns are one vector):
//
//   - [MultivariateNormal]{Loc, ScaleTril}: R^D; the [D x D] lower
//     triangle of ScaleTril (shared by the rows) has a diagonal > 0; or
//     built from a covariance with [MultivariateNormalCovariance].
//     Reparameterized.
//   - [MultivariateNormalDiag]{Loc, Scale}: R^D with a diagonal
//     covariance; scale > 0. Reparameterized.
//   - [Dirichlet]{Concentration}: the simplex; concentration > 0, at least
//     2 columns. Reparameterized (implicit).
//   - [RelaxedBernoulli]{Logits, Temperature} (binary Concrete, elementwise)
//     and [RelaxedOneHotCategorical]{Logits, Temperature} (Gumbel-softmax):
//     reparameterized, with a temperature that may be learned.
//
// Discrete:
//
//   - [Bernoulli]{Logits} or {Probs}, built with [BernoulliLogits] or
//     [BernoulliProbs]: 0/1 values, elementwise; probs in [0, 1].
//     Relaxable, Finite.
//   - [Categorical]{Logits}: [B x 1] class indices; finite logits.
//     Relaxable, Finite.
//   - [OneHotCategorical]{Logits}: one-hot [B x K] rows, one event per row.
//     Relaxable, Finite.
//   - [Poisson]{Rate}: counts 0, 1, 2, ..., elementwise; rate > 0.
//   - [Binomial]{TotalCount, Logits or Probs}: counts 0..n, elementwise;
//     total_count a non-negative integer, probs in [0, 1]. Finite (count
//     encoding) when total_count is the same in every element.
//   - [Geometric]{Probs}: failures before the first success, 0, 1, ...,
//     elementwise; probs in (0, 1].
//   - [NegativeBinomial]{TotalCount, Probs}: successes before r failures,
//     0, 1, ..., elementwise; total_count > 0, probs in [0, 1).
//   - [Multinomial]{TotalCount, Logits}: [B x K] rows of counts summing to
//     TotalCount, one event per row; finite logits.
//
// Wrappers:
//
//   - [Transformed]{Base, Transform}: the distribution of Transform(x) for
//     x from Base; reparameterized when Base is.
//   - [Independent](base): base with its row declared one event.
//
// LogProb of a number outside the support is -Inf, never NaN (a NaN value
// may score NaN; ValidateValue reports it); at an edge of the support (0
// for Gamma, 0 and 1 for Beta) it is the density's limit.
//
// # Constraints and transforms
//
// A [Constraint] is a set of values: [Real], [Positive], [NonNegative],
// [UnitInterval], [Simplex], [LowerCholesky], [GreaterThan], [Interval],
// and the discrete [Boolean], [NonNegativeInteger], [IntegerInterval] and
// [OneHotRows]. Every distribution is [Declared]: Support returns its
// support and ParamConstraints its parameters' domains, by the names its
// validation errors use. A [Transform] is a bijection with the
// log-determinant of its Jacobian ([Exp], [Sigmoid], [Affine],
// [StickBreaking], [LowerCholeskyTransform], [Compose]); [BijectTo] gives
// the one from unconstrained numbers onto a continuous constraint, which
// is how ppl.ParamIn keeps a parameter in its domain, and [Transformed]
// pushes a distribution through one.
//
// [KL] gives closed-form divergences between pairs of the same family
// (Normal, LogNormal, both multivariate Normals, Gamma, Beta, Dirichlet,
// Exponential, Poisson, Bernoulli, Categorical, OneHotCategorical).
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
// # Events
//
// A row is the unit LogProb scores, but its columns may be independent
// scalar variables (an [Elementwise] distribution, whose LogProbElements
// returns the per-element terms) or one event (MultivariateNormal,
// Dirichlet, OneHotCategorical, Multinomial). [EventColumns] tells the two
// apart, and [Independent] declares an elementwise distribution's row one
// event.
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
