package infer

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/backpropq/backpropq/ad"
	"github.com/backpropq/backpropq/nn"
	"github.com/backpropq/backpropq/ppl"
	"github.com/backpropq/backpropq/ppl/dist"
	"github.com/backpropq/backpropq/vi"
)

// toySecondMoment returns the mean over draws of ĝ² (the squared gradient
// of θ) and of the gradients REBAR gives η and log λ, on the toy problem
// at θ = 0 with the given η and λ.
func toySecondMoment(t *testing.T, est REBAR, draws int, seed uint64) (g2, dEta, dLogTemp float64) {
	st := nn.NewStore()
	tp := ad.NewTape()
	rng := rand.New(rand.NewPCG(seed, 7))
	if !est.Fixed {
		_, err := st.Param("infer/rebar/b/eta", 1, 1, nn.Constant(est.Eta), nil)
		require.NoError(t, err)
		_, err = st.Param("infer/rebar/b/log_temperature", 1, 1, nn.Constant(math.Log(est.Temperature)), nil)
		require.NoError(t, err)
	}
	for i := 0; i < draws; i++ {
		tp.Reset()
		st.ZeroGrad()
		sur, err := BuildSurrogate(vi.Program{Model: toyModel}, Estimators{Default: est}, ppl.Config{Tape: tp, Rand: rng, Params: st, Batch: 1})
		require.NoError(t, err)
		tp.Backward(sur.Loss)
		g := st.Get("theta").Grad.At(0, 0)
		g2 += g * g / float64(draws)
		if !est.Fixed {
			dEta += st.Get("infer/rebar/b/eta").Grad.At(0, 0) / float64(draws)
			dLogTemp += st.Get("infer/rebar/b/log_temperature").Grad.At(0, 0) / float64(draws)
		}
	}
	return g2, dEta, dLogTemp
}

// TestREBARVarianceGradient checks the gradients REBAR gives η and log λ
// against finite differences of the estimator's second moment E[ĝ²] (whose
// derivative is the variance's, the mean being the exact gradient for
// every η and λ), computed with common random numbers.
func TestREBARVarianceGradient(t *testing.T) {
	const draws = 20000
	eta, temp := 1.0, 0.5
	_, dEta, dLogTemp := toySecondMoment(t, REBAR{Eta: eta, Temperature: temp}, draws, 1)
	const h = 0.2
	up, _, _ := toySecondMoment(t, REBAR{Fixed: true, Eta: eta + h, Temperature: temp}, draws, 1)
	down, _, _ := toySecondMoment(t, REBAR{Fixed: true, Eta: eta - h, Temperature: temp}, draws, 1)
	// E[ĝ²] is quadratic in η, so the central difference is exact.
	fdEta := (up - down) / (2 * h)
	t.Logf("d E[g²]/dη: REBAR %.5f, finite difference %.5f", dEta, fdEta)
	require.InDelta(t, fdEta, dEta, 0.1*math.Abs(fdEta))
	up, _, _ = toySecondMoment(t, REBAR{Fixed: true, Eta: eta, Temperature: temp * math.Exp(h)}, draws, 1)
	down, _, _ = toySecondMoment(t, REBAR{Fixed: true, Eta: eta, Temperature: temp * math.Exp(-h)}, draws, 1)
	fdTemp := (up - down) / (2 * h)
	t.Logf("d E[g²]/d log λ: REBAR %.5f, finite difference %.5f", dLogTemp, fdTemp)
	require.InDelta(t, fdTemp, dLogTemp, 0.15*math.Abs(fdTemp))
}

