package infer

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/backpropq/backpropq/ad"
	"github.com/backpropq/backpropq/nn"
	"github.com/backpropq/backpropq/ppl"
	"github.com/backpropq/backpropq/ppl/dist"
	"github.com/backpropq/backpropq/vi"
)

func TestSmokeStep(t *testing.T) {
	model := func(ctx *ppl.Ctx) {
		th := ppl.Param(ctx, "theta", 1, 1, nn.Zeros{})
		z := ppl.Sample(ctx, "z", dist.BernoulliLogits(ppl.Expand(ctx, th)))
		ppl.Cost(ctx, "c", ad.Square(ad.Sub(z, ctx.Tape().Scalar(0.499))))
	}
	s := &SVI{Objective: vi.Program{Model: model}, Optimizer: nn.NewAdam(0.01), Params: nn.NewStore(), Particles: 8, Seed: 1}
	for i := 0; i < 3; i++ {
		m, err := s.Step()
		require.NoError(t, err)
		t.Logf("%+v", m)
	}
}
