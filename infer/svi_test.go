package infer

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gonum.org/v1/gonum/mat"

	"github.com/backpropq/backpropq/ad"
	"github.com/backpropq/backpropq/nn"
	"github.com/backpropq/backpropq/ppl"
	"github.com/backpropq/backpropq/ppl/dist"
	"github.com/backpropq/backpropq/trace"
	"github.com/backpropq/backpropq/vi"
)

// mixedEstimators uses a stateful estimator of every kind on the SBN.
func mixedEstimators() Estimators {
	return Estimators{
		Default: ScoreFunction{Baseline: NewNVIL(4)},
		Sites: map[string]Estimator{
			"h2": ScoreFunction{Baseline: NewMovingAverage(0.8)},
		},
	}
}

// newSBNSVI returns an SVI on the SBN program with fresh state.
func newSBNSVI(workers int) *SVI {
	return &SVI{
		Objective:  vi.Program{Model: sbnModel},
		Estimators: mixedEstimators(),
		Optimizer:  nn.NewAdam(0.05),
		Params:     nn.NewStore(),
		Particles:  12,
		Chunks:     3,
		Workers:    workers,
		Seed:       42,
	}
}

// checkpointBytes returns the encoded checkpoint of s.
func checkpointBytes(t *testing.T, s *SVI) []byte {
	t.Helper()
	var buf bytes.Buffer
	require.NoError(t, s.EncodeCheckpoint(&buf))
	return buf.Bytes()
}

func TestWorkersBitIdentical(t *testing.T) {
	var want []byte
	var wantMetrics []Metrics
	for _, workers := range []int{1, 2, 3} {
		s := newSBNSVI(workers)
		var ms []Metrics
		for i := 0; i < 5; i++ {
			m, err := s.Step()
			require.NoError(t, err)
			ms = append(ms, m)
		}
		got := checkpointBytes(t, s)
		if want == nil {
			want, wantMetrics = got, ms
			continue
		}
		require.Equal(t, want, got, "checkpoint after 5 steps with %d workers", workers)
		require.Equal(t, fmt.Sprint(wantMetrics), fmt.Sprint(ms), "metrics with %d workers", workers)
	}
}

func TestChunksChangeTheDrawsButNotTheShape(t *testing.T) {
	// Two chunks of 6 rows and one of 12 draw different numbers (the
	// chunk count is part of the configuration) but train the same
	// parameters.
	a, b := newSBNSVI(1), newSBNSVI(1)
	b.Chunks = 1
	_, err := a.Step()
	require.NoError(t, err)
	_, err = b.Step()
	require.NoError(t, err)
	require.Equal(t, a.Params.Len(), b.Params.Len())
	require.NotEqual(t, checkpointBytes(t, a), checkpointBytes(t, b))
}

func TestCheckpointResumeBitIdentical(t *testing.T) {
	straight := newSBNSVI(2)
	var want []Metrics
	for i := 0; i < 6; i++ {
		m, err := straight.Step()
		require.NoError(t, err)
		if i >= 3 {
			want = append(want, m)
		}
	}
	first := newSBNSVI(2)
	for i := 0; i < 3; i++ {
		_, err := first.Step()
		require.NoError(t, err)
	}
	path := filepath.Join(t.TempDir(), "svi.ckpt")
	require.NoError(t, first.SaveCheckpoint(path))

	resumed := newSBNSVI(1) // a different worker count, too
	require.NoError(t, resumed.LoadCheckpoint(path))
	require.EqualValues(t, 3, resumed.StepCount())
	var got []Metrics
	for i := 0; i < 3; i++ {
		m, err := resumed.Step()
		require.NoError(t, err)
		got = append(got, m)
	}
	require.Equal(t, fmt.Sprint(want), fmt.Sprint(got))
	require.Equal(t, checkpointBytes(t, straight), checkpointBytes(t, resumed))
}

