package q

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/backpropq/backpropq/trace"
)

// Reduction selects how a per-cost Backprop-Q network is reduced to a
// directed rooted spanning tree (section 3.2, Figure 3(c) and (d)), so that
// each Q-node receives exactly one copy of each cost.
type Reduction uint8

const (
	// ReduceNone keeps every equivalent update rule; the rules of one cost
	// source are averaged.
	ReduceNone Reduction = iota
	// ReduceShortest keeps, for each Q-node, the rule with the shortest path
	// to the cost (Figure 3(c)): the cost itself when the site feeds it
	// directly; ties go to the child first in execution order.
	ReduceShortest
	// ReduceChain keeps the rule with the longest path to the cost (ties
	// go to the child that comes last in execution order), so the cost is
	// used directly only when no child reaches it: Figure 3(d)'s chain,
	// Figure 6(b), which removes the edges Q_fa -> Q_X2 and Q_fb -> Q_X3,
	// and Figure 7(b), which removes Q^f2_Y2 -> Q^f2_A. Per-cost networks
	// then share longer chains, which lets more of them merge.
	ReduceChain
)

// String returns the reduction's name.
func (r Reduction) String() string {
	switch r {
	case ReduceNone:
		return "none"
	case ReduceShortest:
		return "shortest"
	case ReduceChain:
		return "chain"
	}
	return "Reduction(" + strconv.Itoa(int(r)) + ")"
}

// Options configure [Build].
type Options struct {
	// Merge merges the per-cost networks wherever Theorem 3 allows: the
	// Q-functions of several cost sources at a site become one (their sum)
	// when every network that takes them as an update target can express
	// its own target through the sum. False keeps one Q-node per (site,
	// cost source).
	Merge bool
	// Reduce reduces each per-cost network to a rooted spanning tree before
	// merging.
	Reduce Reduction
	// InlineCosts uses a cost directly in place of a Q-node whose only cost
	// source is a cost that is a function of the site's scope (appendix 3:
	// "we do not have to construct a new Q-function for the immediate cost
	// but use it directly"); such a Q-function is known exactly.
	InlineCosts bool
}

// Ref names the origin of an update-rule edge: a Q-node of the network
// (Node >= 0) or a cost, the root Q_f of footnote 3 (Node == -1, Cost set).
type Ref struct {
	Node int
	Cost string
}

// IsCost reports whether r is a cost.
func (r Ref) IsCost() bool { return r.Node < 0 }

// Group is the part of a Q-node's update rule that carries one set of cost
// sources: its target is the average of the values of From, which are all
// equivalent rules for exactly the sources in Sources.
type Group struct {
	Sources []string
	From    []Ref
}

// Node is a Q-function Q^S_X(Sc_X) of the Backprop-Q network: the expected
// sum of the costs S (its sources) given the values of its scope. Its
// sample-update target is the sum over its groups of the average of each
// group's values (section 3.2: average within a cost source, sum across).
type Node struct {
	// Index is the node's position in [Network.Nodes].
	Index int
	// Site is the address of the stochastic site X.
	Site string
	// Sources are the cost addresses whose expected sum the node carries,
	// in execution order.
	Sources []string
	// Scope is Sc_X, the union over the sources f of Sc^f_X
	// ([trace.Graph.Scope]), in execution order.
	Scope []string
	// Groups define the update rule.
	Groups []Group
	// Depth is the length of the longest path from the node to a root
	// (a cost): l_{Q_X} of Theorem 2.
	Depth int
}

// Network is a Backprop-Q network (Q, G_Q, R) built from a stochastic
// computation graph. Nodes are in a topological order of G_Q from the roots
// (the costs) down: every node comes after the nodes its update rule reads.
// A Network is immutable and safe for concurrent use.
type Network struct {
	Nodes   []*Node
	Options Options

	shape  string
	sites  []string
	costs  []string
	local  map[string][]Ref
	graph  *trace.Graph
	inline map[string]bool
}

// Sites returns the addresses of the graph's stochastic sites, in execution
// order.
func (n *Network) Sites() []string { return slices.Clone(n.sites) }

// Costs returns the addresses of the graph's costs, in execution order.
func (n *Network) Costs() []string { return slices.Clone(n.costs) }

// Shape returns the trace shape the network was built for: the sequence of
// node addresses, kinds and parents of the graph.
func (n *Network) Shape() string { return n.shape }

// Local returns the terms whose sum is the total local cost of site addr
// (Algorithm 1, line 16): the site's Q-nodes and the costs inlined in their
// place ([Options.InlineCosts]). A site that reaches no cost has none.
func (n *Network) Local(addr string) []Ref { return slices.Clone(n.local[addr]) }

