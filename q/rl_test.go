package q_test

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/backpropq/backpropq/ppl"
	"github.com/backpropq/backpropq/q"
)

// The slow-tracking target follows appendix 4.3: with theta_t the target's
// weights and the learned ones theta_t + dtheta_t, each update Delta gives
// dtheta += Delta, theta += alpha*dtheta, dtheta *= 1-alpha. Unrolled, the
// target is an exponential moving average of the learned weights with
// rate alpha, which we track independently here.
func TestSlowTargetScheme(t *testing.T) {
	const alpha = 0.1
	rng := rand.New(rand.NewPCG(1, 2))
	sh := chain(3)
	s := newSCG(sh.sites, sh.costs, rng)
	for _, kind := range []q.Kind{q.TabularKind, q.LinearKind} {
		set := q.NewSet(q.Config{Kind: kind, SlowTarget: alpha, LR: 0.05, Seed: 1})
		var ema map[string][][]float64
		for it := range 30 {
			net := train(t, s, set, q.NetworkOptions{}, q.TD{}, 1, 16, rng)
			if it == 0 {
				// After the first update: theta_1 = theta_0 + alpha*(w_1 -
				// theta_0), with theta_0 the weights before any update (zero
				// for a new tabular cell, the initial ones for a linear
				// critic, which we cannot see any more): start tracking
				// from the target itself.
				ema = map[string][][]float64{}
				for _, nd := range net.Nodes {
					key := set.Key(nd)
					ema[key] = clone(set.Slow(key).Weights())
				}
				continue
			}
			for key, want := range ema {
				learned := set.Critic(key).Weights()
				for i := range want {
					for len(want[i]) < len(learned[i]) {
						want[i] = append(want[i], 0)
					}
					for j := range want[i] {
						want[i][j] += alpha * (learned[i][j] - want[i][j])
					}
				}
				got := set.Slow(key).Weights()
				for i := range want {
					assert.InDeltaSlice(t, want[i], got[i], 1e-12, "kind %d key %s", kind, key)
				}
			}
		}
	}
}

func clone(w [][]float64) [][]float64 {
	out := make([][]float64, len(w))
	for i := range w {
		out[i] = append([]float64(nil), w[i]...)
	}
	return out
}

// Replay and the slow-tracking target each converge on the chain of
// length 10 to the exact Q-functions, with the tolerance of
// TestTabularTDReachesExactQ (three standard errors of the cell averages,
// accumulated along the chain).
func TestChain10ReplayAndSlowTarget(t *testing.T) {
	sh := chain(10)
	t.Run("replay", func(t *testing.T) {
		rng := rand.New(rand.NewPCG(1, 2))
		s := newSCG(sh.sites, sh.costs, rng)
		buf := q.NewBuffer(4096)
		var net *q.Network
		for range 16 {
			tr, err := s.run(rng, 256)
			require.NoError(t, err)
			require.NoError(t, buf.Add(tr))
			net, err = q.Build(tr.Graph(), q.NetworkOptions{})
			require.NoError(t, err)
		}
		assert.Equal(t, 4096, buf.Len())
		set := q.NewSet(q.Config{Kind: q.TabularKind})
		const steps, rows = 150, 256
		for range steps {
			_, err := set.Replay(net, buf, s.model(), ppl.Config{Rand: rng}, q.ReplayOptions{Rows: rows})
			require.NoError(t, err)
		}
		h, _ := s.errorsByNode(net, set)
		for i, nd := range net.Nodes {
			tol := 9 * float64(nd.Depth) * 2 * 0.25 / float64(steps*rows)
			assert.LessOrEqual(t, h[i], tol, "node %s", nd.Site)
		}
	})
	// The slow-tracking target is meant for function approximators with a
	// constant step size (DQN, DDPG); with 1/n cell averages its lag would
	// stay in the averages. Linear critics represent the chain's Q-functions
	// exactly (one binary input), and Adam's constant rate leaves a noise
	// floor: we require the tolerance of TestFunctionCriticsConverge.
	t.Run("slow target", func(t *testing.T) {
		rng := rand.New(rand.NewPCG(1, 2))
		s := newSCG(sh.sites, sh.costs, rng)
		set := q.NewSet(q.Config{Kind: q.LinearKind, LR: 0.01, SlowTarget: 0.1, Seed: 1})
		net := train(t, s, set, q.NetworkOptions{}, q.TD{}, 1, 64, rng)
		h0, _ := s.errorsByNode(net, set)
		net = train(t, s, set, q.NetworkOptions{}, q.TD{}, 1500, 64, rng)
		h, _ := s.errorsByNode(net, set)
		for i, nd := range net.Nodes {
			t.Logf("%s: squared error %.2g (untrained %.2g)", nd.Site, h[i], h0[i])
			assert.Less(t, h[i], 2e-3, "node %s", nd.Site)
		}
		assert.Less(t, sum(h), sum(h0)/10)
	})
}

