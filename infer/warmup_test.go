package infer

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/backpropq/backpropq/nn"
	"github.com/backpropq/backpropq/q"
)

// TestSVIWarmup checks that during the warm-up steps the critics learn
// and an estimator's own parameters (an NVIL baseline's) step, while the
// model's and the guide's parameters and their optimizer state stay as
// they are; and that the step after the warm-up trains them.
func TestSVIWarmup(t *testing.T) {
	obj := sbnSizedELBO(4, 3)
	store := initObjectiveStore(t, obj)
	modelParams := func() map[string][]float64 { return paramsByName(store, false) }
	initial := modelParams()
	cv := NewQControlVariate(mlp8(0.01), q.TD{})
	baseline := NewNVIL(3)
	opt := nn.NewAdam(0.01)
	s := &SVI{
		Objective:  obj,
		Estimators: Estimators{Default: cv, Sites: map[string]Estimator{"h2": ScoreFunction{Baseline: baseline}}},
		Optimizer:  opt, Params: store, Particles: 8, Seed: 3, Warmup: 5,
	}
	step := func() {
		_, err := s.Step()
		require.NoError(t, err)
	}
	step()
	critics, err := cv.Critics.Set.MarshalState()
	require.NoError(t, err)
	own := paramsByName(store, true)
	require.NotEmpty(t, own, "the baseline's parameters are in the store")
	for range 4 {
		step()
	}
	require.Equal(t, initial, modelParams(), "the warm-up leaves the model and the guide")
	for name := range initial {
		require.NotContains(t, opt.State(), name, "the warm-up leaves the optimizer state of %s", name)
	}
	after, err := cv.Critics.Set.MarshalState()
	require.NoError(t, err)
	require.NotEqual(t, critics, after, "the critics learn during the warm-up")
	require.NotEqual(t, own, paramsByName(store, true), "the baseline's parameters step during the warm-up")
	step()
	for name, v := range modelParams() {
		require.NotEqual(t, initial[name], v, "parameter %s trains after the warm-up", name)
	}
}

// paramsByName returns a copy of the values of the store's parameters,
// by name: the estimators' own (named infer/...) when own is set, the
// others otherwise.
func paramsByName(store *nn.Store, own bool) map[string][]float64 {
	out := map[string][]float64{}
	for _, p := range store.Params() {
		if strings.HasPrefix(p.Name, estimatorParamPrefix) == own {
			out[p.Name] = append([]float64(nil), p.Value.RawMatrix().Data...)
		}
	}
	return out
}
