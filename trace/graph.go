package trace

import (
	"slices"

	"github.com/backpropq/backpropq/ppl"
)

// Graph is the stochastic computation graph of a trace as the paper's
// section 2 defines it: the DAG G_X on the random variables (the sample
// sites), extended by the costs (the cost and observe sites) as sinks. Its
// edges come from provenance: X -> Y when Y's parents (the provenance of
// Y's distribution parameters) hold X, and X -> f when the provenance of
// the cost f holds X. Parameters and deterministic sites are absorbed into
// the edges, as the paper absorbs deterministic nodes into p_x and f_i.
//
// Nodes are named by address. Every method that returns addresses returns
// them in execution order, in a new slice; an address that is not a node
// of the graph yields nil. A Graph is immutable and safe for concurrent
// use.
type Graph struct {
	sites    int // the number of trace sites it was built from
	nodes    []*ppl.Site
	index    map[string]int
	parents  [][]int
	children [][]int
}

// Graph returns the stochastic computation graph of t, built on first use
// and cached.
func (t *Trace) Graph() *Graph {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.graph == nil || t.graph.sites != len(t.sites) {
		t.graph = newGraph(t.sites)
	}
	return t.graph
}

func newGraph(sites []*ppl.Site) *Graph {
	g := &Graph{sites: len(sites), index: make(map[string]int)}
	byID := make(map[int]int)
	for _, s := range sites {
		if !s.Stochastic() && !s.IsCost() {
			continue
		}
		i := len(g.nodes)
		g.nodes = append(g.nodes, s)
		g.index[s.Addr] = i
		if s.Stochastic() && s.ID >= 0 {
			byID[s.ID] = i
		}
	}
	g.parents = make([][]int, len(g.nodes))
	g.children = make([][]int, len(g.nodes))
	for i, s := range g.nodes {
		for _, id := range s.Parents.IDs() {
			// Ids of sites the trace does not hold (blocked ones, or ids
			// of another run) are not nodes of this graph.
			if p, ok := byID[id]; ok && p != i {
				g.parents[i] = append(g.parents[i], p)
				g.children[p] = append(g.children[p], i)
			}
		}
	}
	// Provenance ids follow execution order, so parents are already
	// sorted; children are appended in increasing child index.
	return g
}

// Len returns the number of nodes: random variables and costs.
func (g *Graph) Len() int { return len(g.nodes) }

// Nodes returns the addresses of all nodes.
func (g *Graph) Nodes() []string { return g.names(g.all(func(*ppl.Site) bool { return true })) }

// Stochastic returns the addresses of the random variables.
func (g *Graph) Stochastic() []string { return g.names(g.all((*ppl.Site).Stochastic)) }

// Costs returns the addresses of the costs.
func (g *Graph) Costs() []string { return g.names(g.all((*ppl.Site).IsCost)) }

// Site returns the site of node addr, or nil.
func (g *Graph) Site(addr string) *ppl.Site {
	if i, ok := g.index[addr]; ok {
		return g.nodes[i]
	}
	return nil
}

// Parents returns the random variables that node addr depends on
// directly: Pa_x for a random variable, the arguments of a cost.
func (g *Graph) Parents(addr string) []string {
	i, ok := g.index[addr]
	if !ok {
		return nil
	}
	return g.names(g.parents[i])
}

// Children returns the nodes (random variables and costs) that depend
// directly on node addr.
func (g *Graph) Children(addr string) []string {
	i, ok := g.index[addr]
	if !ok {
		return nil
	}
	return g.names(g.children[i])
}

// Ancestors returns An_x: the random variables from which node addr is
// reachable, itself excluded.
func (g *Graph) Ancestors(addr string) []string {
	i, ok := g.index[addr]
	if !ok {
		return nil
	}
	return g.names(g.walk(i, g.parents))
}

// Descendants returns the nodes (random variables and costs) reachable
// from node addr, itself excluded.
func (g *Graph) Descendants(addr string) []string {
	i, ok := g.index[addr]
	if !ok {
		return nil
	}
	return g.names(g.walk(i, g.children))
}

// CostsFrom returns the costs reachable from node addr: the costs whose
// expectation the random variable addr influences.
func (g *Graph) CostsFrom(addr string) []string {
	i, ok := g.index[addr]
	if !ok {
		return nil
	}
	var costs []int
	for _, j := range g.walk(i, g.children) {
		if g.nodes[j].IsCost() {
			costs = append(costs, j)
		}
	}
	return g.names(costs)
}

// Frontier returns Fr^f_V of section 3.1 and footnote 2: the subset of the
// random variables V from which the cost f is reachable through random
// variables not in V (directly, or by a path whose inner nodes all lie
// outside V). Addresses in V that are not random variables of the graph
// are ignored. It returns nil if f is not a cost of the graph.
func (g *Graph) Frontier(v []string, f string) []string {
	fi, ok := g.index[f]
	if !ok || !g.nodes[fi].IsCost() {
		return nil
	}
	inV := make([]bool, len(g.nodes))
	for _, a := range v {
		if i, ok := g.index[a]; ok && g.nodes[i].Stochastic() {
			inV[i] = true
		}
	}
	return g.names(g.frontier(inV, fi))
}

// frontier walks back from node f: a parent in V is a frontier node and
// stops the walk; a parent outside V reaches f through nodes outside V, so
// the walk goes on through it.
func (g *Graph) frontier(inV []bool, f int) []int {
	seen := make([]bool, len(g.nodes))
	var front []int
	stack := []int{f}
	seen[f] = true
	for len(stack) > 0 {
		n := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		for _, p := range g.parents[n] {
			if seen[p] {
				continue
			}
			seen[p] = true
			if inV[p] {
				front = append(front, p)
			} else {
				stack = append(stack, p)
			}
		}
	}
	slices.Sort(front)
	return front
}

// Scope returns Sc_x for the cost f: Fr^f of An_x ∪ {x} (equations 1 and
// 2), the scope of the Q-function Q^f_x. It holds x whenever f is
// reachable from x, and those ancestors of x from which a path bypasses x
// to reach f (the enlarged scope of section 3.1). It returns nil if x is
// not a random variable or f not a cost of the graph.
func (g *Graph) Scope(x, f string) []string {
	xi, ok := g.index[x]
	if !ok || !g.nodes[xi].Stochastic() {
		return nil
	}
	fi, ok := g.index[f]
	if !ok || !g.nodes[fi].IsCost() {
		return nil
	}
	inV := make([]bool, len(g.nodes))
	inV[xi] = true
	for _, a := range g.walk(xi, g.parents) {
		inV[a] = true
	}
	return g.names(g.frontier(inV, fi))
}

// walk returns the nodes reachable from i along edges, i excluded, in
// increasing index order.
func (g *Graph) walk(i int, edges [][]int) []int {
	seen := make([]bool, len(g.nodes))
	var out []int
	stack := []int{i}
	seen[i] = true
	for len(stack) > 0 {
		n := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		for _, m := range edges[n] {
			if !seen[m] {
				seen[m] = true
				out = append(out, m)
				stack = append(stack, m)
			}
		}
	}
	slices.Sort(out)
	return out
}

func (g *Graph) all(keep func(*ppl.Site) bool) []int {
	var out []int
	for i, s := range g.nodes {
		if keep(s) {
			out = append(out, i)
		}
	}
	return out
}

func (g *Graph) names(idx []int) []string {
	if len(idx) == 0 {
		return nil
	}
	out := make([]string, len(idx))
	for k, i := range idx {
		out[k] = g.nodes[i].Addr
	}
	return out
}
