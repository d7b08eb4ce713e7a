package ad_test

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gonum.org/v1/gonum/mat"

	"github.com/backpropq/backpropq/ad"
)

// recovered runs f and returns the value it panicked with, or nil.
func recovered(f func()) (v any) {
	defer func() { v = recover() }()
	f()
	return nil
}

func TestShapeMismatchPanicsWithShapeError(t *testing.T) {
	tp := ad.NewTape()
	a23, a45 := tp.Zeros(2, 3), tp.Zeros(4, 5)
	a21, a13, a33 := tp.Zeros(2, 1), tp.Zeros(1, 3), tp.Zeros(3, 3)
	tests := []struct {
		name   string
		f      func()
		op     string
		shapes []string
	}{
		{"MatMul", func() { ad.MatMul(a23, a45) }, "MatMul", []string{"[2x3]", "[4x5]"}},
		{"MatMulT", func() { ad.MatMulT(a23, a23, false, false) }, "MatMul", []string{"[2x3]", "[2x3]"}},
		{"Add", func() { ad.Add(a23, a45) }, "Add", []string{"[2x3]", "[4x5]"}},
		{"Sub rows", func() { ad.Sub(a23, a33) }, "Sub", []string{"[2x3]", "[3x3]"}},
		{"Mul column", func() { ad.Mul(a45, a21) }, "Mul", []string{"[4x5]", "[2x1]"}},
		{"Div row", func() { ad.Div(a13, a45) }, "Div", []string{"[1x3]", "[4x5]"}},
		{"Concat", func() { ad.Concat(a23, a45) }, "Concat", []string{"[2x3]", "[4x5]"}},
		{"Gather", func() { ad.Gather(a23, a13) }, "Gather", []string{"[2x3]", "[1x3]"}},
		{"OneHot", func() { ad.OneHot(a23, 4) }, "OneHot", []string{"[2x3]", "[2x1]"}},
		{"Where operands", func() { ad.Where(a21, a23, a45) }, "Where", []string{"[2x3]", "[4x5]"}},
		{"Where mask", func() { ad.Where(a45, a23, a23) }, "Where", []string{"[4x5]", "[2x3]"}},
		{"Reshape", func() { ad.Reshape(a23, 4, 2) }, "Reshape", []string{"[2x3]", "[4x2]"}},
		{"Reshape negative", func() { ad.Reshape(a23, -2, -3) }, "Reshape", []string{"[2x3]", "[-2x-3]"}},
		{"Backward non-scalar", func() { tp.Backward(a23) }, "Backward", []string{"[2x3]", "[1x1]"}},
		{"Item", func() { a23.Item() }, "Item", []string{"[2x3]", "[1x1]"}},
		{"Var grad", func() {
			tp.Var(&ad.Var{Value: mat.NewDense(2, 3, nil), Grad: mat.NewDense(3, 2, nil)})
		}, "Var", []string{"[2x3]", "[3x2]"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := recovered(tt.f)
			require.NotNil(t, v, "no panic")
			err, ok := v.(*ad.ShapeError)
			require.Truef(t, ok, "panic value %T %v is not a *ad.ShapeError", v, v)
			msg := err.Error()
			assert.True(t, strings.HasPrefix(msg, "ad: "+tt.op+": "), msg)
			for _, s := range tt.shapes {
				assert.Contains(t, msg, s)
			}
		})
	}
}

