package infer

import (
	"errors"
	"fmt"
	"math"
	"sync"

	"gonum.org/v1/gonum/floats"
	"gonum.org/v1/gonum/mat"

	"github.com/backpropq/backpropq/ad"
	"github.com/backpropq/backpropq/nn"
	"github.com/backpropq/backpropq/ppl"
	"github.com/backpropq/backpropq/ppl/dist"
	"github.com/backpropq/backpropq/trace"
)

// PPO is the clipped surrogate of proximal policy optimization (Schulman
// et al. 2017; paper appendix 4.5, eq. 17) on the score-function learning
// signal: with Q the site's centered learning signal (a cost: the
// Rao-Blackwellized [SiteContext].Signal minus the optional Baseline's
// value) and r = p_θ(x | parents) / p_old(x | parents) the probability
// ratio of the site's value under the current and the old policy, the
// site's term is
//
//	max(r·Q, clip(r, 1-ε, 1+ε)·Q)
//
// (eq. 17 with costs in place of rewards, so min becomes max): the gradient
// is r·Q·∇ log p_θ(x) while r stays within [1-ε, 1+ε] or moving it further
// would not lower the cost, and zero otherwise.
//
// The old policy's log-probabilities come from Old, a [PolicySnapshot] of
// the run that drew the values: to take several clipped steps on one batch,
// the training loop replays the batch's values in every step
// (trace.ReplayValues) and records the trace that drew them in Old first.
// A site Old does not hold (or a nil Old) takes its own current
// log-probability as the old one, r = 1: the term is then exactly the
// [ScoreFunction] term, unbiased, as on the first epoch of PPO. With r ≠ 1
// the clipped step is biased by design (Unbiased reports false).
//
// PPO is a [Stateful] estimator whose state is its Baseline's, so a
// checkpoint saves a moving-average or NVIL baseline with the model. A PPO
// is safe for concurrent use when its Baseline and Old are.
type PPO struct {
	// Clip is ε; 0 means 0.2.
	Clip float64
	// Baseline, when not nil, centers the learning signal.
	Baseline Baseline
	// Old holds the old policy's log-probabilities; may be nil.
	Old *PolicySnapshot
}

// Unbiased returns false: away from the old policy the clipped term is
// not an unbiased gradient estimate (see [PPO]).
func (PPO) Unbiased() bool { return false }

// Surrogate returns the clipped term.
func (e PPO) Surrogate(sc *SiteContext) (Term, error) {
	s := sc.Site
	if s.LogProb == nil {
		return Term{}, errors.New("PPO: the site has no log-probability (its value was substituted)")
	}
	eps := e.Clip
	if eps == 0 {
		eps = 0.2
	}
	if !(eps > 0 && eps < 1) {
		return Term{}, fmt.Errorf("PPO: clip must be in (0, 1), got %v", eps)
	}
	signal := sc.Signal
	var extra *ad.Tensor
	var commit func()
	if e.Baseline != nil {
		var err error
		signal, extra, commit, err = e.Baseline.Center(sc, signal)
		if err != nil {
			return Term{}, fmt.Errorf("PPO: %w", err)
		}
	}
	tp := s.LogProb.Tape()
	rows := s.LogProb.Rows()
	old := ad.StopGradient(s.LogProb)
	if e.Old != nil {
		if v, ok := e.Old.LogProb(s.Addr); ok {
			if len(v) != rows {
				return Term{}, fmt.Errorf("PPO: the old policy's snapshot has %d rows, the site %d", len(v), rows)
			}
			old = tp.FromData(rows, 1, v)
		}
	}
	q := ad.StopGradient(signal)
	ratio := ad.Exp(ad.Sub(s.LogProb, old))
	unclipped := ad.Mul(ratio, q)
	clipped := ad.Mul(ad.Clamp(ratio, 1-eps, 1+eps), q)
	pick := make([]float64, rows)
	for i := range pick {
		if unclipped.Data()[i] >= clipped.Data()[i] {
			pick[i] = 1
		}
	}
	loss := ad.Where(tp.FromData(rows, 1, pick), unclipped, clipped)
	loss = rowMask(s, loss)
	if extra != nil {
		loss = ad.Add(loss, extra)
	}
	return Term{Loss: loss, Commit: commit, Signal: q}, nil
}

