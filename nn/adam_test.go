package nn

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"gonum.org/v1/gonum/mat"
)

// TestAdamUpdateMatchesScalar checks that the vector kernel gives the same
// bits as the element-by-element update, on every length around the
// vector width and on values from tiny to huge.
func TestAdamUpdateMatchesScalar(t *testing.T) { checkAdamMatchesScalar(t) }

// checkAdamMatchesScalar checks adamUpdate against adamScalar bit for bit,
// on lengths 0 to 39 and values from 1e-300 to 1e150.
func checkAdamMatchesScalar(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	c := adamCoef{b1: 0.9, c1: 1 - 0.9, b2: 0.999, c2: 1 - 0.999, lr: 1e-3 / (1 - 0.9), scale: 1 / math.Sqrt(1-0.999), eps: 1e-8}
	draw := func() float64 {
		switch rng.IntN(6) {
		case 0:
			return 0
		case 1:
			return rng.NormFloat64() * 1e-300
		case 2:
			return rng.NormFloat64() * 1e150
		default:
			return rng.NormFloat64() * math.Exp(10*rng.NormFloat64())
		}
	}
	for n := range 40 {
		for range 5 {
			value, grad, m, v := make([]float64, n), make([]float64, n), make([]float64, n), make([]float64, n)
			for i := range n {
				value[i], grad[i], m[i], v[i] = draw(), draw(), draw(), math.Abs(draw())
			}
			value2, m2, v2 := append([]float64(nil), value...), append([]float64(nil), m...), append([]float64(nil), v...)
			adamUpdate(value, grad, m, v, &c)
			adamScalar(value2, grad, m2, v2, &c)
			for i := range n {
				for _, pair := range [][2]float64{{value[i], value2[i]}, {m[i], m2[i]}, {v[i], v2[i]}} {
					if math.Float64bits(pair[0]) != math.Float64bits(pair[1]) {
						t.Fatalf("n=%d, element %d: kernel %v, scalar %v", n, i, pair[0], pair[1])
					}
				}
			}
		}
	}
}

// TestGradSumSquaresFindsNonFinite checks the check of a gradient: finite
// elements pass (their squares may overflow), and a NaN or infinity at
// any position is located, in contiguous and strided gradients.
func TestGradSumSquaresFindsNonFinite(t *testing.T) {
	for n := 1; n < 10; n++ {
		x := make([]float64, n)
		for i := range x {
			x[i] = []float64{math.MaxFloat64, -math.MaxFloat64, math.SmallestNonzeroFloat64, 0, -1}[i%5]
		}
		for _, strided := range []bool{false, true} {
			grad := func(data []float64) *mat.Dense {
				if !strided {
					return mat.NewDense(1, n, data)
				}
				return mat.NewDense(1, n+1, append(append([]float64(nil), data...), math.NaN())).Slice(0, 1, 0, n).(*mat.Dense)
			}
			p := NewParam("p", mat.NewDense(1, n, nil))
			p.Grad = grad(x)
			if _, err := gradSumSquares("Adam", p); err != nil {
				t.Fatalf("n=%d strided=%v: finite values reported: %v", n, strided, err)
			}
			for i := range n {
				for _, bad := range []float64{math.NaN(), math.Inf(1), math.Inf(-1)} {
					y := append([]float64(nil), x...)
					y[i] = bad
					p.Grad = grad(y)
					_, err := gradSumSquares("Adam", p)
					want := fmt.Sprintf(`nn: Adam: parameter "p": gradient is %v at row 0, column %d`, bad, i)
					if err == nil || err.Error() != want {
						t.Fatalf("n=%d strided=%v: %v at %d: error %v, want %s", n, strided, bad, i, err, want)
					}
				}
			}
		}
	}
}

