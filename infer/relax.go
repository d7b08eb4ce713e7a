package infer

import (
	"errors"
	"fmt"
	"math"

	"github.com/backpropq/backpropq/ad"
	"github.com/backpropq/backpropq/nn"
	"github.com/backpropq/backpropq/ppl"
)

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
	hidden, lambda, err := e.settings()
	if err != nil {
		return Term{}, err
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
	decay, err := e.decay()
	if err != nil {
		return Term{}, err
	}
	temp := tp.Scalar(lambda)
	c := relaxTerms{site: s, param: rx.param, mean: tp.Scalar(net.mean.Value.At(0, 0))}
	c.add(net.forward(rx.soft(z, temp)), net.forward(rx.soft(zt, temp)))
	if e.Concrete {
		fz, fzt, err := relaxedCosts(sc, rx, z, zt, temp)
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
	commit := net.commit(net.updateMean(s, sc.Signal, decay), moments)
	return Term{Loss: loss, Signal: signal, Commit: commit}, nil
}

// settings returns the hidden width of c_φ and the temperature, with
// their defaults applied.
func (e RELAX) settings() (hidden int, lambda float64, err error) {
	hidden = e.Hidden
	if hidden <= 0 {
		hidden = 16
	}
	lambda = e.Temperature
	if lambda == 0 {
		lambda = 0.5
	}
	if !(lambda > 0) || math.IsInf(lambda, 0) {
		return 0, 0, fmt.Errorf("RELAX: temperature must be > 0 and finite, got %v", lambda)
	}
	return hidden, lambda, nil
}

// decay returns the decay of the running mean m, with its default
// applied.
func (e RELAX) decay() (float64, error) {
	decay := e.Decay
	if decay == 0 {
		decay = 0.9
	}
	if !(decay >= 0 && decay < 1) {
		return 0, fmt.Errorf("RELAX: Decay must be in [0, 1), got %v", decay)
	}
	return decay, nil
}

// relaxedCosts returns the cost re-run at the relaxed values of z and zt.
func relaxedCosts(sc *SiteContext, rx relaxation, z, zt, temp *ad.Tensor) (fz, fzt *ad.Tensor, err error) {
	ch := newRelaxedRerun(sc)
	if fz, err = ch.eval(sc, rx, z, temp); err != nil {
		return nil, nil, err
	}
	if fzt, err = ch.eval(sc, rx, zt, temp); err != nil {
		return nil, nil, err
	}
	return fz, fzt, nil
}

// commit returns the commit of a step: updateMean, when not nil, and the
// move of the running moments toward this step's moments.
func (n *relaxNet) commit(updateMean func(), moments []float64) func() {
	return func() {
		if updateMean != nil {
			updateMean()
		}
		raw := n.moments.Value.RawMatrix().Data
		for i, v := range moments {
			raw[i] = momentDecay*raw[i] + (1-momentDecay)*v
		}
	}
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
