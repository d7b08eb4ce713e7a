package ad

import (
	"fmt"
	"math"

	"gonum.org/v1/gonum/floats"
	"gonum.org/v1/gonum/mat"
)

// Tape records the ops of one run for reverse-mode differentiation. The
// zero value is an empty tape ready to use. A tape is not safe for
// concurrent use; use one tape per goroutine.
type Tape struct {
	nodes []*Tensor // nodes[:n] are live; the rest are kept for reuse
	n     int
	pool  map[int][][]float64
	// direct records that the last backward pass added into the Vars'
	// Grad as it went ([Tape.Backward]).
	direct bool
	// gen counts the resets; locals are the slots of Local; scratch
	// holds the buffers of Scratch.
	gen     uint64
	locals  []any
	scratch [][]float64
}

// NewTape returns an empty tape.
func NewTape() *Tape { return &Tape{} }

// Len returns the number of nodes recorded since the last reset.
func (tp *Tape) Len() int { return tp.n }

// Reset forgets every node and keeps their memory for the next run. Tensors
// created before the reset must not be used after it, nor the records
// that hold them (sites, traces) that packages above ad keep in the
// tape's slots ([Tape.Local]).
func (tp *Tape) Reset() {
	for _, t := range tp.nodes[:tp.n] {
		if t.owned {
			tp.free(t.data)
		}
		if t.grad != nil && !t.varGrad {
			tp.free(t.grad)
		}
		if t.aux != nil {
			tp.free(t.aux)
		}
		args := t.args[:0]
		*t = Tensor{args: args}
	}
	for i, buf := range tp.scratch {
		tp.free(buf)
		tp.scratch[i] = nil
	}
	tp.scratch = tp.scratch[:0]
	tp.n = 0
	tp.direct = false
	tp.gen++
}

// poison makes alloc fill every buffer with NaN, so that tests catch a
// kernel that reads memory it has not written.
var poison bool

func (tp *Tape) alloc(n int) []float64 {
	var buf []float64
	if l := tp.pool[n]; len(l) > 0 {
		buf = l[len(l)-1]
		tp.pool[n] = l[:len(l)-1]
	} else {
		buf = make([]float64, n)
	}
	if poison {
		for i := range buf {
			buf[i] = math.NaN()
		}
	}
	return buf
}

func (tp *Tape) allocZero(n int) []float64 {
	buf := tp.alloc(n)
	clear(buf)
	return buf
}

func (tp *Tape) free(buf []float64) {
	if tp.pool == nil {
		tp.pool = make(map[int][][]float64)
	}
	tp.pool[len(buf)] = append(tp.pool[len(buf)], buf)
}

// node appends a fresh node with an owned, uninitialized value buffer.
func (tp *Tape) node(o op, rows, cols int) *Tensor {
	if rows <= 0 || cols <= 0 {
		panic(fmt.Sprintf("ad: %s: invalid shape [%dx%d]", o, rows, cols))
	}
	t := tp.bare(o, rows, cols)
	t.data = tp.alloc(rows * cols)
	t.owned = true
	return t
}

// bare appends a node without a value buffer.
func (tp *Tape) bare(o op, rows, cols int) *Tensor {
	var t *Tensor
	if tp.n < len(tp.nodes) {
		t = tp.nodes[tp.n]
	} else {
		t = new(Tensor)
		tp.nodes = append(tp.nodes, t)
	}
	t.tape, t.index, t.op, t.rows, t.cols = tp, tp.n, o, rows, cols
	tp.n++
	return t
}

// Const returns a tensor holding a copy of m. It has no provenance and no
// gradient.
func (tp *Tape) Const(m mat.Matrix) *Tensor {
	r, c := m.Dims()
	t := tp.node(opConst, r, c)
	if rm, ok := m.(mat.RawMatrixer); ok {
		raw := rm.RawMatrix()
		for i := 0; i < r; i++ {
			copy(t.data[i*c:(i+1)*c], raw.Data[i*raw.Stride:i*raw.Stride+c])
		}
		return t
	}
	for i := 0; i < r; i++ {
		for j := 0; j < c; j++ {
			t.data[i*c+j] = m.At(i, j)
		}
	}
	return t
}

// FromData returns a [rows x cols] tensor holding a copy of data, which is
// in row-major order. It panics if len(data) != rows*cols.
func (tp *Tape) FromData(rows, cols int, data []float64) *Tensor {
	if len(data) != rows*cols {
		panic(fmt.Sprintf("ad: FromData: %d values for shape [%dx%d]", len(data), rows, cols))
	}
	t := tp.node(opConst, rows, cols)
	copy(t.data, data)
	return t
}

// Full returns a [rows x cols] tensor with every element v.
func (tp *Tape) Full(rows, cols int, v float64) *Tensor {
	t := tp.node(opConst, rows, cols)
	for i := range t.data {
		t.data[i] = v
	}
	return t
}

