package dist

import (
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/backpropq/backpropq/ad"
)

// Distributions on different tapes may be used from different goroutines
// (the samplers share only a pool of scratch buffers), and each goroutine
// gets the numbers its own seed gives.
func TestConcurrentUseOnSeparateTapes(t *testing.T) {
	draw := func(seed uint64) []float64 {
		tp := ad.NewTape()
		rng := rand.New(rand.NewPCG(seed, 2))
		var out []float64
		for range 20 {
			tp.Reset()
			d := RelaxedOneHotCategorical{Logits: tp.Zeros(30, 7), Temperature: tp.Scalar(0.5)}
			x := d.Sample(rng)
			c := Categorical{Logits: tp.Zeros(30, 7)}
			_, b := c.RelaxedSample(rng)
			zt := c.ConditionalRelaxedSample(b, rng)
			out = append(out, x.Data()...)
			out = append(out, zt.Data()...)
		}
		return out
	}
	const workers = 4
	want := make([][]float64, workers)
	for w := range workers {
		want[w] = draw(uint64(w))
	}
	got := make([][]float64, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() { got[w] = draw(uint64(w)) })
	}
	wg.Wait()
	require.Equal(t, want, got)
}