func TestProgrammerErrorsPanic(t *testing.T) {
	tp, other := ad.NewTape(), ad.NewTape()
	a, b := tp.Zeros(2, 3), other.Zeros(2, 3)
	idx := tp.FromData(2, 1, []float64{0, 1.5})
	tests := []struct {
		name string
		f    func()
		want string
	}{
		{"mixed tapes binary", func() { ad.Add(a, b) }, "different tapes"},
		{"mixed tapes MatMul", func() { ad.MatMulT(a, b, false, true) }, "different tapes"},
		{"mixed tapes Concat", func() { ad.Concat(a, b) }, "different tapes"},
		{"mixed tapes Where", func() { ad.Where(a, a, b) }, "different tapes"},
		{"mixed tapes Backward", func() { tp.Backward(ad.Sum(b)) }, "different tapes"},
		{"mixed tapes Gradients", func() { tp.Gradients(ad.Sum(a), b) }, "different tapes"},
		{"mixed tapes WithProvenance", func() { tp.WithProvenance(b, ad.Provenance{}) }, "different tapes"},
		{"nil tensor", func() { ad.Add(a, nil) }, "nil tensor"},
		{"Gather non-integer", func() { ad.Gather(a, idx) }, "index 1.5"},
		{"Gather out of range", func() { ad.Gather(a, tp.FromData(2, 1, []float64{0, 3})) }, "index 3"},
		{"OneHot negative", func() { ad.OneHot(tp.FromData(1, 1, []float64{-1}), 3) }, "index -1"},
		{"Slice empty", func() { ad.Slice(a, 2, 2) }, "Slice"},
		{"Slice beyond", func() { ad.Slice(a, 1, 4) }, "Slice"},
		{"Clamp", func() { ad.Clamp(a, 1, 0) }, "Clamp"},
		{"FromData", func() { tp.FromData(2, 2, []float64{1}) }, "FromData"},
		{"At", func() { a.At(2, 0) }, "out of range"},
		{"Concat none", func() { ad.Concat() }, "Concat"},
		{"Var view", func() {
			tp.Var(ad.NewVar(mat.NewDense(3, 3, nil).Slice(0, 2, 0, 2).(*mat.Dense)))
		}, "contiguous"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := recovered(tt.f)
			require.NotNil(t, v, "no panic")
			assert.Contains(t, fmt.Sprint(v), tt.want)
		})
	}
}

func TestStopGradient(t *testing.T) {
	tp := ad.NewTape()
	v := ad.NewVar(mat.NewDense(1, 3, []float64{1, -2, 3}))
	x := tp.Var(v)
	s := ad.StopGradient(x)
	assert.False(t, s.RequiresGrad())
	assert.Equal(t, x.Data(), s.Data())

	// Only path through StopGradient: no gradient at all.
	tp.Backward(ad.Sum(ad.Exp(s)))
	assert.Zero(t, mat.Norm(v.Grad, 1))
	g := tp.Gradients(ad.Sum(ad.Exp(s)), x)
	assert.Zero(t, mat.Norm(g[0], 1))

	// d/dx [sg(x)·x] = sg(x) = x, not 2x.
	tp.Backward(ad.Sum(ad.Mul(s, x)))
	assert.Equal(t, []float64{1, -2, 3}, v.Grad.RawMatrix().Data)

	// Gradients with respect to the stopped tensor itself still flow
	// from downstream.
	g = tp.Gradients(ad.Sum(ad.Scale(s, 2)), s, x)
	assert.Equal(t, []float64{2, 2, 2}, g[0].RawMatrix().Data)
	assert.Zero(t, mat.Norm(g[1], 1))
}

func TestIndexAndMaskOperandsGetNoGradient(t *testing.T) {
	tp := ad.NewTape()
	a := tp.FromData(2, 3, []float64{1, 2, 3, 4, 5, 6})
	idx := tp.FromData(2, 1, []float64{2, 0})
	mask := tp.FromData(2, 1, []float64{1, 0})

	got := ad.Gather(a, idx)
	assert.Equal(t, []float64{3, 4}, got.Data())
	g := tp.Gradients(ad.Sum(got), a, idx)
	assert.Equal(t, []float64{0, 0, 1, 1, 0, 0}, g[0].RawMatrix().Data)
	assert.Equal(t, []float64{0, 0}, g[1].RawMatrix().Data)

	oh := ad.OneHot(idx, 3)
	assert.Equal(t, []float64{0, 0, 1, 1, 0, 0}, oh.Data())
	assert.False(t, oh.RequiresGrad())
	g = tp.Gradients(ad.Sum(ad.Mul(oh, a)), idx)
	assert.Equal(t, []float64{0, 0}, g[0].RawMatrix().Data)

	w := ad.Where(mask, a, ad.Neg(a))
	assert.Equal(t, []float64{1, 2, 3, -4, -5, -6}, w.Data())
	g = tp.Gradients(ad.Sum(w), mask, a)
	assert.Equal(t, []float64{0, 0}, g[0].RawMatrix().Data)
	assert.Equal(t, []float64{1, 1, 1, -1, -1, -1}, g[1].RawMatrix().Data)
}

