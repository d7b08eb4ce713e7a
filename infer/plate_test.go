package infer

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/backpropq/backpropq/ad"
	"github.com/backpropq/backpropq/nn"
	"github.com/backpropq/backpropq/ppl"
	"github.com/backpropq/backpropq/ppl/dist"
	"github.com/backpropq/backpropq/trace"
	"github.com/backpropq/backpropq/vi"
)

// mixData are the three points of the mixture model.
var mixData = []float64{-1.3, 0.2, 1.9}

// mixMeans returns the component means of the mixture, [rows x 2], for
// the global bits g: component k has mean base_k + g_k.
func mixMeans(g *ad.Tensor) *ad.Tensor {
	return ad.Add(g, g.Tape().FromData(1, 2, []float64{-1, 0.5}))
}

// mixModel is a mixture of two Gaussians with global means (each the
// base mean shifted by a Bernoulli bit) and a per-point assignment z in
// the plate "data".
func mixModel(ctx *ppl.Ctx) {
	tp := ctx.Tape()
	g := ppl.Sample(ctx, "g", dist.BernoulliLogits(ppl.Expand(ctx, tp.FromData(1, 2, []float64{0.3, -0.2}))))
	data := ppl.Plate(ctx, "data", len(mixData))
	n := data.Rows()
	z := ppl.Sample(data, "z", dist.BernoulliLogits(tp.Zeros(n, 1)))
	mu := ppl.Broadcast(data, mixMeans(g))
	loc := ad.Add(ad.Mul(z, ad.Slice(mu, 1, 2)), ad.Mul(ad.Sub(tp.Scalar(1), z), ad.Slice(mu, 0, 1)))
	ppl.Observe(data, "x", dist.Normal{Loc: loc, Scale: tp.Full(n, 1, 0.8)}, ppl.Data(data, tp.FromData(len(mixData), 1, mixData)))
}

// mixGuide has global logits for g and one logit per point for z.
func mixGuide(ctx *ppl.Ctx) {
	gl := ppl.Param(ctx, "q/g", 1, 2, values(0.4, -0.6))
	ppl.Sample(ctx, "g", dist.BernoulliLogits(ppl.Expand(ctx, gl)))
	data := ppl.Plate(ctx, "data", len(mixData))
	zl := ppl.Param(ctx, "q/z", len(mixData), 1, values(-0.5, 0.3, 0.9))
	ppl.Sample(data, "z", dist.BernoulliLogits(ppl.Data(data, zl)))
}

var mixELBO = vi.ELBO{Model: mixModel, Guide: mixGuide}

// plateSupport is a binary site whose whole value, [rows x cols] for one
// particle, is enumerated.
type plateSupport struct {
	addr       string
	rows, cols int
}

// exactPlateGradient returns the gradient of the expected total cost of
// obj with respect to every parameter of store, by summing over every
// binary value of the sites of sup for one particle.
func exactPlateGradient(t *testing.T, obj vi.Objective, store *nn.Store, sup []plateSupport) []float64 {
	t.Helper()
	bits := 0
	for _, s := range sup {
		bits += s.rows * s.cols
	}
	tp := ad.NewTape()
	store.ZeroGrad()
	var total *ad.Tensor
	for c := 0; c < 1<<bits; c++ {
		cfg := map[string]*ad.Tensor{}
		off := 0
		for _, s := range sup {
			v := make([]float64, s.rows*s.cols)
			for i := range v {
				v[i] = float64(c >> (off + i) & 1)
			}
			off += len(v)
			cfg[s.addr] = tp.FromData(s.rows, s.cols, v)
		}
		tr, err := obj.Run(ppl.Config{Tape: tp, Params: store, Batch: 1}, trace.ReplayValues(cfg))
		require.NoError(t, err)
		total = addOrSet(total, weightedCost(tr))
	}
	tp.Backward(total)
	return flatGrads(store)
}

// signalProbe is a score-function estimator that records each site's
// learning signal.
type signalProbe struct {
	ScoreFunction
	signals map[string]*ad.Tensor
	sites   map[string]*SiteContext
}

func (p *signalProbe) Surrogate(sc *SiteContext) (Term, error) {
	p.signals[sc.Site.Addr] = sc.Signal
	p.sites[sc.Site.Addr] = sc
	return p.ScoreFunction.Surrogate(sc)
}

