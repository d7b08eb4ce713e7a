package infer

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/backpropq/backpropq/ad"
	"github.com/backpropq/backpropq/nn"
	"github.com/backpropq/backpropq/ppl"
	"github.com/backpropq/backpropq/ppl/dist"
	"github.com/backpropq/backpropq/vi"
)

// pickModel is a small categorical model: a one-hot choice among five
// rewards, cost (reward - 0.3)².
func pickModel(ctx *ppl.Ctx) {
	tp := ctx.Tape()
	logits := ppl.Param(ctx, "theta", 1, 5, nn.Zeros{})
	v := ppl.Sample(ctx, "v", dist.OneHotCategorical{Logits: ppl.Expand(ctx, logits)})
	reward := ad.RowSum(ad.Mul(v, tp.FromData(1, 5, []float64{0.1, 0.9, -0.4, 0.5, 0.2})))
	ppl.Cost(ctx, "f", ad.Square(ad.Sub(reward, tp.Scalar(0.3))))
}

// buildOne builds one surrogate of model for est, one row, from a source
// seeded by seed.
func buildOne(t *testing.T, model ppl.Model, est Estimator, st *nn.Store, seed uint64) (*Surrogate, *ad.Tape) {
	tp := ad.NewTape()
	env := ppl.Config{Tape: tp, Rand: rand.New(rand.NewPCG(seed, 7)), Params: st, Batch: 1}
	sur, err := BuildSurrogate(vi.Program{Model: model}, Estimators{Default: est}, env)
	require.NoError(t, err)
	return sur, tp
}

// thetaGrad returns the gradient of θ from one surrogate built from seed.
func thetaGrad(t *testing.T, model ppl.Model, est Estimator, st *nn.Store, seed uint64) []float64 {
	st.ZeroGrad()
	sur, tp := buildOne(t, model, est, st, seed)
	tp.Backward(sur.Loss)
	return append([]float64(nil), st.Get("theta").Grad.RawMatrix().Data...)
}

// stepMoments returns the moments of one step's variance objective (with
// weight 1), read from the commit of a surrogate built from seed; the
// running mean and moments are left as they were.
func stepMoments(t *testing.T, model ppl.Model, est Estimator, st *nn.Store, seed uint64, site string) []float64 {
	sur, _ := buildOne(t, model, est, st, seed)
	moments := st.Get("infer/relax/" + site + "/moments").Value.RawMatrix().Data
	mean := st.Get("infer/relax/" + site + "/mean").Value.RawMatrix().Data
	savedMoments, savedMean := append([]float64(nil), moments...), append([]float64(nil), mean...)
	clear(moments)
	sur.Commit()
	out := make([]float64, len(moments))
	for i, v := range moments {
		out[i] = v / (1 - momentDecay)
	}
	copy(moments, savedMoments)
	copy(mean, savedMean)
	return out
}

// setGates sets moments so that solveGates returns gates + delta: G the
// identity, r the gates scaled by the ridge that solveGates adds, q tiny
// (every gate significant), full weight.
func setGates(moments []float64, gates, delta []float64) {
	k := len(gates)
	clear(moments)
	for i := 0; i < k; i++ {
		moments[i*k+i] = 1
		moments[k*k+i] = (gates[i] + delta[i]) * (1 + float64(k)*1e-6)
		moments[k*k+k+i] = 1e-300
	}
	moments[len(moments)-1] = 1
}

