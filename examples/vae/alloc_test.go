//go:build !race

package main

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/backpropq/backpropq/infer"
)

// TestStepsAllocateNothing checks that a steady-state training step of the
// Gaussian VAE (with the sampled and the closed-form KL, and trained on
// the IWAE bound) and of the discrete and mixed models with NVIL
// allocates nothing.
func TestStepsAllocateNothing(t *testing.T) {
	for _, args := range [][]string{
		{"-model", "gauss"},
		{"-model", "gauss", "-analytic-kl"},
		{"-model", "gauss", "-iwae-train", "5"},
		{"-model", "discrete", "-estimator", "nvil"},
		{"-model", "mixed", "-estimator", "nvil"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			s, err := newSession(opts(t, args...), mnistSlice(t))
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
