package ad_test

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
	"gonum.org/v1/gonum/mat"

	"github.com/backpropq/backpropq/ad"
)

// eye returns s·I as a constant [n x n] tensor.
func eye(tp *ad.Tape, n int, s float64) *ad.Tensor {
	d := make([]float64, n*n)
	for i := range n {
		d[i*n+i] = s
	}
	return tp.FromData(n, n, d)
}

// spd returns b·bᵀ + c + n·I, positive definite for a small c (which need
// not be symmetric: Cholesky factors the symmetric part).
func spd(tp *ad.Tape, b, c *ad.Tensor) *ad.Tensor {
	return ad.Add(ad.Add(ad.MatMulT(b, b, false, true), c), eye(tp, b.Rows(), float64(b.Rows())))
}

var small = func(rng *rand.Rand) float64 { return 0.1 * rng.NormFloat64() }

func linalgCases() []gradCase {
	square := func(gen func(*rand.Rand) float64) func(d dims) []input {
		return func(d dims) []input { return []input{{rows: d.D, cols: d.D}, {rows: d.D, cols: d.D, gen: gen}} }
	}
	// wellConditioned is a lower triangle with a diagonal near 2.
	wellConditioned := func(tp *ad.Tape, a *ad.Tensor) *ad.Tensor {
		return ad.Add(ad.Scale(a, 0.3), eye(tp, a.Rows(), 2))
	}
	solve := func(d dims) []input { return []input{{rows: d.D, cols: d.D}, {rows: d.D, cols: d.K}} }
	cases := []gradCase{
		{name: "Cholesky", inputs: square(small), f: func(tp *ad.Tape, in []*ad.Tensor) *ad.Tensor {
			return ad.Cholesky(spd(tp, in[0], in[1]))
		}},
		{name: "SolveLower", inputs: solve, f: func(tp *ad.Tape, in []*ad.Tensor) *ad.Tensor {
			return ad.SolveLower(wellConditioned(tp, in[0]), in[1], false)
		}},
		{name: "SolveLower/trans", inputs: solve, f: func(tp *ad.Tape, in []*ad.Tensor) *ad.Tensor {
			return ad.SolveLower(wellConditioned(tp, in[0]), in[1], true)
		}},
		// The Normal log-density's terms: log det through the factor's
		// diagonal and the quadratic form through a solve with it.
		{name: "composite/gaussian", inputs: func(d dims) []input {
			return []input{{rows: d.D, cols: d.D}, {rows: d.D, cols: d.D, gen: small}, {rows: d.D, cols: d.B}}
		}, f: func(tp *ad.Tape, in []*ad.Tensor) *ad.Tensor {
			l := ad.Cholesky(spd(tp, in[0], in[1]))
			logDet := ad.Sum(ad.Log(ad.ColSum(ad.Mul(l, eye(tp, l.Rows(), 1)))))
			z := ad.SolveLower(l, in[2], false)
			return ad.Add(ad.ColSum(ad.Square(z)), logDet)
		}},
	}
	for _, c := range cases[:len(cases):len(cases)] {
		cases = append(cases, fanout(c))
	}
	return cases
}

func TestLinalgGradientsMatchFiniteDifferences(t *testing.T) {
	defer ad.SetPoison()()
	rng := rand.New(rand.NewPCG(3, 4))
	for _, c := range linalgCases() {
		for _, d := range testDims(rng) {
			t.Run(fmt.Sprintf("%s/B=%d,D=%d,K=%d", c.name, d.B, d.D, d.K), func(t *testing.T) {
				checkCase(t, rng, c, d)
			})
		}
	}
}

func TestCholeskyAndSolveValues(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	tp := ad.NewTape()
	const n = 5
	b := tp.Const(randDense(rng, n, n, nil))
	a := spd(tp, b, tp.Zeros(n, n))
	l := ad.Cholesky(a)
	for i := range n {
		for j := i + 1; j < n; j++ {
			require.Zero(t, l.At(i, j), "upper triangle")
		}
	}
	var llt mat.Dense
	llt.Mul(l.Value(), l.Value().T())
	require.True(t, mat.EqualApprox(&llt, a.Value(), 1e-12), "L·Lᵀ = A")

	rhs := tp.Const(randDense(rng, n, 3, nil))
	for _, trans := range []bool{false, true} {
		x := ad.SolveLower(l, rhs, trans)
		var back mat.Dense
		if trans {
			back.Mul(l.Value().T(), x.Value())
		} else {
			back.Mul(l.Value(), x.Value())
		}
		require.True(t, mat.EqualApprox(&back, rhs.Value(), 1e-12), "op(L)·x = b, trans %v", trans)
	}
}

