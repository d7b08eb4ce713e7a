package vi_test

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gonum.org/v1/gonum/floats"
	"gonum.org/v1/gonum/integrate/quad"
	"gonum.org/v1/gonum/mat"

	"github.com/backpropq/backpropq/ad"
	"github.com/backpropq/backpropq/infer"
	"github.com/backpropq/backpropq/nn"
	"github.com/backpropq/backpropq/ppl"
	"github.com/backpropq/backpropq/ppl/dist"
	"github.com/backpropq/backpropq/vi"
)

// Textbook models written from the documentation alone, each trained by
// SVI with the pathwise estimator and held to its exact posterior (or the
// exact optimum of its mean-field guide).

// fit trains the objective by SVI with the pathwise estimator and Adam at
// learning rate lr, then at lr/10 for the last third of the steps, over
// which it averages each named parameter's constrained value (Polyak
// averaging removes most of the noise of the final iterates). c gives
// each name's constraint (Real when absent).
func fit(t *testing.T, obj vi.Objective, steps, particles int, lr float64, c map[string]dist.Constraint, names ...string) map[string][]float64 {
	t.Helper()
	opt := nn.NewAdam(lr)
	s := &infer.SVI{Objective: obj, Estimators: infer.Estimators{Default: infer.Pathwise{}},
		Optimizer: opt, Params: nn.NewStore(), Particles: particles, Seed: 5}
	avg := map[string][]float64{}
	tail := steps / 3
	for i := range steps {
		if i == steps-tail {
			opt.LR = lr / 10
		}
		_, err := s.Step()
		require.NoError(t, err)
		if i < steps-tail {
			continue
		}
		for _, name := range names {
			v := constrained(t, s.Params.Get(name).Value, c[name])
			if avg[name] == nil {
				avg[name] = make([]float64, len(v))
			}
			for j := range v {
				avg[name][j] += v[j] / float64(tail)
			}
		}
	}
	return avg
}

// constrained maps a stored (unconstrained) parameter onto c.
func constrained(t *testing.T, u *mat.Dense, c dist.Constraint) []float64 {
	raw := slices.Clone(u.RawMatrix().Data)
	if c == nil {
		return raw
	}
	tr, err := dist.BijectTo(c)
	require.NoError(t, err)
	r, k := u.Dims()
	return tr.Forward(ad.NewTape().FromData(r, k, raw)).Data()
}

// A coin with a Beta(2, 2) prior, 40 flips of which 29 heads: the
// posterior is Beta(31, 13), and a Beta guide with positive
// concentrations (ppl.ParamIn) can hold it exactly.
func TestTextbookBetaBernoulli(t *testing.T) {
	flips := make([]float64, 40)
	for i := range 29 {
		flips[i] = 1
	}
	model := func(ctx *ppl.Ctx) {
		tp := ctx.Tape()
		p := ctx.Batch()
		theta := ppl.Sample(ctx, "theta", dist.Beta{Alpha: tp.Full(p, 1, 2), Beta: tp.Full(p, 1, 2)})
		data := ppl.Plate(ctx, "flips", len(flips))
		ppl.Observe(data, "x", dist.BernoulliProbs(ppl.Broadcast(data, theta)), ppl.Data(data, tp.FromData(len(flips), 1, flips)))
	}
	guide := func(ctx *ppl.Ctx) {
		a := ppl.ParamIn(ctx, "a", 1, 1, dist.Positive, nn.Constant(1))
		b := ppl.ParamIn(ctx, "b", 1, 1, dist.Positive, nn.Constant(1))
		ppl.Sample(ctx, "theta", dist.Beta{Alpha: ppl.Expand(ctx, a), Beta: ppl.Expand(ctx, b)})
	}
	pos := map[string]dist.Constraint{"a": dist.Positive, "b": dist.Positive}
	// The sampled log ratio and the closed-form KL reach the same optimum.
	for _, analytic := range []bool{false, true} {
		got := fit(t, vi.ELBO{Model: model, Guide: guide, AnalyticKL: analytic}, 3000, 8, 0.05, pos, "a", "b")
		a, b := got["a"][0], got["b"][0]
		mean, sd := betaMoments(a, b)
		wantMean, wantSD := betaMoments(31, 13)
		t.Logf("analytic KL %v: guide Beta(%.2f, %.2f): mean %.4f sd %.4f; exact Beta(31, 13): mean %.4f sd %.4f", analytic, a, b, mean, sd, wantMean, wantSD)
		// The optimum is the posterior itself: its mean within a tenth of a
		// posterior sd, its sd within 5%.
		assert.InDelta(t, wantMean, mean, wantSD/10)
		assert.InEpsilon(t, wantSD, sd, 0.05)
	}
}

