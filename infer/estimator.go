package infer

import (
	"math/rand/v2"

	"github.com/backpropq/backpropq/ad"
	"github.com/backpropq/backpropq/nn"
	"github.com/backpropq/backpropq/ppl"
	"github.com/backpropq/backpropq/trace"
)

// Estimator estimates the gradient of the expected downstream cost with
// respect to the parameters of one stochastic site's distribution (and,
// through them, everything upstream). It does so by returning a surrogate
// term whose gradient is the estimate; the surrogate loss of a step is the
// sum of every site's term plus the costs themselves, so one backward pass
// gives every gradient (paper Algorithm 1, lines 14-20).
type Estimator interface {
	// Unbiased reports whether the estimate's expectation is the exact
	// gradient.
	Unbiased() bool
	// Surrogate returns the site's term. It must not change any state of
	// the estimator: state changes go in Term.Commit, which the training
	// step calls only when the whole step succeeds.
	Surrogate(sc *SiteContext) (Term, error)
}

// Term is an estimator's contribution to the surrogate loss.
type Term struct {
	// Loss has the site's rows and one column, or is [1 x 1]; its sum
	// joins the surrogate loss. Its value is not meaningful, only its
	// gradient. Nil adds nothing (a pathwise site, whose gradient flows
	// through the costs).
	Loss *ad.Tensor
	// Commit applies the estimator's state update (running baselines, say)
	// after the step succeeded; nil for none.
	Commit func()
	// Signal is the learning signal the term used (the site's rows, after
	// any baseline or control variate), for per-site diagnostics; may be
	// nil.
	Signal *ad.Tensor
}

// Drawer is an [Estimator] that changes how its site's value is drawn in
// the training run (relaxed, straight-through or enumerated values). Draw is
// called for the site before it is sampled, with the site's address and
// distribution set and rng the run's random source; a nil result leaves the
// draw to the distribution. A value returned enters the run as
// trace.Override puts it: it must have the distribution's value shape and
// live on the run's tape (the tape of the distribution's parameters), it is
// neither validated nor scored (the site's LogProb stays nil, Substituted
// is set), and its gradient path is kept. Draw is not called for a site
// whose value a handler already set (a replayed value), nor in the re-runs
// of [SiteContext].Rerun.
type Drawer interface {
	Estimator
	Draw(s *ppl.Site, rng *rand.Rand) *ad.Tensor
}

// Stateful is an [Estimator] with trainable parameters or running state
// that the training loop optimizes and checkpoints.
type Stateful interface {
	Estimator
	// Params returns the estimator's trainable parameters (a baseline
	// network, a control variate, a learned temperature); they are
	// stepped by the training loop's optimizer with the model's.
	Params() []*nn.Param
	// MarshalState and UnmarshalState save and restore everything else
	// (running means, counters). UnmarshalState must check its input and
	// change nothing on error.
	MarshalState() ([]byte, error)
	UnmarshalState(data []byte) error
}

// SiteContext is what an estimator sees of one stochastic site in one
// training step. Like the step's trace and tensors, it is valid until the
// step's tape is reset, which reuses its memory: an estimator must not
// keep it past the step.
type SiteContext struct {
	// Site is the sample site; its Dist's parameters are tensors with
	// gradient paths to the parameters being trained.
	Site *ppl.Site
	// Trace is the objective's trace of this step and Graph its SCG.
	Trace *trace.Trace
	Graph *trace.Graph
	// Signal is the sum of the costs reachable from the site in Graph,
	// each moved to the site's plate level (ppl.Move), one column with the
	// site's rows, with no gradient path: the Rao-Blackwellized
	// score-function learning signal.
	Signal *ad.Tensor
	// Rerun runs the objective again on the step's tape with the given
	// handlers added, replaying every site that is not a descendant of
	// this one, and returns the sum of the costs reachable from this site
	// in the new run, [B x 1], with gradient paths. Estimators use it to
	// evaluate the downstream cost at substituted values (MuProp, REBAR,
	// RELAX, ARM, Enumerate).
	Rerun func(handlers ...ppl.Handler) (*ad.Tensor, error)
	// TiedRows reports that the objective ties rows together (its
	// particles share a cost, as vi.IWAE's do; see [VIMCOSignaler]), so
	// that Signal is the objective's own signal and a row's cost in a
	// re-run depends on the other rows' values. Estimators that read one
	// row's downstream cost from a re-run with the site's value changed in
	// every row (Enumerate, ARM, DisARM) are then wrong and fail.
	TiedRows bool
	// Rand is the step's random source (the random source of the site's
	// chunk of particles; see [SVI]).
	Rand *rand.Rand
	// Shared is the state the per-trace phase of the site's estimator
	// returned for this trace ([TraceState].Shared), or nil for an
	// estimator without one (see [TraceEstimator]).
	Shared any
	// Params is the training run's parameter store. An estimator may
	// create parameters in it lazily (a baseline network whose input size
	// it learns from the first site it sees), under names that start with
	// "infer/"; the training loop then steps and checkpoints them with the
	// model's.
	Params *nn.Store
}

