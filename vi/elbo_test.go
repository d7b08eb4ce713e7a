package vi_test

import (
	"errors"
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

// runBounds runs obj with batch rows and returns the bound of each row.
func runBounds(t *testing.T, obj vi.Bounded, rows int, rng *rand.Rand) []float64 {
	t.Helper()
	tr, err := obj.Run(ppl.Config{Tape: ad.NewTape(), Rand: rng, Batch: rows})
	require.NoError(t, err)
	b, err := obj.Bounds(tr)
	require.NoError(t, err)
	loss := vi.Loss(tr)
	require.NotNil(t, loss)
	var sum float64
	for _, v := range b.Data() {
		sum += v
	}
	require.InDelta(t, -sum, loss.Item(), 1e-9*math.Max(1, math.Abs(sum)), "Loss is minus the sum of the bounds")
	return append([]float64(nil), b.Data()...)
}

func TestELBOConjugate(t *testing.T) {
	pm, psd := conj.posterior()
	logpx := conj.logEvidence()
	cases := []struct {
		name  string
		m, sq float64
	}{
		{"posterior", pm, psd},
		{"prior", conj.mu0, conj.s0},
		{"narrow off", 0, 0.3},
		{"wide", 3, 2},
	}
	for _, tc := range cases {
		for _, analytic := range []bool{false, true} {
			name := tc.name
			if analytic {
				name += "/analytic"
			}
			t.Run(name, func(t *testing.T) {
				rng := rand.New(rand.NewPCG(1, 2))
				obj := vi.ELBO{Model: conj.model, Guide: conj.guide(tc.m, tc.sq), AnalyticKL: analytic}
				rows := runBounds(t, obj, 4000, rng)
				want := conj.elbo(tc.m, tc.sq)
				require.LessOrEqual(t, want, logpx+1e-12, "closed-form ELBO <= log p(x)")
				if tc.name == "posterior" && !analytic {
					// log p(x, z) - q(z) = log p(x) for every z.
					for i, v := range rows {
						require.InDelta(t, logpx, v, 1e-9, "row %d", i)
					}
					require.InDelta(t, want, logpx, 1e-12)
					return
				}
				mean, se := meanSE(rows)
				assert.InDelta(t, want, mean, 4*se+1e-12, "mean bound %v ± %v, closed form %v", mean, se, want)
			})
		}
	}
}

// The analytic KL has the sampled log ratio's expectation and, for a
// guide away from the posterior, less variance.
func TestELBOAnalyticKLVariance(t *testing.T) {
	cases := []struct{ m, sq float64 }{{0, 0.3}, {3, 2}, {-1, 1}}
	for _, tc := range cases {
		sampled := runBounds(t, vi.ELBO{Model: conj.model, Guide: conj.guide(tc.m, tc.sq)}, 4000, rand.New(rand.NewPCG(1, 2)))
		analytic := runBounds(t, vi.ELBO{Model: conj.model, Guide: conj.guide(tc.m, tc.sq), AnalyticKL: true}, 4000, rand.New(rand.NewPCG(3, 4)))
		ms, ses := meanSE(sampled)
		ma, sea := meanSE(analytic)
		assert.InDelta(t, ms, ma, 4*math.Hypot(ses, sea), "guide %+v", tc)
		vs, ses2 := varianceSE(sampled)
		va, sea2 := varianceSE(analytic)
		assert.Greater(t, vs-va, 4*math.Hypot(ses2, sea2), "guide %+v: analytic variance %v ± %v, sampled %v ± %v", tc, va, sea2, vs, ses2)
	}
}

// The pathwise gradient of the loss with respect to the guide's
// parameters estimates the closed-form gradient of -ELBO.
func TestELBOGradient(t *testing.T) {
	const rows = 4000
	for _, analytic := range []bool{false, true} {
		for _, g := range []struct{ m, sq float64 }{{0, 0.5}, {2.5, 1.2}} {
			tp := ad.NewTape()
			// One loc and one log-scale per row, so that the gradient with
			// respect to each row's copy is that row's estimate.
			loc := tp.Full(rows, 1, g.m)
			logScale := tp.Full(rows, 1, math.Log(g.sq))
			guide := func(ctx *ppl.Ctx) {
				ppl.Sample(ctx, "z", dist.Normal{Loc: loc, Scale: ad.Exp(logScale)})
			}
			tr, err := vi.ELBO{Model: conj.model, Guide: guide, AnalyticKL: analytic}.Run(ppl.Config{Tape: tp, Rand: rand.New(rand.NewPCG(5, 6))})
			require.NoError(t, err)
			grads := tp.Gradients(vi.Loss(tr), loc, logScale)
			dm, dls := conj.elboGrad(g.m, g.sq)
			for i, want := range []float64{dm, dls} {
				mean, se := meanSE(grads[i].RawMatrix().Data)
				assert.InDelta(t, want, mean, 4*se+1e-9, "analytic %v guide %+v param %d", analytic, g, i)
			}
		}
	}
}

// sbn is a two-layer sigmoid belief net z1 -> z2 -> x with two units per
// layer and four visible units.
func sbn(ctx *ppl.Ctx) {
	tp := ctx.Tape()
	z1 := ppl.Sample(ctx, "z1", dist.BernoulliLogits(ppl.Expand(ctx, tp.FromData(1, 2, []float64{0.3, -0.2}))))
	z2 := ppl.Sample(ctx, "z2", bern(ad.MatMul(z1, tp.FromData(2, 2, []float64{1, -1, 0.5, 2})), 1, -0.5))
	x := ppl.Tile(ctx, tp.FromData(1, 4, []float64{1, 0, 1, 1}))
	ppl.Observe(ctx, "x", bern(ad.MatMul(z2, tp.FromData(2, 4, []float64{1, -2, 0.5, 1, -1, 1, 2, 0})), 1, 0.1), x)
}

// forwardGuide samples z1 then z2 given z1.
func forwardGuide(ctx *ppl.Ctx) {
	tp := ctx.Tape()
	z1 := ppl.Sample(ctx, "z1", dist.BernoulliLogits(ppl.Expand(ctx, tp.FromData(1, 2, []float64{0.1, 0.4}))))
	ppl.Sample(ctx, "z2", bern(z1, 1.5, -0.7))
}

// reverseGuide samples z2 then z1 given z2, the usual SBN encoder order.
func reverseGuide(ctx *ppl.Ctx) {
	tp := ctx.Tape()
	z2 := ppl.Sample(ctx, "z2", dist.BernoulliLogits(ppl.Expand(ctx, tp.FromData(1, 2, []float64{0.1, 0.4}))))
	ppl.Sample(ctx, "z1", bern(z2, -1, 0.2))
}

// normalChain is z1 -> z2 -> x with Normal latents.
func normalChain(ctx *ppl.Ctx) {
	tp := ctx.Tape()
	z1 := ppl.Sample(ctx, "z1", dist.Normal{Loc: ppl.Expand(ctx, tp.Scalar(0)), Scale: tp.Scalar(1)})
	z2 := ppl.Sample(ctx, "z2", dist.Normal{Loc: z1, Scale: tp.Scalar(1)})
	ppl.Observe(ctx, "x", dist.Normal{Loc: z2, Scale: tp.Scalar(0.5)}, ppl.Tile(ctx, tp.Scalar(1)))
}

func normalChainGuide(ctx *ppl.Ctx) {
	tp := ctx.Tape()
	z1 := ppl.Sample(ctx, "z1", dist.Normal{Loc: ppl.Expand(ctx, tp.Scalar(0.3)), Scale: tp.Scalar(0.8)})
	ppl.Sample(ctx, "z2", dist.Normal{Loc: ad.Scale(z1, 0.5), Scale: tp.Scalar(0.7)})
}

func TestELBOGraph(t *testing.T) {
	cases := []struct {
		name      string
		obj       vi.ELBO
		costs     []string
		costsFrom map[string][]string
		parents   map[string][]string
	}{
		{
			name:  "forward guide",
			obj:   vi.ELBO{Model: sbn, Guide: forwardGuide},
			costs: []string{"kl(z1)", "kl(z2)", "x"},
			costsFrom: map[string][]string{
				"z1": {"kl(z1)", "kl(z2)", "x"},
				"z2": {"kl(z2)", "x"},
			},
			parents: map[string][]string{"z2": {"z1"}, "kl(z1)": {"z1"}, "kl(z2)": {"z1", "z2"}, "x": {"z2"}},
		},
		{
			name:  "reverse guide",
			obj:   vi.ELBO{Model: sbn, Guide: reverseGuide},
			costs: []string{"kl(z1)", "kl(z2)", "x"},
			costsFrom: map[string][]string{
				"z1": {"kl(z1)", "kl(z2)"},
				"z2": {"kl(z1)", "kl(z2)", "x"},
			},
			parents: map[string][]string{"z1": {"z2"}, "kl(z1)": {"z1", "z2"}, "kl(z2)": {"z1", "z2"}, "x": {"z2"}},
		},
		{
			name:  "normal chain sampled",
			obj:   vi.ELBO{Model: normalChain, Guide: normalChainGuide},
			costs: []string{"kl(z1)", "kl(z2)", "x"},
			costsFrom: map[string][]string{
				"z1": {"kl(z1)", "kl(z2)", "x"},
				"z2": {"kl(z2)", "x"},
			},
			parents: map[string][]string{"kl(z1)": {"z1"}, "kl(z2)": {"z1", "z2"}},
		},
		{
			// The analytic KL depends on the parameters of q and p, not on
			// the latent's value.
			name:  "normal chain analytic",
			obj:   vi.ELBO{Model: normalChain, Guide: normalChainGuide, AnalyticKL: true},
			costs: []string{"kl(z1)", "kl(z2)", "x"},
			costsFrom: map[string][]string{
				"z1": {"kl(z2)", "x"},
				"z2": {"x"},
			},
			parents: map[string][]string{"kl(z1)": nil, "kl(z2)": {"z1"}, "x": {"z2"}},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tr, err := tc.obj.Run(ppl.Config{Rand: rand.New(rand.NewPCG(1, 2)), Batch: 3})
			require.NoError(t, err)
			g := tr.Graph()
			assert.Equal(t, []string{"z1", "z2"}, sortedCopy(g.Stochastic()))
			assert.Equal(t, tc.costs, sortedCopy(g.Costs()))
			for x, want := range tc.costsFrom {
				assert.Equal(t, want, sortedCopy(g.CostsFrom(x)), "CostsFrom(%s)", x)
			}
			for n, want := range tc.parents {
				assert.Equal(t, want, sortedCopy(g.Parents(n)), "Parents(%s)", n)
			}
			assert.Equal(t, 3, tr.Batch())
			for _, c := range g.Costs() {
				r, cols := tr.Site(c).Cost.Dims()
				assert.Equal(t, [2]int{3, 1}, [2]int{r, cols}, "cost %s", c)
			}
		})
	}
}

