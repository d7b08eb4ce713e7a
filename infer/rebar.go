package infer

import (
	"errors"
	"fmt"
	"math"

	"gonum.org/v1/gonum/mat"

	"github.com/backpropq/backpropq/ad"
	"github.com/backpropq/backpropq/nn"
)

// REBAR is the estimator of Tucker et al. (2017) for Bernoulli and
// OneHotCategorical sites (paper appendix 5.7, eqs. 25-26). With b the
// site's value, z ~ p(z | b) the relaxed pre-threshold sample behind it
// (reparameterized as z(ε; θ), so that b = H(z)), z~ ~ p(z | b) a second,
// conditional one reparameterized given b, and the control variate
// c(z) = η·f(σ_λ(z)),
//
//	ĝ = (f(b) - η f(σ_λ(z~))) ∇ log p(b) + η ∇ f(σ_λ(z)) - η ∇ f(σ_λ(z~))
//
// where f(b) is the Rao-Blackwellized learning signal ([SiteContext].Signal)
// and f(σ_λ(·)) the downstream cost of a re-run of the objective
// ([SiteContext].Rerun) with the relaxed value σ_λ(z) (a sigmoid, or a
// softmax for a categorical site, at temperature λ) substituted at the site
// (trace.Override). The estimate is unbiased for every λ > 0 and every η.
// It is passed upstream through the distribution's parameter tensor
// (Σ stopgrad(ĝ)·θ), so the relaxed re-runs send no gradient to anything
// else.
//
// Descendant sites: in the re-runs every relaxable descendant with a drawn
// value b_d is relaxed too, with noise ε_d ~ p(ε | b_d) consistent with its
// drawn value and independent of b, and every other site downstream draws
// from one random source shared by the re-runs at z and z~ (Tucker et al.
// relax a multi-layer network the same way; the random source is passed
// to the re-runs as a ppl.Config handler). The estimate stays unbiased as
// long as the downstream cost is then a differentiable function of the
// relaxed value: a discrete descendant that is not relaxed (a Categorical,
// index-valued site, or one whose training value was itself substituted,
// by a [GumbelSoftmax] say) is drawn afresh in each re-run, which makes
// the cost a step function of the relaxed value and biases the estimate.
//
// Training η and λ: REBAR minimizes the variance of the estimate of the
// gradient with respect to the site's parameter tensor, E[|ĝ|²]. ĝ is affine
// in η, ĝ = A + ηB, so its η-gradient 2Σ ĝ⊙B is computed exactly. The
// λ-gradient needs the derivative of B, itself a gradient, with respect to
// λ; package ad has no double backpropagation, so REBAR takes a forward
// finite difference in log λ with the same noise (two more re-runs), step
// FDStep: 2η Σ ĝ⊙(B(λe^h) - B(λ))/h. These gradients are given to the
// parameters "infer/rebar/<addr>/eta" and "infer/rebar/<addr>/log_temperature"
// of [SiteContext].Params, which the training loop steps with the model's;
// they change nothing else. With Fixed, η and λ keep their initial values
// and no parameter is created.
//
// Cost per site and step: two re-runs (four when λ is learned) and two or
// three backward passes over the step's tape. The term's Signal is
// f(b) - η f(σ_λ(z~)). A REBAR holds no state of its own and is safe for
// concurrent use.
type REBAR struct {
	// Temperature is λ's initial value; 0 means 0.5.
	Temperature float64
	// Eta is η's initial value; 0 means 1.
	Eta float64
	// Fixed keeps λ and η at their initial values.
	Fixed bool
	// FDStep is the step h in log λ of the finite difference; 0 means
	// 1e-3.
	FDStep float64
}

// Unbiased returns true.
func (REBAR) Unbiased() bool { return true }

