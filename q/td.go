package q

import (
	"fmt"
	"math"

	"gonum.org/v1/gonum/mat"

	"github.com/backpropq/backpropq/trace"
)

// TD configures the critics' temporal-difference updates.
type TD struct {
	// Lambda is the graph lambda-return's lambda in [0, 1] (section 4.1,
	// appendix 4.1): 0 gives the one-step target of Algorithm 1, 1 the
	// Monte Carlo return.
	Lambda float64
	// Gamma is the discount in (0, 1]; zero means 1 (no discount).
	Gamma float64
}

func (td TD) gamma() float64 {
	if td.Gamma == 0 {
		return 1
	}
	return td.Gamma
}

func (td TD) check() error {
	if !(td.Lambda >= 0 && td.Lambda <= 1) {
		return fmt.Errorf("q: TD: lambda must be in [0, 1], got %v", td.Lambda)
	}
	if g := td.gamma(); !(g > 0 && g <= 1) {
		return fmt.Errorf("q: TD: gamma must be in (0, 1], got %v", td.Gamma)
	}
	return nil
}

// value returns the values of ref r as the update rule of a node of site
// to reads them: at that site's plate level.
func (v *Values) value(r Ref, to string) []float64 {
	switch {
	case r.IsCost():
		return v.lv.at(v.Costs[r.Cost], r.Cost, to)
	case v.lv == nil:
		return v.Target[r.Node]
	}
	return v.lv.at(v.Target[r.Node], v.sites[r.Node], to)
}

// below returns xs, per-row values of node j, at the plate level of site
// to.
func (v *Values) below(xs []float64, j int, to string) []float64 {
	if v.lv == nil {
		return xs
	}
	return v.lv.at(xs, v.sites[j], to)
}

// Targets returns, for each node, its one-step sample target (Algorithm 1,
// line 11) without discount: the sum over the node's groups of the average
// of the values each group reads.
func Targets(net *Network, v *Values) [][]float64 {
	out := make([][]float64, len(net.Nodes))
	for i, nd := range net.Nodes {
		out[i] = make([]float64, len(v.Q[i]))
		for _, gr := range nd.Groups {
			w := 1 / float64(len(gr.From))
			for _, r := range gr.From {
				vals := v.value(r, nd.Site)
				for k := range out[i] {
					out[i][k] += w * vals[k]
				}
			}
		}
	}
	return out
}

// Errors returns the graph lambda-return errors delta[i][r] of every node
// (appendix 4.1): with T_X the node's one-step target,
//
//	delta_X = (gamma*T_X - Q_X) + gamma*lambda * sum over groups of the average of the groups' upstream errors,
//
// computed from the roots down, the errors of costs being zero. Rules read
// v.Target (the slow-tracking copies, when there are any) and the node's
// own value is v.Q. At lambda 0 it is the one-step TD error; at lambda 1
// (with v.Target equal to v.Q) Q_X + delta_X is the discounted Monte Carlo
// return.
func Errors(net *Network, v *Values, td TD) ([][]float64, error) {
	if err := td.check(); err != nil {
		return nil, err
	}
	gamma := td.gamma()
	tgt := Targets(net, v)
	delta := make([][]float64, len(net.Nodes))
	for i, nd := range net.Nodes {
		d := make([]float64, len(v.Q[i]))
		for k := range d {
			d[k] = gamma*tgt[i][k] - v.Q[i][k]
		}
		if td.Lambda > 0 {
			for _, gr := range nd.Groups {
				w := gamma * td.Lambda / float64(len(gr.From))
				for _, r := range gr.From {
					if r.IsCost() {
						continue
					}
					up := v.below(delta[r.Node], r.Node, nd.Site)
					for k := range d {
						d[k] += w * up[k]
					}
				}
			}
		}
		delta[i] = d
	}
	return delta, nil
}

// Stats reports one update of the critics.
type Stats struct {
	// MSE[i] is the mean over rows of node i's squared lambda-return error
	// before the update.
	MSE []float64
}

// Update evaluates net's critics on tr and moves each toward its
// lambda-return target (Algorithm 1, lines 9-13, with the graph
// lambda-return of appendix 4.1).
//
// The nodes are visited in one backward pass, in the topological order of
// G_Q from the costs down, as Algorithm 1 does. A node's target is its
// lambda-return written recursively,
//
//	G_X = gamma * sum over groups of the average over the group of ((1-lambda)*V_e + lambda*G_e),
//
// with V_e the value of what the rule reads (a critic, after its own update
// in this pass, or a cost) and G_e its return (G_f = f for a cost). Without
// the updates inside the pass this is exactly Q_X + delta_X of [Errors]; at
// lambda 0 it is Algorithm 1's one-step target, and at lambda 1 the Monte
// Carlo return. Reading critics after their update lets a cost reach the
// far end of a chain in one pass. Stats reports delta_X = G_X - Q_X before
// the node's update. Nodes that share a critic (a template) update it once
// each. A cost or critic value that is not finite is an error before any
// critic changes.
func (s *Set) Update(net *Network, tr *trace.Trace, td TD) (*Stats, error) {
	if err := td.check(); err != nil {
		return nil, err
	}
	v, err := s.Evaluate(net, tr)
	if err != nil {
		return nil, err
	}
	return s.Apply(net, v, td)
}

