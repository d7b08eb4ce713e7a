package infer

import (
	"errors"
	"fmt"

	"github.com/backpropq/backpropq/ad"
	"github.com/backpropq/backpropq/ppl"
	"github.com/backpropq/backpropq/ppl/dist"
	"github.com/backpropq/backpropq/trace"
)

// DefaultMaxConfigs is the largest support [Enumerate] sums over when its
// MaxConfigs is zero.
const DefaultMaxConfigs = 1 << 10

// Enumerate is the exact sum over a small discrete site's support: with
// the site's value set to each point v of its support in turn (the same v
// in every row), the objective is re-run ([SiteContext].Rerun, sites that
// do not descend from the site keep their values, descendants are drawn
// anew) to get the downstream cost f(v), and the site's term is
//
//	Σ_v p(v | parents) · stopgrad(f(v))
//
// whose gradient is the exact Σ_v ∇p(v) f(v) given one draw of the rest of
// the graph; the gradient of f itself comes from the costs of the training
// run, as for every estimator. It is unbiased and has no variance from the
// site itself, at the price of one re-run per point of the support.
//
// Supported sites: Bernoulli with D columns (2^D configurations of a row),
// Categorical and OneHotCategorical with K classes. A larger support than
// MaxConfigs (DefaultMaxConfigs when zero) is an error.
type Enumerate struct {
	MaxConfigs int
}

// Unbiased returns true.
func (Enumerate) Unbiased() bool { return true }

// Surrogate returns the enumerated term.
func (e Enumerate) Surrogate(sc *SiteContext) (Term, error) {
	s := sc.Site
	if sc.TiedRows {
		return Term{}, errors.New("Enumerate: the objective ties its rows together (an importance-weighted bound); use ScoreFunction")
	}
	rows := sc.Signal.Rows()
	limit := e.MaxConfigs
	if limit <= 0 {
		limit = DefaultMaxConfigs
	}
	values, err := support(s.Dist, rows, limit, sc.Signal.Tape())
	if err != nil {
		return Term{}, fmt.Errorf("Enumerate: %w", err)
	}
	var loss *ad.Tensor
	for _, v := range values {
		f, err := sc.Rerun(trace.ReplayValues(map[string]*ad.Tensor{s.Addr: v}))
		if err != nil {
			return Term{}, fmt.Errorf("Enumerate: %w", err)
		}
		t := ad.Mul(ad.Exp(s.Dist.LogProb(v)), ad.StopGradient(f))
		if loss == nil {
			loss = t
		} else {
			loss = ad.Add(loss, t)
		}
	}
	if s.Mask != nil {
		loss = ad.Where(s.Mask, loss, loss.Tape().Scalar(0))
	}
	return Term{Loss: loss}, nil
}

// support returns the points of d's support as [rows x D] values, each the
// same in every row, or an error for a distribution that is not
// dist.Finite or a support larger than limit.
func support(d dist.Distribution, rows int, limit int, tp *ad.Tape) ([]*ad.Tensor, error) {
	f, ok := d.(dist.Finite)
	if !ok {
		return nil, fmt.Errorf("cannot enumerate the support of %T (not a dist.Finite distribution)", d)
	}
	if n := f.SupportSize(); n > limit || n > dist.MaxSupportSize {
		return nil, fmt.Errorf("a %T site with %d points of support, more than %d", d, n, min(limit, dist.MaxSupportSize))
	}
	return f.EnumerateSupport(tp, rows), nil
}

// bernoulliOf returns d as a Bernoulli.
func bernoulliOf(d dist.Distribution) (dist.Bernoulli, bool) {
	switch d := d.(type) {
	case dist.Bernoulli:
		return d, true
	case *dist.Bernoulli:
		return *d, true
	}
	return dist.Bernoulli{}, false
}

// antitheticSite is what ARM and DisARM need of a Bernoulli site: its
// logits broadcast to the value's shape.
func antitheticSite(s *ppl.Site, rows int) (logits *ad.Tensor, err error) {
	b, ok := bernoulliOf(s.Dist)
	if !ok {
		return nil, fmt.Errorf("needs a Bernoulli site, got %T", s.Dist)
	}
	logits = b.LogOdds()
	if err := checkFinite(logits); err != nil {
		return nil, fmt.Errorf("logits %w", err)
	}
	r, c := b.Shape()
	if r != rows && r == 1 {
		logits = ad.Add(logits, logits.Tape().Zeros(rows, c))
	}
	return logits, nil
}
