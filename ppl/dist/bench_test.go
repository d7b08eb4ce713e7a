package dist

import (
	"testing"

	"github.com/backpropq/backpropq/ad"
)

// benchDists are distributions of a [100 x 200] batch, the size of a
// binarized-MNIST VAE's latent or hidden layer.
func benchDists(tp *ad.Tape) map[string]Distribution {
	const b, d = 100, 200
	return map[string]Distribution{
		"Normal":                   Normal{Loc: tp.Zeros(b, d), Scale: tp.Full(b, d, 1)},
		"Bernoulli":                BernoulliLogits(tp.Zeros(b, d)),
		"Categorical":              Categorical{Logits: tp.Zeros(b, d)},
		"RelaxedBernoulli":         RelaxedBernoulli{Logits: tp.Zeros(b, d), Temperature: tp.Scalar(0.5)},
		"RelaxedOneHotCategorical": RelaxedOneHotCategorical{Logits: tp.Zeros(b, d), Temperature: tp.Scalar(0.5)},
		"Uniform":                  Uniform{Low: tp.Zeros(b, d), High: tp.Full(b, d, 1)},
	}
}

func BenchmarkSample(b *testing.B) {
	tp := ad.NewTape()
	rng := newRNG()
	for name := range benchDists(tp) {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				tp.Reset()
				d := benchDists(tp)[name]
				d.LogProb(d.Sample(rng))
			}
		})
	}
}
