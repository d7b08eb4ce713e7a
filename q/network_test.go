package q_test

import (
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/backpropq/backpropq/q"
	"github.com/backpropq/backpropq/trace"
)

func graphOf(t *testing.T, sh shape) (*scg, *trace.Trace) {
	t.Helper()
	rng := rand.New(rand.NewPCG(1, 2))
	s := newSCG(sh.sites, sh.costs, rng)
	tr, err := s.run(rng, 8)
	require.NoError(t, err)
	return s, tr
}

// The expected networks are derived by hand from section 3 (scopes, one
// rule per child reaching the cost, averages within a source and sums
// across) and from the figures' descriptions.
func TestBuildNetworks(t *testing.T) {
	merged := q.NetworkOptions{Merge: true}
	chain := q.NetworkOptions{Merge: true, Reduce: q.ReduceChain}
	tests := []struct {
		name string
		sh   shape
		opts q.NetworkOptions
		want string
	}{
		{"figure1 equivalent rules averaged, bypass scopes", figure1(), q.NetworkOptions{}, `
Q^{f}_Z2(X2,Y1,Z2) <- f
Q^{f}_Z1(X1,Y1,Z1) <- f
Q^{f}_Y2(X1,X2,Y2) <- Q^{f}_Z2
Q^{f}_Y1(X1,Y1) <- avg(Q^{f}_Z1, Q^{f}_Z2)
Q^{f}_X2(X2) <- avg(Q^{f}_Y2, f)
Q^{f}_X1(X1) <- avg(Q^{f}_Y1, Q^{f}_Y2)`},
		{"figure2 per-cost networks", figure2(), q.NetworkOptions{}, `
Q^{f2}_Z(X,Z) <- f2
Q^{f1}_Y(Y) <- f1
Q^{f2}_Y(X,Y) <- f2
Q^{f1}_X(X) <- Q^{f1}_Y
Q^{f2}_X(X) <- avg(Q^{f2}_Y, Q^{f2}_Z)
Q^{f3}_X(X) <- f3`},
		// Section 3.2: Q_X's target is Q^f1_Y(y) + (Q^f2_Y(x,y) + Q^f2_Z(x,z))/2
		// and Figure 2(e) sums the three costs at X.
		{"figure2 merged", figure2(), merged, `
Q^{f2}_Z(X,Z) <- f2
Q^{f1}_Y(Y) <- f1
Q^{f2}_Y(X,Y) <- f2
Q^{f1,f2,f3}_X(X) <- Q^{f1}_Y + avg(Q^{f2}_Y, Q^{f2}_Z) + f3`},
		{"figure3 merged at the first nodes only", figure3(), merged, `
Q^{f1}_D(C,D) <- f1
Q^{f2}_D(D) <- f2
Q^{f1}_C(B,C) <- avg(Q^{f1}_D, f1)
Q^{f2}_C(B,C) <- Q^{f2}_D
Q^{f1,f2}_B(B) <- avg(Q^{f1}_C, Q^{f1}_D) + avg(Q^{f2}_C, Q^{f2}_D)
Q^{f1,f2}_A(A) <- Q^{f1,f2}_B`},
		{"figure3(c) shortest paths", figure3(), q.NetworkOptions{Merge: true, Reduce: q.ReduceShortest}, `
Q^{f1}_D(C,D) <- f1
Q^{f2}_D(D) <- f2
Q^{f1}_C(B,C) <- f1
Q^{f2}_C(B,C) <- Q^{f2}_D
Q^{f1,f2}_B(B) <- Q^{f1}_C + Q^{f2}_D
Q^{f1,f2}_A(A) <- Q^{f1,f2}_B`},
		{"figure3(d) chain merges everything", figure3(), chain, `
Q^{f1,f2}_D(C,D) <- f1 + f2
Q^{f1,f2}_C(B,C) <- Q^{f1,f2}_D
Q^{f1,f2}_B(B) <- Q^{f1,f2}_C
Q^{f1,f2}_A(A) <- Q^{f1,f2}_B`},
		{"figure5", figure5(), q.NetworkOptions{}, `
Q^{f}_Z(Z) <- f
Q^{f}_Y2(X1,Y2) <- Q^{f}_Z
Q^{f}_Y1(X1,Y1) <- Q^{f}_Z
Q^{f}_X2(X2) <- Q^{f}_Y2
Q^{f}_X1(X1) <- avg(Q^{f}_Y1, Q^{f}_Y2)`},
		// Figure 6(b): at X3 the two sources are summed.
		{"figure6(b)", figure6(), chain, `
Q^{fb}_X4(X3,X4) <- fb
Q^{fa,fb}_X3(X2,X3) <- fa + Q^{fb}_X4
Q^{fa,fb}_X2(X2) <- Q^{fa,fb}_X3
Q^{fa,fb}_X1(X1) <- Q^{fa,fb}_X2`},
		// Figure 7(b) and eq. 15: Q_X(a, x) <- Q_Y1(y1) + Q_Y2(y2).
		{"figure7(b)", figure7(), chain, `
Q^{f2}_Y2(Y2) <- f2
Q^{f1}_Y1(Y1) <- f1
Q^{f1,f2}_X(A,X) <- Q^{f1}_Y1 + Q^{f2}_Y2
Q^{f2}_B2(B2) <- Q^{f2}_Y2
Q^{f1}_B1(B1) <- Q^{f1}_Y1
Q^{f1,f2}_A(A) <- Q^{f1,f2}_X`},
		{"inlined immediate costs", figure7(), q.NetworkOptions{Merge: true, Reduce: q.ReduceChain, InlineCosts: true}, `
Q^{f1,f2}_X(A,X) <- f1 + f2
Q^{f2}_B2(B2) <- f2
Q^{f1}_B1(B1) <- f1
Q^{f1,f2}_A(A) <- Q^{f1,f2}_X`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, tr := graphOf(t, tt.sh)
			net, err := q.Build(tr.Graph(), tt.opts)
			require.NoError(t, err)
			assert.Equal(t, strings.TrimPrefix(tt.want, "\n")+"\n", net.String())
			// Every node comes after the nodes its rule reads.
			for _, nd := range net.Nodes {
				for _, g := range nd.Groups {
					for _, r := range g.From {
						if !r.IsCost() {
							assert.Less(t, r.Node, nd.Index)
						}
					}
				}
			}
		})
	}
}

