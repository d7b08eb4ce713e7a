package ad

import (
	"fmt"
	"math"

	"gonum.org/v1/gonum/floats"
)

func reduce(o op, a *Tensor, rows, cols int, scale float64) *Tensor {
	t := unaryNode(o, a, rows, cols)
	t.f1 = scale
	switch o {
	case opSum:
		t.data[0] = scale * floats.Sum(a.data)
	case opRowSum:
		for i := range t.data {
			t.data[i] = scale * floats.Sum(a.data[i*a.cols:(i+1)*a.cols])
		}
	case opColSum:
		copy(t.data, a.data[:a.cols])
		for i := 1; i < a.rows; i++ {
			floats.Add(t.data, a.data[i*a.cols:(i+1)*a.cols])
		}
		if scale != 1 {
			floats.Scale(scale, t.data)
		}
	}
	return t
}

func (t *Tensor) backwardReduce() {
	a, g, s := t.a, t.grad, t.f1
	d, add := a.gradDst()
	for i := 0; i < a.rows; i++ {
		row := d[i*a.cols : (i+1)*a.cols]
		switch t.op {
		case opSum:
			putConst(row, s*g[0], add)
		case opRowSum:
			putConst(row, s*g[i], add)
		case opColSum:
			if add {
				floats.AddScaled(row, s, g)
			} else {
				floats.ScaleTo(row, s, g)
			}
		}
	}
}

// putConst puts v into every element of d.
func putConst(d []float64, v float64, add bool) {
	if add {
		floats.AddConst(v, d)
		return
	}
	for i := range d {
		d[i] = v
	}
}

// Sum returns the sum of every element of a, as [1x1].
func Sum(a *Tensor) *Tensor { return reduce(opSum, a, 1, 1, 1) }

// Mean returns the mean of every element of a, as [1x1].
func Mean(a *Tensor) *Tensor { return reduce(opSum, a, 1, 1, 1/float64(a.rows*a.cols)) }

// RowSum returns the sum of each row of a, as [Bx1].
func RowSum(a *Tensor) *Tensor { return reduce(opRowSum, a, a.rows, 1, 1) }

// RowMean returns the mean of each row of a, as [Bx1].
func RowMean(a *Tensor) *Tensor { return reduce(opRowSum, a, a.rows, 1, 1/float64(a.cols)) }

// ColSum returns the sum of each column of a, as [1xD].
func ColSum(a *Tensor) *Tensor { return reduce(opColSum, a, 1, a.cols, 1) }

// ColMean returns the mean of each column of a, as [1xD].
func ColMean(a *Tensor) *Tensor { return reduce(opColSum, a, 1, a.cols, 1/float64(a.rows)) }

// LogSumExp returns log Σ_j exp(a_ij) for each row i, as [Bx1], computed
// without overflow.
func LogSumExp(a *Tensor) *Tensor {
	t := unaryNode(opLogSumExp, a, a.rows, 1)
	for i := 0; i < a.rows; i++ {
		t.data[i] = logSumExp(a.data[i*a.cols : (i+1)*a.cols])
	}
	return t
}

func logSumExp(row []float64) float64 {
	m := math.Inf(-1)
	for _, v := range row {
		m = max(m, v)
	}
	if math.IsInf(m, 0) {
		return m
	}
	s := 0.0
	for _, v := range row {
		s += math.Exp(v - m)
	}
	return m + math.Log(s)
}

// Softmax returns exp(a_ij) / Σ_k exp(a_ik) for each row i.
func Softmax(a *Tensor) *Tensor {
	t := unaryNode(opSoftmax, a, a.rows, a.cols)
	for i := 0; i < a.rows; i++ {
		row, out := a.data[i*a.cols:(i+1)*a.cols], t.data[i*a.cols:(i+1)*a.cols]
		lse := logSumExp(row)
		for j, v := range row {
			out[j] = math.Exp(v - lse)
		}
	}
	return t
}

