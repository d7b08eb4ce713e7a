package infer

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"

	"golang.org/x/sync/errgroup"

	"github.com/backpropq/backpropq/ad"
	"github.com/backpropq/backpropq/nn"
	"github.com/backpropq/backpropq/ppl"
	"github.com/backpropq/backpropq/vi"
)

// SVI is the stochastic variational inference loop (more generally, the
// training loop of a stochastic computation graph): each [SVI.Step] runs
// the objective, builds the surrogate loss from the estimators chosen per
// site, takes one backward pass and one optimizer step over the model's,
// the guide's and the estimators' parameters.
//
// Data reach the model by closure, as everywhere in ppl. The rows of a
// step (Particles of them) may be split into Chunks runs of contiguous rows,
// each on its own tape with its own random source, which Workers goroutines
// process; the gradients are summed in chunk order, so a step's result
// depends on Seed and Chunks but never on Workers.
//
// Randomness comes only from Seed: step t's chunk c draws from a PCG source
// seeded by (a hash of Seed and t, c), so a run resumed from a checkpoint
// continues bit for bit.
//
// Parameters are created lazily, from the random source of the run that
// first needs them; the first step runs chunk 0 before the others so that
// its parameters do not depend on Workers. A model that creates parameters
// in later steps (a site seen for the first time) keeps that guarantee
// only with Workers 1.
//
// An SVI is not safe for concurrent use. Its fields may be changed between
// steps.
type SVI struct {
	// Objective is the objective the steps minimize (vi.Program for a
	// program's own costs, vi.ELBO for a model and a guide).
	Objective vi.Objective
	// Chunk, when not nil, gives the objective of the rows [from, to) of a
	// step, for models whose rows are data points: it is used instead of
	// Objective for every chunk. When nil, each chunk runs Objective with
	// Config.Batch set to its number of rows, which suits models whose rows
	// are exchangeable particles (data expanded with ppl.Expand).
	Chunk func(from, to int) vi.Objective
	// Estimators chooses each site's estimator.
	Estimators Estimators
	// Optimizer steps every parameter of Params.
	Optimizer nn.Optimizer
	// Params is the parameter store of the model, the guide and the
	// estimators (see [Stateful] and [SiteContext].Params).
	Params *nn.Store
	// Particles is the number of rows of a step; 0 lets the model decide
	// its batch (then Chunks must be at most 1).
	Particles int
	// Chunks is the number of runs a step's rows are split into (default
	// 1). It changes the random numbers drawn, so it is part of a run's
	// configuration like Seed.
	Chunks int
	// Workers is the number of goroutines that process the chunks
	// (default 1). It never changes the result.
	Workers int
	// MaxGradNorm, when positive, clips the joint gradient norm of all
	// parameters (nn.ClipGradNorm) before the optimizer step.
	MaxGradNorm float64
	// Seed determines every random number of the run.
	Seed uint64
	// ReturnVariance asks [Metrics] for the variance of the plain
	// REINFORCE learning signal of the sites whose estimator records it
	// ([QLocal] and the other Backprop-Q estimators): see
	// [SiteMetrics].ReturnVar.
	ReturnVariance bool
	// Warmup is the number of first steps (by StepCount) that train the
	// estimators alone: their state commits (critics learn, running
	// baselines move) and their own parameters step, while the model's
	// and the guide's parameters and their optimizer state stay as they
	// are.
	Warmup int64

	step int64
	warm bool
	// pending is a restore into a store without the model's parameters,
	// which the next step confirms or undoes (see [SVI.Restore]).
	pending *pendingRestore
	tapes   []*ad.Tape
	// params and vars are the store's parameters and their Vars, scratch
	// of each step.
	params []*nn.Param
	vars   []*ad.Var
	// results, rngs and pcgs are the chunks' results and random sources,
	// reused by every step.
	results []chunkResult
	rngs    []*rand.Rand
	pcgs    []*rand.PCG
	// acc sums the sites' metrics of a step; stateful lists its Stateful
	// estimators.
	acc      stepAcc
	stateful statefulList
}

