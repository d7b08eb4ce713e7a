package ad

import (
	"fmt"
	"math"

	"github.com/backpropq/backpropq/ad/internal/vmath"
	"github.com/backpropq/backpropq/internal/par"
)

// Elementwise functions of one tensor: their forward pass (on both cores
// for large tensors), their derivatives and the exported operations.

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
		vmath.Tanh(x, y)
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
