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
// The control variate is c(z) = c_φ(soft_λ(z)) [+ η·f(soft_λ(z)) when
// Concrete is set], where c_φ is a one-hidden-layer tanh MLP of the relaxed
// value (one per site, created in [SiteContext].Params under
// "infer/relax/<addr>/"), soft_λ the sigmoid or softmax at temperature λ,
// and the optional second part the REBAR control variate evaluated by
// re-running the objective with the relaxed value substituted (see
// [REBAR]), as Grathwohl et al. do for discrete models.
//
// Training the control variate: the variance gradient ∂E[ĝ²]/∂φ of
// Grathwohl et al. needs ∂/∂φ of a gradient (double backpropagation),
// which package ad cannot compute. RELAX therefore fits the control
// variate to the cost, minimizing E[(f(b) - c(z~))²] over φ (and η and
// log λ with Concrete), the approximation of paper section 5.6. The fit's
// gradient reaches only the control variate's parameters.
//
// Without Concrete, RELAX needs no re-run and also serves Categorical
// (index-valued) sites, feeding c_φ the relaxed one-hot row. With Concrete
// the site must hold values a relaxed value can replace (Bernoulli,
// OneHotCategorical), and the cost must be a smooth function of the relaxed
// values for the re-runs to give the derivative (relaxable descendants are
// relaxed with noise consistent with their drawn values; see [REBAR]).
//
// The term's Signal is f(b) - c(z~). A RELAX holds no state of its own and
// is safe for concurrent use.
type RELAX struct {
	// Hidden is the width of c_φ's hidden layer; 0 means 16.
	Hidden int
	// Temperature is λ's initial value; 0 means 0.5. λ is learned only
	// with Concrete.
	Temperature float64
	// Concrete adds the REBAR control variate η·f(soft_λ(z)), η starting
	// at 1.
	Concrete bool
}

// Unbiased returns true.
func (RELAX) Unbiased() bool { return true }

// relaxParams are the control variate's parameters bound to a tape.
type relaxParams struct {
	params  []*nn.Param
	tensors []*ad.Tensor
}

// bind binds p to tp and records it.
func (rp *relaxParams) bind(tp *ad.Tape, p *nn.Param) *ad.Tensor {
	t := tp.Var(p.Var)
	rp.params = append(rp.params, p)
	rp.tensors = append(rp.tensors, t)
	return t
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
	temp0 := e.Temperature
	if temp0 == 0 {
		temp0 = 0.5
	}
	if !(temp0 > 0) || math.IsInf(temp0, 0) {
		return Term{}, fmt.Errorf("RELAX: temperature must be > 0 and finite, got %v", temp0)
	}

	z := rx.reparam(rx.d.ConditionalRelaxedSample(s.Value, sc.Rand))
	zt := rx.d.ConditionalRelaxedSample(s.Value, sc.Rand)
	_, width := z.Dims()

	prefix := "infer/relax/" + s.Addr + "/"
	var rp relaxParams
	w1, err := sc.Params.Param(prefix+"W1", width, hidden, nn.GlorotUniform{}, sc.Rand)
	if err != nil {
		return Term{}, fmt.Errorf("RELAX: %w", err)
	}
	b1, err := sc.Params.Param(prefix+"b1", 1, hidden, nn.Zeros{}, nil)
	if err != nil {
		return Term{}, fmt.Errorf("RELAX: %w", err)
	}
	w2, err := sc.Params.Param(prefix+"W2", hidden, 1, nn.GlorotUniform{}, sc.Rand)
	if err != nil {
		return Term{}, fmt.Errorf("RELAX: %w", err)
	}
	b2, err := sc.Params.Param(prefix+"b2", 1, 1, nn.Zeros{}, nil)
	if err != nil {
		return Term{}, fmt.Errorf("RELAX: %w", err)
	}
	tw1, tb1, tw2, tb2 := rp.bind(tp, w1), rp.bind(tp, b1), rp.bind(tp, w2), rp.bind(tp, b2)
	temp := tp.Scalar(temp0)
	var eta *ad.Tensor
	var ch *relaxedRerun
	if e.Concrete {
		pe, err := storeScalar(sc.Params, prefix+"eta", 1)
		if err != nil {
			return Term{}, fmt.Errorf("RELAX: %w", err)
		}
		pl, err := storeScalar(sc.Params, prefix+"log_temperature", math.Log(temp0))
		if err != nil {
			return Term{}, fmt.Errorf("RELAX: %w", err)
		}
		eta = rp.bind(tp, pe)
		temp = ad.Exp(rp.bind(tp, pl))
		ch = newRelaxedRerun(sc)
	}
	cv := func(zz *ad.Tensor) (*ad.Tensor, error) {
		x := rx.soft(zz, temp)
		h := ad.Tanh(ad.Add(ad.MatMul(x, tw1), tb1))
		out := ad.Add(ad.MatMul(h, tw2), tb2)
		if !e.Concrete {
			return out, nil
		}
		f, err := ch.eval(sc, rx, zz, temp)
		if err != nil {
			return nil, err
		}
		return ad.Add(out, ad.Mul(eta, f)), nil
	}
	cz, err := cv(z)
	if err != nil {
		return Term{}, fmt.Errorf("RELAX: %w", err)
	}
	czt, err := cv(zt)
	if err != nil {
		return Term{}, fmt.Errorf("RELAX: %w", err)
	}
	signal := ad.StopGradient(ad.Sub(sc.Signal, czt))
	logp := s.LogProb
	main := ad.Sum(rowMask(s, ad.Add(ad.Mul(logp, signal), ad.Sub(cz, czt))))
	ghat := tp.Gradients(main, rx.param)[0]
	fit := ad.Sum(rowMask(s, ad.Square(ad.Sub(ad.StopGradient(sc.Signal), czt))))
	fitGrads := tp.Gradients(fit, rp.tensors...)
	loss := linearTerm(rx.param, ghat)
	for i, t := range rp.tensors {
		loss = ad.Add(loss, linearTerm(t, fitGrads[i]))
	}
	return Term{Loss: loss, Signal: signal}, nil
}
