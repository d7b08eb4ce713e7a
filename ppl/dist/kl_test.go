package dist

import (
	"errors"
	"math"
	"testing"

	"github.com/stretchr/testify/require"
	"gonum.org/v1/gonum/integrate/quad"
	"gonum.org/v1/gonum/stat/distuv"

	"github.com/backpropq/backpropq/ad"
)

// KL matches the Monte Carlo estimate E_p[log p(x) - log q(x)] within kSE
// standard errors, for every supported pair and parameterization.
func TestKLAgreesWithMonteCarlo(t *testing.T) {
	const n = 20000
	cases := []struct {
		name string
		pq   func(tp *ad.Tape) (Distribution, Distribution)
	}{
		{"Normal", func(tp *ad.Tape) (Distribution, Distribution) {
			return Normal{Loc: repeatRows(tp, n, 0.3, -1), Scale: row(tp, 1.2, 0.5)}, Normal{Loc: row(tp, 1, 0), Scale: tp.Scalar(0.8)}
		}},
		{"BernoulliLogits", func(tp *ad.Tape) (Distribution, Distribution) {
			return BernoulliLogits(repeatRows(tp, n, 0.3, -2, 1)), BernoulliLogits(row(tp, -1, 0, 3))
		}},
		{"BernoulliProbsLogits", func(tp *ad.Tape) (Distribution, Distribution) {
			return BernoulliProbs(repeatRows(tp, n, 0.3, 0.9, 0)), BernoulliLogits(row(tp, -1, 0, 3))
		}},
		{"BernoulliProbs", func(tp *ad.Tape) (Distribution, Distribution) {
			return BernoulliProbs(repeatRows(tp, n, 0.3, 0.9, 1)), BernoulliProbs(row(tp, 0.5, 0.1, 0.7))
		}},
		{"Categorical", func(tp *ad.Tape) (Distribution, Distribution) {
			return Categorical{Logits: repeatRows(tp, n, 0.3, -1, 2, 0)}, Categorical{Logits: row(tp, 1, 1, -1, 0.5)}
		}},
		{"OneHotCategorical", func(tp *ad.Tape) (Distribution, Distribution) {
			return OneHotCategorical{Logits: repeatRows(tp, n, 0.3, -1, 2, 0)}, OneHotCategorical{Logits: row(tp, 1, 1, -1, 0.5)}
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tp := ad.NewTape()
			p, q := c.pq(tp)
			kl, err := KL(p, q)
			require.NoError(t, err)
			require.Equal(t, []int{n, 1}, []int{kl.Rows(), kl.Cols()})
			x := p.Sample(newRNG())
			diff := ad.Sub(p.LogProb(x), q.LogProb(x)).Data()
			s := statsOf(diff)
			require.InDelta(t, kl.At(0, 0), s.mean, kSE*math.Sqrt(s.variance/n)+1e-12)
			for i := range n {
				require.Equal(t, kl.At(0, 0), kl.At(i, 0), "every row has the same parameters")
			}
		})
	}
}