func TestLoadCheckpointBadFileChangesNothing(t *testing.T) {
	s := newSBNSVI(1)
	_, err := s.Step()
	require.NoError(t, err)
	good := checkpointBytes(t, s)
	_, err = s.Step()
	require.NoError(t, err)
	before := checkpointBytes(t, s)

	cases := map[string][]byte{
		"truncated": good[:len(good)/2],
		"flipped":   append(append([]byte(nil), good[:len(good)-3]...), good[len(good)-3]^1, good[len(good)-2], good[len(good)-1]),
		"empty":     nil,
	}
	for name, data := range cases {
		t.Run(name, func(t *testing.T) {
			require.Error(t, s.DecodeCheckpoint(bytes.NewReader(data)))
			require.Equal(t, before, checkpointBytes(t, s))
		})
	}
	t.Run("other estimators", func(t *testing.T) {
		other := newSBNSVI(1)
		other.Estimators = Estimators{} // no stateful estimators
		_, err := other.Step()
		require.NoError(t, err)
		require.ErrorContains(t, s.DecodeCheckpoint(bytes.NewReader(checkpointBytes(t, other))), "estimator default is unset in the checkpoint")
		require.Equal(t, before, checkpointBytes(t, s))
	})
	require.NoError(t, s.DecodeCheckpoint(bytes.NewReader(good)))
	require.Equal(t, good, checkpointBytes(t, s))
}

// faultyModel wraps the SBN with switchable failures.
type faultyModel struct {
	nanCost, nanGrad, badLogits bool
}

func (f *faultyModel) model(ctx *ppl.Ctx) {
	sbnModel(ctx)
	tp := ctx.Tape()
	w := ppl.Param(ctx, "extra", 1, 1, nn.Constant(1))
	rows := ctx.Batch()
	switch {
	case f.nanCost:
		ppl.Cost(ctx, "poison", ad.Log(ad.Sub(ppl.Expand(ctx, w), tp.Full(rows, 1, 2))))
	case f.nanGrad:
		// sqrt(0·w) is 0, but its gradient is 0.5/0·0 = NaN.
		ppl.Cost(ctx, "poison", ad.Sqrt(ad.Scale(ppl.Expand(ctx, w), 0)))
	case f.badLogits:
		ppl.Sample(ctx, "bad", dist.BernoulliLogits(ad.Log(ad.Sub(ppl.Expand(ctx, w), tp.Full(rows, 1, 1)))))
	default:
		ppl.Cost(ctx, "poison", ad.Scale(ppl.Expand(ctx, w), 0.1))
	}
}

func TestFailedStepLeavesStateByteIdentical(t *testing.T) {
	cases := []struct {
		name    string
		set     func(f *faultyModel, s *SVI)
		wantErr string
	}{
		{"NaN cost", func(f *faultyModel, _ *SVI) { f.nanCost = true }, `site "poison": cost is NaN at row 0, column 0`},
		{"NaN gradient", func(f *faultyModel, _ *SVI) { f.nanGrad = true }, `gradient of parameter "extra" is NaN`},
		{"invalid distribution", func(f *faultyModel, _ *SVI) { f.badLogits = true }, `"bad"`},
		{"estimator error", func(_ *faultyModel, s *SVI) { s.Estimators.Sites["h1"] = Pathwise{} }, `site "h1": Pathwise`},
		{"optimizer error", func(_ *faultyModel, s *SVI) { s.Optimizer.(*nn.Adam).LR = math.NaN() }, "LR"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := &faultyModel{}
			s := newSBNSVI(2)
			s.Objective = vi.Program{Model: f.model}
			for i := 0; i < 2; i++ {
				_, err := s.Step()
				require.NoError(t, err)
			}
			before := checkpointBytes(t, s)
			reference := newSBNSVI(2)
			reference.Objective = s.Objective
			require.NoError(t, reference.DecodeCheckpoint(bytes.NewReader(before)))

			tc.set(f, s)
			_, err := s.Step()
			require.Error(t, err)
			require.ErrorContains(t, err, tc.wantErr)

			// Undo the fault (the checkpoint records the estimators'
			// configuration): the state is as before, and the next step
			// is the step the failed one would have been.
			*f = faultyModel{}
			s.Estimators = mixedEstimatorsFrom(s.Estimators)
			s.Optimizer.(*nn.Adam).LR = 0.05
			require.Equal(t, before, checkpointBytes(t, s))
			m1, err := s.Step()
			require.NoError(t, err)
			m2, err := reference.Step()
			require.NoError(t, err)
			require.Equal(t, fmt.Sprint(m2), fmt.Sprint(m1))
			require.Equal(t, checkpointBytes(t, reference), checkpointBytes(t, s))
		})
	}
}

