package infer

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sync"

	"github.com/backpropq/backpropq/ad"
	"github.com/backpropq/backpropq/ppl"
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
// computed them). The value 1[u < σ(α)] is the one the training run drew
// (u is drawn given it), whose cost is the site's learning signal, so ARM
// costs one re-run per site, none when the two values agree in every row,
// and needs no baseline. Where they agree in every column of a row the
// row's estimate is zero, exactly as its expectation given u. ARM works
// with Bernoulli sites only (logits or probabilities; see
// dist.Bernoulli.LogOdds) whose value was drawn from the distribution (not
// substituted).
//
// The term's Signal is f(1[u > σ(-α)]) - f(1[u < σ(α)]).
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
// is an unbiased estimate of ∂E[f(b)]/∂α_i, passed upstream like ARM's;
// b is the value the training run drew, so DisARM too costs one re-run per
// site. DisARM works with Bernoulli sites only. The term's Signal is
// f(b) - f(b̃).
type DisARM struct{}

// Unbiased returns true.
func (DisARM) Unbiased() bool { return true }

// Surrogate returns the DisARM term.
func (DisARM) Surrogate(sc *SiteContext) (Term, error) {
	return antithetic(sc, "DisARM", true)
}

// antithetic computes the ARM or DisARM term of a Bernoulli site.
//
// Both estimators evaluate f at two antithetic values made from one
// uniform u per element, one of which, 1[u < σ(α)], is distributed as the
// site itself. Instead of drawing u and re-running the objective twice, the
// term takes that value to be the one the training run drew, b, whose
// downstream cost is the site's learning signal, and draws u from its
// conditional distribution given b (uniform on (0, σ(α)) when b = 1, on
// (σ(α), 1) when b = 0); the pair then has the joint distribution of the
// construction, and only the other value needs a re-run.
func antithetic(sc *SiteContext, name string, disarm bool) (Term, error) {
	s := sc.Site
	if sc.TiedRows {
		return Term{}, fmt.Errorf("%s: the objective ties its rows together (an importance-weighted bound); use ScoreFunction", name)
	}
	rows := sc.Signal.Rows()
	logits, err := antitheticSite(s, rows)
	if err != nil {
		return Term{}, fmt.Errorf("%s: %w", name, err)
	}
	if s.Substituted || s.Value == nil {
		return Term{}, fmt.Errorf("%s: the site's value was substituted, not drawn from its distribution", name)
	}
	tp := logits.Tape()
	r, c := logits.Dims()
	if vr, vc := s.Value.Dims(); vr != r || vc != c {
		return Term{}, fmt.Errorf("%s: value is [%dx%d] but the logits are [%dx%d]", name, vr, vc, r, c)
	}
	alpha := logits.Data()
	drawn := s.Value.Data()
	pair := antitheticPairs.Get().(*antitheticPair)
	defer antitheticPairs.Put(pair)
	pair.draw(sc.Rand, alpha, drawn, r, c, disarm)
	var signal *ad.Tensor
	if pair.allSame {
		signal = tp.Zeros(r, 1)
	} else {
		pair.replay = replayValue{addr: s.Addr, value: tp.FromData(r, c, pair.other)}
		pair.hs[0] = &pair.replay
		f, err := sc.Rerun(pair.hs[:]...)
		pair.replay, pair.hs[0] = replayValue{}, nil
		if err != nil {
			return Term{}, fmt.Errorf("%s: %w", name, err)
		}
		// For DisARM the drawn value is b and the other b~; for ARM the
		// drawn value is 1[u < σ(α)] and the other 1[u > σ(-α)]. Either
		// way the signal is f(first) - f(second) of the estimator's
		// formula.
		if disarm {
			signal = ad.StopGradient(ad.Sub(sc.Signal, f))
		} else {
			signal = ad.StopGradient(ad.Sub(f, sc.Signal))
		}
		pair.fillGrad(signal.Data(), alpha, drawn, disarm)
	}
	loss := ad.RowSum(ad.Mul(tp.FromData(r, c, pair.g), logits))
	if s.Mask != nil {
		loss = ad.Where(s.Mask, loss, tp.Scalar(0))
	}
	return Term{Loss: loss, Signal: signal}, nil
}

// antitheticPair is the antithetic value of each element, the uniform it
// was made from and the estimate of the gradient with respect to the
// logits. Its memory is dead once the term is built (the tape copies what
// it keeps), so terms reuse it through antitheticPairs.
type antitheticPair struct {
	r, c int
	// u and other are, per element, the uniform and the other value; g is
	// the gradient estimate.
	u, other, g []float64
	// same marks a row whose other value equals the drawn one; allSame
	// reports that every row does.
	same    []bool
	allSame bool
	// replay gives the site its other value in the re-run, through hs.
	replay replayValue
	hs     [1]ppl.Handler
}

// replayValue gives the sample site at addr the value, as
// trace.ReplayValues does for one site.
type replayValue struct {
	addr  string
	value *ad.Tensor
}

func (h *replayValue) Handle(s *ppl.Site, next func(*ppl.Site)) {
	if s.Addr == h.addr && s.Kind == ppl.KindSample {
		s.Value = h.value
		s.Replayed = true
	}
	next(s)
}

var antitheticPairs = sync.Pool{New: func() any { return new(antitheticPair) }}

// draw sizes pr for the [r x c] logits alpha, draws u given the drawn
// values, makes the other value of each element and zeroes g.
func (pr *antitheticPair) draw(rng *rand.Rand, alpha, drawn []float64, r, c int, disarm bool) {
	pr.r, pr.c = r, c
	pr.u = slices.Grow(pr.u[:0], r*c)[:r*c]
	pr.other = slices.Grow(pr.other[:0], r*c)[:r*c]
	pr.g = slices.Grow(pr.g[:0], r*c)[:r*c]
	pr.same = slices.Grow(pr.same[:0], r)[:r]
	clear(pr.g)
	u, other, same := pr.u, pr.other, pr.same
	pr.allSame = true
	for i := 0; i < r; i++ {
		same[i] = true
		for j := 0; j < c; j++ {
			k := i*c + j
			p := sigmoid(alpha[k])
			v := rng.Float64()
			if drawn[k] != 0 {
				u[k] = v * p
			} else {
				u[k] = p + v*(1-p)
			}
			if disarm {
				other[k] = indicator(1-u[k] < p)
			} else {
				other[k] = indicator(u[k] > sigmoid(-alpha[k]))
			}
			if other[k] != indicator(drawn[k] != 0) {
				same[i] = false
			}
		}
		pr.allSame = pr.allSame && same[i]
	}
}

// fillGrad writes into g the estimate of the gradient with respect to
// the logits alpha, from diff, the signal f(first) - f(second) per row.
func (pr *antitheticPair) fillGrad(diff, alpha, drawn []float64, disarm bool) {
	r, c, u, other, same, g := pr.r, pr.c, pr.u, pr.other, pr.same, pr.g
	for i := 0; i < r; i++ {
		if same[i] {
			continue
		}
		for j := 0; j < c; j++ {
			k := i*c + j
			if disarm {
				if other[k] != indicator(drawn[k] != 0) {
					sign := 1.0
					if other[k] == 1 {
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
