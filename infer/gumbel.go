package infer

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/backpropq/backpropq/ad"
	"github.com/backpropq/backpropq/ppl"
)

// GumbelSoftmax is the continuous-relaxation estimator of paper appendix
// 5.5 (eq. 23): the Concrete distribution of Maddison et al. (2017) for a
// Bernoulli site, the Gumbel-softmax of Jang et al. (2017) for a
// OneHotCategorical site. It is a [Drawer]: the training run draws the
// pre-threshold sample z (logistic or Gumbel noise added to the log-odds or
// log-probabilities) and puts the relaxed value σ(z/λ) (softmax(z/λ) for a
// categorical site) in place of the discrete one, so the gradient reaches
// the site's parameters pathwise through the downstream costs; the site's
// own term is empty.
//
// With StraightThrough, the run uses the hard value b = H(z), distributed
// exactly as the site's distribution, while the gradient is that of the
// relaxed value (value b, gradient path σ(z/λ): σ + stopgrad(b - σ)).
//
// GumbelSoftmax is biased: the relaxed form optimizes the cost at relaxed
// values f(σ(z/λ)) rather than f(b), and the straight-through form uses a
// gradient that belongs to neither. The bias vanishes as λ → 0 for the
// relaxed form (while the variance grows like 1/λ); the straight-through
// form stays biased at every temperature for a nonlinear cost. The model
// must accept real values at the site (a Categorical site, which holds
// class indices, is not relaxed and [GumbelSoftmax.Surrogate] fails).
//
// The term's Signal is the Rao-Blackwellized learning signal, for
// diagnostics only. GumbelSoftmax is stateless and safe for concurrent use.
type GumbelSoftmax struct {
	// Temperature is λ; 0 means 0.5.
	Temperature float64
	// StraightThrough uses the hard value in the run, with the relaxed
	// gradient.
	StraightThrough bool
}

// Unbiased returns false: see [GumbelSoftmax] for the bias.
func (GumbelSoftmax) Unbiased() bool { return false }

// temperature returns λ.
func (g GumbelSoftmax) temperature() float64 {
	if g.Temperature == 0 {
		return 0.5
	}
	return g.Temperature
}

// Draw returns the relaxed (or straight-through) value of the site, or nil
// when its distribution has no relaxation that can stand in for its value
// or the temperature is not positive and finite.
func (g GumbelSoftmax) Draw(s *ppl.Site, rng *rand.Rand) *ad.Tensor {
	rx, err := newRelaxation(s.Dist)
	if err != nil || rx.index || rx.param == nil {
		return nil
	}
	lambda := g.temperature()
	if !(lambda > 0) || math.IsInf(lambda, 0) {
		return nil
	}
	z, b := rx.d.RelaxedSample(rng)
	soft := rx.soft(z, z.Tape().Scalar(lambda))
	if !g.StraightThrough {
		return soft
	}
	return ad.Add(soft, ad.StopGradient(ad.Sub(b, soft)))
}

// Surrogate returns an empty term (the gradient flows through the costs),
// or an error when the training run did not relax the site.
func (g GumbelSoftmax) Surrogate(sc *SiteContext) (Term, error) {
	s := sc.Site
	if lambda := g.temperature(); !(lambda > 0) || math.IsInf(lambda, 0) {
		return Term{}, fmt.Errorf("GumbelSoftmax: temperature must be > 0 and finite, got %v", lambda)
	}
	if !s.Substituted {
		if _, err := newRelaxation(s.Dist); err != nil {
			return Term{}, fmt.Errorf("GumbelSoftmax: %w", err)
		}
		return Term{}, fmt.Errorf("GumbelSoftmax: the site was not relaxed in the training run (a %T site holds class indices, use OneHotCategorical; or the site was replayed)", s.Dist)
	}
	return Term{Signal: sc.Signal}, nil
}
