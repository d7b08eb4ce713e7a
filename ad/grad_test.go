package ad_test

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
	"gonum.org/v1/gonum/mat"

	"github.com/backpropq/backpropq/ad"
)

// input describes one operand of a gradient-check case.
type input struct {
	rows, cols int
	// gen draws one element; nil means a standard normal.
	gen func(rng *rand.Rand) float64
	// fixed marks an operand the op does not differentiate (an index or
	// a mask); it enters as a constant and its gradient is not checked.
	fixed bool
}

// dims are the random sizes a case builds its operand shapes from: B is
// the batch, D and K are feature sizes.
type dims struct{ B, D, K int }

type gradCase struct {
	name   string
	inputs func(d dims) []input
	f      func(tp *ad.Tape, in []*ad.Tensor) *ad.Tensor
}

// Element generators keeping operands where an op is smooth.
var (
	positive = func(rng *rand.Rand) float64 { return 0.2 + 2*rng.Float64() }
	// awayFromZero avoids the kinks of Abs, ReLU and LeakyReLU at 0 and
	// keeps divisors away from 0.
	awayFromZero = func(rng *rand.Rand) float64 {
		v := 0.2 + 2*rng.Float64()
		if rng.IntN(2) == 0 {
			return -v
		}
		return v
	}
	// awayFromHalf avoids the kinks of Clamp(-0.5, 0.5).
	awayFromHalf = func(rng *rand.Rand) float64 {
		v := []float64{0.1, 0.7}[rng.IntN(2)] + 0.3*rng.Float64()
		if rng.IntN(2) == 0 {
			return -v
		}
		return v
	}
	wide = func(rng *rand.Rand) float64 { return 12 * rng.NormFloat64() }
	// binary draws mask entries.
	binary = func(rng *rand.Rand) float64 { return float64(rng.IntN(2)) }
)

func full(gen func(*rand.Rand) float64) func(d dims) []input {
	return func(d dims) []input { return []input{{rows: d.B, cols: d.D, gen: gen}} }
}

func unaryCase(name string, gen func(*rand.Rand) float64, f func(*ad.Tensor) *ad.Tensor) gradCase {
	return gradCase{name: name, inputs: full(gen), f: func(_ *ad.Tape, in []*ad.Tensor) *ad.Tensor { return f(in[0]) }}
}

// broadcastShapes lists every pair of operand shapes the elementwise ops
// accept, in terms of the batch B and width D.
var broadcastShapes = []struct {
	name string
	a, b func(d dims) (int, int)
}{
	{"same", bd, bd},
	{"scalar+full", one, bd},
	{"full+scalar", bd, one},
	{"row+full", row, bd},
	{"full+row", bd, row},
	{"col+full", col, bd},
	{"full+col", bd, col},
	{"col+row", col, row},
	{"row+col", row, col},
	{"scalar+scalar", one, one},
}

func bd(d dims) (int, int)  { return d.B, d.D }
func one(dims) (int, int)   { return 1, 1 }
func row(d dims) (int, int) { return 1, d.D }
func col(d dims) (int, int) { return d.B, 1 }