func betaMoments(a, b float64) (mean, sd float64) {
	return a / (a + b), math.Sqrt(a * b / ((a + b) * (a + b) * (a + b + 1)))
}

// Poisson counts in groups, each group's rate from a Gamma(2, 1) prior:
// group g's posterior is Gamma(2 + Σ y, 1 + M). The guide's per-group
// concentrations and rates are [G x 1] positive parameters brought into
// the group plate with ppl.Data.
func TestTextbookGammaPoissonGroups(t *testing.T) {
	counts := [][]float64{{0, 1, 0, 2, 1}, {4, 6, 3, 5, 7}, {12, 9, 11, 10, 14}, {1, 0, 0, 0, 1}}
	G, M := len(counts), len(counts[0])
	flat := slices.Concat(counts...)
	model := func(ctx *ppl.Ctx) {
		tp := ctx.Tape()
		groups := ppl.Plate(ctx, "groups", G)
		n := groups.Rows()
		rate := ppl.Sample(groups, "rate", dist.Gamma{Concentration: tp.Full(n, 1, 2), Rate: tp.Full(n, 1, 1)})
		obs := ppl.Plate(groups, "obs", M)
		ppl.Observe(obs, "y", dist.Poisson{Rate: ppl.Broadcast(obs, rate)}, ppl.Data(obs, tp.FromData(G*M, 1, flat)))
	}
	guide := func(ctx *ppl.Ctx) {
		a := ppl.ParamIn(ctx, "a", G, 1, dist.Positive, nn.Constant(1))
		b := ppl.ParamIn(ctx, "b", G, 1, dist.Positive, nn.Constant(1))
		groups := ppl.Plate(ctx, "groups", G)
		ppl.Sample(groups, "rate", dist.Gamma{Concentration: ppl.Data(groups, a), Rate: ppl.Data(groups, b)})
	}
	pos := map[string]dist.Constraint{"a": dist.Positive, "b": dist.Positive}
	// The sampled log ratio and the closed-form KL reach the same optimum.
	for _, analytic := range []bool{false, true} {
		got := fit(t, vi.ELBO{Model: model, Guide: guide, AnalyticKL: analytic}, 3000, 8, 0.05, pos, "a", "b")
		for g, ys := range counts {
			a, b := got["a"][g], got["b"][g]
			wa, wb := 2+floats.Sum(ys), 1+float64(M)
			t.Logf("analytic KL %v, group %d: guide Gamma(%.2f, %.2f), exact Gamma(%.0f, %.0f)", analytic, g, a, b, wa, wb)
			wantSD := math.Sqrt(wa) / wb
			assert.InDelta(t, wa/wb, a/b, wantSD/10, "group %d mean", g)
			assert.InEpsilon(t, wantSD, math.Sqrt(a)/b, 0.05, "group %d sd", g)
		}
	}
}

