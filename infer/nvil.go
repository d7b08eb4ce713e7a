package infer

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"sync"

	"github.com/backpropq/backpropq/ad"
	"github.com/backpropq/backpropq/internal/arena"
	"github.com/backpropq/backpropq/internal/ckpt"
	"github.com/backpropq/backpropq/nn"
	"github.com/backpropq/backpropq/ppl"
)

// NVIL is the [Baseline] of neural variational inference and learning
// (Mnih and Gregor, 2014): an input-dependent baseline b(x), a small MLP
// with one tanh hidden layer trained to predict the site's centered
// learning signal, and running estimates of the signal's mean c and
// variance v, used to center and normalize it:
//
//	signal = (L - c - b(x)) / max(1, sqrt(v))
//
// The network's input x is Features(sc) when set, else the values of the
// site's parents in the graph, concatenated (a column of ones for a site
// without parents, when b(x) is a learned constant). Whatever it is, it must
// not depend on the site's value or on its descendants, or the estimate is
// biased. The network's parameters are created in the training run's store
// ([SiteContext].Params) under "infer/nvil/<addr>/", one network per site,
// and trained through the squared error (stopgrad(L - c) - b(x))², which
// is added to the site's term; c and v are exponential moving averages
// (decay Decay) of the mean and variance of L - b(x) over past steps.
//
// With b, c and v independent of the current sample, the estimate is
// unbiased for the gradient times the factor 1/max(1, sqrt(v)) of the
// current step, a per-site step size that depends only on past steps;
// Unbiased reports true for the direction. Set NoNormalize to drop the
// factor.
//
// Create it with [NewNVIL]. One NVIL may serve many sites; it is safe for
// concurrent use.
type NVIL struct {
	// Hidden is the number of hidden units of the baseline network.
	Hidden int
	// Decay is the decay of the running mean and variance, in [0, 1).
	Decay float64
	// NoNormalize turns variance normalization off.
	NoNormalize bool
	// Features, when not nil, returns the baseline network's input for a
	// site, [B x F] (stopped from the gradient by NVIL).
	Features func(sc *SiteContext) (*ad.Tensor, error)

	mu    sync.Mutex
	stats map[string]nvilStats
	names map[string][4]string // see paramNames
}

// nvilStats are the running statistics of one site.
type nvilStats struct {
	mean, variance float64
}

// update returns the statistics after the values rs of one step: st's
// decayed with the step's mean and variance about the new mean, or the
// step's alone when seen is false.
func (st nvilStats) update(seen bool, rs []float64, decay float64) nvilStats {
	mean := meanOf(rs)
	if seen {
		mean = decay*st.mean + (1-decay)*mean
	}
	v := 0.0
	for _, r := range rs {
		v += (r - mean) * (r - mean)
	}
	v /= float64(len(rs))
	if seen {
		v = decay*st.variance + (1-decay)*v
	}
	return nvilStats{mean: mean, variance: v}
}

// NewNVIL returns an NVIL baseline with the given number of hidden units,
// decay 0.9 and normalization on.
func NewNVIL(hidden int) *NVIL {
	return &NVIL{Hidden: hidden, Decay: 0.9, stats: map[string]nvilStats{}}
}

// Stats returns the running mean and variance of the site at addr, and
// whether they have been set.
func (n *NVIL) Stats(addr string) (mean, variance float64, ok bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	st, ok := n.stats[addr]
	return st.mean, st.variance, ok
}

// factor returns the normalization factor of a site with stats st.
func (n *NVIL) factor(st nvilStats, seen bool) float64 {
	if n.NoNormalize || !seen {
		return 1
	}
	return 1 / math.Max(1, math.Sqrt(st.variance))
}

// Center centers and normalizes the signal; see [NVIL].
func (n *NVIL) Center(sc *SiteContext, signal *ad.Tensor) (centered, loss *ad.Tensor, commit func(), err error) {
	if n.Hidden <= 0 {
		return nil, nil, nil, fmt.Errorf("NVIL: Hidden must be positive, got %d", n.Hidden)
	}
	if !(n.Decay >= 0 && n.Decay < 1) {
		return nil, nil, nil, fmt.Errorf("NVIL: decay must be in [0, 1), got %v", n.Decay)
	}
	if sc.Params == nil {
		return nil, nil, nil, errors.New("NVIL: no parameter store in the site context")
	}
	x, err := n.input(sc)
	if err != nil {
		return nil, nil, nil, err
	}
	bx, err := n.network(sc, x)
	if err != nil {
		return nil, nil, nil, err
	}
	addr := sc.Site.Addr
	n.mu.Lock()
	st, seen := n.stats[addr]
	n.mu.Unlock()
	tp := signal.Tape()
	target := ad.Sub(signal, tp.Scalar(st.mean))
	residual := ad.StopGradient(ad.Sub(target, bx))
	centered = ad.Scale(residual, n.factor(st, seen))
	loss = ad.Square(ad.Sub(ad.StopGradient(target), bx))
	// The statistics track L - b(x): its mean centers the signal and its
	// variance normalizes it.
	c := nvilCommits.Get(tp)
	c.n, c.addr, c.rs = n, addr, ad.Sub(signal, ad.StopGradient(bx)).Data()
	if c.fn == nil {
		c.fn = c.commit
	}
	return centered, loss, c.fn, nil
}