func TestCholeskyNotPositiveDefinitePanics(t *testing.T) {
	tp := ad.NewTape()
	for _, a := range []*ad.Tensor{
		tp.FromData(2, 2, []float64{1, 2, 2, 1}),
		tp.FromData(2, 2, []float64{0, 0, 0, 1}),
		tp.FromData(1, 1, []float64{math.NaN()}),
	} {
		func() {
			defer func() {
				err, ok := recover().(error)
				require.True(t, ok, "panics with an error")
				require.True(t, errors.Is(err, ad.ErrNotPositiveDefinite), "%v", err)
			}()
			ad.Cholesky(a)
		}()
	}
	require.Panics(t, func() { ad.Cholesky(tp.Zeros(2, 3)) })
	require.Panics(t, func() { ad.SolveLower(tp.Zeros(2, 2), tp.Zeros(3, 1), false) })
}

// TestLinalgNearSingular checks the gradients of Cholesky and SolveLower
// on ill-conditioned matrices (condition numbers about 1e5 and 1e4), where
// a wrong term would be amplified. The difference step is small against
// the smallest eigenvalue; the tolerance, 1e-5 of the largest gradient,
// covers the difference's rounding error, which grows with the condition.
func TestLinalgNearSingular(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	const n = 4
	// A = B·Bᵀ + 1e-4·I with B of rank n-1.
	bm := randDense(rng, n, n-1, nil)
	var am mat.Dense
	am.Mul(bm, bm.T())
	for i := range n {
		am.Set(i, i, am.At(i, i)+1e-4)
	}
	r := randDense(rng, n, n, nil)
	checkNearSingular(t, "Cholesky", &am, 1e-8, func(tp *ad.Tape, a *ad.Tensor) *ad.Tensor {
		return ad.Sum(ad.Mul(ad.Cholesky(a), tp.Const(r)))
	})

	lm := randDense(rng, n, n, nil)
	lm.Set(2, 2, 1e-3)
	rhs := randDense(rng, n, 2, nil)
	r2 := randDense(rng, n, 2, nil)
	for _, trans := range []bool{false, true} {
		checkNearSingular(t, fmt.Sprintf("SolveLower(trans %v)", trans), lm, 1e-9, func(tp *ad.Tape, l *ad.Tensor) *ad.Tensor {
			return ad.Sum(ad.Mul(ad.SolveLower(l, tp.Const(rhs), trans), tp.Const(r2)))
		})
	}
}

func checkNearSingular(t *testing.T, name string, x mat.Matrix, h float64, loss func(tp *ad.Tape, x *ad.Tensor) *ad.Tensor) {
	t.Helper()
	v := ad.NewVar(mat.DenseCopyOf(x))
	tp := ad.NewTape()
	tp.Backward(loss(tp, tp.Var(v)))
	rows, cols := x.Dims()
	eval := func(m *mat.Dense) float64 {
		tp := ad.NewTape()
		return loss(tp, tp.Const(m)).Item()
	}
	m := mat.DenseCopyOf(x)
	want := mat.NewDense(rows, cols, nil)
	for i := range rows {
		for j := range cols {
			x0 := m.At(i, j)
			m.Set(i, j, x0+h)
			up := eval(m)
			m.Set(i, j, x0-h)
			down := eval(m)
			m.Set(i, j, x0)
			want.Set(i, j, (up-down)/(2*h))
		}
	}
	scale := mat.Norm(want, math.Inf(1))
	require.Greater(t, scale, 10.0, "%s: the case is ill-conditioned", name)
	for i := range rows {
		for j := range cols {
			require.InDeltaf(t, want.At(i, j), v.Grad.At(i, j), 1e-5*scale, "%s: element (%d,%d)", name, i, j)
		}
	}
}
