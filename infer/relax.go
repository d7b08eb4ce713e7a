package infer

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"

	"gonum.org/v1/gonum/mat"

	"github.com/backpropq/backpropq/ad"
	"github.com/backpropq/backpropq/nn"
	"github.com/backpropq/backpropq/ppl"
	"github.com/backpropq/backpropq/ppl/dist"
	"github.com/backpropq/backpropq/trace"
)

// relaxation is the continuous relaxation of one discrete site (paper
// appendix 5.5): the pre-threshold sample z = base + noise, differentiable
// in param, and the relaxed value soft(z) = σ(z/λ) for a Bernoulli site or
// softmax(z/λ) for a categorical one.
type relaxation struct {
	d dist.Relaxable
	// param is the distribution's parameter tensor (logits or
	// probabilities): the tensor whose gradient the estimators form.
	param *ad.Tensor
	// categorical marks a Gumbel (softmax) relaxation; index marks a
	// Categorical site whose values are class indices, which a relaxed
	// one-hot row cannot stand in for.
	categorical, index bool
}

// newRelaxation returns the relaxation of d, which must be a Bernoulli,
// Categorical or OneHotCategorical distribution (as a value or a pointer).
func newRelaxation(d dist.Distribution) (relaxation, error) {
	switch v := d.(type) {
	case dist.Bernoulli:
		p := v.Logits
		if p == nil {
			p = v.Probs
		}
		return relaxation{d: v, param: p}, nil
	case *dist.Bernoulli:
		return newRelaxation(*v)
	case dist.OneHotCategorical:
		return relaxation{d: v, param: v.Logits, categorical: true}, nil
	case *dist.OneHotCategorical:
		return newRelaxation(*v)
	case dist.Categorical:
		return relaxation{d: v, param: v.Logits, categorical: true, index: true}, nil
	case *dist.Categorical:
		return newRelaxation(*v)
	}
	return relaxation{}, fmt.Errorf("distribution %T has no relaxation (want Bernoulli, Categorical or OneHotCategorical)", d)
}

// base returns the part of z that depends on the parameter: the log-odds
// of a Bernoulli, the log-probabilities of a categorical.
func (r relaxation) base() *ad.Tensor {
	if r.categorical {
		return ad.LogSoftmax(r.param)
	}
	switch v := r.d.(type) {
	case dist.Bernoulli:
		return v.LogOdds()
	}
	panic("infer: relaxation of an unknown distribution")
}

// reparam returns z with zSample's value and the unconditional
// reparameterization's gradient path: base + stopgrad(zSample - base).
// Drawn with zSample ~ p(z | b) for the site's value b, it is the
// pre-threshold sample z(ε; θ) of the value the site actually took, since
// (b, z) then has the joint law of (H(z), z).
func (r relaxation) reparam(zSample *ad.Tensor) *ad.Tensor {
	base := r.base()
	return ad.Add(base, ad.StopGradient(ad.Sub(zSample, base)))
}

// soft returns the relaxed value of z at temperature temp ([1 x 1]).
func (r relaxation) soft(z, temp *ad.Tensor) *ad.Tensor {
	if r.categorical {
		return ad.Softmax(ad.Div(z, temp))
	}
	return ad.Sigmoid(ad.Div(z, temp))
}

// substitutable reports an error when the relaxed value cannot be put in
// place of the site's value (a Categorical site holds class indices).
func (r relaxation) substitutable(name string) error {
	if r.index {
		return fmt.Errorf("%s: a Categorical site holds class indices, which a relaxed value cannot replace; use OneHotCategorical", name)
	}
	return nil
}

// relaxedRerun is the relaxed re-run of a site and its descendants used by REBAR
// and RELAX (Tucker et al. 2017, section 3): every relaxable descendant
// with a drawn value b_d gets logistic or Gumbel noise ε_d ~ p(ε | b_d) under
// its training-run distribution, and in a re-run its value becomes
// soft(base_d + ε_d) with base_d computed from the re-run's (relaxed)
// parents. ε_d is independent of the site's value, so the control variate
// c(z) = f(soft(z), ...) is a smooth function of z alone, shared by the
// re-runs at z and z~ together with one random source for everything else.
type relaxedRerun struct {
	site  string
	noise map[string]*ad.Tensor
	seed1 uint64
	seed2 uint64
}

