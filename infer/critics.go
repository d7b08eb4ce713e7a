package infer

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"

	"github.com/backpropq/backpropq/nn"
	"github.com/backpropq/backpropq/ppl"
	"github.com/backpropq/backpropq/q"
	"github.com/backpropq/backpropq/trace"
)

// Critics is the part of Backprop-Q that its estimators share: a set of critics
// (package q), the networks that lay them over each trace shape, and their
// TD training. It is the per-trace phase ([TracePhase]) of every
// Backprop-Q estimator that embeds it ([QLocal], [QControlVariate],
// [QAdvantage]): the critics are evaluated once per trace, before the
// terms of the sites those estimators serve, and trained once, in the
// phase's commit, after the step succeeded, so a step that fails changes
// no critic. Estimators of different types may embed one Critics
// and serve different sites of one trace.
//
// A Critics is safe for concurrent use (the chunks of an [SVI] step): it
// serializes its use of the set.
type Critics struct {
	// Set holds the critics.
	Set *q.Set
	// Cache builds the networks; nil uses a cache with zero options (one
	// Q-node per site and cost, no inlined costs).
	Cache *q.Cache
	// TD configures the critics' updates.
	TD q.TD
	// Replay, when not nil, turns on graph experience replay (appendix
	// 4.2): after the critics' update on a trace, its rows join a buffer
	// (one per trace shape) and the critics take replay steps on rows
	// drawn from it, re-running the objective under the current
	// parameters (q.Set.ReplayRuns); a vi.ELBO replays its guide.
	Replay *Replay

	mu      sync.Mutex
	cache   q.Cache
	skipped int
	skipErr error
	tdErr   map[string]float64
	buffers map[string]*q.Buffer
	replays int
}

// Replay configures the experience replay of [Critics].
type Replay struct {
	// Capacity is the number of rows each buffer keeps; 0 means 1024.
	Capacity int
	// Steps is the number of replay steps per trace; 0 means 1.
	Steps int
	// Options configure each replay step.
	Options q.ReplayOptions
}

// NewCritics returns critics configured by cfg, trained with TD updates td.
func NewCritics(cfg q.Config, td q.TD) *Critics {
	return &Critics{Set: q.NewSet(cfg), TD: td}
}

// qEval is the critics' evaluation on one trace, which every site of the
// trace served by the critics receives ([SiteContext].Shared). The sites
// of a trace are served one after another, so its advantages are computed
// on first use without a lock.
type qEval struct {
	tr   *trace.Trace
	net  *q.Network
	vals *q.Values
	// run and params re-run the objective for the direct costs of a
	// control variate (directAt).
	run    q.Runner
	params *nn.Store
	// adv holds the advantages (q.Advantages) by their fromErrors flag.
	adv map[bool]map[string][]float64
}

// advantages returns the advantage signals of the trace's sites.
func (ev *qEval) advantages(td q.TD, fromErrors bool) (map[string][]float64, error) {
	if a, ok := ev.adv[fromErrors]; ok {
		return a, nil
	}
	a, err := q.Advantages(ev.net, ev.vals, td, fromErrors)
	if err != nil {
		return nil, fmt.Errorf("BackpropQ: %w", err)
	}
	if ev.adv == nil {
		ev.adv = map[bool]map[string][]float64{}
	}
	ev.adv[fromErrors] = a
	return a, nil
}

// BeginTrace evaluates the critics on the trace; the commit trains them
// (q.Set.Apply) and returns the served sites' TD errors and returns.
func (c *Critics) BeginTrace(tc *TraceContext) (TraceState, error) {
	if c == nil || c.Set == nil {
		return TraceState{}, errors.New("BackpropQ: no critics (use NewCritics)")
	}
	ev, err := c.evaluate(tc.Trace, tc.Graph)
	if err != nil {
		return TraceState{}, err
	}
	ev.run, ev.params = tc.Run, tc.Params
	diags := make([]SiteDiagnostics, len(tc.Sites))
	for i, sc := range tc.Sites {
		diags[i] = SiteDiagnostics{Addr: sc.Site.Addr, Return: append([]float64(nil), sc.Signal.Data()...)}
	}
	var replay func()
	if c.Replay != nil {
		for _, a := range tc.Graph.Stochastic() {
			if len(tc.Graph.Site(a).Plates) > 0 {
				return TraceState{}, fmt.Errorf("BackpropQ: replay: site %q is inside plates, which replay does not support", a)
			}
		}
		// The replay's random source is drawn now, from the step's, so
		// that it depends on the seed, step and chunk only.
		rng := rand.New(rand.NewPCG(tc.Rand.Uint64(), tc.Rand.Uint64()))
		env := ppl.Config{Params: tc.Params, Rand: rng}
		replay = func() { c.replay(ev, tc.Run, env) }
	}
	commit := func() []SiteDiagnostics {
		c.apply(ev, diags)
		if replay != nil {
			replay()
		}
		return diags
	}
	return TraceState{Shared: ev, Commit: commit}, nil
}

