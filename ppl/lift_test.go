package ppl_test

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/backpropq/backpropq/ad"
	"github.com/backpropq/backpropq/ppl"
	"github.com/backpropq/backpropq/ppl/dist"
)

// countOnes is a cost computed in plain Go: the number of ones in each
// row of b, read with At and rebuilt with FromData, so it has lost b's
// provenance.
func countOnes(b *ad.Tensor) *ad.Tensor {
	out := make([]float64, b.Rows())
	for r := range out {
		for c := 0; c < b.Cols(); c++ {
			out[r] += b.At(r, c)
		}
	}
	return b.Tape().FromData(b.Rows(), 1, out)
}

func TestLiftKeepsProvenanceWithoutGradient(t *testing.T) {
	tp := ad.NewTape()
	a := tp.WithProvenance(tp.Full(2, 3, 1), ad.ProvenanceOf(1))
	b := tp.WithProvenance(tp.Full(2, 1, 2), ad.ProvenanceOf(4))
	out := ppl.Lift(func(in ...*ad.Tensor) *ad.Tensor {
		require.Len(t, in, 2)
		return countOnes(in[0])
	}, a, b)
	assert.True(t, out.Provenance().Equal(ad.ProvenanceOf(1, 4)), "provenance %v", out.Provenance())
	assert.False(t, out.RequiresGrad())
	assert.Equal(t, []float64{3, 3}, out.Data())
	assert.Panics(t, func() { ppl.Lift(countOnes2) })
	assert.Panics(t, func() { ppl.Lift(func(...*ad.Tensor) *ad.Tensor { return nil }, a) })
	assert.Panics(t, func() {
		ppl.Lift(func(...*ad.Tensor) *ad.Tensor { return ad.NewTape().Scalar(1) }, a)
	})
}

func countOnes2(in ...*ad.Tensor) *ad.Tensor { return countOnes(in[0]) }

// goCostModel samples two bit vectors and records costs computed in Go:
// one lifted from b only, one that lost its provenance, and one observed
// under a distribution whose parameters lost theirs.
func goCostModel(ctx *ppl.Ctx) {
	tp := ctx.Tape()
	a := ppl.Sample(ctx, "a", dist.BernoulliLogits(tp.Zeros(3, 2)))
	b := ppl.Sample(ctx, "b", dist.BernoulliLogits(tp.Zeros(3, 2)))
	ppl.Cost(ctx, "lifted", ppl.Lift(countOnes2, b))
	ppl.Cost(ctx, "plain", countOnes(ad.Add(a, b)))
	ppl.Observe(ctx, "x", dist.Normal{Loc: countOnes(a), Scale: tp.Full(3, 1, 1)}, tp.Zeros(3, 1))
}

func TestCostWithoutProvenanceIsAssumedToDependOnEarlierSamples(t *testing.T) {
	var sites []*ppl.Site
	require.NoError(t, ppl.Run(goCostModel, ppl.Config{Rand: seeded()}, recorder(&sites)))
	require.Len(t, sites, 5)
	a, b, lifted, plain, x := sites[0], sites[1], sites[2], sites[3], sites[4]
	assert.True(t, lifted.Parents.Equal(ad.ProvenanceOf(b.ID)))
	assert.False(t, lifted.AssumedParents)
	for _, s := range []*ppl.Site{plain, x} {
		assert.True(t, s.Parents.Equal(ad.ProvenanceOf(a.ID, b.ID)), "%s: parents %v", s.Addr, s.Parents)
		assert.True(t, s.AssumedParents, s.Addr)
	}

	// Before any sample site, no provenance is simply no dependence.
	var first []*ppl.Site
	require.NoError(t, ppl.Run(func(ctx *ppl.Ctx) {
		ppl.Cost(ctx, "c", ctx.Tape().Zeros(3, 1))
		ppl.Sample(ctx, "a", dist.BernoulliLogits(ctx.Tape().Zeros(3, 2)))
	}, ppl.Config{Rand: seeded()}, recorder(&first)))
	assert.True(t, first[0].Parents.Empty())
	assert.False(t, first[0].AssumedParents)
}

func TestStrictProvenanceNamesTheSite(t *testing.T) {
	err := ppl.Run(goCostModel, ppl.Config{Rand: seeded(), StrictProvenance: true})
	var se *ppl.SiteError
	require.True(t, errors.As(err, &se), "error %v", err)
	assert.Equal(t, "plain", se.Addr)
	assert.ErrorContains(t, err, "no provenance")
	assert.ErrorContains(t, err, "ppl.Lift")
}
