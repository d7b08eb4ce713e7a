package ad_test

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
	"gonum.org/v1/gonum/mat"

	"github.com/backpropq/backpropq/ad"
)

// setGradVars are the Vars of [setGradLoss]: w bound once, u bound twice,
// s bound once with a strided Grad, idle bound but unused, absent never
// bound, extra bound once but not listed.
type setGradVars struct {
	w, u, s, idle, absent, extra *ad.Var
}

func newSetGradVars(rng *rand.Rand) setGradVars {
	m := func(r, c int) *mat.Dense {
		d := mat.NewDense(r, c, nil)
		for i := range d.RawMatrix().Data {
			d.RawMatrix().Data[i] = rng.NormFloat64()
		}
		return d
	}
	strided := m(3, 8).Slice(0, 3, 0, 4).(*mat.Dense)
	return setGradVars{
		w: ad.NewVar(m(4, 3)), u: ad.NewVar(m(1, 3)),
		s:    &ad.Var{Value: m(3, 4), Grad: strided},
		idle: ad.NewVar(m(2, 2)), absent: ad.NewVar(m(2, 2)), extra: ad.NewVar(m(1, 3)),
	}
}

// listed returns the Vars SetGradients sets, each with garbage in Grad.
func (v setGradVars) listed() []*ad.Var {
	out := []*ad.Var{v.w, v.u, v.s, v.idle, v.absent}
	for _, x := range out {
		r, c := x.Grad.Dims()
		for i := 0; i < r; i++ {
			for j := 0; j < c; j++ {
				x.Grad.Set(i, j, math.NaN())
			}
		}
	}
	return out
}

// setGradLoss records a loss over the Vars of v on tp.
func setGradLoss(tp *ad.Tape, v setGradVars, x *mat.Dense) *ad.Tensor {
	tp.Var(v.idle)
	h := ad.Tanh(ad.Add(ad.MatMul(tp.Const(x), tp.Var(v.w)), tp.Var(v.u)))
	h = ad.Mul(h, ad.Add(tp.Var(v.u), tp.Var(v.extra)))
	h = ad.MatMul(h, ad.Transpose(ad.MatMul(tp.Var(v.s), tp.Var(v.w))))
	return ad.Sum(ad.Mul(h, h))
}

func TestSetGradientsMatchesZeroComputeAccumulate(t *testing.T) {
	x := mat.NewDense(5, 4, nil)
	for i := range x.RawMatrix().Data {
		x.RawMatrix().Data[i] = float64(i%7) - 3
	}
	want := newSetGradVars(rand.New(rand.NewPCG(1, 2)))
	got := newSetGradVars(rand.New(rand.NewPCG(1, 2)))
	want.extra.Grad.Set(0, 1, 5)
	got.extra.Grad.Set(0, 1, 5)

	tp := ad.NewTape()
	for _, v := range want.listed() {
		v.ZeroGrad()
	}
	tp.ComputeGradients(setGradLoss(tp, want, x))
	tp.AccumulateGradients()

	tp2 := ad.NewTape()
	for run := 0; run < 2; run++ { // the second run reuses the tape's nodes
		tp2.Reset()
		got.extra.Grad.Set(0, 1, 5)
		got.extra.Grad.Set(0, 0, 0)
		got.extra.Grad.Set(0, 2, 0)
		tp2.SetGradients(setGradLoss(tp2, got, x), got.listed())
		for name, p := range map[string][2]*ad.Var{
			"w": {want.w, got.w}, "u": {want.u, got.u}, "s": {want.s, got.s},
			"idle": {want.idle, got.idle}, "absent": {want.absent, got.absent}, "extra": {want.extra, got.extra},
		} {
			require.Equalf(t, mat.DenseCopyOf(p[0].Grad).RawMatrix().Data, mat.DenseCopyOf(p[1].Grad).RawMatrix().Data, "run %d: gradient of %s", run, name)
		}
		require.NotZero(t, got.w.Grad.At(0, 0), "w receives a gradient")
		require.Equal(t, 0.0, mat.Norm(got.idle.Grad, 1), "idle is zeroed")
	}
}
