package infer

import (
	"fmt"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/backpropq/backpropq/ad"
	"github.com/backpropq/backpropq/nn"
	"github.com/backpropq/backpropq/ppl"
	"github.com/backpropq/backpropq/ppl/dist"
	"github.com/backpropq/backpropq/q"
	"github.com/backpropq/backpropq/vi"
)

// perChunkSites is a model whose rows are data points and whose chunk of
// rows [from, to) samples a site of its own, "u<from>", after a shared
// categorical "k": each chunk's trace has a critic key no other chunk has.
func perChunkSites(from, to int) vi.Objective {
	return vi.Program{Model: func(ctx *ppl.Ctx) {
		tp := ctx.Tape()
		logits := ppl.Param(ctx, "logits", 1, 3, nn.Zeros{})
		k := ppl.Sample(ctx, "k", dist.Categorical{Logits: ppl.Expand(ctx, logits)})
		v := ppl.Param(ctx, "v", 1, 1, nn.Zeros{})
		row := tp.Scalar(float64(from) / 4)
		u := ppl.Sample(ctx, fmt.Sprintf("u%d", from), dist.BernoulliLogits(ad.Add(ppl.Expand(ctx, v), ad.Sub(k, row))))
		ppl.Cost(ctx, "f", ad.Square(ad.Sub(ad.Add(k, u), tp.Scalar(1.5))))
	}}
}

// TestCriticsIndependentOfWorkers runs steps whose chunks each see a
// critic key for the first time, on goroutines that reach them in any
// order: the critics, and so every parameter and metric, are the same with
// 1, 2, 3 and 8 workers, every time.
func TestCriticsIndependentOfWorkers(t *testing.T) {
	run := func(workers int) ([]byte, string) {
		est := NewQLocal(q.Config{Kind: q.MLPKind, Hidden: []int{4}, Seed: 3}, q.TD{})
		s := &SVI{Chunk: perChunkSites, Estimators: Estimators{Default: est}, Optimizer: nn.NewAdam(0.05),
			Params: nn.NewStore(), Particles: 16, Chunks: 8, Workers: workers, Seed: 17}
		var ms []Metrics
		for i := 0; i < 3; i++ {
			m, err := s.Step()
			require.NoError(t, err)
			ms = append(ms, m)
		}
		return checkpointBytes(t, s), fmt.Sprint(ms)
	}
	want, wantMetrics := run(1)
	for rep := 0; rep < 20; rep++ {
		for _, workers := range []int{2, 3, 8} {
			got, metrics := run(workers)
			require.Equal(t, want, got, "try %d, %d workers: checkpoint", rep, workers)
			require.Equal(t, wantMetrics, metrics, "try %d, %d workers: metrics", rep, workers)
		}
	}
}

// TestResumeWithCriticSeenAfterStart trains a model that grows a site at
// step 3 (a curriculum), saving and resuming in between: the critic the
// new site brings is the one the uninterrupted run creates, so the resumed
// run continues bit for bit.
func TestResumeWithCriticSeenAfterStart(t *testing.T) {
	newRun := func(grown *bool) *SVI {
		model := func(ctx *ppl.Ctx) {
			tp := ctx.Tape()
			a := ppl.Param(ctx, "a", 1, 1, nn.Zeros{})
			x := ppl.Sample(ctx, "x", dist.BernoulliLogits(ppl.Expand(ctx, a)))
			cost := ad.Square(ad.Sub(x, tp.Scalar(0.8)))
			if *grown {
				// No new parameter: a checkpoint holds the model's.
				y := ppl.Sample(ctx, "y", dist.BernoulliLogits(ad.Sub(ppl.Expand(ctx, a), x)))
				cost = ad.Add(cost, ad.Scale(y, 0.7))
			}
			ppl.Cost(ctx, "f", cost)
		}
		est := NewQLocal(q.Config{Kind: q.LinearKind, Seed: 5}, q.TD{})
		return &SVI{Objective: vi.Program{Model: model}, Estimators: Estimators{Default: est},
			Optimizer: nn.NewAdam(0.05), Params: nn.NewStore(), Particles: 6, Seed: 23}
	}
	steps := func(s *SVI, n int) string {
		var ms []Metrics
		for i := 0; i < n; i++ {
			m, err := s.Step()
			require.NoError(t, err)
			ms = append(ms, m)
		}
		return fmt.Sprint(ms)
	}

	grown := false
	straight := newRun(&grown)
	steps(straight, 3)
	grown = true
	want := steps(straight, 3)

	grownFirst := false
	first := newRun(&grownFirst)
	steps(first, 3)
	path := filepath.Join(t.TempDir(), "run.ckpt")
	require.NoError(t, first.SaveCheckpoint(path))

	grownResumed := true
	resumed := newRun(&grownResumed)
	require.NoError(t, resumed.LoadCheckpoint(path))
	require.Equal(t, want, steps(resumed, 3), "metrics after resuming")
	require.Equal(t, checkpointBytes(t, straight), checkpointBytes(t, resumed), "checkpoint after resuming")
}
