//go:build !race

package ppl_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/backpropq/backpropq/ad"
	"github.com/backpropq/backpropq/nn"
	"github.com/backpropq/backpropq/ppl"
	"github.com/backpropq/backpropq/ppl/dist"
)

// TestSampleReusesTheInterfaceValue checks that a run that passes a
// distribution equal to the previous run's on the tape allocates nothing.
func TestSampleReusesTheInterfaceValue(t *testing.T) {
	tp := ad.NewTape()
	cfg := ppl.Config{Tape: tp, Rand: seeded(), Params: nn.NewStore()}
	model := func(ctx *ppl.Ctx) {
		ppl.Sample(ctx, "z", dist.Normal{Loc: tp.Zeros(2, 1), Scale: tp.Scalar(1)})
	}
	hs := []ppl.Handler{cfg}
	for range 2 {
		tp.Reset()
		require.NoError(t, ppl.Run(model, hs...))
	}
	allocs := testing.AllocsPerRun(20, func() {
		tp.Reset()
		if err := ppl.Run(model, hs...); err != nil {
			t.Fatal(err)
		}
	})
	require.Zero(t, allocs)
}
