package infer

import (
	"errors"
	"fmt"
	"math"
	"sync"

	"github.com/backpropq/backpropq/ad"
	"github.com/backpropq/backpropq/nn"
	"github.com/backpropq/backpropq/q"
)

// QLocal uses the learned total local cost Q_X of the site as its cost
// (paper eq. 1 with the learned Q in place of the true one, appendix 5.8
// (1)): the term is log p(x) · stopgrad(Q_X - b), with b the optional
// value baseline and [Baseline]. Exact Q-functions make it unbiased
// (Theorem 1); learned ones leave a bias that shrinks with their error.
type QLocal struct {
	// Critics are the critics; required (see [NewQLocal]).
	*Critics
	// ValueBaseline subtracts from Q_X(x) its expectation over the site's
	// own value at each row, V = Σ_x' p(x') Q_X(x'), with the rest of the
	// scope fixed: the advantage Q_X - V, a baseline that does not depend
	// on x. It needs discrete sites and critics that read them (as the
	// enumerated form of [QControlVariate] does); a site whose critics are
	// first seen in the step goes without it.
	ValueBaseline bool
	// Baseline is subtracted from Q_X (after ValueBaseline, if set).
	Baseline Baseline
	// Normalize divides each site's term (its learning signal and any
	// correction) by max(1, σ), where σ² is the running variance (decay
	// 0.9) of the site's learning signal over the steps before this one,
	// as NVIL's variance normalization does. The factor depends only on
	// past steps, so each site's estimate keeps its expected direction;
	// the sites are weighed differently, as with NVIL. Without it, an
	// Adam-trained guide whose signals are hundreds of nats wide can drift
	// to a deterministic, collapsed code before the critics have learned
	// (the discrete VAE of examples/vae).
	Normalize bool

	sites siteStats
}