// NodesAt returns the Q-nodes of site addr.
func (n *Network) NodesAt(addr string) []*Node {
	var out []*Node
	for _, r := range n.local[addr] {
		if !r.IsCost() {
			out = append(out, n.Nodes[r.Node])
		}
	}
	return out
}

// ShapeOf returns the shape key of g: its nodes in execution order with
// their kinds and parents. Two traces of one shape give the same network.
func ShapeOf(g *trace.Graph) string {
	var b strings.Builder
	for _, a := range g.Nodes() {
		if g.Site(a).Stochastic() {
			b.WriteString("s ")
		} else {
			b.WriteString("c ")
		}
		b.WriteString(strconv.Quote(a))
		for _, p := range g.Parents(a) {
			b.WriteByte(' ')
			b.WriteString(strconv.Quote(p))
		}
		b.WriteByte('\n')
	}
	return b.String()
}

// pcKey is a per-cost Q-node: site index and cost index.
type pcKey struct{ site, cost int }

// Build returns the Backprop-Q network of g: one Q-node per stochastic site
// and cost reachable from it (or per merged group of costs), with the
// update rules of section 3, reduced and merged as opts says. It returns an
// error if g is nil.
func Build(g *trace.Graph, opts Options) (*Network, error) {
	if g == nil {
		return nil, fmt.Errorf("q: Build: nil graph")
	}
	if opts.Reduce > ReduceChain {
		return nil, fmt.Errorf("q: Build: unknown reduction %d", opts.Reduce)
	}
	sites := g.Stochastic()
	costs := g.Costs()
	siteIdx := make(map[string]int, len(sites))
	for i, s := range sites {
		siteIdx[s] = i
	}
	costIdx := make(map[string]int, len(costs))
	for i, c := range costs {
		costIdx[c] = i
	}
	// reach[x] lists the costs reachable from site x; reaches tests it.
	reach := make([][]int, len(sites))
	reaches := make([]map[int]bool, len(sites))
	for i, s := range sites {
		reaches[i] = map[int]bool{}
		for _, c := range g.CostsFrom(s) {
			reach[i] = append(reach[i], costIdx[c])
			reaches[i][costIdx[c]] = true
		}
	}
	// Per-cost edges: edge target -1-c for the cost c itself, else a site.
	edges := make(map[pcKey][]int)
	for i, s := range sites {
		for _, f := range reach[i] {
			var e []int
			for _, ch := range g.Children(s) {
				if j, ok := siteIdx[ch]; ok {
					if reaches[j][f] {
						e = append(e, j)
					}
				} else if costIdx[ch] == f {
					e = append(e, -1-f)
				}
			}
			edges[pcKey{i, f}] = e
		}
	}
	// Depths in the per-cost networks; sites later in execution order are
	// never ancestors of earlier ones, so a reverse sweep sees children
	// first.
	depth := make(map[pcKey]int)
	depthOf := func(e, f int) int {
		if e < 0 {
			return 0
		}
		return depth[pcKey{e, f}]
	}
	for i := len(sites) - 1; i >= 0; i-- {
		for _, f := range reach[i] {
			k := pcKey{i, f}
			e := edges[k]
			switch opts.Reduce {
			case ReduceShortest:
				best := e[0]
				for _, c := range e[1:] {
					if depthOf(c, f) < depthOf(best, f) {
						best = c
					}
				}
				e = []int{best}
			case ReduceChain:
				best := e[0]
				for _, c := range e[1:] {
					if d, db := depthOf(c, f), depthOf(best, f); d > db || d == db && c > best {
						best = c
					}
				}
				e = []int{best}
			}
			edges[k] = e
			d := 0
			for _, c := range e {
				d = max(d, depthOf(c, f))
			}
			depth[k] = d + 1
		}
	}

	// Partition refinement: block[i][f] is the merged Q-node of cost f at
	// site i. Start from the coarsest partition (everything merged) or the
	// finest (per-cost networks), then split a child's block whenever a
	// parent could not express its own target through it: every cost of
	// the block must have the same rule at the parent, and lie in one of
	// the parent's blocks (Theorem 3, applied until nothing changes).
	block := make([]map[int]int, len(sites))
	for i := range sites {
		block[i] = map[int]int{}
		for k, f := range reach[i] {
			if opts.Merge {
				block[i][f] = 0
			} else {
				block[i][f] = k
			}
		}
	}
	signature := func(i, f int) string {
		var b strings.Builder
		b.WriteString(strconv.Itoa(block[i][f]))
		for _, e := range edges[pcKey{i, f}] {
			if e < 0 {
				fmt.Fprintf(&b, " c%d", -1-e)
			} else {
				fmt.Fprintf(&b, " s%d.%d", e, block[e][f])
			}
		}
		return b.String()
	}
	if opts.Merge {
		for changed := true; changed; {
			changed = false
			for i := range sites {
				for _, ch := range g.Children(sites[i]) {
					j, ok := siteIdx[ch]
					if !ok {
						continue
					}
					if splitBlocks(block[j], reach[j], func(f int) string {
						if !reaches[i][f] {
							return "-"
						}
						return signature(i, f)
					}) {
						changed = true
					}
				}
			}
		}
	}

	// Nodes, from the last site to the first so that the nodes an update
	// rule reads already exist.
	net := &Network{Options: opts, shape: ShapeOf(g), sites: sites, costs: costs,
		local: map[string][]Ref{}, graph: g, inline: map[string]bool{}}
	nodeOf := make(map[[2]int]int) // (site, block) -> node index
	refOf := func(e, f int) Ref {
		if e < 0 {
			return Ref{Node: -1, Cost: costs[-1-e]}
		}
		return Ref{Node: nodeOf[[2]int{e, block[e][f]}]}
	}
	for i := len(sites) - 1; i >= 0; i-- {
		x := sites[i]
		an := map[string]bool{x: true}
		for _, a := range g.Ancestors(x) {
			an[a] = true
		}
		var ids []int
		members := map[int][]int{}
		for _, f := range reach[i] {
			b := block[i][f]
			if _, ok := members[b]; !ok {
				ids = append(ids, b)
			}
			members[b] = append(members[b], f)
		}
		for _, b := range ids {
			fs := members[b]
			if opts.InlineCosts && len(fs) == 1 {
				f := fs[0]
				e := edges[pcKey{i, f}]
				if len(e) == 1 && e[0] == -1-f && subset(g.Parents(costs[f]), an) {
					nodeOf[[2]int{i, b}] = -1
					net.local[x] = append(net.local[x], Ref{Node: -1, Cost: costs[f]})
					net.inline[x+"\x00"+costs[f]] = true
					continue
				}
			}
			nd := &Node{Index: len(net.Nodes), Site: x}
			scope := map[string]bool{}
			groupAt := map[string]int{}
			for _, f := range fs {
				nd.Sources = append(nd.Sources, costs[f])
				for _, a := range g.Scope(x, costs[f]) {
					scope[a] = true
				}
				var refs []Ref
				var key strings.Builder
				for _, e := range edges[pcKey{i, f}] {
					r := refOf(e, f)
					if r.Node == -1 && e >= 0 {
						// The child's Q-node for f was inlined: its
						// cost is the value.
						r = Ref{Node: -1, Cost: costs[f]}
					}
					refs = append(refs, r)
					fmt.Fprintf(&key, "%d/%s;", r.Node, r.Cost)
				}
				gi, ok := groupAt[key.String()]
				if !ok {
					gi = len(nd.Groups)
					groupAt[key.String()] = gi
					nd.Groups = append(nd.Groups, Group{From: refs})
				}
				nd.Groups[gi].Sources = append(nd.Groups[gi].Sources, costs[f])
				nd.Depth = max(nd.Depth, depth[pcKey{i, f}])
			}
			for _, s := range g.Nodes() {
				if scope[s] {
					nd.Scope = append(nd.Scope, s)
				}
			}
			nodeOf[[2]int{i, b}] = nd.Index
			net.Nodes = append(net.Nodes, nd)
			net.local[x] = append(net.local[x], Ref{Node: nd.Index})
		}
	}
	// Depths count inlined costs as roots: recompute from the rules.
	for _, nd := range net.Nodes {
		nd.Depth = 0
		for _, gr := range nd.Groups {
			for _, r := range gr.From {
				d := 0
				if !r.IsCost() {
					d = net.Nodes[r.Node].Depth
				}
				nd.Depth = max(nd.Depth, d+1)
			}
		}
	}
	return net, nil
}

