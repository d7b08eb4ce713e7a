package infer

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"sync"

	"gonum.org/v1/gonum/mat"

	"github.com/backpropq/backpropq/ad"
	"github.com/backpropq/backpropq/internal/ckpt"
	"github.com/backpropq/backpropq/nn"
	"github.com/backpropq/backpropq/ppl"
	"github.com/backpropq/backpropq/ppl/dist"
	"github.com/backpropq/backpropq/q"
	"github.com/backpropq/backpropq/trace"
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
// Create it with [NewBackpropQ], or fill Critics (and optionally Cache)
// yourself. A BackpropQ is safe for concurrent use (the chunks of an
// [SVI] step): it serializes its use of the critics.
type BackpropQ struct {
	Mode QMode
	// Critics holds the critics; required.
	Critics *q.Set
	// Cache builds the networks; nil uses a cache with zero options
	// (one Q-node per site and cost, no inlined costs).
	Cache *q.Cache
	// TD configures the critics' updates.
	TD q.TD
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

	mu        sync.Mutex
	cache     q.Cache
	moments   map[string]cvMoments
	norm      map[string]nvilStats
	skipped   int
	skipErr   error
	tdErr     map[string]float64
	signalVar map[string][2]float64
}

// qEval is the critics' evaluation on one trace.
type qEval struct {
	net  *q.Network
	vals *q.Values
	adv  map[string][]float64
}

// cvMoments are running moments of the return R and the critic's value Q
// of one site: means of R, Q, R·Q and Q².
type cvMoments struct {
	r, q, rq, qq float64
}

// coefficients returns a = Cov(R, Q)/Var(Q) and b = E[R] - a·E[Q].
func (m cvMoments) coefficients() (a, b float64) {
	v := m.qq - m.q*m.q
	if v > 1e-12 {
		a = (m.rq - m.r*m.q) / v
	}
	return a, m.r - a*m.q
}

// NewBackpropQ returns a BackpropQ in the given mode with critics
// configured by cfg and TD updates td.
func NewBackpropQ(mode QMode, cfg q.Config, td q.TD) *BackpropQ {
	return &BackpropQ{Mode: mode, Critics: q.NewSet(cfg), TD: td}
}

// Unbiased reports true in mode QControlVariate; the other modes are
// unbiased only with exact critics.
func (e *BackpropQ) Unbiased() bool { return e.Mode == QControlVariate }

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
	tp := s.LogProb.Tape()
	rows := s.LogProb.Rows()
	var err error
	commit := func() {}
	var signal, extra, post *ad.Tensor
	switch e.Mode {
	case QLocal:
		local := ev.vals.Local(ev.net, s.Addr)
		if local == nil {
			local = make([]float64, rows)
		}
		if e.ValueBaseline && local != nil && e.knownCritics(ev, s.Addr) {
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
		signal = tp.FromData(rows, 1, local)
		if e.Baseline != nil {
			var bcommit func()
			signal, extra, bcommit, err = e.Baseline.Center(sc, signal)
			if err != nil {
				return Term{}, fmt.Errorf("BackpropQ: %w", err)
			}
			if bcommit != nil {
				c := commit
				commit = func() { c(); bcommit() }
			}
		}
	case QAdvantage:
		adv := ev.adv[s.Addr]
		if adv == nil {
			adv = make([]float64, rows)
		}
		signal = tp.FromData(rows, 1, adv)
	case QControlVariate:
		var cvCommit func()
		signal, extra, post, cvCommit, err = e.controlVariate(sc, ev)
		if err != nil {
			return Term{}, err
		}
		c := commit
		commit = func() { c(); cvCommit() }
	default:
		return Term{}, fmt.Errorf("BackpropQ: unknown mode %v", e.Mode)
	}
	loss := ad.Mul(s.LogProb, ad.StopGradient(signal))
	if extra != nil {
		loss = ad.Add(loss, extra)
	}
	if s.Mask != nil {
		loss = ad.Where(s.Mask, loss, tp.Scalar(0))
	}
	if post != nil {
		loss = ad.Add(ad.Sum(loss), post)
	}
	if e.Normalize {
		e.mu.Lock()
		st, seen := e.norm[s.Addr]
		e.mu.Unlock()
		if seen && st.variance > 1 {
			loss = ad.Scale(loss, 1/math.Sqrt(st.variance))
		}
		addr, sig := s.Addr, signal.Data()
		c := commit
		commit = func() {
			c()
			e.mu.Lock()
			defer e.mu.Unlock()
			if e.norm == nil {
				e.norm = map[string]nvilStats{}
			}
			old, ok := e.norm[addr]
			e.norm[addr] = old.update(ok, sig, 0.9)
		}
	}
	sigVar, retVar := varianceOf(signal.Data()), varianceOf(sc.Signal.Data())
	addr := s.Addr
	inner := commit
	commit = func() {
		inner()
		e.mu.Lock()
		defer e.mu.Unlock()
		if e.signalVar == nil {
			e.signalVar = map[string][2]float64{}
		}
		e.signalVar[addr] = [2]float64{sigVar, retVar}
	}
	return Term{Loss: loss, Commit: commit, Signal: signal}, nil
}

