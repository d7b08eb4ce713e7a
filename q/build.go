package q

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/backpropq/backpropq/trace"
)

// Build returns the Backprop-Q network of g: one Q-node per stochastic site
// and cost reachable from it (or per merged group of costs), with the
// update rules of section 3, reduced and merged as opts says. It returns an
// error if g is nil.
//
// It goes in four steps: the per-cost networks (each site's rule for each
// cost it reaches reads its children's Q-nodes for that cost, or the cost
// itself), their reduction to spanning trees (opts.Reduce), the merge of a
// site's costs into as few Q-nodes as Theorem 3 allows (opts.Merge), and
// the nodes with their scopes and grouped rules.
func Build(g *trace.Graph, opts NetworkOptions) (*Network, error) {
	if g == nil {
		return nil, fmt.Errorf("q: Build: nil graph")
	}
	if opts.Reduce > ReduceChain {
		return nil, fmt.Errorf("q: Build: unknown reduction %d", opts.Reduce)
	}
	b := newBuilder(g, opts)
	b.perCost()
	b.reduce()
	if opts.Merge {
		b.merge()
	}
	return b.network(), nil
}

// source is what one edge of a per-cost network reads: the Q-node of a
// child site for the same cost, or the cost itself (the root Q_f of
// footnote 3).
type source struct {
	site   int // the child site's index, when not isCost
	isCost bool
}

// perCostNode is a Q-node of a per-cost network: a site and a cost, by
// index.
type perCostNode struct{ site, cost int }

// builder holds the state of one [Build].
type builder struct {
	g       *trace.Graph
	opts    NetworkOptions
	sites   []string
	costs   []string
	siteIdx map[string]int
	costIdx map[string]int
	// reach[i] lists the costs reachable from site i; reaches[i] tests it.
	reach   [][]int
	reaches []map[int]bool
	// edges are the rules of the per-cost networks and depth the nodes'
	// depths there.
	edges map[perCostNode][]source
	depth map[perCostNode]int
	// block[i][f] is the merged Q-node of cost f at site i.
	block []map[int]int
}

// newBuilder indexes g's sites and costs and the costs each site reaches.
func newBuilder(g *trace.Graph, opts NetworkOptions) *builder {
	b := &builder{g: g, opts: opts, sites: g.Stochastic(), costs: g.Costs(),
		siteIdx: map[string]int{}, costIdx: map[string]int{},
		edges: map[perCostNode][]source{}, depth: map[perCostNode]int{}}
	for i, s := range b.sites {
		b.siteIdx[s] = i
	}
	for i, c := range b.costs {
		b.costIdx[c] = i
	}
	b.reach = make([][]int, len(b.sites))
	b.reaches = make([]map[int]bool, len(b.sites))
	b.block = make([]map[int]int, len(b.sites))
	for i, s := range b.sites {
		b.reaches[i], b.block[i] = map[int]bool{}, map[int]int{}
		for k, c := range g.CostsFrom(s) {
			b.reach[i] = append(b.reach[i], b.costIdx[c])
			b.reaches[i][b.costIdx[c]] = true
			b.block[i][b.costIdx[c]] = k
		}
	}
	return b
}

// perCost builds the per-cost networks: the rule of site i for cost f
// reads the children of i that reach f, and f itself when it is a child.
func (b *builder) perCost() {
	for i, s := range b.sites {
		for _, f := range b.reach[i] {
			var e []source
			for _, ch := range b.g.Children(s) {
				if j, ok := b.siteIdx[ch]; ok {
					if b.reaches[j][f] {
						e = append(e, source{site: j})
					}
				} else if b.costIdx[ch] == f {
					e = append(e, source{isCost: true})
				}
			}
			b.edges[perCostNode{i, f}] = e
		}
	}
}

// depthOf returns the depth of what e reads in the network of cost f.
func (b *builder) depthOf(e source, f int) int {
	if e.isCost {
		return 0
	}
	return b.depth[perCostNode{e.site, f}]
}

// reduce reduces each per-cost network to a rooted spanning tree as
// opts.Reduce says, and computes the per-cost depths. Sites later in
// execution order are never ancestors of earlier ones, so a reverse sweep
// sees children first.
func (b *builder) reduce() {
	for i := len(b.sites) - 1; i >= 0; i-- {
		for _, f := range b.reach[i] {
			k := perCostNode{i, f}
			e := b.edges[k]
			switch b.opts.Reduce {
			case ReduceShortest:
				best := e[0]
				for _, c := range e[1:] {
					if b.depthOf(c, f) < b.depthOf(best, f) {
						best = c
					}
				}
				e = []source{best}
			case ReduceChain:
				best := e[0]
				for _, c := range e[1:] {
					if d, db := b.depthOf(c, f), b.depthOf(best, f); d > db || d == db && laterThan(c, best) {
						best = c
					}
				}
				e = []source{best}
			}
			b.edges[k] = e
			d := 0
			for _, c := range e {
				d = max(d, b.depthOf(c, f))
			}
			b.depth[k] = d + 1
		}
	}
}

