package nn

import (
	"math"

	"gonum.org/v1/gonum/mat"

	"github.com/backpropq/backpropq/internal/par"
)

// adamParallelMin is the number of values of a parameter from which its
// update is cut into ranges of rows run on several cores; each element's
// update depends on that element alone, so the cut changes no bits.
const adamParallelMin = 1 << 15

// adamTask is the Adam update of one parameter.
type adamTask struct {
	p    *Param
	m, v *mat.Dense
	c    adamCoef
}

// run updates the parameter, on several cores when it is large.
func (t *adamTask) run() {
	rows, cols := t.p.Value.Dims()
	parts := 1
	if rows*cols >= adamParallelMin {
		parts = min(par.Workers(), rows)
	}
	par.Do(t, parts)
	*t = adamTask{}
}

// Part updates part p of parts of the rows.
func (t *adamTask) Part(p, parts, _ int) {
	rows, cols := t.p.Value.Dims()
	lo, hi := par.Range(p, parts, rows, 1)
	if contiguous(t.p.Value, t.p.Grad, t.m, t.v) {
		// The rows lo to hi in one call, which updates each element as the
		// row-by-row calls do.
		a, b := lo*cols, hi*cols
		adamUpdate(t.p.Value.RawMatrix().Data[a:b], t.p.Grad.RawMatrix().Data[a:b],
			t.m.RawMatrix().Data[a:b], t.v.RawMatrix().Data[a:b], &t.c)
		return
	}
	for i := lo; i < hi; i++ {
		adamUpdate(rowOf(t.p.Value, i), rowOf(t.p.Grad, i), rowOf(t.m, i), rowOf(t.v, i), &t.c)
	}
}

// contiguous reports whether every matrix of ms has its rows one after
// another in memory.
func contiguous(ms ...*mat.Dense) bool {
	for _, m := range ms {
		if raw := m.RawMatrix(); raw.Stride != raw.Cols {
			return false
		}
	}
	return true
}

// adamCoef holds the coefficients of one Adam update, laid out for the
// assembly kernel: b1, 1-b1, b2, 1-b2, the bias-corrected learning rate
// and second-moment scale, and eps.
type adamCoef struct {
	b1, c1, b2, c2, lr, scale, eps float64
}

// adamScalar applies the Adam update element by element:
//
//	m ← b1·m + (1-b1)·g,  v ← b2·v + (1-b2)·g·g,
//	value ← value - lr·m / (sqrt(v)·scale + eps),
//
// each product and sum rounded on its own (the conversions forbid fused
// multiply-adds), which is also what the vector kernel does, so the two
// agree bit for bit.
func adamScalar(value, grad, m, v []float64, c *adamCoef) {
	m, v, value = m[:len(grad)], v[:len(grad)], value[:len(grad)]
	for j, g := range grad {
		mj := float64(c.b1*m[j]) + float64(c.c1*g)
		vj := float64(c.b2*v[j]) + float64(float64(c.c2*g)*g)
		m[j], v[j] = mj, vj
		den := float64(math.Sqrt(vj)*c.scale) + c.eps
		value[j] -= float64(c.lr*mj) / den
	}
}
