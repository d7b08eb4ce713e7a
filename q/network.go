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

// NetworkOptions configure [Build].
type NetworkOptions struct {
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
	Options NetworkOptions

	shape  string
	sites  []string
	costs  []string
	local  map[string][]Ref
	scg    scg
	inline map[string]bool
}

// scg is the structure of the graph a network was built from: its nodes
// in execution order, which of them are stochastic, their parents and
// children, and the descendants of each stochastic site. It holds no site
// and no tensor, so that a cached network keeps no trace alive, nor the
// tape its values live on, which is reset every step.
type scg struct {
	nodes                          []string
	stochastic                     map[string]bool
	parents, children, descendants map[string][]string
}

// structureOf copies the structure of g.
func structureOf(g *trace.Graph) scg {
	s := scg{nodes: g.Nodes(), stochastic: map[string]bool{},
		parents: map[string][]string{}, children: map[string][]string{}, descendants: map[string][]string{}}
	for _, a := range s.nodes {
		s.parents[a], s.children[a] = g.Parents(a), g.Children(a)
		if g.Site(a).Stochastic() {
			s.stochastic[a] = true
			s.descendants[a] = g.Descendants(a)
		}
	}
	return s
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
// place ([NetworkOptions.InlineCosts]). A site that reaches no cost has none.
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

// Cache holds networks by trace shape (the sequence of addresses, kinds and
// parents of the graph), so a training loop builds a network once per
// shape. The zero value is ready to use with zero [NetworkOptions]; a Cache is safe
// for concurrent use.
type Cache struct {
	Options NetworkOptions

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
	g := n.scg
	b.WriteString("digraph backpropq {\n\tcompound=true;\n\tsubgraph cluster_scg {\n\t\tlabel=\"SCG\";\n")
	id := map[string]int{}
	for i, a := range g.nodes {
		id[a] = i
		if g.stochastic[a] {
			fmt.Fprintf(&b, "\t\ts%d [label=%q, shape=circle];\n", i, a)
		} else {
			fmt.Fprintf(&b, "\t\ts%d [label=%q, shape=square, peripheries=2];\n", i, a)
		}
	}
	for _, a := range g.nodes {
		for _, c := range g.children[a] {
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
