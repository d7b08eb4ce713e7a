package infer

import (
	"fmt"
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
	// A value keeps d's interface value, not a new one.
	rel, _ := d.(dist.Relaxable)
	switch v := d.(type) {
	case dist.Bernoulli:
		p := v.Logits
		if p == nil {
			p = v.Probs
		}
		return relaxation{d: rel, param: p}, nil
	case *dist.Bernoulli:
		return newRelaxation(*v)
	case dist.OneHotCategorical:
		return relaxation{d: rel, param: v.Logits, categorical: true}, nil
	case *dist.OneHotCategorical:
		return newRelaxation(*v)
	case dist.Categorical:
		return relaxation{d: rel, param: v.Logits, categorical: true, index: true}, nil
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
