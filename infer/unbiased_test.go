package infer

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
	"gonum.org/v1/gonum/mat"

	"github.com/backpropq/backpropq/ad"
	"github.com/backpropq/backpropq/nn"
	"github.com/backpropq/backpropq/ppl"
	"github.com/backpropq/backpropq/ppl/dist"
	"github.com/backpropq/backpropq/trace"
	"github.com/backpropq/backpropq/vi"
)

// values returns an initializer that sets a parameter to vs.
func values(vs ...float64) nn.Initializer {
	return nn.InitFunc(func(m *mat.Dense, _ *rand.Rand) {
		copy(m.RawMatrix().Data, vs)
	})
}

// chainModel is a 3-node Bernoulli chain z1 -> z2 -> z3 with a nonlinear
// cost of all three and a cost of z1 alone.
func chainModel(ctx *ppl.Ctx) {
	tp := ctx.Tape()
	theta := ppl.Param(ctx, "theta", 1, 3, values(0.3, -0.4, 0.8))
	w := ppl.Param(ctx, "w", 1, 2, values(1.5, -2))
	z1 := ppl.Sample(ctx, "z1", dist.BernoulliLogits(ppl.Expand(ctx, ad.Slice(theta, 0, 1))))
	l2 := ad.Add(ppl.Expand(ctx, ad.Slice(theta, 1, 2)), ad.Mul(z1, ad.Slice(w, 0, 1)))
	z2 := ppl.Sample(ctx, "z2", dist.BernoulliLogits(l2))
	l3 := ad.Add(ppl.Expand(ctx, ad.Slice(theta, 2, 3)), ad.Mul(z2, ad.Slice(w, 1, 2)))
	z3 := ppl.Sample(ctx, "z3", dist.BernoulliLogits(l3))
	s := ad.Add(ad.Add(z1, ad.Scale(z2, 2)), ad.Scale(z3, -1.5))
	ppl.Cost(ctx, "f", ad.Add(ad.Square(ad.Sub(s, tp.Scalar(0.7))), ad.Exp(ad.Scale(ad.Mul(z1, z3), 0.5))))
	ppl.Cost(ctx, "g", ad.Scale(z1, 0.9))
}

var chainSupport = []siteSupport{
	{"z1", [][]float64{{0}, {1}}},
	{"z2", [][]float64{{0}, {1}}},
	{"z3", [][]float64{{0}, {1}}},
}

// sbnModel is the ELBO of a two-layer sigmoid belief network with 4 visible
// units and 2+2 latent units, written as a program whose guide sites h1, h2
// are the random variables and whose costs are the per-site terms of the
// bound: log q(h1|x) - log p(h1|h2), log q(h2|h1) - log p(h2), and
// -log p(x|h1).
func sbnModel(ctx *ppl.Ctx) {
	tp := ctx.Tape()
	x := ppl.Expand(ctx, tp.FromData(1, 4, []float64{1, 0, 1, 1}))
	init := nn.Normal{Std: 0.7}
	qW1 := ppl.Param(ctx, "q/W1", 4, 2, init)
	qb1 := ppl.Param(ctx, "q/b1", 1, 2, init)
	qW2 := ppl.Param(ctx, "q/W2", 2, 2, init)
	qb2 := ppl.Param(ctx, "q/b2", 1, 2, init)
	prior := ppl.Param(ctx, "p/prior", 1, 2, init)
	pW1 := ppl.Param(ctx, "p/W1", 2, 2, init)
	pb1 := ppl.Param(ctx, "p/b1", 1, 2, init)
	pW2 := ppl.Param(ctx, "p/W2", 2, 4, init)
	pb2 := ppl.Param(ctx, "p/b2", 1, 4, init)

	q1 := dist.BernoulliLogits(ad.Add(ad.MatMul(x, qW1), qb1))
	h1 := ppl.Sample(ctx, "h1", q1)
	q2 := dist.BernoulliLogits(ad.Add(ad.MatMul(h1, qW2), qb2))
	h2 := ppl.Sample(ctx, "h2", q2)

	p2 := dist.BernoulliLogits(ppl.Expand(ctx, prior))
	p1 := dist.BernoulliLogits(ad.Add(ad.MatMul(h2, pW1), pb1))
	ppl.Cost(ctx, "elbo/h1", ad.Sub(q1.LogProb(h1), p1.LogProb(h1)))
	ppl.Cost(ctx, "elbo/h2", ad.Sub(q2.LogProb(h2), p2.LogProb(h2)))
	ppl.Observe(ctx, "x", dist.BernoulliLogits(ad.Add(ad.MatMul(h1, pW2), pb2)), x)
}