func sortedCopy(s []string) []string {
	if s == nil {
		return nil
	}
	out := append([]string(nil), s...)
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && out[j] < out[j-1]; j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}

// The sampled ELBO of the SBN equals log p(x, z) - log q(z) computed from
// the two runs' own log-probabilities.
func TestELBOSBNValue(t *testing.T) {
	tp := ad.NewTape()
	env := ppl.Config{Tape: tp, Rand: rand.New(rand.NewPCG(1, 2)), Batch: 5}
	tr, err := vi.ELBO{Model: sbn, Guide: forwardGuide}.Run(env)
	require.NoError(t, err)
	bounds, err := vi.ELBO{}.Bounds(tr)
	require.NoError(t, err)
	// Replay the guide's values by hand.
	values := map[string]*ad.Tensor{"z1": tr.Site("z1").Value, "z2": tr.Site("z2").Value}
	g, err := trace.Run(forwardGuide, ppl.Config{Tape: tp, Batch: 5}, trace.ReplayValues(values))
	require.NoError(t, err)
	m, err := trace.Run(sbn, ppl.Config{Tape: tp, Batch: 5}, trace.ReplayValues(values))
	require.NoError(t, err)
	want := ad.Sub(m.LogProbSum(), g.LogProbSum())
	for i := range 5 {
		assert.InDelta(t, want.At(i, 0), bounds.At(i, 0), 1e-12, "row %d", i)
	}
}