// A hierarchical Normal model in nested plates: a global mean mu ~
// N(0, 3²), group means theta_g ~ N(mu, 1) and members y_gj ~
// N(theta_g, 0.8²). The posterior is Gaussian with precision Λ; the
// optimal mean-field Normal guide has its means and the variances
// 1/Λ_ii.
func TestTextbookHierarchicalNormal(t *testing.T) {
	ys := [][]float64{{1.2, 0.7, 1.9, 1.4}, {-0.3, 0.2, -0.8, 0.1}, {2.8, 3.5, 3.1, 2.2}}
	const tau0, tau, sigma = 3.0, 1.0, 0.8
	G, M := len(ys), len(ys[0])
	model := func(ctx *ppl.Ctx) {
		tp := ctx.Tape()
		p := ctx.Batch()
		mu := ppl.Sample(ctx, "mu", dist.Normal{Loc: tp.Zeros(p, 1), Scale: tp.Full(p, 1, tau0)})
		groups := ppl.Plate(ctx, "groups", G)
		theta := ppl.Sample(groups, "theta", dist.Normal{Loc: ppl.Broadcast(groups, mu), Scale: tp.Full(groups.Rows(), 1, tau)})
		members := ppl.Plate(groups, "members", M)
		y := ppl.Data(members, tp.FromData(G*M, 1, slices.Concat(ys...)))
		ppl.Observe(members, "y", dist.Normal{Loc: ppl.Broadcast(members, theta), Scale: tp.Full(members.Rows(), 1, sigma)}, y)
	}
	guide := func(ctx *ppl.Ctx) {
		loc := ppl.Param(ctx, "mu/loc", 1, 1, nn.Zeros{})
		scale := ppl.ParamIn(ctx, "mu/scale", 1, 1, dist.Positive, nn.Constant(1))
		ppl.Sample(ctx, "mu", dist.Normal{Loc: ppl.Expand(ctx, loc), Scale: ppl.Expand(ctx, scale)})
		tloc := ppl.Param(ctx, "theta/loc", G, 1, nn.Zeros{})
		tscale := ppl.ParamIn(ctx, "theta/scale", G, 1, dist.Positive, nn.Constant(1))
		groups := ppl.Plate(ctx, "groups", G)
		ppl.Sample(groups, "theta", dist.Normal{Loc: ppl.Data(groups, tloc), Scale: ppl.Data(groups, tscale)})
	}
	// The exact posterior: latents (mu, theta_1..theta_G).
	prec := mat.NewSymDense(G+1, nil)
	h := mat.NewVecDense(G+1, nil)
	prec.SetSym(0, 0, 1/(tau0*tau0)+float64(G)/(tau*tau))
	for g := range G {
		prec.SetSym(0, g+1, -1/(tau*tau))
		prec.SetSym(g+1, g+1, 1/(tau*tau)+float64(M)/(sigma*sigma))
		h.SetVec(g+1, floats.Sum(ys[g])/(sigma*sigma))
	}
	var mean mat.VecDense
	require.NoError(t, mean.SolveVec(prec, h))

	pos := map[string]dist.Constraint{"mu/scale": dist.Positive, "theta/scale": dist.Positive}
	// The sampled log ratio and the closed-form KL reach the same optimum.
	for _, analytic := range []bool{false, true} {
		got := fit(t, vi.ELBO{Model: model, Guide: guide, AnalyticKL: analytic}, 3000, 8, 0.05, pos, "mu/loc", "mu/scale", "theta/loc", "theta/scale")
		locs := append(got["mu/loc"], got["theta/loc"]...)
		scales := append(got["mu/scale"], got["theta/scale"]...)
		for i := range G + 1 {
			wantSD := 1 / math.Sqrt(prec.At(i, i))
			t.Logf("analytic KL %v, latent %d: guide %.4f ± %.4f, optimum %.4f ± %.4f", analytic, i, locs[i], scales[i], mean.AtVec(i), wantSD)
			assert.InDelta(t, mean.AtVec(i), locs[i], wantSD/10, "latent %d mean", i)
			assert.InEpsilon(t, wantSD, scales[i], 0.05, "latent %d sd", i)
		}
	}
}

// Bayesian logistic regression: y_i ~ Bernoulli(σ(x_i·w + b)), w_j, b ~
// N(0, 1), 200 points in a data plate, with a mean-field Normal guide,
// trained on the full data and on minibatches of 50 (a subsampled plate),
// both held to the guide's exact optimum, found by gradient ascent on the
// ELBO computed by Gauss-Hermite quadrature.
func TestTextbookLogisticRegression(t *testing.T) {
	const n = 200
	xs, ys := logisticData(n)
	model := func(sub int) ppl.Model {
		return func(ctx *ppl.Ctx) {
			tp := ctx.Tape()
			p := ctx.Batch()
			w := ppl.Sample(ctx, "w", dist.Normal{Loc: tp.Zeros(p, 2), Scale: tp.Full(p, 2, 1)})
			b := ppl.Sample(ctx, "b", dist.Normal{Loc: tp.Zeros(p, 1), Scale: tp.Full(p, 1, 1)})
			var opts []ppl.PlateOption
			if sub > 0 {
				opts = append(opts, ppl.Subsample(sub))
			}
			data := ppl.Plate(ctx, "data", n, opts...)
			x := ppl.Data(data, tp.FromData(n, 2, xs))
			logits := ad.Add(ad.RowSum(ad.Mul(ppl.Broadcast(data, w), x)), ppl.Broadcast(data, b))
			ppl.Observe(data, "y", dist.BernoulliLogits(logits), ppl.Data(data, tp.FromData(n, 1, ys)))
		}
	}
	guide := func(ctx *ppl.Ctx) {
		for _, v := range []struct {
			name string
			dim  int
		}{{"w", 2}, {"b", 1}} {
			loc := ppl.Param(ctx, v.name+"/loc", 1, v.dim, nn.Zeros{})
			scale := ppl.ParamIn(ctx, v.name+"/scale", 1, v.dim, dist.Positive, nn.Constant(0.5))
			ppl.Sample(ctx, v.name, dist.Normal{Loc: ppl.Expand(ctx, loc), Scale: ppl.Expand(ctx, scale)})
		}
	}
	wantMean, wantSD := logisticOptimum(xs, ys)
	pos := map[string]dist.Constraint{"w/scale": dist.Positive, "b/scale": dist.Positive}
	for _, sub := range []int{0, 50} {
		got := fit(t, vi.ELBO{Model: model(sub), Guide: guide}, 4000, 8, 0.02, pos, "w/loc", "b/loc", "w/scale", "b/scale")
		locs := append(got["w/loc"], got["b/loc"]...)
		scales := append(got["w/scale"], got["b/scale"]...)
		for j := range 3 {
			t.Logf("subsample %d, weight %d: guide %.4f ± %.4f, optimum %.4f ± %.4f", sub, j, locs[j], scales[j], wantMean[j], wantSD[j])
			assert.InDelta(t, wantMean[j], locs[j], wantSD[j]/5, "subsample %d, weight %d: mean", sub, j)
			assert.InEpsilon(t, wantSD[j], scales[j], 0.05, "subsample %d, weight %d: sd", sub, j)
		}
	}
}