func TestGradientsOfUnrelatedTensorIsZero(t *testing.T) {
	tp := ad.NewTape()
	v := ad.NewVar(mat.NewDense(2, 2, []float64{1, 2, 3, 4}))
	x := tp.Var(v)
	unrelated := ad.Exp(tp.Full(2, 2, 1))
	later := ad.Square(x) // created after the loss
	l := ad.Sum(x)
	_ = later
	g := tp.Gradients(l, unrelated, later, x)
	assert.Zero(t, mat.Norm(g[0], 1))
	assert.Zero(t, mat.Norm(g[1], 1))
	assert.Equal(t, []float64{1, 1, 1, 1}, g[2].RawMatrix().Data)
	assert.False(t, unrelated.RequiresGrad(), "Gradients must restore RequiresGrad")
	assert.Zero(t, mat.Norm(v.Grad, 1))
}

// buildStep runs a small model on tp and returns the loss: the same
// graph every call, touching every kind of pooled buffer.
func buildStep(tp *ad.Tape, w, b *ad.Var, x *mat.Dense) *ad.Tensor {
	in := tp.Const(x)
	h := ad.Tanh(ad.Add(ad.MatMul(in, tp.Var(w)), tp.Var(b)))
	z := ad.Concat(h, ad.Softplus(h), ad.LogSoftmax(h))
	return ad.Mean(ad.Mul(z, z))
}

func TestResetReuseGivesIdenticalResults(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	x := randDense(rng, 5, 4, nil)
	w := ad.NewVar(randDense(rng, 4, 3, nil))
	b := ad.NewVar(randDense(rng, 1, 3, nil))

	tp := ad.NewTape()
	first := buildStep(tp, w, b, x)
	n := tp.Len()
	tp.Backward(first)
	wantLoss := first.Item()
	wantW, wantB := mat.DenseCopyOf(w.Grad), mat.DenseCopyOf(b.Grad)
	for step := range 3 {
		tp.Reset()
		require.Zero(t, tp.Len())
		w.ZeroGrad()
		b.ZeroGrad()
		l := buildStep(tp, w, b, x)
		require.Equal(t, n, tp.Len())
		tp.Backward(l)
		require.Equal(t, wantLoss, l.Item(), "step %d", step)
		require.True(t, mat.Equal(wantW, w.Grad), "step %d", step)
		require.True(t, mat.Equal(wantB, b.Grad), "step %d", step)
	}
}

func TestVarBoundTwiceAccumulates(t *testing.T) {
	v := ad.NewVar(mat.NewDense(1, 2, []float64{3, -1}))
	tp := ad.NewTape()
	// loss = Σ x² + Σ 3x with x bound twice: d/dx = 2x + 3.
	l := ad.Add(ad.Sum(ad.Square(tp.Var(v))), ad.Sum(ad.Scale(tp.Var(v), 3)))
	tp.Backward(l)
	assert.Equal(t, []float64{9, 1}, v.Grad.RawMatrix().Data)
	// A second backward adds again.
	tp.Backward(l)
	assert.Equal(t, []float64{18, 2}, v.Grad.RawMatrix().Data)
	v.ZeroGrad()
	assert.Equal(t, []float64{0, 0}, v.Grad.RawMatrix().Data)
}