// Surrogate returns the REBAR term.
func (e REBAR) Surrogate(sc *SiteContext) (Term, error) {
	s := sc.Site
	rx, err := newRelaxation(s.Dist)
	if err != nil {
		return Term{}, fmt.Errorf("REBAR: %w", err)
	}
	if err := rx.substitutable("REBAR"); err != nil {
		return Term{}, err
	}
	if s.LogProb == nil {
		return Term{}, errors.New("REBAR: the site has no log-probability (its value was substituted)")
	}
	tp := s.LogProb.Tape()
	temp0, eta0, h, err := e.settings()
	if err != nil {
		return Term{}, err
	}
	etaP, tempP, eta, lambda, err := e.learned(sc, temp0, eta0)
	if err != nil {
		return Term{}, err
	}

	z := rx.reparam(rx.d.ConditionalRelaxedSample(s.Value, sc.Rand))
	zt := rx.d.ConditionalRelaxedSample(s.Value, sc.Rand)
	ch := newRelaxedRerun(sc)
	logp := s.LogProb
	// controlGrad returns B at temperature lambda and the relaxed cost at
	// z~.
	controlGrad := func(lambda float64) (*mat.Dense, *ad.Tensor, error) {
		temp := tp.Scalar(lambda)
		fz, err := ch.eval(sc, rx, z, temp)
		if err != nil {
			return nil, nil, err
		}
		fzt, err := ch.eval(sc, rx, zt, temp)
		if err != nil {
			return nil, nil, err
		}
		lossB := ad.Sum(rowMask(s, ad.Sub(ad.Sub(fz, fzt), ad.Mul(logp, ad.StopGradient(fzt)))))
		return tp.Gradients(lossB, rx.param)[0], fzt, nil
	}
	gB, fzt, err := controlGrad(lambda)
	if err != nil {
		return Term{}, fmt.Errorf("REBAR: %w", err)
	}
	lossA := ad.Sum(rowMask(s, ad.Mul(logp, ad.StopGradient(sc.Signal))))
	gA := tp.Gradients(lossA, rx.param)[0]
	var ghat mat.Dense
	ghat.Scale(eta, gB)
	ghat.Add(&ghat, gA)
	loss := linearTerm(rx.param, &ghat)
	if !e.Fixed {
		dEta := 2 * mat.Sum(elemMul(&ghat, gB))
		loss = ad.Add(loss, ad.Mul(tp.Var(etaP.Var), tp.Scalar(dEta)))
		gB2, _, err := controlGrad(lambda * math.Exp(h))
		if err != nil {
			return Term{}, fmt.Errorf("REBAR: %w", err)
		}
		var dB mat.Dense
		dB.Sub(gB2, gB)
		dLogTemp := 2 * eta * mat.Sum(elemMul(&ghat, &dB)) / h
		loss = ad.Add(loss, ad.Mul(tp.Var(tempP.Var), tp.Scalar(dLogTemp)))
	}
	signal := ad.StopGradient(ad.Sub(sc.Signal, ad.Scale(fzt, eta)))
	return Term{Loss: loss, Signal: signal}, nil
}

// settings returns the initial temperature and eta and the
// finite-difference step, with their defaults applied.
func (e REBAR) settings() (temp0, eta0, h float64, err error) {
	temp0, eta0, h = e.Temperature, e.Eta, e.FDStep
	if temp0 == 0 {
		temp0 = 0.5
	}
	if eta0 == 0 {
		eta0 = 1
	}
	if h == 0 {
		h = 1e-3
	}
	if !(temp0 > 0) || math.IsInf(temp0, 0) || math.IsNaN(eta0) || math.IsInf(eta0, 0) || !(h > 0) {
		return 0, 0, 0, fmt.Errorf("REBAR: need temperature > 0, finite eta and FDStep > 0, got %v, %v, %v", temp0, eta0, h)
	}
	return temp0, eta0, h, nil
}

// learned returns eta and the temperature of the site: temp0 and eta0
// when they are Fixed, else the values of their parameters in the store
// (created from temp0 and eta0), which it also returns.
func (e REBAR) learned(sc *SiteContext, temp0, eta0 float64) (etaP, tempP *nn.Param, eta, lambda float64, err error) {
	s := sc.Site
	lambda, eta = temp0, eta0
	if !e.Fixed {
		if sc.Params == nil {
			return nil, nil, 0, 0, errors.New("REBAR: no parameter store in the site context for eta and the temperature (set Fixed to keep them constant)")
		}
		prefix := "infer/rebar/" + s.Addr + "/"
		if etaP, err = storeScalar(sc.Params, prefix+"eta", eta0); err != nil {
			return nil, nil, 0, 0, fmt.Errorf("REBAR: %w", err)
		}
		if tempP, err = storeScalar(sc.Params, prefix+"log_temperature", math.Log(temp0)); err != nil {
			return nil, nil, 0, 0, fmt.Errorf("REBAR: %w", err)
		}
		eta, lambda = etaP.Value.At(0, 0), math.Exp(tempP.Value.At(0, 0))
	}
	return etaP, tempP, eta, lambda, nil
}

// elemMul returns the elementwise product of a and b in a new matrix.
func elemMul(a, b *mat.Dense) *mat.Dense {
	var out mat.Dense
	out.MulElem(a, b)
	return &out
}
