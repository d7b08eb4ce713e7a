package ad

import (
	"fmt"
	"math"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas64"

	gemmasm "github.com/backpropq/backpropq/ad/internal/gemm"
	"github.com/backpropq/backpropq/ad/internal/vmath"
	"github.com/backpropq/backpropq/internal/par"
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

func unary(o op, a *Tensor, f1, f2 float64) *Tensor {
	t := unaryNode(o, a, a.rows, a.cols)
	t.f1, t.f2 = f1, f2
	if o == opSoftplus || o == opLogSigmoid {
		// Keep the derivative for the backward pass: computing it here
		// costs a division, later an exponential.
		t.aux = a.tape.alloc(len(a.data))
	}
	parts := 1
	if o.costly() {
		parts = parallelParts(len(t.data))
	}
	par.Do((*unaryTask)(t), parts)
	return t
}

// unaryTask computes a unary op's output, a range of elements per part.
type unaryTask Tensor

func (u *unaryTask) Part(p, parts, _ int) {
	t := (*Tensor)(u)
	lo, hi := par.Range(p, parts, len(t.data), parallelGrain)
	t.unaryRange(lo, hi)
}

// unaryRange sets elements [lo, hi) of t's output from its input.
func (t *Tensor) unaryRange(lo, hi int) {
	o, f1, f2 := t.op, t.f1, t.f2
	x, y := t.a.data[lo:hi], t.data[lo:hi]
	switch o {
	case opNeg:
		for i, v := range x {
			y[i] = -v
		}
	case opScale:
		for i, v := range x {
			y[i] = f1 * v
		}
	case opExp:
		for i, v := range x {
			y[i] = math.Exp(v)
		}
	case opLog:
		for i, v := range x {
			y[i] = math.Log(v)
		}
	case opLog1p:
		for i, v := range x {
			y[i] = math.Log1p(v)
		}
	case opSqrt:
		for i, v := range x {
			y[i] = math.Sqrt(v)
		}
	case opSquare:
		for i, v := range x {
			y[i] = v * v
		}
	case opAbs:
		for i, v := range x {
			y[i] = math.Abs(v)
		}
	case opSigmoid:
		for i, v := range x {
			y[i] = sigmoid(v)
		}
	case opSoftplus, opLogSigmoid:
		softplusInto(y, t.aux[lo:hi], x, o == opLogSigmoid)
	case opTanh:
		for i, v := range x {
			y[i] = math.Tanh(v)
		}
	case opReLU:
		for i, v := range x {
			y[i] = max(v, 0)
		}
	case opLeakyReLU:
		for i, v := range x {
			if v < 0 {
				v *= f1
			}
			y[i] = v
		}
	case opClamp:
		for i, v := range x {
			y[i] = min(max(v, f1), f2)
		}
	}
}

func sigmoid(x float64) float64 {
	if x >= 0 {
		return 1 / (1 + math.Exp(-x))
	}
	e := math.Exp(x)
	return e / (1 + e)
}

// softplusInto sets y to softplus(x), or to logsigmoid(x) = -softplus(-x)
// when neg is set, and d to the derivative of y, a sigmoid sharing
// exp(-|x|) with the value.
func softplusInto(y, d, x []float64, neg bool) {
	if !neg {
		vmath.SoftplusSigmoid(x, y, d)
		return
	}
	var negX [256]float64
	for lo := 0; lo < len(x); lo += len(negX) {
		hi := min(lo+len(negX), len(x))
		for j, v := range x[lo:hi] {
			negX[j] = -v
		}
		vmath.SoftplusSigmoid(negX[:hi-lo], y[lo:hi], d[lo:hi])
		for j := lo; j < hi; j++ {
			y[j] = -y[j]
		}
	}
}

func (t *Tensor) backwardUnary() {
	a, g := t.a, t.grad
	buf, add := a.gradDst()
	x, y, d := a.data[:len(g)], t.data[:len(g)], buf[:len(g)]
	switch t.op {
	case opNeg:
		for i, v := range g {
			put(d, i, -v, add)
		}
	case opScale:
		for i, v := range g {
			put(d, i, t.f1*v, add)
		}
	case opExp:
		for i, v := range g {
			put(d, i, v*y[i], add)
		}
	case opLog:
		for i, v := range g {
			put(d, i, v/x[i], add)
		}
	case opLog1p:
		for i, v := range g {
			put(d, i, v/(1+x[i]), add)
		}
	case opSqrt:
		for i, v := range g {
			put(d, i, v/(2*y[i]), add)
		}
	case opSquare:
		for i, v := range g {
			put(d, i, 2*v*x[i], add)
		}
	case opAbs:
		for i, v := range g {
			switch {
			case x[i] > 0:
				put(d, i, v, add)
			case x[i] < 0:
				put(d, i, -v, add)
			default:
				put(d, i, 0, add)
			}
		}
	case opSigmoid:
		for i, v := range g {
			put(d, i, v*y[i]*(1-y[i]), add)
		}
	case opSoftplus, opLogSigmoid:
		s := t.aux[:len(g)]
		for i, v := range g {
			put(d, i, v*s[i], add)
		}
	case opTanh:
		for i, v := range g {
			put(d, i, v*(1-y[i]*y[i]), add)
		}
	case opReLU:
		for i, v := range g {
			if x[i] > 0 {
				put(d, i, v, add)
			} else {
				put(d, i, 0, add)
			}
		}
	case opLeakyReLU:
		for i, v := range g {
			if x[i] > 0 {
				put(d, i, v, add)
			} else {
				put(d, i, t.f1*v, add)
			}
		}
	case opClamp:
		for i, v := range g {
			if x[i] > t.f1 && x[i] < t.f2 {
				put(d, i, v, add)
			} else {
				put(d, i, 0, add)
			}
		}
	}
}

// Neg returns -a.
func Neg(a *Tensor) *Tensor { return unary(opNeg, a, 0, 0) }

// Scale returns s·a.
func Scale(a *Tensor, s float64) *Tensor { return unary(opScale, a, s, 0) }

// Exp returns exp(a) elementwise.
func Exp(a *Tensor) *Tensor { return unary(opExp, a, 0, 0) }

// Log returns the natural logarithm of a elementwise.
func Log(a *Tensor) *Tensor { return unary(opLog, a, 0, 0) }

// Log1p returns log(1+a) elementwise, accurate for small a.
func Log1p(a *Tensor) *Tensor { return unary(opLog1p, a, 0, 0) }

// Sqrt returns the square root of a elementwise.
func Sqrt(a *Tensor) *Tensor { return unary(opSqrt, a, 0, 0) }

// Square returns a² elementwise.
func Square(a *Tensor) *Tensor { return unary(opSquare, a, 0, 0) }

// Abs returns |a| elementwise; its gradient at 0 is 0.
func Abs(a *Tensor) *Tensor { return unary(opAbs, a, 0, 0) }

// Sigmoid returns 1/(1+exp(-a)) elementwise.
func Sigmoid(a *Tensor) *Tensor { return unary(opSigmoid, a, 0, 0) }

// LogSigmoid returns log(sigmoid(a)) elementwise without overflow.
func LogSigmoid(a *Tensor) *Tensor { return unary(opLogSigmoid, a, 0, 0) }

// Softplus returns log(1+exp(a)) elementwise without overflow.
func Softplus(a *Tensor) *Tensor { return unary(opSoftplus, a, 0, 0) }

// Tanh returns tanh(a) elementwise.
func Tanh(a *Tensor) *Tensor { return unary(opTanh, a, 0, 0) }

// ReLU returns max(a, 0) elementwise; its gradient at 0 is 0.
func ReLU(a *Tensor) *Tensor { return unary(opReLU, a, 0, 0) }

// LeakyReLU returns a where a > 0 and slope·a elsewhere.
func LeakyReLU(a *Tensor, slope float64) *Tensor { return unary(opLeakyReLU, a, slope, 0) }

// Clamp returns a limited to [lo, hi] elementwise; the gradient passes only
// strictly inside the interval. It panics if lo > hi.
func Clamp(a *Tensor, lo, hi float64) *Tensor {
	if lo > hi {
		panic(fmt.Sprintf("ad: Clamp: lo %v > hi %v", lo, hi))
	}
	return unary(opClamp, a, lo, hi)
}

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
