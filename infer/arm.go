package infer

import (
	"fmt"
	"math"

	"github.com/backpropq/backpropq/ad"
	"github.com/backpropq/backpropq/trace"
)

// ARM is the augment-REINFORCE-merge estimator of Yin and Zhou (2019) for
// Bernoulli sites. With the site's logits α, one uniform u per element,
// and f(b) the downstream cost re-run with the site's value set to b
// ([SiteContext].Rerun),
//
//	g_α = (f(1[u > σ(-α)]) - f(1[u < σ(α)])) · (u - 1/2)
//
// is an unbiased estimate of ∇_α E[f(b)], which the term
// Σ stopgrad(g_α)·α passes upstream through the logits tensor (to whatever
// computed them). It costs two re-runs per site and needs no baseline. The
// two values are antithetic: where they agree in every column of a row
// the row's estimate is zero, exactly as its expectation given u. ARM works
// with Bernoulli sites only (logits or probabilities; see
// dist.Bernoulli.LogOdds).
//
// The term's Signal is f(b₁) - f(b₂).
type ARM struct{}

// Unbiased returns true.
func (ARM) Unbiased() bool { return true }

// Surrogate returns the ARM term.
func (ARM) Surrogate(sc *SiteContext) (Term, error) {
	return antithetic(sc, "ARM", false)
}

// DisARM is the antithetic estimator of Dong, Mnih and Tucker (2020),
// which integrates out the augmenting uniform of [ARM] and so has lower
// variance at the same cost. With u uniform, b = 1[u < σ(α)] and
// b̃ = 1[1-u < σ(α)], per element i
//
//	g_αi = ½ (f(b) - f(b̃)) · (-1)^b̃_i · 1[b_i ≠ b̃_i] · σ(|α_i|)
//
// is an unbiased estimate of ∂E[f(b)]/∂α_i, passed upstream like ARM's.
// DisARM works with Bernoulli sites only. The term's Signal is
// f(b) - f(b̃).
type DisARM struct{}

// Unbiased returns true.
func (DisARM) Unbiased() bool { return true }

// Surrogate returns the DisARM term.
func (DisARM) Surrogate(sc *SiteContext) (Term, error) {
	return antithetic(sc, "DisARM", true)
}

// antithetic computes the ARM or DisARM term of a Bernoulli site.
func antithetic(sc *SiteContext, name string, disarm bool) (Term, error) {
	s := sc.Site
	rows := sc.Signal.Rows()
	logits, err := antitheticSite(s, rows)
	if err != nil {
		return Term{}, fmt.Errorf("%s: %w", name, err)
	}
	tp := logits.Tape()
	r, c := logits.Dims()
	alpha := logits.Data()
	u := make([]float64, r*c)
	b1 := make([]float64, r*c)
	b2 := make([]float64, r*c)
	same := make([]bool, r)
	allSame := true
	for i := 0; i < r; i++ {
		same[i] = true
		for j := 0; j < c; j++ {
			k := i*c + j
			u[k] = sc.Rand.Float64()
			a := alpha[k]
			if disarm {
				b1[k] = indicator(u[k] < sigmoid(a))
				b2[k] = indicator(1-u[k] < sigmoid(a))
			} else {
				b1[k] = indicator(u[k] > sigmoid(-a))
				b2[k] = indicator(u[k] < sigmoid(a))
			}
			if b1[k] != b2[k] {
				same[i] = false
			}
		}
		allSame = allSame && same[i]
	}
	g := make([]float64, r*c)
	var signal *ad.Tensor
	if allSame {
		signal = tp.Zeros(r, 1)
	} else {
		f1, err := sc.Rerun(trace.ReplayValues(map[string]*ad.Tensor{s.Addr: tp.FromData(r, c, b1)}))
		if err != nil {
			return Term{}, fmt.Errorf("%s: %w", name, err)
		}
		f2, err := sc.Rerun(trace.ReplayValues(map[string]*ad.Tensor{s.Addr: tp.FromData(r, c, b2)}))
		if err != nil {
			return Term{}, fmt.Errorf("%s: %w", name, err)
		}
		signal = ad.StopGradient(ad.Sub(f1, f2))
		diff := signal.Data()
		for i := 0; i < r; i++ {
			if same[i] {
				continue
			}
			for j := 0; j < c; j++ {
				k := i*c + j
				if disarm {
					if b1[k] != b2[k] {
						sign := 1.0
						if b2[k] == 1 {
							sign = -1
						}
						g[k] = 0.5 * diff[i] * sign * sigmoid(math.Abs(alpha[k]))
					}
				} else {
					g[k] = diff[i] * (u[k] - 0.5)
				}
			}
		}
	}
	loss := ad.RowSum(ad.Mul(tp.FromData(r, c, g), logits))
	if s.Mask != nil {
		loss = ad.Where(s.Mask, loss, tp.Scalar(0))
	}
	return Term{Loss: loss, Signal: signal}, nil
}

// sigmoid is the logistic function, computed without overflow.
func sigmoid(x float64) float64 {
	if x >= 0 {
		return 1 / (1 + math.Exp(-x))
	}
	e := math.Exp(x)
	return e / (1 + e)
}

// indicator returns 1 for true and 0 for false.
func indicator(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