// Advantages on Figure 8's cases (reconstructed from the prose) and
// Figure 9's lambda-return approximation, at arbitrary critic values.
func TestAdvantages(t *testing.T) {
	const gamma = 1
	rng := rand.New(rand.NewPCG(1, 2))
	tests := []struct {
		name       string
		sh         shape
		site       string
		fromErrors bool
		lambda     float64
		want       func(net *q.Network, v *q.Values, r int) float64
	}{
		// 8(a): X -> Y -> f: A_Y = Q_Y(y) - Q_X(x).
		{"8a", shape{"8a", []scgNode{n("X"), n("Y", 0)}, []scgNode{n("f", 1)}}, "Y", false, 0,
			func(net *q.Network, v *q.Values, r int) float64 {
				return v.Q[nodeAt(t, net, "Y")][r] - v.Q[nodeAt(t, net, "X")][r]
			}},
		// 8(b): X1 -> Y <- X2: subtract the average of the two states' values.
		{"8b", shape{"8b", []scgNode{n("X1"), n("X2"), n("Y", 0, 1)}, []scgNode{n("f", 2)}}, "Y", false, 0,
			func(net *q.Network, v *q.Values, r int) float64 {
				return v.Q[nodeAt(t, net, "Y")][r] - (v.Q[nodeAt(t, net, "X1")][r]+v.Q[nodeAt(t, net, "X2")][r])/2
			}},
		// 8(c): X -> Y1 -> f1, X -> Y2 -> f2: Q_X's target sums both, so
		// A_Y1 = Q_Y1(y1) - (Q_X(x) - Q_Y2(y2)) with the sampled y2.
		{"8c", shape{"8c", []scgNode{n("X"), n("Y1", 0), n("Y2", 0)}, []scgNode{n("f1", 1), n("f2", 2)}}, "Y1", false, 0,
			func(net *q.Network, v *q.Values, r int) float64 {
				return v.Q[nodeAt(t, net, "Y1")][r] - (v.Q[nodeAt(t, net, "X")][r] - v.Q[nodeAt(t, net, "Y2")][r])
			}},
		// Figure 9: on a chain, A_{X_t} is the lambda-return error of
		// X_{t-1}; at gamma*lambda = 1 it is R - Q_{X_{t-1}}.
		{"9 lambda=1", chain(4), "x3", true, 1,
			func(net *q.Network, v *q.Values, r int) float64 {
				return v.Costs["f"][r] - v.Q[nodeAt(t, net, "x2")][r]
			}},
		{"9 lambda=0", chain(4), "x3", true, 0,
			func(net *q.Network, v *q.Values, r int) float64 {
				return v.Q[nodeAt(t, net, "x3")][r] - v.Q[nodeAt(t, net, "x2")][r]
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, tr := graphOf(t, tt.sh)
			net, err := q.Build(tr.Graph(), q.NetworkOptions{Merge: true})
			require.NoError(t, err)
			v := randomValues(net, 6, rng)
			adv, err := q.Advantages(net, v, q.TD{Lambda: tt.lambda, Gamma: gamma}, tt.fromErrors)
			require.NoError(t, err)
			for r := range v.Rows {
				assert.InDelta(t, tt.want(net, v, r), adv[tt.site][r], 1e-12)
			}
		})
	}
}

// With exact Q-functions an advantage has conditional mean zero given the
// parents' scope: here E[A_Y | X] on Figure 8(a) after tabular training,
// by enumeration.
func TestAdvantageIsCentred(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	sh := shape{"8a", []scgNode{n("X"), n("Y", 0)}, []scgNode{n("f", 1)}}
	s := newSCG(sh.sites, sh.costs, rng)
	net, set := trainTabular(t, s, q.NetworkOptions{}, q.TD{}, 100, 256, rng)
	// E[A_Y | x] = sum_y p(y|x) (Q_Y(y) - Q_X(x)).
	for x := range 2 {
		p1 := s.cpt[1][x]
		qy := []float64{predict(set, net.NodesAt("Y")[0], []float64{0}), predict(set, net.NodesAt("Y")[0], []float64{1})}
		qx := predict(set, net.NodesAt("X")[0], []float64{float64(x)})
		mean := (1-p1)*qy[0] + p1*qy[1] - qx
		// Both critics are cell averages of about 25600*p rows of costs
		// in [0, 1]: three standard errors.
		assert.InDelta(t, 0, mean, 3*math.Sqrt(2*0.25/(0.15*25600)))
	}
}