func TestELBOErrors(t *testing.T) {
	normal := func(ctx *ppl.Ctx, addr string, cols int) *ad.Tensor {
		tp := ctx.Tape()
		return ppl.Sample(ctx, addr, dist.Normal{Loc: ppl.Expand(ctx, tp.Zeros(1, cols)), Scale: tp.Scalar(1)})
	}
	observe := func(ctx *ppl.Ctx, z *ad.Tensor) {
		ppl.Observe(ctx, "x", dist.Normal{Loc: ad.RowSum(z), Scale: ctx.Tape().Scalar(1)}, ppl.Tile(ctx, ctx.Tape().Scalar(1)))
	}
	model := func(ctx *ppl.Ctx) { observe(ctx, normal(ctx, "z", 2)) }
	cases := []struct {
		name         string
		model, guide ppl.Model
		addr         string
	}{
		{"model latent not in guide",
			func(ctx *ppl.Ctx) { normal(ctx, "z", 2); observe(ctx, normal(ctx, "w", 1)) },
			func(ctx *ppl.Ctx) { normal(ctx, "z", 2) }, "w"},
		{"guide site the model lacks", model,
			func(ctx *ppl.Ctx) { normal(ctx, "z", 2); normal(ctx, "extra", 1) }, "extra"},
		{"guide samples an observed site", model,
			func(ctx *ppl.Ctx) { normal(ctx, "z", 2); normal(ctx, "x", 1) }, "x"},
		{"shape disagreement", model,
			func(ctx *ppl.Ctx) { normal(ctx, "z", 3) }, "z"},
		{"guide observes", model,
			func(ctx *ppl.Ctx) {
				normal(ctx, "z", 2)
				ppl.Observe(ctx, "y", dist.Normal{Loc: ctx.Tape().Zeros(2, 1), Scale: ctx.Tape().Scalar(1)}, ctx.Tape().Zeros(2, 1))
			}, "y"},
		{"cost address taken",
			func(ctx *ppl.Ctx) { observe(ctx, normal(ctx, "z", 2)); ppl.Cost(ctx, "kl(z)", ctx.Tape().Zeros(2, 1)) },
			func(ctx *ppl.Ctx) { normal(ctx, "z", 2) }, "kl(z)"},
		{"error inside the model",
			func(ctx *ppl.Ctx) {
				z := normal(ctx, "z", 2)
				ppl.Observe(ctx, "x", dist.Normal{Loc: z, Scale: ctx.Tape().Scalar(-1)}, ppl.Tile(ctx, ctx.Tape().Zeros(1, 2)))
			},
			func(ctx *ppl.Ctx) { normal(ctx, "z", 2) }, "x"},
	}
	for _, tc := range cases {
		for _, obj := range []vi.Objective{vi.ELBO{Model: tc.model, Guide: tc.guide}, vi.IWAE{Model: tc.model, Guide: tc.guide, K: 2}} {
			t.Run(tc.name, func(t *testing.T) {
				_, err := obj.Run(ppl.Config{Rand: rand.New(rand.NewPCG(1, 2)), Batch: 2})
				require.Error(t, err)
				var se *ppl.SiteError
				require.True(t, errors.As(err, &se), "%v", err)
				assert.Equal(t, tc.addr, se.Addr, "%v", err)
				assert.Contains(t, err.Error(), `"`+tc.addr+`"`)
				assert.Regexp(t, `^vi: (ELBO|IWAE): `, err.Error())
			})
		}
	}
	_, err := vi.ELBO{Guide: model}.Run(ppl.Config{})
	assert.ErrorContains(t, err, "nil model")
	_, err = vi.ELBO{Model: model}.Run(ppl.Config{})
	assert.ErrorContains(t, err, "nil guide")
}

