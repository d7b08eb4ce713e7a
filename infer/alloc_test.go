//go:build !race

package infer

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/backpropq/backpropq/nn"
)

// TestSteadyStepAllocations checks that a steady-state SVI step allocates
// nothing but the model's own distribution values, which Go boxes when a
// model passes them to ppl.Sample and ppl.Observe: three per run of the
// linear SBN (the guide's, the prior's and the likelihood's), and of the
// Gaussian VAE. DisARM runs the objective twice.
func TestSteadyStepAllocations(t *testing.T) {
	x := binaryImages(24)
	cases := []struct {
		name  string
		svi   *SVI
		dists float64
	}{
		{"SBN model", &SVI{Objective: linearSBN(x), Estimators: Estimators{Default: noTerm{}}}, 3},
		{"SBN NVIL", &SVI{Objective: linearSBN(x), Estimators: Estimators{Default: ScoreFunction{Baseline: NewNVIL(100)}}}, 3},
		{"SBN DisARM", &SVI{Objective: linearSBN(x), Estimators: Estimators{Default: DisARM{}}}, 6},
		{"Gaussian VAE", &SVI{Objective: gaussVAE(x)}, 3},
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
			require.LessOrEqual(t, allocs, c.dists, "allocations per step")
		})
	}
}
