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
