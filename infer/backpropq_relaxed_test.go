package infer

import (
	"bytes"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
	"gonum.org/v1/gonum/mat"

	"github.com/backpropq/backpropq/ad"
	"github.com/backpropq/backpropq/nn"
	"github.com/backpropq/backpropq/ppl"
	"github.com/backpropq/backpropq/ppl/dist"
	"github.com/backpropq/backpropq/q"
	"github.com/backpropq/backpropq/vi"
)

// mlpCritics returns a configuration of small MLP critics, differentiable
// as the relaxed control variate needs them.
func mlpCritics(seed uint64) q.Config {
	return q.Config{Kind: q.MLPKind, Hidden: []int{8}, LR: 0.01, Seed: seed}
}

// TestBackpropQRelaxedControlVariateUnbiased checks the relaxed form of
// mode QControlVariate (eq. 26 with the learned Q as c) against the exact
// gradient on enumerable models, with MLP critics trained for a few dozen
// steps only (imperfect), on Bernoulli, Categorical and OneHotCategorical
// sites.
func TestBackpropQRelaxedControlVariateUnbiased(t *testing.T) {
	checkControlVariateUnbiased(t, 50, func() *QControlVariate {
		est := NewQControlVariate(mlpCritics(4), q.TD{})
		est.Relaxed = true
		return est
	})
}

// wideModel draws 16 independent Bernoulli units, too many to enumerate,
// with the cost (Σ z - 3)².
func wideModel(ctx *ppl.Ctx) {
	tp := ctx.Tape()
	logits := ppl.Param(ctx, "logits", 1, wideUnits, nn.InitFunc(wideInit))
	z := ppl.Sample(ctx, "z", dist.BernoulliLogits(ppl.Expand(ctx, logits)))
	ppl.Cost(ctx, "f", ad.Square(ad.Sub(ad.RowSum(z), tp.Scalar(3))))
}

const wideUnits = 16

// wideLogit is the initial logit of unit j of wideModel.
func wideLogit(j int) float64 { return -1.5 + 0.2*float64(j) }

func wideInit(m *mat.Dense, _ *rand.Rand) {
	for j := 0; j < wideUnits; j++ {
		m.Set(0, j, wideLogit(j))
	}
}

// TestBackpropQRelaxedWideSite checks that mode QControlVariate serves a
// Bernoulli site of 16 units, which it cannot enumerate, with the relaxed
// form (without setting Relaxed), against the closed-form gradient of
// E[(S - 3)²] = Σ p(1-p) + (Σ p - 3)², whose derivative in logit j is
// p_j(1-p_j)(1 - 2p_j + 2(Σ p - 3)). The critic is an MLP trained for 150
// steps.
func TestBackpropQRelaxedWideSite(t *testing.T) {
	exact := wideExactGradient()
	obj := vi.Program{Model: wideModel}
	store := initObjectiveStore(t, obj)
	cfg := mlpCritics(5)
	cfg.LR = 0.05
	est := NewQControlVariate(cfg, q.TD{})
	s := &SVI{
		Objective: obj, Estimators: Estimators{Default: est},
		Optimizer: nn.NewAdam(0.01), Params: store, Particles: 20, Seed: 3,
	}
	trainCritics(t, s, 150)
	a, _ := est.Coefficients("z")
	require.NotZero(t, a, "the control variate is in use")
	st, ok := est.Stats("z")
	require.True(t, ok)
	t.Logf("a = %.3f; last step: signal variance %.4g, plain return variance %.4g", a, st.SignalVar, st.ReturnVar)
	mean, se := estimateGradient(t, s, repetitions())
	requireAgree(t, exact, mean, se)

	// The same site with tabular critics has no relaxed form and cannot be
	// enumerated: the error names the site.
	est2 := NewQControlVariate(q.Config{Kind: q.TabularKind}, q.TD{})
	s2 := &SVI{
		Objective: obj, Estimators: Estimators{Default: est2},
		Optimizer: nn.NewAdam(0.01), Params: initObjectiveStore(t, obj), Particles: 4, Seed: 3,
	}
	_, err := s2.Step()
	require.ErrorContains(t, err, `site "z"`)
	require.ErrorContains(t, err, "not differentiable")
}

// wideExactGradient returns the gradient of wideModel's expected cost in
// its logits.
func wideExactGradient() []float64 {
	p := make([]float64, wideUnits)
	sum := 0.0
	for j := range p {
		p[j] = 1 / (1 + math.Exp(-wideLogit(j)))
		sum += p[j]
	}
	exact := make([]float64, wideUnits)
	for j := range exact {
		exact[j] = p[j] * (1 - p[j]) * (1 - 2*p[j] + 2*(sum-3))
	}
	return exact
}

