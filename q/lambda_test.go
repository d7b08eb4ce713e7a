package q_test

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/backpropq/backpropq/q"
)

// randomValues gives every node and cost of net random values on rows rows.
func randomValues(net *q.Network, rows int, rng *rand.Rand) *q.Values {
	v := &q.Values{Rows: rows, Costs: map[string][]float64{}}
	for range net.Nodes {
		r := make([]float64, rows)
		for k := range r {
			r[k] = rng.NormFloat64()
		}
		v.Q = append(v.Q, r)
	}
	v.Target = v.Q
	for _, c := range net.Costs() {
		r := make([]float64, rows)
		for k := range r {
			r[k] = rng.Float64()
		}
		v.Costs[c] = r
	}
	return v
}

func nodeAt(t *testing.T, net *q.Network, site string) int {
	t.Helper()
	nodes := net.NodesAt(site)
	require.Len(t, nodes, 1, site)
	return nodes[0].Index
}

// Appendix 4.1's closed forms for delta_X1 on Figures 5 and 6 (structures
// reconstructed from the prose; see shapes_test.go), at arbitrary critic
// values: these are identities, so the tolerance is rounding.
func TestLambdaReturnClosedForms(t *testing.T) {
	const gamma, rows = 0.9, 7
	rng := rand.New(rand.NewPCG(1, 2))
	tests := []struct {
		name   string
		sh     shape
		opts   q.NetworkOptions
		lambda float64
		want   func(net *q.Network, v *q.Values, r int) float64
	}{
		{"figure5 lambda=1", figure5(), q.NetworkOptions{}, 1, func(net *q.Network, v *q.Values, r int) float64 {
			return math.Pow(gamma, 3)*v.Costs["f"][r] - v.Q[nodeAt(t, net, "X1")][r]
		}},
		{"figure5 lambda=0", figure5(), q.NetworkOptions{}, 0, func(net *q.Network, v *q.Values, r int) float64 {
			y1, y2 := v.Q[nodeAt(t, net, "Y1")][r], v.Q[nodeAt(t, net, "Y2")][r]
			return gamma*(y1+y2)/2 - v.Q[nodeAt(t, net, "X1")][r]
		}},
		{"figure6 lambda=1", figure6(), q.NetworkOptions{Merge: true, Reduce: q.ReduceChain}, 1, func(net *q.Network, v *q.Values, r int) float64 {
			return math.Pow(gamma, 3)*v.Costs["fa"][r] + math.Pow(gamma, 4)*v.Costs["fb"][r] - v.Q[nodeAt(t, net, "X1")][r]
		}},
		{"figure6 lambda=0", figure6(), q.NetworkOptions{Merge: true, Reduce: q.ReduceChain}, 0, func(net *q.Network, v *q.Values, r int) float64 {
			return gamma*v.Q[nodeAt(t, net, "X2")][r] - v.Q[nodeAt(t, net, "X1")][r]
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, tr := graphOf(t, tt.sh)
			net, err := q.Build(tr.Graph(), tt.opts)
			require.NoError(t, err)
			v := randomValues(net, rows, rng)
			delta, err := q.Errors(net, v, q.TD{Lambda: tt.lambda, Gamma: gamma})
			require.NoError(t, err)
			x1 := nodeAt(t, net, "X1")
			for r := range rows {
				assert.InDelta(t, tt.want(net, v, r), delta[x1][r], 1e-12)
			}
		})
	}
}

// On every shape and network option, lambda = 1 (gamma = 1) makes each
// node's target Q + delta the Monte Carlo return, the sum of its sources'
// sampled costs, and lambda = 0 the one-step target gamma*T.
func TestLambdaExtremes(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	shapes := []shape{figure1(), figure2(), figure3(), layered(3, 2), figure5(), figure6(), figure7(), chain(10)}
	opts := []q.NetworkOptions{{}, {Merge: true}, {Merge: true, Reduce: q.ReduceChain}, {Merge: true, Reduce: q.ReduceShortest, InlineCosts: true}}
	for _, sh := range shapes {
		_, tr := graphOf(t, sh)
		for _, o := range opts {
			net, err := q.Build(tr.Graph(), o)
			require.NoError(t, err)
			v := randomValues(net, 5, rng)
			mc, err := q.Errors(net, v, q.TD{Lambda: 1})
			require.NoError(t, err)
			one, err := q.Errors(net, v, q.TD{Lambda: 0, Gamma: 0.8})
			require.NoError(t, err)
			tgt := q.Targets(net, v)
			for i, nd := range net.Nodes {
				for r := range v.Rows {
					ret := 0.0
					for _, f := range nd.Sources {
						ret += v.Costs[f][r]
					}
					assert.InDelta(t, ret, v.Q[i][r]+mc[i][r], 1e-12, "%s %v node %s", sh.name, o, nd.Site)
					assert.InDelta(t, 0.8*tgt[i][r], v.Q[i][r]+one[i][r], 1e-12)
				}
			}
		}
	}
}

// Training with lambda = 1 fits the Monte Carlo return, and intermediate
// lambdas converge to the same exact Q-functions as TD(0).
func TestTabularLambdaConverges(t *testing.T) {
	for _, lambda := range []float64{0.5, 1} {
		rng := rand.New(rand.NewPCG(1, 2))
		sh := chain(10)
		s := newSCG(sh.sites, sh.costs, rng)
		const iters, b = 100, 256
		net, set := trainTabular(t, s, q.NetworkOptions{}, q.TD{Lambda: lambda}, iters, b, rng)
		h, _ := s.errorsByNode(net, set)
		for i, nd := range net.Nodes {
			// Monte Carlo targets: the variance of f given one cell is at
			// most 1/4; 3 standard errors over two cells.
			tol := 9 * 2 * 0.25 / float64(iters*b) * float64(nd.Depth)
			assert.LessOrEqual(t, h[i], tol, "lambda %v node %s", lambda, nd.Site)
		}
	}
}
