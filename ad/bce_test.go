package ad

import (
	"math"
	"math/rand/v2"
	"testing"

	"gonum.org/v1/gonum/mat"
)

// softplusTol bounds the relative error of softplusSigmoid's softplus
// against max(v, 0) + math.Log1p(exp(-|v|)) computed from the same
// exponential: Goldberg's Theorem 4 bounds log(u)·e/(u-1) by 5 ulps of
// log1p(e) when the logarithm is correctly rounded, math.Log and
// math.Log1p each add under 1 ulp, and adding max(v, 0) only shrinks a
// relative error; 8 ulps (8·2^-53 ≈ 8.9e-16) covers it.
const softplusTol = 8 * 0x1p-53

// sweep returns arguments from -800 to 800 on a log scale in |v|, both
// signs, zeros, subnormals and infinities.
func sweep() []float64 {
	xs := []float64{0, math.Copysign(0, -1), math.SmallestNonzeroFloat64, -math.SmallestNonzeroFloat64,
		math.Inf(1), math.Inf(-1), math.MaxFloat64, -math.MaxFloat64, 36.7368005696771, -36.7368005696771}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 200_000 {
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

func TestSoftplusSigmoidAccuracy(t *testing.T) {
	var worstSP, worstSig float64
	for _, v := range sweep() {
		sp, sig := softplusSigmoid(v)
		e := math.Exp(-math.Abs(v))
		wantSP := math.Max(v, 0) + math.Log1p(e)
		wantSig := 1 / (1 + e)
		if v < 0 {
			wantSig = e / (1 + e)
		}
		if math.IsInf(v, 0) || math.Abs(v) > 1e300 {
			if sp != wantSP || sig != wantSig {
				t.Fatalf("v=%v: softplus, sigmoid = %v, %v, want %v, %v", v, sp, sig, wantSP, wantSig)
			}
			continue
		}
		rel := relErr(sp, wantSP)
		worstSP = max(worstSP, rel)
		if !(rel <= softplusTol) {
			t.Fatalf("v=%v: softplus %v, want %v (relative error %.3g > %.3g)", v, sp, wantSP, rel, softplusTol)
		}
		// The sigmoid is the same expression as before: no error allowed.
		if sig != wantSig {
			t.Fatalf("v=%v: sigmoid %v, want %v", v, sig, wantSig)
		}
		worstSig = max(worstSig, relErr(sig, wantSig))
	}
	t.Logf("worst relative error: softplus %.3g (%.2f ulps), sigmoid %.3g", worstSP, worstSP/0x1p-53, worstSig)
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