// TestBackpropQRelaxedBadInput checks the relaxed control variate's errors:
// a site whose distribution has no relaxation, tabular critics, and a bad
// temperature; each names the site, and the failed step changes nothing.
func TestBackpropQRelaxedBadInput(t *testing.T) {
	normalModel := func(ctx *ppl.Ctx) {
		tp := ctx.Tape()
		mu := ppl.Param(ctx, "mu", 1, 1, nn.Zeros{})
		z := ppl.Sample(ctx, "x", dist.Normal{Loc: ppl.Expand(ctx, mu), Scale: tp.Scalar(1)})
		ppl.Cost(ctx, "f", ad.Square(z))
	}
	cases := []struct {
		name  string
		model ppl.Model
		cfg   q.Config
		temp  float64
		want  []string
	}{
		{"not-relaxable", normalModel, mlpCritics(1), 0, []string{`site "x"`, "no relaxation"}},
		{"tabular", chainModel, q.Config{Kind: q.TabularKind}, 0, []string{`site "z1"`, "not differentiable"}},
		{"temperature", chainModel, mlpCritics(1), -1, []string{`site "z1"`, "temperature"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			est := NewQControlVariate(c.cfg, q.TD{})
			est.Relaxed = true
			est.Temperature = c.temp
			requireFailedStep(t, vi.Program{Model: c.model}, est, c.want)
		})
	}
}

// flatValues returns the values of every parameter of store, flattened.
func flatValues(store *nn.Store) []float64 {
	var out []float64
	for _, p := range store.Params() {
		out = append(out, p.Value.RawMatrix().Data...)
	}
	return out
}

// TestBackpropQRelaxedCriticsGetNoGradient checks that the relaxed
// control variate's term passes no gradient to the critics' weights: with
// their gradients zeroed, a step's backward pass leaves them zero (the
// critics move only by their own TD updates).
func TestBackpropQRelaxedCriticsGetNoGradient(t *testing.T) {
	obj := vi.Program{Model: chainModel}
	store := initObjectiveStore(t, obj)
	est := NewQControlVariate(mlpCritics(2), q.TD{})
	est.Relaxed = true
	s := &SVI{
		Objective: obj, Estimators: Estimators{Default: est},
		Optimizer: nn.NewAdam(0.01), Params: store, Particles: 8, Seed: 3,
	}
	trainCritics(t, s, 5)
	a, _ := est.Coefficients("z1")
	require.NotZero(t, a)
	var params []*nn.Param
	for _, k := range est.Critics.Set.Keys() {
		n, ok := est.Critics.Set.Critic(k).(*q.NetCritic)
		require.True(t, ok)
		params = append(params, n.Params()...)
	}
	require.NotEmpty(t, params)
	for _, p := range params {
		p.ZeroGrad()
	}
	_, _, err := s.compute()
	require.NoError(t, err)
	require.NotZero(t, s.Params.Get("theta").Grad.At(0, 0), "the guide receives a gradient")
	for _, p := range params {
		for _, v := range p.Grad.RawMatrix().Data {
			require.Zero(t, v, "critic parameter %s received a gradient", p.Name)
		}
	}
}

// TestBackpropQResumeIsExact checks that a BackpropQ run resumed from an
// SVI checkpoint continues bit for bit: the checkpoint holds the critics'
// weights, their Adam state and slow-tracking copies, the control
// variate's moments, the normalization statistics and the baseline's
// state.
func TestBackpropQResumeIsExact(t *testing.T) {
	cases := []struct {
		name string
		make func() qEstimator
	}{
		{"local", func() qEstimator {
			b := NewQLocal(q.Config{Kind: q.MLPKind, Hidden: []int{8}, LR: 0.01, SlowTarget: 0.1, Seed: 1}, q.TD{Lambda: 0.5})
			b.Baseline = NewMovingAverage(0.9)
			return b
		}},
		{"control-variate-relaxed", func() qEstimator {
			b := NewQControlVariate(mlpCritics(2), q.TD{})
			b.Relaxed = true
			return b
		}},
		{"local-normalized", func() qEstimator {
			b := NewQLocal(q.Config{Kind: q.MLPKind, Hidden: []int{8}, LR: 0.01, Normalize: true, Seed: 1}, q.TD{})
			b.Normalize = true
			return b
		}},
		{"advantage", func() qEstimator {
			return NewQAdvantage(q.Config{Kind: q.LinearKind, LR: 0.01, Seed: 1}, q.TD{Lambda: 0.8})
		}},
		{"local-replay", func() qEstimator {
			b := NewQLocal(q.Config{Kind: q.TabularKind, LR: 0.1}, q.TD{})
			b.Replay = &Replay{Capacity: 12, Options: q.ReplayOptions{Rows: 8}}
			return b
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			obj := vi.Program{Model: chainModel}
			newSVI := func() *SVI {
				return &SVI{
					Objective: obj, Estimators: Estimators{Default: c.make()},
					Optimizer: nn.NewAdam(0.05), Params: initObjectiveStore(t, obj), Particles: 8, Seed: 5,
				}
			}
			steps := func(s *SVI, n int) []float64 {
				var losses []float64
				for range n {
					m, err := s.Step()
					require.NoError(t, err)
					losses = append(losses, m.Loss, m.GradNorm)
				}
				return losses
			}
			whole := newSVI()
			want := steps(whole, 12)
			first := newSVI()
			got := steps(first, 5)
			var buf bytes.Buffer
			require.NoError(t, first.EncodeCheckpoint(&buf))
			second := newSVI()
			require.NoError(t, second.DecodeCheckpoint(&buf))
			got = append(got, steps(second, 7)...)
			require.Equal(t, want, got, "losses and gradient norms of a whole and a resumed run")
			require.Equal(t, flatValues(whole.Params), flatValues(second.Params))
			a, err := whole.Estimators.Default.(qEstimator).MarshalState()
			require.NoError(t, err)
			b, err := second.Estimators.Default.(qEstimator).MarshalState()
			require.NoError(t, err)
			require.True(t, bytes.Equal(a, b), "estimator state")
		})
	}
}

