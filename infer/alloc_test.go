//go:build !race

package infer

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/backpropq/backpropq/nn"
)

// TestSteadyStepAllocations checks that a steady-state SVI step of the
// linear SBN (with no estimator term, NVIL and DisARM, which runs the
// objective again) and of the Gaussian VAE allocates nothing.
func TestSteadyStepAllocations(t *testing.T) {
	x := binaryImages(24)
	cases := []struct {
		name string
		svi  *SVI
	}{
		{"SBN model", &SVI{Objective: linearSBN(x), Estimators: Estimators{Default: noTerm{}}}},
		{"SBN NVIL", &SVI{Objective: linearSBN(x), Estimators: Estimators{Default: ScoreFunction{Baseline: NewNVIL(100)}}}},
		{"SBN DisARM", &SVI{Objective: linearSBN(x), Estimators: Estimators{Default: DisARM{}}}},
		{"Gaussian VAE", &SVI{Objective: gaussVAE(x)}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := c.svi
			s.Optimizer, s.Params, s.Particles, s.Seed = nn.NewAdam(1e-3), nn.NewStore(), 24, 1
			var m Metrics
			for range 3 {
				require.NoError(t, s.StepInto(&m))
			}
			allocs := testing.AllocsPerRun(10, func() {
				if err := s.StepInto(&m); err != nil {
					t.Fatal(err)
				}
			})
			require.Zero(t, allocs, "allocations per step")
		})
	}
}
