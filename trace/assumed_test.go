package trace_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/backpropq/backpropq/ad"
	"github.com/backpropq/backpropq/ppl"
	"github.com/backpropq/backpropq/trace"
)

func TestAssumedParentsAreMarked(t *testing.T) {
	model := func(ctx *ppl.Ctx) {
		x := rv(ctx, "x")
		y := rv(ctx, "y")
		cost(ctx, "seen", x)
		// Read into Go and back: the provenance is lost.
		lost := ctx.Tape().FromData(batch, 1, ad.Add(x, y).Data())
		ppl.Cost(ctx, "lost", lost)
	}
	tr, err := trace.Run(model, trace.Seed(seeded()))
	require.NoError(t, err)
	g := tr.Graph()
	assert.Equal(t, []string{"x", "y"}, g.Parents("lost"))
	assert.True(t, tr.Site("lost").AssumedParents)
	assert.False(t, tr.Site("seen").AssumedParents)

	assert.Contains(t, tr.Summary(), "x,y (assumed)")
	assert.NotContains(t, tr.Summary(), "x (assumed)")
	dot := g.DOT()
	assert.Contains(t, dot, `label="lost (assumed)"`)
	assert.Contains(t, dot, "n0 -> n3 [style=dashed];")
	assert.Contains(t, dot, "n0 -> n2;")
}
