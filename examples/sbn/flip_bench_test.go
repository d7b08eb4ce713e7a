package main

import (
	"math/rand/v2"
	"testing"

	"github.com/backpropq/backpropq/ad"
)

// BenchmarkFlipLikelihood measures what an exact local expectation of the
// first layer's direct cost would cost per step: log p(x | h1) of a batch
// of 24 images evaluated once per single-unit flip of a 200-unit h1, that
// is 4,800 rows of the 784-pixel likelihood, with the flipped logits
// formed from the sampled ones by adding or subtracting one row of the
// decoder's weights. Compare it with a training step's time.
func BenchmarkFlipLikelihood(b *testing.B) {
	const batch, units, pixels = 24, 200, 784
	rng := rand.New(rand.NewPCG(1, 2))
	w := make([]float64, units*pixels)
	for i := range w {
		w[i] = rng.NormFloat64() * 0.05
	}
	logits := make([]float64, batch*pixels)
	x := make([]float64, batch*units*pixels)
	for i := range logits {
		logits[i] = rng.NormFloat64()
	}
	for i := range x {
		x[i] = float64(rng.IntN(2))
	}
	h := make([]float64, batch*units)
	for i := range h {
		h[i] = float64(rng.IntN(2))
	}
	flipped := make([]float64, batch*units*pixels)
	tp := ad.NewTape()
	b.ReportAllocs()
	for b.Loop() {
		tp.Reset()
		for r := range batch {
			l := logits[r*pixels : (r+1)*pixels]
			for i := range units {
				// Unit i flipped: +w_i when it goes from 0 to 1, -w_i from 1 to 0.
				sign := 1 - 2*h[r*units+i]
				out := flipped[(r*units+i)*pixels : (r*units+i+1)*pixels]
				wi := w[i*pixels : (i+1)*pixels]
				for j := range out {
					out[j] = l[j] + sign*wi[j]
				}
			}
		}
		ad.BinaryCrossEntropyLogits(tp.FromData(batch*units, pixels, flipped), tp.FromData(batch*units, pixels, x))
	}
}