// QControlVariate uses the actual return R (the Rao-Blackwellized signal)
// with c = a·Q_X + b as a control variate, so that the estimate is
// unbiased whatever the critics' error. It has two forms.
//
// The enumerated form (eq. 27 without the relaxed term) is
//
//	log p(x) · stopgrad(R - a·Q_X(x) - b) + a · Σ_x' p(x') stopgrad(Q_X(x'))
//
// where the sum runs over the site's values at each row. It serves
// Categorical and OneHotCategorical sites and Bernoulli sites of at most
// 12 columns, with critics of any kind.
//
// The relaxed form (eq. 26 with Q as c, appendix 5.8 (1)-(2)) is
//
//	log p(b) · stopgrad(R - a·Q_X(z~) - b0) + a·Q_X(z) - a·Q_X(z~)
//
// where z is the relaxed pre-threshold sample of the site's value b =
// H(z), z~ a second one drawn from p(z | b), and Q_X(z) the site's critics
// evaluated with the site's value replaced by its relaxation σ(z/λ)
// (softmax(z/λ) for a categorical site) at temperature Temperature, the
// rest of the scope fixed. The last two terms are differentiated through z
// and z~ only (as [RELAX] does): the gradient reaches the site's
// distribution parameters and, through them, the guide, never the
// critics' weights. It serves sites of any width whose distribution is
// relaxable (Bernoulli, Categorical, OneHotCategorical) and whose critics
// are [q.Differentiable] (Linear and MLP critics, not Tabular ones). The
// relaxed form is used when Relaxed is set, and otherwise for Bernoulli
// sites wider than 12 columns, which cannot be enumerated.
//
// The local-expectation form, for factorized Bernoulli sites of any width,
// is the enumerated form with the sum over values replaced by
//
//	a · Σ_i p_i · stopgrad(Q_X(x with unit i set to 1) - Q_X(x with unit i set to 0))
//
// at the sampled values of the other units, p_i the probability of a 1 in
// column i: its gradient is an unbiased estimate of the gradient of
// E[Q_X], without relaxation, at the cost of one critic evaluation per
// unit and value ([q.FlipPredictor] computes the first layer's product
// once for all of them). It is used when LocalExpectation is set, for
// every site the estimator serves; a site that is not Bernoulli is then
// an error.
//
// In all forms a and b minimize the variance of R - c, fitted from past
// steps by running least squares of R on the critic value the signal
// subtracts (Q_X(x), or Q_X(z~) in the relaxed form).
//
// On a network that inlines costs (a [Critics].Cache with
// q.NetworkOptions.InlineCosts), the costs D that a site feeds directly
// and that are functions of its scope enter the control variate exactly,
// c = D + a·Q_X + b, and the critics fit only the rest of the return,
// what lies beyond the site's stochastic children. D's correction is
// relaxed whatever the form of the critics':
//
//	log p(x) · stopgrad(R - D(soft(z~)) - a·Q_X - b) + D(soft(z)) - D(soft(z~)) + (the form's correction of a·Q_X)
//
// with z and z~ drawn as in the relaxed form, at temperature Temperature,
// and D evaluated by re-running the objective with the site's value
// replaced and every other site's replayed (two re-runs per site and
// step); the last terms' gradient reaches the site's distribution
// parameter only, as in the relaxed form. It needs a Bernoulli or
// OneHotCategorical site, and an objective that runs the batch it is
// given. a and b are then fitted on R - D(soft(z~)).
//
// With LeaveOneOut set to K, the run draws K samples per data point (laid
// out as [RLOO] describes) and b gives way to a leave-one-out baseline:
// the signal of sample k is
//
//	(R_k - a·Q_k) - 1/(K-1) Σ_{j≠k} (R_j - a·Q_j)
//
// with Q_k the critic value the form subtracts, and the form's correction
// unchanged. The baseline comes from samples drawn independently of
// sample k, so every form stays unbiased; a is then fitted on the
// leave-one-out differences of R and Q, the quantities whose combination
// the signal is.
type QControlVariate struct {
	// Critics are the critics; required (see [NewQControlVariate]).
	*Critics
	// Decay is the decay of the running moments that fit a and b, in
	// [0, 1); zero means 0.95.
	Decay float64
	// Relaxed uses the relaxed form for every site instead of enumerating
	// the site's values where that is possible.
	Relaxed bool
	// LocalExpectation uses the local-expectation form for every site,
	// which must be Bernoulli; it excludes Relaxed. The forms are two
	// switches rather than one choice because the default, which picks
	// the enumerated or the relaxed form by the site's width, is neither.
	LocalExpectation bool
	// Temperature is the temperature λ of the relaxed form; zero means
	// 0.5.
	Temperature float64
	// Normalize divides each site's term by the running standard
	// deviation of its learning signal (see [QLocal].Normalize).
	Normalize bool
	// LeaveOneOut, when not 0, is the number K >= 2 of samples per data
	// point whose leave-one-out baseline replaces b (see above).
	LeaveOneOut int
	// NoCritics leaves the critics out of the learning signal: a is fixed
	// at zero, so what remains is the direct costs' exact control variate
	// (with InlineCosts) and b or the leave-one-out baseline. The critics
	// are still trained. It measures what the critics add.
	NoCritics bool

	sites   siteStats
	moments map[string]cvMoments // guarded by sites.mu
}

// QAdvantage uses the advantage signal of [q.Advantages] (appendix 4.4).
type QAdvantage struct {
	// Critics are the critics; required (see [NewQAdvantage]).
	*Critics
	// FromErrors uses the lambda-return errors (see q.Advantages).
	FromErrors bool
	// Normalize divides each site's term by the running standard
	// deviation of its learning signal (see [QLocal].Normalize).
	Normalize bool

	sites siteStats
}

// NewQLocal returns a [QLocal] with critics configured by cfg and TD
// updates td.
func NewQLocal(cfg q.Config, td q.TD) *QLocal { return &QLocal{Critics: NewCritics(cfg, td)} }

// NewQControlVariate returns a [QControlVariate] with critics configured
// by cfg and TD updates td.
func NewQControlVariate(cfg q.Config, td q.TD) *QControlVariate {
	return &QControlVariate{Critics: NewCritics(cfg, td)}
}

// NewQAdvantage returns a [QAdvantage] with critics configured by cfg and
// TD updates td.
func NewQAdvantage(cfg q.Config, td q.TD) *QAdvantage {
	return &QAdvantage{Critics: NewCritics(cfg, td)}
}

// Unbiased reports false: the estimate is unbiased only with exact
// critics.
func (e *QLocal) Unbiased() bool { return false }