// Handlers passed to Run apply to the guide: a replayed or overridden
// guide value reaches the model, and scaling weighs the latents' costs.
func TestELBOHandlers(t *testing.T) {
	tp := ad.NewTape()
	obj := vi.ELBO{Model: conj.model, Guide: conj.guide(0, 1)}
	z := tp.FromData(2, 1, []float64{0.25, -1})
	tr, err := obj.Run(ppl.Config{Tape: tp, Batch: 2}, trace.ReplayValues(map[string]*ad.Tensor{"z": z}), trace.Scale(3))
	require.NoError(t, err)
	kl := tr.Site(vi.KLAddr("z"))
	require.NotNil(t, kl)
	assert.Equal(t, 3.0, kl.Scale)
	assert.Equal(t, 1.0, tr.Site("x").Scale)
	for i, v := range []float64{0.25, -1} {
		want := logNormal(v, 0, 1) - logNormal(v, conj.mu0, conj.s0)
		assert.InDelta(t, want, kl.Cost.At(i, 0), 1e-12)
		assert.InDelta(t, -logNormal(conj.x, v, conj.s), tr.Site("x").Cost.At(i, 0), 1e-12)
	}

	// An overridden value is scored by both sides' formulas and keeps its
	// gradient path.
	v := tp.FromData(2, 1, []float64{0.5, 1.5})
	tr, err = obj.Run(ppl.Config{Tape: tp, Batch: 2}, trace.Override(func(s *ppl.Site) *ad.Tensor { return v }))
	require.NoError(t, err)
	require.True(t, tr.Site("z").Substituted)
	grad := tp.Gradients(vi.Loss(tr), v)[0]
	for i, zv := range []float64{0.5, 1.5} {
		// d/dz [log q(z) - log p(z) - log p(x|z)].
		want := -zv + (zv-conj.mu0)/(conj.s0*conj.s0) - (conj.x-zv)/(conj.s*conj.s)
		assert.InDelta(t, want, grad.At(i, 0), 1e-9)
	}

	// An intervened latent has no cost.
	tr, err = obj.Run(ppl.Config{Tape: tp, Batch: 2}, trace.Do(map[string]*ad.Tensor{"z": z}))
	require.NoError(t, err)
	assert.Nil(t, tr.Site(vi.KLAddr("z")))
	assert.Equal(t, []string{"x"}, tr.Graph().Costs())
}

