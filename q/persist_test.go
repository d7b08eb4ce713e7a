package q_test

import (
	"math/rand/v2"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gonum.org/v1/gonum/mat"

	"github.com/backpropq/backpropq/internal/ckpt"
	"github.com/backpropq/backpropq/q"
)

// weightsOf returns copies of the weights of every critic of set and of
// their slow-tracking copies, by key.
func weightsOf(set *q.Set) map[string][][]float64 {
	out := map[string][][]float64{}
	for _, k := range set.Keys() {
		var ws [][]float64
		for _, w := range set.Critic(k).Weights() {
			ws = append(ws, append([]float64(nil), w...))
		}
		if slow := set.Slow(k); slow != nil {
			for _, w := range slow.Weights() {
				ws = append(ws, append([]float64(nil), w...))
			}
		}
		out[k] = ws
	}
	return out
}

// TestResumeIsExact checks that critics restored from MarshalState (or
// from a file) continue training bit for bit like the critics they were
// saved from: the Adam state of Linear and MLP critics and the
// slow-tracking copies are part of the state.
func TestResumeIsExact(t *testing.T) {
	sh := figure2()
	for _, c := range []struct {
		name      string
		kind      q.Kind
		slow      float64
		normalize bool
	}{
		{"mlp", q.MLPKind, 0, false},
		{"mlp-slow", q.MLPKind, 0.1, false},
		{"mlp-normalized-slow", q.MLPKind, 0.1, true},
		{"linear-slow", q.LinearKind, 0.05, false},
		{"tabular-slow", q.TabularKind, 0.1, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			for _, viaFile := range []bool{false, true} {
				cfg := func() q.Config {
					return q.Config{Kind: c.kind, LR: 0.02, SlowTarget: c.slow, Normalize: c.normalize, Seed: 3}
				}
				s := newSCG(sh.sites, sh.costs, rand.New(rand.NewPCG(1, 2)))
				set := q.NewSet(cfg())
				td := q.TD{Lambda: 0.5}
				train(t, s, set, q.NetworkOptions{Merge: true}, td, 6, 16, rand.New(rand.NewPCG(5, 6)))
				restored := q.NewSet(cfg())
				if viaFile {
					path := filepath.Join(t.TempDir(), "critics.ckpt")
					require.NoError(t, q.Save(path, set))
					require.NoError(t, q.Load(path, restored, q.LoadOptions{}))
				} else {
					state, err := set.MarshalState()
					require.NoError(t, err)
					require.NoError(t, restored.UnmarshalState(state))
				}
				train(t, s, set, q.NetworkOptions{Merge: true}, td, 8, 16, rand.New(rand.NewPCG(7, 8)))
				train(t, s, restored, q.NetworkOptions{Merge: true}, td, 8, 16, rand.New(rand.NewPCG(7, 8)))
				want, got := weightsOf(set), weightsOf(restored)
				require.NotEmpty(t, want)
				require.Equal(t, want, got, "file %v", viaFile)
			}
		})
	}
}

// TestLoadVersion1 loads a critics section written before the optimizer
// state was saved (version 1): the critic gets its weights and a fresh
// Adam state, so its next update is that of a new critic with those
// weights.
func TestLoadVersion1(t *testing.T) {
	layout := q.Layout{Fields: []q.Field{{Addr: "x", Kind: q.Binary, Width: 1}}}
	var e ckpt.Encoder
	e.Uint32(1) // version
	e.Uint32(1) // one critic
	e.String("x|f")
	e.Uint32(1) // one field
	e.String("x")
	e.Uint32(uint32(q.Binary))
	e.Uint32(1)
	e.Uint32(0)
	e.String("net")
	e.Float64s([]float64{0.1}) // learning rate
	e.Uint32(1)                // one layer, 1x1
	e.Uint32(1)
	e.Uint32(1)
	e.Float64s([]float64{0.7})  // W
	e.Float64s([]float64{-0.2}) // b
	path := filepath.Join(t.TempDir(), "v1.ckpt")
	require.NoError(t, ckpt.WriteFile(path, map[string][]byte{q.Section: e.Bytes()}))

	set := q.NewSet(q.Config{Kind: q.LinearKind})
	require.NoError(t, q.Load(path, set, q.LoadOptions{}))
	got := set.Critic("x|f")
	require.NotNil(t, got)
	assert.Equal(t, [][]float64{{0.7}, {-0.2}}, got.Weights())

	fresh := q.NewLinear(layout, 0.1, rand.New(rand.NewPCG(1, 2)))
	for i, w := range fresh.Weights() {
		copy(w, got.Weights()[i])
	}
	x := mat.NewDense(2, 1, []float64{0, 1})
	for range 3 {
		require.NoError(t, got.Update(x, []float64{1, 2}))
		require.NoError(t, fresh.Update(x, []float64{1, 2}))
	}
	assert.Equal(t, fresh.Weights(), got.Weights())
}

// TestEvaluateSharesNewCritics checks that evaluations before the first
// update share the critic created for a new key: two evaluations of one
// trace give the same values (each drawing its own MLP would not), and the
// set still lists no critic until an update installs it.
func TestEvaluateSharesNewCritics(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	sh := figure2()
	s := newSCG(sh.sites, sh.costs, rng)
	tr, err := s.run(rng, 8)
	require.NoError(t, err)
	net, err := q.Build(tr.Graph(), q.NetworkOptions{Merge: true})
	require.NoError(t, err)
	set := q.NewSet(q.Config{Kind: q.MLPKind, Seed: 3})
	v1, err := set.Evaluate(net, tr)
	require.NoError(t, err)
	v2, err := set.Evaluate(net, tr)
	require.NoError(t, err)
	assert.Equal(t, v1.Q, v2.Q)
	assert.Empty(t, set.Keys())
	_, err = set.Apply(net, v2, q.TD{})
	require.NoError(t, err)
	assert.NotEmpty(t, set.Keys())
}