// laterThan orders the sources of one per-cost rule for the chain
// reduction: a later child site first, the cost last.
func laterThan(c, best source) bool {
	switch {
	case c.isCost:
		return false
	case best.isCost:
		return true
	}
	return c.site > best.site
}

// merge merges each site's costs into blocks by partition refinement:
// starting from one block per site, a child's block is split whenever a
// parent could not express its own target through it (every cost of the
// block must have the same rule at the parent and lie in one of the
// parent's blocks: Theorem 3, applied until nothing changes). Without
// merge, every cost is its own block.
func (b *builder) merge() {
	for i := range b.sites {
		for _, f := range b.reach[i] {
			b.block[i][f] = 0
		}
	}
	for changed := true; changed; {
		changed = false
		for i := range b.sites {
			for _, ch := range b.g.Children(b.sites[i]) {
				j, ok := b.siteIdx[ch]
				if !ok {
					continue
				}
				if splitBlocks(b.block[j], b.reach[j], func(f int) string {
					if !b.reaches[i][f] {
						return "-"
					}
					return b.signature(i, f)
				}) {
					changed = true
				}
			}
		}
	}
}

// signature describes the rule of site i for cost f in terms of blocks.
func (b *builder) signature(i, f int) string {
	var s strings.Builder
	s.WriteString(strconv.Itoa(b.block[i][f]))
	for _, e := range b.edges[perCostNode{i, f}] {
		if e.isCost {
			fmt.Fprintf(&s, " c%d", f)
		} else {
			fmt.Fprintf(&s, " s%d.%d", e.site, b.block[e.site][f])
		}
	}
	return s.String()
}

// network makes the Q-nodes, from the last site to the first so that the
// nodes an update rule reads already exist, then their depths.
func (b *builder) network() *Network {
	net := &Network{Options: b.opts, shape: ShapeOf(b.g), sites: b.sites, costs: b.costs,
		local: map[string][]Ref{}, scg: structureOf(b.g), inline: map[string]bool{}}
	nodeOf := map[[2]int]int{} // (site, block) -> node index, -1 for an inlined cost
	for i := len(b.sites) - 1; i >= 0; i-- {
		x := b.sites[i]
		var ids []int
		members := map[int][]int{}
		for _, f := range b.reach[i] {
			blk := b.block[i][f]
			if _, ok := members[blk]; !ok {
				ids = append(ids, blk)
			}
			members[blk] = append(members[blk], f)
		}
		for _, blk := range ids {
			fs := members[blk]
			if len(fs) == 1 && b.inlined(i, fs[0]) {
				nodeOf[[2]int{i, blk}] = -1
				net.local[x] = append(net.local[x], Ref{Node: -1, Cost: b.costs[fs[0]]})
				net.inline[x+"\x00"+b.costs[fs[0]]] = true
				continue
			}
			nd := b.node(len(net.Nodes), i, fs, nodeOf)
			nodeOf[[2]int{i, blk}] = nd.Index
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
	return net
}

// inlined reports whether, with opts.InlineCosts, the Q-node of site i
// whose only source is cost f is f itself: f is a child of i and a
// function of i's scope.
func (b *builder) inlined(i, f int) bool {
	if !b.opts.InlineCosts {
		return false
	}
	e := b.edges[perCostNode{i, f}]
	if len(e) != 1 || !e[0].isCost {
		return false
	}
	x := b.sites[i]
	an := map[string]bool{x: true}
	for _, a := range b.g.Ancestors(x) {
		an[a] = true
	}
	return subset(b.g.Parents(b.costs[f]), an)
}

// node makes the Q-node of site i that carries the costs fs: its scope and
// its rule, whose groups gather the costs with equivalent rules.
func (b *builder) node(index, i int, fs []int, nodeOf map[[2]int]int) *Node {
	x := b.sites[i]
	nd := &Node{Index: index, Site: x}
	scope := map[string]bool{}
	groupAt := map[string]int{}
	for _, f := range fs {
		nd.Sources = append(nd.Sources, b.costs[f])
		for _, a := range b.g.Scope(x, b.costs[f]) {
			scope[a] = true
		}
		var refs []Ref
		var key strings.Builder
		for _, e := range b.edges[perCostNode{i, f}] {
			// A cost, or a child's Q-node for f that was inlined: the cost
			// is the value.
			r := Ref{Node: -1, Cost: b.costs[f]}
			if !e.isCost {
				if n := nodeOf[[2]int{e.site, b.block[e.site][f]}]; n >= 0 {
					r = Ref{Node: n}
				}
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
		nd.Groups[gi].Sources = append(nd.Groups[gi].Sources, b.costs[f])
		nd.Depth = max(nd.Depth, b.depth[perCostNode{i, f}])
	}
	for _, s := range b.g.Nodes() {
		if scope[s] {
			nd.Scope = append(nd.Scope, s)
		}
	}
	return nd
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

// subset reports whether every element of xs is in set.
func subset(xs []string, set map[string]bool) bool {
	for _, x := range xs {
		if !set[x] {
			return false
		}
	}
	return true
}