// Unbiased reports true.
func (e *QControlVariate) Unbiased() bool { return true }

// Unbiased reports false: the estimate is unbiased only with exact
// critics.
func (e *QAdvantage) Unbiased() bool { return false }

// TracePhase returns the critics, which are evaluated and trained once per
// trace for every estimator that embeds them.
func (e *QLocal) TracePhase() TracePhase { return e.Critics }

// TracePhase returns the critics (see [QLocal.TracePhase]).
func (e *QControlVariate) TracePhase() TracePhase { return e.Critics }

// TracePhase returns the critics (see [QLocal.TracePhase]).
func (e *QAdvantage) TracePhase() TracePhase { return e.Critics }

// Surrogate returns the site's term; its Signal is Q_X less the
// baselines.
func (e *QLocal) Surrogate(sc *SiteContext) (Term, error) {
	ev, err := evalOf(sc)
	if err != nil {
		return Term{}, err
	}
	s := sc.Site
	rows := s.LogProb.Rows()
	local := ev.vals.Local(ev.net, s.Addr)
	if local == nil {
		local = make([]float64, rows)
	}
	if e.ValueBaseline && e.known(ev, s.Addr) {
		v, err := e.expectedQ(sc, ev)
		if err != nil {
			return Term{}, err
		}
		centered := make([]float64, rows)
		if v != nil {
			for i, x := range v.Data() {
				centered[i] = local[i] - x
			}
		}
		local = centered
	}
	mt := modeTerm{signal: s.LogProb.Tape().FromData(rows, 1, local)}
	if e.Baseline != nil {
		mt.signal, mt.extra, mt.commit, err = e.Baseline.Center(sc, mt.signal)
		if err != nil {
			return Term{}, fmt.Errorf("BackpropQ: %w", err)
		}
	}
	return e.sites.term(sc, mt, e.Normalize), nil
}

// Surrogate returns the site's term; its Signal is R - a·Q - b.
func (e *QControlVariate) Surrogate(sc *SiteContext) (Term, error) {
	ev, err := evalOf(sc)
	if err != nil {
		return Term{}, err
	}
	mt, err := e.controlVariate(sc, ev)
	if err != nil {
		return Term{}, err
	}
	return e.sites.term(sc, mt, e.Normalize), nil
}

// Surrogate returns the site's term; its Signal is the site's advantage.
func (e *QAdvantage) Surrogate(sc *SiteContext) (Term, error) {
	ev, err := evalOf(sc)
	if err != nil {
		return Term{}, err
	}
	s := sc.Site
	advs, err := ev.advantages(e.TD, e.FromErrors)
	if err != nil {
		return Term{}, err
	}
	adv := advs[s.Addr]
	if adv == nil {
		adv = make([]float64, s.LogProb.Rows())
	}
	mt := modeTerm{signal: s.LogProb.Tape().FromData(s.LogProb.Rows(), 1, adv)}
	return e.sites.term(sc, mt, e.Normalize), nil
}

// evalOf returns the critics' evaluation on the site's trace, which the
// per-trace phase handed over.
func evalOf(sc *SiteContext) (*qEval, error) {
	if sc.Site.LogProb == nil {
		return nil, errors.New("BackpropQ: the site has no log-probability (its value was substituted)")
	}
	ev, ok := sc.Shared.(*qEval)
	if !ok {
		return nil, errors.New("BackpropQ: the critics were not evaluated on the trace (its per-trace phase did not run: use BuildSurrogate)")
	}
	return ev, nil
}

// modeTerm is what an estimator contributes to a site's term: the learning
// signal (one column, the site's rows) that multiplies the
// log-probability, a correction added per row before masking (extra, the
// site's rows) or after it (post, [1 x 1]),
// and the commit of the estimator's own state.
type modeTerm struct {
	signal, extra, post *ad.Tensor
	commit              func()
}

// siteStats is the per-site state that every Backprop-Q estimator keeps:
// the running variance of each site's learning signal for Normalize (see
// [QLocal].Normalize), and the variances that Stats reports.
type siteStats struct {
	mu        sync.Mutex
	norm      map[string]nvilStats
	signalVar map[string][2]float64
}