// localModel has one local latent z per data point inside a data plate,
// and no global latent.
func localModel(ctx *ppl.Ctx) {
	tp := ctx.Tape()
	data := ppl.Plate(ctx, "data", len(plateData))
	n := data.Rows()
	z := ppl.Sample(data, "z", dist.Normal{Loc: tp.Zeros(n, 1), Scale: tp.Full(n, 1, 1)})
	ppl.Observe(data, "x", dist.Normal{Loc: z, Scale: tp.Full(n, 1, 0.5)}, ppl.Data(data, tp.FromData(len(plateData), 1, plateData)))
}

// localGuide is a fixed guide of localModel.
func localGuide(ctx *ppl.Ctx) {
	tp := ctx.Tape()
	data := ppl.Plate(ctx, "data", len(plateData))
	ppl.Sample(data, "z", dist.Normal{Loc: ppl.Data(data, tp.FromData(len(plateData), 1, plateData)), Scale: tp.Full(data.Rows(), 1, 0.4)})
}

// The Scale field multiplies every cost's Scale, hence the loss, when
// every latent is inside a plate, and when it is below 1; above 1 with a
// latent outside every plate, whose KL it would weigh too, it is an error
// naming the latent.
func TestObjectiveScale(t *testing.T) {
	objs := func(scale float64) []vi.Objective {
		return []vi.Objective{
			vi.ELBO{Model: localModel, Guide: localGuide, Scale: scale},
			vi.IWAE{Model: localModel, Guide: localGuide, K: 3, Scale: scale},
		}
	}
	for i := range objs(0) {
		plain, err := objs(0)[i].Run(ppl.Config{Rand: rand.New(rand.NewPCG(1, 2)), Batch: 4})
		require.NoError(t, err)
		scaled, err := objs(2.5)[i].Run(ppl.Config{Rand: rand.New(rand.NewPCG(1, 2)), Batch: 4})
		require.NoError(t, err)
		assert.InDelta(t, 2.5*vi.Loss(plain).Item(), vi.Loss(scaled).Item(), 1e-9)
		for _, c := range scaled.Graph().Costs() {
			assert.Equal(t, 2.5, scaled.Site(c).Scale, c)
		}
		for _, bad := range []float64{-1, math.Inf(1), math.NaN()} {
			_, err := objs(bad)[i].Run(ppl.Config{Rand: rand.New(rand.NewPCG(1, 2)), Batch: 4})
			assert.ErrorContains(t, err, "field Scale must be finite and > 0")
		}
	}
	for _, obj := range []vi.Objective{
		vi.ELBO{Model: plateModel(0), Guide: plateGuide(0), Scale: 2},
		vi.IWAE{Model: plateModel(0), Guide: plateGuide(0), K: 2, Scale: 2},
		vi.ELBO{Model: sbn, Guide: forwardGuide, Scale: 2},
	} {
		_, err := obj.Run(ppl.Config{Rand: rand.New(rand.NewPCG(1, 2)), Batch: 4})
		var se *ppl.SiteError
		require.ErrorAs(t, err, &se)
		assert.Contains(t, []string{"mu", "z1"}, se.Addr)
		assert.ErrorContains(t, err, "outside every plate")
		assert.ErrorContains(t, err, "ppl.Subsample")
	}
	// Averaging over particles weighs every cost alike.
	tr, err := vi.ELBO{Model: sbn, Guide: forwardGuide, Scale: 0.5}.Run(ppl.Config{Rand: rand.New(rand.NewPCG(1, 2)), Batch: 4})
	require.NoError(t, err)
	for _, c := range tr.Graph().Costs() {
		assert.Equal(t, 0.5, tr.Site(c).Scale, c)
	}
}

