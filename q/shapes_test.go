package q_test

import (
	"fmt"
)

func n(name string, parents ...int) scgNode { return scgNode{name: name, parents: parents} }

// The figures' images are missing from the paper's text; each shape below
// is reconstructed from the prose that describes it, as its comment says.
type shape struct {
	name         string
	sites, costs []scgNode
}

// figure1: a one-cost SCG in which X1 and Y1 reach the cost along several
// paths (so their Q-functions have several equivalent update rules) and a
// bypass X2 -> f enlarges scopes.
func figure1() shape {
	return shape{"figure1",
		[]scgNode{n("X1"), n("X2"), n("Y1", 0), n("Y2", 0, 1), n("Z1", 2), n("Z2", 2, 3)},
		[]scgNode{n("f", 4, 5, 1)}}
}

// figure2: section 3.2's multi-cost example: Y leads to f1 and f2, Z to
// f2, and Q_X's target is Q^f1_Y(y) + (Q^f2_Y(x,y) + Q^f2_Z(x,z))/2, plus
// the cost f3 on X of Figure 2(e).
func figure2() shape {
	return shape{"figure2",
		[]scgNode{n("X"), n("Y", 0), n("Z", 0)},
		[]scgNode{n("f1", 1), n("f2", 1, 2), n("f3", 0)}}
}

// figure3: two costs whose networks can merge at the last nodes; D reads C
// and B, so per-cost networks have several rules to reduce.
func figure3() shape {
	return shape{"figure3",
		[]scgNode{n("A"), n("B", 0), n("C", 1), n("D", 1, 2)},
		[]scgNode{n("f1", 2, 3), n("f2", 3)}}
}

// figure5: appendix 4.1's one-cost example: Z feeds f, Y1 and Y2 feed Z,
// X1 feeds Y1 and Y2 (so delta_X1 averages two upstream errors, and at
// lambda = 1 it is gamma^3 f - Q_X1); X2 is a second parent of Y2.
func figure5() shape {
	return shape{"figure5",
		[]scgNode{n("X1"), n("X2"), n("Y1", 0), n("Y2", 0, 1), n("Z", 2, 3)},
		[]scgNode{n("f", 4)}}
}

// figure6: appendix 4.1's two-cost example: the chain X1 -> X2 -> X3 ->
// X4, fa reading X2 and X3, fb reading X3 and X4. Removing the edges
// Q_fa -> Q_X2 and Q_fb -> Q_X3 (ReduceChain) leaves fa three steps and fb
// four steps from X1, as the closed forms say.
func figure6() shape {
	return shape{"figure6",
		[]scgNode{n("X1"), n("X2", 0), n("X3", 1), n("X4", 2)},
		[]scgNode{n("fa", 1, 2), n("fb", 2, 3)}}
}

// figure7: appendix 4.2's replay example: A -> X, X and B1 feed Y1, X, B2
// and A feed Y2 (the edge Q^f2_Y2 -> Q^f2_A exists before reduction),
// Y1 -> f1 and Y2 -> f2, so Q_X(a, x) has the target Q_Y1(y1) + Q_Y2(y2).
func figure7() shape {
	return shape{"figure7",
		[]scgNode{n("A"), n("B1"), n("B2"), n("X", 0), n("Y1", 3, 1), n("Y2", 3, 2, 0)},
		[]scgNode{n("f1", 4), n("f2", 5)}}
}

// chain returns x1 -> ... -> xn -> f.
func chain(length int) shape {
	s := shape{name: fmt.Sprintf("chain%d", length)}
	for i := range length {
		if i == 0 {
			s.sites = append(s.sites, n("x1"))
		} else {
			s.sites = append(s.sites, n(fmt.Sprintf("x%d", i+1), i-1))
		}
	}
	s.costs = []scgNode{n("f", length-1)}
	return s
}
