package infer

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/backpropq/backpropq/ad"
	"github.com/backpropq/backpropq/nn"
	"github.com/backpropq/backpropq/ppl"
	"github.com/backpropq/backpropq/ppl/dist"
	"github.com/backpropq/backpropq/q"
	"github.com/backpropq/backpropq/vi"
)

// pairELBO is the ELBO of a model with two binary latents, v1 and v2
// given v1, and one observation, with a guide that keeps their
// dependence.
var pairELBO = vi.ELBO{
	Model: func(ctx *ppl.Ctx) {
		tp := ctx.Tape()
		v1 := ppl.Sample(ctx, "v1", dist.BernoulliLogits(tp.Full(ctx.Batch(), 1, -0.4)))
		v2 := ppl.Sample(ctx, "v2", dist.BernoulliLogits(ad.Add(tp.Full(ctx.Batch(), 1, 0.3), ad.Scale(v1, -1.2))))
		ppl.Observe(ctx, "x", dist.Normal{Loc: ad.Add(v1, ad.Scale(v2, 2)), Scale: tp.Scalar(0.8)}, tp.Full(ctx.Batch(), 1, 1.5))
	},
	Guide: func(ctx *ppl.Ctx) {
		g := ppl.Param(ctx, "g", 1, 3, values(0.2, -0.1, 0.9))
		v1 := ppl.Sample(ctx, "v1", dist.BernoulliLogits(ppl.Expand(ctx, ad.Slice(g, 0, 1))))
		ppl.Sample(ctx, "v2", dist.BernoulliLogits(ad.Add(ppl.Expand(ctx, ad.Slice(g, 1, 2)), ad.Mul(v1, ad.Slice(g, 2, 3)))))
	},
}

var pairSupport = []siteSupport{
	{"v1", [][]float64{{0}, {1}}},
	{"v2", [][]float64{{0}, {1}}},
}

// TestBackpropQReplayELBO trains the critics of an ELBO through SVI with
// graph experience replay (appendix 4.2): the replay steps run, re-running
// the guide with the experiences' values, and the critics end at the
// exact Q-functions computed by enumeration.
func TestBackpropQReplayELBO(t *testing.T) {
	store := initObjectiveStore(t, pairELBO)
	est := NewQLocal(q.Config{Kind: q.TabularKind}, q.TD{})
	est.Replay = &Replay{Capacity: 256, Options: q.ReplayOptions{Rows: 32}}
	s := &SVI{Objective: pairELBO, Estimators: Estimators{Default: est}, Optimizer: nn.NewAdam(0.01),
		Params: store, Particles: 8, Chunks: 2, Seed: 12}
	trainCritics(t, s, 300)
	require.Equal(t, 600, est.Replays(), "one replay step per chunk's trace")
	n, err := est.SkippedUpdates()
	require.Zero(t, n, err)
	// Each cell averages (tabular critics, 1/n steps) targets of standard
	// deviation below 2 from more than 4000 replayed rows (300 steps, 2
	// chunks, 32 rows, at most 4 cells): a standard error below 0.03, so an
	// error above 0.1 is beyond 3 of them. The costs are several nats, so
	// untrained (zero) critics are far off.
	require.Less(t, exactQ(t, pairELBO, store, pairSupport, est), 0.1)
}