// sbnParams returns the parameters of the SBN of sbnModel.
func sbnParams(ctx *ppl.Ctx) (x *ad.Tensor, q, p map[string]*ad.Tensor) {
	return sbnSizedParams(ctx, 2, 2)
}

// sbnSizedParams returns the parameters of a two-layer sigmoid belief
// network with 4 visible units, h1 units in the lower latent layer and h2
// in the upper one, and its mirrored inference network.
func sbnSizedParams(ctx *ppl.Ctx, h1, h2 int) (x *ad.Tensor, q, p map[string]*ad.Tensor) {
	tp := ctx.Tape()
	x = ppl.Expand(ctx, tp.FromData(1, 4, []float64{1, 0, 1, 1}))
	init := nn.Normal{Std: 0.7}
	q = map[string]*ad.Tensor{
		"W1": ppl.Param(ctx, "q/W1", 4, h1, init), "b1": ppl.Param(ctx, "q/b1", 1, h1, init),
		"W2": ppl.Param(ctx, "q/W2", h1, h2, init), "b2": ppl.Param(ctx, "q/b2", 1, h2, init),
	}
	p = map[string]*ad.Tensor{
		"prior": ppl.Param(ctx, "p/prior", 1, h2, init),
		"W1":    ppl.Param(ctx, "p/W1", h2, h1, init), "b1": ppl.Param(ctx, "p/b1", 1, h1, init),
		"W2": ppl.Param(ctx, "p/W2", h1, 4, init), "b2": ppl.Param(ctx, "p/b2", 1, 4, init),
	}
	return x, q, p
}

// sbnELBO is the SBN of sbnModel as a model and a guide for vi.ELBO.
var sbnELBO = sbnSizedELBO(2, 2)

// sbnSizedELBO is the ELBO of the network of sbnSizedParams.
func sbnSizedELBO(h1, h2 int) vi.ELBO {
	return vi.ELBO{
		Model: func(ctx *ppl.Ctx) {
			x, _, p := sbnSizedParams(ctx, h1, h2)
			z2 := ppl.Sample(ctx, "h2", dist.BernoulliLogits(ppl.Expand(ctx, p["prior"])))
			z1 := ppl.Sample(ctx, "h1", dist.BernoulliLogits(ad.Add(ad.MatMul(z2, p["W1"]), p["b1"])))
			ppl.Observe(ctx, "x", dist.BernoulliLogits(ad.Add(ad.MatMul(z1, p["W2"]), p["b2"])), x)
		},
		Guide: func(ctx *ppl.Ctx) {
			x, q, _ := sbnSizedParams(ctx, h1, h2)
			z1 := ppl.Sample(ctx, "h1", dist.BernoulliLogits(ad.Add(ad.MatMul(x, q["W1"]), q["b1"])))
			ppl.Sample(ctx, "h2", dist.BernoulliLogits(ad.Add(ad.MatMul(z1, q["W2"]), q["b2"])))
		},
	}
}

var bits2 = [][]float64{{0, 0}, {1, 0}, {0, 1}, {1, 1}}

var sbnSupport = []siteSupport{{"h1", bits2}, {"h2", bits2}}