// Appendix 3: for stacked fully connected stochastic layers with a cost on
// every node, the general merge leaves one Q-function per node,
// Q_{X_l}(x_{l-1}, y_{l-1}, x_l), whose rule sums the next layer's
// immediate costs and averages the next layer's Q-functions; the last
// layer's Q-functions are its costs.
func TestFigure4OneQPerNode(t *testing.T) {
	for _, layers := range []int{3, 4} {
		sh := layered(layers, 2)
		_, tr := graphOf(t, sh)
		net, err := q.Build(tr.Graph(), q.NetworkOptions{Merge: true, InlineCosts: true})
		require.NoError(t, err)
		perCost, err := q.Build(tr.Graph(), q.NetworkOptions{})
		require.NoError(t, err)
		for l := 1; l <= layers; l++ {
			for _, x := range []string{"X", "Y"} {
				site := x + itoa(l)
				nodes := net.NodesAt(site)
				// Without merging, a node of layer l holds (N-l)M+1 Q-functions.
				assert.Len(t, perCost.NodesAt(site), (layers-l)*2+1, site)
				if l == layers {
					assert.Empty(t, nodes, site)
					assert.Equal(t, []q.Ref{{Node: -1, Cost: "f" + site}}, net.Local(site))
					continue
				}
				require.Len(t, nodes, 1, site)
				nd := nodes[0]
				if l > 1 {
					prev := itoa(l - 1)
					assert.Equal(t, []string{"X" + prev, "Y" + prev, site}, nd.Scope)
					assert.ElementsMatch(t, []q.Ref{{Node: nd.Index}, {Node: -1, Cost: "f" + site}}, net.Local(site))
				}
				// Groups: the site's own cost when it has no parent (a root
				// is never split), the next layer's two immediate costs, and
				// the average of the next layer's Q-functions.
				next := itoa(l + 1)
				groups := nd.Groups
				if l == 1 {
					require.NotEmpty(t, groups)
					assert.Equal(t, []q.Ref{{Node: -1, Cost: "f" + site}}, groups[0].From)
					groups = groups[1:]
				}
				wantGroups := 2
				if l+1 < layers {
					wantGroups = 3
				}
				require.Len(t, groups, wantGroups, site)
				assert.Equal(t, []q.Ref{{Node: -1, Cost: "fX" + next}}, groups[0].From)
				assert.Equal(t, []q.Ref{{Node: -1, Cost: "fY" + next}}, groups[1].From)
				if wantGroups == 3 {
					last := groups[2]
					require.Len(t, last.From, 2)
					assert.Equal(t, "X"+next, net.Nodes[last.From[0].Node].Site)
					assert.Equal(t, "Y"+next, net.Nodes[last.From[1].Node].Site)
				}
			}
		}
	}
}

