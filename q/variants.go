package q

import (
	"fmt"
	"math"
	"slices"

	"gonum.org/v1/gonum/floats"
	"gonum.org/v1/gonum/mat"

	"github.com/backpropq/backpropq/ad"
	"github.com/backpropq/backpropq/nn"
)

// VariantPredictor is a [Critic] that evaluates one input at many values
// of one field at once: what a control variate or a value baseline needs
// when it sums a critic over the values of a discrete site. [NetCritic] critics
// are VariantPredictors; a caller falls back to [Critic.Predict] once per
// variant for others.
type VariantPredictor interface {
	// PredictVariants writes to dst[k][i] the critic's value at row i of
	// x with the columns [from, from+len(variants[k])) replaced by
	// variants[k]. The variants must have one width, and dst one slice
	// of x's rows per variant. x is not modified.
	PredictVariants(x *mat.Dense, from int, variants [][]float64, dst [][]float64)
}

var _ VariantPredictor = (*NetCritic)(nil)

// PredictVariants evaluates n at every variant of the columns from x's
// column from on (see [VariantPredictor]). The first layer's product with
// the unchanged columns is computed once; each variant adds its own
// columns' share, and the layers above run on all variants in one batch.
// It panics if the variants' widths differ or do not fit in x, or dst
// does not have one row slice per variant.
func (n *NetCritic) PredictVariants(x *mat.Dense, from int, variants [][]float64, dst [][]float64) {
	rows, cols := x.Dims()
	if len(dst) != len(variants) {
		panic(fmt.Sprintf("q: PredictVariants: %d variants, %d destinations", len(variants), len(dst)))
	}
	if len(variants) == 0 {
		return
	}
	w := len(variants[0])
	if from < 0 || from+w > cols {
		panic(fmt.Sprintf("q: PredictVariants: columns [%d, %d) outside %d", from, from+w, cols))
	}
	first := n.mlp.Layers[0]
	wt := first.W.Value // [cols x h]
	_, h := wt.Dims()
	// base = x·W + b without the variant columns' share.
	var base mat.Dense
	base.Mul(x, wt)
	bias := first.B.Value.RawRowView(0)
	site := x.Slice(0, rows, from, from+w)
	wsite := wt.Slice(from, from+w, 0, h).(*mat.Dense)
	var share mat.Dense
	share.Mul(site, wsite)
	base.Sub(&base, &share)
	pre := n.scratchDense(scratchPre, len(variants)*rows, h)
	vrow := make([]float64, h)
	for k, v := range variants {
		if len(v) != w {
			panic(fmt.Sprintf("q: PredictVariants: variant %d has width %d, variant 0 %d", k, len(v), w))
		}
		if len(dst[k]) != rows {
			panic(fmt.Sprintf("q: PredictVariants: destination %d has %d values for %d rows", k, len(dst[k]), rows))
		}
		copy(vrow, bias)
		for c, a := range v {
			if a != 0 {
				wr := wsite.RawRowView(c)
				for j := range vrow {
					vrow[j] += a * wr[j]
				}
			}
		}
		for i := 0; i < rows; i++ {
			out := pre.RawRowView(k*rows + i)
			in := base.RawRowView(i)
			for j := range out {
				out[j] = in[j] + vrow[j]
			}
		}
	}
	vals := n.fromFirst(pre)
	for k := range variants {
		for i := 0; i < rows; i++ {
			y := vals[k*rows+i]
			if n.norm != nil {
				y = n.norm[0] + n.norm[1]*y
			}
			dst[k][i] = y
		}
	}
}

// fromFirst returns the network's outputs (before the normalization of
// NormalizeTargets) given the first layer's pre-activations pre.
func (n *NetCritic) fromFirst(pre *mat.Dense) []float64 {
	defer n.tape.Reset()
	t := n.tape.Const(pre)
	if len(n.mlp.Activations) > 0 {
		t = n.mlp.Activations[0].Apply(t)
	}
	return n.above(t, 1)
}

// fromHidden returns the network's outputs (before the normalization of
// NormalizeTargets) given the activations of layer k-1, the input of
// layer k.
func (n *NetCritic) fromHidden(act *mat.Dense, k int) []float64 {
	defer n.tape.Reset()
	return n.above(n.tape.Const(act), k)
}

// above runs t through layers k on and their activations, and returns
// the outputs in scratch memory valid until the next call.
func (n *NetCritic) above(t *ad.Tensor, k int) []float64 {
	m := n.mlp
	for i := k; i < len(m.Layers); i++ {
		t = m.Layers[i].Forward(t)
		if i < len(m.Activations) {
			t = m.Activations[i].Apply(t)
		}
	}
	n.scratch[scratchOut] = append(n.scratch[scratchOut][:0], t.Data()...)
	return n.scratch[scratchOut]
}

// The buffers of NetCritic.scratch.
const (
	scratchPre = iota // the first layer's pre-activations
	scratchAct        // the first layer's activations
	scratchOut        // the outputs of above
)

// scratchDense returns an [r x c] matrix on scratch buffer i, grown as
// needed, with undefined contents. It is valid until the buffer's next
// use.
func (n *NetCritic) scratchDense(i, r, c int) *mat.Dense {
	n.scratch[i] = slices.Grow(n.scratch[i][:0], r*c)[:r*c]
	return mat.NewDense(r, c, n.scratch[i])
}