// mixedEstimatorsFrom restores the h1 entry of a selection built by
// mixedEstimators, keeping its estimators (and their state).
func mixedEstimatorsFrom(e Estimators) Estimators {
	delete(e.Sites, "h1")
	return e
}

func TestBadInputsNameTheAddress(t *testing.T) {
	normal := func(ctx *ppl.Ctx) {
		z := ppl.Sample(ctx, "enc/z", dist.Normal{Loc: ctx.Tape().Zeros(ctx.Batch(), 2), Scale: ctx.Tape().Full(ctx.Batch(), 2, 1)})
		ppl.Cost(ctx, "c", ad.RowSum(z))
	}
	cases := []struct {
		name    string
		model   ppl.Model
		est     Estimators
		wantErr string
	}{
		{"Pathwise on a Bernoulli", chainModel, Estimators{Default: Pathwise{}}, `site "z1": Pathwise`},
		{"ARM on a Categorical", categoricalModel, Estimators{Sites: map[string]Estimator{"z": ARM{}}}, `site "z": ARM: needs a Bernoulli site`},
		{"DisARM on a Normal", normal, Estimators{Sites: map[string]Estimator{"enc/*": DisARM{}}}, `site "enc/z": DisARM`},
		{"Enumerate on a Normal", normal, Estimators{Default: Enumerate{}}, `site "enc/z": Enumerate: cannot enumerate`},
		{"Enumerate too large", sbnModel, Estimators{Default: Enumerate{MaxConfigs: 2}}, `site "h1": Enumerate`},
		{"malformed pattern", chainModel, Estimators{Sites: map[string]Estimator{"z[": ARM{}}}, `pattern "z["`},
		{"NVIL without hidden units", chainModel, Estimators{Default: ScoreFunction{Baseline: &NVIL{Decay: 0.5}}}, `site "z1": ScoreFunction: NVIL: Hidden`},
		{"moving average decay", chainModel, Estimators{Default: ScoreFunction{Baseline: NewMovingAverage(1)}}, `site "z1": ScoreFunction: MovingAverage: decay`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := &SVI{Objective: vi.Program{Model: tc.model}, Estimators: tc.est, Optimizer: nn.NewAdam(0.1), Params: nn.NewStore(), Particles: 4, Seed: 1}
			_, err := s.Step()
			require.Error(t, err)
			require.ErrorContains(t, err, tc.wantErr)
			assert.EqualValues(t, 0, s.StepCount())
		})
	}
}

func TestSVIConfigurationErrors(t *testing.T) {
	prog := vi.Program{Model: chainModel}
	cases := map[string]*SVI{
		"no objective": {Optimizer: nn.NewAdam(0.1), Params: nn.NewStore()},
		"no optimizer": {Objective: prog, Params: nn.NewStore()},
		"no store":     {Objective: prog, Optimizer: nn.NewAdam(0.1)},
		"chunks":       {Objective: prog, Optimizer: nn.NewAdam(0.1), Params: nn.NewStore(), Particles: 2, Chunks: 3},
	}
	for name, s := range cases {
		_, err := s.Step()
		require.Error(t, err, name)
	}
}

