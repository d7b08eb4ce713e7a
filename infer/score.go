package infer

import (
	"errors"
	"fmt"
	"sort"
	"sync"

	"github.com/backpropq/backpropq/ad"
	"github.com/backpropq/backpropq/internal/arena"
	"github.com/backpropq/backpropq/internal/ckpt"
	"github.com/backpropq/backpropq/nn"
)

// ScoreFunction is the REINFORCE (score-function, likelihood-ratio)
// estimator of paper appendix 5.2, eq. 18, with the Rao-Blackwellized
// learning signal of Schulman et al. (2015): the site's term is
//
//	log p(z | parents) · stopgrad(L - b)
//
// where L is the sum of the costs reachable from the site
// ([SiteContext].Signal, not every cost of the run) and b an optional
// [Baseline]. It works for any distribution, discrete or continuous, and
// any cost, differentiable or not, and is unbiased with every baseline of
// this package; its variance is what the other estimators reduce.
//
// A ScoreFunction is safe for concurrent use when its Baseline is.
type ScoreFunction struct {
	// Baseline, when not nil, is subtracted from the learning signal
	// (a control variate that does not depend on the site's value).
	Baseline Baseline
}

// Baseline is a control variate for [ScoreFunction] that does not depend on
// the value of the site, so that subtracting it keeps the estimate
// unbiased (paper appendix 5.3, case 1).
type Baseline interface {
	// Center returns the learning signal to use, [B x 1] without a
	// gradient path, given the Rao-Blackwellized signal; loss, [B x 1] or
	// nil, trains the baseline's parameters; commit, which may be nil,
	// updates running state once the step succeeds. Center must not change
	// any state itself.
	Center(sc *SiteContext, signal *ad.Tensor) (centered, loss *ad.Tensor, commit func(), err error)
}

// Unbiased returns true.
func (ScoreFunction) Unbiased() bool { return true }

// Surrogate returns the score-function term. It fails when the site has
// no log-probability (its value was substituted, not drawn or replayed).
func (e ScoreFunction) Surrogate(sc *SiteContext) (Term, error) {
	s := sc.Site
	if s.LogProb == nil {
		return Term{}, errors.New("ScoreFunction: the site has no log-probability (its value was substituted)")
	}
	signal := sc.Signal
	var extra *ad.Tensor
	var commit func()
	if e.Baseline != nil {
		var err error
		signal, extra, commit, err = e.Baseline.Center(sc, signal)
		if err != nil {
			return Term{}, fmt.Errorf("ScoreFunction: %w", err)
		}
	}
	loss := rowMask(s, ad.Mul(s.LogProb, ad.StopGradient(signal)))
	if extra != nil {
		loss = ad.Add(loss, extra)
	}
	return Term{Loss: loss, Commit: commit, Signal: signal}, nil
}

// Params returns the baseline's trainable parameters, if it has any
// beyond those it keeps in the training run's store.
func (e ScoreFunction) Params() []*nn.Param { return baselineParams(e.Baseline) }

// baselineParams returns b's own trainable parameters, if it has any; the
// estimators that take a [Baseline] report them as theirs.
func baselineParams(b Baseline) []*nn.Param {
	if p, ok := b.(interface{ Params() []*nn.Param }); ok {
		return p.Params()
	}
	return nil
}

// stateMarshaler is the state half of [Stateful].
type stateMarshaler interface {
	MarshalState() ([]byte, error)
	UnmarshalState(data []byte) error
}

// MarshalState returns the baseline's running state, empty when it has
// none.
func (e ScoreFunction) MarshalState() ([]byte, error) { return baselineState(e.Baseline) }

// baselineState returns b's running state, empty when it has none.
func baselineState(b Baseline) ([]byte, error) {
	if m, ok := b.(stateMarshaler); ok {
		return m.MarshalState()
	}
	return nil, nil
}

// UnmarshalState restores what MarshalState returned.
func (e ScoreFunction) UnmarshalState(data []byte) error {
	return setBaselineState("ScoreFunction", e.Baseline, data)
}