// Reparameterizing is an optional interface of an [Estimator] whose site
// must be drawn with RSample, so that the gradient reaches the
// distribution's parameters through the value ([Pathwise]). Every other
// estimator's site is drawn with Sample (ppl.Site.NoRSample is set), since
// its own term accounts for the dependence of the value on the parameters
// and a second, pathwise, path would count it twice.
type Reparameterizing interface {
	Estimator
	Reparameterizes() bool
}

// TraceEstimator is an optional interface of an [Estimator] whose sites
// share work done once per trace, before their terms: critics evaluated
// on the whole trace (Backprop-Q), say. As with the optional interfaces of
// database/sql/driver, an estimator without it gets only its per-site
// calls.
type TraceEstimator interface {
	Estimator
	// TracePhase returns the estimator's per-trace phase. Estimators
	// whose phases are equal (==) share one call per trace: several
	// estimators on one set of critics evaluate and train them once.
	TracePhase() TracePhase
}

// TracePhase is the per-trace phase of one or more [TraceEstimator]s.
type TracePhase interface {
	// BeginTrace is called once per trace in which the phase's
	// estimators serve some sites, before any of their terms. It must not
	// change any state: changes go in the returned Commit.
	BeginTrace(tc *TraceContext) (TraceState, error)
}

// TraceContext is what a [TracePhase] sees of one trace.
type TraceContext struct {
	// Trace is the objective's trace of this step and Graph its SCG.
	Trace *trace.Trace
	Graph *trace.Graph
	// Sites are the contexts of the sites that the phase's estimators
	// serve, in the order of the trace, with their learning signals;
	// their Shared field is not set yet.
	Sites []*SiteContext
	// Rand is the step's random source, as in [SiteContext].
	Rand *rand.Rand
	// Params is the training run's parameter store, as in [SiteContext].
	Params *nn.Store
	// Run runs the objective anew under env and handlers (which apply to
	// its stochastic part: the guide of a vi.ELBO), for work on fresh runs
	// such as the critics' experience replay; env needs no tape.
	Run func(env ppl.Config, handlers ...ppl.Handler) (*trace.Trace, error)
}

// TraceState is what a [TracePhase] returns for one trace.
type TraceState struct {
	// Shared is handed to each of the phase's sites in the trace
	// ([SiteContext].Shared).
	Shared any
	// Commit applies the phase's state update once the whole step has
	// succeeded, and returns its per-site diagnostics (for the sites of
	// [TraceContext].Sites only); nil for none. It runs before the
	// Commit functions of the sites' terms.
	Commit func() []SiteDiagnostics
}

// SiteDiagnostics are a per-trace phase's diagnostics of one of its sites
// in one trace, which [SVI] reports in [SiteMetrics].
type SiteDiagnostics struct {
	// Addr is the site's address.
	Addr string
	// TDError, when HasTDError is set, is the mean squared lambda-return
	// error of the site's critics before their update (averaged over the
	// site's Q-nodes).
	TDError    float64
	HasTDError bool
	// Return is the site's plain REINFORCE learning signal in each row
	// (the Rao-Blackwellized return R, with no baseline or critic); nil
	// for none.
	Return []float64
}