// StepCount returns the number of steps taken so far (restored by a
// checkpoint).
func (s *SVI) StepCount() int64 { return s.step }

// chunkResult is what one chunk of a step produced.
type chunkResult struct {
	sur      *Surrogate
	err      error
	panicVal any
	panicked bool
}

// Step takes one training step and returns its metrics. It is all or
// nothing: when it returns an error (from the objective, an estimator, a
// NaN or infinite cost, term or gradient, or the optimizer) no parameter
// value, optimizer state, estimator state or step count has changed, the
// parameters that the failed run created are removed from the store (so
// a retry draws their initial values again, from the same random
// stream, and gives the numbers of a run that never failed), and the
// error names the site or the parameter where the first non-finite value
// appeared. Gradients are scratch space and are overwritten.
//
// A panic in the objective that is not a ppl.SiteError or an ad shape
// error propagates, on the caller's goroutine, after the store is rolled
// back in the same way, as a *[UserPanic] that carries the original value
// and the stack where it panicked.
func (s *SVI) Step() (Metrics, error) {
	var m Metrics
	if err := s.StepInto(&m); err != nil {
		return Metrics{}, err
	}
	return m, nil
}

// StepInto is [SVI.Step] with the metrics written into m, whose Sites
// slice it reuses: a loop that keeps no metrics from one step to the next
// passes the same m to every step, and a steady-state step then allocates
// nothing. The Sites of the m it is given are overwritten, so a loop that
// keeps them (a copy of m holds the same slice) calls Step instead. On an
// error m is left as it was.
func (s *SVI) StepInto(m *Metrics) error {
	if err := s.check(); err != nil {
		return err
	}
	mark, done := s.Params.Mark(), false
	defer func() {
		// Also on a panic, which goes on unrecovered.
		if !done {
			s.Params.Rollback(mark)
		}
	}()
	ns, fused := s.normStepper()
	results, norm, err := s.computeStep(fused)
	if err = s.confirmRestore(mark, err); err != nil {
		return err
	}
	params := s.stepParams()
	if s.MaxGradNorm > 0 {
		nn.ClipGradNorm(params, s.MaxGradNorm)
	}
	if fused {
		ss, err := ns.StepNorm(params)
		if err != nil {
			return s.optimizerError(err)
		}
		norm = math.Sqrt(ss)
	} else if err := s.Optimizer.Step(params); err != nil {
		return s.optimizerError(err)
	}
	for _, r := range results {
		r.sur.Commit()
	}
	done, s.pending = true, nil
	s.Params.Commit()
	s.metrics(results, norm, m)
	s.step++
	return nil
}

// normStepper returns the optimizer as an [nn.NormStepper] and whether
// the step leaves the gradient norm to it: when it is one, and the step
// neither clips the gradients nor confirms a restore, so that the
// optimizer's check of the gradients is the only pass that reads them
// before the update; not in the warm-up, whose update leaves out the
// model's gradients, which must still be checked.
func (s *SVI) normStepper() (nn.NormStepper, bool) {
	ns, ok := s.Optimizer.(nn.NormStepper)
	return ns, ok && s.MaxGradNorm == 0 && s.pending == nil && s.step >= s.Warmup
}

// optimizerError wraps an error of the optimizer's step; a NaN or
// infinite gradient is reported as [SVI.gradNorm] names it.
func (s *SVI) optimizerError(err error) error {
	if _, gerr := s.gradNorm(); gerr != nil {
		return gerr
	}
	return fmt.Errorf("infer: SVI step %d: %w", s.step, err)
}

// check validates the configuration.
func (s *SVI) check() error {
	switch {
	case s.Objective == nil && s.Chunk == nil:
		return errors.New("infer: SVI: no objective")
	case s.Optimizer == nil:
		return errors.New("infer: SVI: no optimizer")
	case s.Params == nil:
		return errors.New("infer: SVI: no parameter store")
	case s.Particles < 0:
		return fmt.Errorf("infer: SVI: negative Particles %d", s.Particles)
	case s.Chunks < 0 || s.Workers < 0:
		return errors.New("infer: SVI: negative Chunks or Workers")
	case s.Chunks > 1 && s.Particles < s.Chunks:
		return fmt.Errorf("infer: SVI: %d chunks need at least as many Particles, got %d", s.Chunks, s.Particles)
	case s.MaxGradNorm < 0 || math.IsNaN(s.MaxGradNorm):
		return fmt.Errorf("infer: SVI: MaxGradNorm must be >= 0, got %v", s.MaxGradNorm)
	}
	return s.Estimators.Validate()
}

