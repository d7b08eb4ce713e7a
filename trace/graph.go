package trace

import (
	"slices"

	"github.com/backpropq/backpropq/internal/arena"

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
	// The storage of the nodes and edges: buffers for a small graph,
	// and the memory a graph reused from an earlier run of its tape
	// keeps (see [Trace]).
	nodeBuf        [8]*ppl.Site
	parBuf, chiBuf [8][]int
	edgeBuf        [32]int
	pairBuf        [32]int
	edgeStore      []int
	pairs          []int
	counts         []int
	ids            []int
	byAddr         map[string]int
	byID           map[int]int
}

// Graph returns the stochastic computation graph of t, built on first use
// and cached.
func (t *Trace) Graph() *Graph {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.graph == nil || t.graph.sites != len(t.sites) {
		t.graph = graphRecords.Get(t.tape).build(t.sites)
	}
	return t.graph
}

// graphRecords are the graphs of the traces of each tape.
var graphRecords = arena.NewKey[Graph]()

// build makes g the graph of sites, reusing the memory g holds from an
// earlier build, and returns g.
func (g *Graph) build(sites []*ppl.Site) *Graph {
	g.sites = len(sites)
	if cap(g.nodes) < len(g.nodeBuf) {
		g.nodes = g.nodeBuf[:0]
	}
	g.nodes = g.nodes[:0]
	for _, s := range sites {
		if s.Stochastic() || s.IsCost() {
			g.nodes = append(g.nodes, s)
		}
	}
	g.index = nil
	if len(g.nodes) > smallTrace {
		if g.byAddr == nil {
			g.byAddr, g.byID = make(map[string]int, len(g.nodes)), make(map[int]int)
		}
		clear(g.byAddr)
		clear(g.byID)
		g.index = g.byAddr
		for i, s := range g.nodes {
			g.index[s.Addr] = i
			if s.Stochastic() && s.ID >= 0 {
				g.byID[s.ID] = i
			}
		}
	}
	// The edges, as (parent, child) pairs in increasing child order.
	if cap(g.pairs) < len(g.pairBuf) {
		g.pairs = g.pairBuf[:0]
	}
	edges := g.pairs[:0]
	for i, s := range g.nodes {
		g.ids = s.Parents.AppendIDs(g.ids[:0])
		for _, id := range g.ids {
			// Ids of sites the trace does not hold (blocked ones, or ids
			// of another run) are not nodes of this graph.
			var p int
			var ok bool
			if g.index != nil {
				p, ok = g.byID[id]
			} else {
				p, ok = g.nodeOfID(id)
			}
			if ok && p != i {
				edges = append(edges, p, i)
			}
		}
	}
	g.pairs = edges
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

// link sets the parents and children from the edges (pairs sorted by
// child), as runs of one backing slice: the parents of each child, then
// the children of each parent, in increasing order.
func (g *Graph) link(edges []int) {
	n, e := len(g.nodes), len(edges)/2
	g.parents = lists(g.parents, g.parBuf[:], n)
	g.children = lists(g.children, g.chiBuf[:], n)
	if cap(g.edgeStore) < len(g.edgeBuf) {
		g.edgeStore = g.edgeBuf[:]
	}
	if cap(g.edgeStore) < 2*e {
		g.edgeStore = make([]int, 2*e)
	}
	back := g.edgeStore[:2*e]
	// Parents: the edges of a child are consecutive.
	for k := 0; k < e; {
		i, start := edges[2*k+1], k
		for ; k < e && edges[2*k+1] == i; k++ {
			back[k] = edges[2*k]
		}
		g.parents[i] = back[start:k:k]
	}
	// Children: counted per parent, then placed in edge order.
	if cap(g.counts) < n+1 {
		g.counts = make([]int, n+1)
	}
	next := g.counts[:n+1]
	clear(next)
	for k := range e {
		next[edges[2*k]+1]++
	}
	for p := range n {
		next[p+1] += next[p]
	}
	kids := back[e:]
	for p := range n {
		if c := next[p+1] - next[p]; c > 0 {
			g.children[p] = kids[next[p]:next[p]:next[p+1]]
		}
	}
	for k := range e {
		p := edges[2*k]
		g.children[p] = append(g.children[p], edges[2*k+1])
	}
}

// lists returns n empty lists in have's memory, or buf's, or new memory.
func lists(have, buf [][]int, n int) [][]int {
	switch {
	case cap(have) >= n:
		have = have[:n]
	case n <= len(buf):
		have = buf[:n]
	default:
		have = make([][]int, n)
	}
	clear(have)
	return have
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
func (g *Graph) Descendants(addr string) []string { return g.AppendDescendants(nil, addr) }

// AppendDescendants appends [Graph.Descendants] of addr to dst and
// returns the extended slice.
func (g *Graph) AppendDescendants(dst []string, addr string) []string {
	i, ok := g.node(addr)
	if !ok {
		return dst
	}
	var buf [16]int
	return g.appendNames(dst, g.walk(i, g.children, buf[:0]))
}

// CostsFrom returns the costs reachable from node addr: the costs whose
// expectation the random variable addr influences.
func (g *Graph) CostsFrom(addr string) []string { return g.AppendCostsFrom(nil, addr) }

// AppendCostsFrom appends [Graph.CostsFrom] of addr to dst and returns
// the extended slice.
func (g *Graph) AppendCostsFrom(dst []string, addr string) []string {
	i, ok := g.node(addr)
	if !ok {
		return dst
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
	return g.appendNames(dst, costs[:n])
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

// appendNames appends the addresses of the nodes idx to dst.
func (g *Graph) appendNames(dst []string, idx []int) []string {
	for _, i := range idx {
		dst = append(dst, g.nodes[i].Addr)
	}
	return dst
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
