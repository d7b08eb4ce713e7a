package infer

import (
	"errors"
	"fmt"
	"math"
	"sync"

	"github.com/backpropq/backpropq/ad"
	"github.com/backpropq/backpropq/q"
)

// QMode selects how [BackpropQ] turns its critics into a learning signal.
type QMode uint8

const (
	// QLocal uses the learned total local cost Q_X of the site as its cost
	// (paper eq. 1 with the learned Q in place of the true one, appendix
	// 5.8 (1)): the term is log p(x) · stopgrad(Q_X - b), with b the
	// optional [Baseline]. Exact Q-functions make it unbiased (Theorem 1);
	// learned ones leave a bias that shrinks with their error.
	QLocal QMode = iota
	// QControlVariate uses the actual return R (the Rao-Blackwellized
	// signal) with c = a·Q_X + b as a control variate, so that the
	// estimate is unbiased whatever the critics' error. It has two forms.
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
	// H(z), z~ a second one drawn from p(z | b), and Q_X(z) the site's
	// critics evaluated with the site's value replaced by its relaxation
	// σ(z/λ) (softmax(z/λ) for a categorical site) at temperature
	// [BackpropQ].Temperature, the rest of the scope fixed. The last two
	// terms are differentiated through z and z~ only (as [RELAX] does): the
	// gradient reaches the site's distribution parameters and, through
	// them, the guide, never the critics' weights. It serves sites of any
	// width whose distribution is relaxable (Bernoulli, Categorical,
	// OneHotCategorical) and whose critics are [q.Differentiable] (Linear
	// and MLP critics, not Tabular ones). The relaxed form is used when
	// [BackpropQ].Relaxed is set, and otherwise for Bernoulli sites wider
	// than 12 columns, which cannot be enumerated.
	//
	// In both forms a and b minimize the variance of R - c, fitted from past
	// steps by running least squares of R on the critic value the signal
	// subtracts (Q_X(x), or Q_X(z~) in the relaxed form). The network must
	// not inline costs.
	QControlVariate
	// QAdvantage uses the advantage signal of [q.Advantages] (appendix 4.4).
	QAdvantage
)

// String returns the mode's name.
func (m QMode) String() string {
	switch m {
	case QLocal:
		return "local"
	case QControlVariate:
		return "control-variate"
	case QAdvantage:
		return "advantage"
	}
	return fmt.Sprintf("QMode(%d)", uint8(m))
}

// BackpropQ is the Backprop-Q estimator (paper section 3, Algorithm 1):
// critics learned backward through the graph (package q) give each
// stochastic site a learning signal, in one of the modes of [QMode].
//
// The critics are evaluated once per trace, in the estimator's per-trace
// phase ([TraceEstimator]), before any of its sites' terms, and trained
// (q.Set.Apply with TD) in the phase's commit, so a step that fails
// changes no critic. One network serves every trace of one shape (Cache).
//
// Diagnostics: [BackpropQ.TDError] and [BackpropQ.Stats] give each site's
// critic TD error and signal variances of the last committed step, and
// [SVI] reports them per step in [SiteMetrics] (TDError, and ReturnVar, the
// plain REINFORCE signal's variance, with [SVI].ReturnVariance).
//
// Its [Critics] (the embedded field) hold the critics, the network cache
// and the TD configuration; several BackpropQ in different modes may share
// one Critics to serve different sites of one trace, which train the
// critics once per trace. Create it with [NewBackpropQ], or with Critics
// from [NewCritics]. A BackpropQ is safe for concurrent use (the chunks of
// an [SVI] step).
type BackpropQ struct {
	Mode QMode
	// Critics are the critics and their training, shared by every
	// BackpropQ that holds them; required.
	*Critics
	// ValueBaseline, in mode QLocal, subtracts from Q_X(x) its expectation
	// over the site's own value at each row, V = Σ_x' p(x') Q_X(x'), with
	// the rest of the scope fixed: the advantage Q_X - V, a baseline that
	// does not depend on x. It needs the discrete sites and networks of
	// QControlVariate; a site whose critics are first seen in the step
	// goes without it.
	ValueBaseline bool
	// Baseline, in mode QLocal, is subtracted from Q_X (after
	// ValueBaseline, if set).
	Baseline Baseline
	// FromErrors, in mode QAdvantage, uses the lambda-return errors (see
	// q.Advantages).
	FromErrors bool
	// Decay is the decay of the running moments that fit a and b in mode
	// QControlVariate, in [0, 1); zero means 0.95.
	Decay float64
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
	// Relaxed, in mode QControlVariate, uses the relaxed form for every
	// site instead of enumerating the site's values where that is possible
	// (see [QControlVariate]).
	Relaxed bool
	// Temperature is the temperature λ of the relaxed form of mode
	// QControlVariate; zero means 0.5.
	Temperature float64

	// mu guards the per-site state below.
	mu        sync.Mutex
	moments   map[string]cvMoments
	norm      map[string]nvilStats
	signalVar map[string][2]float64
}

// NewBackpropQ returns a BackpropQ in the given mode with critics
// configured by cfg and TD updates td.
func NewBackpropQ(mode QMode, cfg q.Config, td q.TD) *BackpropQ {
	return &BackpropQ{Mode: mode, Critics: NewCritics(cfg, td)}
}

