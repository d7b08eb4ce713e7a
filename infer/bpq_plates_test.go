package infer

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/backpropq/backpropq/nn"
	"github.com/backpropq/backpropq/q"
	"github.com/backpropq/backpropq/vi"
)

// TestBackpropQPlates trains the Backprop-Q estimators on models with
// plates (a mixture whose assignments are in a data plate, and groups of
// members nested in a global bit): the critics of each site read its scope
// at the site's plate level and train toward costs moved to it; every
// site's critics learn, and the control variate agrees with the exact
// gradient.
func TestBackpropQPlates(t *testing.T) {
	models := []struct {
		name    string
		obj     vi.Objective
		support []plateSupport
		sites   []string
	}{
		{"mixture", mixELBO, []plateSupport{{"g", 1, 2}, {"z", 3, 1}}, []string{"g", "z"}},
		{"nested", vi.Program{Model: nestedModel}, []plateSupport{{"g", 1, 1}, {"h", 2, 1}, {"y", 4, 1}}, []string{"g", "h", "y"}},
	}
	cfg := q.Config{Kind: q.TabularKind, LR: 0.05}
	for _, m := range models {
		for _, c := range []struct {
			name string
			make func() qEstimator
		}{
			{"local", func() qEstimator { return NewQLocal(cfg, q.TD{Lambda: 0.5}) }},
			{"advantage", func() qEstimator { return NewQAdvantage(cfg, q.TD{Lambda: 0.5}) }},
			{"control-variate", func() qEstimator { return NewQControlVariate(cfg, q.TD{}) }},
		} {
			t.Run(m.name+"/"+c.name, func(t *testing.T) {
				store := initObjectiveStore(t, m.obj)
				est := c.make()
				s := &SVI{Objective: m.obj, Estimators: Estimators{Default: est},
					Optimizer: nn.NewAdam(0.01), Params: store, Particles: 10, Seed: 3}
				trainCritics(t, s, 100)
				for _, site := range m.sites {
					td, ok := est.QCritics().TDError(site)
					require.True(t, ok, site)
					require.Less(t, td, 10.0, site)
				}
				n, err := est.QCritics().SkippedUpdates()
				require.Zero(t, n, err)
				cv, ok := est.(*QControlVariate)
				if !ok {
					return
				}
				a, _ := cv.Coefficients(m.sites[len(m.sites)-1])
				require.NotZero(t, a, "the control variate is in use")
				exact := exactPlateGradient(t, m.obj, store, m.support)
				mean, se := estimateGradient(t, s, repetitions())
				requireAgree(t, exact, mean, se)
			})
		}
	}
}

// TestBackpropQReplayRefusesPlates checks that replay, which does not
// support plates, fails the step naming the site rather than skipping.
func TestBackpropQReplayRefusesPlates(t *testing.T) {
	est := NewQLocal(q.Config{Kind: q.TabularKind}, q.TD{})
	est.Replay = &Replay{}
	s := &SVI{Objective: mixELBO, Estimators: Estimators{Default: est}, Optimizer: nn.NewAdam(0.01),
		Params: initObjectiveStore(t, mixELBO), Particles: 4, Seed: 1}
	_, err := s.Step()
	require.ErrorContains(t, err, `site "z" is inside plates`)
	require.Empty(t, est.Critics.Set.Keys(), "the failed step trained no critic")
}
