//go:build !race

package main

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/backpropq/backpropq/infer"
)

// TestStepsAllocateNothing checks that a steady-state training step of
// the one-layer, four-layer and nonlinear SBNs allocates nothing with the
// estimators that keep no critics.
func TestStepsAllocateNothing(t *testing.T) {
	data := smallData(t)
	for _, model := range []string{"linear", "linear4", "nonlinear"} {
		for _, est := range []string{"nvil", "disarm", "rloo", "gumbel-st"} {
			t.Run(model+"/"+est, func(t *testing.T) {
				o := testOptions(t, est, 1)
				o.model, o.batch = model, 8
				s, err := newSession(o, data)
				require.NoError(t, err)
				var m infer.Metrics
				for i := range 3 {
					s.fillBatch(int64(i))
					require.NoError(t, s.svi.StepInto(&m))
				}
				allocs := testing.AllocsPerRun(10, func() {
					s.fillBatch(3)
					if err := s.svi.StepInto(&m); err != nil {
						t.Fatal(err)
					}
				})
				require.Zero(t, allocs, "allocations per step")
			})
		}
	}
}