// Unbiased reports true in mode QControlVariate; the other modes are
// unbiased only with exact critics.
func (e *BackpropQ) Unbiased() bool { return e.Mode == QControlVariate }

// TracePhase returns e's Critics: they are evaluated and trained once per
// trace, for every site of every BackpropQ that holds them.
func (e *BackpropQ) TracePhase() TracePhase { return e.Critics }

// modeTerm is what a mode contributes to a site's term: the learning
// signal [B x 1] that multiplies the log-probability, a correction added
// per row before masking (extra, [B x 1]) or after it (post, [1 x 1]),
// and the commit of the mode's state.
type modeTerm struct {
	signal, extra, post *ad.Tensor
	commit              func()
}

// Surrogate returns the site's term; see [BackpropQ] and [QMode]. Its
// Signal is the learning signal after the critics (and baseline).
func (e *BackpropQ) Surrogate(sc *SiteContext) (Term, error) {
	s := sc.Site
	if s.LogProb == nil {
		return Term{}, errors.New("BackpropQ: the site has no log-probability (its value was substituted)")
	}
	ev, ok := sc.Shared.(*qEval)
	if !ok {
		return Term{}, errors.New("BackpropQ: the critics were not evaluated on the trace (its per-trace phase did not run: use BuildSurrogate)")
	}
	var mt modeTerm
	var err error
	switch e.Mode {
	case QLocal:
		mt, err = e.local(sc, ev)
	case QAdvantage:
		mt, err = e.advantage(sc, ev)
	case QControlVariate:
		mt, err = e.controlVariate(sc, ev)
	default:
		err = fmt.Errorf("BackpropQ: unknown mode %v", e.Mode)
	}
	if err != nil {
		return Term{}, err
	}
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
	if e.Normalize {
		loss = e.normalized(s.Addr, loss)
	}
	addr, sig := s.Addr, mt.signal.Data()
	sigVar, retVar := varianceOf(sig), varianceOf(sc.Signal.Data())
	commit := func() {
		if mt.commit != nil {
			mt.commit()
		}
		e.mu.Lock()
		defer e.mu.Unlock()
		if e.Normalize {
			if e.norm == nil {
				e.norm = map[string]nvilStats{}
			}
			old, ok := e.norm[addr]
			e.norm[addr] = old.update(ok, sig, 0.9)
		}
		if e.signalVar == nil {
			e.signalVar = map[string][2]float64{}
		}
		e.signalVar[addr] = [2]float64{sigVar, retVar}
	}
	return Term{Loss: loss, Commit: commit, Signal: mt.signal}, nil
}

// normalized divides loss by the running standard deviation of the site's
// learning signal over the steps before this one, when it exceeds 1.
func (e *BackpropQ) normalized(addr string, loss *ad.Tensor) *ad.Tensor {
	e.mu.Lock()
	st, seen := e.norm[addr]
	e.mu.Unlock()
	if seen && st.variance > 1 {
		return ad.Scale(loss, 1/math.Sqrt(st.variance))
	}
	return loss
}

// local is mode QLocal: the site's total local cost Q_X, less its value
// baseline and its Baseline when set.
func (e *BackpropQ) local(sc *SiteContext, ev *qEval) (modeTerm, error) {
	s := sc.Site
	rows := s.LogProb.Rows()
	local := ev.vals.Local(ev.net, s.Addr)
	if local == nil {
		local = make([]float64, rows)
	}
	if e.ValueBaseline && e.known(ev, s.Addr) {
		v, err := e.expectedQ(sc, ev)
		if err != nil {
			return modeTerm{}, err
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
		var err error
		mt.signal, mt.extra, mt.commit, err = e.Baseline.Center(sc, mt.signal)
		if err != nil {
			return modeTerm{}, fmt.Errorf("BackpropQ: %w", err)
		}
	}
	return mt, nil
}

// advantage is mode QAdvantage: the site's advantage signal.
func (e *BackpropQ) advantage(sc *SiteContext, ev *qEval) (modeTerm, error) {
	s := sc.Site
	advs, err := ev.advantages(e.TD, e.FromErrors)
	if err != nil {
		return modeTerm{}, err
	}
	adv := advs[s.Addr]
	if adv == nil {
		adv = make([]float64, s.LogProb.Rows())
	}
	return modeTerm{signal: s.LogProb.Tape().FromData(s.LogProb.Rows(), 1, adv)}, nil
}

// QSiteStats are the per-site diagnostics of the last committed step of a
// [BackpropQ].
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

// Stats returns the diagnostics of the site at addr from the last
// committed step (of the last chunk, in a chunked step), and whether there
// are any.
func (e *BackpropQ) Stats(addr string) (QSiteStats, bool) {
	td, _ := e.TDError(addr)
	e.mu.Lock()
	defer e.mu.Unlock()
	v, ok := e.signalVar[addr]
	if !ok {
		return QSiteStats{}, false
	}
	return QSiteStats{TDError: td, SignalVar: v[0], ReturnVar: v[1]}, true
}

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