// categoricalModel draws a class z of 4, a Bernoulli y that depends on z
// and a one-hot class o of 3 that depends on y, with nonlinear costs of
// each.
func categoricalModel(ctx *ppl.Ctx) {
	tp := ctx.Tape()
	logits := ppl.Param(ctx, "logits", 1, 4, values(0.2, -0.5, 0.9, 0.1))
	a := ppl.Param(ctx, "a", 1, 1, values(0.8))
	z := ppl.Sample(ctx, "z", dist.Categorical{Logits: ppl.Expand(ctx, logits)})
	ppl.Cost(ctx, "fz", ad.Square(ad.Sub(z, tp.Scalar(1.3))))
	y := ppl.Sample(ctx, "y", dist.BernoulliLogits(ad.Sub(ad.Mul(z, a), tp.Scalar(1))))
	ppl.Cost(ctx, "fy", ad.Square(ad.Sub(y, ad.Scale(z, 1.0/3))))
	// A one-hot site of 3 classes whose logits depend on y.
	b := ppl.Param(ctx, "b", 1, 3, values(0.5, -0.2, 0.1))
	o := ppl.Sample(ctx, "o", dist.OneHotCategorical{Logits: ad.Mul(ad.Add(y, tp.Scalar(0.5)), b)})
	ppl.Cost(ctx, "fo", ad.Exp(ad.RowSum(ad.Mul(o, tp.FromData(1, 3, []float64{0.3, -1, 1.2})))))
}

var categoricalSupport = []siteSupport{
	{"z", [][]float64{{0}, {1}, {2}, {3}}},
	{"y", [][]float64{{0}, {1}}},
	{"o", [][]float64{{1, 0, 0}, {0, 1, 0}, {0, 0, 1}}},
}

// siteSupport lists the values of one row of a discrete site.
type siteSupport struct {
	addr   string
	values [][]float64
}

// exactGradient returns the gradient of the expected total cost of model
// with respect to every parameter of store (flattened in the store's
// order) by summing over every configuration of the sites in sup, one row
// at a time.
func exactGradient(t *testing.T, model ppl.Model, store *nn.Store, sup []siteSupport) []float64 {
	t.Helper()
	return exactObjectiveGradient(t, vi.Program{Model: model}, store, sup)
}

// exactObjectiveGradient is exactGradient for any objective: the sites in
// sup are its random variables, the costs its cost and observe sites.
func exactObjectiveGradient(t *testing.T, obj vi.Objective, store *nn.Store, sup []siteSupport) []float64 {
	t.Helper()
	tp := ad.NewTape()
	store.ZeroGrad()
	var total *ad.Tensor
	idx := make([]int, len(sup))
	for {
		cfg := map[string]*ad.Tensor{}
		for i, s := range sup {
			v := s.values[idx[i]]
			cfg[s.addr] = tp.FromData(1, len(v), v)
		}
		tr, err := obj.Run(ppl.Config{Tape: tp, Params: store, Batch: 1}, trace.ReplayValues(cfg))
		require.NoError(t, err)
		total = addOrSet(total, weightedCost(tr))
		// Next configuration, odometer style.
		i := 0
		for ; i < len(idx); i++ {
			idx[i]++
			if idx[i] < len(sup[i].values) {
				break
			}
			idx[i] = 0
		}
		if i == len(idx) {
			break
		}
	}
	tp.Backward(total)
	return flatGrads(store)
}

// weightedCost returns p(values) times the total cost of tr, a trace of
// one configuration of its random variables, summed over all rows.
func weightedCost(tr *trace.Trace) *ad.Tensor {
	var logp, cost *ad.Tensor
	for _, s := range tr.Sites() {
		if s.Stochastic() {
			logp = addOrSet(logp, ad.Sum(s.LogProb))
		}
		if s.IsCost() {
			cost = addOrSet(cost, ad.Sum(s.ScaledCost()))
		}
	}
	return ad.Mul(ad.Exp(logp), cost)
}

func addOrSet(a, b *ad.Tensor) *ad.Tensor {
	if a == nil {
		return b
	}
	return ad.Add(a, b)
}

// flatGrads returns the gradients of the store's parameters, flattened.
func flatGrads(store *nn.Store) []float64 {
	var g []float64
	for _, p := range store.Params() {
		g = append(g, p.Grad.RawMatrix().Data...)
	}
	return g
}