// splitBlocks refines the partition block (cost -> block id) of the costs
// fs so that costs of one block share their key; it reports whether a
// block was split.
func splitBlocks(block map[int]int, fs []int, key func(f int) string) bool {
	type bk struct {
		b int
		k string
	}
	next := 0
	for _, b := range block {
		next = max(next, b+1)
	}
	first := map[int]string{}
	assigned := map[bk]int{}
	changed := false
	for _, f := range fs {
		b := block[f]
		k := key(f)
		if k0, ok := first[b]; !ok {
			first[b] = k
			assigned[bk{b, k}] = b
			continue
		} else if k0 == k {
			continue
		}
		id, ok := assigned[bk{b, k}]
		if !ok {
			id = next
			next++
			assigned[bk{b, k}] = id
		}
		block[f] = id
		changed = true
	}
	return changed
}

func subset(xs []string, set map[string]bool) bool {
	for _, x := range xs {
		if !set[x] {
			return false
		}
	}
	return true
}

// Cache holds networks by trace shape (the sequence of addresses, kinds and
// parents of the graph), so a training loop builds a network once per
// shape. The zero value is ready to use with zero [Options]; a Cache is safe
// for concurrent use.
type Cache struct {
	Options Options

	mu   sync.Mutex
	nets map[string]*Network
}