// TracePhase returns e: its critics are evaluated and trained once per
// trace, for every site it serves.
func (e *BackpropQ) TracePhase() TracePhase { return e }

// BeginTrace evaluates the critics on the trace; the commit trains them
// (q.Set.Apply) and returns the served sites' TD errors and returns.
func (e *BackpropQ) BeginTrace(tc *TraceContext) (TraceState, error) {
	if e.Critics == nil {
		return TraceState{}, errors.New("BackpropQ: no critics (use NewBackpropQ)")
	}
	ev, err := e.evaluate(tc.Trace, tc.Graph)
	if err != nil {
		return TraceState{}, err
	}
	diags := make([]SiteDiagnostics, len(tc.Sites))
	for i, sc := range tc.Sites {
		diags[i] = SiteDiagnostics{Addr: sc.Site.Addr, Return: append([]float64(nil), sc.Signal.Data()...)}
	}
	commit := func() []SiteDiagnostics {
		e.apply(ev, diags)
		return diags
	}
	return TraceState{Shared: ev, Commit: commit}, nil
}

// evaluate returns the critics' evaluation on tr.
func (e *BackpropQ) evaluate(tr *trace.Trace, g *trace.Graph) (*qEval, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	cache := e.Cache
	if cache == nil {
		cache = &e.cache
	}
	net, err := cache.Network(g)
	if err != nil {
		return nil, fmt.Errorf("BackpropQ: %w", err)
	}
	vals, err := e.Critics.Evaluate(net, tr)
	if err != nil {
		return nil, fmt.Errorf("BackpropQ: %w", err)
	}
	ev := &qEval{net: net, vals: vals}
	if e.Mode == QAdvantage {
		if ev.adv, err = q.Advantages(net, vals, e.TD, e.FromErrors); err != nil {
			return nil, fmt.Errorf("BackpropQ: %w", err)
		}
	}
	return ev, nil
}

// apply trains the critics on ev and records the sites' TD errors, in
// e and in diags.
func (e *BackpropQ) apply(ev *qEval, diags []SiteDiagnostics) {
	e.mu.Lock()
	defer e.mu.Unlock()
	st, err := e.Critics.Apply(ev.net, ev.vals, e.TD)
	if err != nil {
		// Apply changes nothing on error (a non-finite cost or critic); the
		// step itself already succeeded, so the critics skip this trace,
		// and SkippedUpdates says so.
		e.skipped++
		e.skipErr = err
		return
	}
	if e.tdErr == nil {
		e.tdErr = map[string]float64{}
	}
	sum, cnt := map[string]float64{}, map[string]int{}
	for i, nd := range ev.net.Nodes {
		sum[nd.Site] += st.MSE[i]
		cnt[nd.Site]++
	}
	for a, v := range sum {
		e.tdErr[a] = v / float64(cnt[a])
	}
	for i, d := range diags {
		if v, ok := e.tdErr[d.Addr]; ok && cnt[d.Addr] > 0 {
			diags[i].TDError, diags[i].HasTDError = v, true
		}
	}
}