// nvilCommit is the commit of one site's statistics, the residuals rs,
// kept on the tape the residuals live on. fn is its method value, made
// once per record.
type nvilCommit struct {
	n    *NVIL
	addr string
	rs   []float64
	fn   func()
}

var nvilCommits = arena.NewKey[nvilCommit]()

func (c *nvilCommit) commit() {
	n := c.n
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.stats == nil {
		n.stats = map[string]nvilStats{}
	}
	cur, ok := n.stats[c.addr]
	n.stats[c.addr] = cur.update(ok, c.rs, n.Decay)
}

// input returns the baseline network's input for sc, without a gradient
// path.
func (n *NVIL) input(sc *SiteContext) (*ad.Tensor, error) {
	if n.Features != nil {
		x, err := n.Features(sc)
		if err != nil {
			return nil, fmt.Errorf("NVIL: features: %w", err)
		}
		return ad.StopGradient(x), nil
	}
	var parts []*ad.Tensor
	for _, p := range sc.Graph.Parents(sc.Site.Addr) {
		ps := sc.Graph.Site(p)
		if ps.Value != nil {
			// At the site's plate level: a global parent is broadcast
			// into the site's plates.
			parts = append(parts, ppl.Move(ps.Value, ps.Plates, sc.Site.Plates))
		}
	}
	rows := sc.Site.LogProb.Rows()
	if len(parts) == 0 {
		return sc.Site.LogProb.Tape().Full(rows, 1, 1), nil
	}
	x := parts[0]
	if len(parts) > 1 {
		x = ad.Concat(parts...)
	}
	return ad.StopGradient(x), nil
}

// network evaluates the site's baseline network on x, creating its
// parameters on first use.
func (n *NVIL) network(sc *SiteContext, x *ad.Tensor) (*ad.Tensor, error) {
	names := n.paramNames(sc.Site.Addr)
	in := x.Cols()
	param := func(name int, rows, cols int, init nn.Initializer) (*ad.Tensor, error) {
		p, err := sc.Params.Param(names[name], rows, cols, init, sc.Rand)
		if err != nil {
			return nil, fmt.Errorf("NVIL: %w", err)
		}
		return x.Tape().Var(p.Var), nil
	}
	w1, err := param(0, in, n.Hidden, nn.GlorotUniform{})
	if err != nil {
		return nil, err
	}
	b1, err := param(1, 1, n.Hidden, nn.Zeros{})
	if err != nil {
		return nil, err
	}
	w2, err := param(2, n.Hidden, 1, nn.Zeros{})
	if err != nil {
		return nil, err
	}
	b2, err := param(3, 1, 1, nn.Zeros{})
	if err != nil {
		return nil, err
	}
	h := ad.Tanh(ad.Add(ad.MatMul(x, w1), b1))
	return ad.Add(ad.MatMul(h, w2), b2), nil
}

// paramNames returns the names of the baseline network's parameters W1,
// b1, W2 and b2 for the site at addr, made once per site.
func (n *NVIL) paramNames(addr string) [4]string {
	n.mu.Lock()
	defer n.mu.Unlock()
	if names, ok := n.names[addr]; ok {
		return names
	}
	var names [4]string
	for i, name := range [4]string{"W1", "b1", "W2", "b2"} {
		names[i] = "infer/nvil/" + addr + "/" + name
	}
	if n.names == nil {
		n.names = map[string][4]string{}
	}
	n.names[addr] = names
	return names
}

// MarshalState returns the running statistics (the network's parameters
// live in the store and are saved with it).
func (n *NVIL) MarshalState() ([]byte, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	addrs := make([]string, 0, len(n.stats))
	for a := range n.stats {
		addrs = append(addrs, a)
	}
	sort.Strings(addrs)
	var e ckpt.Encoder
	e.Uint32(uint32(len(addrs)))
	for _, a := range addrs {
		e.String(a)
		e.Float64s([]float64{n.stats[a].mean, n.stats[a].variance})
	}
	return e.Bytes(), nil
}

// UnmarshalState replaces the running statistics; on error nothing
// changes.
func (n *NVIL) UnmarshalState(data []byte) error {
	d := ckpt.NewDecoder("NVIL", data)
	cnt := d.Count(20)
	stats := make(map[string]nvilStats, cnt)
	for i := 0; i < cnt && d.Err() == nil; i++ {
		a := d.String()
		v := d.Float64s(2)
		if d.Err() == nil {
			if !(v[1] >= 0) {
				d.Fail("site %q: negative variance %v", a, v[1])
				break
			}
			stats[a] = nvilStats{mean: v[0], variance: v[1]}
		}
	}
	if err := d.Finish(); err != nil {
		return fmt.Errorf("infer: %w", err)
	}
	n.mu.Lock()
	n.stats = stats
	n.mu.Unlock()
	return nil
}
