package infer

import (
	"fmt"
)

// Pathwise is the reparameterization estimator (paper appendix 5.4, eq.
// 22): the site is drawn with RSample, so the gradient of every cost
// reaches the distribution's parameters through the value, and the
// estimator adds no term of its own. It is unbiased, and the default for
// sites whose distribution can RSample (see [Estimators]).
//
// Surrogate returns an error naming the distribution when the site's value
// was not drawn with RSample (a distribution without one, or a value a
// handler supplied).
type Pathwise struct{}

// Unbiased returns true.
func (Pathwise) Unbiased() bool { return true }

// Reparameterizes returns true: the site is drawn with RSample.
func (Pathwise) Reparameterizes() bool { return true }

// Surrogate returns an empty term: the pathwise gradient flows through the
// costs.
func (Pathwise) Surrogate(sc *SiteContext) (Term, error) {
	s := sc.Site
	if !s.Reparameterized && !s.Replayed && !s.Substituted {
		return Term{}, fmt.Errorf("Pathwise: the value was not drawn with RSample (%T cannot reparameterize)", s.Dist)
	}
	return Term{}, nil
}