// FlipPredictor is a [Critic] that evaluates, for each of a run of binary
// columns of its input, the difference the column makes at every row with
// the other columns as they are: what a local-expectation estimator needs
// to differentiate the critic's expectation over a factorized Bernoulli
// site. [NetCritic] critics are FlipPredictors; a caller falls back to two
// [Critic.Predict] calls per column for others.
type FlipPredictor interface {
	// PredictFlips writes to dst[c][i] the critic's value at row i of x
	// with column from+c set to 1, less its value with that column set to
	// 0, for every c < len(dst). The columns must hold 0 or 1, and dst
	// one slice of x's rows per column. x is not modified.
	PredictFlips(x *mat.Dense, from int, dst [][]float64)
}

var _ FlipPredictor = (*NetCritic)(nil)

// PredictFlips evaluates n at x and at x with each column from x's column
// from on flipped (see [FlipPredictor]): one of a column's two values is
// the row's own. The first layer's product is computed once; each flip
// adds or removes one row of its weights (with a tanh first layer, its
// activations follow from tanh's addition formula, one multiply-add and
// one division per flip, row and hidden unit), and the layers above run
// on all flips in one batch. It panics if the columns do not fit in x, hold a
// value other than 0 or 1, or a destination does not have one value per
// row.
func (n *NetCritic) PredictFlips(x *mat.Dense, from int, dst [][]float64) {
	rows, cols := x.Dims()
	w := len(dst)
	if from < 0 || from+w > cols {
		panic(fmt.Sprintf("q: PredictFlips: columns [%d, %d) outside %d", from, from+w, cols))
	}
	if w == 0 {
		return
	}
	for c := range dst {
		if len(dst[c]) != rows {
			panic(fmt.Sprintf("q: PredictFlips: destination %d has %d values for %d rows", c, len(dst[c]), rows))
		}
	}
	var vals []float64
	if len(n.mlp.Activations) > 0 && n.mlp.Activations[0] == nn.Tanh {
		vals = n.fromHidden(n.tanhFlips(x, from, w), 1)
	} else {
		vals = n.fromFirst(n.preFlips(x, from, w))
	}
	scale := 1.0
	if n.norm != nil {
		scale = n.norm[1]
	}
	for c := range dst {
		for i := 0; i < rows; i++ {
			// Q(flipped) - Q(x) is Q(1) - Q(0) where the row holds a 0.
			dst[c][i] = flipSign(x.At(i, from+c)) * scale * (vals[(c+1)*rows+i] - vals[i])
		}
	}
}

// preFlips returns the first layer's pre-activations at x, rows [0,
// rows), and at x with column from+c flipped, rows (c+1)·rows+i: each
// flip adds or removes one row of the weights.
func (n *NetCritic) preFlips(x *mat.Dense, from, w int) *mat.Dense {
	rows, _ := x.Dims()
	first := n.mlp.Layers[0]
	wt := first.W.Value // [cols x h]
	_, h := wt.Dims()
	pre := n.scratchDense(scratchPre, (w+1)*rows, h)
	pre.Slice(0, rows, 0, h).(*mat.Dense).Mul(x, wt)
	bias := first.B.Value.RawRowView(0)
	for i := 0; i < rows; i++ {
		floats.Add(pre.RawRowView(i), bias)
	}
	for c := 0; c < w; c++ {
		wr := wt.RawRowView(from + c)
		for i := 0; i < rows; i++ {
			sign := flipSign(x.At(i, from+c))
			floats.AddScaledTo(pre.RawRowView((c+1)*rows+i), pre.RawRowView(i), sign, wr)
		}
	}
	return pre
}

// tanhFlips returns the first layer's tanh activations in the layout of
// preFlips, by the addition formula tanh(a ± b) = (tanh a ± tanh b) / (1 ±
// tanh a · tanh b): one tanh per row and hidden unit and one per weight of
// the flipped columns, rather than one per flip, row and hidden unit.
// Where the denominator nears 0 (a and ±b both large, of opposite signs)
// the formula loses its digits, and the activation is computed directly.
func (n *NetCritic) tanhFlips(x *mat.Dense, from, w int) *mat.Dense {
	rows, _ := x.Dims()
	pre := n.preFlips(x, from, 0)
	_, h := pre.Dims()
	wt := n.mlp.Layers[0].W.Value
	act := n.scratchDense(scratchAct, (w+1)*rows, h)
	for i := 0; i < rows; i++ {
		out := act.RawRowView(i)
		for j, v := range pre.RawRowView(i) {
			out[j] = math.Tanh(v)
		}
	}
	tw := make([]float64, h)
	for c := 0; c < w; c++ {
		wr := wt.RawRowView(from + c)
		for j, v := range wr {
			tw[j] = math.Tanh(v)
		}
		for i := 0; i < rows; i++ {
			sign := flipSign(x.At(i, from+c))
			ta, pa := act.RawRowView(i), pre.RawRowView(i)
			out := act.RawRowView((c+1)*rows + i)
			for j := range out {
				den := 1 + sign*ta[j]*tw[j]
				if den < 1e-2 {
					out[j] = math.Tanh(pa[j] + sign*wr[j])
					continue
				}
				out[j] = (ta[j] + sign*tw[j]) / den
			}
		}
	}
	return act
}

// flipSign returns +1 for a binary column holding 0 (flipping it adds its
// weights) and -1 for one holding 1; it panics on any other value.
func flipSign(v float64) float64 {
	switch v {
	case 0:
		return 1
	case 1:
		return -1
	}
	panic(fmt.Sprintf("q: PredictFlips: a flipped column holds %v, not 0 or 1", v))
}