// numChunks returns the number of chunks of a step.
func (s *SVI) numChunks() int {
	return max(s.Chunks, 1)
}

// chunkRows returns the rows [from, to) of chunk c.
func (s *SVI) chunkRows(c int) (from, to int) {
	n := s.numChunks()
	return c * s.Particles / n, (c + 1) * s.Particles / n
}

// chunkRand returns the random source of chunk c of step t: a PCG seeded
// by a hash of Seed and t, and c. The source of each chunk is reseeded
// every step ([SVI.compute] makes one per chunk).
func (s *SVI) chunkRand(t int64, c int) *rand.Rand {
	s.pcgs[c].Seed(splitmix(s.Seed^splitmix(uint64(t))), uint64(c))
	return s.rngs[c]
}

// splitmix is the SplitMix64 finalizer, a bijective mixer of 64 bits.
func splitmix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// registerEstimatorParams adds the parameters of Stateful estimators to the
// store under "infer/<key>", so that the optimizer steps them and
// checkpoints save them.
func (s *SVI) registerEstimatorParams() error {
	s.Estimators.list(&s.stateful)
	keys, ests := s.stateful.keys, s.stateful.ests
	for i, st := range ests {
		ps := st.Params()
		if len(ps) == 0 {
			continue
		}
		if err := s.Params.Register(estimatorParamPrefix+keys[i], paramList(ps)); err != nil {
			return fmt.Errorf("infer: SVI: estimator %s: %w", keys[i], err)
		}
	}
	return nil
}

// paramList adapts a slice of parameters to nn.Layer.
type paramList []*nn.Param

func (p paramList) Params() []*nn.Param { return p }

// allParams returns every parameter the step trains, sorted by name, in
// a slice the next call reuses.
func (s *SVI) allParams() []*nn.Param {
	s.params = s.Params.AppendParams(s.params[:0])
	return s.params
}

// allVars returns the Vars of [SVI.allParams], in a slice the next call
// reuses.
func (s *SVI) allVars() []*ad.Var {
	s.vars = s.vars[:0]
	for _, p := range s.allParams() {
		s.vars = append(s.vars, p.Var)
	}
	return s.vars
}

// compute runs every chunk and leaves the step's summed gradient in the
// parameters' Grad; it changes nothing else that a checkpoint holds
// (except for parameters the runs create). It returns an error for a NaN
// or infinite gradient, and the gradient's norm.
func (s *SVI) compute() (results []chunkResult, norm float64, err error) {
	return s.computeStep(false)
}

// computeStep is [SVI.compute], which leaves the check of the gradients
// and their norm to the optimizer when fused is set.
func (s *SVI) computeStep(fused bool) (results []chunkResult, norm float64, err error) {
	if err := s.check(); err != nil {
		return nil, 0, err
	}
	if err := s.registerEstimatorParams(); err != nil {
		return nil, 0, err
	}
	n := s.numChunks()
	if n > 1 {
		s.Params.ZeroGrad()
	}
	for len(s.tapes) < n {
		pcg := rand.NewPCG(0, 0)
		s.tapes = append(s.tapes, ad.NewTape())
		s.pcgs, s.rngs = append(s.pcgs, pcg), append(s.rngs, rand.New(pcg))
	}
	before := s.Params.Len()
	if cap(s.results) < n {
		s.results = make([]chunkResult, n)
	}
	results = s.results[:n]
	clear(results)
	s.runChunks(results)
	if err := s.chunkError(results); err != nil {
		return nil, 0, err
	}
	if n > 1 {
		for c := range results {
			s.tapes[c].AccumulateGradients()
		}
	}
	if s.Params.Len() == before {
		s.warm = true
	}
	if fused {
		return results, 0, nil
	}
	norm, err = s.gradNorm()
	if err != nil {
		return nil, 0, err
	}
	return results, norm, nil
}