// modelGrads returns the gradients of the parameters whose names do not
// start with "infer/", flattened.
func modelGrads(store *nn.Store) []float64 {
	var g []float64
	for _, p := range store.Params() {
		if len(p.Name) >= 6 && p.Name[:6] == "infer/" {
			continue
		}
		g = append(g, p.Grad.RawMatrix().Data...)
	}
	return g
}

// repetitions is the number of gradient estimates averaged by the
// unbiasedness tests: enough to detect a 10% bias in the score-function
// estimates; fewer in -short mode (-race).
func repetitions() int {
	if testing.Short() {
		return 300
	}
	return 2000
}

// estimateGradient runs reps gradient computations of s, each averaged
// over its rows, and returns the mean and standard error per component.
func estimateGradient(t *testing.T, s *SVI, reps int) (mean, se []float64) {
	t.Helper()
	var sum, sum2 []float64
	for r := 0; r < reps; r++ {
		_, _, err := s.compute()
		require.NoError(t, err)
		s.step++
		g := modelGrads(s.Params)
		if sum == nil {
			sum, sum2 = make([]float64, len(g)), make([]float64, len(g))
		}
		for i, v := range g {
			v /= float64(s.Particles)
			sum[i] += v
			sum2[i] += v * v
		}
	}
	n := float64(reps)
	mean, se = make([]float64, len(sum)), make([]float64, len(sum))
	for i := range sum {
		mean[i] = sum[i] / n
		variance := (sum2[i] - n*mean[i]*mean[i]) / (n - 1)
		se[i] = math.Sqrt(math.Max(variance, 0) / n)
	}
	return mean, se
}

// initStore creates the parameters of model in a new store.
func initStore(t *testing.T, model ppl.Model) *nn.Store {
	t.Helper()
	store := nn.NewStore()
	_, err := trace.Run(model, ppl.Config{Params: store, Rand: rand.New(rand.NewPCG(1, 2)), Batch: 1})
	require.NoError(t, err)
	return store
}

// initObjectiveStore creates the parameters of obj in a new store.
func initObjectiveStore(t *testing.T, obj vi.Objective) *nn.Store {
	t.Helper()
	store := nn.NewStore()
	_, err := obj.Run(ppl.Config{Params: store, Rand: rand.New(rand.NewPCG(1, 2)), Batch: 1})
	require.NoError(t, err)
	return store
}

// requireAgree checks that each component of the estimate is within 4
// standard errors of the exact gradient.
func requireAgree(t *testing.T, exact, mean, se []float64) {
	t.Helper()
	require.Len(t, mean, len(exact))
	for i := range exact {
		tol := 4*se[i] + 1e-9*(1+math.Abs(exact[i]))
		require.InDeltaf(t, exact[i], mean[i], tol, "component %d: exact %.5f, estimate %.5f ± %.5f", i, exact[i], mean[i], se[i])
	}
}

// estimatorCase names an estimator configuration; make returns a fresh
// one for each model.
type estimatorCase struct {
	name string
	make func() Estimator
	// bernoulliOnly estimators are skipped on the Categorical model's site z.
	bernoulliOnly bool
}

var unbiasedCases = []estimatorCase{
	{name: "ScoreFunction", make: func() Estimator { return ScoreFunction{} }},
	{name: "ScoreFunction+MovingAverage", make: func() Estimator { return ScoreFunction{Baseline: NewMovingAverage(0.5)} }},
	{name: "ScoreFunction+NVIL", make: func() Estimator {
		n := NewNVIL(3)
		n.NoNormalize = true
		return ScoreFunction{Baseline: n}
	}},
	{name: "Enumerate", make: func() Estimator { return Enumerate{} }},
	{name: "ARM", make: func() Estimator { return ARM{} }, bernoulliOnly: true},
	{name: "DisARM", make: func() Estimator { return DisARM{} }, bernoulliOnly: true},
}

