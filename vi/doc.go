// Package vi turns variational objectives into costs on a stochastic
// computation graph (SCG), so that the estimators of package infer train
// them like any other program: each estimator sees only the costs its site
// can reach.
//
// An [Objective] runs once and returns a trace whose sample sites are the
// random variables being trained and whose cost and observe sites sum to
// the loss:
//
//   - [Program]: a program's own costs.
//   - [ELBO]: the evidence lower bound of a model and a guide, one cost per
//     term: log q(z|..) - log p(z|..) for each latent z at [KLAddr](z)
//     ("kl(z)"), and -log p(x|..) for each observation, each with the
//     parents its data flow gives it. AnalyticKL uses the closed-form KL
//     where guide and prior have one (Normal, Bernoulli, Categorical).
//   - [IWAE]: the importance-weighted bound with K particles per data
//     point, vectorized batch-major along dimension 0, with the VIMCO
//     leave-one-out learning signal for score-function estimators
//     ([VIMCOSignal]), which reads the trace alone.
//
// [Loss] and [RowCost] read the loss of any objective's trace; the bounds
// ([Bounded]) give the bound of each data point for metrics.
//
// # Guides and models
//
// A guide is a model (ppl.Model) that samples every latent of the model at
// the same address and observes nothing. The guide runs first; the model
// runs on the same tape with each latent given the guide's value and the
// guide's site id, so the provenance of every tensor of both runs is in the
// guide's ids, and the objective's graph is read off the data flow like
// any trace's. Mismatches are errors wrapping a *ppl.SiteError that names
// the address: a latent of the model the guide does not sample, a guide
// site the model lacks or does not sample, a value whose shape is not the
// model distribution's. Data reach both by closure; [ppl.Tile] brings them
// to the run's batch, so one model and guide serve one row per data point
// and K particles per data point.
//
// # Plates
//
// Model and guide may enter plates (ppl.Plate): the model runs with the
// guide's subsample, each latent must sit inside the same plates in both,
// in the same order, and each cost stays inside its plates, weighed by
// N/n when they are subsampled, so that a minibatch scales the local
// terms and leaves the global latents' KL whole. [RowCost], [Loss] and the
// bounds sum each particle's plate rows into its own row; IWAE's particles
// are the rows outside every plate.
//
// # Summing out discrete latents
//
// TraceEnum sums one discrete latent out of the ELBO exactly, per member
// of its plates (a mixture's assignments), so it needs no guide and no
// discrete estimator; TraceEnum.Posterior recovers its posterior. SumChain
// sums the hidden states of a chain out inside a model with the forward
// algorithm (a hidden Markov model), and Chain.Posterior and Chain.Viterbi
// recover them.
//
// # Concurrency
//
// Objectives are values holding functions; Run uses only its arguments, so
// an objective may run on several goroutines at once with different tapes
// and random sources when its model and guide allow it.
package vi