// runChunk runs chunk c on its tape and computes its gradients, recording
// in r its surrogate, its error or its panic.
func (s *SVI) runChunk(r *chunkResult, c int) {
	defer func() {
		if p := recover(); p != nil {
			r.panicked, r.panicVal = true, capturePanic(p)
		}
	}()
	tp := s.tapes[c]
	tp.Reset()
	from, to := s.chunkRows(c)
	obj := s.Objective
	if s.Chunk != nil {
		obj = s.Chunk(from, to)
	}
	env := ppl.Config{Tape: tp, Rand: s.chunkRand(s.step, c), Params: s.Params, Batch: to - from}
	sur, err := BuildSurrogate(obj, s.Estimators, env)
	if err != nil {
		r.err = err
		return
	}
	if s.numChunks() == 1 {
		// One tape: the gradients land in the parameters' Grad directly.
		tp.SetGradients(sur.Loss, s.allVars())
	} else {
		tp.ComputeGradients(sur.Loss)
	}
	r.sur = sur
}

// runChunks runs every chunk, on up to Workers goroutines, into results.
func (s *SVI) runChunks(results []chunkResult) {
	n := len(results)
	first := 0
	if !s.warm {
		// Parameters are created lazily from the random source of the
		// chunk that first needs them; creating them in chunk 0 alone
		// keeps their values independent of the number of workers.
		s.runChunk(&results[0], 0)
		first = 1
	}
	workers := max(s.Workers, 1)
	if workers == 1 || n-first <= 1 {
		for c := first; c < n; c++ {
			s.runChunk(&results[c], c)
		}
		return
	}
	var g errgroup.Group
	g.SetLimit(workers)
	for c := first; c < n; c++ {
		g.Go(func() error { s.runChunk(&results[c], c); return nil })
	}
	_ = g.Wait()
}

// chunkError re-raises the first chunk's panic, on the caller's
// goroutine, or returns the first chunk's error.
func (s *SVI) chunkError(results []chunkResult) error {
	for c := range results {
		if results[c].panicked {
			panic(results[c].panicVal)
		}
	}
	for c := range results {
		if err := results[c].err; err != nil {
			if len(results) > 1 {
				return fmt.Errorf("infer: SVI step %d, chunk %d: %w", s.step, c, err)
			}
			return fmt.Errorf("infer: SVI step %d: %w", s.step, err)
		}
	}
	return nil
}

// gradNorm returns the joint L2 norm of the parameters' gradients, or an
// error naming the first parameter with a NaN or infinite element.
func (s *SVI) gradNorm() (float64, error) {
	total := 0.0
	for _, p := range s.allParams() {
		if p.Grad == nil {
			continue
		}
		// A finite sum of squares means finite elements; only when it is
		// not (a NaN or an infinity, or an overflow of huge finite values)
		// are the elements scanned.
		raw := p.Grad.RawMatrix()
		ss := sumSquares(raw.Data)
		total += ss
		if math.IsNaN(ss) || math.IsInf(ss, 0) {
			if err := checkFiniteDense(raw.Data, raw.Cols); err != nil {
				return 0, fmt.Errorf("infer: SVI step %d: gradient of parameter %q %w", s.step, p.Name, err)
			}
		}
	}
	return math.Sqrt(total), nil
}

// sumSquares is [nn.SumSquares], the sum that [nn.NormStepper]s report,
// so that a step's norm does not depend on who measures it.
func sumSquares(xs []float64) float64 { return nn.SumSquares(xs) }

// checkFiniteDense locates the first NaN or infinite element of a
// row-major slice with the given number of columns.
func checkFiniteDense(data []float64, cols int) error {
	for i, v := range data {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return fmt.Errorf("is %v at row %d, column %d", v, i/cols, i%cols)
		}
	}
	return nil
}