// newRelaxedRerun draws the descendants' noise from sc.Rand.
func newRelaxedRerun(sc *SiteContext) *relaxedRerun {
	c := &relaxedRerun{site: sc.Site.Addr, noise: map[string]*ad.Tensor{}}
	for _, addr := range sc.Graph.Descendants(sc.Site.Addr) {
		s := sc.Trace.Site(addr)
		if s == nil || !s.Stochastic() || s.Substituted || s.LogProb == nil {
			continue
		}
		rx, err := newRelaxation(s.Dist)
		if err != nil || rx.index {
			continue
		}
		base := rx.base()
		zd := rx.d.ConditionalRelaxedSample(s.Value, sc.Rand)
		c.noise[addr] = ad.StopGradient(ad.Sub(zd, base))
	}
	c.seed1, c.seed2 = sc.Rand.Uint64(), sc.Rand.Uint64()
	return c
}

// eval re-runs the objective with the site's value replaced by soft(z) at
// temperature temp and the descendants relaxed, and returns the
// downstream cost, [B x 1].
func (c *relaxedRerun) eval(sc *SiteContext, rx relaxation, z, temp *ad.Tensor) (*ad.Tensor, error) {
	value := rx.soft(z, temp)
	override := trace.Override(func(s *ppl.Site) *ad.Tensor {
		if s.Addr == c.site {
			return value
		}
		eps, ok := c.noise[s.Addr]
		if !ok {
			return nil
		}
		drx, err := newRelaxation(s.Dist)
		if err != nil || drx.index {
			return nil
		}
		br, bc := s.Dist.Shape()
		er, ec := eps.Dims()
		if ec != bc || (er != br && br != 1) {
			return nil
		}
		return drx.soft(ad.Add(drx.base(), eps), temp)
	})
	rng := rand.New(rand.NewPCG(c.seed1, c.seed2))
	return sc.Rerun(ppl.Config{Rand: rng}, override)
}

// rowMask zeroes the rows of x, [B x 1], that the site's mask leaves out.
func rowMask(s *ppl.Site, x *ad.Tensor) *ad.Tensor {
	if s.Mask == nil {
		return x
	}
	return ad.Where(s.Mask, x, x.Tape().Scalar(0))
}

// linearTerm returns Σ stopgrad(g) ⊙ t, [1 x 1]: a loss whose gradient with
// respect to t is g, passed on to whatever t is computed from.
func linearTerm(t *ad.Tensor, g *mat.Dense) *ad.Tensor {
	return ad.Sum(ad.Mul(t.Tape().Const(g), t))
}

// storeScalar returns the [1 x 1] parameter name of the store, created with
// value v when missing.
func storeScalar(st *nn.Store, name string, v float64) (*nn.Param, error) {
	p, err := st.Param(name, 1, 1, nn.Constant(v), nil)
	if err != nil {
		return nil, err
	}
	return p, nil
}