func TestVarWithoutGrad(t *testing.T) {
	v := &ad.Var{Value: mat.NewDense(1, 2, []float64{1, 2})}
	tp := ad.NewTape()
	tp.Backward(ad.Sum(ad.Square(tp.Var(v))))
	require.NotNil(t, v.Grad)
	assert.Equal(t, []float64{2, 4}, v.Grad.RawMatrix().Data)
	v2 := &ad.Var{Value: mat.NewDense(1, 1, nil)}
	v2.ZeroGrad()
	assert.NotNil(t, v2.Grad)
}

func TestConstCopiesViews(t *testing.T) {
	m := mat.NewDense(3, 4, []float64{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11})
	tp := ad.NewTape()
	view := tp.Const(m.Slice(1, 3, 1, 3))
	assert.Equal(t, []float64{5, 6, 9, 10}, view.Data())
	tr := tp.Const(m.T())
	assert.Equal(t, 4.0, tr.At(0, 1))
	m.Set(1, 1, 100)
	assert.Equal(t, 5.0, view.At(0, 0), "Const must copy")
	assert.True(t, mat.Equal(mat.NewDense(2, 2, []float64{5, 6, 9, 10}), view.Value()))
}

// shardLoss is the loss of one shard of a batch on its own tape.
func shardLoss(tp *ad.Tape, w *ad.Var, x *mat.Dense) *ad.Tensor {
	return ad.Sum(ad.LogSigmoid(ad.MatMul(tp.Const(x), tp.Var(w))))
}

// parallelGrad splits x into shards, computes each shard's gradient on its
// own tape with the given number of goroutines, and accumulates in shard
// order.
func parallelGrad(t *testing.T, w *ad.Var, shards []*mat.Dense, workers int) *mat.Dense {
	w.ZeroGrad()
	tapes := make([]*ad.Tape, len(shards))
	var wg sync.WaitGroup
	next := make(chan int)
	for range workers {
		wg.Go(func() {
			for i := range next {
				tp := ad.NewTape()
				tp.ComputeGradients(shardLoss(tp, w, shards[i]))
				tapes[i] = tp
			}
		})
	}
	for i := range shards {
		next <- i
	}
	close(next)
	wg.Wait()
	for _, tp := range tapes {
		tp.AccumulateGradients()
	}
	require.NotZero(t, mat.Norm(w.Grad, 1))
	return mat.DenseCopyOf(w.Grad)
}

func TestConcurrentTapesDeterministicSum(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	w := ad.NewVar(randDense(rng, 6, 3, nil))
	shards := make([]*mat.Dense, 8)
	for i := range shards {
		shards[i] = randDense(rng, 1+rng.IntN(5), 6, nil)
	}
	want := parallelGrad(t, w, shards, 1)
	for _, workers := range []int{2, 3, 8} {
		got := parallelGrad(t, w, shards, workers)
		require.Truef(t, mat.Equal(want, got), "%d workers: gradient differs from the serial one", workers)
	}

	// The sum agrees with one tape over the whole batch up to rounding.
	whole := ad.NewVar(mat.DenseCopyOf(w.Value))
	tp := ad.NewTape()
	var all mat.Dense
	for _, s := range shards {
		if all.IsEmpty() {
			all.CloneFrom(s)
			continue
		}
		var st mat.Dense
		st.Stack(&all, s)
		all = st
	}
	tp.Backward(shardLoss(tp, whole, &all))
	require.True(t, mat.EqualApprox(want, whole.Grad, 1e-12))
}

func TestTapesRunConcurrently(t *testing.T) {
	// Run under -race: each goroutine owns its tape, and they share
	// read-only Var values.
	rng := rand.New(rand.NewPCG(1, 2))
	m := newSmallMLP(rng)
	want := m.loss(ad.NewTape())
	var wg sync.WaitGroup
	losses := make([]float64, 4)
	for i := range losses {
		wg.Go(func() {
			tp := ad.NewTape()
			for range 20 {
				tp.Reset()
				losses[i] = m.loss(tp)
			}
		})
	}
	wg.Wait()
	for _, l := range losses {
		assert.Equal(t, want, l)
	}
}

