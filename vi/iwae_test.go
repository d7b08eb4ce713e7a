package vi_test

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/backpropq/backpropq/ad"
	"github.com/backpropq/backpropq/ppl"
	"github.com/backpropq/backpropq/ppl/dist"
	"github.com/backpropq/backpropq/trace"
	"github.com/backpropq/backpropq/vi"
)

// With one particle the importance-weighted bound is the ELBO, row by row.
func TestIWAEOneParticleIsELBO(t *testing.T) {
	cases := []struct {
		name         string
		model, guide ppl.Model
	}{
		{"conjugate", conj.model, conj.guide(0, 1)},
		{"sbn", sbn, forwardGuide},
		{"normal chain", normalChain, normalChainGuide},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			elbo := runBounds(t, vi.ELBO{Model: tc.model, Guide: tc.guide}, 7, rand.New(rand.NewPCG(1, 2)))
			iwae := runBounds(t, vi.IWAE{Model: tc.model, Guide: tc.guide, K: 1}, 7, rand.New(rand.NewPCG(1, 2)))
			require.Len(t, iwae, 7)
			for i := range elbo {
				assert.InDelta(t, elbo[i], iwae[i], 1e-12, "row %d", i)
			}
		})
	}
}

// The bound rises with K toward log p(x), and is log p(x) for every K when
// the guide is the posterior.
func TestIWAEIncreasesWithK(t *testing.T) {
	const points = 2000
	logpx := conj.logEvidence()
	elbo := conj.elbo(0, 1)
	prevMean, prevSE := math.Inf(-1), 0.0
	for i, k := range []int{1, 4, 16, 64} {
		rows := runBounds(t, vi.IWAE{Model: conj.model, Guide: conj.guide(0, 1), K: k}, points, rand.New(rand.NewPCG(uint64(k), 9)))
		require.Len(t, rows, points)
		mean, se := meanSE(rows)
		t.Logf("K=%d: bound %.4f ± %.4f, log p(x) %.4f", k, mean, se, logpx)
		if i == 0 {
			assert.InDelta(t, elbo, mean, 4*se)
		}
		assert.Greater(t, mean-prevMean, 4*math.Hypot(se, prevSE), "K=%d does not raise the bound", k)
		assert.Less(t, mean, logpx+4*se, "K=%d: bound above log p(x)", k)
		prevMean, prevSE = mean, se
	}
	// At K=64 most of the ELBO's gap is closed.
	assert.Less(t, logpx-prevMean, (logpx-elbo)/4)

	pm, psd := conj.posterior()
	for _, k := range []int{1, 3, 10} {
		rows := runBounds(t, vi.IWAE{Model: conj.model, Guide: conj.guide(pm, psd), K: k}, 20, rand.New(rand.NewPCG(1, 2)))
		for i, v := range rows {
			assert.InDelta(t, logpx, v, 1e-9, "K=%d row %d", k, i)
		}
	}
}

// The rows are batch-major: row b*K + k is particle k of data point b, and
// its log weight is computed against data point b.
func TestIWAELayout(t *testing.T) {
	const points, k = 3, 4
	xs := []float64{-1, 0.5, 3}
	model := func(ctx *ppl.Ctx) {
		tp := ctx.Tape()
		z := ppl.Sample(ctx, "z", dist.Normal{Loc: ppl.Expand(ctx, tp.Scalar(0)), Scale: tp.Scalar(1)})
		ppl.Observe(ctx, "x", dist.Normal{Loc: z, Scale: tp.Scalar(0.5)}, ppl.Tile(ctx, tp.FromData(points, 1, xs)))
	}
	guide := func(ctx *ppl.Ctx) {
		tp := ctx.Tape()
		// An encoder of the data: the guide's mean is half the data point.
		loc := ad.Scale(ppl.Tile(ctx, tp.FromData(points, 1, xs)), 0.5)
		ppl.Sample(ctx, "z", dist.Normal{Loc: loc, Scale: tp.Scalar(0.7)})
	}
	obj := vi.IWAE{Model: model, Guide: guide, K: k}
	tr, err := obj.Run(ppl.Config{Rand: rand.New(rand.NewPCG(1, 2)), Batch: points})
	require.NoError(t, err)
	assert.Equal(t, points*k, tr.Batch())
	z := tr.Site("z").Value
	logw := tr.Site(vi.LogWeightsAddr).Value
	cost := tr.Site(vi.IWAEAddr).Cost
	bounds, err := obj.Bounds(tr)
	require.NoError(t, err)
	require.Equal(t, points, bounds.Rows())
	for b := range points {
		lw := make([]float64, k)
		for j := range k {
			r := b*k + j
			zv := z.At(r, 0)
			lw[j] = logNormal(zv, 0, 1) + logNormal(xs[b], zv, 0.5) - logNormal(zv, xs[b]/2, 0.7)
			assert.InDelta(t, lw[j], logw.At(b, j), 1e-12, "row %d", r)
		}
		var sum float64
		for _, v := range lw {
			sum += math.Exp(v)
		}
		want := math.Log(sum / k)
		assert.InDelta(t, want, bounds.At(b, 0), 1e-12)
		for j := range k {
			assert.InDelta(t, -want/k, cost.At(b*k+j, 0), 1e-12)
		}
	}
	g := tr.Graph()
	assert.Equal(t, []string{vi.IWAEAddr}, g.CostsFrom("z"))
	assert.Equal(t, []string{"z"}, g.Parents(vi.IWAEAddr))
}

