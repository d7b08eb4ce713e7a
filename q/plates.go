package q

import (
	"github.com/backpropq/backpropq/ad"
	"github.com/backpropq/backpropq/ppl"
	"github.com/backpropq/backpropq/trace"
)

// levels records, for one trace, the plates of every site and cost of a
// network, so that values move between plate levels as ppl.Move moves
// them: a Q-node's rows are its site's rows, a cost or a child's value
// read by a parent's rule is summed out of the plates the parent is not
// in and broadcast over those only the parent is in.
type levels struct {
	plates map[string]ppl.Stack
	rows   map[string]int
	maps   map[[2]string][][]int
}

// levelsOf records the plates and rows of every site and cost of net in g.
func levelsOf(net *Network, g *trace.Graph) *levels {
	l := &levels{plates: map[string]ppl.Stack{}, rows: map[string]int{}, maps: map[[2]string][][]int{}}
	for _, a := range append(net.Sites(), net.costs...) {
		s := g.Site(a)
		l.plates[a] = s.Plates
		if s.Value != nil {
			l.rows[a] = s.Value.Rows()
		} else {
			l.rows[a] = s.ScaledCost().Rows()
		}
	}
	return l
}

// same reports whether from and to are at one plate level.
func (l *levels) same(from, to string) bool {
	if l == nil {
		return true
	}
	a, b := l.plates[from], l.plates[to]
	return len(a) == len(b) && a.Common(b) == len(a)
}

// at returns vals, the values of the site or cost from, at the plate level
// of the site to; vals itself when they share it.
func (l *levels) at(vals []float64, from, to string) []float64 {
	if l.same(from, to) {
		return vals
	}
	m := l.rowMap(from, to)
	out := make([]float64, len(m))
	for r, srcs := range m {
		for _, s := range srcs {
			out[r] += vals[s]
		}
	}
	return out
}

// rowMap returns, for each row at the level of to, the rows at the level
// of from that ppl.Move sums into it, found by moving the identity.
func (l *levels) rowMap(from, to string) [][]int {
	key := [2]string{from, to}
	if m, ok := l.maps[key]; ok {
		return m
	}
	n := l.rows[from]
	tp := ad.NewTape()
	eye := make([]float64, n*n)
	for i := 0; i < n; i++ {
		eye[i*n+i] = 1
	}
	moved := ppl.Move(tp.FromData(n, n, eye), l.plates[from], l.plates[to])
	m := make([][]int, moved.Rows())
	for r := range m {
		for c := 0; c < n; c++ {
			if moved.At(r, c) != 0 {
				m[r] = append(m[r], c)
			}
		}
	}
	l.maps[key] = m
	return m
}

// moveValue returns the value of site s at the plate level of to, a
// tensor whose rows are those of a site at that level.
func moveValue(s *ppl.Site, to ppl.Stack) *ad.Tensor {
	if len(s.Plates) == len(to) && s.Plates.Common(to) == len(to) {
		return s.Value
	}
	return ppl.Move(s.Value, s.Plates, to)
}