func gradCases() []gradCase {
	var cases []gradCase
	for _, mm := range []struct{ ta, tb bool }{{false, false}, {true, false}, {false, true}, {true, true}} {
		cases = append(cases, gradCase{
			name: fmt.Sprintf("MatMulT(%v,%v)", mm.ta, mm.tb),
			inputs: func(d dims) []input {
				a := input{rows: d.B, cols: d.K}
				if mm.ta {
					a.rows, a.cols = a.cols, a.rows
				}
				b := input{rows: d.K, cols: d.D}
				if mm.tb {
					b.rows, b.cols = b.cols, b.rows
				}
				return []input{a, b}
			},
			f: func(_ *ad.Tape, in []*ad.Tensor) *ad.Tensor { return ad.MatMulT(in[0], in[1], mm.ta, mm.tb) },
		})
	}
	cases = append(cases, gradCase{
		name:   "MatMul",
		inputs: func(d dims) []input { return []input{{rows: d.B, cols: d.K}, {rows: d.K, cols: d.D}} },
		f:      func(_ *ad.Tape, in []*ad.Tensor) *ad.Tensor { return ad.MatMul(in[0], in[1]) },
	})
	binaryOps := []struct {
		name string
		f    func(a, b *ad.Tensor) *ad.Tensor
		genB func(*rand.Rand) float64
	}{
		{"Add", ad.Add, nil}, {"Sub", ad.Sub, nil}, {"Mul", ad.Mul, nil}, {"Div", ad.Div, awayFromZero},
		{"BinaryCrossEntropyLogits", ad.BinaryCrossEntropyLogits, nil},
	}
	for _, o := range binaryOps {
		for _, s := range broadcastShapes {
			cases = append(cases, gradCase{
				name: o.name + "/" + s.name,
				inputs: func(d dims) []input {
					ar, ac := s.a(d)
					br, bc := s.b(d)
					return []input{{rows: ar, cols: ac}, {rows: br, cols: bc, gen: o.genB}}
				},
				f: func(_ *ad.Tape, in []*ad.Tensor) *ad.Tensor { return o.f(in[0], in[1]) },
			})
		}
	}
	cases = append(cases,
		gradCase{
			name:   "Mul/same-operand",
			inputs: full(nil),
			f:      func(_ *ad.Tape, in []*ad.Tensor) *ad.Tensor { return ad.Mul(in[0], in[0]) },
		},
		unaryCase("Neg", nil, ad.Neg),
		unaryCase("Scale", nil, func(a *ad.Tensor) *ad.Tensor { return ad.Scale(a, -2.5) }),
		unaryCase("Exp", nil, ad.Exp),
		unaryCase("Log", positive, ad.Log),
		unaryCase("Log1p", positive, ad.Log1p),
		unaryCase("Sqrt", positive, ad.Sqrt),
		unaryCase("Square", nil, ad.Square),
		unaryCase("Abs", awayFromZero, ad.Abs),
		unaryCase("Sigmoid", nil, ad.Sigmoid),
		unaryCase("Sigmoid/wide", wide, ad.Sigmoid),
		unaryCase("LogSigmoid", nil, ad.LogSigmoid),
		unaryCase("LogSigmoid/wide", wide, ad.LogSigmoid),
		unaryCase("Softplus", nil, ad.Softplus),
		unaryCase("Softplus/wide", wide, ad.Softplus),
		unaryCase("Tanh", nil, ad.Tanh),
		unaryCase("ReLU", awayFromZero, ad.ReLU),
		unaryCase("LeakyReLU", awayFromZero, func(a *ad.Tensor) *ad.Tensor { return ad.LeakyReLU(a, 0.1) }),
		unaryCase("Clamp", awayFromHalf, func(a *ad.Tensor) *ad.Tensor { return ad.Clamp(a, -0.5, 0.5) }),
		unaryCase("Sum", nil, ad.Sum),
		unaryCase("Mean", nil, ad.Mean),
		unaryCase("RowSum", nil, ad.RowSum),
		unaryCase("RowMean", nil, ad.RowMean),
		unaryCase("ColSum", nil, ad.ColSum),
		unaryCase("ColMean", nil, ad.ColMean),
		unaryCase("LogSumExp", nil, ad.LogSumExp),
		unaryCase("LogSumExp/wide", wide, ad.LogSumExp),
		unaryCase("Softmax", nil, ad.Softmax),
		unaryCase("LogSoftmax", nil, ad.LogSoftmax),
		unaryCase("LogSoftmax/wide", wide, ad.LogSoftmax),
		unaryCase("Transpose", nil, ad.Transpose),
		unaryCase("Reshape", nil, func(a *ad.Tensor) *ad.Tensor { return ad.Reshape(a, a.Cols(), a.Rows()) }),
		unaryCase("Reshape/flat", nil, func(a *ad.Tensor) *ad.Tensor { return ad.Reshape(a, 1, a.Rows()*a.Cols()) }),
		gradCase{
			name:   "WithProvenance",
			inputs: full(nil),
			f: func(tp *ad.Tape, in []*ad.Tensor) *ad.Tensor {
				return ad.Tanh(tp.WithProvenance(in[0], ad.ProvenanceOf(3)))
			},
		},
		gradCase{
			name: "Concat",
			inputs: func(d dims) []input {
				return []input{{rows: d.B, cols: d.D}, {rows: d.B, cols: 1}, {rows: d.B, cols: d.K}}
			},
			f: func(_ *ad.Tape, in []*ad.Tensor) *ad.Tensor { return ad.Concat(in...) },
		},
		gradCase{
			name:   "Concat/one",
			inputs: full(nil),
			f:      func(_ *ad.Tape, in []*ad.Tensor) *ad.Tensor { return ad.Concat(in[0]) },
		},
		gradCase{
			name:   "Slice",
			inputs: func(d dims) []input { return []input{{rows: d.B, cols: d.D + 2}} },
			f:      func(_ *ad.Tape, in []*ad.Tensor) *ad.Tensor { return ad.Slice(in[0], 1, in[0].Cols()-1) },
		},
		gradCase{
			name: "Gather",
			inputs: func(d dims) []input {
				return []input{
					{rows: d.B, cols: d.D},
					{rows: d.B, cols: 1, fixed: true, gen: func(rng *rand.Rand) float64 { return float64(rng.IntN(d.D)) }},
				}
			},
			f: func(_ *ad.Tape, in []*ad.Tensor) *ad.Tensor { return ad.Gather(in[0], in[1]) },
		},
	)
	whereShapes := []struct {
		name       string
		mask, a, b func(d dims) (int, int)
	}{
		{"mask-col", col, bd, bd},
		{"mask-full", bd, bd, bd},
		{"mask-full/b-row", bd, bd, row},
		{"mask-col/a-scalar", col, one, bd},
		{"mask-full/a-col/b-row", bd, col, row},
	}
	for _, s := range whereShapes {
		cases = append(cases, gradCase{
			name: "Where/" + s.name,
			inputs: func(d dims) []input {
				mr, mc := s.mask(d)
				ar, ac := s.a(d)
				br, bc := s.b(d)
				return []input{{rows: ar, cols: ac}, {rows: br, cols: bc}, {rows: mr, cols: mc, fixed: true, gen: binary}}
			},
			f: func(_ *ad.Tape, in []*ad.Tensor) *ad.Tensor { return ad.Where(in[2], in[0], in[1]) },
		})
	}
	// A composite: an MLP layer with a Bernoulli log-likelihood, the
	// pattern of the benchmark, with the data as a fixed operand.
	cases = append(cases, gradCase{
		name: "composite/mlp",
		inputs: func(d dims) []input {
			return []input{
				{rows: d.B, cols: d.K, fixed: true, gen: binary},
				{rows: d.K, cols: d.D}, {rows: 1, cols: d.D}, {rows: d.D, cols: d.K}, {rows: 1, cols: d.K},
			}
		},
		f: func(_ *ad.Tape, in []*ad.Tensor) *ad.Tensor {
			x := in[0]
			h := ad.Tanh(ad.Add(ad.MatMul(x, in[1]), in[2]))
			logits := ad.Add(ad.MatMul(h, in[3]), in[4])
			return ad.RowSum(ad.Sub(ad.Mul(x, logits), ad.Softplus(logits)))
		},
	})
	// Fan-out: applying each op twice to the same operands makes the
	// second backward kernel add into a gradient the first one wrote.
	for _, c := range cases[:len(cases):len(cases)] {
		cases = append(cases, gradCase{
			name:   c.name + "/fanout",
			inputs: c.inputs,
			f: func(tp *ad.Tape, in []*ad.Tensor) *ad.Tensor {
				return ad.Concat(c.f(tp, in), ad.Scale(c.f(tp, in), 0.5))
			},
		})
	}
	return cases
}

