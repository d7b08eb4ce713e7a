package ad

import (
	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas64"

	gemmasm "github.com/backpropq/backpropq/ad/internal/gemm"
)

type op uint8

const (
	opConst op = iota
	opVar
	opIdentity
	opStopGradient
	opMatMul
	opAdd
	opSub
	opMul
	opDiv
	opNeg
	opScale
	opExp
	opLog
	opLog1p
	opSqrt
	opSquare
	opAbs
	opSigmoid
	opLogSigmoid
	opSoftplus
	opTanh
	opReLU
	opLeakyReLU
	opClamp
	opSum
	opRowSum
	opColSum
	opLogSumExp
	opSoftmax
	opLogSoftmax
	opConcat
	opSlice
	opGather
	opOneHot
	opWhere
	opReshape
	opTranspose
	opBCELogits
	opSpecial // elementwise special functions (special.go)
	opLinalg  // matrix factorizations and solves (linalg.go)
)

var opNames = [...]string{
	"Const", "Var", "WithProvenance", "StopGradient", "MatMul", "Add", "Sub", "Mul", "Div",
	"Neg", "Scale", "Exp", "Log", "Log1p", "Sqrt", "Square", "Abs", "Sigmoid",
	"LogSigmoid", "Softplus", "Tanh", "ReLU", "LeakyReLU", "Clamp", "Sum", "RowSum",
	"ColSum", "LogSumExp", "Softmax", "LogSoftmax", "Concat", "Slice", "Gather",
	"OneHot", "Where", "Reshape", "Transpose", "BinaryCrossEntropyLogits", "Special", "Linalg",
}

func (o op) String() string { return opNames[o] }

func (o op) differentiable() bool {
	return o != opConst && o != opStopGradient && o != opOneHot
}

// unaryNode appends the output node of an elementwise or shape-changing op
// on a.
func unaryNode(o op, a *Tensor, rows, cols int) *Tensor {
	tp := tapeOf(a)
	t := tp.node(o, rows, cols)
	t.a = a
	t.prov = a.prov
	t.needsGrad = a.needsGrad && o.differentiable()
	return t
}

// MatMul returns the matrix product a·b. It panics with a *[ShapeError] if
// the columns of a differ from the rows of b.
func MatMul(a, b *Tensor) *Tensor { return MatMulT(a, b, false, false) }

// MatMulT returns op(a)·op(b), where op transposes its operand when the
// corresponding flag is set. It panics with a *[ShapeError] if the inner
// dimensions differ.
func MatMulT(a, b *Tensor, transA, transB bool) *Tensor {
	tp := tapeOf(a, b)
	m, k := a.rows, a.cols
	if transA {
		m, k = k, m
	}
	kb, n := b.rows, b.cols
	if transB {
		kb, n = n, kb
	}
	if k != kb {
		panic(shapeErr("MatMul", a, b))
	}
	t := tp.node(opMatMul, m, n)
	t.a, t.b = a, b
	t.i1 = flags(transA, transB)
	t.prov = a.prov.Union(b.prov)
	t.needsGrad = a.needsGrad || b.needsGrad
	gemm(transA, transB, 1, a.rows, a.cols, a.data, b.rows, b.cols, b.data, 0, m, n, t.data)
	return t
}

func flags(x, y bool) int {
	f := 0
	if x {
		f |= 1
	}
	if y {
		f |= 2
	}
	return f
}

// useKernel routes products to package gemm's kernel; it is false on CPUs
// without AVX2 and FMA, under the purego tag and under the openblas tag,
// where gonum's blas64 does them.
var useKernel = gemmasm.Available

// gemm computes c = alpha·op(a)·op(b) + beta·c on row-major dense buffers.
func gemm(ta, tb bool, alpha float64, ar, ac int, a []float64, br, bc int, b []float64, beta float64, cr, cc int, c []float64) {
	if useKernel {
		k := ac
		if ta {
			k = ar
		}
		gemmasm.Dgemm(ta, tb, cr, cc, k, alpha, a, ac, b, bc, beta, c, cc)
		return
	}
	tA, tB := blas.NoTrans, blas.NoTrans
	if ta {
		tA = blas.Trans
	}
	if tb {
		tB = blas.Trans
	}
	blas64.Gemm(tA, tB, alpha,
		blas64.General{Rows: ar, Cols: ac, Stride: ac, Data: a},
		blas64.General{Rows: br, Cols: bc, Stride: bc, Data: b},
		beta,
		blas64.General{Rows: cr, Cols: cc, Stride: cc, Data: c})
}