// KL is exact against enumeration (discrete) and quadrature (Normal), is
// zero from a distribution to itself, and handles probabilities at the
// boundary: 0·log 0 = 0 and KL = +Inf where q excludes what p allows.
func TestKLExact(t *testing.T) {
	tp := ad.NewTape()
	t.Run("Normal", func(t *testing.T) {
		for _, c := range []struct{ mp, sp, mq, sq float64 }{{0, 1, 0, 1}, {0.3, 2, -1, 0.5}, {5, 0.1, 4, 3}} {
			kl := mustKL(Normal{Loc: tp.Scalar(c.mp), Scale: tp.Scalar(c.sp)}, Normal{Loc: tp.Scalar(c.mq), Scale: tp.Scalar(c.sq)}).Item()
			p, q := distuv.Normal{Mu: c.mp, Sigma: c.sp}, distuv.Normal{Mu: c.mq, Sigma: c.sq}
			want := quad.Fixed(func(x float64) float64 { return p.Prob(x) * (p.LogProb(x) - q.LogProb(x)) },
				c.mp-30*c.sp, c.mp+30*c.sp, 500, nil, 0)
			require.InDeltaf(t, want, kl, 1e-9*(1+want), "%+v", c)
		}
	})
	t.Run("Bernoulli", func(t *testing.T) {
		ps := []float64{0, 0.2, 0.5, 1, 0.7, 0}
		qs := []float64{0.3, 0.6, 0.5, 0.4, 0, 0}
		wants := []float64{-math.Log(0.7), 0.2*math.Log(0.2/0.6) + 0.8*math.Log(0.8/0.4), 0, -math.Log(0.4), math.Inf(1), 0}
		for i := range ps {
			kl := mustKL(BernoulliProbs(tp.Scalar(ps[i])), BernoulliProbs(tp.Scalar(qs[i]))).Item()
			require.False(t, math.IsNaN(kl))
			requireClose(t, wants[i], kl, "KL(Bern(%v) || Bern(%v))", ps[i], qs[i])
		}
		// Logits and probs give the same divergence.
		lp, lq := 0.4, -1.3
		want := mustKL(BernoulliProbs(tp.Scalar(sigmoidF(lp))), BernoulliProbs(tp.Scalar(sigmoidF(lq)))).Item()
		requireClose(t, want, mustKL(BernoulliLogits(tp.Scalar(lp)), BernoulliLogits(tp.Scalar(lq))).Item(), "logits")
	})
	t.Run("Categorical", func(t *testing.T) {
		lp, lq := []float64{0.3, -1, 2, 0}, []float64{1, 1, -1, 0.5}
		pl, ql := logSoftmaxF(lp), logSoftmaxF(lq)
		want := 0.0
		for k := range pl {
			want += math.Exp(pl[k]) * (pl[k] - ql[k])
		}
		requireClose(t, want, mustKL(Categorical{Logits: row(tp, lp...)}, Categorical{Logits: row(tp, lq...)}).Item(), "Categorical")
		requireClose(t, want, mustKL(&OneHotCategorical{Logits: row(tp, lp...)}, &OneHotCategorical{Logits: row(tp, lq...)}).Item(), "pointers")
		requireClose(t, 0, mustKL(Categorical{Logits: row(tp, lp...)}, Categorical{Logits: row(tp, lp...)}).Item(), "KL(p, p)")
	})
}

func TestKLErrors(t *testing.T) {
	tp, other := ad.NewTape(), ad.NewTape()
	normal := Normal{Loc: tp.Scalar(0), Scale: tp.Scalar(1)}
	cases := []struct {
		name string
		p, q Distribution
		msg  string
		noKL bool
	}{
		{"unsupported", normal, BernoulliLogits(tp.Scalar(0)),
			"dist: KL(dist.Normal, dist.Bernoulli): no closed-form KL divergence", true},
		{"mixed categorical", Categorical{Logits: row(tp, 1, 2)}, OneHotCategorical{Logits: row(tp, 1, 2)},
			"dist: KL(dist.Categorical, dist.OneHotCategorical): no closed-form KL divergence", true},
		{"relaxed", RelaxedBernoulli{Logits: tp.Scalar(0), Temperature: tp.Scalar(1)}, RelaxedBernoulli{Logits: tp.Scalar(0), Temperature: tp.Scalar(1)},
			"dist: KL(dist.RelaxedBernoulli, dist.RelaxedBernoulli): no closed-form KL divergence", true},
		{"shapes", Normal{Loc: row(tp, 1, 2), Scale: tp.Scalar(1)}, Normal{Loc: row(tp, 1, 2, 3), Scale: tp.Scalar(1)},
			"dist: KL(dist.Normal, dist.Normal): shapes [1x2] and [1x3] do not broadcast", false},
		{"classes", Categorical{Logits: row(tp, 1, 2)}, Categorical{Logits: row(tp, 1, 2, 3)},
			"dist: KL(dist.Categorical, dist.Categorical): shapes [1x2] and [1x3] do not broadcast", false},
		{"tapes", normal, Normal{Loc: other.Scalar(0), Scale: other.Scalar(1)},
			"dist: KL(dist.Normal, dist.Normal): parameters on different tapes", false},
		{"nil", Bernoulli{}, BernoulliLogits(tp.Scalar(0)),
			"dist: KL(dist.Bernoulli, dist.Bernoulli): nil parameter", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			kl, err := KL(c.p, c.q)
			require.Nil(t, kl)
			require.EqualError(t, err, c.msg)
			require.Equal(t, c.noKL, errors.Is(err, ErrNoKL))
		})
	}
}
