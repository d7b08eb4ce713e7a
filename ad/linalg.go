package ad

import (
	"errors"
	"fmt"
	"math"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas64"
)

// ErrNotPositiveDefinite is wrapped by the panic value of [Cholesky] for a
// matrix that is not (numerically) positive definite.
var ErrNotPositiveDefinite = errors.New("matrix is not positive definite")

// linalgFn selects the kernel of an opLinalg node (its i1).
type linalgFn int

const (
	fnCholesky linalgFn = iota
	fnSolveLower
	fnSolveLowerT
)

// Cholesky returns the lower-triangular L with L·Lᵀ = S, S = (a + aᵀ)/2 the
// symmetric part of the square matrix a (a itself when it is symmetric).
// Factoring the symmetric part makes the gradient exact for every element
// of a; it is symmetric. It panics with a *[ShapeError] if a is not square
// and with an error wrapping [ErrNotPositiveDefinite] if S is not positive
// definite.
func Cholesky(a *Tensor) *Tensor {
	n := a.rows
	if a.cols != n {
		panic(&ShapeError{Op: "Cholesky", A: [2]int{a.rows, a.cols}, B: [2]int{a.cols, a.cols}})
	}
	t := unaryNode(opLinalg, a, n, n)
	t.i1 = int(fnCholesky)
	if err := cholesky(t.data, a.data, n); err != nil {
		panic(err)
	}
	return t
}

// cholesky writes the factor of the symmetric part of s into l.
func cholesky(l, s []float64, n int) error {
	clear(l)
	for j := 0; j < n; j++ {
		d := s[j*n+j]
		for k := 0; k < j; k++ {
			d -= l[j*n+k] * l[j*n+k]
		}
		if !(d > 0) || math.IsInf(d, 1) {
			return fmt.Errorf("ad: Cholesky: pivot %d is %v: %w", j, d, ErrNotPositiveDefinite)
		}
		ljj := math.Sqrt(d)
		l[j*n+j] = ljj
		for i := j + 1; i < n; i++ {
			v := (s[i*n+j] + s[j*n+i]) / 2
			for k := 0; k < j; k++ {
				v -= l[i*n+k] * l[j*n+k]
			}
			l[i*n+j] = v / ljj
		}
	}
	return nil
}

// SolveLower returns x solving l·x = b, or lᵀ·x = b when trans is set,
// for a square l of which only the lower triangle (diagonal included) is
// read; b is [n x m]. The gradient reaches l's lower triangle only. It
// panics with a *[ShapeError] if l is not square or b's rows differ from
// l's. A zero on l's diagonal gives Inf or NaN elements.
func SolveLower(l, b *Tensor, trans bool) *Tensor {
	tp := tapeOf(l, b)
	n := l.rows
	if l.cols != n || b.rows != n {
		panic(shapeErr("SolveLower", l, b))
	}
	t := tp.node(opLinalg, n, b.cols)
	t.a, t.b = l, b
	t.i1 = int(fnSolveLower)
	if trans {
		t.i1 = int(fnSolveLowerT)
	}
	t.prov = l.prov.Union(b.prov)
	t.needsGrad = l.needsGrad || b.needsGrad
	copy(t.data, b.data)
	trsm(blas.Left, trans, l.data, n, t.data, b.cols)
	return t
}

// trsm overwrites the [rows x cols] x with op(l)⁻¹·x (side Left, x has n
// rows) or x·op(l)⁻¹ (side Right, x has n columns), l lower triangular.
func trsm(side blas.Side, trans bool, l []float64, n int, x []float64, cols int) {
	rows := n
	if side == blas.Right {
		rows, cols = len(x)/n, n
	}
	tA := blas.NoTrans
	if trans {
		tA = blas.Trans
	}
	blas64.Trsm(side, tA, 1,
		blas64.Triangular{Uplo: blas.Lower, Diag: blas.NonUnit, N: n, Stride: n, Data: l},
		blas64.General{Rows: rows, Cols: cols, Stride: cols, Data: x})
}

func (t *Tensor) backwardLinalg() {
	switch linalgFn(t.i1) {
	case fnCholesky:
		t.backwardCholesky()
	default:
		t.backwardSolveLower(linalgFn(t.i1) == fnSolveLowerT)
	}
}

// backwardCholesky propagates the gradient of L = chol(S) to a (Murray
// 2016): with Φ(M) the lower triangle of M with its diagonal halved,
// ā = L⁻ᵀ·sym(Φ(Lᵀ·L̄))·L⁻¹, where sym mirrors the strict lower triangle
// into the upper one; ā is symmetric, so it is also the gradient with
// respect to a through S = (a + aᵀ)/2.
func (t *Tensor) backwardCholesky() {
	n := t.rows
	l, tp := t.data, t.tape
	m := tp.alloc(n * n)
	defer tp.free(m)
	gemm(true, false, 1, n, n, l, n, n, t.grad, 0, n, n, m)
	for i := 0; i < n; i++ {
		m[i*n+i] /= 2
		for j := 0; j < i; j++ {
			m[i*n+j] /= 2
			m[j*n+i] = m[i*n+j]
		}
	}
	trsm(blas.Left, true, l, n, m, n)
	trsm(blas.Right, false, l, n, m, n)
	d, add := t.a.gradDst()
	putAll(d, m, add)
}

// backwardSolveLower propagates the gradient of x = op(l)⁻¹·b:
// b̄ = op(l)⁻ᵀ·x̄, and l̄ = -tril(b̄·xᵀ), or -tril(x·b̄ᵀ) for the transposed
// solve.
func (t *Tensor) backwardSolveLower(trans bool) {
	l, b := t.a, t.b
	n, m := t.rows, t.cols
	tp := t.tape
	gb := tp.alloc(n * m)
	defer tp.free(gb)
	copy(gb, t.grad)
	trsm(blas.Left, !trans, l.data, n, gb, m)
	if b.needsGrad {
		d, add := b.gradDst()
		putAll(d, gb, add)
	}
	if !l.needsGrad {
		return
	}
	gl := tp.alloc(n * n)
	defer tp.free(gl)
	if trans {
		gemm(false, true, -1, n, m, t.data, n, m, gb, 0, n, n, gl)
	} else {
		gemm(false, true, -1, n, m, gb, n, m, t.data, 0, n, n, gl)
	}
	for i := 0; i < n; i++ {
		for j := i + 1; j < n; j++ {
			gl[i*n+j] = 0
		}
	}
	d, add := l.gradDst()
	putAll(d, gl, add)
}