// logisticData draws n points x ~ U(-2, 2)² and labels from the weights
// (1.5, -1) and bias 0.5, from a fixed seed.
func logisticData(n int) (xs, ys []float64) {
	rng := rand.New(rand.NewPCG(7, 8))
	xs, ys = make([]float64, 2*n), make([]float64, n)
	for i := range n {
		x0, x1 := 4*rng.Float64()-2, 4*rng.Float64()-2
		xs[2*i], xs[2*i+1] = x0, x1
		if rng.Float64() < 1/(1+math.Exp(-(1.5*x0-x1+0.5))) {
			ys[i] = 1
		}
	}
	return xs, ys
}

// logisticOptimum returns the means and sds of the optimal mean-field
// Normal guide of (w_0, w_1, b): ascent on the exact ELBO, whose
// expectations E[log σ(±a)] for a ~ N(μ_i, v_i), a = x_i·w + b, are
// computed by 40-point Gauss-Hermite quadrature, to a gradient norm of
// 1e-9.
func logisticOptimum(xs, ys []float64) (mean, sd [3]float64) {
	nodes, weights := make([]float64, 40), make([]float64, 40)
	quad.Hermite{}.FixedLocations(nodes, weights, math.Inf(-1), math.Inf(1))
	sigmoid := func(a float64) float64 { return 1 / (1 + math.Exp(-a)) }
	logS := [3]float64{math.Log(0.5), math.Log(0.5), math.Log(0.5)}
	for iter := 0; iter < 200000; iter++ {
		var s, gm, gs [3]float64
		for j := range 3 {
			s[j] = math.Exp(logS[j])
		}
		for i, y := range ys {
			x := [3]float64{xs[2*i], xs[2*i+1], 1}
			var mu, v float64
			for j := range 3 {
				mu += x[j] * mean[j]
				v += x[j] * x[j] * s[j] * s[j]
			}
			sign := 2*y - 1
			// dE/dμ = E[sign σ(-sign a)], dE/dv = E[-σ(a) σ(-a)] / 2.
			var dmu, dv float64
			for k, z := range nodes {
				a := mu + math.Sqrt(2*v)*z
				wk := weights[k] / math.Sqrt(math.Pi)
				dmu += wk * sign * sigmoid(-sign*a)
				dv -= wk * sigmoid(a) * sigmoid(-a) / 2
			}
			for j := range 3 {
				gm[j] += x[j] * dmu
				gs[j] += 2 * x[j] * x[j] * s[j] * s[j] * dv // d/dlog s_j
			}
		}
		norm := 0.0
		for j := range 3 {
			gm[j] -= mean[j]       // -KL's gradient in m
			gs[j] += 1 - s[j]*s[j] // and in log s
			mean[j] += 0.005 * gm[j]
			logS[j] += 0.005 * gs[j]
			norm += gm[j]*gm[j] + gs[j]*gs[j]
		}
		if norm < 1e-18 {
			break
		}
	}
	for j := range 3 {
		sd[j] = math.Exp(logS[j])
	}
	return mean, sd
}
