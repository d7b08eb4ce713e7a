package nn

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
	"gonum.org/v1/gonum/mat"

	"github.com/backpropq/backpropq/ad"
)

func newRand() *rand.Rand { return rand.New(rand.NewPCG(1, 2)) }

func randDense(rng *rand.Rand, r, c int) *mat.Dense {
	m := mat.NewDense(r, c, nil)
	Normal{Std: 1}.Init(m, rng)
	return m
}

// fdStep and fdTol set the finite-difference check. The central difference
// with step h has truncation error h²/6·|f⁽³⁾| ≈ 2e-11 and rounding error
// about ε·|f|/h ≈ 2e-11·|f| for the O(1)-O(10) losses below, so a
// tolerance of 1e-6·max(1, |g|) leaves a margin of four orders of
// magnitude while still catching any wrong term of a gradient.
const (
	fdStep = 1e-5
	fdTol  = 1e-6
)

// checkGradients compares the gradients of the scalar loss built by build
// with respect to params (via Backward into Var.Grad) and inputs (via
// Tape.Gradients) with central finite differences.
func checkGradients(t *testing.T, params []*Param, inputs []*mat.Dense, build func(tp *ad.Tape, xs []*ad.Tensor) *ad.Tensor) {
	t.Helper()
	eval := func() float64 {
		tp := ad.NewTape()
		xs := make([]*ad.Tensor, len(inputs))
		for i, in := range inputs {
			xs[i] = tp.Const(in)
		}
		return build(tp, xs).Item()
	}
	for _, p := range params {
		p.ZeroGrad()
	}
	tp := ad.NewTape()
	xs := make([]*ad.Tensor, len(inputs))
	for i, in := range inputs {
		xs[i] = tp.Const(in)
	}
	loss := build(tp, xs)
	var inGrads []*mat.Dense
	if len(xs) > 0 {
		inGrads = tp.Gradients(loss, xs...)
	}
	tp.Backward(loss)

	check := func(what string, m, grad *mat.Dense) {
		r, c := m.Dims()
		for i := 0; i < r; i++ {
			for j := 0; j < c; j++ {
				orig := m.At(i, j)
				m.Set(i, j, orig+fdStep)
				up := eval()
				m.Set(i, j, orig-fdStep)
				down := eval()
				m.Set(i, j, orig)
				fd := (up - down) / (2 * fdStep)
				g := grad.At(i, j)
				require.InDelta(t, fd, g, fdTol*math.Max(1, math.Abs(g)), "%s[%d,%d]", what, i, j)
			}
		}
	}
	for _, p := range params {
		check(p.Name, p.Value, p.Grad)
	}
	for k, in := range inputs {
		check("input"+string(rune('0'+k)), in, inGrads[k])
	}
}

// weightedSum returns Σ out ⊙ w for a fixed random w, so that every output
// element enters the loss with its own weight.
func weightedSum(out *ad.Tensor, w *mat.Dense) *ad.Tensor {
	return ad.Sum(ad.Mul(out, out.Tape().Const(w)))
}
