package q_test

import (
	"fmt"
	"math/rand/v2"

	"gonum.org/v1/gonum/mat"

	"github.com/backpropq/backpropq/ad"
	"github.com/backpropq/backpropq/ppl"
	"github.com/backpropq/backpropq/ppl/dist"
	"github.com/backpropq/backpropq/q"
	"github.com/backpropq/backpropq/trace"
)

// scgNode is a binary site or a cost of an enumerable test SCG, with its
// parents (indices of earlier sites).
type scgNode struct {
	name    string
	parents []int
}

// scg is an enumerable SCG: binary sites with conditional probability
// tables and costs given by tables over their parents' values.
type scg struct {
	sites []scgNode
	costs []scgNode
	cpt   [][]float64 // cpt[i][k]: P(site i = 1 | parent configuration k)
	table [][]float64 // table[j][k]: cost j at parent configuration k
}

// newSCG draws the tables: probabilities in [0.15, 0.85], costs in [0, 1].
func newSCG(sites, costs []scgNode, rng *rand.Rand) *scg {
	s := &scg{sites: sites, costs: costs}
	for _, n := range sites {
		t := make([]float64, 1<<len(n.parents))
		for k := range t {
			t[k] = 0.15 + 0.7*rng.Float64()
		}
		s.cpt = append(s.cpt, t)
	}
	for _, n := range costs {
		t := make([]float64, 1<<len(n.parents))
		for k := range t {
			t[k] = rng.Float64()
		}
		s.table = append(s.table, t)
	}
	return s
}

// lookup returns sum_k table[k]*[parents == k] as a tensor built from the
// parents' values, so that it carries their provenance.
func lookup(tp *ad.Tape, rows int, table []float64, parents []*ad.Tensor) *ad.Tensor {
	out := tp.Zeros(rows, 1)
	one := tp.Full(rows, 1, 1)
	for k, v := range table {
		ind := one
		for j, p := range parents {
			if k>>j&1 == 1 {
				ind = ad.Mul(ind, p)
			} else {
				ind = ad.Mul(ind, ad.Sub(one, p))
			}
		}
		out = ad.Add(out, ad.Scale(ind, v))
	}
	return out
}

// model returns the SCG as a ppl model: each row of the batch is an
// independent ancestral sample.
func (s *scg) model() ppl.Model {
	return func(ctx *ppl.Ctx) {
		tp := ctx.Tape()
		rows := ctx.Batch()
		vals := make([]*ad.Tensor, len(s.sites))
		for i, n := range s.sites {
			var pa []*ad.Tensor
			for _, p := range n.parents {
				pa = append(pa, vals[p])
			}
			vals[i] = ppl.Sample(ctx, n.name, dist.BernoulliProbs(lookup(tp, rows, s.cpt[i], pa)))
		}
		for j, n := range s.costs {
			var pa []*ad.Tensor
			for _, p := range n.parents {
				pa = append(pa, vals[p])
			}
			ppl.Cost(ctx, n.name, lookup(tp, rows, s.table[j], pa))
		}
	}
}

// run traces the model with b rows.
func (s *scg) run(rng *rand.Rand, b int) (*trace.Trace, error) {
	return trace.Run(s.model(), ppl.Config{Rand: rng, Batch: b})
}

func cfgIndex(x []int, parents []int) int {
	k := 0
	for j, p := range parents {
		k |= x[p] << j
	}
	return k
}

// enumerate calls fn with every joint configuration, its probability and
// the costs' values.
func (s *scg) enumerate(fn func(x []int, p float64, costs map[string]float64)) {
	n := len(s.sites)
	x := make([]int, n)
	for c := 0; c < 1<<n; c++ {
		p := 1.0
		for i := range x {
			x[i] = c >> i & 1
			p1 := s.cpt[i][cfgIndex(x, s.sites[i].parents)]
			if x[i] == 1 {
				p *= p1
			} else {
				p *= 1 - p1
			}
		}
		costs := map[string]float64{}
		for j, cn := range s.costs {
			costs[cn.name] = s.table[j][cfgIndex(x, cn.parents)]
		}
		fn(x, p, costs)
	}
}

func (s *scg) siteIndex(name string) int {
	for i, n := range s.sites {
		if n.name == name {
			return i
		}
	}
	panic("no site " + name)
}

// scopeRow returns the feature row of a node's scope at x (binary sites:
// one column each).
func (s *scg) scopeRow(nd *q.Node, x []int) []float64 {
	row := make([]float64, len(nd.Scope))
	for j, a := range nd.Scope {
		row[j] = float64(x[s.siteIndex(a)])
	}
	return row
}

func scopeKey(row []float64) string { return fmt.Sprint(row) }

// exactQ returns, for every node of net, E[sum of its sources | scope]
// keyed by scope values, and the probabilities of the scope values.
func (s *scg) exactQ(net *q.Network) (qs []map[string]float64, ps []map[string]float64) {
	qs = make([]map[string]float64, len(net.Nodes))
	ps = make([]map[string]float64, len(net.Nodes))
	for i := range net.Nodes {
		qs[i], ps[i] = map[string]float64{}, map[string]float64{}
	}
	s.enumerate(func(x []int, p float64, costs map[string]float64) {
		for i, nd := range net.Nodes {
			k := scopeKey(s.scopeRow(nd, x))
			v := 0.0
			for _, f := range nd.Sources {
				v += costs[f]
			}
			qs[i][k] += p * v
			ps[i][k] += p
		}
	})
	for i := range qs {
		for k := range qs[i] {
			qs[i][k] /= ps[i][k]
		}
	}
	return qs, ps
}

// predict returns node nd's critic value at scope row.
func predict(set *q.Set, nd *q.Node, row []float64) float64 {
	c := set.Critic(set.Key(nd))
	if c == nil {
		return 0
	}
	out := make([]float64, 1)
	c.Predict(mat.NewDense(1, len(row), row), out)
	return out[0]
}

// errorsByNode returns, for every node, h = E[(Q_w - Q)^2] and eps =
// E[(Q_w - E[T_w | scope])^2], where T_w is the node's one-step target
// read from the learned critics (the hypothesis of Theorem 2 in the form
// of equation (3)'s right-hand side), both exact by enumeration.
func (s *scg) errorsByNode(net *q.Network, set *q.Set) (h, eps []float64) {
	qs, ps := s.exactQ(net)
	h = make([]float64, len(net.Nodes))
	eps = make([]float64, len(net.Nodes))
	// E[T_w | scope] by enumeration.
	tw := make([]map[string]float64, len(net.Nodes))
	for i := range tw {
		tw[i] = map[string]float64{}
	}
	s.enumerate(func(x []int, p float64, costs map[string]float64) {
		val := make([]float64, len(net.Nodes))
		for i, nd := range net.Nodes {
			val[i] = predict(set, nd, s.scopeRow(nd, x))
		}
		for i, nd := range net.Nodes {
			t := 0.0
			for _, g := range nd.Groups {
				for _, r := range g.From {
					if r.IsCost() {
						t += costs[r.Cost] / float64(len(g.From))
					} else {
						t += val[r.Node] / float64(len(g.From))
					}
				}
			}
			tw[i][scopeKey(s.scopeRow(nd, x))] += p * t
		}
	})
	s.enumerate(func(x []int, p float64, _ map[string]float64) {
		for i, nd := range net.Nodes {
			row := s.scopeRow(nd, x)
			k := scopeKey(row)
			qw := predict(set, nd, row)
			d := qw - qs[i][k]
			h[i] += p * d * d
			e := qw - tw[i][k]/ps[i][k]
			eps[i] += p * e * e
		}
	})
	return h, eps
}