// warmUp takes steps with a zero learning rate, so that running baselines
// and NVIL's statistics hold non-trivial state while the parameters of the
// model keep their values, then gives NVIL networks random weights.
func warmUp(t *testing.T, s *SVI, steps int) {
	t.Helper()
	opt := s.Optimizer
	s.Optimizer = &nn.SGD{LR: 0}
	for i := 0; i < steps; i++ {
		_, err := s.Step()
		require.NoError(t, err)
	}
	s.Optimizer = opt
	rng := rand.New(rand.NewPCG(7, 8))
	for _, p := range s.Params.Params() {
		if len(p.Name) > 11 && p.Name[:11] == "infer/nvil/" {
			nn.Normal{Std: 0.5}.Init(p.Value, rng)
		}
	}
}

func TestUnbiasedAgainstExactGradient(t *testing.T) {
	models := []struct {
		name    string
		obj     vi.Objective
		support []siteSupport
	}{
		{"chain", vi.Program{Model: chainModel}, chainSupport},
		{"sbn-program", vi.Program{Model: sbnModel}, sbnSupport},
		{"sbn-elbo", sbnELBO, sbnSupport},
		{"categorical", vi.Program{Model: categoricalModel}, categoricalSupport},
	}
	for _, m := range models {
		for _, ec := range unbiasedCases {
			t.Run(m.name+"/"+ec.name, func(t *testing.T) {
				store := initObjectiveStore(t, m.obj)
				exact := exactObjectiveGradient(t, m.obj, store, m.support)
				est := Estimators{Default: ec.make()}
				if ec.bernoulliOnly && m.name == "categorical" {
					// ARM and DisARM take the Bernoulli site y; the
					// Categorical z is summed exactly.
					est = Estimators{Default: Enumerate{}, Sites: map[string]Estimator{"y": ec.make()}}
				}
				s := &SVI{
					Objective: m.obj, Estimators: est,
					Optimizer: nn.NewAdam(0.01), Params: store, Particles: 20, Seed: 3,
				}
				warmUp(t, s, 3)
				mean, se := estimateGradient(t, s, repetitions())
				requireAgree(t, exact, mean, se)
			})
		}
	}
}

// TestNVILNormalizedUnbiased checks NVIL with variance normalization on a
// model with one site, where the expected estimate is the exact gradient
// times the normalization factor of the site.
func TestNVILNormalizedUnbiased(t *testing.T) {
	model := func(ctx *ppl.Ctx) {
		tp := ctx.Tape()
		logits := ppl.Param(ctx, "logits", 1, 3, values(0.4, -0.3, 1.1))
		z := ppl.Sample(ctx, "z", dist.BernoulliLogits(ppl.Expand(ctx, logits)))
		s := ad.RowSum(ad.Mul(z, tp.FromData(1, 3, []float64{3, -2, 4})))
		ppl.Cost(ctx, "f", ad.Square(ad.Sub(s, tp.Scalar(1))))
	}
	var sup []siteSupport
	var all [][]float64
	for c := 0; c < 8; c++ {
		all = append(all, []float64{float64(c & 1), float64(c >> 1 & 1), float64(c >> 2 & 1)})
	}
	sup = append(sup, siteSupport{"z", all})
	store := initStore(t, model)
	exact := exactGradient(t, model, store, sup)
	nvil := NewNVIL(4)
	s := &SVI{Objective: vi.Program{Model: model}, Estimators: Estimators{Default: ScoreFunction{Baseline: nvil}},
		Optimizer: nn.NewAdam(0.01), Params: store, Particles: 20, Seed: 5}
	warmUp(t, s, 3)
	_, variance, ok := nvil.Stats("z")
	require.True(t, ok)
	factor := 1 / math.Max(1, math.Sqrt(variance))
	require.Less(t, factor, 1.0, "the test needs a signal variance above 1")
	for i := range exact {
		exact[i] *= factor
	}
	mean, se := estimateGradient(t, s, repetitions())
	requireAgree(t, exact, mean, se)
}