// Apply runs [Set.Update]'s backward pass on values v that [Set.Evaluate]
// returned for net on a trace, and adds the critics first seen there to s.
// A training step evaluates the critics for its learning signals, then
// applies the update once the step succeeded. Apply refreshes v.Q and
// v.Target in place as critics change, so v is spent afterwards.
func (s *Set) Apply(net *Network, v *Values, td TD) (*Stats, error) {
	if v.set != s {
		return nil, fmt.Errorf("q: Apply: values of another set")
	}
	if err := td.check(); err != nil {
		return nil, err
	}
	if err := v.checkFinite(net); err != nil {
		return nil, err
	}
	v.install()
	return s.sequential(net, v, td, nil)
}

// checkFinite reports the first cost or critic value that is not finite,
// so that an update fails before it changes anything: targets are then
// finite too, short of overflow.
func (v *Values) checkFinite(net *Network) error {
	bad := func(xs []float64) int {
		for k, x := range xs {
			if math.IsNaN(x) || math.IsInf(x, 0) {
				return k
			}
		}
		return -1
	}
	for _, c := range net.costs {
		if k := bad(v.Costs[c]); k >= 0 {
			return fmt.Errorf("q: cost %q is %v at row %d", c, v.Costs[c][k], k)
		}
	}
	for i, nd := range net.Nodes {
		if k := bad(v.Q[i]); k >= 0 {
			return fmt.Errorf("q: critic %q of site %q is %v at row %d", v.keys[i], nd.Site, v.Q[i][k], k)
		}
		if k := bad(v.Target[i]); k >= 0 {
			return fmt.Errorf("q: target copy of critic %q of site %q is %v at row %d", v.keys[i], nd.Site, v.Target[i][k], k)
		}
	}
	return nil
}

// sequential runs the backward pass of [Set.Update] on v over the nodes in
// only (all when nil), refreshing the values of a critic's nodes after each
// update.
func (s *Set) sequential(net *Network, v *Values, td TD, only []int) (*Stats, error) {
	if err := td.check(); err != nil {
		return nil, err
	}
	gamma, lambda := td.gamma(), td.Lambda
	st := &Stats{MSE: make([]float64, len(net.Nodes))}
	nodes := only
	if nodes == nil {
		nodes = make([]int, len(net.Nodes))
		for i := range nodes {
			nodes[i] = i
		}
	}
	byKey := map[string][]int{}
	for i, k := range v.keys {
		byKey[k] = append(byKey[k], i)
	}
	ret := make([][]float64, len(net.Nodes))
	for _, i := range nodes {
		nd := net.Nodes[i]
		target := make([]float64, len(v.Q[i]))
		for _, gr := range nd.Groups {
			w := gamma / float64(len(gr.From))
			for _, r := range gr.From {
				vals := v.value(r, nd.Site)
				var g []float64
				if !r.IsCost() {
					g = v.below(ret[r.Node], r.Node, nd.Site)
				}
				for k := range target {
					if g == nil || lambda == 0 {
						target[k] += w * vals[k]
					} else {
						target[k] += w * ((1-lambda)*vals[k] + lambda*g[k])
					}
				}
			}
		}
		ret[i] = target
		for k, y := range target {
			d := y - v.Q[i][k]
			st.MSE[i] += d * d / float64(len(target))
		}
		key := v.keys[i]
		e := s.critics[key]
		if e == nil {
			return nil, fmt.Errorf("q: critic %q: values from before the critic was replaced", key)
		}
		for k, y := range target {
			if math.IsNaN(y) || math.IsInf(y, 0) {
				return nil, fmt.Errorf("q: critic %q: target %v at row %d is not finite", key, y, k)
			}
		}
		x, y := v.x[i], target
		if rows := v.countedRows(nd); rows != nil {
			x, y = selectRows(x, target, rows)
		}
		if len(y) > 0 {
			if err := e.critic.Update(x, y); err != nil {
				return nil, err
			}
		}
		if e.slow != nil {
			e.slow.track(e.critic)
		}
		for _, j := range byKey[key] {
			e.critic.Predict(v.x[j], v.Q[j])
			if e.slow != nil {
				e.slow.target.Predict(v.x[j], v.Target[j])
			} else {
				v.Target[j] = v.Q[j]
			}
		}
	}
	return st, nil
}

// countedRows returns the rows that count for node nd's update, or nil
// when all do.
func (v *Values) countedRows(nd *Node) []int {
	if v.Counted == nil {
		return nil
	}
	masked := false
	for _, f := range nd.Sources {
		if v.Counted[f] != nil {
			masked = true
		}
	}
	if !masked {
		return nil
	}
	// A row of the node counts when every masked source counts in a row
	// that reaches it.
	counts := map[string][]float64{}
	for _, f := range nd.Sources {
		if c := v.Counted[f]; c != nil {
			flags := make([]float64, len(c))
			for r, ok := range c {
				if ok {
					flags[r] = 1
				}
			}
			counts[f] = v.lv.at(flags, f, nd.Site)
		}
	}
	rows := []int{}
	for r := 0; r < v.rowsOf(nd.Site); r++ {
		ok := true
		for _, c := range counts {
			if c[r] == 0 {
				ok = false
			}
		}
		if ok {
			rows = append(rows, r)
		}
	}
	return rows
}

// selectRows returns the given rows of x and target.
func selectRows(x *mat.Dense, target []float64, rows []int) (*mat.Dense, []float64) {
	_, w := x.Dims()
	out := mat.NewDense(max(len(rows), 1), w, nil)
	y := make([]float64, len(rows))
	for k, r := range rows {
		out.SetRow(k, x.RawRowView(r))
		y[k] = target[r]
	}
	return out, y
}