func (t *Tensor) backwardMatMul() {
	a, b, g := t.a, t.b, t.grad
	ta, tb := t.i1&1 != 0, t.i1&2 != 0
	m, n := t.rows, t.cols
	if a.needsGrad {
		ga, add := a.gradDst()
		beta := beta(add)
		switch {
		case !ta && !tb: // dA = G·Bᵀ
			gemm(false, true, 1, m, n, g, b.rows, b.cols, b.data, beta, a.rows, a.cols, ga)
		case !ta && tb: // dA = G·B
			gemm(false, false, 1, m, n, g, b.rows, b.cols, b.data, beta, a.rows, a.cols, ga)
		case ta && !tb: // dA = B·Gᵀ
			gemm(false, true, 1, b.rows, b.cols, b.data, m, n, g, beta, a.rows, a.cols, ga)
		default: // dA = Bᵀ·Gᵀ
			gemm(true, true, 1, b.rows, b.cols, b.data, m, n, g, beta, a.rows, a.cols, ga)
		}
	}
	if b.needsGrad {
		gb, add := b.gradDst()
		beta := beta(add)
		switch {
		case !ta && !tb: // dB = Aᵀ·G
			gemm(true, false, 1, a.rows, a.cols, a.data, m, n, g, beta, b.rows, b.cols, gb)
		case !ta && tb: // dB = Gᵀ·A
			gemm(true, false, 1, m, n, g, a.rows, a.cols, a.data, beta, b.rows, b.cols, gb)
		case ta && !tb: // dB = A·G
			gemm(false, false, 1, a.rows, a.cols, a.data, m, n, g, beta, b.rows, b.cols, gb)
		default: // dB = Gᵀ·Aᵀ
			gemm(true, true, 1, m, n, g, a.rows, a.cols, a.data, beta, b.rows, b.cols, gb)
		}
	}
}

// broadcastDim returns the common size of two dimensions, each of which
// must equal it or be 1.
func broadcastDim(x, y int) (int, bool) {
	switch {
	case x == y:
		return x, true
	case x == 1:
		return y, true
	case y == 1:
		return x, true
	}
	return 0, false
}

func binary(o op, a, b *Tensor) *Tensor {
	tp := tapeOf(a, b)
	r, okr := broadcastDim(a.rows, b.rows)
	c, okc := broadcastDim(a.cols, b.cols)
	if !okr || !okc {
		panic(shapeErr(o.String(), a, b))
	}
	t := tp.node(o, r, c)
	t.a, t.b = a, b
	t.prov = a.prov.Union(b.prov)
	t.needsGrad = a.needsGrad || b.needsGrad
	if a.rows == r && a.cols == c && b.rows == r && b.cols == c {
		binaryRow(o, t.data, a.data, b.data)
		return t
	}
	for i := 0; i < r; i++ {
		binaryRow(o, t.data[i*c:(i+1)*c], rowOf(a, i), rowOf(b, i))
	}
	return t
}

// stride returns the step through an operand row x that broadcasts
// against an output row of length n: 1 when x has n elements, 0 when it
// has one.
func stride(x []float64, n int) int {
	if len(x) == n {
		return 1
	}
	return 0
}

// binaryRow sets out to x op y elementwise; each of x and y holds either
// len(out) elements or a single one that broadcasts.
func binaryRow(o op, out, x, y []float64) {
	sx, sy := stride(x, len(out)), stride(y, len(out))
	if sx == 1 && sy == 1 {
		x, y = x[:len(out)], y[:len(out)]
		switch o {
		case opAdd:
			for i := range out {
				out[i] = x[i] + y[i]
			}
		case opSub:
			for i := range out {
				out[i] = x[i] - y[i]
			}
		case opMul:
			for i := range out {
				out[i] = x[i] * y[i]
			}
		case opDiv:
			for i := range out {
				out[i] = x[i] / y[i]
			}
		}
		return
	}
	switch o {
	case opAdd:
		for i := range out {
			out[i] = x[i*sx] + y[i*sy]
		}
	case opSub:
		for i := range out {
			out[i] = x[i*sx] - y[i*sy]
		}
	case opMul:
		for i := range out {
			out[i] = x[i*sx] * y[i*sy]
		}
	case opDiv:
		for i := range out {
			out[i] = x[i*sx] / y[i*sy]
		}
	}
}

