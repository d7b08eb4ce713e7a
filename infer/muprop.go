package infer

import (
	"errors"
	"fmt"

	"github.com/backpropq/backpropq/ad"
	"github.com/backpropq/backpropq/ppl"
	"github.com/backpropq/backpropq/ppl/dist"
	"github.com/backpropq/backpropq/trace"
)

// MuProp is the estimator of Gu et al. (2016) (paper appendix 5.3, eqs.
// 19-21): a score-function estimator whose control variate is the
// first-order Taylor expansion of the downstream cost f around the
// mean-field point μ = E[b],
//
//	c(b) = f(μ) + f'(μ)·(b - μ)
//	ĝ    = (f(b) - c(b)) ∇ log p(b) + f'(μ)·∇μ
//
// f(b) is the Rao-Blackwellized learning signal ([SiteContext].Signal).
// f(μ) and f'(μ) come from one mean-field pass: a re-run of the objective
// ([SiteContext].Rerun) with the site's value replaced by μ
// (trace.Override) and, as in Gu et al.'s mean-field network, every
// descendant whose distribution has a mean (dist.Meaner) replaced by its
// mean; f'(μ) is the gradient of that pass's cost with respect to μ, and
// ∇μ reaches the parameters through the term f'(μ)·μ. Because f(μ) and
// f'(μ) do not depend on the site's value b, E[c(b) ∇ log p(b)] = f'(μ)·∇μ
// whatever they are, so MuProp is unbiased for any cost, even one that is
// not differentiable (then f' is whatever the autodiff returns, and only
// the variance suffers).
//
// The site's distribution must have a mean of the value's shape (Bernoulli,
// OneHotCategorical, Normal, ...), and the model must accept a real value
// there; a Categorical (index-valued) site is rejected. The term's Signal is
// f(b) - c(b). MuProp is stateless and safe for concurrent use.
type MuProp struct{}

// Unbiased returns true.
func (MuProp) Unbiased() bool { return true }

// Surrogate returns the MuProp term.
func (MuProp) Surrogate(sc *SiteContext) (Term, error) {
	s := sc.Site
	if s.LogProb == nil {
		return Term{}, errors.New("MuProp: the site has no log-probability (its value was substituted)")
	}
	if _, isIndex := s.Dist.(dist.Categorical); isIndex {
		return Term{}, errors.New("MuProp: a Categorical site holds class indices; use OneHotCategorical")
	}
	m, ok := s.Dist.(dist.Meaner)
	if !ok {
		return Term{}, fmt.Errorf("MuProp: distribution %T has no mean", s.Dist)
	}
	tp := s.LogProb.Tape()
	rows, cols := s.Value.Dims()
	mu := m.Mean()
	if mr, mc := mu.Dims(); mc != cols || (mr != rows && mr != 1) {
		return Term{}, fmt.Errorf("MuProp: mean is [%d x %d], value is [%d x %d]", mr, mc, rows, cols)
	}
	// The mean-field value: μ broadcast to the value's shape, as a new
	// leaf so that the pass's gradient with respect to it is f'(μ).
	muLeaf := tp.Const(ad.Add(tp.Zeros(rows, cols), ad.StopGradient(mu)).Value())
	desc := map[string]bool{}
	for _, d := range sc.Graph.Descendants(s.Addr) {
		desc[d] = true
	}
	override := trace.Override(func(site *ppl.Site) *ad.Tensor {
		if site.Addr == s.Addr {
			return muLeaf
		}
		if !desc[site.Addr] {
			return nil
		}
		dm, ok := site.Dist.(dist.Meaner)
		if !ok {
			return nil
		}
		mean := dm.Mean()
		br, bc := site.Dist.Shape()
		if r, c := mean.Dims(); r != br || c != bc {
			return nil
		}
		return mean
	})
	fmu, err := sc.Rerun(override)
	if err != nil {
		return Term{}, fmt.Errorf("MuProp: mean-field pass: %w", err)
	}
	grad := tp.Gradients(ad.Sum(fmu), muLeaf)[0]
	slope := tp.Const(grad)
	// c(b) = f(μ) + f'(μ)·(b - μ), row by row.
	cb := ad.Add(ad.StopGradient(fmu), ad.RowSum(ad.Mul(slope, ad.Sub(s.Value, muLeaf))))
	signal := ad.StopGradient(ad.Sub(sc.Signal, cb))
	loss := ad.Add(ad.Mul(s.LogProb, signal), ad.RowSum(ad.Mul(slope, mu)))
	return Term{Loss: rowMask(s, loss), Signal: signal}, nil
}