func TestEstimatorSelection(t *testing.T) {
	a, b, c, d := &countingEstimator{name: "a"}, &countingEstimator{name: "b"}, &countingEstimator{name: "c"}, &countingEstimator{name: "d"}
	e := Estimators{Default: d, Sites: map[string]Estimator{
		"enc/*":   a,
		"enc/z*":  b,
		"enc/z1":  c,
		"dec/*/y": a,
	}}
	require.NoError(t, e.Validate())
	bern := dist.BernoulliLogits(nil)
	cases := map[string]Estimator{
		"enc/z1":   c, // exact
		"enc/z2":   b, // most literal characters
		"enc/h":    a,
		"dec/3/y":  a,
		"dec/y":    d,
		"encz1":    d,
		"enc/a/z1": d, // * does not cross /
	}
	for addr, want := range cases {
		assert.Same(t, want, e.For(addr, bern), addr)
	}
	var zero Estimators
	assert.IsType(t, Pathwise{}, zero.For("x", dist.Normal{}))
	assert.IsType(t, ScoreFunction{}, zero.For("x", bern))
}

// countingEstimator is a score-function estimator that counts its calls
// and records what it saw.
type countingEstimator struct {
	name  string
	calls int
	seen  func(sc *SiteContext)
}

func (c *countingEstimator) Unbiased() bool { return true }

func (c *countingEstimator) Surrogate(sc *SiteContext) (Term, error) {
	c.calls++
	if c.seen != nil {
		c.seen(sc)
	}
	return ScoreFunction{}.Surrogate(sc)
}

func TestRerunReplaysNonDescendants(t *testing.T) {
	// Rerun for z2 keeps z1 (an ancestor), draws z3 (a descendant) anew
	// and returns the costs reachable from z2: f only.
	var checked bool
	probe := &countingEstimator{seen: func(sc *SiteContext) {
		if sc.Site.Addr != "z2" {
			return
		}
		tp := sc.Signal.Tape()
		rows := sc.Signal.Rows()
		v := tp.Full(rows, 1, 1)
		var rerunTrace []*ppl.Site
		record := ppl.HandlerFunc(func(s *ppl.Site, next func(*ppl.Site)) {
			next(s)
			rerunTrace = append(rerunTrace, s)
		})
		f, err := sc.Rerun(ppl.HandlerFunc(func(s *ppl.Site, next func(*ppl.Site)) {
			if s.Addr == "z2" {
				s.Value = v
				s.Substituted = true
			}
			next(s)
		}), record)
		require.NoError(t, err)
		byAddr := map[string]*ppl.Site{}
		for _, s := range rerunTrace {
			byAddr[s.Addr] = s
		}
		require.Equal(t, sc.Trace.Site("z1").Value.Data(), byAddr["z1"].Value.Data())
		require.True(t, byAddr["z1"].Replayed)
		require.False(t, byAddr["z3"].Replayed)
		require.Equal(t, v.Data(), byAddr["z2"].Value.Data())
		// f = (z1 + 2 z2 - 1.5 z3 - 0.7)² + exp(z1 z3 / 2) with z2 = 1.
		z1, z3 := byAddr["z1"].Value.Data(), byAddr["z3"].Value.Data()
		for r := 0; r < rows; r++ {
			s := z1[r] + 2 - 1.5*z3[r] - 0.7
			require.InDelta(t, s*s+math.Exp(z1[r]*z3[r]/2), f.At(r, 0), 1e-12)
		}
		checked = true
	}}
	s := &SVI{Objective: vi.Program{Model: chainModel}, Estimators: Estimators{Default: probe},
		Optimizer: nn.NewAdam(0.1), Params: nn.NewStore(), Particles: 16, Seed: 4}
	_, err := s.Step()
	require.NoError(t, err)
	require.True(t, checked)
	require.Equal(t, 3, probe.calls)
}

// constDrawer is a Drawer that sets its site to a constant.
type constDrawer struct{ v float64 }

func (constDrawer) Unbiased() bool { return false }

func (d constDrawer) Draw(s *ppl.Site, _ *rand.Rand) *ad.Tensor {
	b, c := s.Dist.Shape()
	return s.Dist.(dist.Bernoulli).Logits.Tape().Full(b, c, d.v)
}