// Params returns the baseline's trainable parameters, if it has any
// beyond those it keeps in the training run's store.
func (e PPO) Params() []*nn.Param { return baselineParams(e.Baseline) }

// MarshalState returns the baseline's running state, empty when it has
// none. The snapshot Old is not part of it: it belongs to a batch.
func (e PPO) MarshalState() ([]byte, error) { return baselineState(e.Baseline) }

// UnmarshalState restores what MarshalState returned.
func (e PPO) UnmarshalState(data []byte) error { return setBaselineState("PPO", e.Baseline, data) }

// PolicySnapshot holds the log-probabilities of sample sites' values under
// the policy that drew them, by address, for [PPO]'s probability ratio. It
// is safe for concurrent use.
type PolicySnapshot struct {
	mu   sync.RWMutex
	logp map[string][]float64
}

// Record replaces the snapshot by the log-probabilities of every sample
// site of tr that has one (copied; tr's tape may be reset afterwards).
func (p *PolicySnapshot) Record(tr *trace.Trace) {
	m := map[string][]float64{}
	for _, s := range tr.Sites() {
		if s.Kind == ppl.KindSample && s.LogProb != nil {
			m[s.Addr] = append([]float64(nil), s.LogProb.Data()...)
		}
	}
	p.mu.Lock()
	p.logp = m
	p.mu.Unlock()
}

// LogProb returns the recorded log-probabilities of the site at addr, one
// per row, and whether there are any. The slice must not be modified.
func (p *PolicySnapshot) LogProb(addr string) ([]float64, bool) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	v, ok := p.logp[addr]
	return v, ok
}

// PolicyFunc returns the distribution of a policy (one row per row of the
// batch of actions) whose parameters are the given tensors of tp, in the
// order of the parameters passed to [TRPO.Step]. It must compute the
// distribution from those tensors only, so that gradients reach them.
type PolicyFunc func(tp *ad.Tape, params []*ad.Tensor) (dist.Distribution, error)

// TRPO is a trust-region policy step (Schulman et al. 2015; paper appendix
// 4.5, eq. 16) on a site's distribution: given a batch of actions a_i
// drawn from the current policy p_old and their costs Q_i (a
// Q-function's values or advantages), it minimizes the importance-weighted
// surrogate
//
//	L(θ) = mean_i [ p_θ(a_i) / p_old(a_i) · Q_i ]
//
// subject to mean_i KL(p_θ ‖ p_old) ≤ MaxKL, as TRPO does: the direction
// s solves F s = -∇L by conjugate gradients, where F is the Fisher
// information (the Hessian of the KL at θ_old), the step is scaled so that
// the quadratic model of the KL equals MaxKL, and a backtracking line
// search accepts the first step that lowers L and keeps the exact KL
// within the bound. Package ad has no second derivatives, so each
// Fisher-vector product is a central finite difference of the KL's
// gradient: F v ≈ (∇KL(θ + hv) - ∇KL(θ - hv)) / 2h, plus Damping·v.
//
// The zero value uses MaxKL 0.01, 10 conjugate-gradient iterations, damping
// 1e-3, and a line search of 10 backtracks that shrink the step by 0.8.
type TRPO struct {
	MaxKL      float64
	CGIters    int
	Damping    float64
	Backtracks int
	Shrink     float64
}

