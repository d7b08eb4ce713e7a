package q

import (
	"fmt"

	"gonum.org/v1/gonum/mat"
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
	pre := mat.NewDense(len(variants)*rows, h, nil)
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
	defer n.tape.Reset()
	t := n.tape.Const(pre)
	m := n.mlp
	for i, l := range m.Layers {
		if i > 0 {
			t = l.Forward(t)
		}
		if i < len(m.Activations) {
			t = m.Activations[i].Apply(t)
		}
	}
	vals := t.Data()
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
