package ad_test

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/backpropq/backpropq/ad"
)

// ulpsApart returns how many float64 steps separate a and b, both finite
// and of one sign.
func ulpsApart(a, b float64) float64 {
	return math.Abs(float64(int64(math.Float64bits(a)) - int64(math.Float64bits(b))))
}

// TestSigmoidValuesMatchesScalar checks SigmoidValues against
// 1/(1+exp(-x)) written with math's functions (within 2 ulps of exact):
// the vector kernel's 3 ulps plus the reference's 2 bound the distance by
// 5 ulps. The lengths leave every remainder modulo 4 and cross the 256
// value blocks; each result must also not depend on the length.
func TestSigmoidValuesMatchesScalar(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	x := make([]float64, 1031)
	for i := range x {
		x[i] = 12 * rng.NormFloat64()
	}
	x[0], x[1], x[2], x[3], x[4] = 0, 707.5, -707.5, 750, -745
	all := make([]float64, len(x))
	ad.SigmoidValues(all, x)
	for _, n := range []int{1, 2, 3, 4, 5, 255, 256, 257, 1031} {
		got := make([]float64, n)
		ad.SigmoidValues(got, x[:n])
		for i, v := range x[:n] {
			want := 1 / (1 + math.Exp(-v))
			if v < 0 {
				e := math.Exp(v)
				want = e / (1 + e)
			}
			if d := ulpsApart(got[i], want); d > 5 {
				t.Fatalf("n=%d: sigmoid(%v) = %v, want %v (%g ulps apart)", n, v, got[i], want, d)
			}
			if got[i] != all[i] {
				t.Fatalf("sigmoid(%v) = %v in a buffer of %d, %v in one of %d", v, got[i], n, all[i], len(x))
			}
		}
	}
}

func TestSigmoidValuesNonFiniteAndShortDst(t *testing.T) {
	got := make([]float64, 3)
	ad.SigmoidValues(got, []float64{math.Inf(1), math.Inf(-1), math.NaN()})
	if got[0] != 1 || got[1] != 0 || !math.IsNaN(got[2]) {
		t.Errorf("sigmoid(+Inf, -Inf, NaN) = %v, want [1 0 NaN]", got)
	}
	defer func() {
		if recover() == nil {
			t.Error("SigmoidValues with a short dst did not panic")
		}
	}()
	ad.SigmoidValues(make([]float64, 1), []float64{1, 2})
}