// TestSVIMetricsCriticDiagnostics checks the per-site diagnostics of
// BackpropQ sites in SVI.Metrics: the critics' TD error, and with
// ReturnVariance the variance of the plain REINFORCE signal, agreeing with
// BackpropQ.Stats on a one-chunk step and pooled over the chunks of a
// chunked one; sites of other estimators have neither.
func TestSVIMetricsCriticDiagnostics(t *testing.T) {
	obj := vi.Program{Model: chainModel}
	est := NewQLocal(q.Config{Kind: q.TabularKind, LR: 0.1}, q.TD{})
	s := &SVI{
		Objective: obj, Optimizer: nn.NewAdam(0.01), Params: initObjectiveStore(t, obj), Particles: 16, Seed: 3,
		Estimators: Estimators{Default: est, Sites: map[string]Estimator{"z3": ScoreFunction{}}},
	}
	var m Metrics
	var err error
	for range 5 {
		m, err = s.Step()
		require.NoError(t, err)
	}
	require.Len(t, m.Sites, 3)
	for _, sm := range m.Sites {
		require.False(t, sm.HasReturnVar, "not asked")
		if sm.Addr == "z3" {
			require.False(t, sm.HasTDError, "a ScoreFunction site has no critics")
			continue
		}
		require.True(t, sm.HasTDError, sm.Addr)
		td, ok := est.TDError(sm.Addr)
		require.True(t, ok)
		require.Equal(t, td, sm.TDError)
		require.Greater(t, sm.TDError, 0.0)
	}
	s.ReturnVariance = true
	m, err = s.Step()
	require.NoError(t, err)
	for _, sm := range m.Sites {
		if sm.Addr == "z3" {
			require.False(t, sm.HasReturnVar)
			continue
		}
		st, ok := est.Stats(sm.Addr)
		require.True(t, ok)
		require.True(t, sm.HasReturnVar)
		require.InDelta(t, st.ReturnVar, sm.ReturnVar, 1e-9*(1+st.ReturnVar))
		require.InDelta(t, st.SignalVar, sm.SignalVar, 1e-9*(1+st.SignalVar))
		require.Greater(t, sm.ReturnVar, 0.0)
	}

	// Two chunks: the diagnostics pool the rows of both. The return of
	// z2 is the cost f (the only cost it reaches).
	s.Chunks = 2
	results, norm, err := s.compute()
	require.NoError(t, err)
	require.NoError(t, s.Optimizer.Step(s.allParams()))
	for _, r := range results {
		r.sur.Commit()
	}
	s.metrics(results, norm, &m)
	var f []float64
	for _, r := range results {
		f = append(f, r.sur.Trace.Site("f").ScaledCost().Data()...)
	}
	require.Len(t, f, 16)
	for _, sm := range m.Sites {
		if sm.Addr == "z2" {
			require.True(t, sm.HasReturnVar)
			require.InDelta(t, varianceOf(f), sm.ReturnVar, 1e-9*(1+sm.ReturnVar))
			require.True(t, sm.HasTDError)
		}
	}
}

// TestBackpropQRelaxedWorkers checks that the relaxed control variate with
// MLP critics gives the same run whatever the number of workers that
// process a step's chunks.
func TestBackpropQRelaxedWorkers(t *testing.T) {
	run := func(workers int) ([]byte, []float64) {
		obj := vi.Program{Model: chainModel}
		est := NewQControlVariate(mlpCritics(3), q.TD{})
		est.Relaxed = true
		s := &SVI{
			Objective: obj, Estimators: Estimators{Default: est},
			Optimizer: nn.NewAdam(0.05), Params: initObjectiveStore(t, obj), Particles: 16, Chunks: 4, Workers: workers, Seed: 5,
		}
		for range 20 {
			_, err := s.Step()
			require.NoError(t, err)
		}
		a, _ := est.Coefficients("z1")
		require.NotZero(t, a)
		state, err := est.MarshalState()
		require.NoError(t, err)
		return state, flatValues(s.Params)
	}
	s1, p1 := run(1)
	s2, p2 := run(3)
	require.Equal(t, p1, p2, "parameters")
	require.True(t, bytes.Equal(s1, s2), "critics and moments")
}