// term finishes a site's term from what the estimator contributed: the
// score-function term, the corrections, the mask and the normalization,
// and a commit that updates the site's statistics after the estimator's
// own.
func (st *siteStats) term(sc *SiteContext, mt modeTerm, normalize bool) Term {
	s := sc.Site
	loss := ad.Mul(s.LogProb, ad.StopGradient(mt.signal))
	if mt.extra != nil {
		loss = ad.Add(loss, mt.extra)
	}
	if s.Mask != nil {
		loss = ad.Where(s.Mask, loss, s.LogProb.Tape().Scalar(0))
	}
	if mt.post != nil {
		loss = ad.Add(ad.Sum(loss), mt.post)
	}
	if normalize {
		st.mu.Lock()
		ns, seen := st.norm[s.Addr]
		st.mu.Unlock()
		if seen && ns.variance > 1 {
			loss = ad.Scale(loss, 1/math.Sqrt(ns.variance))
		}
	}
	addr, sig := s.Addr, mt.signal.Data()
	sigVar, retVar := varianceOf(sig), varianceOf(sc.Signal.Data())
	commit := func() {
		if mt.commit != nil {
			mt.commit()
		}
		st.mu.Lock()
		defer st.mu.Unlock()
		if normalize {
			if st.norm == nil {
				st.norm = map[string]nvilStats{}
			}
			old, ok := st.norm[addr]
			st.norm[addr] = old.update(ok, sig, 0.9)
		}
		if st.signalVar == nil {
			st.signalVar = map[string][2]float64{}
		}
		st.signalVar[addr] = [2]float64{sigVar, retVar}
	}
	return Term{Loss: loss, Commit: commit, Signal: mt.signal}
}

// QSiteStats are the per-site diagnostics of the last committed step of a
// Backprop-Q estimator.
type QSiteStats struct {
	// TDError is the mean over the site's Q-nodes of their mean squared
	// lambda-return error before the critics' update.
	TDError float64
	// SignalVar is the variance over rows of the learning signal the term
	// used (after critics and baselines).
	SignalVar float64
	// ReturnVar is the variance over rows of the Rao-Blackwellized return
	// R, the signal of plain REINFORCE without baseline.
	ReturnVar float64
}

// stats returns the diagnostics of the site at addr.
func (st *siteStats) stats(c *Critics, addr string) (QSiteStats, bool) {
	td, _ := c.TDError(addr)
	st.mu.Lock()
	defer st.mu.Unlock()
	v, ok := st.signalVar[addr]
	if !ok {
		return QSiteStats{}, false
	}
	return QSiteStats{TDError: td, SignalVar: v[0], ReturnVar: v[1]}, true
}

// Stats returns the diagnostics of the site at addr from the last
// committed step (of the last chunk, in a chunked step), and whether there
// are any.
func (e *QLocal) Stats(addr string) (QSiteStats, bool) { return e.sites.stats(e.Critics, addr) }

// Stats returns the diagnostics of the site at addr (see [QLocal.Stats]).
func (e *QControlVariate) Stats(addr string) (QSiteStats, bool) {
	return e.sites.stats(e.Critics, addr)
}

// Stats returns the diagnostics of the site at addr (see [QLocal.Stats]).
func (e *QAdvantage) Stats(addr string) (QSiteStats, bool) { return e.sites.stats(e.Critics, addr) }

// Params returns the baseline's parameters; the critics train themselves.
func (e *QLocal) Params() []*nn.Param { return baselineParams(e.Baseline) }

// Params returns nil: the critics train themselves.
func (e *QControlVariate) Params() []*nn.Param { return nil }

// Params returns nil: the critics train themselves.
func (e *QAdvantage) Params() []*nn.Param { return nil }

// varianceOf returns the unbiased variance of xs, 0 for fewer than two.
func varianceOf(xs []float64) float64 {
	if len(xs) < 2 {
		return 0
	}
	m := meanOf(xs)
	v := 0.0
	for _, x := range xs {
		v += (x - m) * (x - m)
	}
	return v / float64(len(xs)-1)
}

// addOrNil returns a + b, or b when a is nil.
func addOrNil(a, b *ad.Tensor) *ad.Tensor {
	if a == nil {
		return b
	}
	return ad.Add(a, b)
}
