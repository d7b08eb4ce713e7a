package ad

import (
	"math"
	"math/rand/v2"
	"testing"

	"gonum.org/v1/gonum/mat"
)

// ulp is the unit roundoff times two, 2^-52.
const ulp = 0x1p-52

// sweep returns arguments from -800 to 800 on a log scale in |v|, both
// signs, zeros, subnormals and the largest finite values.
func sweep() []float64 {
	xs := []float64{0, math.Copysign(0, -1), math.SmallestNonzeroFloat64, -math.SmallestNonzeroFloat64,
		math.MaxFloat64, -math.MaxFloat64, 40, -40, 745, -745}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 100_000 {
		v := math.Exp(rng.Float64()*math.Log(800)*2 - math.Log(800)) // |v| in [1/800, 800]
		if rng.IntN(20) == 0 {
			v = math.Ldexp(1, -rng.IntN(1070)) // tiny, down to subnormal
		}
		if rng.IntN(2) == 0 {
			v = -v
		}
		xs = append(xs, v)
	}
	return xs
}

// TestSoftplusSigmoidAccuracy checks softplus and sigmoid, computed from
// math.Exp and math.Log1p (each within 1 ulp, and softplus has condition
// number at most 1), against identities and forms that do not share their
// code path: within 4 ulps of log(1 + exp(v)) where 1 + exp(v) >= 1.36
// keeps that form accurate (v >= -1, v <= 30); exactly exp(v) below -40
// and exactly v above 40, where the other term is below half an ulp;
// softplus(v) - softplus(-v) = v and sigmoid(v) + sigmoid(-v) = 1 within
// 4 ulps everywhere; and ±Inf and NaN propagate.
func TestSoftplusSigmoidAccuracy(t *testing.T) {
	for _, v := range sweep() {
		sp, sig := softplusSigmoid(v)
		spNeg, sigNeg := softplusSigmoid(-v)
		switch {
		case v >= -1 && v <= 30:
			if want := math.Log(1 + math.Exp(v)); relErr(sp, want) > 4*ulp {
				t.Fatalf("softplus(%v) = %v, log(1+exp(v)) = %v", v, sp, want)
			}
		case v < -40:
			if want := math.Exp(v); sp != want {
				t.Fatalf("softplus(%v) = %v, want exp(v) = %v", v, sp, want)
			}
		case v > 40:
			if sp != v {
				t.Fatalf("softplus(%v) = %v, want v", v, sp)
			}
		}
		if d := math.Abs(sp - spNeg - v); d > 4*ulp*max(sp, spNeg) {
			t.Fatalf("softplus(%v) - softplus(-v) = %v, want v", v, sp-spNeg)
		}
		if d := math.Abs(sig + sigNeg - 1); d > 4*ulp {
			t.Fatalf("sigmoid(%v) + sigmoid(-v) = %v, want 1", v, sig+sigNeg)
		}
		if sig < 0 || sig > 1 || sp < 0 {
			t.Fatalf("v=%v: softplus %v, sigmoid %v out of range", v, sp, sig)
		}
	}
	for _, c := range []struct{ v, sp, sig float64 }{
		{math.Inf(1), math.Inf(1), 1}, {math.Inf(-1), 0, 0},
	} {
		if sp, sig := softplusSigmoid(c.v); sp != c.sp || sig != c.sig {
			t.Fatalf("softplusSigmoid(%v) = %v, %v, want %v, %v", c.v, sp, sig, c.sp, c.sig)
		}
	}
	if sp, sig := softplusSigmoid(math.NaN()); !math.IsNaN(sp) || !math.IsNaN(sig) {
		t.Fatalf("softplusSigmoid(NaN) = %v, %v", sp, sig)
	}
}

func relErr(got, want float64) float64 {
	if got == want {
		return 0
	}
	return math.Abs(got-want) / math.Abs(want)
}

// TestBinaryCrossEntropyLogitsMatchesComposed checks the fused pass
// against the composed ops it replaces, for each shape pair it fuses.
func TestBinaryCrossEntropyLogitsMatchesComposed(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	const b, d = 5, 37
	for _, shapes := range [][4]int{{b, d, b, d}, {1, d, b, d}, {b, d, 1, d}} {
		tp := NewTape()
		l := tp.Const(randDenseInternal(rng, shapes[0], shapes[1], 8))
		x := tp.Const(randDenseInternal(rng, shapes[2], shapes[3], 1))
		got := BinaryCrossEntropyLogits(l, x)
		want := RowSum(Sub(Softplus(l), Mul(x, l)))
		for i := range b {
			var mag float64
			for j := range d {
				lj, xj := rowOf(l, i)[j], rowOf(x, i)[j]
				mag += math.Abs(math.Max(lj, 0)+math.Log1p(math.Exp(-math.Abs(lj)))) + math.Abs(xj*lj)
			}
			// d sums of terms each within a few ulps: relative to the sum of
			// magnitudes, d+8 ulps bound the difference of two such sums.
			if diff := math.Abs(got.data[i] - want.data[i]); diff > 2*(d+8)*0x1p-53*mag {
				t.Fatalf("shapes %v row %d: fused %v, composed %v", shapes, i, got.data[i], want.data[i])
			}
		}
	}
}

func randDenseInternal(rng *rand.Rand, rows, cols int, scale float64) *mat.Dense {
	x := make([]float64, rows*cols)
	for i := range x {
		x[i] = scale * rng.NormFloat64()
	}
	return mat.NewDense(rows, cols, x)
}