func TestMixtureLocalSignalHoldsItsOwnPoint(t *testing.T) {
	probe := &signalProbe{signals: map[string]*ad.Tensor{}, sites: map[string]*SiteContext{}}
	store := initObjectiveStore(t, mixELBO)
	tp := ad.NewTape()
	sur, err := BuildSurrogate(mixELBO, Estimators{Default: probe}, ppl.Config{Tape: tp, Rand: seededRand(), Params: store, Batch: 2})
	require.NoError(t, err)
	tr := sur.Trace
	klz, x, klg := tr.Site("kl(z)").ScaledCost(), tr.Site("x").ScaledCost(), tr.Site("kl(g)").ScaledCost()
	z, g := probe.signals["z"], probe.signals["g"]
	require.Equal(t, 6, z.Rows())
	require.Equal(t, 2, g.Rows())
	for p := 0; p < 2; p++ {
		sum := 0.0
		for i := 0; i < 3; i++ {
			r := p*3 + i
			// Its own point's terms and nothing else.
			assert.InDelta(t, klz.At(r, 0)+x.At(r, 0), z.At(r, 0), 1e-12, "row %d", r)
			sum += x.At(r, 0)
		}
		// The global site sees its particle's observations.
		assert.InDelta(t, klg.At(p, 0)+sum, g.At(p, 0), 1e-12, "particle %d", p)
	}
	assert.False(t, probe.sites["z"].TiedRows)
}

func TestPlateModelsUnbiased(t *testing.T) {
	models := []struct {
		name    string
		obj     vi.Objective
		support []plateSupport
	}{
		{"mixture", mixELBO, []plateSupport{{"g", 1, 2}, {"z", 3, 1}}},
		{"nested", vi.Program{Model: nestedModel}, []plateSupport{{"g", 1, 1}, {"h", 2, 1}, {"y", 4, 1}}},
	}
	// The relaxation estimators re-run the objective at relaxed values;
	// every site of these models is Bernoulli.
	cases := append(append([]estimatorCase(nil), unbiasedCases...),
		estimatorCase{name: "MuProp", make: func() Estimator { return MuProp{} }},
		estimatorCase{name: "REBAR", make: func() Estimator { return REBAR{} }},
		estimatorCase{name: "RELAX", make: func() Estimator { return RELAX{} }},
	)
	for _, m := range models {
		for _, ec := range cases {
			t.Run(m.name+"/"+ec.name, func(t *testing.T) {
				store := initObjectiveStore(t, m.obj)
				exact := exactPlateGradient(t, m.obj, store, m.support)
				s := &SVI{
					Objective: m.obj, Estimators: Estimators{Default: ec.make()},
					Optimizer: nn.NewAdam(0.01), Params: store, Particles: 10, Seed: 3,
				}
				warmUp(t, s, 3)
				mean, se := estimateGradient(t, s, repetitions())
				requireAgree(t, exact, mean, se)
			})
		}
	}
}

// nestedModel is a hierarchical program over groups × members: a global
// bit g, a bit h per group drawn given g, a bit y per member drawn given
// its group's h, with costs at each level.
func nestedModel(ctx *ppl.Ctx) {
	tp := ctx.Tape()
	theta := ppl.Param(ctx, "theta", 1, 3, values(0.2, -0.4, 0.7))
	a := ppl.Param(ctx, "a", 1, 2, values(1.3, -1.1))
	g := ppl.Sample(ctx, "g", dist.BernoulliLogits(ppl.Expand(ctx, ad.Slice(theta, 0, 1))))
	ppl.Cost(ctx, "fg", ad.Scale(g, 0.6))
	groups := ppl.Plate(ctx, "groups", 2)
	hl := ad.Add(ppl.Expand(groups, ad.Slice(theta, 1, 2)), ad.Mul(ppl.Broadcast(groups, g), ad.Slice(a, 0, 1)))
	h := ppl.Sample(groups, "h", dist.BernoulliLogits(hl))
	ppl.Cost(groups, "fh", ad.Square(ad.Sub(h, ppl.Data(groups, tp.FromData(2, 1, []float64{0.2, 0.9})))))
	members := ppl.Plate(groups, "members", 2)
	yl := ad.Add(ppl.Expand(members, ad.Slice(theta, 2, 3)), ad.Mul(ppl.Broadcast(members, h), ad.Slice(a, 1, 2)))
	y := ppl.Sample(members, "y", dist.BernoulliLogits(yl))
	target := ppl.Data(members, tp.FromData(4, 1, []float64{1, 0, 0.5, 1}))
	ppl.Cost(members, "fy", ad.Exp(ad.Mul(ad.Sub(y, target), ppl.Broadcast(members, g))))
}

