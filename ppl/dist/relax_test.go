package dist

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/backpropq/backpropq/ad"
)

// As the temperature goes to 0, relaxed samples approach the vertices
// {0, 1} or the one-hot vectors: the mean distance to the nearest vertex
// falls with the temperature, in proportion to it (the theory gives about
// 0.3·λ for these logits).
func TestRelaxedSamplesApproachOneHot(t *testing.T) {
	const n = 5000
	temps := []float64{1, 0.3, 0.1, 0.03, 0.01, 0.001}
	cases := []struct {
		name string
		// distance returns the mean distance of n samples to the nearest
		// vertex: min(x, 1-x) for binary, 1 - max_k x_k (half the L1
		// distance to the one-hot of the argmax) for the simplex.
		distance func(temp float64) float64
	}{
		{"RelaxedBernoulli", func(temp float64) float64 {
			tp := ad.NewTape()
			x := RelaxedBernoulli{Logits: repeatRows(tp, n, 0.5, -1), Temperature: tp.Scalar(temp)}.RSample(newRNG())
			s := 0.0
			for _, v := range x.Data() {
				s += min(v, 1-v)
			}
			return s / float64(len(x.Data()))
		}},
		{"RelaxedOneHotCategorical", func(temp float64) float64 {
			tp := ad.NewTape()
			x := RelaxedOneHotCategorical{Logits: repeatRows(tp, n, 0.5, -1, 1), Temperature: tp.Scalar(temp)}.RSample(newRNG())
			s := 0.0
			for i := range n {
				r := x.Data()[3*i : 3*i+3]
				s += 1 - max(r[0], r[1], r[2])
			}
			return s / n
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			prev := math.Inf(1)
			for _, temp := range temps {
				d := c.distance(temp)
				t.Logf("temperature %v: mean distance to the nearest vertex %.3g", temp, d)
				require.Lessf(t, d, prev, "temperature %v", temp)
				if temp <= 0.1 {
					require.Lessf(t, d, temp, "distance is O(temperature) at %v", temp)
				}
				prev = d
			}
			require.Less(t, prev, 1e-3)
		})
	}
}

// H(z) = b for the relaxed sample and H(z~) = b for the conditional
// relaxed sample, exactly, for every draw, including logits so extreme
// that b is nearly impossible.
func TestConditionalRelaxedSampleHasHardValueB(t *testing.T) {
	const n = 3000
	t.Run("Bernoulli", func(t *testing.T) {
		logits := []float64{-40, -20, -5, -1, 0, 0.5, 3, 20, 40}
		probs := []float64{0.001, 0.2, 0.5, 0.9, 0.999}
		for _, d := range []func(tp *ad.Tape) Bernoulli{
			func(tp *ad.Tape) Bernoulli { return BernoulliLogits(row(tp, logits...)) },
			func(tp *ad.Tape) Bernoulli { return BernoulliProbs(row(tp, probs...)) },
		} {
			tp := ad.NewTape()
			dist := d(tp)
			_, cols := dist.Shape()
			rng := newRNG()
			for _, fillB := range []func(i, j int) float64{
				func(int, int) float64 { return 0 },
				func(int, int) float64 { return 1 },
				func(int, int) float64 { return float64(rng.IntN(2)) },
			} {
				b := fill(tp, n, cols, fillB)
				zt := dist.ConditionalRelaxedSample(b, rng)
				require.Equal(t, b.Data(), dist.Hard(zt).Data())
				for _, v := range zt.Data() {
					require.False(t, math.IsNaN(v) || math.IsInf(v, 0), "z~ %v", v)
				}
			}
			z, b := BernoulliLogits(repeatRows(tp, n, logits...)).RelaxedSample(rng)
			require.Equal(t, dist.Hard(z).Data(), b.Data())
		}
	})
	logits := []float64{-30, 0, 30, 5, 1}
	k := len(logits)
	t.Run("Categorical", func(t *testing.T) {
		tp := ad.NewTape()
		d := Categorical{Logits: row(tp, logits...)}
		b := fill(tp, n, 1, func(i, _ int) float64 { return float64(i % k) })
		zt := d.ConditionalRelaxedSample(b, newRNG())
		require.Equal(t, []int{n, k}, []int{zt.Rows(), zt.Cols()})
		require.Equal(t, b.Data(), d.Hard(zt).Data())
		z, hb := Categorical{Logits: repeatRows(tp, n, logits...)}.RelaxedSample(newRNG())
		require.Equal(t, d.Hard(z).Data(), hb.Data())
	})
	t.Run("OneHotCategorical", func(t *testing.T) {
		tp := ad.NewTape()
		d := OneHotCategorical{Logits: row(tp, logits...)}
		b := fill(tp, n, k, func(i, j int) float64 { return b2f(j == (i*7)%k) })
		zt := d.ConditionalRelaxedSample(b, newRNG())
		require.Equal(t, b.Data(), d.Hard(zt).Data())
		require.NoError(t, d.ValidateValue(d.Hard(zt)))
	})
}