// evaluate returns the critics' evaluation on tr.
func (c *Critics) evaluate(tr *trace.Trace, g *trace.Graph) (*qEval, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	cache := c.Cache
	if cache == nil {
		cache = &c.cache
	}
	net, err := cache.Network(g)
	if err != nil {
		return nil, fmt.Errorf("BackpropQ: %w", err)
	}
	vals, err := c.Set.Evaluate(net, tr)
	if err != nil {
		return nil, fmt.Errorf("BackpropQ: %w", err)
	}
	return &qEval{tr: tr, net: net, vals: vals}, nil
}

// apply trains the critics on ev and records the sites' TD errors, in c
// and in diags.
func (c *Critics) apply(ev *qEval, diags []SiteDiagnostics) {
	c.mu.Lock()
	defer c.mu.Unlock()
	st, err := c.Set.Apply(ev.net, ev.vals, c.TD)
	if err != nil {
		// Apply changes nothing on error (a non-finite cost or critic); the
		// step itself already succeeded, so the critics skip this trace,
		// and SkippedUpdates says so.
		c.skipped++
		c.skipErr = err
		return
	}
	if c.tdErr == nil {
		c.tdErr = map[string]float64{}
	}
	sum, cnt := map[string]float64{}, map[string]int{}
	for i, nd := range ev.net.Nodes {
		sum[nd.Site] += st.MSE[i]
		cnt[nd.Site]++
	}
	for a, v := range sum {
		c.tdErr[a] = v / float64(cnt[a])
	}
	for i, d := range diags {
		if cnt[d.Addr] > 0 {
			diags[i].TDError, diags[i].HasTDError = c.tdErr[d.Addr], true
		}
	}
}

// replay adds ev's trace to the buffer of its shape and takes the replay
// steps. An error (a re-run that fails) skips the rest, as a failed update
// does (see SkippedUpdates).
func (c *Critics) replay(ev *qEval, run q.Runner, env ppl.Config) {
	c.mu.Lock()
	defer c.mu.Unlock()
	shape := ev.net.Shape()
	buf := c.buffers[shape]
	if buf == nil {
		capacity := c.Replay.Capacity
		if capacity <= 0 {
			capacity = 1024
		}
		buf = q.NewBuffer(capacity)
		if c.buffers == nil {
			c.buffers = map[string]*q.Buffer{}
		}
		c.buffers[shape] = buf
	}
	err := buf.Add(ev.tr)
	for k := 0; err == nil && k < max(c.Replay.Steps, 1); k++ {
		if _, err = c.Set.ReplayRuns(ev.net, buf, run, env, c.Replay.Options); err == nil {
			c.replays++
		}
	}
	if err != nil {
		c.skipped++
		c.skipErr = fmt.Errorf("replay: %w", err)
	}
}

// QCritics returns c. Every Backprop-Q estimator has it through the
// Critics it embeds, so that code holding an [Estimator] can reach its
// critics (see [CriticHolder]).
func (c *Critics) QCritics() *Critics { return c }

// CriticHolder is an estimator that learns critics: [QLocal],
// [QControlVariate] and [QAdvantage], or one that wraps them.
type CriticHolder interface {
	QCritics() *Critics
}

// Replays returns the number of replay steps the critics took.
func (c *Critics) Replays() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.replays
}

// TDError returns the mean over the Q-nodes of the site at addr of their
// mean squared lambda-return (TD) error before the last update of the
// critics, and whether the site has been trained.
func (c *Critics) TDError(addr string) (float64, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	v, ok := c.tdErr[addr]
	return v, ok
}

// SkippedUpdates returns how many critic updates were skipped because
// q.Set.Apply failed after a step had succeeded (a non-finite critic value
// or target, say), and the last such error. A critic that stops learning
// thus shows here rather than going unnoticed.
func (c *Critics) SkippedUpdates() (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.skipped, c.skipErr
}

// known reports whether the critic of every Q-node in the site's total
// local cost is in the set already (a critic first seen in this step is
// not); the inlined costs need none.
func (c *Critics) known(ev *qEval, addr string) bool {
	for _, ref := range ev.net.Local(addr) {
		if !ref.IsCost() && c.Set.Critic(c.Set.Key(ev.net.Nodes[ref.Node])) == nil {
			return false
		}
	}
	return true
}
