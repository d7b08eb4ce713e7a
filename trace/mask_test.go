package trace_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/backpropq/backpropq/ad"
	"github.com/backpropq/backpropq/ppl"
	"github.com/backpropq/backpropq/ppl/dist"
	"github.com/backpropq/backpropq/trace"
)

// nestedModel has a global mu, a local z and observation x in a plate
// "data" of 3, and w in a plate "inner" of 2 nested in it.
func nestedModel(ctx *ppl.Ctx) {
	tp := ctx.Tape()
	p := ctx.Batch()
	mu := ppl.Sample(ctx, "mu", dist.Normal{Loc: tp.Zeros(p, 1), Scale: tp.Full(p, 1, 1)})
	data := ppl.Plate(ctx, "data", 3)
	n := data.Rows()
	z := ppl.Sample(data, "z", dist.Normal{Loc: ppl.Broadcast(data, mu), Scale: tp.Full(n, 1, 1)})
	ppl.Observe(data, "x", dist.Normal{Loc: z, Scale: tp.Full(n, 1, 1)}, tp.Zeros(n, 1))
	inner := ppl.Plate(data, "inner", 2)
	ppl.Sample(inner, "w", dist.Normal{Loc: ppl.Broadcast(inner, z), Scale: tp.Full(inner.Rows(), 1, 1)})
}

func maskOf(t *testing.T, tr *trace.Trace, addr string) []float64 {
	t.Helper()
	m := tr.Site(addr).Mask
	if m == nil {
		return nil
	}
	return m.Data()
}

// A mask of the run's batch masks whole particles, inside plates too.
func TestMaskParticlesAcrossPlates(t *testing.T) {
	tp := ad.NewTape()
	tr, err := trace.Run(nestedModel, ppl.Config{Tape: tp, Rand: seeded(), Batch: 2}, trace.Mask(tp.FromData(2, 1, []float64{1, 0})))
	require.NoError(t, err)
	assert.Equal(t, []float64{1, 0}, maskOf(t, tr, "mu"))
	assert.Equal(t, []float64{1, 1, 1, 0, 0, 0}, maskOf(t, tr, "z"))
	assert.Equal(t, []float64{1, 1, 1, 0, 0, 0}, maskOf(t, tr, "x"))
	assert.Equal(t, []float64{1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0}, maskOf(t, tr, "w"))
}

// A mask of a plate's members masks the sites inside the plate, and
// only those, with MaskPlate, for every particle and over the subsample
// the run holds; Mask refuses it for a global site, naming the site and
// pointing to MaskPlate.
func TestMaskPlate(t *testing.T) {
	tp := ad.NewTape()
	m := ad.NewTape().FromData(3, 1, []float64{1, 0, 1}) // one row per member, on its own tape
	cfg := ppl.Config{Tape: tp, Rand: seeded(), Batch: 2}
	tr, err := trace.Run(nestedModel, cfg, trace.MaskPlate("data", m))
	require.NoError(t, err)
	assert.Nil(t, maskOf(t, tr, "mu"))
	assert.Equal(t, []float64{1, 0, 1, 1, 0, 1}, maskOf(t, tr, "z"))
	assert.Equal(t, []float64{1, 0, 1, 1, 0, 1}, maskOf(t, tr, "x"))
	assert.Equal(t, []float64{1, 1, 0, 0, 1, 1, 1, 1, 0, 0, 1, 1}, maskOf(t, tr, "w"))
	require.NoError(t, trace.CheckAddrs(tr, trace.MaskPlate("data", m)))
	assert.ErrorContains(t, trace.CheckAddrs(tr, trace.MaskPlate("dta", m)), `site "dta"`)

	// A subsample takes its members' rows: members 2 and 1.
	sub := func(ctx *ppl.Ctx) {
		tp := ctx.Tape()
		data := ppl.Plate(ctx, "data", 3, ppl.SubsampleIndices([]int{2, 1}))
		n := data.Rows()
		ppl.Observe(data, "x", dist.Normal{Loc: tp.Zeros(n, 1), Scale: tp.Full(n, 1, 1)}, tp.Zeros(n, 1))
	}
	tr, err = trace.Run(sub, cfg, trace.MaskPlate("data", m))
	require.NoError(t, err)
	assert.Equal(t, []float64{1, 0, 1, 0}, maskOf(t, tr, "x"))

	six := tp.FromData(6, 1, []float64{1, 0, 1, 0, 1, 1})
	_, err = trace.Run(nestedModel, cfg, trace.Mask(six))
	require.ErrorContains(t, err, `site "mu": trace: Mask: mask is [6x1], the site has 2 rows inside plates []`)
	require.ErrorContains(t, err, "trace.MaskPlate")
	_, err = trace.Run(nestedModel, cfg, trace.MaskPlate("data", six))
	require.ErrorContains(t, err, `site "z": trace: MaskPlate: mask is [6x1], plate "data" of this site (inside plates [data[3]]) needs one row per member, [3x1]`)
}