// LogSoftmax returns a_ij - log Σ_k exp(a_ik) for each row i.
func LogSoftmax(a *Tensor) *Tensor {
	t := unaryNode(opLogSoftmax, a, a.rows, a.cols)
	for i := 0; i < a.rows; i++ {
		row, out := a.data[i*a.cols:(i+1)*a.cols], t.data[i*a.cols:(i+1)*a.cols]
		lse := logSumExp(row)
		for j, v := range row {
			out[j] = v - lse
		}
	}
	return t
}

func (t *Tensor) backwardSoftmax() {
	a, c := t.a, t.a.cols
	d, add := a.gradDst()
	for i := 0; i < a.rows; i++ {
		drow := d[i*c : (i+1)*c]
		switch t.op {
		case opLogSumExp:
			g, lse := t.grad[i], t.data[i]
			for j, v := range a.data[i*c : (i+1)*c] {
				put(drow, j, g*math.Exp(v-lse), add)
			}
		case opSoftmax:
			y, g := t.data[i*c:(i+1)*c], t.grad[i*c:(i+1)*c]
			dot := floats.Dot(g, y)
			for j := range y {
				put(drow, j, y[j]*(g[j]-dot), add)
			}
		case opLogSoftmax:
			y, g := t.data[i*c:(i+1)*c], t.grad[i*c:(i+1)*c]
			sum := floats.Sum(g)
			for j := range y {
				put(drow, j, g[j]-math.Exp(y[j])*sum, add)
			}
		}
	}
}

// Concat joins tensors with the same number of rows along the columns. It
// panics with a *[ShapeError] if the rows differ.
func Concat(xs ...*Tensor) *Tensor {
	if len(xs) == 0 {
		panic("ad: Concat of no tensors")
	}
	tp := tapeOf(xs...)
	cols := 0
	for _, x := range xs {
		if x.rows != xs[0].rows {
			panic(shapeErr("Concat", xs[0], x))
		}
		cols += x.cols
	}
	t := tp.node(opConcat, xs[0].rows, cols)
	t.args = append(t.args, xs...)
	off := 0
	for _, x := range xs {
		t.prov = t.prov.Union(x.prov)
		t.needsGrad = t.needsGrad || x.needsGrad
		for i := 0; i < x.rows; i++ {
			copy(t.data[i*cols+off:i*cols+off+x.cols], x.data[i*x.cols:(i+1)*x.cols])
		}
		off += x.cols
	}
	return t
}

func (t *Tensor) backwardConcat() {
	off := 0
	for _, x := range t.args {
		if x.needsGrad {
			d, add := x.gradDst()
			for i := 0; i < x.rows; i++ {
				putAll(d[i*x.cols:(i+1)*x.cols], t.grad[i*t.cols+off:i*t.cols+off+x.cols], add)
			}
		}
		off += x.cols
	}
}

// Slice returns columns [from, to) of a. It panics if the range is empty or
// outside a.
func Slice(a *Tensor, from, to int) *Tensor {
	if from < 0 || to > a.cols || from >= to {
		panic(fmt.Sprintf("ad: Slice: columns [%d, %d) of %s", from, to, a.shape()))
	}
	t := unaryNode(opSlice, a, a.rows, to-from)
	t.i1 = from
	for i := 0; i < a.rows; i++ {
		copy(t.data[i*t.cols:(i+1)*t.cols], a.data[i*a.cols+from:i*a.cols+to])
	}
	return t
}

func (t *Tensor) backwardSlice() {
	a := t.a
	ga := a.gradBuf()
	for i := 0; i < t.rows; i++ {
		floats.Add(ga[i*a.cols+t.i1:i*a.cols+t.i1+t.cols], t.grad[i*t.cols:(i+1)*t.cols])
	}
}