// Network returns the network of g's shape, building it on first sight.
func (c *Cache) Network(g *trace.Graph) (*Network, error) {
	if g == nil {
		return nil, fmt.Errorf("q: Cache: nil graph")
	}
	key := ShapeOf(g)
	c.mu.Lock()
	defer c.mu.Unlock()
	if n, ok := c.nets[key]; ok {
		return n, nil
	}
	n, err := Build(g, c.Options)
	if err != nil {
		return nil, err
	}
	if c.nets == nil {
		c.nets = map[string]*Network{}
	}
	c.nets[key] = n
	return n, nil
}

// Len returns the number of shapes cached.
func (c *Cache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.nets)
}

// DOT returns the stochastic computation graph and the Backprop-Q network
// side by side in Graphviz's DOT language: the SCG in one cluster (circles
// for random variables, double squares for costs), the network in another
// with one box per Q-node, labelled Q^{sources}_{site}(scope), and its
// update-rule edges drawn from the value read to the node updated,
// labelled by the cost sources they carry.
func (n *Network) DOT() string {
	var b strings.Builder
	g := n.graph
	b.WriteString("digraph backpropq {\n\tcompound=true;\n\tsubgraph cluster_scg {\n\t\tlabel=\"SCG\";\n")
	id := map[string]int{}
	for i, a := range g.Nodes() {
		id[a] = i
		if g.Site(a).Stochastic() {
			fmt.Fprintf(&b, "\t\ts%d [label=%q, shape=circle];\n", i, a)
		} else {
			fmt.Fprintf(&b, "\t\ts%d [label=%q, shape=square, peripheries=2];\n", i, a)
		}
	}
	for _, a := range g.Nodes() {
		for _, c := range g.Children(a) {
			fmt.Fprintf(&b, "\t\ts%d -> s%d;\n", id[a], id[c])
		}
	}
	b.WriteString("\t}\n\tsubgraph cluster_q {\n\t\tlabel=\"Backprop-Q network\";\n")
	for i, c := range n.costs {
		fmt.Fprintf(&b, "\t\tf%d [label=%q, shape=square, peripheries=2];\n", i, "Q_"+c)
	}
	for _, nd := range n.Nodes {
		fmt.Fprintf(&b, "\t\tq%d [label=%q, shape=box];\n", nd.Index,
			fmt.Sprintf("Q^{%s}_%s(%s)", strings.Join(nd.Sources, ","), nd.Site, strings.Join(nd.Scope, ",")))
	}
	costID := map[string]int{}
	for i, c := range n.costs {
		costID[c] = i
	}
	for _, nd := range n.Nodes {
		for _, gr := range nd.Groups {
			label := strings.Join(gr.Sources, ",")
			for _, r := range gr.From {
				if r.IsCost() {
					fmt.Fprintf(&b, "\t\tf%d -> q%d [label=%q];\n", costID[r.Cost], nd.Index, label)
				} else {
					fmt.Fprintf(&b, "\t\tq%d -> q%d [label=%q];\n", r.Node, nd.Index, label)
				}
			}
		}
	}
	b.WriteString("\t}\n}\n")
	return b.String()
}

// String returns a one-line-per-node description of the network:
// "Q^{sources}_site(scope) <- group | group", each group listing what it
// averages.
func (n *Network) String() string {
	var b strings.Builder
	for _, nd := range n.Nodes {
		fmt.Fprintf(&b, "Q^{%s}_%s(%s) <-", strings.Join(nd.Sources, ","), nd.Site, strings.Join(nd.Scope, ","))
		for gi, gr := range nd.Groups {
			if gi > 0 {
				b.WriteString(" +")
			}
			var parts []string
			for _, r := range gr.From {
				if r.IsCost() {
					parts = append(parts, r.Cost)
				} else {
					m := n.Nodes[r.Node]
					parts = append(parts, fmt.Sprintf("Q^{%s}_%s", strings.Join(m.Sources, ","), m.Site))
				}
			}
			if len(parts) > 1 {
				fmt.Fprintf(&b, " avg(%s)", strings.Join(parts, ", "))
			} else {
				fmt.Fprintf(&b, " %s", parts[0])
			}
		}
		b.WriteByte('\n')
	}
	return b.String()
}
