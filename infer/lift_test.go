package infer

import (
	"errors"
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/backpropq/backpropq/nn"
	"github.com/backpropq/backpropq/ppl"
	"github.com/backpropq/backpropq/ppl/dist"
	"github.com/backpropq/backpropq/vi"
)

// hammingTarget is the bit pattern the Hamming program learns.
var hammingTarget = []float64{1, 0, 1, 1, 0, 0, 1, 0, 1, 0}

// hammingNaive draws ten bits and records their Hamming distance to the
// target as a new user first writes it: read into Go with At and back with
// FromData, which loses the bits' provenance.
func hammingNaive(ctx *ppl.Ctx) {
	theta := ppl.Param(ctx, "theta", 1, len(hammingTarget), nn.Zeros{})
	b := ppl.Sample(ctx, "b", dist.BernoulliLogits(ppl.Expand(ctx, theta)))
	out := make([]float64, b.Rows())
	for r := range out {
		for c, want := range hammingTarget {
			if b.At(r, c) != want {
				out[r]++
			}
		}
	}
	ppl.Cost(ctx, "hamming", ctx.Tape().FromData(b.Rows(), 1, out))
}

// expectedHamming is E[Hamming(b, target)] under the store's theta.
func expectedHamming(st *nn.Store) float64 {
	theta := st.Get("theta").Value.RawRowView(0)
	sum := 0.0
	for c, want := range hammingTarget {
		p := 1 / (1 + math.Exp(-theta[c]))
		if want == 1 {
			sum += 1 - p
		} else {
			sum += p
		}
	}
	return sum
}

func TestNaiveGoCostTrains(t *testing.T) {
	s := &SVI{
		Objective:  vi.Program{Model: hammingNaive},
		Estimators: Estimators{Default: DisARM{}},
		Optimizer:  nn.NewAdam(0.05),
		Params:     nn.NewStore(),
		Particles:  4,
		Seed:       7,
	}
	for i := 0; i < 1000; i++ {
		_, err := s.Step()
		require.NoError(t, err)
	}
	got := expectedHamming(s.Params)
	t.Logf("expected Hamming distance after 1000 DisARM steps: %.4f (5 untrained)", got)
	assert.Less(t, got, 0.1)

	strict := &SVI{
		Objective: vi.Program{Model: hammingNaive,
			Handlers: []ppl.Handler{ppl.Config{StrictProvenance: true}}},
		Estimators: Estimators{Default: DisARM{}},
		Optimizer:  nn.NewAdam(0.05),
		Params:     nn.NewStore(),
		Particles:  4,
		Seed:       7,
	}
	_, err := strict.Step()
	var se *ppl.SiteError
	require.True(t, errors.As(err, &se), "error %v", err)
	assert.Equal(t, "hamming", se.Addr)
	assert.EqualValues(t, 0, strict.StepCount())
}
