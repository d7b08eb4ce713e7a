package trace_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/backpropq/backpropq/ad"
	"github.com/backpropq/backpropq/ppl"
	"github.com/backpropq/backpropq/ppl/dist"
	"github.com/backpropq/backpropq/trace"
)

// scgCase is a small model shaped like one of the paper's examples, with
// its SCG derived by hand.
type scgCase struct {
	name  string
	model ppl.Model
	// parents of every node; a node absent here must not exist.
	parents map[string][]string
	// costs reachable from every random variable.
	costs map[string][]string
	// scopes Sc^f_x for every x and every cost f reachable from x, keyed
	// "x|f".
	scopes map[string][]string
	// ancestors of selected nodes.
	ancestors map[string][]string
}

func scgCases() []scgCase {
	return []scgCase{
		{
			name: "chain",
			model: func(ctx *ppl.Ctx) {
				x1 := rv(ctx, "x1")
				x2 := rv(ctx, "x2", x1)
				x3 := rv(ctx, "x3", x2)
				cost(ctx, "f", x3)
			},
			parents: map[string][]string{"x1": nil, "x2": {"x1"}, "x3": {"x2"}, "f": {"x3"}},
			costs:   map[string][]string{"x1": {"f"}, "x2": {"f"}, "x3": {"f"}},
			scopes:  map[string][]string{"x1|f": {"x1"}, "x2|f": {"x2"}, "x3|f": {"x3"}},
			ancestors: map[string][]string{
				"x1": nil, "x3": {"x1", "x2"}, "f": {"x1", "x2", "x3"},
			},
		},
		{
			// Section 3.1: a bypass from x1 around x2 enlarges x2's scope
			// to hold x1, where the bypass starts.
			name: "chain with bypass to a node",
			model: func(ctx *ppl.Ctx) {
				x1 := rv(ctx, "x1")
				x2 := rv(ctx, "x2", x1)
				x3 := rv(ctx, "x3", x2, x1)
				cost(ctx, "f", x3)
			},
			parents: map[string][]string{"x1": nil, "x2": {"x1"}, "x3": {"x1", "x2"}, "f": {"x3"}},
			costs:   map[string][]string{"x1": {"f"}, "x2": {"f"}, "x3": {"f"}},
			scopes:  map[string][]string{"x1|f": {"x1"}, "x2|f": {"x1", "x2"}, "x3|f": {"x3"}},
			ancestors: map[string][]string{
				"x3": {"x1", "x2"},
			},
		},
		{
			name: "chain with bypass to the cost",
			model: func(ctx *ppl.Ctx) {
				x1 := rv(ctx, "x1")
				x2 := rv(ctx, "x2", x1)
				x3 := rv(ctx, "x3", x2)
				cost(ctx, "f", x3, x1)
			},
			parents: map[string][]string{"x1": nil, "x2": {"x1"}, "x3": {"x2"}, "f": {"x1", "x3"}},
			costs:   map[string][]string{"x1": {"f"}, "x2": {"f"}, "x3": {"f"}},
			scopes:  map[string][]string{"x1|f": {"x1"}, "x2|f": {"x1", "x2"}, "x3|f": {"x1", "x3"}},
		},
		{
			// Figure 2(a): Y feeds both costs, Z only f2; the text gives
			// Q^f1_Y(y), Q^f2_Y(x, y) and Q^f2_Z(x, z).
			name: "Figure 2(a) two costs",
			model: func(ctx *ppl.Ctx) {
				x := rv(ctx, "X")
				y := rv(ctx, "Y", x)
				z := rv(ctx, "Z", x)
				cost(ctx, "f1", y)
				cost(ctx, "f2", y, z)
			},
			parents: map[string][]string{"X": nil, "Y": {"X"}, "Z": {"X"}, "f1": {"Y"}, "f2": {"Y", "Z"}},
			costs:   map[string][]string{"X": {"f1", "f2"}, "Y": {"f1", "f2"}, "Z": {"f2"}},
			scopes: map[string][]string{
				"X|f1": {"X"}, "X|f2": {"X"},
				"Y|f1": {"Y"}, "Y|f2": {"X", "Y"},
				"Z|f2": {"X", "Z"},
			},
		},
		{
			// Our reading of Figure 3: two costs whose per-cost networks
			// share the upper nodes A and B (where they can be merged),
			// with a bypass A -> C.
			name: "Figure 3 merge",
			model: func(ctx *ppl.Ctx) {
				a := rv(ctx, "A")
				b := rv(ctx, "B", a)
				c := rv(ctx, "C", a, b)
				d := rv(ctx, "D", b)
				cost(ctx, "f1", c)
				cost(ctx, "f2", c, d)
			},
			parents: map[string][]string{
				"A": nil, "B": {"A"}, "C": {"A", "B"}, "D": {"B"}, "f1": {"C"}, "f2": {"C", "D"},
			},
			costs: map[string][]string{"A": {"f1", "f2"}, "B": {"f1", "f2"}, "C": {"f1", "f2"}, "D": {"f2"}},
			scopes: map[string][]string{
				"A|f1": {"A"}, "A|f2": {"A"},
				"B|f1": {"A", "B"}, "B|f2": {"A", "B"},
				"C|f1": {"C"}, "C|f2": {"B", "C"},
				"D|f2": {"A", "B", "D"},
			},
		},
		{
			// Figure 7 as the appendix describes it: Q_X's scope is
			// (x, a), and y1 ~ p(.|x, b1), y2 ~ p(.|x, b2) with an edge
			// from A to Y2 (the edge Q^f2_Y2 -> Q^f2_A).
			name: "Figure 7 replay",
			model: func(ctx *ppl.Ctx) {
				a := rv(ctx, "A")
				b1 := rv(ctx, "B1")
				b2 := rv(ctx, "B2")
				x := rv(ctx, "X", a)
				y1 := rv(ctx, "Y1", x, b1)
				y2 := rv(ctx, "Y2", x, b2, a)
				cost(ctx, "f1", y1)
				cost(ctx, "f2", y2)
			},
			parents: map[string][]string{
				"A": nil, "B1": nil, "B2": nil, "X": {"A"},
				"Y1": {"B1", "X"}, "Y2": {"A", "B2", "X"}, "f1": {"Y1"}, "f2": {"Y2"},
			},
			costs: map[string][]string{
				"A": {"f1", "f2"}, "B1": {"f1"}, "B2": {"f2"}, "X": {"f1", "f2"}, "Y1": {"f1"}, "Y2": {"f2"},
			},
			scopes: map[string][]string{
				"A|f1": {"A"}, "A|f2": {"A"}, "B1|f1": {"B1"}, "B2|f2": {"B2"},
				"X|f1": {"X"}, "X|f2": {"A", "X"},
				"Y1|f1": {"Y1"}, "Y2|f2": {"Y2"},
			},
		},
		{
			// Section 3.1: a cost on several variables behaves as a
			// virtual node Z = (X1, X2, X3) before the cost.
			name: "multivariate cost",
			model: func(ctx *ppl.Ctx) {
				x1 := rv(ctx, "X1")
				x2 := rv(ctx, "X2", x1)
				x3 := rv(ctx, "X3", x2)
				cost(ctx, "f", x1, x2, x3)
			},
			parents: map[string][]string{"X1": nil, "X2": {"X1"}, "X3": {"X2"}, "f": {"X1", "X2", "X3"}},
			costs:   map[string][]string{"X1": {"f"}, "X2": {"f"}, "X3": {"f"}},
			scopes:  map[string][]string{"X1|f": {"X1"}, "X2|f": {"X1", "X2"}, "X3|f": {"X1", "X2", "X3"}},
		},
		{
			name: "loop",
			model: func(ctx *ppl.Ctx) {
				rnn := ctx.Scope("rnn")
				var prev []*ad.Tensor
				for t := 0; t < 4; t++ {
					y := rv(rnn, ppl.At("y", t), prev...)
					cost(rnn, ppl.At("r", t), y)
					prev = []*ad.Tensor{y}
				}
				cost(ctx, "final", prev[0])
			},
			parents: map[string][]string{
				"rnn/y[0]": nil, "rnn/y[1]": {"rnn/y[0]"}, "rnn/y[2]": {"rnn/y[1]"}, "rnn/y[3]": {"rnn/y[2]"},
				"rnn/r[0]": {"rnn/y[0]"}, "rnn/r[1]": {"rnn/y[1]"}, "rnn/r[2]": {"rnn/y[2]"}, "rnn/r[3]": {"rnn/y[3]"},
				"final": {"rnn/y[3]"},
			},
			costs: map[string][]string{
				"rnn/y[0]": {"rnn/r[0]", "rnn/r[1]", "rnn/r[2]", "rnn/r[3]", "final"},
				"rnn/y[1]": {"rnn/r[1]", "rnn/r[2]", "rnn/r[3]", "final"},
				"rnn/y[2]": {"rnn/r[2]", "rnn/r[3]", "final"},
				"rnn/y[3]": {"rnn/r[3]", "final"},
			},
			scopes: func() map[string][]string {
				m := map[string][]string{}
				for t := 0; t < 4; t++ {
					y := fmt.Sprintf("rnn/y[%d]", t)
					for s := t; s < 4; s++ {
						m[y+"|"+fmt.Sprintf("rnn/r[%d]", s)] = []string{y}
					}
					m[y+"|final"] = []string{y}
				}
				return m
			}(),
			ancestors: map[string][]string{
				"rnn/y[3]": {"rnn/y[0]", "rnn/y[1]", "rnn/y[2]"},
				"final":    {"rnn/y[0]", "rnn/y[1]", "rnn/y[2]", "rnn/y[3]"},
			},
		},
	}
}

