// Package infer trains stochastic computation graphs: it chooses a
// gradient estimator for every stochastic site, builds the surrogate loss
// whose gradient is the estimate, and runs the training loop ([SVI]) with
// checkpoints and parallel workers.
//
// Start with [SVI]: give it an objective, the estimators of the sites
// ([Estimators]: a default and choices by address) and an optimizer, and
// call [SVI.Step]. To write an estimator, implement [Estimator] (one term
// per site) and, where needed, its optional interfaces: [TraceEstimator]
// (work done once per trace, before the sites' terms), [Stateful],
// [Drawer] and [Reparameterizing].
//
// # The surrogate loss
//
// An objective (vi.Objective: vi.Program for a program's own costs, vi.ELBO
// for a model and a guide) runs once per step and returns a trace whose
// sample sites are the random variables and whose cost and observe sites
// are the costs. [BuildSurrogate] adds up the scaled costs
// (ppl.Site.ScaledCost: Scale and Mask applied) and, for every sample site,
// the term of the site's [Estimator], so one backward pass gives every
// gradient (paper Algorithm 1, lines 14-20). An estimator sees its site
// through a [SiteContext]: the site, the trace and its graph, the
// Rao-Blackwellized learning signal (the sum of the costs the site can
// reach, with no gradient path) and Rerun, which runs the objective again
// with values substituted at the site, the sites that do not descend from
// it keeping their values.
//
// An objective whose rows share a cost (vi.IWAE with K >= 2 particles per
// data point) gives every site its own learning signal instead, VIMCO's
// leave-one-out signal (see [VIMCOSignaler]); the estimators that read a
// row's cost from a re-run (Enumerate, ARM, DisARM) refuse such an
// objective ([SiteContext].TiedRows).
//
// Sites whose estimator is not [Reparameterizing] are drawn without a
// pathwise gradient, so the value's dependence on the parameters is counted
// once, by the estimator's term; the direct dependence of a cost on the
// parameters (log q in an ELBO, a decoder's weights) always flows through
// the costs.
//
// # Estimators
//
// [Estimators] chooses the estimator of each site by address glob, with a
// default: [Pathwise] for distributions that can RSample and
// [ScoreFunction] otherwise.
//
//	Estimator              Unbiased  Sites                      Extra cost per site          Use when
//	Pathwise               yes       reparameterized            none                         continuous latents (Normal): lowest variance
//	ScoreFunction          yes       any                        one log-prob                 anything; the reference, high variance
//	  + MovingAverage      yes       any                        one log-prob                 cheap variance reduction for any site
//	  + NVIL               yes (1)   any                        a small MLP                  discrete latents with inputs (SBNs)
//	RLOO                   yes       any (5)                    K samples per data point     several samples affordable; no tuning or state
//	Enumerate              yes       small discrete             one re-run per value         few configurations: exact in the site
//	ARM                    yes       Bernoulli                  one re-run                   binary latents; no tuning
//	DisARM                 yes       Bernoulli                  one re-run                   binary latents; ARM with lower variance
//	MuProp                 yes       with a mean (not indices)  a mean-field re-run          smooth costs of discrete latents
//	GumbelSoftmax          no (2)    Bernoulli, OneHot          none (relaxed draw)          differentiable costs; fast, biased
//	REBAR                  yes       Bernoulli, OneHot          2-4 re-runs                  binary/one-hot latents, low variance
//	RELAX                  yes       discrete                   an MLP (+2 re-runs Concrete) learned control variates
//	PPO                    no (3)    any                        one log-prob                 several steps on one batch
//	QLocal                 no        any                        critic evaluation + TD step  long chains: learned Q per node (package q)
//	QControlVariate        yes       discrete (4)               critic over the site values  unbiased with an imperfect critic
//	QAdvantage             no        any                        critic evaluation + TD step  advantages of appendix 4.4
//
// (1) NVIL's variance normalization multiplies the site's estimate by
// 1/max(1, σ), a step size set by past steps only: unbiased in direction.
// (2) The bias shrinks as the temperature falls; the straight-through form
// stays biased. (3) Unbiased on the first step from a batch (ratio 1),
// clipped by design afterwards. TRPO is a step of its own on a policy's
// parameters, not a per-site term; see [TRPO].
// (4) Enumerated over the site's values for categorical sites and
// Bernoulli sites of at most 12 columns; the relaxed form (eq. 26 with the
// critic as c: two critic passes and a backward pass) for wider Bernoulli
// sites or when [QControlVariate].Relaxed is set, with Linear or MLP
// critics; with [QControlVariate].LocalExpectation, the local-expectation
// form for Bernoulli sites of any width (each unit's two values, the
// others at their samples: two critic passes per unit, one first-layer
// product per site). [QControlVariate].LeaveOneOut replaces the fitted
// baseline b of any form by RLOO's over K samples per data point (5). The
// Normalize field of each applies NVIL's normalization (1).
// (5) K consecutive particles per data point (batch-major; inside plates,
// each member's rows in those particles), whose learning signals do not
// depend on each other's draws: not a site whose rows are tied (vi.IWAE, a
// cost outside the site's plate). RLOO is also a [Baseline] for the
// estimators that take one.
//
// The estimators that re-run the objective ([SiteContext].Rerun) pay for
// a forward pass of the whole objective each time: the sites that do not
// descend from the site keep their values, but their computations are
// done again.
//
// An estimator that needs the whole trace before its sites' terms
// implements [TraceEstimator]: its per-trace phase runs once per trace for
// all the sites it serves, returns the state they share, one commit (run
// only once the step succeeded) and per-site diagnostics, which [SVI]
// reports in [SiteMetrics]. The Backprop-Q estimators, one type per use
// of the critics ([QLocal], [QControlVariate], [QAdvantage]), evaluate the
// [Critics] they embed there, so that estimators of different types can
// share one set of critics and serve different sites of one trace; [Critics].Replay adds experience
// replay (appendix 4.2) to their training, under any objective.
//
// An estimator may keep state (running baselines: [Stateful]) and
// parameters (NVIL's network, created in the training store under
// "infer/"); [SVI] steps and checkpoints them with the model's. An
// estimator that changes how its site is drawn (a relaxed value) implements
// [Drawer].
//
// # Training
//
// [SVI.Step] runs the objective, builds the surrogate, takes one backward
// pass and one optimizer step. It is all or nothing: on an error, or a NaN
// or infinite cost, term or gradient, nothing that a checkpoint holds
// changes, and the error names the site or parameter. The rows of a step can
// be split into chunks, each with its own tape and random source, processed
// by several goroutines; gradients are summed in chunk order, so the result
// does not depend on the number of workers. [SVI.SaveCheckpoint] saves
// parameters, optimizer state, estimator state and the position in the
// random stream, so a resumed run continues bit for bit.
//
// With chunks, every estimator sees only its chunk's rows: a baseline
// updates once per chunk, in chunk order, and an estimator that pools rows
// (a leave-one-out signal across particles) pools within a chunk. An
// objective that ties rows together must not have its groups split: with
// vi.IWAE's K particles per data point, give SVI a Chunk function whose
// chunks hold whole data points. Results are then identical for any number
// of workers, but not for any number of chunks, which is part of the
// configuration like the seed.
//
// # Automatic guides and prediction
//
// An automatic guide is built from one run of the model and covers its
// latents by address: [AutoNormal] (mean-field Normal over the
// unconstrained space, constrained supports through dist.BijectTo),
// [AutoMultivariateNormal] (full rank over the global latents), [AutoDelta]
// (MAP) and [AutoDiscrete] (Bernoulli and categorical logits); [Guides]
// combines them with guides written by hand. A latent inside plates gets
// parameters per member, trained on the members of each subsample. The
// parameters live in the training store under the guide's prefix.
//
//	guide, err := infer.NewAutoNormal(model, infer.AutoOptions{})
//	svi := &infer.SVI{Objective: vi.ELBO{Model: model, Guide: guide.Guide}, ...}
//
// [Predictive] draws chosen sites of a model from the prior, from a trained
// guide or from recorded traces, its observations drawn afresh (the
// posterior predictive), and [Samples.Summary] gives each site's mean, sd
// and quantiles.
//
// # Concurrency
//
// An SVI is not safe for concurrent use. Estimators' Surrogate methods are
// called concurrently, one goroutine per chunk, and must only read their
// state; Commit functions are called one at a time.
package infer