// TestRelaxEstimatorErrors checks that the estimators reject sites they
// cannot serve, naming the site.
func TestRelaxEstimatorErrors(t *testing.T) {
	normal := func(ctx *ppl.Ctx) {
		tp := ctx.Tape()
		z := ppl.Sample(ctx, "z", dist.Normal{Loc: tp.Zeros(ctx.Batch(), 1), Scale: tp.Full(ctx.Batch(), 1, 1)})
		ppl.Cost(ctx, "c", ad.Square(z))
	}
	cases := []struct {
		name  string
		model ppl.Model
		est   Estimator
		store bool
		want  string
	}{
		{"REBAR on an index site", rxIndex().model, REBAR{}, true, "OneHotCategorical"},
		{"REBAR on a Normal", normal, REBAR{}, true, "no relaxation"},
		{"REBAR without a store", rxChain().model, REBAR{}, false, "parameter store"},
		{"REBAR bad temperature", rxChain().model, REBAR{Temperature: -1, Fixed: true}, true, "temperature"},
		{"RELAX on a Normal", normal, RELAX{}, true, "no relaxation"},
		{"RELAX concrete on an index site", rxIndex().model, RELAX{Concrete: true}, true, "OneHotCategorical"},
		{"RELAX without a store", rxChain().model, RELAX{}, false, "parameter store"},
		{"MuProp on an index site", rxIndex().model, MuProp{}, true, "OneHotCategorical"},
		{"Gumbel on a Normal", normal, GumbelSoftmax{}, true, "no relaxation"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			env := ppl.Config{Tape: ad.NewTape(), Rand: rand.New(rand.NewPCG(1, 2)), Batch: 3}
			if c.store {
				env.Params = nn.NewStore()
			}
			sur, err := BuildSurrogate(vi.Program{Model: c.model}, Estimators{Default: c.est}, env)
			require.Nil(t, sur)
			require.ErrorContains(t, err, "site ")
			require.ErrorContains(t, err, c.want)
		})
	}
}

// TestRelaxEstimatorsTrainThroughSVI trains the Bernoulli chain with each
// estimator through SVI, split into two chunks, and checks that the result
// does not depend on the number of workers and that the expected cost
// falls.
func TestRelaxEstimatorsTrainThroughSVI(t *testing.T) {
	m := rxChain()
	for _, est := range []Estimator{MuProp{}, REBAR{}, RELAX{}, RELAX{Concrete: true}, GumbelSoftmax{StraightThrough: true}} {
		run := func(workers int) (*nn.Store, float64) {
			st := m.store(t)
			s := &SVI{Objective: vi.Program{Model: m.model}, Estimators: Estimators{Default: est}, Optimizer: nn.NewAdam(0.05),
				Params: st, Particles: 16, Chunks: 2, Workers: workers, Seed: 3}
			for i := 0; i < 150; i++ {
				_, err := s.Step()
				require.NoError(t, err)
			}
			return st, rxExpectedCost(t, m, st)
		}
		st1, cost1 := run(1)
		st2, cost2 := run(2)
		for _, p := range st1.Params() {
			require.Equal(t, p.Value.RawMatrix().Data, st2.Get(p.Name).Value.RawMatrix().Data, "%T: parameter %s", est, p.Name)
		}
		require.Equal(t, cost1, cost2)
		start := rxExpectedCost(t, m, m.store(t))
		t.Logf("%T: expected cost %.4f -> %.4f", est, start, cost1)
		require.Less(t, cost1, start-0.1, "%T", est)
	}
}

// rxExpectedCost returns the exact expected cost of m under the
// parameters of st, by enumeration.
func rxExpectedCost(t *testing.T, m rxModel, st *nn.Store) float64 {
	mm := m
	mm.params = map[string][]float64{}
	for name := range m.params {
		mm.params[name] = append([]float64(nil), st.Get(name).Value.RawMatrix().Data...)
	}
	return mm.expectedCost(t)
}

// TestRelaxEstimatorsUnbiasedOnSBN holds MuProp, REBAR and RELAX to the
// exact gradient on the two-layer sigmoid belief network (4 visible units,
// 2+2 latents), written as a program and as a vi.ELBO whose relaxed
// re-runs score substituted values by the log-density formula. It uses the
// enumeration harness of the other unbiasedness tests.
func TestRelaxEstimatorsUnbiasedOnSBN(t *testing.T) {
	objs := []struct {
		name string
		obj  vi.Objective
	}{
		{"sbn-program", vi.Program{Model: sbnModel}},
		{"sbn-elbo", sbnELBO},
	}
	ests := []struct {
		name string
		est  Estimator
	}{
		{"MuProp", MuProp{}},
		{"REBAR", REBAR{}},
		{"RELAX", RELAX{Hidden: 4}},
		{"RELAX concrete", RELAX{Concrete: true}},
	}
	for _, o := range objs {
		for _, e := range ests {
			t.Run(o.name+"/"+e.name, func(t *testing.T) {
				store := initObjectiveStore(t, o.obj)
				exact := exactObjectiveGradient(t, o.obj, store, sbnSupport)
				s := &SVI{Objective: o.obj, Estimators: Estimators{Default: e.est},
					Optimizer: nn.NewAdam(0.01), Params: store, Particles: 20, Seed: 4}
				mean, se := estimateGradient(t, s, 1000)
				requireAgree(t, exact, mean, se)
			})
		}
	}
}