func TestPlateCrossingCostTiesRows(t *testing.T) {
	// A global cost of the members' sum: a member's row no longer has its
	// own downstream cost, so the row-wise re-run estimators refuse.
	model := func(ctx *ppl.Ctx) {
		logits := ppl.Param(ctx, "logits", 1, 1, values(0.3))
		data := ppl.Plate(ctx, "data", 3)
		z := ppl.Sample(data, "z", dist.BernoulliLogits(ppl.Expand(data, logits)))
		ppl.Cost(ctx, "f", ad.Square(ppl.SumOut(data, z)))
	}
	obj := vi.Program{Model: model}
	for _, ec := range unbiasedCases {
		t.Run(ec.name, func(t *testing.T) {
			store := initObjectiveStore(t, obj)
			s := &SVI{Objective: obj, Estimators: Estimators{Default: ec.make()},
				Optimizer: nn.NewAdam(0.01), Params: store, Particles: 10, Seed: 3}
			if ec.name == "Enumerate" || ec.name == "ARM" || ec.name == "DisARM" {
				before := fmt.Sprint(store.Get("logits").Value.RawMatrix().Data)
				_, err := s.Step()
				require.ErrorContains(t, err, `site "z"`)
				assert.Equal(t, before, fmt.Sprint(store.Get("logits").Value.RawMatrix().Data))
				return
			}
			exact := exactPlateGradient(t, obj, store, []plateSupport{{"z", 3, 1}})
			warmUp(t, s, 3)
			mean, se := estimateGradient(t, s, repetitions())
			requireAgree(t, exact, mean, se)
		})
	}
}

func seededRand() *rand.Rand { return rand.New(rand.NewPCG(1, 2)) }

// TestUnbiasedIWAEUnderPlates checks the VIMCO signal on the mixture's
// importance-weighted bound: each particle's weight sums its points, and
// every row of a local site gets its particle's signal.
func TestUnbiasedIWAEUnderPlates(t *testing.T) {
	const k = 2
	obj := vi.IWAE{Model: mixModel, Guide: mixGuide, K: k}
	for _, tc := range []struct {
		name string
		est  Estimator
	}{
		{"ScoreFunction", ScoreFunction{}},
		{"ScoreFunction+MovingAverage", ScoreFunction{Baseline: NewMovingAverage(0.5)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			store := initObjectiveStore(t, obj)
			exact := exactPlateGradient(t, obj, store, []plateSupport{{"g", k, 2}, {"z", k * 3, 1}})
			s := &SVI{Objective: obj, Estimators: Estimators{Default: tc.est},
				Optimizer: nn.NewAdam(0.01), Params: store, Particles: 10, Seed: 13}
			warmUp(t, s, 2)
			mean, se := estimateGradient(t, s, repetitions())
			requireAgree(t, exact, mean, se)
		})
	}
}

// overrideProbe re-runs the objective with its site's value fixed to the
// one drawn, and records the difference between the re-run's downstream
// cost and the learning signal.
type overrideProbe struct {
	ScoreFunction
	diff float64
}

func (p *overrideProbe) Surrogate(sc *SiteContext) (Term, error) {
	v := sc.Site.Value
	again, err := sc.Rerun(trace.Override(func(s *ppl.Site) *ad.Tensor {
		if s.Addr == sc.Site.Addr {
			return v
		}
		return nil
	}))
	if err != nil {
		return Term{}, err
	}
	for i, c := range again.Data() {
		p.diff = max(p.diff, math.Abs(c-sc.Signal.Data()[i]))
	}
	return p.ScoreFunction.Surrogate(sc)
}

// TestRerunHoldsTheModelsMinibatch checks that a re-run of an ELBO whose
// data plate only the model enters holds the same subsample.
func TestRerunHoldsTheModelsMinibatch(t *testing.T) {
	model := func(ctx *ppl.Ctx) {
		tp := ctx.Tape()
		g := ppl.Sample(ctx, "g", dist.BernoulliLogits(ppl.Expand(ctx, tp.Scalar(0.3))))
		data := ppl.Plate(ctx, "data", len(mixData), ppl.Subsample(2))
		loc := ppl.Broadcast(data, g)
		ppl.Observe(data, "x", dist.Normal{Loc: loc, Scale: tp.Full(data.Rows(), 1, 0.8)}, ppl.Data(data, tp.FromData(len(mixData), 1, mixData)))
	}
	guide := func(ctx *ppl.Ctx) {
		ppl.Sample(ctx, "g", dist.BernoulliLogits(ppl.Expand(ctx, ppl.Param(ctx, "q/g", 1, 1, values(0.1)))))
	}
	probe := &overrideProbe{}
	for seed := uint64(0); seed < 10; seed++ {
		_, err := BuildSurrogate(vi.ELBO{Model: model, Guide: guide}, Estimators{Default: probe},
			ppl.Config{Tape: ad.NewTape(), Rand: rand.New(rand.NewPCG(seed, 1)), Params: nn.NewStore(), Batch: 3})
		require.NoError(t, err)
	}
	assert.Less(t, probe.diff, 1e-12)
}