// TestAdamLargeParamMatchesRows checks that a parameter large enough to be
// updated on several cores gets, over three steps, the same bits as the
// row-by-row update.
func TestAdamLargeParamMatchesRows(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	const rows, cols = 301, 200 // above adamParallelMin, ragged row count
	randDense := func() *mat.Dense {
		d := make([]float64, rows*cols)
		for i := range d {
			d[i] = rng.NormFloat64()
		}
		return mat.NewDense(rows, cols, d)
	}
	p := NewParam("w", randDense())
	want := mat.DenseCopyOf(p.Value)
	m, v := mat.NewDense(rows, cols, nil), mat.NewDense(rows, cols, nil)
	opt := NewAdam(1e-2)
	for step := 1; step <= 3; step++ {
		p.Grad.Copy(randDense())
		if err := opt.Step([]*Param{p}); err != nil {
			t.Fatal(err)
		}
		b1, b2 := opt.Beta1, opt.Beta2 // variables: 1 - b1 rounds as in Step
		c := adamCoef{b1: b1, c1: 1 - b1, b2: b2, c2: 1 - b2, lr: opt.LR / (1 - math.Pow(b1, float64(step))),
			scale: 1 / math.Sqrt(1-math.Pow(b2, float64(step))), eps: opt.Eps}
		for i := range rows {
			adamScalar(want.RawRowView(i), p.Grad.RawRowView(i), m.RawRowView(i), v.RawRowView(i), &c)
		}
		for i, x := range p.Value.RawMatrix().Data {
			if math.Float64bits(x) != math.Float64bits(want.RawMatrix().Data[i]) {
				t.Fatalf("step %d, element %d: %v, row by row %v", step, i, x, want.RawMatrix().Data[i])
			}
		}
	}
}

// TestAdamStepNormIsStepPlusSumSquares checks that StepNorm updates like
// Step and returns the sum of the gradients' squares in parameter order,
// and that a non-finite gradient fails it without any change.
func TestAdamStepNormIsStepPlusSumSquares(t *testing.T) {
	newParams := func() []*Param {
		rng := rand.New(rand.NewPCG(7, 8))
		var ps []*Param
		for i, shape := range [][2]int{{3, 5}, {1, 7}, {4, 4}} {
			p := NewParam(fmt.Sprint("p", i), mat.NewDense(shape[0], shape[1], nil))
			for j := range p.Grad.RawMatrix().Data {
				p.Value.RawMatrix().Data[j] = rng.NormFloat64()
				p.Grad.RawMatrix().Data[j] = rng.NormFloat64()
			}
			ps = append(ps, p)
		}
		return ps
	}
	a, b := newParams(), newParams()
	oa, ob := NewAdam(0.01), NewAdam(0.01)
	var ns NormStepper = ob
	for step := range 3 {
		want := 0.0
		for _, p := range a {
			want += SumSquares(p.Grad.RawMatrix().Data)
		}
		if err := oa.Step(a); err != nil {
			t.Fatal(err)
		}
		got, err := ns.StepNorm(b)
		if err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Fatalf("step %d: sum of squares %v, want %v", step, got, want)
		}
		for i := range a {
			if !mat.Equal(a[i].Value, b[i].Value) {
				t.Fatalf("step %d: parameter %d differs from Step's", step, i)
			}
		}
		for _, ps := range [][]*Param{a, b} {
			rng := rand.New(rand.NewPCG(uint64(step), 9)) // the same gradients for a and b
			for _, p := range ps {
				for j := range p.Grad.RawMatrix().Data {
					p.Grad.RawMatrix().Data[j] = rng.NormFloat64()
				}
			}
		}
	}
	before := mat.DenseCopyOf(b[0].Value)
	b[2].Grad.Set(3, 1, math.Inf(1))
	if _, err := ns.StepNorm(b); err == nil || err.Error() != `nn: Adam: parameter "p2": gradient is +Inf at row 3, column 1` {
		t.Fatalf("non-finite gradient: error %v", err)
	}
	if !mat.Equal(before, b[0].Value) || ob.State()["p0"].Step != 3 {
		t.Fatal("a failed StepNorm changed a parameter or the state")
	}
}