func TestDrawerSuppliesTheValue(t *testing.T) {
	var z2 *ppl.Site
	probe := &countingEstimator{seen: func(sc *SiteContext) {
		z2 = sc.Trace.Site("z2")
	}}
	s := &SVI{Objective: vi.Program{Model: chainModel}, Estimators: Estimators{Default: probe, Sites: map[string]Estimator{"z2": constDrawer{v: 1}}},
		Optimizer: nn.NewAdam(0.1), Params: nn.NewStore(), Particles: 5, Seed: 4}
	_, err := s.Step()
	require.NoError(t, err)
	require.Equal(t, 2, probe.calls, "z1 and z3")
	require.True(t, z2.Substituted)
	require.Equal(t, []float64{1, 1, 1, 1, 1}, z2.Value.Data())
}

func (constDrawer) Surrogate(*SiteContext) (Term, error) { return Term{}, nil }

func TestMetrics(t *testing.T) {
	s := &SVI{Objective: boundProgram{vi.Program{Model: sbnModel}}, Estimators: Estimators{Default: ScoreFunction{}},
		Optimizer: nn.NewAdam(0.01), Params: nn.NewStore(), Particles: 8, Chunks: 2, Seed: 2}
	m, err := s.Step()
	require.NoError(t, err)
	require.Equal(t, 8, m.Rows)
	require.Equal(t, -m.Loss, m.ELBO)
	require.Greater(t, m.GradNorm, 0.0)
	require.Len(t, m.Sites, 2)
	require.Equal(t, "h1", m.Sites[0].Addr)
	require.Equal(t, "h2", m.Sites[1].Addr)
	for _, sm := range m.Sites {
		require.False(t, math.IsNaN(sm.SignalMean))
		require.GreaterOrEqual(t, sm.SignalVar, 0.0)
	}
	s.Objective = vi.Program{Model: sbnModel}
	m, err = s.Step()
	require.NoError(t, err)
	require.True(t, math.IsNaN(m.ELBO))
	s.Objective = sbnELBO
	m, err = s.Step()
	require.NoError(t, err)
	require.Equal(t, -m.Loss, m.ELBO)
	require.Less(t, m.ELBO, 0.0)
}

// boundProgram is a program that declares its loss a negative bound
// (vi.Bounded); SVI never asks it for per-row bounds.
type boundProgram struct{ vi.Program }

func (boundProgram) Bounds(*trace.Trace) (*ad.Tensor, error) {
	return nil, errors.New("not a bound per row")
}

func TestMaxGradNormClips(t *testing.T) {
	s := &SVI{Objective: vi.Program{Model: chainModel}, Estimators: Estimators{Default: ScoreFunction{}},
		Optimizer: &nn.SGD{LR: 1}, Params: nn.NewStore(), Particles: 16, Seed: 1, MaxGradNorm: 0.01}
	_, err := s.Step() // creates the parameters
	require.NoError(t, err)
	before := map[string][]float64{}
	for _, p := range s.Params.Params() {
		before[p.Name] = append([]float64(nil), p.Value.RawMatrix().Data...)
	}
	m, err := s.Step()
	require.NoError(t, err)
	require.Greater(t, m.GradNorm, 0.01, "the test needs a gradient larger than the clip")
	moved := 0.0
	for _, p := range s.Params.Params() {
		for i, v := range p.Value.RawMatrix().Data {
			d := v - before[p.Name][i]
			moved += d * d
		}
	}
	require.InDelta(t, 0.01, math.Sqrt(moved), 1e-9)
}

// rowModel is a model whose rows are data points: its Chunk gives each
// chunk its own rows of data.
func rowModel(data []float64) func(from, to int) vi.Objective {
	return func(from, to int) vi.Objective {
		return vi.Program{Model: func(ctx *ppl.Ctx) {
			tp := ctx.Tape()
			x := tp.FromData(to-from, 1, data[from:to])
			w := ppl.Param(ctx, "w", 1, 1, nn.Zeros{})
			z := ppl.Sample(ctx, "z", dist.BernoulliLogits(ad.Mul(x, w)))
			ppl.Cost(ctx, "f", ad.Square(ad.Sub(z, x)))
		}}
	}
}