func TestGraphHandDerived(t *testing.T) {
	for _, tc := range scgCases() {
		t.Run(tc.name, func(t *testing.T) {
			tr, err := trace.Run(tc.model, trace.Seed(seeded()))
			require.NoError(t, err)
			g := tr.Graph()

			var nodes []string
			for n := range tc.parents {
				nodes = append(nodes, n)
			}
			assert.ElementsMatch(t, nodes, g.Nodes(), "nodes")
			for n, want := range tc.parents {
				assert.Equal(t, want, g.Parents(n), "Parents(%s)", n)
			}
			// Children is the inverse of Parents.
			for _, n := range g.Nodes() {
				for _, c := range g.Children(n) {
					assert.Contains(t, g.Parents(c), n, "%s is a child of %s", c, n)
				}
				for _, p := range g.Parents(n) {
					assert.Contains(t, g.Children(p), n, "%s is a parent of %s", p, n)
				}
			}
			for x, want := range tc.costs {
				assert.Equal(t, want, g.CostsFrom(x), "CostsFrom(%s)", x)
			}
			for key, want := range tc.ancestors {
				assert.Equal(t, want, g.Ancestors(key), "Ancestors(%s)", key)
			}
			// Every (x, f) pair with f reachable from x has its scope
			// derived by hand, and no other pair is listed.
			pairs := 0
			for _, x := range g.Stochastic() {
				for _, f := range g.CostsFrom(x) {
					want, ok := tc.scopes[x+"|"+f]
					require.True(t, ok, "no hand-derived scope for %s|%s", x, f)
					assert.Equal(t, want, g.Scope(x, f), "Scope(%s, %s)", x, f)
					pairs++
				}
			}
			assert.Equal(t, len(tc.scopes), pairs, "scope pairs")
		})
	}
}