// TRPOResult describes a [TRPO.Step].
type TRPOResult struct {
	// Accepted reports that a step was taken; when false the parameters
	// are unchanged.
	Accepted bool
	// Before and After are the surrogate L at the old and new parameters.
	Before, After float64
	// KL is mean_i KL(p_new ‖ p_old) of the step taken.
	KL float64
	// Fraction is the fraction of the full step taken (1, Shrink,
	// Shrink², ...).
	Fraction float64
	// FullKL is the exact KL of the full step, whose quadratic model is
	// MaxKL; the two differ by the KL's third-order terms.
	FullKL float64
}

// Step takes one trust-region step on params, whose values it changes in
// place if the line search succeeds. actions holds one action per row, in
// the encoding of the policy's distribution, and costs one cost per row.
// It returns an error, changing nothing, for an invalid setting, a
// mismatch of rows, a policy error or a non-finite surrogate or gradient.
func (t TRPO) Step(params []*nn.Param, policy PolicyFunc, actions *mat.Dense, costs []float64) (TRPOResult, error) {
	maxKL, iters, damping, backtracks, shrink := t.MaxKL, t.CGIters, t.Damping, t.Backtracks, t.Shrink
	if maxKL == 0 {
		maxKL = 0.01
	}
	if iters == 0 {
		iters = 10
	}
	if damping == 0 {
		damping = 1e-3
	}
	if backtracks == 0 {
		backtracks = 10
	}
	if shrink == 0 {
		shrink = 0.8
	}
	if !(maxKL > 0) || math.IsInf(maxKL, 0) || iters < 0 || damping < 0 || backtracks < 0 || !(shrink > 0 && shrink < 1) {
		return TRPOResult{}, fmt.Errorf("infer: TRPO: invalid settings %+v", t)
	}
	rows, _ := actions.Dims()
	if len(costs) != rows {
		return TRPOResult{}, fmt.Errorf("infer: TRPO: %d actions but %d costs", rows, len(costs))
	}
	theta0 := flattenParams(params)
	tp := ad.NewTape()
	// bind returns the parameters at theta as constants of tp.
	bind := func(theta []float64) []*ad.Tensor {
		ts := make([]*ad.Tensor, len(params))
		off := 0
		for i, p := range params {
			r, c := p.Value.Dims()
			ts[i] = tp.FromData(r, c, theta[off:off+r*c])
			off += r * c
		}
		return ts
	}
	eval := func(theta []float64) (ts []*ad.Tensor, d dist.Distribution, err error) {
		ts = bind(theta)
		d, err = policy(tp, ts)
		if err != nil {
			return nil, nil, fmt.Errorf("infer: TRPO: policy: %w", err)
		}
		return ts, d, nil
	}
	_, oldDist, err := eval(theta0)
	if err != nil {
		return TRPOResult{}, err
	}
	act := tp.Const(actions)
	oldLogp := ad.StopGradient(oldDist.LogProb(act))
	q := tp.FromData(rows, 1, costs)
	surrogate := func(d dist.Distribution) *ad.Tensor {
		return ad.Mean(ad.Mul(ad.Exp(ad.Sub(d.LogProb(act), oldLogp)), q))
	}
	klTo := func(d dist.Distribution) (*ad.Tensor, error) {
		kl, err := dist.KL(d, oldDist)
		if err != nil {
			return nil, fmt.Errorf("infer: TRPO: %w", err)
		}
		return ad.Mean(kl), nil
	}
	// gradAt returns the gradient of the surrogate or the KL at theta.
	gradAt := func(theta []float64, ofKL bool) ([]float64, float64, error) {
		ts, d, err := eval(theta)
		if err != nil {
			return nil, 0, err
		}
		var loss *ad.Tensor
		if ofKL {
			if loss, err = klTo(d); err != nil {
				return nil, 0, err
			}
		} else {
			loss = surrogate(d)
		}
		gs := tp.Gradients(loss, ts...)
		out := make([]float64, 0, len(theta))
		for _, g := range gs {
			out = append(out, g.RawMatrix().Data...)
		}
		return out, loss.Item(), nil
	}
	g, before, err := gradAt(theta0, false)
	if err != nil {
		return TRPOResult{}, err
	}
	if !finiteSlice(g) || math.IsNaN(before) || math.IsInf(before, 0) {
		return TRPOResult{}, errors.New("infer: TRPO: the surrogate or its gradient is not finite")
	}
	res := TRPOResult{Before: before, After: before}
	if floats.Norm(g, 2) == 0 {
		return res, nil
	}
	fisher := func(v []float64) ([]float64, error) {
		norm := floats.Norm(v, 2)
		if norm == 0 {
			return make([]float64, len(v)), nil
		}
		h := 1e-4 / norm
		plus := append([]float64(nil), theta0...)
		minus := append([]float64(nil), theta0...)
		floats.AddScaled(plus, h, v)
		floats.AddScaled(minus, -h, v)
		gp, _, err := gradAt(plus, true)
		if err != nil {
			return nil, err
		}
		gm, _, err := gradAt(minus, true)
		if err != nil {
			return nil, err
		}
		out := make([]float64, len(v))
		for i := range out {
			out[i] = (gp[i]-gm[i])/(2*h) + damping*v[i]
		}
		return out, nil
	}
	// Conjugate gradients on F s = -g.
	s := make([]float64, len(g))
	r := make([]float64, len(g))
	floats.ScaleTo(r, -1, g)
	p := append([]float64(nil), r...)
	rr := floats.Dot(r, r)
	for k := 0; k < iters && rr > 1e-20; k++ {
		fp, err := fisher(p)
		if err != nil {
			return TRPOResult{}, err
		}
		alpha := rr / floats.Dot(p, fp)
		floats.AddScaled(s, alpha, p)
		floats.AddScaled(r, -alpha, fp)
		next := floats.Dot(r, r)
		floats.AddScaledTo(p, r, next/rr, p)
		rr = next
	}
	fs, err := fisher(s)
	if err != nil {
		return TRPOResult{}, err
	}
	sFs := floats.Dot(s, fs)
	if !(sFs > 0) || !finiteSlice(s) {
		return TRPOResult{}, errors.New("infer: TRPO: the conjugate-gradient direction has no positive curvature")
	}
	full := math.Sqrt(2 * maxKL / sFs)
	frac := 1.0
	for k := 0; k <= backtracks; k++ {
		theta := append([]float64(nil), theta0...)
		floats.AddScaled(theta, full*frac, s)
		_, d, err := eval(theta)
		if err != nil {
			return TRPOResult{}, err
		}
		kl, err := klTo(d)
		if err != nil {
			return TRPOResult{}, err
		}
		after := surrogate(d).Item()
		if k == 0 {
			res.FullKL = kl.Item()
		}
		if kl.Item() <= maxKL && after < before {
			unflattenParams(params, theta)
			res.Accepted, res.After, res.KL, res.Fraction = true, after, kl.Item(), frac
			return res, nil
		}
		frac *= shrink
	}
	return res, nil
}

// flattenParams concatenates the values of params.
func flattenParams(params []*nn.Param) []float64 {
	var out []float64
	for _, p := range params {
		r, c := p.Value.Dims()
		for i := 0; i < r; i++ {
			for j := 0; j < c; j++ {
				out = append(out, p.Value.At(i, j))
			}
		}
	}
	return out
}

// unflattenParams writes theta into the values of params.
func unflattenParams(params []*nn.Param, theta []float64) {
	off := 0
	for _, p := range params {
		r, c := p.Value.Dims()
		for i := 0; i < r; i++ {
			for j := 0; j < c; j++ {
				p.Value.Set(i, j, theta[off])
				off++
			}
		}
	}
}

// finiteSlice reports whether every element of v is finite.
func finiteSlice(v []float64) bool {
	for _, x := range v {
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return false
		}
	}
	return true
}