// rowOf returns row i of x, or its only row when x broadcasts along rows.
func rowOf(x *Tensor, i int) []float64 {
	if x.rows == 1 {
		i = 0
	}
	return x.data[i*x.cols : (i+1)*x.cols]
}

// gradRowOf is [rowOf] for the gradient, or nil when x needs none.
func gradRowOf(x *Tensor, i int) []float64 {
	if !x.needsGrad {
		return nil
	}
	if x.rows == 1 {
		i = 0
	}
	return x.grad[i*x.cols : (i+1)*x.cols]
}

func (t *Tensor) backwardBinary() {
	a, b, c := t.a, t.b, t.cols
	for _, wrtB := range [2]bool{false, true} {
		x := a
		if wrtB {
			x = b
		}
		if !x.needsGrad {
			continue
		}
		if x.rows != t.rows || x.cols != t.cols {
			// A broadcast operand sums contributions from several
			// output elements.
			x.gradBuf()
			for i := 0; i < t.rows; i++ {
				binaryGrad(t.op, wrtB, gradRowOf(x, i), t.grad[i*c:(i+1)*c], t.data[i*c:(i+1)*c], rowOf(a, i), rowOf(b, i), true)
			}
			continue
		}
		d, add := x.gradDst()
		if a.rows == b.rows && a.cols == b.cols {
			binaryGrad(t.op, wrtB, d, t.grad, t.data, a.data, b.data, add)
			continue
		}
		for i := 0; i < t.rows; i++ {
			binaryGrad(t.op, wrtB, d[i*c:(i+1)*c], t.grad[i*c:(i+1)*c], t.data[i*c:(i+1)*c], rowOf(a, i), rowOf(b, i), add)
		}
	}
}

// binaryGrad puts the gradient of out = x op y with respect to x, or to y
// when wrtY is set, into d, given g = dL/dout. Each of d, x and y holds
// len(g) elements or a single one that broadcasts; d is a single element
// only when add is set.
func binaryGrad(o op, wrtY bool, d, g, out, x, y []float64, add bool) {
	n := len(g)
	sd, sx, sy := stride(d, n), stride(x, n), stride(y, n)
	out = out[:n]
	switch {
	case o == opAdd || o == opSub && !wrtY:
		if sd == 1 {
			putAll(d[:n], g, add)
			break
		}
		for i, v := range g {
			put(d, i*sd, v, add)
		}
	case o == opSub:
		for i, v := range g {
			put(d, i*sd, -v, add)
		}
	case o == opMul && !wrtY:
		for i, v := range g {
			put(d, i*sd, v*y[i*sy], add)
		}
	case o == opMul:
		for i, v := range g {
			put(d, i*sd, v*x[i*sx], add)
		}
	case o == opDiv && !wrtY:
		for i, v := range g {
			put(d, i*sd, v/y[i*sy], add)
		}
	default: // d(x/y)/dy = -out/y
		for i, v := range g {
			put(d, i*sd, -v*out[i]/y[i*sy], add)
		}
	}
}

// Add returns a + b elementwise. Either operand may broadcast: a dimension
// of size 1 stretches to the other operand's, so a scalar [1x1], a row
// [1xD] or a column [Bx1] combines with a [BxD] tensor. Any other shape
// mismatch panics with a *[ShapeError].
func Add(a, b *Tensor) *Tensor { return binary(opAdd, a, b) }

// Sub returns a - b elementwise, broadcasting as [Add] does.
func Sub(a, b *Tensor) *Tensor { return binary(opSub, a, b) }

// Mul returns a * b elementwise, broadcasting as [Add] does.
func Mul(a, b *Tensor) *Tensor { return binary(opMul, a, b) }

// Div returns a / b elementwise, broadcasting as [Add] does.
func Div(a, b *Tensor) *Tensor { return binary(opDiv, a, b) }

// StopGradient returns a with the same value and provenance (data still
// flows) but no gradient path back to a.
func StopGradient(a *Tensor) *Tensor {
	tp := tapeOf(a)
	t := tp.bare(opStopGradient, a.rows, a.cols)
	t.data = a.data
	t.a = a
	t.prov = a.prov
	return t
}