// RELAX is the estimator of Grathwohl et al. (2018) for Bernoulli,
// Categorical and OneHotCategorical sites (paper appendix 5.6-5.7, eqs. 24
// and 26): with z ~ p(z) the relaxed sample of the site's value b = H(z),
// z~ ~ p(z | b) a second one, and c a learned control variate,
//
//	ĝ = (f(b) - c(z~)) ∇ log p(b) + ∇ c(z) - ∇ c(z~)
//
// where f(b) is the Rao-Blackwellized learning signal ([SiteContext].Signal)
// and the last two gradients are pathwise through z(ε; θ) and z~(ε~, b; θ).
// The estimate is unbiased for every c. It is passed upstream through the
// distribution's parameter tensor (Σ stopgrad(ĝ)·θ), so that the control
// variate's gradient reaches nothing but the site's parameters.
//
// The control variate is
//
//	c(z) = m + α·(c_φ(soft_λ(z)) - m) [+ η·(f(soft_λ(z)) - m) when Concrete is set]
//
// where m is a running mean of the cost (decay Decay; it starts at 0 and
// is the first step's mean cost after it, as with [MovingAverage]), c_φ a
// one-hidden-layer tanh MLP of the relaxed value, soft_λ the sigmoid or
// softmax at the fixed temperature λ, and the optional last part the
// REBAR control variate evaluated by re-running the objective with the
// relaxed value substituted (see [REBAR]), as Grathwohl et al. do for
// discrete models.
//
// Training the control variate. ĝ is linear in the gates α and η, so the
// variance objective E‖ĝ‖² is a quadratic in them whose coefficients are
// means of products of first derivatives. RELAX keeps running means of
// them (decay 0.99) and uses the gates that minimize the variance so
// estimated, from earlier steps only (so the estimate stays unbiased); a
// part that would add variance gets a gate near 0, and with both at 0
// RELAX is REINFORCE with a moving-average baseline. The network c_φ,
// whose variance gradient needs second derivatives (∂/∂φ of a gradient)
// that package ad does not compute, is fitted to the cost instead,
// minimizing E[(f(b) - c_φ(z~))²] (the approximation of paper section
// 5.6). The temperature is not learned: its variance gradient also needs
// second derivatives, and fitting it to the cost drives it toward 0, where
// the pathwise terms' variance grows like 1/λ.
//
// Everything RELAX learns lives in [SiteContext].Params under
// "infer/relax/<addr>/" (c_φ's weights, and m and the moments, which have
// no gradient and change only after a successful step), so checkpoints
// hold it.
//
// Without Concrete, RELAX needs no re-run and also serves Categorical
// (index-valued) sites, feeding c_φ the relaxed one-hot row. With Concrete
// the site must hold values a relaxed value can replace (Bernoulli,
// OneHotCategorical), and the cost must be a smooth function of the relaxed
// values for the re-runs to give the derivative (relaxable descendants are
// relaxed with noise consistent with their drawn values; see [REBAR]).
//
// The term's Signal is f(b) - c(z~). A RELAX value holds no state and is
// safe for concurrent use.
type RELAX struct {
	// Hidden is the width of c_φ's hidden layer; 0 means 16.
	Hidden int
	// Temperature is λ; 0 means 0.5.
	Temperature float64
	// Decay is the decay of the cost's running mean m, in [0, 1); 0
	// means 0.9.
	Decay float64
	// Concrete adds the REBAR control variate η·(f(soft_λ(z)) - m).
	Concrete bool
}

// Unbiased returns true.
func (RELAX) Unbiased() bool { return true }

// relaxNet is c_φ, the control variate's network, bound to a tape, with
// the running mean of the cost (m and whether it was set) and the moments
// of the variance objective (see relaxTerms).
type relaxNet struct {
	params         []*ad.Tensor
	w1, b1, w2, b2 *ad.Tensor
	mean, moments  *nn.Param
}

// newRelaxNet creates or finds the parameters of the control variate of a
// site whose relaxed value has width columns and whose control variate
// has parts gated parts, and binds the network's to tp.
func newRelaxNet(sc *SiteContext, tp *ad.Tape, width, hidden, parts int) (*relaxNet, error) {
	prefix := "infer/relax/" + sc.Site.Addr + "/"
	specs := []struct {
		name       string
		rows, cols int
		init       nn.Initializer
	}{
		{"W1", width, hidden, nn.GlorotUniform{}}, {"b1", 1, hidden, nn.Zeros{}},
		{"W2", hidden, 1, nn.GlorotUniform{}}, {"b2", 1, 1, nn.Zeros{}},
		{"mean", 1, 2, nn.Zeros{}}, {"moments", 1, parts*parts + 2*parts + 1, nn.Zeros{}},
	}
	ps := make([]*nn.Param, len(specs))
	for i, sp := range specs {
		p, err := sc.Params.Param(prefix+sp.name, sp.rows, sp.cols, sp.init, sc.Rand)
		if err != nil {
			return nil, err
		}
		ps[i] = p
	}
	n := &relaxNet{mean: ps[4], moments: ps[5]}
	for _, p := range ps[:4] {
		n.params = append(n.params, tp.Var(p.Var))
	}
	n.w1, n.b1, n.w2, n.b2 = n.params[0], n.params[1], n.params[2], n.params[3]
	return n, nil
}

// forward returns c_φ(x), [B x 1].
func (n *relaxNet) forward(x *ad.Tensor) *ad.Tensor {
	h := ad.Tanh(ad.Add(ad.MatMul(x, n.w1), n.b1))
	return ad.Add(ad.MatMul(h, n.w2), n.b2)
}

