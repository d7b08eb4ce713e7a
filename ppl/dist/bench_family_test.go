package dist

import (
	"math/rand/v2"
	"testing"

	"github.com/backpropq/backpropq/ad"
)

// familyBenchDists are distributions of a [100 x 20] batch: B=100 rows of
// 20 columns, one 20-dimensional event per row for the multivariate Normal.
func familyBenchDists(tp *ad.Tape) map[string]Distribution {
	const b, d = 100, 20
	l := make([]float64, d*d)
	for i := range d {
		for j := 0; j <= i; j++ {
			l[i*d+j] = 0.1
		}
		l[i*d+i] = 1
	}
	return map[string]Distribution{
		"Normal":             Normal{Loc: tp.Zeros(b, d), Scale: tp.Full(b, d, 1)},
		"Bernoulli":          BernoulliLogits(tp.Zeros(b, d)),
		"Gamma":              Gamma{Concentration: tp.Full(b, d, 2), Rate: tp.Full(b, d, 1)},
		"MultivariateNormal": MultivariateNormal{Loc: tp.Zeros(b, d), ScaleTril: tp.FromData(d, d, l)},
	}
}

// BenchmarkLogProb scores a sample, on a tape reset per iteration; only
// LogProb is timed.
func BenchmarkLogProb(b *testing.B) {
	tp := ad.NewTape()
	for name := range familyBenchDists(tp) {
		b.Run(name, func(b *testing.B) {
			rng := rand.New(rand.NewPCG(1, 2))
			b.ReportAllocs()
			for range b.N {
				b.StopTimer()
				tp.Reset()
				d := familyBenchDists(tp)[name]
				x := d.Sample(rng)
				b.StartTimer()
				d.LogProb(x)
			}
		})
	}
}

// BenchmarkRSample draws a reparameterized sample (Bernoulli, which has
// none, draws Sample), on a tape reset per iteration.
func BenchmarkRSample(b *testing.B) {
	tp := ad.NewTape()
	for name := range familyBenchDists(tp) {
		b.Run(name, func(b *testing.B) {
			rng := rand.New(rand.NewPCG(1, 2))
			b.ReportAllocs()
			for range b.N {
				b.StopTimer()
				tp.Reset()
				d := familyBenchDists(tp)[name]
				b.StartTimer()
				if r, ok := d.(Reparameterized); ok {
					r.RSample(rng)
				} else {
					d.Sample(rng)
				}
			}
		})
	}
}
