package q

import (
	"fmt"

	"gonum.org/v1/gonum/mat"

	"github.com/backpropq/backpropq/trace"
)

// Values holds the network's values on one trace: per Q-node the online
// critic's values, the values update targets read (the slow-tracking copy
// when there is one, else the same), and per cost its scaled values.
type Values struct {
	// Q[i][r] is node i's critic at row r.
	Q [][]float64
	// Target[i][r] is node i's value as read by update rules.
	Target [][]float64
	// Costs maps a cost address to its [Site.ScaledCost] values.
	Costs map[string][]float64
	// Rows is the batch size B (the trace's particles). A node's values
	// have the rows of its site, and a cost's the rows of its cost site,
	// which are more inside plates.
	Rows int
	// Counted maps a cost whose site has a mask to the rows that count;
	// rows a mask leaves out of any of a node's sources are left out of
	// that node's update. A cost without a mask is absent.
	Counted map[string][]bool

	x     []*mat.Dense
	keys  []string
	sites []string // per node, its site
	lv    *levels
	fresh map[string]*entry
	set   *Set
}

// install adds the critics first seen in v to its set, unless the set
// gained a critic of the key meanwhile.
func (v *Values) install() {
	for key, e := range v.fresh {
		if _, ok := v.set.critics[key]; !ok {
			v.set.critics[key] = e
			delete(v.set.pending, key)
		}
		delete(v.set.created, key)
	}
	v.fresh = nil
}

// Evaluate returns the values of net's Q-nodes and costs on tr. It does not
// change the set's critics: a key seen for the first time gets a new
// critic (or a loaded one awaiting first sight, see [Load]) that joins s
// only when the values are used for an update ([Set.Apply]), so a training
// step that fails leaves the critics as they were. A new Linear or MLP
// critic's weights depend on [Config].Seed and its key only; until it
// joins s, later evaluations use the same new critic, so that the traces
// of one step see the same critics. tr must have net's shape.
func (s *Set) Evaluate(net *Network, tr *trace.Trace) (*Values, error) {
	if tr == nil || net == nil {
		return nil, fmt.Errorf("q: Evaluate: nil network or trace")
	}
	g := tr.Graph()
	if ShapeOf(g) != net.shape {
		return nil, fmt.Errorf("q: Evaluate: trace shape differs from the network's")
	}
	b := tr.Batch()
	v := &Values{Q: make([][]float64, len(net.Nodes)), Target: make([][]float64, len(net.Nodes)),
		Costs: map[string][]float64{}, Rows: b, x: make([]*mat.Dense, len(net.Nodes)), keys: make([]string, len(net.Nodes)),
		fresh: map[string]*entry{}, set: s, lv: levelsOf(net, g)}
	for _, nd := range net.Nodes {
		v.sites = append(v.sites, nd.Site)
	}
	v.readCosts(net, g)
	fzs := make([]*featurizer, len(net.Nodes))
	byKey := map[string][]int{}
	var order []string
	for i, nd := range net.Nodes {
		key := s.Key(nd)
		fz, err := newFeaturizer(nd, tr, g, s.templated(nd.Site))
		if err != nil {
			return nil, err
		}
		fzs[i], v.keys[i] = fz, key
		if _, ok := byKey[key]; !ok {
			order = append(order, key)
		}
		byKey[key] = append(byKey[key], i)
	}
	for _, key := range order {
		if err := s.evaluateKey(net, v, key, byKey[key], fzs); err != nil {
			return nil, err
		}
	}
	return v, nil
}

// evaluateKey evaluates the critic of key on its nodes, whose featurizers
// are fzs[i]: it finds or creates the critic for the nodes' (union)
// layout and fills the nodes' inputs and values in v.
func (s *Set) evaluateKey(net *Network, v *Values, key string, nodes []int, fzs []*featurizer) error {
	sites := map[string]bool{}
	for _, i := range nodes {
		if a := net.Nodes[i].Site; sites[a] {
			return fmt.Errorf("q: critic %q would serve two Q-nodes of site %q; merge the network (NetworkOptions.Merge, with a Reduce if needed) or drop the template", key, a)
		} else {
			sites[a] = true
		}
	}
	layouts := make([]Layout, len(nodes))
	for k, i := range nodes {
		layouts[k] = fzs[i].layout
	}
	layout := layouts[0]
	if len(nodes) > 1 {
		var err error
		if layout, err = unionLayout(layouts); err != nil {
			return fmt.Errorf("q: critic %q: %w", key, err)
		}
	}
	var e *entry
	if cur, ok := s.critics[key]; ok && s.templated(net.Nodes[nodes[0]].Site) {
		// A template's critic keeps its layout; each node fills the
		// fields it has.
		e = cur
	} else {
		var err error
		if e, err = s.lookup(key, layout, v.fresh); err != nil {
			return err
		}
	}
	for _, i := range nodes {
		x, err := fzs[i].into(e.critic.Layout())
		if err != nil {
			return fmt.Errorf("q: critic %q: scope layout changed: %w", key, err)
		}
		v.x[i] = x
		v.Q[i] = make([]float64, x.RawMatrix().Rows)
		e.critic.Predict(x, v.Q[i])
		if e.slow != nil {
			v.Target[i] = make([]float64, len(v.Q[i]))
			e.slow.target.Predict(x, v.Target[i])
		} else {
			v.Target[i] = v.Q[i]
		}
	}
	return nil
}

// readCosts reads the scaled values of net's costs in g, and the rows
// their masks count.
func (v *Values) readCosts(net *Network, g *trace.Graph) {
	for _, c := range net.costs {
		site := g.Site(c)
		v.Costs[c] = append([]float64(nil), site.ScaledCost().Data()...)
		if site.Mask != nil {
			counted := make([]bool, len(v.Costs[c]))
			for r := range counted {
				counted[r] = site.Mask.At(r, 0) != 0
			}
			if v.Counted == nil {
				v.Counted = map[string][]bool{}
			}
			v.Counted[c] = counted
		}
	}
}

// Local returns the total local cost of site addr at each row (Algorithm 1,
// line 16): the sum of its Q-nodes' values and of the costs inlined in
// their place; nil when the site reaches no cost.
func (v *Values) Local(net *Network, addr string) []float64 {
	terms := net.local[addr]
	if len(terms) == 0 {
		return nil
	}
	out := make([]float64, v.rowsOf(addr))
	for _, r := range terms {
		var src []float64
		if r.IsCost() {
			src = v.lv.at(v.Costs[r.Cost], r.Cost, addr)
		} else {
			src = v.Q[r.Node]
		}
		for i := range out {
			out[i] += src[i]
		}
	}
	return out
}

// rowsOf returns the rows of the values of site addr: Rows for values not
// from Evaluate, which are all at one plate level.
func (v *Values) rowsOf(addr string) int {
	if v.lv == nil {
		return v.Rows
	}
	return v.lv.rows[addr]
}

// Inputs returns the featurized scope of node i, the critic's input rows
// (one per row of the node's site); it aliases v.
func (v *Values) Inputs(i int) *mat.Dense { return v.x[i] }