// Surrogate returns the RELAX term.
func (e RELAX) Surrogate(sc *SiteContext) (Term, error) {
	s := sc.Site
	rx, err := newRelaxation(s.Dist)
	if err != nil {
		return Term{}, fmt.Errorf("RELAX: %w", err)
	}
	if e.Concrete {
		if err := rx.substitutable("RELAX"); err != nil {
			return Term{}, err
		}
	}
	if s.LogProb == nil {
		return Term{}, errors.New("RELAX: the site has no log-probability (its value was substituted)")
	}
	if sc.Params == nil {
		return Term{}, errors.New("RELAX: no parameter store in the site context for the control variate")
	}
	tp := s.LogProb.Tape()
	hidden := e.Hidden
	if hidden <= 0 {
		hidden = 16
	}
	lambda := e.Temperature
	if lambda == 0 {
		lambda = 0.5
	}
	if !(lambda > 0) || math.IsInf(lambda, 0) {
		return Term{}, fmt.Errorf("RELAX: temperature must be > 0 and finite, got %v", lambda)
	}
	z := rx.reparam(rx.d.ConditionalRelaxedSample(s.Value, sc.Rand))
	zt := rx.d.ConditionalRelaxedSample(s.Value, sc.Rand)
	_, width := z.Dims()
	parts := 1
	if e.Concrete {
		parts = 2
	}
	net, err := newRelaxNet(sc, tp, width, hidden, parts)
	if err != nil {
		return Term{}, fmt.Errorf("RELAX: %w", err)
	}
	decay := e.Decay
	if decay == 0 {
		decay = 0.9
	}
	if !(decay >= 0 && decay < 1) {
		return Term{}, fmt.Errorf("RELAX: Decay must be in [0, 1), got %v", decay)
	}
	temp := tp.Scalar(lambda)
	c := relaxTerms{site: s, param: rx.param, mean: tp.Scalar(net.mean.Value.At(0, 0))}
	c.add(net.forward(rx.soft(z, temp)), net.forward(rx.soft(zt, temp)))
	if e.Concrete {
		ch := newRelaxedRerun(sc)
		fz, err := ch.eval(sc, rx, z, temp)
		if err != nil {
			return Term{}, fmt.Errorf("RELAX: %w", err)
		}
		fzt, err := ch.eval(sc, rx, zt, temp)
		if err != nil {
			return Term{}, fmt.Errorf("RELAX: %w", err)
		}
		c.add(fz, fzt)
	}
	ghat, moments, signal := c.estimate(sc.Signal, net.moments.Value.RawMatrix().Data)
	// c_φ fits the cost; its gradient reaches only its own parameters.
	fit := ad.Sum(rowMask(s, ad.Square(ad.Sub(ad.StopGradient(sc.Signal), c.atTilde[0]))))
	fitGrads := tp.Gradients(fit, net.params...)
	loss := linearTerm(rx.param, ghat)
	for i, t := range net.params {
		loss = ad.Add(loss, linearTerm(t, fitGrads[i]))
	}
	updateMean := net.updateMean(s, sc.Signal, decay)
	commit := func() {
		if updateMean != nil {
			updateMean()
		}
		raw := net.moments.Value.RawMatrix().Data
		for i, v := range moments {
			raw[i] = momentDecay*raw[i] + (1-momentDecay)*v
		}
	}
	return Term{Loss: loss, Signal: signal, Commit: commit}, nil
}

// momentDecay is the decay of the running moments of RELAX's variance
// objective.
const momentDecay = 0.99

// updateMean returns the commit that moves m toward the mean of the cost
// over the site's unmasked rows, or sets it to that mean the first time
// (the mean parameter holds m and whether it was set).
func (n *relaxNet) updateMean(s *ppl.Site, f *ad.Tensor, decay float64) func() {
	sum, rows := 0.0, 0.0
	for i, v := range f.Data() {
		if s.Mask == nil || s.Mask.Data()[min(i, len(s.Mask.Data())-1)] != 0 {
			sum += v
			rows++
		}
	}
	if rows == 0 {
		return nil
	}
	return func() {
		m := sum / rows
		if n.mean.Value.At(0, 1) != 0 {
			m = decay*n.mean.Value.At(0, 0) + (1-decay)*m
		}
		n.mean.Value.Set(0, 0, m)
		n.mean.Value.Set(0, 1, 1)
	}
}