// TDError returns the mean over the Q-nodes of the site at addr of their
// mean squared lambda-return (TD) error before the last update of the
// critics, and whether the site has been trained.
func (e *BackpropQ) TDError(addr string) (float64, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	v, ok := e.tdErr[addr]
	return v, ok
}

// SkippedUpdates returns how many critic updates were skipped because
// q.Set.Apply failed after a step had succeeded (a non-finite critic value
// or target, say), and the last such error. A critic that stops learning
// thus shows here rather than going unnoticed.
func (e *BackpropQ) SkippedUpdates() (int, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.skipped, e.skipErr
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
	e.mu.Lock()
	defer e.mu.Unlock()
	v, ok := e.signalVar[addr]
	if !ok {
		return QSiteStats{}, false
	}
	return QSiteStats{TDError: e.tdErr[addr], SignalVar: v[0], ReturnVar: v[1]}, true
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

// Coefficients returns the a and b of the control variate of the site at
// addr (mode QControlVariate) that the next step will use; a is zero
// before the first step.
func (e *BackpropQ) Coefficients(addr string) (a, b float64) {
	e.mu.Lock()
	defer e.mu.Unlock()
	m, ok := e.moments[addr]
	if !ok {
		return 0, 0
	}
	return m.coefficients()
}

// maxEnumBits bounds the columns of a Bernoulli site whose values mode
// QControlVariate enumerates.
const maxEnumBits = 12

// controlVariate returns the centered signal R - a·Q - b, the correction
// term of the enumerated form ([B x 1], extra) or of the relaxed form
// ([1 x 1], post, already masked), and the commit of the running moments.
func (e *BackpropQ) controlVariate(sc *SiteContext, ev *qEval) (signal, extra, post *ad.Tensor, commit func(), err error) {
	s := sc.Site
	tp := s.LogProb.Tape()
	rows := s.LogProb.Rows()
	r := sc.Signal.Data()
	for _, ref := range ev.net.Local(s.Addr) {
		if ref.IsCost() {
			return nil, nil, nil, nil, fmt.Errorf("BackpropQ: control variate: site %q: the network inlines cost %q; use a Cache without InlineCosts", s.Addr, ref.Cost)
		}
	}
	decay := e.Decay
	if decay == 0 {
		decay = 0.95
	}
	if !(decay > 0 && decay < 1) {
		return nil, nil, nil, nil, fmt.Errorf("BackpropQ: decay must be in [0, 1), got %v", e.Decay)
	}
	var rc *relaxedQ
	local := make([]float64, rows)
	if e.relaxedForm(s) {
		if rc, err = e.relaxedCritics(sc, ev); err != nil {
			return nil, nil, nil, nil, err
		}
		if rc.czt != nil {
			copy(local, rc.czt.Data())
		}
	} else {
		for _, ref := range ev.net.Local(s.Addr) {
			for i, v := range ev.vals.Q[ref.Node] {
				local[i] += v
			}
		}
	}
	e.mu.Lock()
	m, seen := e.moments[s.Addr]
	e.mu.Unlock()
	a, b := 0.0, 0.0
	if seen {
		a, b = m.coefficients()
	}
	// A critic first seen in this step is not in the set yet; it gets
	// a = 0 (plain REINFORCE with baseline b) until it is.
	if !e.knownCritics(ev, s.Addr) {
		a = 0
	}
	centered := make([]float64, rows)
	for i := range centered {
		centered[i] = r[i] - a*local[i] - b
	}
	signal = tp.FromData(rows, 1, centered)
	if a != 0 {
		if rc != nil {
			post = rc.correction(s, a)
		} else {
			extra, err = e.expectedQ(sc, ev)
			if err != nil {
				return nil, nil, nil, nil, err
			}
			if extra != nil {
				extra = ad.Scale(extra, a)
			}
		}
	}
	var cur cvMoments
	for i := 0; i < rows; i++ {
		cur.r += r[i]
		cur.q += local[i]
		cur.rq += r[i] * local[i]
		cur.qq += local[i] * local[i]
	}
	n := float64(rows)
	cur = cvMoments{cur.r / n, cur.q / n, cur.rq / n, cur.qq / n}
	addr := s.Addr
	commit = func() {
		e.mu.Lock()
		defer e.mu.Unlock()
		if e.moments == nil {
			e.moments = map[string]cvMoments{}
		}
		old, ok := e.moments[addr]
		if ok {
			cur = cvMoments{
				decay*old.r + (1-decay)*cur.r,
				decay*old.q + (1-decay)*cur.q,
				decay*old.rq + (1-decay)*cur.rq,
				decay*old.qq + (1-decay)*cur.qq,
			}
		}
		e.moments[addr] = cur
	}
	return signal, extra, post, commit, nil
}

// relaxedForm reports whether mode QControlVariate uses the relaxed form
// for site s: always with Relaxed, otherwise for a Bernoulli site too wide
// to enumerate.
func (e *BackpropQ) relaxedForm(s *ppl.Site) bool {
	if e.Relaxed {
		return true
	}
	switch s.Dist.(type) {
	case dist.Bernoulli, *dist.Bernoulli:
		return s.Value.Cols() > maxEnumBits
	}
	return false
}

// relaxedQ holds the site's critics evaluated at the two relaxed samples of
// the relaxed control variate.
type relaxedQ struct {
	rx relaxation
	// cz and czt are Σ Q_X(soft(z)) and Σ Q_X(soft(z~)) over the site's
	// Q-nodes, [B x 1], nil when the site reaches no cost.
	cz, czt *ad.Tensor
}

// relaxedCritics draws z (with the unconditional reparameterization's
// gradient path) and z~ ~ p(z | b) for the site's value b and evaluates
// the site's critics at their relaxations on the site's tape.
func (e *BackpropQ) relaxedCritics(sc *SiteContext, ev *qEval) (*relaxedQ, error) {
	s := sc.Site
	rx, err := newRelaxation(s.Dist)
	if err != nil {
		return nil, fmt.Errorf("BackpropQ: control variate: site %q: relaxed form: %w", s.Addr, err)
	}
	temp := e.Temperature
	if temp == 0 {
		temp = 0.5
	}
	if !(temp > 0) || math.IsInf(temp, 0) {
		return nil, fmt.Errorf("BackpropQ: control variate: site %q: temperature must be > 0 and finite, got %v", s.Addr, e.Temperature)
	}
	tp := s.LogProb.Tape()
	z := rx.reparam(rx.d.ConditionalRelaxedSample(s.Value, sc.Rand))
	zt := rx.d.ConditionalRelaxedSample(s.Value, sc.Rand)
	tt := tp.Scalar(temp)
	refs := ev.net.Local(s.Addr)
	critics := func(zz *ad.Tensor) (*ad.Tensor, error) {
		vals := map[string]*ad.Tensor{s.Addr: rx.soft(zz, tt)}
		e.mu.Lock()
		defer e.mu.Unlock()
		var total *ad.Tensor
		for _, ref := range refs {
			qv, err := ev.vals.Forward(ev.net, sc.Trace, ref.Node, vals)
			if err != nil {
				return nil, fmt.Errorf("BackpropQ: control variate: site %q: relaxed form: %w", s.Addr, err)
			}
			total = addOrNil(total, qv)
		}
		return total, nil
	}
	rc := &relaxedQ{rx: rx}
	if rc.cz, err = critics(z); err != nil {
		return nil, err
	}
	if rc.czt, err = critics(zt); err != nil {
		return nil, err
	}
	return rc, nil
}

// correction returns the relaxed form's pathwise term a·Σ(Q_X(z) -
// Q_X(z~)) over the rows the site's mask keeps, as a [1 x 1] loss whose
// gradient reaches the site's distribution parameter (and what it is
// computed from) and nothing else: not the critics' weights, nor the other
// scope values.
func (rc *relaxedQ) correction(s *ppl.Site, a float64) *ad.Tensor {
	if rc.cz == nil {
		return nil
	}
	diff := ad.Sum(rowMask(s, ad.Scale(ad.Sub(rc.cz, rc.czt), a)))
	g := diff.Tape().Gradients(diff, rc.rx.param)[0]
	return linearTerm(rc.rx.param, g)
}

// expectedQ returns Σ_x' p(x') stopgrad(Q(x')), [B x 1], summing over
// the values x' of the site at each row with the other scope values fixed;
// nil when the critics do not read the site's value (Q(x') = Q(x)).
func (e *BackpropQ) expectedQ(sc *SiteContext, ev *qEval) (*ad.Tensor, error) {
	s := sc.Site
	tp := s.LogProb.Tape()
	rows := s.LogProb.Rows()
	refs := ev.net.Local(s.Addr)
	// Find the site's columns in each critic's input.
	type nodeCols struct {
		critic q.Critic
		x      *mat.Dense
		from   int
		field  q.Field
		found  bool
	}
	nodes := make([]nodeCols, len(refs))
	var kind q.FieldKind
	width := 0
	for j, ref := range refs {
		nd := ev.net.Nodes[ref.Node]
		c := e.Critics.Critic(e.Critics.Key(nd))
		nodes[j] = nodeCols{critic: c, x: mat.DenseCopyOf(ev.vals.Inputs(ref.Node))}
		name := e.Critics.FieldName(nd, s.Addr) // a template's critic names it relatively
		col := 0
		for _, f := range c.Layout().Fields {
			if f.Addr == name && (f.Kind == q.Binary || f.Kind == q.OneHot) {
				nodes[j].from, nodes[j].field, nodes[j].found = col, f, true
				kind, width = f.Kind, f.Width
				break
			}
			col += f.Width
		}
	}
	var alts [][]float64 // per alternative: the site's columns in the critic input
	var values [][]float64
	switch kind {
	case 0:
		// The critics do not read the site's value: Q(x') = Q(x) for every
		// x', and the correction a·Q·∇Σp(x') is zero.
		return nil, nil
	case q.Binary:
		if width > maxEnumBits {
			return nil, fmt.Errorf("BackpropQ: control variate: site %q has %d columns, at most %d are enumerated", s.Addr, width, maxEnumBits)
		}
		for k := 0; k < 1<<width; k++ {
			bits := make([]float64, width)
			for c := range bits {
				bits[c] = float64(k >> c & 1)
			}
			alts = append(alts, bits)
			values = append(values, bits)
		}
	case q.OneHot:
		for k := 0; k < width; k++ {
			oh := make([]float64, width)
			oh[k] = 1
			alts = append(alts, oh)
			if s.Value.Cols() == 1 {
				values = append(values, []float64{float64(k)})
			} else {
				values = append(values, oh)
			}
		}
	}
	// qs[k] is the sum of the critics at alternative k, per row.
	qs := make([][]float64, len(alts))
	preds := make([][]float64, len(alts))
	for k := range alts {
		qs[k] = make([]float64, rows)
		preds[k] = make([]float64, rows)
	}
	// A Net critic's Predict uses its own tape: chunks take turns.
	e.mu.Lock()
	for _, nd := range nodes {
		switch vp, ok := nd.critic.(q.VariantPredictor); {
		case !nd.found:
			nd.critic.Predict(nd.x, preds[0])
			for k := 1; k < len(alts); k++ {
				copy(preds[k], preds[0])
			}
		case ok:
			vp.PredictVariants(nd.x, nd.from, alts, preds)
		default:
			for k, alt := range alts {
				for i := 0; i < rows; i++ {
					copy(nd.x.RawRowView(i)[nd.from:], alt)
				}
				nd.critic.Predict(nd.x, preds[k])
			}
		}
		for k := range alts {
			for i, v := range preds[k] {
				qs[k][i] += v
			}
		}
	}
	e.mu.Unlock()
	var total *ad.Tensor
	for k := range alts {
		v := values[k]
		val := tp.FromData(1, len(v), v)
		if rows > 1 {
			val = ad.Add(tp.Zeros(rows, len(v)), val)
		}
		p := ad.Exp(s.Dist.LogProb(val))
		term := ad.Mul(p, tp.FromData(rows, 1, qs[k]))
		total = addOrNil(total, term)
	}
	return total, nil
}

// knownCritics reports whether every critic of the site's total local cost
// is in the set already (a critic first seen in this step is not).
func (e *BackpropQ) knownCritics(ev *qEval, addr string) bool {
	for _, ref := range ev.net.Local(addr) {
		if ref.IsCost() || e.Critics.Critic(e.Critics.Key(ev.net.Nodes[ref.Node])) == nil {
			return false
		}
	}
	return true
}

// addOrNil returns a + b, or b when a is nil.
func addOrNil(a, b *ad.Tensor) *ad.Tensor {
	if a == nil {
		return b
	}
	return ad.Add(a, b)
}

// Params returns the baseline's parameters (mode QLocal); the critics
// train themselves.
func (e *BackpropQ) Params() []*nn.Param { return baselineParams(e.Baseline) }

// MarshalState returns the critics, the control variate's moments and the
// baseline's state.
func (e *BackpropQ) MarshalState() ([]byte, error) {
	crit, err := e.Critics.MarshalState()
	if err != nil {
		return nil, fmt.Errorf("infer: BackpropQ: %w", err)
	}
	base, err := baselineState(e.Baseline)
	if err != nil {
		return nil, fmt.Errorf("infer: BackpropQ: %w", err)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	var enc ckpt.Encoder
	enc.String(string(crit))
	enc.String(string(base))
	addrs := sortedKeys(e.moments)
	enc.Uint32(uint32(len(addrs)))
	for _, a := range addrs {
		m := e.moments[a]
		enc.String(a)
		enc.Float64s([]float64{m.r, m.q, m.rq, m.qq})
	}
	// The normalization statistics come last; a state written before
	// Normalize existed ends here.
	norms := sortedKeys(e.norm)
	enc.Uint32(uint32(len(norms)))
	for _, a := range norms {
		st := e.norm[a]
		enc.String(a)
		enc.Float64s([]float64{st.mean, st.variance})
	}
	return enc.Bytes(), nil
}

// UnmarshalState restores what MarshalState returned; on error nothing
// changes.
func (e *BackpropQ) UnmarshalState(data []byte) error {
	d := ckpt.NewDecoder("BackpropQ", data)
	crit := []byte(d.String())
	base := []byte(d.String())
	nb := len(base)
	cnt := d.Count(36)
	moments := make(map[string]cvMoments, cnt)
	for i := 0; i < cnt && d.Err() == nil; i++ {
		a := d.String()
		v := d.Float64s(4)
		if d.Err() == nil {
			moments[a] = cvMoments{v[0], v[1], v[2], v[3]}
		}
	}
	norm := map[string]nvilStats{}
	if d.Err() == nil && d.Remaining() > 0 {
		cnt := d.Count(20)
		for i := 0; i < cnt && d.Err() == nil; i++ {
			a := d.String()
			v := d.Float64s(2)
			if d.Err() == nil {
				norm[a] = nvilStats{mean: v[0], variance: v[1]}
			}
		}
	}
	if err := d.Finish(); err != nil {
		return fmt.Errorf("infer: %w", err)
	}
	m, hasBase := e.Baseline.(stateMarshaler)
	if !hasBase && nb != 0 {
		return errors.New("infer: BackpropQ: baseline state given to an estimator without a stateful baseline")
	}
	// Check the critics on a scratch set first, so nothing changes on error.
	scratch := q.NewSet(e.Critics.Config())
	if err := scratch.UnmarshalState(crit); err != nil {
		return fmt.Errorf("infer: BackpropQ: %w", err)
	}
	if hasBase {
		if err := m.UnmarshalState(base); err != nil {
			return fmt.Errorf("infer: BackpropQ: %w", err)
		}
	}
	if err := e.Critics.UnmarshalState(crit); err != nil {
		return fmt.Errorf("infer: BackpropQ: %w", err)
	}
	e.mu.Lock()
	e.moments, e.norm = moments, norm
	e.mu.Unlock()
	return nil
}

// sortedKeys returns the keys of m, sorted.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