func TestGraphFrontierFigure2(t *testing.T) {
	tc := scgCases()[3]
	require.Equal(t, "Figure 2(a) two costs", tc.name)
	tr, err := trace.Run(tc.model, trace.Seed(seeded()))
	require.NoError(t, err)
	g := tr.Graph()
	for _, c := range []struct {
		v    []string
		f    string
		want []string
	}{
		{[]string{"X", "Y"}, "f2", []string{"X", "Y"}},
		{[]string{"Y"}, "f2", []string{"Y"}},
		{[]string{"X"}, "f2", []string{"X"}},
		{[]string{"X", "Y", "Z"}, "f2", []string{"Y", "Z"}},
		{[]string{"X", "Y"}, "f1", []string{"Y"}},
		{[]string{"Z"}, "f1", nil},
		{nil, "f1", nil},
		// Addresses that are not random variables are ignored.
		{[]string{"f1", "nope", "Y"}, "f1", []string{"Y"}},
	} {
		assert.Equal(t, c.want, g.Frontier(c.v, c.f), "Frontier(%v, %s)", c.v, c.f)
	}
	assert.Nil(t, g.Frontier([]string{"X"}, "Y"), "Y is not a cost")
	assert.Nil(t, g.Scope("f1", "f2"), "f1 is not a random variable")
	assert.Nil(t, g.Scope("X", "nope"))
	assert.Nil(t, g.Parents("nope"))
	assert.Nil(t, g.Descendants("nope"))
	assert.Equal(t, []string{"Y", "Z", "f1", "f2"}, g.Descendants("X"))
	assert.Equal(t, []string{"X", "Y", "Z"}, g.Stochastic())
	assert.Equal(t, []string{"f1", "f2"}, g.Costs())
}