// testDims are the sizes every case runs at: B=1 and width-1 corners and
// two random draws.
func testDims(rng *rand.Rand) []dims {
	ds := []dims{{1, 1, 1}, {1, 4, 2}, {3, 1, 2}}
	for range 2 {
		ds = append(ds, dims{B: 2 + rng.IntN(5), D: 2 + rng.IntN(5), K: 1 + rng.IntN(4)})
	}
	return ds
}

// loss is Σ f(in)·R, a random linear functional of the output.
func loss(c gradCase, tp *ad.Tape, in []*ad.Tensor, r *mat.Dense) *ad.Tensor {
	return ad.Sum(ad.Mul(c.f(tp, in), tp.Const(r)))
}

func randDense(rng *rand.Rand, rows, cols int, gen func(*rand.Rand) float64) *mat.Dense {
	if gen == nil {
		gen = (*rand.Rand).NormFloat64
	}
	m := mat.NewDense(rows, cols, nil)
	for i := range rows {
		for j := range cols {
			m.Set(i, j, gen(rng))
		}
	}
	return m
}

// fdGrad returns the central-difference gradient of the loss with respect
// to operand k.
func fdGrad(c gradCase, vals []*mat.Dense, r *mat.Dense, k int) *mat.Dense {
	const h = 1e-5
	tp := ad.NewTape()
	eval := func() float64 {
		tp.Reset()
		in := make([]*ad.Tensor, len(vals))
		for i, v := range vals {
			in[i] = tp.Const(v)
		}
		return loss(c, tp, in, r).Item()
	}
	rows, cols := vals[k].Dims()
	g := mat.NewDense(rows, cols, nil)
	for i := range rows {
		for j := range cols {
			x := vals[k].At(i, j)
			vals[k].Set(i, j, x+h)
			up := eval()
			vals[k].Set(i, j, x-h)
			down := eval()
			vals[k].Set(i, j, x)
			g.Set(i, j, (up-down)/(2*h))
		}
	}
	return g
}