// A relaxed (substituted) Bernoulli value is scored by the log-density
// formula value·logit - softplus(logit) on both sides.
func TestELBORelaxedBernoulli(t *testing.T) {
	tp := ad.NewTape()
	relaxed := tp.FromData(1, 2, []float64{0.3, 0.9})
	tr, err := vi.ELBO{Model: sbn, Guide: forwardGuide}.Run(ppl.Config{Tape: tp, Rand: rand.New(rand.NewPCG(1, 2)), Batch: 1},
		trace.Override(func(s *ppl.Site) *ad.Tensor {
			if s.Addr == "z1" {
				return relaxed
			}
			return nil
		}))
	require.NoError(t, err)
	softplus := func(x float64) float64 { return math.Log1p(math.Exp(x)) }
	var want float64
	for j, v := range []float64{0.3, 0.9} {
		lq := []float64{0.1, 0.4}[j]
		lp := []float64{0.3, -0.2}[j]
		want += (v*lq - softplus(lq)) - (v*lp - softplus(lp))
	}
	assert.InDelta(t, want, tr.Site(vi.KLAddr("z1")).Cost.Item(), 1e-12)
	// The downstream costs see the relaxed value, with a gradient path.
	g := tp.Gradients(vi.Loss(tr), relaxed)[0]
	assert.NotZero(t, g.At(0, 0))
}