// TestGraphFrontierBruteForce checks Frontier and Scope on random DAGs
// against the definition, evaluated by a forward search over paths.
func TestGraphFrontierBruteForce(t *testing.T) {
	rng := seeded()
	for trial := 0; trial < 60; trial++ {
		n := 2 + rng.IntN(7)
		nc := 1 + rng.IntN(3)
		pa := make([][]int, n)
		for i := range pa {
			for j := 0; j < i; j++ {
				if rng.Float64() < 0.4 {
					pa[i] = append(pa[i], j)
				}
			}
		}
		args := make([][]int, nc)
		for k := range args {
			for j := 0; j < n; j++ {
				if rng.Float64() < 0.35 {
					args[k] = append(args[k], j)
				}
			}
			if len(args[k]) == 0 {
				// A cost without provenance after sampling is taken to
				// depend on every variable sampled before it.
				for j := 0; j < n; j++ {
					args[k] = append(args[k], j)
				}
			}
		}
		name := func(i int) string { return ppl.At("x", i) }
		cname := func(k int) string { return ppl.At("f", k) }
		model := func(ctx *ppl.Ctx) {
			vals := make([]*ad.Tensor, n)
			for i := range vals {
				var ps []*ad.Tensor
				for _, j := range pa[i] {
					ps = append(ps, vals[j])
				}
				vals[i] = rv(ctx, name(i), ps...)
			}
			for k := range args {
				var as []*ad.Tensor
				for _, j := range args[k] {
					as = append(as, vals[j])
				}
				cost(ctx, cname(k), as...)
			}
		}
		tr, err := trace.Run(model, trace.Seed(rng))
		require.NoError(t, err)
		g := tr.Graph()

		// children[i]: variables j with i in pa[j]; costs reach via args.
		reaches := func(v int, f int, inV []bool) bool {
			// Forward search from v over variables outside V.
			seen := make([]bool, n)
			stack := []int{v}
			for len(stack) > 0 {
				u := stack[len(stack)-1]
				stack = stack[:len(stack)-1]
				if slices.Contains(args[f], u) {
					return true
				}
				for j := 0; j < n; j++ {
					if slices.Contains(pa[j], u) && !inV[j] && !seen[j] {
						seen[j] = true
						stack = append(stack, j)
					}
				}
			}
			return false
		}
		for sub := 0; sub < 5; sub++ {
			inV := make([]bool, n)
			var v []string
			for i := range inV {
				if rng.Float64() < 0.5 {
					inV[i] = true
					v = append(v, name(i))
				}
			}
			for f := range args {
				var want []string
				for i := 0; i < n; i++ {
					if inV[i] && reaches(i, f, inV) {
						want = append(want, name(i))
					}
				}
				assert.Equal(t, want, g.Frontier(v, cname(f)), "trial %d: Frontier(%v, f%d), pa=%v args=%v", trial, v, f, pa, args)
			}
		}
		// Scope(x, f) = Frontier(An_x ∪ {x}, f).
		for i := 0; i < n; i++ {
			v := append(g.Ancestors(name(i)), name(i))
			for f := range args {
				assert.Equal(t, g.Frontier(v, cname(f)), g.Scope(name(i), cname(f)))
			}
		}
	}
}

