package infer

import (
	"bytes"
	"errors"
	"math"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/backpropq/backpropq/ad"
	"github.com/backpropq/backpropq/nn"
	"github.com/backpropq/backpropq/ppl"
	"github.com/backpropq/backpropq/q"
	"github.com/backpropq/backpropq/trace"
	"github.com/backpropq/backpropq/vi"
)

// trainCritics takes steps of s with a zero learning rate, so that the
// critics of est learn the Q-functions of the model's initial parameters.
func trainCritics(t *testing.T, s *SVI, steps int) {
	t.Helper()
	opt := s.Optimizer
	s.Optimizer = &nn.SGD{LR: 0}
	for i := 0; i < steps; i++ {
		_, err := s.Step()
		require.NoError(t, err)
	}
	s.Optimizer = opt
}

// TestBackpropQControlVariateUnbiased checks that mode QControlVariate,
// with critics trained for a few hundred steps (imperfect, constant step
// size, one-step TD), agrees with the exact gradient.
func TestBackpropQControlVariateUnbiased(t *testing.T) {
	models := []struct {
		name    string
		obj     vi.Objective
		support []siteSupport
		site    string
	}{
		{"chain", vi.Program{Model: chainModel}, chainSupport, "z1"},
		{"categorical", vi.Program{Model: categoricalModel}, categoricalSupport, "z"},
		{"sbn-elbo", sbnELBO, sbnSupport, "h1"},
	}
	for _, m := range models {
		t.Run(m.name, func(t *testing.T) {
			store := initObjectiveStore(t, m.obj)
			exact := exactObjectiveGradient(t, m.obj, store, m.support)
			est := NewBackpropQ(QControlVariate, q.Config{Kind: q.TabularKind, LR: 0.05}, q.TD{})
			s := &SVI{
				Objective: m.obj, Estimators: Estimators{Default: est},
				Optimizer: nn.NewAdam(0.01), Params: store, Particles: 20, Seed: 3,
			}
			trainCritics(t, s, 200)
			a, _ := est.Coefficients(m.site)
			require.NotZero(t, a, "the control variate is in use")
			_, ok := est.TDError(m.site)
			require.True(t, ok)
			mean, se := estimateGradient(t, s, repetitions())
			requireAgree(t, exact, mean, se)
		})
	}
}

// TestBackpropQLocalExactQ checks mode QLocal with tabular critics trained
// to convergence (Monte Carlo returns, running averages) against the exact
// gradient (Theorem 1).
func TestBackpropQLocalExactQ(t *testing.T) {
	obj := vi.Program{Model: chainModel}
	store := initObjectiveStore(t, obj)
	exact := exactObjectiveGradient(t, obj, store, chainSupport)
	est := NewBackpropQ(QLocal, q.Config{Kind: q.TabularKind}, q.TD{Lambda: 1})
	s := &SVI{
		Objective: obj, Estimators: Estimators{Default: est},
		Optimizer: nn.NewAdam(0.01), Params: store, Particles: 500, Seed: 3,
	}
	trainCritics(t, s, 200)
	s.Particles = 20
	mean, se := estimateGradient(t, s, repetitions())
	requireAgree(t, exact, mean, se)
}

// exactCost returns the expected total cost of obj by enumeration.
func exactCost(t *testing.T, obj vi.Objective, store *nn.Store, sup []siteSupport) float64 {
	t.Helper()
	tp := ad.NewTape()
	total := 0.0
	idx := make([]int, len(sup))
	for {
		cfg := map[string]*ad.Tensor{}
		for i, s := range sup {
			v := s.values[idx[i]]
			cfg[s.addr] = tp.FromData(1, len(v), v)
		}
		tr, err := obj.Run(ppl.Config{Tape: tp, Params: store, Batch: 1}, trace.ReplayValues(cfg))
		require.NoError(t, err)
		logp, cost := 0.0, 0.0
		for _, s := range tr.Sites() {
			if s.Stochastic() {
				logp += s.LogProb.Item()
			}
			if s.IsCost() {
				cost += s.ScaledCost().Item()
			}
		}
		total += math.Exp(logp) * cost
		i := 0
		for ; i < len(idx); i++ {
			idx[i]++
			if idx[i] < len(sup[i].values) {
				break
			}
			idx[i] = 0
		}
		if i == len(idx) {
			return total
		}
	}
}

// failingOptimizer is an optimizer whose step fails, after every term of
// the step has been built.
type failingOptimizer struct{ nn.Optimizer }

func (failingOptimizer) Step([]*nn.Param) error { return errors.New("test: optimizer fails") }

// TestBackpropQSVI trains the chain through SVI in every mode, checks that
// the exact expected cost falls, and that a failed step changes neither
// the critics nor the estimator's state.
func TestBackpropQSVI(t *testing.T) {
	for _, mode := range []QMode{QLocal, QControlVariate, QAdvantage} {
		t.Run(mode.String(), func(t *testing.T) {
			obj := vi.Program{Model: chainModel}
			store := initObjectiveStore(t, obj)
			before := exactCost(t, obj, store, chainSupport)
			est := NewBackpropQ(mode, q.Config{Kind: q.TabularKind, LR: 0.1}, q.TD{Lambda: 0.5})
			if mode == QLocal {
				est.Baseline = NewMovingAverage(0.9)
			}
			s := &SVI{
				Objective: obj, Estimators: Estimators{Default: est},
				Optimizer: nn.NewAdam(0.05), Params: store, Particles: 16, Seed: 5,
			}
			for i := 0; i < 150; i++ {
				m, err := s.Step()
				require.NoError(t, err)
				require.Len(t, m.Sites, 3)
			}
			after := exactCost(t, obj, store, chainSupport)
			require.Less(t, after, before-0.3, "expected cost %v -> %v", before, after)

			state, err := est.MarshalState()
			require.NoError(t, err)
			tdErr, _ := est.TDError("z1")
			opt := s.Optimizer
			s.Optimizer = failingOptimizer{opt}
			_, err = s.Step()
			require.Error(t, err)
			s.Optimizer = opt
			state2, err := est.MarshalState()
			require.NoError(t, err)
			require.True(t, bytes.Equal(state, state2), "a failed step changed the estimator's state")
			tdErr2, _ := est.TDError("z1")
			require.Equal(t, tdErr, tdErr2)

			// The state round-trips into a fresh estimator.
			est2 := NewBackpropQ(mode, q.Config{Kind: q.TabularKind, LR: 0.1}, q.TD{Lambda: 0.5})
			if mode == QLocal {
				est2.Baseline = NewMovingAverage(0.9)
			}
			require.NoError(t, est2.UnmarshalState(state))
			state3, err := est2.MarshalState()
			require.NoError(t, err)
			require.True(t, bytes.Equal(state, state3))
			require.Error(t, est2.UnmarshalState(state[:len(state)-3]))
		})
	}
}
