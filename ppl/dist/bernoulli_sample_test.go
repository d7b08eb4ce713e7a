package dist

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/backpropq/backpropq/ad"
)

// TestBernoulliSampleMatchesScalarRule replays the uniform draws of
// Sample and checks each element against 1[u < p] with p from math's
// sigmoid (Logits) or Probs itself. With Probs the rule is exact; with
// Logits the vector sigmoid is within 5 ulps (under 6e-16) of math's, so
// the draws may differ only where u is that close to p.
func TestBernoulliSampleMatchesScalarRule(t *testing.T) {
	const rows, cols = 64, 37
	src := rand.New(rand.NewPCG(5, 6))
	logits, probs := make([]float64, rows*cols), make([]float64, rows*cols)
	for k := range logits {
		logits[k] = 3 * src.NormFloat64()
		probs[k] = src.Float64()
	}
	logits[0], logits[1], logits[2] = 0, 720, -720
	tp := ad.NewTape()
	for _, c := range []struct {
		name string
		d    Bernoulli
		p    []float64
		tol  float64
	}{
		{"logits", BernoulliLogits(tp.FromData(rows, cols, logits)), logits, 6e-16},
		{"probs", BernoulliProbs(tp.FromData(rows, cols, probs)), probs, 0},
	} {
		got := c.d.Sample(rand.New(rand.NewPCG(7, 8))).Data()
		replay := rand.New(rand.NewPCG(7, 8))
		ones := 0
		for k, v := range c.p {
			p := v
			if c.d.Logits != nil {
				p = sigmoid(v)
			}
			u := replay.Float64()
			want := b2f(u < p)
			ones += int(want)
			if got[k] != want && math.Abs(u-p) > c.tol {
				t.Fatalf("%s: element %d = %v with u = %v and p = %v, want %v", c.name, k, got[k], u, p, want)
			}
		}
		if ones == 0 || ones == len(c.p) {
			t.Fatalf("%s: %d ones out of %d: the draws are degenerate", c.name, ones, len(c.p))
		}
	}
}

// TestBernoulliScansAgreeWithRules checks the validation scans against
// the element rules they stand for, on the edge values of float64 placed
// at every position of buffers of 1 to 9 otherwise valid elements.
func TestBernoulliScansAgreeWithRules(t *testing.T) {
	for _, v := range []float64{0, math.Copysign(0, -1), 1, -1, 0.5, 1 - 0x1p-53, 1 + 0x1p-52, 5e-324, -5e-324,
		1e-300, -math.MaxFloat64, math.MaxFloat64, math.Inf(1), math.Inf(-1), math.NaN()} {
		for n := 1; n <= 9; n++ {
			for pos := range n {
				xs := make([]float64, n)
				for i := range xs {
					xs[i] = float64(i % 2)
				}
				xs[pos] = v
				if got := allFinite(xs); got != isFinite(v) {
					t.Errorf("allFinite with %v at %d of %d = %v, want %v", v, pos, n, got, isFinite(v))
				}
				if got, want := allBinary(xs), v == 0 || v == 1; got != want {
					t.Errorf("allBinary with %v at %d of %d = %v, want %v", v, pos, n, got, want)
				}
			}
		}
	}
}
