package vi_test

import (
	"errors"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/backpropq/backpropq/ad"
	"github.com/backpropq/backpropq/ppl"
	"github.com/backpropq/backpropq/ppl/dist"
	"github.com/backpropq/backpropq/trace"
	"github.com/backpropq/backpropq/vi"
)

// TestELBOConditionsTheModelByAddress feeds the data of a generative model
// through ModelHandlers and checks that the objective is the one of the
// model that observes the data itself.
func TestELBOConditionsTheModelByAddress(t *testing.T) {
	normal := func(tp *ad.Tape, loc *ad.Tensor, scale float64) dist.Normal {
		return dist.Normal{Loc: loc, Scale: tp.Full(loc.Rows(), 1, scale)}
	}
	generative := func(ctx *ppl.Ctx) {
		tp := ctx.Tape()
		mu := ppl.Sample(ctx, "mu", normal(tp, tp.Zeros(ctx.Batch(), 1), 1))
		ppl.Sample(ctx, "x", normal(tp, mu, 0.5))
	}
	observing := func(ctx *ppl.Ctx) {
		tp := ctx.Tape()
		mu := ppl.Sample(ctx, "mu", normal(tp, tp.Zeros(ctx.Batch(), 1), 1))
		ppl.Observe(ctx, "x", normal(tp, mu, 0.5), tp.Full(ctx.Batch(), 1, 1.2))
	}
	guide := func(ctx *ppl.Ctx) {
		tp := ctx.Tape()
		ppl.Sample(ctx, "mu", normal(tp, tp.Full(ctx.Batch(), 1, 0.7), 0.4))
	}
	run := func(obj vi.Objective) (*trace.Trace, error) {
		return obj.Run(ppl.Config{Rand: rand.New(rand.NewPCG(1, 2)), Batch: 3})
	}
	tp := ad.NewTape()
	data := map[string]*ad.Tensor{"x": tp.Full(3, 1, 1.2)}
	want, err := run(vi.ELBO{Model: observing, Guide: guide})
	require.NoError(t, err)
	got, err := run(vi.ELBO{Model: generative, Guide: guide, ModelHandlers: []ppl.Handler{trace.Condition(data)}})
	require.NoError(t, err)
	assert.InDelta(t, vi.Loss(want).Item(), vi.Loss(got).Item(), 1e-12)
	assert.Equal(t, ppl.KindObserve, got.Site("x").Kind)

	// A misspelled address is an error naming it; trace.Optional accepts it.
	typo := map[string]*ad.Tensor{"x": data["x"], "y": data["x"]}
	for _, obj := range []vi.Objective{
		vi.ELBO{Model: generative, Guide: guide, ModelHandlers: []ppl.Handler{trace.Condition(typo)}},
		vi.ELBO{Model: observing, Guide: guide, GuideHandlers: []ppl.Handler{trace.Do(map[string]*ad.Tensor{"nu": data["x"]})}},
		vi.IWAE{Model: generative, Guide: guide, K: 2, ModelHandlers: []ppl.Handler{trace.Condition(map[string]*ad.Tensor{"x": tp.Full(6, 1, 1.2), "y": data["x"]})}},
		vi.Program{Model: generative, Handlers: []ppl.Handler{trace.Condition(typo)}},
	} {
		_, err := run(obj)
		var se *ppl.SiteError
		require.True(t, errors.As(err, &se), "error %v", err)
		assert.Contains(t, []string{"y", "nu"}, se.Addr)
		assert.ErrorContains(t, err, "trace.Optional")
	}
	_, err = run(vi.ELBO{Model: generative, Guide: guide, ModelHandlers: []ppl.Handler{trace.Optional(trace.Condition(typo))}})
	require.NoError(t, err)
}
