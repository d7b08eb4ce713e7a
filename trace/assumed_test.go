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

func TestDOTDrawsPlates(t *testing.T) {
	model := func(ctx *ppl.Ctx) {
		tp := ctx.Tape()
		mu := rv(ctx, "mu")
		groups := ppl.Plate(ctx, "groups", 3)
		h := ppl.Sample(groups, "h", unitNormal{Loc: ppl.Broadcast(groups, mu)})
		members := ppl.Plate(groups, "members", 4, ppl.Subsample(2))
		x := ppl.Sample(members, "x", unitNormal{Loc: ppl.Broadcast(members, h)})
		ppl.Cost(members, "f", ad.Square(x))
		ppl.Cost(ctx, "g", ad.Add(mu, tp.Zeros(batch, 1)))
	}
	tr, err := trace.Run(model, trace.Seed(seeded()))
	require.NoError(t, err)
	want := `digraph scg {
	n0 [label="mu", shape=circle];
	n4 [label="g", shape=square, peripheries=2];
	subgraph cluster_0 {
		label="groups[3]";
		n1 [label="h", shape=circle];
		subgraph cluster_1 {
			label="members[2/4]";
			n2 [label="x", shape=circle];
			n3 [label="f", shape=square, peripheries=2];
		}
	}
	n0 -> n1;
	n0 -> n4;
	n1 -> n2;
	n2 -> n3;
}
`
	assert.Equal(t, want, tr.Graph().DOT())
}
