package ad

import (
	"math"
	"math/rand/v2"
	"testing"

	"gonum.org/v1/gonum/mat"
)

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

// TestParallelElementwiseCoversAll checks that costly elementwise ops on
// tensors large enough to be cut between cores compute every element as
// the serial loop does.
func TestParallelElementwiseCoversAll(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	const rows, cols = 37, 301 // 11137 elements: several grains and a ragged end
	tp := NewTape()
	x := tp.Const(randDenseInternal(rng, rows, cols, 3))
	pos := Exp(x) // positive input for Log
	ops := map[string]func(*Tensor) *Tensor{"Exp": Exp, "Tanh": Tanh, "Sigmoid": Sigmoid, "Softplus": Softplus,
		"LogSigmoid": LogSigmoid, "Log1p": func(*Tensor) *Tensor { return Log1p(pos) }, "Log": func(*Tensor) *Tensor { return Log(pos) }}
	for name, f := range ops {
		y := f(x)
		serial := unaryNode(y.op, y.a, rows, cols)
		serial.f1, serial.f2, serial.aux = y.f1, y.f2, make([]float64, rows*cols)
		serial.unaryRange(0, rows*cols)
		for i := range y.data {
			if math.Float64bits(y.data[i]) != math.Float64bits(serial.data[i]) {
				t.Fatalf("%s: element %d is %v, serial %v", name, i, y.data[i], serial.data[i])
			}
		}
	}
	bits := tp.Const(randDenseInternal(rng, rows, cols, 1))
	got := BinaryCrossEntropyLogits(x, bits)
	sig := make([]float64, cols)
	for i := range rows {
		if want := bceRow(sig, rowOf(x, i), rowOf(bits, i)); math.Float64bits(got.data[i]) != math.Float64bits(want) {
			t.Fatalf("BinaryCrossEntropyLogits row %d: %v, serial %v", i, got.data[i], want)
		}
	}
}
