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
)

// trace.Compose and ppl.Tile are the two helpers this package added to
// trace and ppl; they are tested here.

func TestCompose(t *testing.T) {
	tp := ad.NewTape()
	src, err := trace.Run(func(ctx *ppl.Ctx) {
		a := ppl.Sample(ctx, "a", dist.Normal{Loc: ctx.Tape().Zeros(2, 1), Scale: ctx.Tape().Scalar(1)})
		ppl.Sample(ctx, "b", dist.Normal{Loc: a, Scale: ctx.Tape().Scalar(1)})
	}, ppl.Config{Tape: tp, Rand: rand.New(rand.NewPCG(1, 2))})
	require.NoError(t, err)
	a, b := src.Site("a"), src.Site("b")
	cost := &ppl.Site{Addr: "f", Kind: ppl.KindCost, ID: -1, Cost: ad.Mul(a.Value, b.Value)}
	tr, err := trace.Compose(a, b, cost)
	require.NoError(t, err)
	assert.Same(t, cost.Cost, cost.Value)
	assert.Equal(t, 1.0, cost.Scale)
	assert.Equal(t, []int{a.ID, b.ID}, cost.Parents.IDs())
	assert.Equal(t, []string{"a", "b"}, tr.Graph().Parents("f"))
	assert.Equal(t, []string{"a"}, tr.Graph().Parents("b"))
	assert.Equal(t, 2, tr.Batch())
	assert.Equal(t, b.ID+1, tr.NextID())

	col := func(rows int) *ad.Tensor { return tp.Zeros(rows, 1) }
	cases := []struct {
		name  string
		sites []*ppl.Site
		addr  string
	}{
		{"nil site", []*ppl.Site{a, nil}, ""},
		{"empty address", []*ppl.Site{{Kind: ppl.KindCost, Cost: col(2)}}, ""},
		{"duplicate address", []*ppl.Site{a, {Addr: "a", Kind: ppl.KindCost, Cost: col(2)}}, "a"},
		{"duplicate id", []*ppl.Site{a, {Addr: "c", Kind: ppl.KindSample, ID: a.ID, Value: col(2)}}, "c"},
		{"nil cost", []*ppl.Site{{Addr: "f", Kind: ppl.KindCost}}, "f"},
		{"cost not a column", []*ppl.Site{{Addr: "f", Kind: ppl.KindCost, Cost: tp.Zeros(2, 2)}}, "f"},
		{"batch mismatch", []*ppl.Site{a, {Addr: "f", Kind: ppl.KindCost, Cost: col(3)}}, "f"},
		{"invalid kind", []*ppl.Site{{Addr: "f"}}, "f"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := trace.Compose(tc.sites...)
			var se *ppl.SiteError
			require.True(t, errors.As(err, &se), "%v", err)
			assert.Equal(t, tc.addr, se.Addr)
			assert.Contains(t, err.Error(), "trace: Compose: ")
		})
	}
}

func TestTile(t *testing.T) {
	tp := ad.NewTape()
	data := tp.FromData(2, 3, []float64{1, 2, 3, 4, 5, 6})
	cases := []struct {
		batch int
		want  [][]float64
	}{
		{2, [][]float64{{1, 2, 3}, {4, 5, 6}}},
		{4, [][]float64{{1, 2, 3}, {1, 2, 3}, {4, 5, 6}, {4, 5, 6}}},
		{6, [][]float64{{1, 2, 3}, {1, 2, 3}, {1, 2, 3}, {4, 5, 6}, {4, 5, 6}, {4, 5, 6}}},
	}
	for _, tc := range cases {
		var tiled *ad.Tensor
		_, err := trace.Run(func(ctx *ppl.Ctx) { tiled = ppl.Tile(ctx, data) }, ppl.Config{Tape: tp, Batch: tc.batch})
		require.NoError(t, err)
		require.Equal(t, tc.batch, tiled.Rows())
		for i, row := range tc.want {
			for j, v := range row {
				assert.Equal(t, v, tiled.At(i, j))
			}
		}
		// Each element reaches batch/2 rows, so the gradient of the sum is
		// batch/2 everywhere.
		grad := tp.Gradients(ad.Sum(tiled), data)[0]
		for _, g := range grad.RawMatrix().Data {
			assert.Equal(t, float64(tc.batch/2), g)
		}
	}
	// Provenance passes through.
	var tiled *ad.Tensor
	_, err := trace.Run(func(ctx *ppl.Ctx) {
		z := ppl.Sample(ctx, "z", dist.Normal{Loc: ctx.Tape().Zeros(1, 1), Scale: ctx.Tape().Scalar(1)})
		tiled = ppl.Tile(ctx, z)
	}, ppl.Config{Tape: tp, Rand: rand.New(rand.NewPCG(1, 2)), Batch: 1})
	require.NoError(t, err)
	assert.Equal(t, []int{0}, tiled.Provenance().IDs())

	for _, batch := range []int{0, 3} {
		_, err := trace.Run(func(ctx *ppl.Ctx) { ppl.Tile(ctx, data) }, ppl.Config{Tape: tp, Batch: batch})
		var se *ppl.SiteError
		require.True(t, errors.As(err, &se), "batch %d: %v", batch, err)
		assert.Contains(t, err.Error(), "Tile")
	}
}