// Zeros returns a [rows x cols] tensor of zeros.
func (tp *Tape) Zeros(rows, cols int) *Tensor { return tp.Full(rows, cols, 0) }

// Scalar returns a [1 x 1] tensor holding v; it broadcasts against any
// shape in the elementwise ops.
func (tp *Tape) Scalar(v float64) *Tensor { return tp.Full(1, 1, v) }

// Var binds v to the tape: the returned leaf aliases v.Value, and a
// backward pass adds its gradient into v.Grad, allocating Grad if it is
// nil. The value must not change while the tape is in use. Tapes in
// different goroutines may bind the same Var at once when its Grad is not
// nil (as [NewVar] makes it). Var panics if
// v.Value is not contiguous (a view whose stride exceeds its columns) and
// with a *[ShapeError] if v.Grad's shape differs from v.Value's.
func (tp *Tape) Var(v *Var) *Tensor {
	r, c := v.Value.Dims()
	raw := v.Value.RawMatrix()
	if raw.Stride != c {
		panic("ad: Var: value must be a contiguous matrix")
	}
	if v.Grad == nil {
		v.Grad = mat.NewDense(r, c, nil)
	}
	if gr, gc := v.Grad.Dims(); gr != r || gc != c {
		panic(&ShapeError{Op: "Var", A: [2]int{r, c}, B: [2]int{gr, gc}})
	}
	t := tp.bare(opVar, r, c)
	t.data = raw.Data[:r*c]
	t.v = v
	t.needsGrad = true
	return t
}

// WithProvenance returns t with its provenance replaced by p. The value is
// shared and the gradient passes through unchanged. The tracer uses it to
// give a sampled value the provenance of its own site.
func (tp *Tape) WithProvenance(t *Tensor, p Provenance) *Tensor {
	tp.check(t)
	out := tp.bare(opIdentity, t.rows, t.cols)
	out.data = t.data
	out.a = t
	out.prov = p
	out.needsGrad = t.needsGrad
	return out
}

func (tp *Tape) check(ts ...*Tensor) {
	for _, t := range ts {
		if t == nil {
			panic("ad: nil tensor")
		}
		if t.tape != tp {
			panic("ad: tensors from different tapes")
		}
	}
}

func tapeOf(ts ...*Tensor) *Tape {
	tp := ts[0].tape
	tp.check(ts...)
	return tp
}

// Backward computes the gradient of loss, a [1 x 1] tensor, with respect to
// every node of the tape, and adds the gradients of the bound [Var]s into
// their Grad. It panics if loss is not [1 x 1].
//
// Backward adds into a Var's Grad as it goes rather than after the pass,
// which saves a pass over every parameter; a later [Tape.Grad] of the Var's
// leaf reads the Var's Grad. [Tape.ComputeGradients] and
// [Tape.AccumulateGradients] are the two-step form.
func (tp *Tape) Backward(loss *Tensor) {
	tp.computeGradients(loss, true)
	tp.AccumulateGradients()
}

// ComputeGradients is the first half of the two-step form of
// [Tape.Backward]: it computes the gradient of loss with respect to every
// node without touching any Var. Tapes running in separate goroutines may
// call it concurrently and then call [Tape.AccumulateGradients] one after
// another in a fixed order, which makes the summed gradient independent of
// the number of goroutines.
func (tp *Tape) ComputeGradients(loss *Tensor) { tp.computeGradients(loss, false) }

// computeGradients runs the backward pass. With direct set, the leaves of
// Vars whose Grad is contiguous use the Grad's memory as their gradient,
// so that the kernels add into it.
func (tp *Tape) computeGradients(loss *Tensor, direct bool) {
	tp.startBackward(loss, direct)
	tp.runBackward(loss)
}

// startBackward checks loss and forgets the gradients of the last pass,
// aliasing the Vars' Grad when direct is set.
func (tp *Tape) startBackward(loss *Tensor, direct bool) {
	tp.check(loss)
	if loss.rows != 1 || loss.cols != 1 {
		panic(&ShapeError{Op: "Backward", A: [2]int{loss.rows, loss.cols}, B: [2]int{1, 1}})
	}
	tp.direct = direct
	for _, t := range tp.nodes[:tp.n] {
		if t.grad != nil && !t.varGrad {
			tp.free(t.grad)
		}
		t.grad, t.varGrad, t.fresh = nil, false, false
		if direct && t.op == opVar && t.index < loss.index {
			if g := t.v.Grad.RawMatrix(); g.Stride == t.cols {
				t.grad, t.varGrad = g.Data[:t.rows*t.cols], true
			}
		}
	}
}

// runBackward seeds the gradient of loss with 1 and runs the backward
// kernels from loss down to the first node.
func (tp *Tape) runBackward(loss *Tensor) {
	loss.grad = tp.alloc(1)
	loss.grad[0] = 1
	for i := loss.index; i >= 0; i-- {
		t := tp.nodes[i]
		if t.grad != nil && t.needsGrad {
			t.backward()
		}
	}
}

