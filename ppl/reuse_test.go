package ppl_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/backpropq/backpropq/ad"
	"github.com/backpropq/backpropq/nn"
	"github.com/backpropq/backpropq/ppl"
	"github.com/backpropq/backpropq/ppl/dist"
)

// TestSiteRecordsReusedAcrossResets runs models on one tape with a reset
// before each run, as a training loop does: each run's site holds the
// distribution the model passed, also when the site record it reuses held
// another one (other parameters, another type).
func TestSiteRecordsReusedAcrossResets(t *testing.T) {
	tp := ad.NewTape()
	var got dist.Distribution
	record := ppl.HandlerFunc(func(s *ppl.Site, next func(*ppl.Site)) {
		next(s)
		got = s.Dist
	})
	cfg := ppl.Config{Tape: tp, Rand: seeded(), Params: nn.NewStore()}
	run := func(d func() dist.Distribution) dist.Distribution {
		tp.Reset()
		var want dist.Distribution
		require.NoError(t, ppl.Run(func(ctx *ppl.Ctx) {
			want = d()
			ppl.Sample(ctx, "z", want)
		}, cfg, record))
		return want
	}
	normal := func(scale float64) func() dist.Distribution {
		return func() dist.Distribution { return dist.Normal{Loc: tp.Zeros(2, 1), Scale: tp.Scalar(scale)} }
	}
	want := run(normal(1))
	require.Equal(t, want, got)
	// The same nodes of the tape, so the same values.
	require.Equal(t, want, run(normal(1)))
	require.Equal(t, want, got)

	// Another scale tensor: the new distribution.
	want = run(func() dist.Distribution {
		tp.Scalar(0) // the scale is another node
		return dist.Normal{Loc: tp.Zeros(2, 1), Scale: tp.Scalar(2)}
	})
	require.Equal(t, want, got)
	require.Same(t, want.(dist.Normal).Scale, got.(dist.Normal).Scale)

	// Another type.
	want = run(func() dist.Distribution { return dist.BernoulliLogits(tp.Zeros(2, 1)) })
	require.IsType(t, dist.Bernoulli{}, got)
	require.Equal(t, want, got)
}