// The VIMCO signal agrees with a direct computation of its definition.
func TestVIMCOSignal(t *testing.T) {
	for _, k := range []int{2, 3, 8} {
		obj := vi.IWAE{Model: sbn, Guide: forwardGuide, K: k}
		tr, err := obj.Run(ppl.Config{Rand: rand.New(rand.NewPCG(uint64(k), 2)), Batch: 5})
		require.NoError(t, err)
		sig, err := obj.VIMCOSignal(tr)
		require.NoError(t, err)
		direct, err := vi.VIMCOSignal(tr)
		require.NoError(t, err)
		assert.Equal(t, sig.Data(), direct.Data())
		require.Equal(t, [2]int{5 * k, 1}, [2]int{sig.Rows(), sig.Cols()})
		assert.False(t, sig.RequiresGrad())
		logw := tr.Site(vi.LogWeightsAddr).Value
		for b := range 5 {
			w := make([]float64, k)
			var total float64
			for j := range k {
				w[j] = math.Exp(logw.At(b, j))
				total += w[j]
			}
			bound := math.Log(total / float64(k))
			for j := range k {
				var others, logGeo float64
				for i := range k {
					if i != j {
						others += w[i]
						logGeo += math.Log(w[i])
					}
				}
				loo := math.Log((others + math.Exp(logGeo/float64(k-1))) / float64(k))
				assert.InDelta(t, loo-bound, sig.At(b*k+j, 0), 1e-10, "K=%d point %d particle %d", k, b, j)
			}
		}
	}
	obj := vi.IWAE{Model: sbn, Guide: forwardGuide, K: 1}
	tr, err := obj.Run(ppl.Config{Rand: rand.New(rand.NewPCG(1, 2)), Batch: 2})
	require.NoError(t, err)
	_, err = obj.VIMCOSignal(tr)
	assert.ErrorContains(t, err, "K >= 2")
	elboTrace, err := vi.ELBO{Model: sbn, Guide: forwardGuide}.Run(ppl.Config{Rand: rand.New(rand.NewPCG(1, 2)), Batch: 2})
	require.NoError(t, err)
	_, err = vi.IWAE{K: 2}.VIMCOSignal(elboTrace)
	assert.ErrorContains(t, err, "log weights")
	_, err = vi.VIMCOSignal(elboTrace)
	assert.ErrorContains(t, err, "log weights")
	_, err = vi.IWAE{K: 3}.VIMCOSignal(tr)
	assert.ErrorContains(t, err, "K is 3")
	_, err = vi.IWAE{K: 2}.Bounds(elboTrace)
	assert.Error(t, err)
}

// The VIMCO estimator (score-function terms with the leave-one-out signal
// plus the cost's gradient with the particles held fixed) and the pathwise
// estimator agree on the gradient of the bound.
func TestVIMCOGradientMatchesPathwise(t *testing.T) {
	const points, k = 3000, 4
	const m, sq = 0.2, 0.9
	estimate := func(pathwise bool) (mean, se float64) {
		tp := ad.NewTape()
		loc := tp.Full(points*k, 1, m)
		guide := func(ctx *ppl.Ctx) {
			ppl.Sample(ctx, "z", dist.Normal{Loc: loc, Scale: ctx.Tape().Scalar(sq)})
		}
		obj := vi.IWAE{Model: conj.model, Guide: guide, K: k}
		var hs []ppl.Handler
		if !pathwise {
			hs = append(hs, ppl.HandlerFunc(func(s *ppl.Site, next func(*ppl.Site)) {
				s.NoRSample = true
				next(s)
			}))
		}
		tr, err := obj.Run(ppl.Config{Tape: tp, Rand: rand.New(rand.NewPCG(7, 8)), Batch: points}, hs...)
		require.NoError(t, err)
		loss := vi.Loss(tr)
		if !pathwise {
			sig, err := obj.VIMCOSignal(tr)
			require.NoError(t, err)
			loss = ad.Add(loss, ad.Sum(ad.Mul(sig, tr.Site("z").LogProb)))
		}
		grad := tp.Gradients(loss, loc)[0]
		per := make([]float64, points)
		for r := range points * k {
			per[r/k] += grad.At(r, 0)
		}
		return meanSE(per)
	}
	mp, sep := estimate(true)
	mv, sev := estimate(false)
	t.Logf("pathwise %.4f ± %.4f, VIMCO %.4f ± %.4f", mp, sep, mv, sev)
	assert.InDelta(t, mp, mv, 4*math.Hypot(sep, sev))
	// The gradient is far from zero, so the agreement is informative.
	assert.Greater(t, math.Abs(mp), 10*sep)
}

func TestIWAEErrors(t *testing.T) {
	for _, k := range []int{0, -1} {
		_, err := vi.IWAE{Model: conj.model, Guide: conj.guide(0, 1), K: k}.Run(ppl.Config{Rand: rand.New(rand.NewPCG(1, 2))})
		assert.ErrorContains(t, err, "K must be >= 1")
	}
	_, err := vi.IWAE{Model: conj.model, Guide: conj.guide(0, 1), K: 2}.Run(ppl.Config{Rand: rand.New(rand.NewPCG(1, 2)), Batch: 2}, trace.Scale(2))
	assert.ErrorContains(t, err, "not supported")
	// A guide whose batch ignores the run's.
	fixed := func(ctx *ppl.Ctx) {
		ppl.Sample(ctx, "z", dist.Normal{Loc: ctx.Tape().Zeros(2, 1), Scale: ctx.Tape().Scalar(1)})
	}
	_, err = vi.IWAE{Model: conj.model, Guide: fixed, K: 3}.Run(ppl.Config{Rand: rand.New(rand.NewPCG(1, 2)), Batch: 2})
	assert.ErrorContains(t, err, `"z"`)
}
