package ad

import (
	"github.com/backpropq/backpropq/ad/internal/vmath"
	"github.com/backpropq/backpropq/internal/par"
)

// BinaryCrossEntropyLogits returns, for each row i, the sum over columns j
// of softplus(l_ij) - x_ij·l_ij, where l is logits: a [B x 1] tensor. For
// x in {0, 1} this is the binary cross-entropy of x against sigmoid(l),
// the negative log-probability of x under independent Bernoulli variables
// with logits l. It equals RowSum(Sub(Softplus(logits), Mul(x, logits)))
// to rounding, in one pass with one exponential and one logarithm per
// element, and its gradients are (sigmoid(l) - x)·g for l and -l·g for x.
//
// The operands broadcast as in [Add]. When they have the same shape, or
// one is a single row [1 x D] and the other [B x D], the fused pass runs;
// other broadcasts are computed by the composed ops.
func BinaryCrossEntropyLogits(logits, x *Tensor) *Tensor {
	tp := tapeOf(logits, x)
	rows := max(logits.rows, x.rows)
	fused := logits.cols == x.cols && (logits.rows == x.rows || min(logits.rows, x.rows) == 1)
	if !fused {
		return RowSum(Sub(Softplus(logits), Mul(x, logits)))
	}
	t := tp.node(opBCELogits, rows, 1)
	t.a, t.b = logits, x
	t.prov = logits.prov.Union(x.prov)
	t.needsGrad = logits.needsGrad || x.needsGrad
	t.aux = tp.alloc(rows * logits.cols)
	par.Do((*bceTask)(t), min(rows, parallelParts(rows*logits.cols)))
	return t
}

// bceTask computes the output of [BinaryCrossEntropyLogits], a range of
// rows per part.
type bceTask Tensor

func (b *bceTask) Part(p, parts, _ int) {
	t := (*Tensor)(b)
	c := t.a.cols
	lo, hi := par.Range(p, parts, t.rows, 1)
	for i := lo; i < hi; i++ {
		t.data[i] = bceRow(t.aux[i*c:(i+1)*c], rowOf(t.a, i), rowOf(t.b, i))
	}
}

// bceRow returns Σ softplus(l) - x·l over a row and sets sig to sigmoid(l).
func bceRow(sig, l, x []float64) float64 {
	sig, x = sig[:len(l)], x[:len(l)]
	var sp [256]float64
	var sum float64
	for lo := 0; lo < len(l); lo += len(sp) {
		hi := min(lo+len(sp), len(l))
		vmath.SoftplusSigmoid(l[lo:hi], sp[:], sig[lo:hi])
		for j, v := range l[lo:hi] {
			sum += sp[j] - x[lo+j]*v
		}
	}
	return sum
}

func (t *Tensor) backwardBCELogits() {
	l, x, g := t.a, t.b, t.grad
	c := l.cols
	dl, addL := bceGradDst(l, t.rows)
	dx, addX := bceGradDst(x, t.rows)
	for i := range t.rows {
		gi, sig := g[i], t.aux[i*c:(i+1)*c]
		if dl != nil {
			d, xi := rowOf2(dl, l.rows, i, c), rowOf(x, i)[:c]
			for j, s := range sig {
				put(d, j, (s-xi[j])*gi, addL)
			}
		}
		if dx != nil {
			d, li := rowOf2(dx, x.rows, i, c), rowOf(l, i)[:c]
			for j, v := range li {
				put(d, j, -v*gi, addX)
			}
		}
	}
}

// bceGradDst returns the gradient buffer of operand y, or nil if y needs
// none, and whether to add into it: an operand broadcast along rows sums
// over the output rows, so it always adds (into zeros at first).
func bceGradDst(y *Tensor, rows int) ([]float64, bool) {
	switch {
	case !y.needsGrad:
		return nil, false
	case y.rows == rows:
		return y.gradDst()
	}
	return y.gradBuf(), true
}

// rowOf2 returns row i of a buffer of rows x cols, or its only row.
func rowOf2(d []float64, rows, i, cols int) []float64 {
	if rows == 1 {
		i = 0
	}
	return d[i*cols : (i+1)*cols]
}