// setBaselineState restores into b what [baselineState] returned; data
// for a baseline without state is an error naming the estimator.
func setBaselineState(estimator string, b Baseline, data []byte) error {
	if m, ok := b.(stateMarshaler); ok {
		return m.UnmarshalState(data)
	}
	if len(data) != 0 {
		return fmt.Errorf("infer: %s: state given to an estimator without a stateful baseline", estimator)
	}
	return nil
}

// MovingAverage is a [Baseline] that subtracts, at each site, an
// exponential moving average of the site's mean learning signal over past
// steps: b ← Decay·b + (1-Decay)·mean(L), starting from the first step's
// mean (the first step uses b = 0). It depends only on past steps, so the
// estimate stays unbiased.
//
// Create it with [NewMovingAverage]; one MovingAverage may serve many sites
// (it keeps one average per address). It is safe for concurrent use.
type MovingAverage struct {
	Decay float64

	mu    sync.Mutex
	means map[string]float64
}

// NewMovingAverage returns a moving-average baseline with the given decay,
// which must be in [0, 1).
func NewMovingAverage(decay float64) *MovingAverage {
	return &MovingAverage{Decay: decay, means: map[string]float64{}}
}

// Value returns the current baseline of the site at addr and whether it
// has been set.
func (m *MovingAverage) Value(addr string) (float64, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	v, ok := m.means[addr]
	return v, ok
}

// Center subtracts the site's average.
func (m *MovingAverage) Center(sc *SiteContext, signal *ad.Tensor) (centered, loss *ad.Tensor, commit func(), err error) {
	if !(m.Decay >= 0 && m.Decay < 1) {
		return nil, nil, nil, fmt.Errorf("MovingAverage: decay must be in [0, 1), got %v", m.Decay)
	}
	addr := sc.Site.Addr
	b, seen := m.Value(addr)
	centered = ad.Sub(signal, signal.Tape().Scalar(b))
	c := averageCommits.Get(signal.Tape())
	c.m, c.addr, c.b, c.seen, c.mean = m, addr, b, seen, meanOf(signal.Data())
	if c.fn == nil {
		c.fn = c.commit
	}
	return centered, nil, c.fn, nil
}

// averageCommit is the commit of one site's average, kept on the tape of
// the step; fn is its method value, made once per record.
type averageCommit struct {
	m       *MovingAverage
	addr    string
	b, mean float64
	seen    bool
	fn      func()
}

var averageCommits = arena.NewKey[averageCommit]()

func (c *averageCommit) commit() {
	m := c.m
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.means == nil {
		m.means = map[string]float64{}
	}
	if c.seen {
		m.means[c.addr] = m.Decay*c.b + (1-m.Decay)*c.mean
	} else {
		m.means[c.addr] = c.mean
	}
}

// MarshalState returns the averages.
func (m *MovingAverage) MarshalState() ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var e ckpt.Encoder
	addrs := make([]string, 0, len(m.means))
	for a := range m.means {
		addrs = append(addrs, a)
	}
	sort.Strings(addrs)
	e.Uint32(uint32(len(addrs)))
	for _, a := range addrs {
		e.String(a)
		e.Float64s([]float64{m.means[a]})
	}
	return e.Bytes(), nil
}

// UnmarshalState replaces the averages by those of data; on error nothing
// changes.
func (m *MovingAverage) UnmarshalState(data []byte) error {
	d := ckpt.NewDecoder("MovingAverage", data)
	n := d.Count(12)
	means := make(map[string]float64, n)
	for i := 0; i < n && d.Err() == nil; i++ {
		a := d.String()
		v := d.Float64s(1)
		if d.Err() == nil {
			means[a] = v[0]
		}
	}
	if err := d.Finish(); err != nil {
		return fmt.Errorf("infer: %w", err)
	}
	m.mu.Lock()
	m.means = means
	m.mu.Unlock()
	return nil
}

// meanOf returns the mean of xs, 0 for none.
func meanOf(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := 0.0
	for _, x := range xs {
		s += x
	}
	return s / float64(len(xs))
}