func itoa(i int) string { return string(rune('0' + i)) }

// layered returns n layers of m = 2 nodes, fully connected, with a cost on
// every node.
func layered(layers, m int) shape {
	s := shape{name: "layered"}
	for l := 1; l <= layers; l++ {
		for j, x := range []string{"X", "Y"}[:m] {
			var pa []int
			if l > 1 {
				for k := range m {
					pa = append(pa, (l-2)*m+k)
				}
			}
			_ = j
			s.sites = append(s.sites, n(x+itoa(l), pa...))
		}
	}
	for i, site := range s.sites {
		s.costs = append(s.costs, n("f"+site.name, i))
	}
	return s
}

func TestCacheByShape(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	a := newSCG(chain(3).sites, chain(3).costs, rng)
	b := newSCG(chain(4).sites, chain(4).costs, rng)
	var c q.Cache
	tr1, err := a.run(rng, 2)
	require.NoError(t, err)
	tr2, err := a.run(rng, 5)
	require.NoError(t, err)
	tr3, err := b.run(rng, 2)
	require.NoError(t, err)
	n1, err := c.Network(tr1.Graph())
	require.NoError(t, err)
	n2, err := c.Network(tr2.Graph())
	require.NoError(t, err)
	n3, err := c.Network(tr3.Graph())
	require.NoError(t, err)
	assert.Same(t, n1, n2, "same shape, other batch: one network")
	assert.NotSame(t, n1, n3)
	assert.Equal(t, 2, c.Len())
	_, err = c.Network(nil)
	assert.Error(t, err)
}

func TestDOT(t *testing.T) {
	_, tr := graphOf(t, figure2())
	net, err := q.Build(tr.Graph(), q.NetworkOptions{Merge: true})
	require.NoError(t, err)
	dot := net.DOT()
	for _, want := range []string{
		"subgraph cluster_scg", "subgraph cluster_q",
		`[label="X", shape=circle]`, `[label="f1", shape=square, peripheries=2]`,
		`[label="Q^{f1,f2,f3}_X(X)", shape=box]`,
		`[label="f2"]`, `[label="f3"]`,
	} {
		assert.Contains(t, dot, want)
	}
	// One update-rule edge per read: 4 at X, 1 each at Y (two nodes) and Z.
	assert.Equal(t, 7, strings.Count(dot, "-> q"))
}

// Values.Local sums a site's Q-nodes and the costs inlined in their place.
func TestValuesLocalInlinedCosts(t *testing.T) {
	_, tr := graphOf(t, layered(3, 2))
	net, err := q.Build(tr.Graph(), q.NetworkOptions{InlineCosts: true})
	require.NoError(t, err)
	vals, err := q.NewSet(q.Config{Kind: q.TabularKind, LR: 0.1}).Evaluate(net, tr)
	require.NoError(t, err)
	inlined := 0
	for _, site := range net.Sites() {
		want := make([]float64, vals.Rows)
		for _, r := range net.Local(site) {
			src := vals.Costs[r.Cost]
			if !r.IsCost() {
				src = vals.Q[r.Node]
			} else {
				inlined++
			}
			for i, v := range src {
				want[i] += v
			}
		}
		assert.Equal(t, want, vals.Local(net, site), site)
	}
	assert.Positive(t, inlined, "some costs are inlined")
}