// requireGradClose compares an analytic gradient with a finite-difference
// one. Central differences with h=1e-5 are accurate to O(h²) ≈ 1e-10 times
// the third derivative, plus rounding of about 1e-16·|loss|/h ≈ 1e-11·|loss|,
// so a relative tolerance of 1e-6 (absolute near zero) leaves a wide margin
// while catching any wrong term.
func requireGradClose(t *testing.T, want, got *mat.Dense, msg string) {
	t.Helper()
	r, c := want.Dims()
	gr, gc := got.Dims()
	require.Equal(t, [2]int{r, c}, [2]int{gr, gc}, "%s: gradient shape", msg)
	for i := range r {
		for j := range c {
			w, g := want.At(i, j), got.At(i, j)
			require.InDeltaf(t, w, g, 1e-6*max(1, math.Abs(w)), "%s: element (%d,%d)", msg, i, j)
		}
	}
}

func TestGradientsMatchFiniteDifferences(t *testing.T) {
	// Every buffer starts as NaN, so a kernel that leaves an element
	// unwritten, or adds into memory it did not zero, fails the check.
	defer ad.SetPoison()()
	rng := rand.New(rand.NewPCG(1, 2))
	for _, c := range gradCases() {
		for _, d := range testDims(rng) {
			t.Run(fmt.Sprintf("%s/B=%d,D=%d,K=%d", c.name, d.B, d.D, d.K), func(t *testing.T) {
				checkCase(t, rng, c, d)
			})
		}
	}
}

func checkCase(t *testing.T, rng *rand.Rand, c gradCase, d dims) {
	specs := c.inputs(d)
	vals := make([]*mat.Dense, len(specs))
	for i, s := range specs {
		vals[i] = randDense(rng, s.rows, s.cols, s.gen)
	}
	// Shape the random functional after the output.
	tp := ad.NewTape()
	in := make([]*ad.Tensor, len(vals))
	for i, v := range vals {
		in[i] = tp.Const(v)
	}
	or, oc := c.f(tp, in).Dims()
	r := randDense(rng, or, oc, nil)

	want := make([]*mat.Dense, len(vals))
	for k, s := range specs {
		if !s.fixed {
			want[k] = fdGrad(c, vals, r, k)
		}
	}

	// Backward accumulates into Var.Grad. The Vars hold copies so that
	// the gradient is checked against the values FD used.
	tp.Reset()
	vars := make([]*ad.Var, len(vals))
	for k, s := range specs {
		if s.fixed {
			in[k] = tp.Const(vals[k])
			continue
		}
		vars[k] = ad.NewVar(mat.DenseCopyOf(vals[k]))
		in[k] = tp.Var(vars[k])
	}
	tp.Backward(loss(c, tp, in, r))
	for k := range specs {
		if vars[k] != nil {
			requireGradClose(t, want[k], vars[k].Grad, fmt.Sprintf("Backward, operand %d", k))
		}
	}

	// Gradients with respect to constant leaves forces gradients through
	// tensors that did not expect one when they were computed.
	tp.Reset()
	for k := range specs {
		in[k] = tp.Const(vals[k])
	}
	l := loss(c, tp, in, r)
	require.False(t, l.RequiresGrad())
	got := tp.Gradients(l, in...)
	for k, s := range specs {
		if !s.fixed {
			requireGradClose(t, want[k], got[k], fmt.Sprintf("Gradients wrt constant operand %d", k))
		}
	}

	// Gradients with respect to intermediates between the Vars and the
	// op, and with respect to the op's output, whose gradient is R.
	tp.Reset()
	for k, s := range specs {
		if s.fixed {
			in[k] = tp.Const(vals[k])
			continue
		}
		vars[k].ZeroGrad()
		in[k] = ad.Scale(tp.Var(vars[k]), 1)
	}
	out := c.f(tp, in)
	l = ad.Sum(ad.Mul(out, tp.Const(r)))
	got = tp.Gradients(l, append([]*ad.Tensor{out}, in...)...)
	requireGradClose(t, r, got[0], "Gradients wrt output")
	for k, s := range specs {
		if s.fixed {
			continue
		}
		requireGradClose(t, want[k], got[k+1], fmt.Sprintf("Gradients wrt intermediate operand %d", k))
		require.Zero(t, mat.Norm(vars[k].Grad, 1), "Gradients must not touch Var.Grad")
	}
}
