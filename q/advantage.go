package q

import "slices"

// Advantages returns, for each stochastic site of net with a parent in the
// network, its advantage at each row (appendix 4.4, Figures 8 and 9).
//
// For a parent Q-node Q_X whose rule reads a term of the site Y (one of
// Y's Q-nodes or inlined costs), the advantage is gamma*T - Q_X, where T is
// X's one-step target with each group that reads Y's terms taking the
// average of those terms only, and every other branch its sampled value
// (the sample approximation of Figure 8(c)). With lambda-return errors
// (fromErrors), it is X's lambda-return error delta_X instead (Figure 9:
// at gamma*lambda = 1, R - Q_X). The parent nodes at one parent site are
// summed (they carry disjoint cost sources) and the parent sites averaged
// (Figure 8(b)). A site without a parent in the network gets its total
// local cost, without baseline.
func Advantages(net *Network, v *Values, td TD, fromErrors bool) (map[string][]float64, error) {
	delta, err := Errors(net, v, td)
	if err != nil {
		return nil, err
	}
	gamma := td.gamma()
	out := map[string][]float64{}
	for _, y := range net.sites {
		terms := net.local[y]
		if len(terms) == 0 {
			continue
		}
		isTerm := func(r Ref) bool {
			for _, t := range terms {
				if t == r {
					return true
				}
			}
			return false
		}
		bySite := map[string][]float64{}
		var sites []string
		for i, nd := range net.Nodes {
			if nd.Site == y {
				continue
			}
			reads := false
			for _, gr := range nd.Groups {
				for _, r := range gr.From {
					if isTerm(r) && (!r.IsCost() || slices.Contains(net.scg.parents[y], nd.Site)) {
						reads = true
					}
				}
			}
			if !reads {
				continue
			}
			a := slices.Clone(delta[i])
			if !fromErrors {
				a = v.parentAdvantage(i, nd, isTerm, gamma)
			}
			if _, ok := bySite[nd.Site]; !ok {
				sites = append(sites, nd.Site)
				bySite[nd.Site] = make([]float64, v.rowsOf(y))
			}
			// The parent's advantage reaches y's rows.
			a = v.below(a, i, y)
			for k := range a {
				bySite[nd.Site][k] += a[k]
			}
		}
		res := make([]float64, v.rowsOf(y))
		if len(sites) == 0 {
			copy(res, v.Local(net, y))
		} else {
			for _, p := range sites {
				for k := range res {
					res[k] += bySite[p][k] / float64(len(sites))
				}
			}
		}
		out[y] = res
	}
	return out, nil
}

// parentAdvantage returns gamma*T - Q of node i (nd), where T is its
// one-step target with each group that reads a term of the site (isTerm)
// taking the average of those terms only.
func (v *Values) parentAdvantage(i int, nd *Node, isTerm func(Ref) bool, gamma float64) []float64 {
	a := make([]float64, len(v.Q[i]))
	for _, gr := range nd.Groups {
		var mine []Ref
		for _, r := range gr.From {
			if isTerm(r) {
				mine = append(mine, r)
			}
		}
		use := gr.From
		if len(mine) > 0 {
			use = mine
		}
		w := gamma / float64(len(use))
		for _, r := range use {
			vals := v.value(r, nd.Site)
			for k := range a {
				a[k] += w * vals[k]
			}
		}
	}
	for k := range a {
		a[k] -= v.Q[i][k]
	}
	return a
}
