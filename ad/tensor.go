package ad

import (
	"fmt"

	"gonum.org/v1/gonum/blas/blas64"
	"gonum.org/v1/gonum/mat"
)

// Var is a trainable value that outlives any one tape: a parameter. Value
// and Grad have the same shape. A Var is bound to a tape with [Tape.Var];
// [Tape.Backward] adds into Grad, which the caller zeroes between steps
// ([Var.ZeroGrad]). A Var is not safe for concurrent Backward calls; see
// [Tape.ComputeGradients] for the parallel form.
type Var struct {
	Value *mat.Dense
	Grad  *mat.Dense

	// leaves and set are scratch of [Tape.SetGradients].
	leaves int
	set    bool
}

// NewVar returns a Var holding value (not copied) and a zero gradient of the
// same shape.
func NewVar(value *mat.Dense) *Var {
	r, c := value.Dims()
	return &Var{Value: value, Grad: mat.NewDense(r, c, nil)}
}

// ZeroGrad sets every element of v.Grad to zero, allocating Grad if it is
// nil.
func (v *Var) ZeroGrad() {
	if v.Grad == nil {
		r, c := v.Value.Dims()
		v.Grad = mat.NewDense(r, c, nil)
		return
	}
	v.Grad.Zero()
}

// Tensor is a node of a [Tape]: a [rows x cols] row-major value, its
// gradient after a backward pass, and its provenance. Tensors are created
// by a tape's constructors and by the ops of this package, and are valid
// until the tape is reset.
type Tensor struct {
	tape       *Tape
	index      int
	rows, cols int
	data       []float64
	grad       []float64
	aux        []float64 // op-specific values saved for the backward pass
	varGrad    bool      // grad is the memory of v.Grad, not the tape's
	fresh      bool      // grad holds no contribution yet, whatever its content
	owned      bool      // data came from the tape's pool
	prov       Provenance
	needsGrad  bool
	op         op
	a, b, c    *Tensor
	args       []*Tensor
	f1, f2     float64
	i1         int
	v          *Var
	dense      mat.Dense
}

// Dims returns the number of rows and columns of t.
func (t *Tensor) Dims() (rows, cols int) { return t.rows, t.cols }

// Rows returns the number of rows of t, the batch size.
func (t *Tensor) Rows() int { return t.rows }

// Cols returns the number of columns of t.
func (t *Tensor) Cols() int { return t.cols }

// Data returns t's values in row-major order. The slice aliases the tensor
// and must not be modified.
func (t *Tensor) Data() []float64 { return t.data }

// At returns the element at row i, column j.
func (t *Tensor) At(i, j int) float64 {
	if i < 0 || i >= t.rows || j < 0 || j >= t.cols {
		panic(fmt.Sprintf("ad: index (%d, %d) out of range for %s", i, j, t.shape()))
	}
	return t.data[i*t.cols+j]
}

// Item returns the single value of a [1 x 1] tensor; it panics for any
// other shape.
func (t *Tensor) Item() float64 {
	if t.rows != 1 || t.cols != 1 {
		panic(&ShapeError{Op: "Item", A: [2]int{t.rows, t.cols}, B: [2]int{1, 1}})
	}
	return t.data[0]
}

// Value returns t's value as a *mat.Dense that aliases the tensor's memory
// and must not be modified.
func (t *Tensor) Value() *mat.Dense {
	t.dense.SetRawMatrix(blas64.General{Rows: t.rows, Cols: t.cols, Stride: t.cols, Data: t.data})
	return &t.dense
}

// Provenance returns the set of stochastic-site ids t depends on.
func (t *Tensor) Provenance() Provenance { return t.prov }

// Tape returns the tape t belongs to.
func (t *Tensor) Tape() *Tape { return t.tape }

// RequiresGrad reports whether t depends on a [Var], so that a backward
// pass through it can reach a parameter.
func (t *Tensor) RequiresGrad() bool { return t.needsGrad }

func (t *Tensor) shape() string { return fmt.Sprintf("[%dx%d]", t.rows, t.cols) }

// ShapeError is the panic value of an op whose operands have incompatible
// shapes.
type ShapeError struct {
	Op   string
	A, B [2]int
}

func (e *ShapeError) Error() string {
	return fmt.Sprintf("ad: %s: shape mismatch [%dx%d] and [%dx%d]", e.Op, e.A[0], e.A[1], e.B[0], e.B[1])
}

func shapeErr(op string, a, b *Tensor) *ShapeError {
	return &ShapeError{Op: op, A: [2]int{a.rows, a.cols}, B: [2]int{b.rows, b.cols}}
}
