//go:build !race

package dist

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/backpropq/backpropq/ad"
)

// In steady state (a tape reset per step) sampling and scoring allocate
// almost nothing: the tape recycles its buffers and the samplers draw
// into pooled scratch memory.
func TestSteadyStateAllocations(t *testing.T) {
	tp := ad.NewTape()
	rng := newRNG()
	for name := range benchDists(tp) {
		t.Run(name, func(t *testing.T) {
			step := func() {
				tp.Reset()
				d := benchDists(tp)[name]
				x := d.Sample(rng)
				d.LogProb(x)
				if r, ok := d.(Reparameterized); ok {
					r.RSample(rng)
				}
				if r, ok := d.(Relaxable); ok {
					_, b := r.RelaxedSample(rng)
					r.ConditionalRelaxedSample(b, rng)
				}
			}
			step()
			// The map and the interface boxing of benchDists allocate a
			// fixed handful; the distribution methods must add at most a
			// couple (the index slice of the conditional Gumbel sample).
			base := testing.AllocsPerRun(20, func() { tp.Reset(); benchDists(tp) })
			got := testing.AllocsPerRun(20, step)
			t.Logf("%s: %.0f allocations per step beyond setup", name, got-base)
			require.LessOrEqual(t, got-base, 3.0)
		})
	}
}
