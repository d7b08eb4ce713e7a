package infer

import (
	"math"
	"math/rand/v2"
	"path/filepath"
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

// ppoModel draws b ~ Bernoulli(σ(theta)) and costs -1 for b = 1, +1 for
// b = 0.
func ppoModel(ctx *ppl.Ctx) {
	theta := ppl.Param(ctx, "theta", 1, 1, nn.Zeros{})
	b := ppl.Sample(ctx, "b", dist.BernoulliLogits(ppl.Expand(ctx, theta)))
	ppl.Cost(ctx, "c", ad.Sub(ctx.Tape().Scalar(1), ad.Scale(b, 2)))
}

// ppoRowGrads returns the gradient of the surrogate loss with respect to
// the site's logits, row by row, for the given values of b, theta and
// (when oldTheta is not NaN) the old policy.
func ppoRowGrads(t *testing.T, est func(*PolicySnapshot) Estimator, b []float64, theta, oldTheta float64) []float64 {
	values := func(tp *ad.Tape) map[string]*ad.Tensor {
		return map[string]*ad.Tensor{"b": tp.FromData(len(b), 1, b)}
	}
	var snap *PolicySnapshot
	if !math.IsNaN(oldTheta) {
		st := nn.NewStore()
		_, err := st.Param("theta", 1, 1, nn.Constant(oldTheta), nil)
		require.NoError(t, err)
		tp := ad.NewTape()
		tr, err := trace.Run(ppoModel, ppl.Config{Tape: tp, Params: st, Batch: len(b)}, trace.ReplayValues(values(tp)))
		require.NoError(t, err)
		snap = &PolicySnapshot{}
		snap.Record(tr)
	}
	st := nn.NewStore()
	_, err := st.Param("theta", 1, 1, nn.Constant(theta), nil)
	require.NoError(t, err)
	tp := ad.NewTape()
	obj := replayObjective{model: ppoModel, values: values}
	sur, err := BuildSurrogate(obj, Estimators{Default: est(snap)}, ppl.Config{Tape: tp, Rand: rand.New(rand.NewPCG(1, 2)), Params: st, Batch: len(b)})
	require.NoError(t, err)
	logits := sur.Trace.Site("b").Dist.(dist.Bernoulli).Logits
	return tp.Gradients(sur.Loss, logits)[0].RawMatrix().Data
}

// replayObjective runs a model with fixed values replayed: a batch reused
// across PPO epochs.
type replayObjective struct {
	model  ppl.Model
	values func(tp *ad.Tape) map[string]*ad.Tensor
}

func (o replayObjective) Run(env ppl.Config, handlers ...ppl.Handler) (*trace.Trace, error) {
	hs := append([]ppl.Handler{env}, handlers...)
	return trace.Run(o.model, append(hs, trace.ReplayValues(o.values(env.Tape)))...)
}

// TestPPOClip checks the clipped surrogate row by row: without a snapshot
// it is REINFORCE; away from the old policy, rows whose ratio left
// [1-ε, 1+ε] in the direction that lowers the cost get no gradient, the
// others r·Q·∇ log p.
func TestPPOClip(t *testing.T) {
	b := []float64{1, 0}
	sig := func(x float64) float64 { return 1 / (1 + math.Exp(-x)) }
	// d log p(b) / d logit = b - σ(logit); Q = 1 - 2b.
	score := func(theta float64, i int) float64 { return b[i] - sig(theta) }
	q := []float64{-1, 1}
	cases := []struct {
		name            string
		theta, oldTheta float64
		want            func(i int) float64
	}{
		{"no snapshot is REINFORCE", 0.3, math.NaN(), func(i int) float64 { return q[i] * score(0.3, i) }},
		{"same policy", 0.3, 0.3, func(i int) float64 { return q[i] * score(0.3, i) }},
		// theta 1, old 0: r(b=1) = 1.46 > 1.2 with Q < 0, r(b=0) = 0.54 < 0.8
		// with Q > 0: both clipped.
		{"both clipped", 1, 0, func(int) float64 { return 0 }},
		// theta -1, old 0: r(b=1) = 0.54 with Q < 0 and r(b=0) = 1.46 with
		// Q > 0: moving back lowers the cost, so both keep r·Q·score.
		{"both unclipped", -1, 0, func(i int) float64 {
			r := math.Exp(math.Log(math.Abs(1-b[i]-sig(-1))) - math.Log(0.5))
			return r * q[i] * score(-1, i)
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			g := ppoRowGrads(t, func(s *PolicySnapshot) Estimator { return PPO{Old: s} }, b, c.theta, c.oldTheta)
			for i := range b {
				require.InDelta(t, c.want(i), g[i], 1e-12, "row %d", i)
			}
		})
	}
	sf := ppoRowGrads(t, func(*PolicySnapshot) Estimator { return ScoreFunction{} }, b, 0.3, math.NaN())
	ppo := ppoRowGrads(t, func(*PolicySnapshot) Estimator { return PPO{} }, b, 0.3, math.NaN())
	require.Equal(t, sf, ppo)
}

// TestPPORejectsBadSettings checks the errors of PPO.
func TestPPORejectsBadSettings(t *testing.T) {
	st := nn.NewStore()
	env := ppl.Config{Tape: ad.NewTape(), Rand: rand.New(rand.NewPCG(1, 2)), Params: st, Batch: 3}
	_, err := BuildSurrogate(vi.Program{Model: ppoModel}, Estimators{Default: PPO{Clip: 1.5}}, env)
	require.ErrorContains(t, err, `site "b"`)
	require.ErrorContains(t, err, "clip")
	snap := &PolicySnapshot{}
	tp := ad.NewTape()
	tr, err := trace.Run(ppoModel, ppl.Config{Tape: tp, Params: st, Rand: rand.New(rand.NewPCG(3, 4)), Batch: 5})
	require.NoError(t, err)
	snap.Record(tr)
	_, err = BuildSurrogate(vi.Program{Model: ppoModel}, Estimators{Default: PPO{Old: snap}}, env)
	require.ErrorContains(t, err, "5 rows")
}

// trpoProblem is a tiny categorical policy: two contexts, three actions,
// logits = onehot(context)·W, and a cost table.
type trpoProblem struct {
	ctx    []int
	cost   [2][3]float64
	onehot *mat.Dense
}

func newTRPOProblem(n int, rng *rand.Rand) trpoProblem {
	p := trpoProblem{cost: [2][3]float64{{1, -1, 0.5}, {-0.5, 0.8, 0}}}
	p.onehot = mat.NewDense(n, 2, nil)
	for i := 0; i < n; i++ {
		c := rng.IntN(2)
		p.ctx = append(p.ctx, c)
		p.onehot.Set(i, c, 1)
	}
	return p
}

func (p trpoProblem) policy(tp *ad.Tape, ps []*ad.Tensor) (dist.Distribution, error) {
	return dist.Categorical{Logits: ad.MatMul(tp.Const(p.onehot), ps[0])}, nil
}

// expectedCost is the exact expected cost of the policy W, contexts
// uniform.
func (p trpoProblem) expectedCost(w *mat.Dense) float64 {
	total := 0.0
	for c := 0; c < 2; c++ {
		z := 0.0
		for a := 0; a < 3; a++ {
			z += math.Exp(w.At(c, a))
		}
		for a := 0; a < 3; a++ {
			total += 0.5 * math.Exp(w.At(c, a)) / z * p.cost[c][a]
		}
	}
	return total
}

// TestTRPOStep checks that a trust-region step on a tiny categorical
// policy respects the KL bound, lowers the surrogate and the exact
// expected cost, and that, for small bounds, the full step's KL is close
// to the bound (so the Fisher-vector products are right).
func TestTRPOStep(t *testing.T) {
	for _, maxKL := range []float64{0.001, 0.01, 0.05} {
		rng := rand.New(rand.NewPCG(1, 2))
		prob := newTRPOProblem(400, rng)
		w := nn.NewParam("W", mat.NewDense(2, 3, []float64{0.2, -0.1, 0, 0.3, 0.1, -0.2}))
		before := prob.expectedCost(w.Value)
		// Draw actions from the current policy; costs centered by their
		// mean.
		tp := ad.NewTape()
		d, err := prob.policy(tp, []*ad.Tensor{tp.Const(w.Value)})
		require.NoError(t, err)
		actions := d.Sample(rng).Value()
		costs := make([]float64, len(prob.ctx))
		mean := 0.0
		for i, c := range prob.ctx {
			costs[i] = prob.cost[c][int(actions.At(i, 0))]
			mean += costs[i] / float64(len(costs))
		}
		for i := range costs {
			costs[i] -= mean
		}
		res, err := TRPO{MaxKL: maxKL}.Step([]*nn.Param{w}, prob.policy, mat.DenseCopyOf(actions), costs)
		require.NoError(t, err)
		require.True(t, res.Accepted)
		require.LessOrEqual(t, res.KL, maxKL)
		require.Less(t, res.After, res.Before)
		after := prob.expectedCost(w.Value)
		require.Less(t, after, before, "max KL %v", maxKL)
		if maxKL <= 0.01 {
			require.InDelta(t, maxKL, res.FullKL, 0.1*maxKL, "the quadratic model of the KL is off")
		}
		t.Logf("max KL %.3f: full-step KL %.5f, KL %.5f, fraction %.3f, surrogate %.4f -> %.4f, expected cost %.4f -> %.4f", maxKL, res.FullKL, res.KL, res.Fraction, res.Before, res.After, before, after)
	}
}

// TestTRPOErrors checks that bad inputs change nothing.
func TestTRPOErrors(t *testing.T) {
	prob := newTRPOProblem(4, rand.New(rand.NewPCG(1, 2)))
	w := nn.NewParam("W", mat.NewDense(2, 3, nil))
	_, err := TRPO{}.Step([]*nn.Param{w}, prob.policy, mat.NewDense(4, 1, nil), []float64{1, 2})
	require.ErrorContains(t, err, "4 actions but 2 costs")
	_, err = TRPO{MaxKL: -1}.Step([]*nn.Param{w}, prob.policy, mat.NewDense(4, 1, nil), make([]float64, 4))
	require.ErrorContains(t, err, "invalid settings")
	require.Equal(t, 0.0, mat.Sum(w.Value))
}

// TestPPOCheckpointsItsBaseline checks that PPO's state is its baseline's:
// a resumed run continues bit-identically.
func TestPPOCheckpointsItsBaseline(t *testing.T) {
	var _ Stateful = PPO{}
	newSVI := func() *SVI {
		return &SVI{Objective: vi.Program{Model: ppoModel}, Estimators: Estimators{Default: PPO{Baseline: NewMovingAverage(0.8)}},
			Optimizer: nn.NewAdam(0.05), Params: nn.NewStore(), Particles: 4, Seed: 5}
	}
	a := newSVI()
	for i := 0; i < 3; i++ {
		_, err := a.Step()
		require.NoError(t, err)
	}
	path := filepath.Join(t.TempDir(), "ppo.ckpt")
	require.NoError(t, a.SaveCheckpoint(path))
	state, err := a.Estimators.Default.(PPO).MarshalState()
	require.NoError(t, err)
	require.NotEmpty(t, state)
	b := newSVI()
	_, err = b.Step() // creates the parameters
	require.NoError(t, err)
	require.NoError(t, b.LoadCheckpoint(path))
	for i := 0; i < 3; i++ {
		ma, err := a.Step()
		require.NoError(t, err)
		mb, err := b.Step()
		require.NoError(t, err)
		require.Equal(t, ma.Loss, mb.Loss)
	}
	require.Equal(t, a.Params.Get("theta").Value.RawMatrix().Data, b.Params.Get("theta").Value.RawMatrix().Data)
}