type smallMLP struct {
	x, w *mat.Dense
}

func newSmallMLP(rng *rand.Rand) smallMLP {
	return smallMLP{x: randDense(rng, 7, 5, nil), w: randDense(rng, 5, 5, nil)}
}

func (m smallMLP) loss(tp *ad.Tape) float64 {
	w := tp.Var(&ad.Var{Value: m.w})
	l := ad.Sum(ad.Mul(ad.Softmax(ad.Tanh(ad.MatMul(tp.Const(m.x), w))), tp.Const(m.x)))
	tp.ComputeGradients(l)
	return l.Item() + math.Abs(tp.Grad(w).At(0, 0))
}

func TestResetSteadyStateDoesNotAllocate(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	x := randDense(rng, 5, 4, nil)
	w := ad.NewVar(randDense(rng, 4, 3, nil))
	b := ad.NewVar(randDense(rng, 1, 3, nil))
	tp := ad.NewTape()
	allocs := testing.AllocsPerRun(50, func() {
		tp.Reset()
		tp.Backward(buildStep(tp, w, b, x))
	})
	assert.Zero(t, allocs)
}

func TestResetAfterNaNRunGivesCleanResults(t *testing.T) {
	// Backward kernels write into recycled buffers without zeroing them
	// first; a NaN left by a bad step must not leak into the next one.
	rng := rand.New(rand.NewPCG(1, 2))
	x := randDense(rng, 5, 4, nil)
	bad := mat.DenseCopyOf(x)
	bad.Set(2, 1, math.NaN())
	w := ad.NewVar(randDense(rng, 4, 3, nil))
	b := ad.NewVar(randDense(rng, 1, 3, nil))

	fresh := ad.NewTape()
	fresh.Backward(buildStep(fresh, w, b, x))
	wantW, wantB := mat.DenseCopyOf(w.Grad), mat.DenseCopyOf(b.Grad)

	tp := ad.NewTape()
	w.ZeroGrad()
	b.ZeroGrad()
	tp.Backward(buildStep(tp, w, b, bad))
	require.True(t, math.IsNaN(w.Grad.At(0, 0)))
	tp.Reset()
	w.ZeroGrad()
	b.ZeroGrad()
	tp.Backward(buildStep(tp, w, b, x))
	require.True(t, mat.Equal(wantW, w.Grad))
	require.True(t, mat.Equal(wantB, b.Grad))
}

func TestBackwardIntoStridedGrad(t *testing.T) {
	// A Var whose Grad is a view with a larger stride takes the
	// accumulate-after path; the result must match a contiguous Grad.
	value := mat.NewDense(2, 2, []float64{1, 2, 3, 4})
	contiguous := ad.NewVar(value)
	big := mat.NewDense(3, 5, nil)
	strided := &ad.Var{Value: value, Grad: big.Slice(1, 3, 2, 4).(*mat.Dense)}
	for _, v := range []*ad.Var{contiguous, strided} {
		tp := ad.NewTape()
		x := tp.Var(v)
		tp.Backward(ad.Sum(ad.Mul(ad.Square(x), tp.Var(v))))
		// d/dv Σ v³ = 3v²
		assert.True(t, mat.Equal(mat.NewDense(2, 2, []float64{3, 12, 27, 48}), v.Grad))
		assert.True(t, mat.Equal(v.Grad, tp.Grad(x)), "Grad of a Var leaf after Backward reads Var.Grad")
	}
	assert.Equal(t, 0.0, big.At(0, 2), "elements outside the view are untouched")
	assert.Equal(t, 0.0, big.At(1, 1))
}