// TestPathwiseNormal checks Pathwise and ScoreFunction on a Normal site
// against the closed-form gradient of E[(z-1)² + exp(z/2)] for
// z ~ N(μ, σ²), which is (μ-1)² + σ² + e^{μ/2 + σ²/8}:
// ∂/∂μ = 2(μ-1) + ½e^{μ/2+σ²/8}, ∂/∂log σ = 2σ² + (σ²/4)e^{μ/2+σ²/8}.
func TestPathwiseNormal(t *testing.T) {
	mu, logSigma := 0.4, math.Log(0.8)
	model := func(ctx *ppl.Ctx) {
		tp := ctx.Tape()
		loc := ppl.Param(ctx, "loc", 1, 1, values(mu))
		ls := ppl.Param(ctx, "logscale", 1, 1, values(logSigma))
		z := ppl.Sample(ctx, "z", dist.Normal{Loc: ppl.Expand(ctx, loc), Scale: ppl.Expand(ctx, ad.Exp(ls))})
		ppl.Cost(ctx, "f", ad.Add(ad.Square(ad.Sub(z, tp.Scalar(1))), ad.Exp(ad.Scale(z, 0.5))))
	}
	sigma2 := math.Exp(2 * logSigma)
	e := math.Exp(mu/2 + sigma2/8)
	exact := []float64{
		2*(mu-1) + e/2,        // loc
		2*sigma2 + sigma2/4*e, // logscale
	}
	for _, est := range []Estimator{Pathwise{}, ScoreFunction{}, ScoreFunction{Baseline: NewMovingAverage(0.5)}} {
		t.Run(fmt.Sprintf("%T", est), func(t *testing.T) {
			store := initStore(t, model)
			s := &SVI{Objective: vi.Program{Model: model}, Estimators: Estimators{Default: est},
				Optimizer: nn.NewAdam(0.01), Params: store, Particles: 20, Seed: 9}
			warmUp(t, s, 2)
			mean, se := estimateGradient(t, s, repetitions())
			// modelGrads orders by name: loc, logscale.
			requireAgree(t, exact, mean, se)
		})
	}
}

// TestSBNProgramMatchesELBO checks that the hand-written SBN program and
// its vi.ELBO form are the same objective: equal exact gradients.
func TestSBNProgramMatchesELBO(t *testing.T) {
	prog := vi.Program{Model: sbnModel}
	a := exactObjectiveGradient(t, prog, initObjectiveStore(t, prog), sbnSupport)
	b := exactObjectiveGradient(t, sbnELBO, initObjectiveStore(t, sbnELBO), sbnSupport)
	require.Len(t, b, len(a))
	for i := range a {
		require.InDelta(t, a[i], b[i], 1e-12, "component %d", i)
	}
}

// iwaeParams returns the parameters of the IWAE test model.
func iwaeParams(ctx *ppl.Ctx) (x *ad.Tensor, q, p map[string]*ad.Tensor) {
	tp := ctx.Tape()
	x = ppl.Tile(ctx, tp.FromData(1, 3, []float64{1, 0, 1}))
	init := nn.Normal{Std: 0.7}
	q = map[string]*ad.Tensor{"W": ppl.Param(ctx, "q/W", 3, 2, init), "b": ppl.Param(ctx, "q/b", 1, 2, init)}
	p = map[string]*ad.Tensor{
		"prior": ppl.Param(ctx, "p/prior", 1, 2, init),
		"W":     ppl.Param(ctx, "p/W", 2, 3, init), "b": ppl.Param(ctx, "p/b", 1, 3, init),
	}
	return x, q, p
}

// iwaeObjective is the importance-weighted bound with k particles of a
// model with two binary latents and three binary observations.
func iwaeObjective(k int) vi.IWAE {
	return vi.IWAE{
		K: k,
		Model: func(ctx *ppl.Ctx) {
			x, _, p := iwaeParams(ctx)
			z := ppl.Sample(ctx, "z", dist.BernoulliLogits(ppl.Expand(ctx, p["prior"])))
			ppl.Observe(ctx, "x", dist.BernoulliLogits(ad.Add(ad.MatMul(z, p["W"]), p["b"])), x)
		},
		Guide: func(ctx *ppl.Ctx) {
			x, q, _ := iwaeParams(ctx)
			ppl.Sample(ctx, "z", dist.BernoulliLogits(ad.Add(ad.MatMul(x, q["W"]), q["b"])))
		},
	}
}