func TestChunkObjectiveWorkersIdentical(t *testing.T) {
	data := []float64{0.1, 0.9, 0.3, 0.7, 0.5, 0.2, 0.8}
	var want []byte
	for _, workers := range []int{1, 2, 3} {
		s := &SVI{Chunk: rowModel(data), Estimators: Estimators{Default: ScoreFunction{Baseline: NewMovingAverage(0.5)}},
			Optimizer: nn.NewAdam(0.1), Params: nn.NewStore(), Particles: len(data), Chunks: 3, Workers: workers, Seed: 11}
		for i := 0; i < 4; i++ {
			m, err := s.Step()
			require.NoError(t, err)
			require.Equal(t, len(data), m.Rows)
		}
		got := checkpointBytes(t, s)
		if want == nil {
			want = got
		}
		require.Equal(t, want, got, "%d workers", workers)
	}
}

// learnedBaseline is a Stateful baseline with its own parameter, a
// constant b trained by the squared error of the signal, and a counter of
// committed steps as its state.
type learnedBaseline struct {
	b     *nn.Param
	steps int64
}

func (l *learnedBaseline) Unbiased() bool { return true }

func (l *learnedBaseline) Surrogate(sc *SiteContext) (Term, error) {
	tp := sc.Signal.Tape()
	b := tp.Var(l.b.Var)
	centered := ad.StopGradient(ad.Sub(sc.Signal, b))
	loss := ad.Add(ad.Mul(sc.Site.LogProb, centered), ad.Square(ad.Sub(sc.Signal, b)))
	return Term{Loss: loss, Signal: centered, Commit: func() { l.steps++ }}, nil
}

func (l *learnedBaseline) Params() []*nn.Param { return []*nn.Param{l.b} }

func (l *learnedBaseline) MarshalState() ([]byte, error) {
	return []byte{byte(l.steps)}, nil
}

func (l *learnedBaseline) UnmarshalState(data []byte) error {
	if len(data) != 1 {
		return errors.New("bad state")
	}
	l.steps = int64(data[0])
	return nil
}

func TestStatefulEstimatorParamsAndState(t *testing.T) {
	newRun := func() (*SVI, *learnedBaseline) {
		lb := &learnedBaseline{b: nn.NewParam("b", mat.NewDense(1, 1, nil))}
		return &SVI{Objective: vi.Program{Model: chainModel}, Estimators: Estimators{Sites: map[string]Estimator{"z*": lb}},
			Optimizer: nn.NewAdam(0.1), Params: nn.NewStore(), Particles: 8, Seed: 2}, lb
	}
	s, lb := newRun()
	for i := 0; i < 3; i++ {
		_, err := s.Step()
		require.NoError(t, err)
	}
	p := s.Params.Get("infer/site/z*/b")
	require.Same(t, lb.b, p)
	require.NotZero(t, p.Value.At(0, 0), "the optimizer trains the estimator's parameter")
	require.EqualValues(t, 9, lb.steps, "three sites, three steps")

	s2, lb2 := newRun()
	require.NoError(t, s2.DecodeCheckpoint(bytes.NewReader(checkpointBytes(t, s))))
	require.EqualValues(t, 9, lb2.steps)
	require.Equal(t, p.Value.At(0, 0), lb2.b.Value.At(0, 0))
}

func TestELBOMismatchNamesTheAddress(t *testing.T) {
	bad := sbnELBO
	bad.Guide = func(ctx *ppl.Ctx) {
		x, q, _ := sbnParams(ctx)
		ppl.Sample(ctx, "h1", dist.BernoulliLogits(ad.Add(ad.MatMul(x, q["W1"]), q["b1"])))
	}
	s := &SVI{Objective: bad, Optimizer: nn.NewAdam(0.1), Params: nn.NewStore(), Particles: 4, Seed: 1}
	_, err := s.Step()
	require.Error(t, err)
	require.ErrorContains(t, err, `"h2"`)
}
