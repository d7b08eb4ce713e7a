package infer

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/backpropq/backpropq/nn"
	"github.com/backpropq/backpropq/vi"
)

// countingPhase is a per-trace phase that counts its calls and commits
// and hands its sites the list of addresses it was called with.
type countingPhase struct {
	begun, committed int
	// fail fails the phase, failTerms its estimators' terms.
	fail, failTerms bool
}

func (p *countingPhase) BeginTrace(tc *TraceContext) (TraceState, error) {
	if p.fail {
		return TraceState{}, errors.New("phase failed")
	}
	p.begun++
	var addrs []string
	for _, sc := range tc.Sites {
		addrs = append(addrs, sc.Site.Addr)
	}
	commit := func() []SiteDiagnostics {
		p.committed++
		var ds []SiteDiagnostics
		for _, a := range addrs {
			ds = append(ds, SiteDiagnostics{Addr: a, TDError: float64(len(addrs)), HasTDError: true})
		}
		return ds
	}
	return TraceState{Shared: addrs, Commit: commit}, nil
}

// phaseEstimator is a score-function estimator with a per-trace phase; it
// checks that its site is among those the phase was called with.
type phaseEstimator struct {
	phase *countingPhase
}

func (e phaseEstimator) Unbiased() bool         { return true }
func (e phaseEstimator) TracePhase() TracePhase { return e.phase }

func (e phaseEstimator) Surrogate(sc *SiteContext) (Term, error) {
	addrs, ok := sc.Shared.([]string)
	if e.phase.failTerms {
		return Term{}, errors.New("term failed")
	}
	if !ok {
		return Term{}, errors.New("no shared state")
	}
	found := false
	for _, a := range addrs {
		found = found || a == sc.Site.Addr
	}
	if !found {
		return Term{}, errors.New("site not among the phase's")
	}
	return ScoreFunction{}.Surrogate(sc)
}

// TestTracePhase checks the per-trace protocol: one call per trace and
// phase, shared by every estimator with that phase, with the sites they
// serve; its commit runs once per successful step and its diagnostics
// reach the metrics; a failing phase fails the step, naming its first site.
func TestTracePhase(t *testing.T) {
	shared, own := &countingPhase{}, &countingPhase{}
	s := &SVI{
		Objective: vi.Program{Model: chainModel},
		Estimators: Estimators{Default: ScoreFunction{}, Sites: map[string]Estimator{
			"z1": phaseEstimator{shared}, "z2": phaseEstimator{shared}, "z3": phaseEstimator{own},
		}},
		Optimizer: nn.NewAdam(0.01), Params: nn.NewStore(), Particles: 6, Chunks: 2, Seed: 4,
	}
	m, err := s.Step()
	require.NoError(t, err)
	require.Equal(t, 2, shared.begun, "one call per chunk's trace")
	require.Equal(t, 2, own.begun)
	require.Equal(t, 2, shared.committed)
	tds := map[string]float64{}
	for _, sm := range m.Sites {
		require.True(t, sm.HasTDError, sm.Addr)
		tds[sm.Addr] = sm.TDError
	}
	require.Equal(t, map[string]float64{"z1": 2, "z2": 2, "z3": 1}, tds, "each phase saw its own sites")

	// A step that fails after the phases ran commits nothing.
	own.failTerms = true
	_, err = s.Step()
	require.ErrorContains(t, err, `site "z3": term failed`)
	require.Equal(t, 4, shared.begun)
	require.Equal(t, 2, shared.committed)

	own.failTerms, own.fail = false, true
	_, err = s.Step()
	require.ErrorContains(t, err, `site "z3": phase failed`)
	require.Equal(t, 2, shared.committed)
}