// IndexError is the panic of an op (Gather, OneHot) given an index that is
// not an integer in [0, N): a value that is not a class index (a relaxed
// or mean-field value, say) used as one; or, with Grad set, an index that
// carries a gradient path (a straight-through value), whose gradient an
// index cannot pass on. Like [ShapeError] it is a typed panic, which
// callers that run user code can turn into an error.
type IndexError struct {
	Op    string
	Value float64
	N     int
	Grad  bool
}

func (e *IndexError) Error() string {
	if e.Grad {
		return fmt.Sprintf("ad: %s: the index carries a gradient (a relaxed or straight-through value), which no gradient can pass through an index", e.Op)
	}
	return fmt.Sprintf("ad: %s: index %v is not an integer in [0, %d)", e.Op, e.Value, e.N)
}

// index converts a value of an index tensor to an int in [0, n), panicking
// with an *IndexError naming the op when it is not.
func index(o op, v float64, n int) int {
	k := int(v)
	if float64(k) != v || k < 0 || k >= n {
		panic(&IndexError{Op: o.String(), Value: v, N: n})
	}
	return k
}

// Gather returns a[i, idx_i] for each row i, as [Bx1]. idx is a [Bx1]
// tensor of integer-valued column indices; it carries no gradient but its
// provenance joins the output's. Gather panics if idx is not [Bx1], if an
// index is not an integer in [0, cols), or if idx has a gradient path (no
// gradient can pass through an index, so it would be lost without a word).
func Gather(a, idx *Tensor) *Tensor {
	tp := tapeOf(a, idx)
	if idx.rows != a.rows || idx.cols != 1 {
		panic(shapeErr("Gather", a, idx))
	}
	if idx.needsGrad {
		panic(&IndexError{Op: opGather.String(), N: a.cols, Grad: true})
	}
	t := tp.node(opGather, a.rows, 1)
	t.a, t.b = a, idx
	t.prov = a.prov.Union(idx.prov)
	t.needsGrad = a.needsGrad
	for i := 0; i < a.rows; i++ {
		t.data[i] = a.data[i*a.cols+index(opGather, idx.data[i], a.cols)]
	}
	return t
}

func (t *Tensor) backwardGather() {
	a := t.a
	ga := a.gradBuf()
	for i, v := range t.grad {
		ga[i*a.cols+int(t.b.data[i])] += v
	}
}

// OneHot returns the [B x n] one-hot encoding of idx, a [Bx1] tensor of
// integer-valued class indices. The result has idx's provenance and no
// gradient. OneHot panics if idx is not a column or an index is not an
// integer in [0, n).
func OneHot(idx *Tensor, n int) *Tensor {
	if idx.cols != 1 {
		panic(&ShapeError{Op: "OneHot", A: [2]int{idx.rows, idx.cols}, B: [2]int{idx.rows, 1}})
	}
	t := unaryNode(opOneHot, idx, idx.rows, n)
	clear(t.data)
	for i, v := range idx.data {
		t.data[i*n+index(opOneHot, v, n)] = 1
	}
	return t
}

// Where returns a where mask is non-zero and b elsewhere, elementwise. The
// three operands broadcast as in [Add]; typically mask is a [Bx1] column
// selecting whole rows. The mask carries no gradient but its provenance
// joins the output's. Where panics with a *[ShapeError] if the shapes do
// not broadcast.
func Where(mask, a, b *Tensor) *Tensor {
	tp := tapeOf(mask, a, b)
	r, okr := broadcastDim(a.rows, b.rows)
	c, okc := broadcastDim(a.cols, b.cols)
	if !okr || !okc {
		panic(shapeErr("Where", a, b))
	}
	r, okr = broadcastDim(r, mask.rows)
	c, okc = broadcastDim(c, mask.cols)
	if !okr || !okc {
		ra, ca := max(a.rows, b.rows), max(a.cols, b.cols)
		panic(&ShapeError{Op: "Where", A: [2]int{mask.rows, mask.cols}, B: [2]int{ra, ca}})
	}
	t := tp.node(opWhere, r, c)
	t.a, t.b, t.c = a, b, mask
	t.prov = mask.prov.Union(a.prov).Union(b.prov)
	t.needsGrad = a.needsGrad || b.needsGrad
	for i := 0; i < r; i++ {
		mr, ar, br := rowOf(mask, i), rowOf(a, i), rowOf(b, i)
		sm, sa, sb := stride(mr, c), stride(ar, c), stride(br, c)
		row := t.data[i*c : (i+1)*c]
		for j := range row {
			if mr[j*sm] != 0 {
				row[j] = ar[j*sa]
			} else {
				row[j] = br[j*sb]
			}
		}
	}
	return t
}

