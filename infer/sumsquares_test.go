package infer

import (
	"math"
	"math/big"
	"math/rand/v2"
	"testing"
)

// TestSumSquaresWithinRoundingBound checks the four-way sum against the
// sum of the squares in 300-bit arithmetic: with nonnegative terms, each
// partial sum of at most ⌈n/4⌉ rounded squares and the two final
// additions keep the relative error below γ(⌈n/4⌉+2), γ(k) = k·u/(1-k·u).
func TestSumSquaresWithinRoundingBound(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	const u = 0x1p-53
	for _, n := range []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 31, 1000, 100003} {
		xs := make([]float64, n)
		exact := new(big.Float).SetPrec(300)
		for i := range xs {
			xs[i] = rng.NormFloat64() * math.Exp(4*rng.NormFloat64())
			x := new(big.Float).SetPrec(300).SetFloat64(xs[i])
			exact.Add(exact, x.Mul(x, x))
		}
		want, _ := exact.Float64()
		k := float64((n+3)/4 + 2)
		bound := k * u / (1 - k*u) * want
		if got := sumSquares(xs); math.Abs(got-want) > bound {
			t.Errorf("n=%d: sumSquares = %v, exact %v, error %g above the bound %g", n, got, want, math.Abs(got-want), bound)
		}
	}
}

// TestSumSquaresNonFinite checks that a NaN or infinity at any position,
// and an overflowing sum, give a non-finite result: the step's check of
// the gradients relies on it.
func TestSumSquaresNonFinite(t *testing.T) {
	for n := 1; n <= 9; n++ {
		for pos := range n {
			for _, bad := range []float64{math.NaN(), math.Inf(1), math.Inf(-1)} {
				xs := make([]float64, n)
				for i := range xs {
					xs[i] = float64(i) - 3.5
				}
				xs[pos] = bad
				got := sumSquares(xs)
				if math.IsNaN(bad) != math.IsNaN(got) || !math.IsNaN(bad) && !math.IsInf(got, 1) {
					t.Errorf("n=%d, %v at %d: sumSquares = %v", n, bad, pos, got)
				}
			}
		}
	}
	if got := sumSquares([]float64{1e200, 1, -1e200}); !math.IsInf(got, 1) {
		t.Errorf("overflowing squares: sumSquares = %v, want +Inf", got)
	}
}