// seqSource replays fixed 64-bit words, so that the uniform draws of a
// sampler can be chosen; rand.Rand.Float64 maps w to (w mod 2^53)/2^53.
type seqSource struct {
	words []uint64
	i     int
}

func (s *seqSource) Uint64() uint64 {
	w := s.words[s.i%len(s.words)]
	s.i++
	return w
}

// When v_b is tiny and v_k is 1-2^-53, z~_k rounds to z~_b; the sampler
// must lower it by one ulp so that the argmax stays b.
func TestConditionalGumbelBreaksRoundingTies(t *testing.T) {
	const tinyU = 1        // Float64() = 2^-53
	const topU = 1<<53 - 1 // Float64() = 1 - 2^-53
	for _, b := range []int{0, 1} {
		tp := ad.NewTape()
		d := Categorical{Logits: row(tp, 0, 0)}
		words := []uint64{topU, topU}
		words[b] = tinyU
		zt := d.ConditionalRelaxedSample(col(tp, float64(b)), rand.New(&seqSource{words: words}))
		top := zt.At(0, b)
		require.InDelta(t, -math.Log(-math.Log(0x1p-53)), top, 1e-12)
		require.Equal(t, math.Nextafter(top, math.Inf(-1)), zt.At(0, 1-b), "b %d: the tie is broken by one ulp", b)
		require.Equal(t, float64(b), d.Hard(zt).Item())
	}
}

// The conditional sample is distributed as p(z | b): drawing b from the
// distribution and then z~ given b reproduces the marginal law of z,
// which is logistic (Bernoulli) or independent Gumbel (Categorical). The
// empirical CDF at several points matches within kSE standard errors, as
// it does for the relaxed sample z itself. Since the conditionals for
// different b live on disjoint sets (H(z~) = b), a match of the mixture
// means a match of each conditional.
func TestConditionalRelaxedSampleMixesToMarginal(t *testing.T) {
	const n = 20000
	t.Run("Bernoulli", func(t *testing.T) {
		for _, l := range []float64{-1.5, 0, 2} {
			tp := ad.NewTape()
			d := BernoulliLogits(repeatRows(tp, n, l))
			rng := newRNG()
			b := d.Sample(rng)
			zt := d.ConditionalRelaxedSample(b, rng)
			z, _ := d.RelaxedSample(rng)
			for _, x := range []*ad.Tensor{zt, z} {
				for _, at := range []float64{-3, -0.5, 0, 0.3, 1.7, 4} {
					hits := 0
					for _, v := range x.Data() {
						if v <= at {
							hits++
						}
					}
					// The logistic CDF of l + L at t is sigmoid(t - l).
					requireFraction(t, sigmoidF(at-l), hits, n, "logit %v, CDF at %v", l, at)
				}
			}
		}
	})
	t.Run("Categorical", func(t *testing.T) {
		logits := []float64{0.5, -1, 1.2}
		lp := logSoftmaxF(logits)
		gumbelCDF := func(loc, at float64) float64 { return math.Exp(-math.Exp(-(at - loc))) }
		for _, d := range []Relaxable{
			Categorical{Logits: repeatRows(ad.NewTape(), n, logits...)},
			OneHotCategorical{Logits: repeatRows(ad.NewTape(), n, logits...)},
		} {
			rng := newRNG()
			b := d.Sample(rng)
			zt := d.ConditionalRelaxedSample(b, rng)
			z, hb := d.RelaxedSample(rng)
			// The hard value of z is distributed as a sample.
			counts := make([]int, 3)
			for i := range n {
				counts[argmaxRow(z.Data()[3*i:3*i+3])]++
			}
			for k := range 3 {
				requireFraction(t, math.Exp(lp[k]), counts[k], n, "%T: P(H(z) = %d)", d, k)
			}
			require.Equal(t, d.Hard(z).Data(), hb.Data())
			for _, x := range []*ad.Tensor{zt, z} {
				for k := range 3 {
					for _, at := range []float64{-2, -0.5, 0.5, 2} {
						hits := 0
						for _, v := range column(x, k) {
							if v <= at {
								hits++
							}
						}
						requireFraction(t, gumbelCDF(lp[k], at), hits, n, "%T: class %d, CDF at %v", d, k, at)
					}
				}
				// Independence of the components: a joint CDF is the product.
				hits := 0
				for i := range n {
					if x.At(i, 0) <= 0.5 && x.At(i, 2) <= 1 {
						hits++
					}
				}
				requireFraction(t, gumbelCDF(lp[0], 0.5)*gumbelCDF(lp[2], 1), hits, n, "%T: joint CDF", d)
			}
		}
	})
}