// TestControlFlowChangesGraph runs a model whose structure depends on a
// sampled value and checks the graph of each branch.
func TestControlFlowChangesGraph(t *testing.T) {
	model := func(ctx *ppl.Ctx) {
		x := rv(ctx, "x")
		if x.At(0, 0) > 0 {
			h := rv(ctx, "h", x)
			cost(ctx, "f", h)
		} else {
			y := rv(ctx, "y")
			z := rv(ctx, "z", y, x)
			cost(ctx, "f", z, x)
		}
	}
	rng := seeded()
	seen := map[bool]int{}
	for run := 0; run < 20; run++ {
		tr, err := trace.Run(model, trace.Seed(rng))
		require.NoError(t, err)
		g := tr.Graph()
		up := tr.Site("x").Value.At(0, 0) > 0
		seen[up]++
		if up {
			assert.Equal(t, []string{"x", "h", "f"}, g.Nodes())
			assert.Equal(t, []string{"h"}, g.Parents("f"))
			assert.Equal(t, []string{"h"}, g.Scope("h", "f"))
			assert.Equal(t, []string{"x"}, g.Scope("x", "f"))
		} else {
			assert.Equal(t, []string{"x", "y", "z", "f"}, g.Nodes())
			assert.Equal(t, []string{"x", "z"}, g.Parents("f"))
			assert.Equal(t, []string{"x", "y"}, g.Parents("z"))
			assert.Equal(t, []string{"x", "z"}, g.Scope("z", "f"))
			assert.Equal(t, []string{"y"}, g.Scope("y", "f"), "x is no ancestor of y")
			assert.Empty(t, g.Ancestors("y"))
		}
	}
	assert.Positive(t, seen[true], "branch x > 0 never taken")
	assert.Positive(t, seen[false], "branch x <= 0 never taken")
}

func TestDOT(t *testing.T) {
	tc := scgCases()[3]
	tr, err := trace.Run(tc.model, trace.Seed(seeded()))
	require.NoError(t, err)
	dot := tr.Graph().DOT()
	assert.True(t, strings.HasPrefix(dot, "digraph scg {\n"))
	for _, want := range []string{
		`n0 [label="X", shape=circle];`,
		`n1 [label="Y", shape=circle];`,
		`n3 [label="f1", shape=square, peripheries=2];`,
		`n4 [label="f2", shape=square, peripheries=2];`,
		"n0 -> n1;", "n0 -> n2;", "n1 -> n3;", "n1 -> n4;", "n2 -> n4;",
	} {
		assert.Contains(t, dot, want)
	}
	assert.Equal(t, 5, strings.Count(dot, "->"), "edges")
}

// TestMultivariateCostVirtualNode checks section 3.1's reading of a cost
// on several variables: a virtual node Z = (X1, X2, X3), drawn from a
// point mass, placed before the cost leaves every scope unchanged.
func TestMultivariateCostVirtualNode(t *testing.T) {
	direct := scgCases()[6]
	require.Equal(t, "multivariate cost", direct.name)
	virtual := func(ctx *ppl.Ctx) {
		x1 := rv(ctx, "X1")
		x2 := rv(ctx, "X2", x1)
		x3 := rv(ctx, "X3", x2)
		z := ppl.Sample(ctx, "Z", dist.Delta{Value: ad.Concat(x1, x2, x3)})
		ppl.Cost(ctx, "f", ad.RowSum(ad.Square(z)))
	}
	dt, err := trace.Run(direct.model, trace.Seed(seeded()))
	require.NoError(t, err)
	vt, err := trace.Run(virtual, trace.Seed(seeded()))
	require.NoError(t, err)
	dg, vg := dt.Graph(), vt.Graph()
	assert.Equal(t, []string{"X1", "X2", "X3"}, vg.Parents("Z"))
	assert.Equal(t, []string{"Z"}, vg.Parents("f"))
	assert.Equal(t, []string{"Z"}, vg.Scope("Z", "f"))
	for _, x := range []string{"X1", "X2", "X3"} {
		assert.Equal(t, dg.Scope(x, "f"), vg.Scope(x, "f"), "Scope(%s, f)", x)
	}
}

func TestTraceConcurrentReads(t *testing.T) {
	tr, err := trace.Run(scgCases()[5].model, trace.Seed(seeded()))
	require.NoError(t, err)
	done := make(chan []string)
	for range 4 {
		go func() {
			g := tr.Graph()
			_ = tr.Site("X")
			done <- g.Scope("X", "f2")
		}()
	}
	for range 4 {
		assert.Equal(t, []string{"A", "X"}, <-done)
	}
}