// AccumulateGradients adds the gradients of the Var leaves computed by the
// last [Tape.ComputeGradients] into their Var.Grad.
func (tp *Tape) AccumulateGradients() {
	for _, t := range tp.nodes[:tp.n] {
		if t.op == opVar && t.grad != nil && !t.varGrad {
			g := t.v.Grad.RawMatrix()
			for i := 0; i < t.rows; i++ {
				floats.Add(g.Data[i*g.Stride:i*g.Stride+t.cols], t.grad[i*t.cols:(i+1)*t.cols])
			}
		}
	}
}

// Grad returns the gradient of the last backward pass with respect to t, as
// a new matrix; it is zero where t does not influence the loss. After
// [Tape.Backward], the leaf of a [Var] reads the Var's accumulated Grad.
func (tp *Tape) Grad(t *Tensor) *mat.Dense {
	tp.check(t)
	if t.op == opVar && tp.direct {
		return mat.DenseCopyOf(t.v.Grad)
	}
	g := mat.NewDense(t.rows, t.cols, nil)
	if t.grad != nil {
		copy(g.RawMatrix().Data, t.grad)
	}
	return g
}

// Gradients returns the gradients of loss with respect to each of wrt,
// which may be intermediate tensors or leaves, as new matrices. It leaves
// every [Var.Grad] unchanged. A tensor that does not influence loss
// through differentiable ops gets a zero gradient.
func (tp *Tape) Gradients(loss *Tensor, wrt ...*Tensor) []*mat.Dense {
	tp.check(wrt...)
	// Force the named tensors to receive gradients even when they do not
	// depend on a Var (a sampled value, say).
	marked := tp.markNeedsGrad(wrt)
	tp.ComputeGradients(loss)
	out := make([]*mat.Dense, len(wrt))
	for i, t := range wrt {
		out[i] = tp.Grad(t)
	}
	for _, t := range marked {
		t.needsGrad = false
	}
	return out
}

// markNeedsGrad sets needsGrad on wrt and on every later node that depends
// on one of them, returning the nodes it changed.
func (tp *Tape) markNeedsGrad(wrt []*Tensor) []*Tensor {
	var marked []*Tensor
	first := tp.n
	for _, t := range wrt {
		if !t.needsGrad {
			t.needsGrad = true
			marked = append(marked, t)
		}
		first = min(first, t.index)
	}
	for _, t := range tp.nodes[first:tp.n] {
		if !t.needsGrad && t.feedsGrad() {
			t.needsGrad = true
			marked = append(marked, t)
		}
	}
	return marked
}

// feedsGrad reports whether a gradient flows from t to an input that needs
// one. Index and mask operands (Gather's b, Where's c) carry none.
func (t *Tensor) feedsGrad() bool {
	if !t.op.differentiable() {
		return false
	}
	for _, x := range t.args {
		if x.needsGrad {
			return true
		}
	}
	b := t.b
	if t.op == opGather {
		b = nil
	}
	return t.a != nil && t.a.needsGrad || b != nil && b.needsGrad
}

// Backward kernels add their contribution to an input's gradient in one
// of two ways, so that the common case of a tensor with one consumer
// neither zeroes a buffer nor makes an extra pass:
//
//   - gradDst, for kernels that write every element once: the first
//     contribution is written straight into a new, unzeroed buffer, later
//     ones are added ([put], and beta for blas64.Gemm).
//   - gradBuf, for kernels that touch only part of the gradient or add
//     into an element several times: a zeroed buffer on first use.

// gradDst returns x's gradient buffer and whether a contribution must be
// added to it; when add is false the buffer is new, of unspecified
// content, and the caller must write every element.
func (x *Tensor) gradDst() (buf []float64, add bool) {
	switch {
	case x.grad == nil:
		x.grad = x.tape.alloc(len(x.data))
		return x.grad, false
	case x.fresh:
		x.fresh = false
		return x.grad, false
	}
	return x.grad, true
}

// gradBuf returns x's gradient buffer, allocating a zero one on first use.
func (x *Tensor) gradBuf() []float64 {
	switch {
	case x.grad == nil:
		x.grad = x.tape.allocZero(len(x.data))
	case x.fresh:
		clear(x.grad)
		x.fresh = false
	}
	return x.grad
}

// put adds v to d[i], or stores it when add is false.
func put(d []float64, i int, v float64, add bool) {
	if add {
		d[i] += v
	} else {
		d[i] = v
	}
}

// putAll is put for every element of s.
func putAll(d, s []float64, add bool) {
	if add {
		floats.Add(d, s)
	} else {
		copy(d, s)
	}
}

func beta(add bool) float64 {
	if add {
		return 1
	}
	return 0
}