// With AnalyticKL, a Categorical or Bernoulli latent's cost is the
// closed-form KL of its guide from its prior, the same for every sampled
// value, and equal to the mean of the sampled log ratio.
func TestELBOAnalyticKLDiscrete(t *testing.T) {
	const rows = 20000
	logits := []float64{0.3, -1.2, 2}
	prior := []float64{0, 0.5, -0.5}
	for _, name := range []string{"Categorical", "OneHotCategorical", "Bernoulli"} {
		tp := ad.NewTape()
		mk := func(l []float64) dist.Distribution {
			t := ad.Add(tp.Zeros(rows, len(l)), tp.FromData(1, len(l), l))
			switch name {
			case "Categorical":
				return dist.Categorical{Logits: t}
			case "OneHotCategorical":
				return dist.OneHotCategorical{Logits: t}
			}
			return dist.BernoulliLogits(t)
		}
		model := func(ctx *ppl.Ctx) { ppl.Sample(ctx, "c", mk(prior)) }
		guide := func(ctx *ppl.Ctx) { ppl.Sample(ctx, "c", mk(logits)) }
		costOf := func(analytic bool, seed uint64) []float64 {
			tr, err := vi.ELBO{Model: model, Guide: guide, AnalyticKL: analytic}.Run(ppl.Config{Tape: tp, Rand: rand.New(rand.NewPCG(seed, 1)), Batch: rows})
			require.NoError(t, err, name)
			s := tr.Site(vi.KLAddr("c"))
			require.NotNil(t, s, name)
			c := s.Cost.Data()
			require.Len(t, c, rows, name)
			return append([]float64(nil), c...)
		}
		analytic := costOf(true, 1)
		for _, v := range analytic {
			require.Equal(t, analytic[0], v, "%s: the analytic KL does not depend on the sample", name)
		}
		want, err := dist.KL(mk(logits), mk(prior))
		require.NoError(t, err)
		assert.InDelta(t, want.Data()[0], analytic[0], 1e-12, name)
		mean, se := meanSE(costOf(false, 2))
		assert.InDelta(t, analytic[0], mean, 4*se, "%s: sampled log ratio's mean", name)
	}
}

// The guide's deterministic sites (critic inputs, say) reach the ELBO's
// and the IWAE's traces with their values; the model's do not.
func TestObjectivesKeepGuideDeterministicSites(t *testing.T) {
	guide := func(ctx *ppl.Ctx) {
		g := conj.guide(0.3, 1)
		g(ctx)
		ppl.Deterministic(ctx, "z@q", ctx.Tape().Full(ctx.Batch(), 2, 7))
	}
	model := func(ctx *ppl.Ctx) {
		conj.model(ctx)
		ppl.Deterministic(ctx, "model-only", ctx.Tape().Full(ctx.Batch(), 1, 1))
	}
	for name, obj := range map[string]vi.Objective{
		"ELBO": vi.ELBO{Model: model, Guide: guide},
		"IWAE": vi.IWAE{Model: model, Guide: guide, K: 3},
	} {
		tr, err := obj.Run(ppl.Config{Rand: rand.New(rand.NewPCG(1, 2)), Batch: 3})
		require.NoError(t, err, name)
		s := tr.Site("z@q")
		require.NotNil(t, s, name)
		require.Equal(t, ppl.KindDeterministic, s.Kind, name)
		require.Equal(t, tr.Batch(), s.Value.Rows(), name)
		for _, v := range s.Value.Data() {
			require.Equal(t, 7.0, v, name)
		}
		require.Nil(t, tr.Site("model-only"), name)
	}
}
