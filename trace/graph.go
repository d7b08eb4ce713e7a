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
	index    map[string]int // nil for a small graph, searched instead
	parents  [][]int
	children [][]int
	// The storage of a small graph's nodes and edges.
	nodeBuf        [8]*ppl.Site
	parBuf, chiBuf [8][]int
	edgeBuf        [16]int
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
	g := &Graph{sites: len(sites)}
	g.nodes = g.nodeBuf[:0]
	for _, s := range sites {
		if s.Stochastic() || s.IsCost() {
			g.nodes = append(g.nodes, s)
		}
	}
	var byID map[int]int
	if len(g.nodes) > smallTrace {
		g.index = make(map[string]int, len(g.nodes))
		byID = make(map[int]int)
		for i, s := range g.nodes {
			g.index[s.Addr] = i
			if s.Stochastic() && s.ID >= 0 {
				byID[s.ID] = i
			}
		}
	}
	// The edges, as (parent, child) pairs in increasing child order.
	var buf [32]int
	edges := buf[:0]
	var ids [16]int
	for i, s := range g.nodes {
		for _, id := range s.Parents.AppendIDs(ids[:0]) {
			// Ids of sites the trace does not hold (blocked ones, or ids
			// of another run) are not nodes of this graph.
			p, ok := byID[id]
			if byID == nil {
				p, ok = g.nodeOfID(id)
			}
			if ok && p != i {
				edges = append(edges, p, i)
			}
		}
	}
	g.link(edges)
	// Provenance ids follow execution order, so parents are already
	// sorted; children are appended in increasing child index.
	return g
}

// nodeOfID returns the node of the sample site with id, the last one if
// several have it, and whether there is one.
func (g *Graph) nodeOfID(id int) (int, bool) {
	for i := len(g.nodes) - 1; i >= 0; i-- {
		if s := g.nodes[i]; s.Stochastic() && s.ID >= 0 && s.ID == id {
			return i, true
		}
	}
	return 0, false
}

// link sets the parents and children from the edges, in the graph's own
// buffers when they are large enough.
func (g *Graph) link(edges []int) {
	n := len(g.nodes)
	if n > len(g.parBuf) || len(edges) > len(g.edgeBuf) {
		g.parents, g.children = make([][]int, n), make([][]int, n)
		for k := 0; k < len(edges); k += 2 {
			p, i := edges[k], edges[k+1]
			g.parents[i] = append(g.parents[i], p)
			g.children[p] = append(g.children[p], i)
		}
		return
	}
	// Each list is a run of edgeBuf; the edges of a child are consecutive.
	g.parents, g.children = g.parBuf[:n], g.chiBuf[:n]
	back := g.edgeBuf[:0]
	for k := 0; k < len(edges); {
		i, start := edges[k+1], len(back)
		for ; k < len(edges) && edges[k+1] == i; k += 2 {
			back = append(back, edges[k])
		}
		g.parents[i] = back[start:len(back):len(back)]
	}
	for p := range n {
		start := len(back)
		for k := 0; k < len(edges); k += 2 {
			if edges[k] == p {
				back = append(back, edges[k+1])
			}
		}
		if len(back) > start {
			g.children[p] = back[start:len(back):len(back)]
		}
	}
}

// node returns the node of addr and whether there is one.
func (g *Graph) node(addr string) (int, bool) {
	if g.index != nil {
		i, ok := g.index[addr]
		return i, ok
	}
	for i := len(g.nodes) - 1; i >= 0; i-- {
		if g.nodes[i].Addr == addr {
			return i, true
		}
	}
	return 0, false
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
	if i, ok := g.node(addr); ok {
		return g.nodes[i]
	}
	return nil
}

// Parents returns the random variables that node addr depends on
// directly: Pa_x for a random variable, the arguments of a cost.
func (g *Graph) Parents(addr string) []string {
	i, ok := g.node(addr)
	if !ok {
		return nil
	}
	return g.names(g.parents[i])
}

// Children returns the nodes (random variables and costs) that depend
// directly on node addr.
func (g *Graph) Children(addr string) []string {
	i, ok := g.node(addr)
	if !ok {
		return nil
	}
	return g.names(g.children[i])
}

// Ancestors returns An_x: the random variables from which node addr is
// reachable, itself excluded.
func (g *Graph) Ancestors(addr string) []string {
	i, ok := g.node(addr)
	if !ok {
		return nil
	}
	return g.names(g.walk(i, g.parents, nil))
}

// Descendants returns the nodes (random variables and costs) reachable
// from node addr, itself excluded.
func (g *Graph) Descendants(addr string) []string {
	i, ok := g.node(addr)
	if !ok {
		return nil
	}
	return g.names(g.walk(i, g.children, nil))
}

// CostsFrom returns the costs reachable from node addr: the costs whose
// expectation the random variable addr influences.
func (g *Graph) CostsFrom(addr string) []string {
	i, ok := g.node(addr)
	if !ok {
		return nil
	}
	var buf [16]int
	costs := g.walk(i, g.children, buf[:0])
	n := 0
	for _, j := range costs {
		if g.nodes[j].IsCost() {
			costs[n] = j
			n++
		}
	}
	return g.names(costs[:n])
}

// Frontier returns Fr^f_V of section 3.1 and footnote 2: the subset of the
// random variables V from which the cost f is reachable through random
// variables not in V (directly, or by a path whose inner nodes all lie
// outside V). Addresses in V that are not random variables of the graph
// are ignored. It returns nil if f is not a cost of the graph.
func (g *Graph) Frontier(v []string, f string) []string {
	fi, ok := g.node(f)
	if !ok || !g.nodes[fi].IsCost() {
		return nil
	}
	inV := make([]bool, len(g.nodes))
	for _, a := range v {
		if i, ok := g.node(a); ok && g.nodes[i].Stochastic() {
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
	xi, ok := g.node(x)
	if !ok || !g.nodes[xi].Stochastic() {
		return nil
	}
	fi, ok := g.node(f)
	if !ok || !g.nodes[fi].IsCost() {
		return nil
	}
	inV := make([]bool, len(g.nodes))
	inV[xi] = true
	for _, a := range g.walk(xi, g.parents, nil) {
		inV[a] = true
	}
	return g.names(g.frontier(inV, fi))
}

// walk appends to out the nodes reachable from i along edges, i excluded,
// in increasing index order, and returns the extended slice.
func (g *Graph) walk(i int, edges [][]int, out []int) []int {
	var seenBuf [64]bool
	seen := seenBuf[:0]
	if len(g.nodes) > len(seenBuf) {
		seen = make([]bool, len(g.nodes))
	}
	seen = seen[:len(g.nodes)]
	var stackBuf [16]int
	stack := append(stackBuf[:0], i)
	start := len(out)
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
	slices.Sort(out[start:])
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
