package infer

import (
	"errors"
	"fmt"
	"sync"

	"github.com/backpropq/backpropq/ad"
	"github.com/backpropq/backpropq/nn"
	"github.com/backpropq/backpropq/ppl"
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