func (t *Tensor) backwardWhere() {
	a, b, mask := t.a, t.b, t.c
	if a.needsGrad {
		a.gradBuf()
	}
	if b.needsGrad {
		b.gradBuf()
	}
	c := t.cols
	for i := 0; i < t.rows; i++ {
		mr, ga, gb := rowOf(mask, i), gradRowOf(a, i), gradRowOf(b, i)
		sm, sa, sb := stride(mr, c), stride(ga, c), stride(gb, c)
		for j, v := range t.grad[i*c : (i+1)*c] {
			switch {
			case mr[j*sm] == 0:
				if gb != nil {
					gb[j*sb] += v
				}
			case ga != nil:
				ga[j*sa] += v
			}
		}
	}
}

// Reshape returns a with the same row-major data viewed as [rows x cols];
// the value is shared, not copied. It panics with a *[ShapeError] if the
// number of elements differs or a dimension is not positive.
func Reshape(a *Tensor, rows, cols int) *Tensor {
	if rows <= 0 || cols <= 0 || rows*cols != a.rows*a.cols {
		panic(&ShapeError{Op: "Reshape", A: [2]int{a.rows, a.cols}, B: [2]int{rows, cols}})
	}
	tp := tapeOf(a)
	t := tp.bare(opReshape, rows, cols)
	t.data = a.data
	t.a = a
	t.prov = a.prov
	t.needsGrad = a.needsGrad
	return t
}

// Transpose returns aᵀ.
func Transpose(a *Tensor) *Tensor {
	t := unaryNode(opTranspose, a, a.cols, a.rows)
	for i := 0; i < a.rows; i++ {
		for j := 0; j < a.cols; j++ {
			t.data[j*a.rows+i] = a.data[i*a.cols+j]
		}
	}
	return t
}

func (t *Tensor) backwardShape() {
	a := t.a
	d, add := a.gradDst()
	if t.op == opReshape {
		putAll(d, t.grad, add)
		return
	}
	for i := 0; i < a.rows; i++ {
		for j := 0; j < a.cols; j++ {
			put(d, i*a.cols+j, t.grad[j*a.rows+i], add)
		}
	}
}

func (t *Tensor) backward() {
	switch t.op {
	case opConst, opVar, opStopGradient, opOneHot:
	case opIdentity:
		d, add := t.a.gradDst()
		putAll(d, t.grad, add)
	case opMatMul:
		t.backwardMatMul()
	case opAdd, opSub, opMul, opDiv:
		t.backwardBinary()
	case opSum, opRowSum, opColSum:
		t.backwardReduce()
	case opLogSumExp, opSoftmax, opLogSoftmax:
		t.backwardSoftmax()
	case opConcat:
		t.backwardConcat()
	case opSlice:
		t.backwardSlice()
	case opGather:
		t.backwardGather()
	case opWhere:
		t.backwardWhere()
	case opReshape, opTranspose:
		t.backwardShape()
	case opBCELogits:
		t.backwardBCELogits()
	case opSpecial:
		t.backwardSpecial()
	case opLinalg:
		t.backwardLinalg()
	default:
		t.backwardUnary()
	}
}