// TestUnbiasedIWAE checks score-function estimators on the
// importance-weighted bound, whose K particles share one cost: with the
// VIMCO signal the objective provides, the mean estimate agrees with the
// exact gradient of E[-L_K], summed over every joint configuration of the K
// particles.
func TestUnbiasedIWAE(t *testing.T) {
	const k = 3
	obj := iwaeObjective(k)
	// The support of one data point: every [k x 2] configuration.
	var joint [][]float64
	for cfg := 0; cfg < 1<<(2*k); cfg++ {
		v := make([]float64, 2*k)
		for i := range v {
			v[i] = float64(cfg >> i & 1)
		}
		joint = append(joint, v)
	}
	cases := []struct {
		name string
		est  Estimator
	}{
		{"ScoreFunction", ScoreFunction{}},
		{"ScoreFunction+MovingAverage", ScoreFunction{Baseline: NewMovingAverage(0.5)}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			store := nn.NewStore()
			// IWAE's batch counts data points; its runs have k rows each.
			_, err := obj.Run(ppl.Config{Params: store, Rand: rand.New(rand.NewPCG(1, 2)), Batch: 1})
			require.NoError(t, err)
			exact := exactRowsGradient(t, obj, store, []siteSupport{{"z", joint}}, k, 1)
			const points = 10
			s := &SVI{Objective: obj, Estimators: Estimators{Default: tc.est},
				Optimizer: nn.NewAdam(0.01), Params: store, Particles: points, Seed: 13}
			warmUp(t, s, 2)
			// estimateGradient divides by Particles: here data points.
			mean, se := estimateGradient(t, s, repetitions())
			requireAgree(t, exact, mean, se)
		})
	}
}

// exactRowsGradient is exactObjectiveGradient for runs of rows rows (of
// Config.Batch batch): each support value holds all rows of its site, and
// the probability and cost of a configuration are summed over the rows.
func exactRowsGradient(t *testing.T, obj vi.Objective, store *nn.Store, sup []siteSupport, rows, batch int) []float64 {
	t.Helper()
	return exactSiteRowsGradient(t, obj, store, sup, func(string) int { return rows }, batch)
}

// exactSiteRowsGradient is exactRowsGradient with rowsOf(addr) rows at
// each site (sites inside plates have a row per member).
func exactSiteRowsGradient(t *testing.T, obj vi.Objective, store *nn.Store, sup []siteSupport, rowsOf func(addr string) int, batch int) []float64 {
	t.Helper()
	tp := ad.NewTape()
	store.ZeroGrad()
	var total *ad.Tensor
	idx := make([]int, len(sup))
	for {
		cfg := map[string]*ad.Tensor{}
		for i, s := range sup {
			v := s.values[idx[i]]
			r := rowsOf(s.addr)
			cfg[s.addr] = tp.FromData(r, len(v)/r, v)
		}
		tr, err := obj.Run(ppl.Config{Tape: tp, Params: store, Batch: batch}, trace.ReplayValues(cfg))
		require.NoError(t, err)
		total = addOrSet(total, weightedCost(tr))
		i := 0
		for ; i < len(idx); i++ {
			idx[i]++
			if idx[i] < len(sup[i].values) {
				break
			}
			idx[i] = 0
		}
		if i == len(idx) {
			break
		}
	}
	tp.Backward(total)
	return flatGrads(store)
}

// TestTiedRowsRejectRerunEstimators checks that the estimators that read a
// row's cost from a re-run refuse an objective whose rows share a cost.
func TestTiedRowsRejectRerunEstimators(t *testing.T) {
	for _, est := range []Estimator{ARM{}, DisARM{}, Enumerate{}} {
		s := &SVI{Objective: iwaeObjective(3), Estimators: Estimators{Default: est},
			Optimizer: nn.NewAdam(0.01), Params: nn.NewStore(), Particles: 2, Seed: 1}
		_, err := s.Step()
		require.ErrorContains(t, err, `site "z"`)
		require.ErrorContains(t, err, "ties its rows together")
	}
}