// The gates RELAX uses minimize its estimate of the variance objective:
// given one step's moments, ‖ĝ‖² of that step (recomputed with the same
// random numbers and the gates moved either way) is least at the gates
// solveGates returns, where its central difference (exact: ‖ĝ‖² is
// quadratic in each gate) is the ridge's.
func TestRelaxGatesMinimizeTheVariance(t *testing.T) {
	for _, model := range []struct {
		name  string
		model ppl.Model
		site  string
	}{{"toy", toyModel, "b"}, {"pick", pickModel, "v"}} {
		for _, est := range []RELAX{{}, {Concrete: true}} {
			k := 1
			if est.Concrete {
				k = 2
			}
			st := nn.NewStore()
			thetaGrad(t, model.model, est, st, 1) // creates the parameters
			moments := st.Get("infer/relax/" + model.site + "/moments").Value.RawMatrix().Data
			for seed := uint64(2); seed < 5; seed++ {
				step := stepMoments(t, model.model, est, st, seed, model.site)
				gates := solveGates(step, k)
				trace := 0.0
				for i := 0; i < k; i++ {
					trace += step[i*k+i]
				}
				sq := func(delta []float64) float64 {
					setGates(moments, gates, delta)
					sum := 0.0
					for _, g := range thetaGrad(t, model.model, est, st, seed) {
						sum += g * g
					}
					return sum
				}
				at := sq(make([]float64, k))
				for i := 0; i < k; i++ {
					const h = 1e-3
					up, down := make([]float64, k), make([]float64, k)
					up[i], down[i] = h, -h
					plus, minus := sq(up), sq(down)
					what := fmt.Sprintf("%s %+v gate %d seed %d", model.name, est, i, seed)
					require.GreaterOrEqual(t, plus, at*(1-1e-9), what)
					require.GreaterOrEqual(t, minus, at*(1-1e-9), what)
					// The slope of ‖ĝ‖² = ‖A - Σ gate_k B_k‖² is 2(G·gate - r),
					// which the ridge ε makes -2ε·gate at the solution.
					want := -2 * 1e-6 * trace * gates[i]
					require.InDelta(t, want, (plus-minus)/(2*h), 1e-3*math.Abs(want)+1e-12*(1+at)/h, what)
				}
			}
		}
	}
}

// trainingGradSD trains θ of model from 0 for steps SVI steps of one
// sample each (Adam, lr 0.01) from each of seeds runs, and returns the
// standard deviation of θ's gradient over the steps from skip on, pooled
// over θ's elements and the runs.
func trainingGradSD(t *testing.T, model ppl.Model, est func() Estimator, steps, skip, seeds int) float64 {
	var n, sum, sum2 float64
	for seed := 1; seed <= seeds; seed++ {
		st := nn.NewStore()
		s := &SVI{Objective: vi.Program{Model: model}, Estimators: Estimators{Default: est()},
			Optimizer: nn.NewAdam(0.01), Params: st, Particles: 1, Seed: uint64(seed)}
		for i := 0; i < steps; i++ {
			_, err := s.Step()
			require.NoError(t, err)
			if i < skip {
				continue
			}
			for _, g := range st.Get("theta").Grad.RawMatrix().Data {
				n++
				sum += g
				sum2 += g * g
			}
		}
	}
	mean := sum / n
	return math.Sqrt(max(sum2/n-mean*mean, 0) * n / (n - 1))
}

// TestRelaxVarianceInTraining prints the standard deviation of θ's
// gradient over 2000 training steps (after the first 100, pooled over 8
// runs), on the toy problem and on a small categorical model, for
// REINFORCE with a moving-average baseline and for RELAX with and without
// the REBAR control variate, and checks that RELAX stays at or below the
// baseline's:
//
//	go test ./infer/ -run TestRelaxVarianceInTraining -v
func TestRelaxVarianceInTraining(t *testing.T) {
	if testing.Short() {
		t.Skip("48 runs of 2000 steps; the full test run checks it")
	}
	const steps, skip, seeds = 2000, 100, 8
	var b strings.Builder
	for _, model := range []struct {
		name  string
		model ppl.Model
	}{{"toy", toyModel}, {"pick", pickModel}} {
		ests := []struct {
			name string
			est  func() Estimator
		}{
			{"REINFORCE + moving average", func() Estimator { return ScoreFunction{Baseline: NewMovingAverage(0.9)} }},
			{"RELAX", func() Estimator { return RELAX{} }},
			{"RELAX + REBAR cv", func() Estimator { return RELAX{Concrete: true} }},
		}
		sd := make([]float64, len(ests))
		for i, e := range ests {
			sd[i] = trainingGradSD(t, model.model, e.est, steps, skip, seeds)
			fmt.Fprintf(&b, "%s\t%s\tsd %.3g (%.2f of the baseline's)\n", model.name, e.name, sd[i], sd[i]/sd[0])
		}
		// The runs share their seeds; an sd over 8·1900 draws has a
		// relative standard error near 1/sqrt(2·15200) = 0.6%, so 2% is
		// three of them.
		for i := 1; i < len(ests); i++ {
			require.LessOrEqual(t, sd[i], 1.02*sd[0], "%s: %s against %s", model.name, ests[i].name, ests[0].name)
		}
	}
	t.Logf("standard deviation of θ's gradient over steps %d to %d of %d runs (one sample each, Adam lr 0.01):\n%s", skip, steps, seeds, b.String())
}
