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

// plateData are five observations of the plate models.
var plateData = []float64{0.3, -1.2, 2.0, 0.7, 1.1}

// plateModel has a global mean mu and a local z per data point, inside a
// data plate subsampled to sub (all when 0).
func plateModel(sub int) ppl.Model {
	return func(ctx *ppl.Ctx) {
		tp := ctx.Tape()
		p := ctx.Batch()
		mu := ppl.Sample(ctx, "mu", dist.Normal{Loc: tp.Zeros(p, 1), Scale: tp.Full(p, 1, 2)})
		data := ppl.Plate(ctx, "data", len(plateData), subsample(sub)...)
		n := data.Rows()
		z := ppl.Sample(data, "z", dist.Normal{Loc: ppl.Broadcast(data, mu), Scale: tp.Full(n, 1, 1)})
		x := ppl.Data(data, tp.FromData(len(plateData), 1, plateData))
		ppl.Observe(data, "x", dist.Normal{Loc: z, Scale: tp.Full(n, 1, 0.5)}, x)
	}
}

func subsample(n int) []ppl.PlateOption {
	if n == 0 {
		return nil
	}
	return []ppl.PlateOption{ppl.Subsample(n)}
}

// plateGuide is a fixed mean-field guide of plateModel.
func plateGuide(sub int) ppl.Model {
	return func(ctx *ppl.Ctx) {
		tp := ctx.Tape()
		p := ctx.Batch()
		ppl.Sample(ctx, "mu", dist.Normal{Loc: tp.Full(p, 1, 0.4), Scale: tp.Full(p, 1, 0.3)})
		data := ppl.Plate(ctx, "data", len(plateData), subsample(sub)...)
		loc := ppl.Data(data, tp.FromData(len(plateData), 1, plateData))
		ppl.Sample(data, "z", dist.Normal{Loc: loc, Scale: tp.Full(data.Rows(), 1, 0.4)})
	}
}

func TestELBOPlateScalesOnlyTheSubsampledSites(t *testing.T) {
	obj := vi.ELBO{Model: plateModel(2), Guide: plateGuide(2)}
	tr, err := obj.Run(ppl.Config{Rand: rand.New(rand.NewPCG(1, 2)), Batch: 3})
	require.NoError(t, err)
	assert.Equal(t, 3, tr.Batch())
	for addr, want := range map[string]float64{"kl(mu)": 1, "kl(z)": 2.5, "x": 2.5} {
		s := tr.Site(addr)
		require.NotNil(t, s, addr)
		assert.Equal(t, want, s.Scale, addr)
	}
	assert.Equal(t, [2]int{6, 1}, [2]int{tr.Site("kl(z)").Cost.Rows(), tr.Site("kl(z)").Cost.Cols()})
	assert.Equal(t, []string{"data"}, tr.Site("kl(z)").Plates.Names())
	// The model holds the guide's subsample: its data rows are the
	// guide's z locations.
	z := tr.Site("z")
	require.NotNil(t, z)
	plate := tr.Site("data")
	require.NotNil(t, plate)
	idx := plate.Frame().Indices
	require.Len(t, idx, 2)
	// The loss sums each particle's rows: every cost moved to the particle.
	rc := vi.RowCost(tr)
	assert.Equal(t, [2]int{3, 1}, [2]int{rc.Rows(), rc.Cols()})
	want := 0.0
	for _, s := range tr.Sites() {
		if s.IsCost() {
			want += ad.Sum(s.ScaledCost()).Item()
		}
	}
	assert.InDelta(t, want, vi.Loss(tr).Item(), 1e-9)
	assert.Contains(t, tr.Summary(), "in data")
	assert.Contains(t, tr.Summary(), "data[2/5]")
}

func TestIWAEUnderPlates(t *testing.T) {
	obj := vi.IWAE{Model: plateModel(0), Guide: plateGuide(0), K: 4}
	tr, err := obj.Run(ppl.Config{Rand: rand.New(rand.NewPCG(1, 2))})
	require.NoError(t, err)
	logw, err := vi.LogWeights(tr)
	require.NoError(t, err)
	assert.Equal(t, [2]int{1, 4}, [2]int{logw.Rows(), logw.Cols()})
	// Particle k's weight sums its members' rows: it is minus the ELBO's
	// row cost of particle k, on the same draws.
	etr, err := vi.ELBO{Model: plateModel(0), Guide: plateGuide(0)}.Run(ppl.Config{Rand: rand.New(rand.NewPCG(1, 2)), Batch: 4})
	require.NoError(t, err)
	rc := vi.RowCost(etr)
	for k := 0; k < 4; k++ {
		assert.InDelta(t, -rc.At(k, 0), logw.At(0, k), 1e-9, "particle %d", k)
	}
	sig, err := vi.VIMCOSignal(tr)
	require.NoError(t, err)
	assert.Equal(t, 4, sig.Rows())
}

func TestELBOPlateMismatches(t *testing.T) {
	local := func(outer, inner string) ppl.Model {
		return func(ctx *ppl.Ctx) {
			tp := ctx.Tape()
			a := ppl.Plate(ctx, outer, 2)
			b := ppl.Plate(a, inner, 2)
			ppl.Sample(b, "z", dist.Normal{Loc: tp.Zeros(b.Rows(), 1), Scale: tp.Full(b.Rows(), 1, 1)})
		}
	}
	sized := func(size int) ppl.Model {
		return func(ctx *ppl.Ctx) {
			tp := ctx.Tape()
			a := ppl.Plate(ctx, "a", size)
			ppl.Sample(a, "z", dist.Normal{Loc: tp.Zeros(a.Rows(), 1), Scale: tp.Full(a.Rows(), 1, 1)})
		}
	}
	wide := func(cols int) ppl.Model {
		return func(ctx *ppl.Ctx) {
			tp := ctx.Tape()
			ppl.Sample(ctx, "z", dist.Normal{Loc: tp.Zeros(2, cols), Scale: tp.Full(2, cols, 1)})
		}
	}
	cases := []struct {
		name         string
		model, guide ppl.Model
		addr         string
		want         []string
	}{
		{"plates nested in another order", local("a", "b"), local("b", "a"), "z", []string{"[b[2] a[2]]", "[a[2] b[2]]"}},
		{"plate at another size", sized(3), sized(2), "a", []string{"size 3", "size 2"}},
		{"guide value wider than the model's", wide(1), wide(3), "z", []string{"[2x3]", "[2x1]"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := vi.ELBO{Model: tc.model, Guide: tc.guide}.Run(ppl.Config{Rand: rand.New(rand.NewPCG(1, 2)), Batch: 2})
			var se *ppl.SiteError
			require.True(t, errors.As(err, &se), "error %v", err)
			assert.Equal(t, tc.addr, se.Addr)
			for _, w := range tc.want {
				assert.ErrorContains(t, err, w)
			}
		})
	}
}

// TestSubsampleScaleIsUnbiased averages the ELBO's loss over every
// subsample of 2 of the 5 points, each weighed by 5/2 inside the plate,
// and finds the full data's loss: the local terms are scaled, the global
// latent's is not.
func TestSubsampleScaleIsUnbiased(t *testing.T) {
	model := func(indices []int) ppl.Model {
		return func(ctx *ppl.Ctx) {
			tp := ctx.Tape()
			mu := ppl.Sample(ctx, "mu", dist.Normal{Loc: tp.Zeros(1, 1), Scale: tp.Full(1, 1, 2)})
			var opts []ppl.PlateOption
			if indices != nil {
				opts = append(opts, ppl.SubsampleIndices(indices))
			}
			data := ppl.Plate(ctx, "data", len(plateData), opts...)
			x := ppl.Data(data, tp.FromData(len(plateData), 1, plateData))
			ppl.Observe(data, "x", dist.Normal{Loc: ppl.Broadcast(data, mu), Scale: tp.Full(data.Rows(), 1, 0.5)}, x)
		}
	}
	guide := func(ctx *ppl.Ctx) {
		tp := ctx.Tape()
		ppl.Sample(ctx, "mu", dist.Normal{Loc: tp.Full(1, 1, 0.4), Scale: tp.Full(1, 1, 0.3)})
	}
	loss := func(indices []int) float64 {
		tp := ad.NewTape()
		values := map[string]*ad.Tensor{"mu": tp.Scalar(0.9)}
		tr, err := vi.ELBO{Model: model(indices), Guide: guide}.Run(ppl.Config{Tape: tp, Batch: 1}, trace.ReplayValues(values))
		require.NoError(t, err)
		return vi.Loss(tr).Item()
	}
	sum, count := 0.0, 0
	for i := range plateData {
		for j := i + 1; j < len(plateData); j++ {
			sum += loss([]int{i, j})
			count++
		}
	}
	assert.InDelta(t, loss(nil), sum/float64(count), 1e-12)
}

// Missing data: trace.MaskPlate in ModelHandlers leaves the masked points'
// observations out of the ELBO and keeps the global latent's KL, so the
// loss is that of the model on the other points, draw for draw. One mask
// serves every run, whatever its tape.
func TestELBOMaskPlateDropsMissingPoints(t *testing.T) {
	model := func(xs []float64) ppl.Model {
		return func(ctx *ppl.Ctx) {
			tp := ctx.Tape()
			p := ctx.Batch()
			mu := ppl.Sample(ctx, "mu", dist.Normal{Loc: tp.Zeros(p, 1), Scale: tp.Full(p, 1, 2)})
			data := ppl.Plate(ctx, "data", len(xs))
			ppl.Observe(data, "x", dist.Normal{Loc: ppl.Broadcast(data, mu), Scale: tp.Full(data.Rows(), 1, 0.5)}, ppl.Data(data, tp.FromData(len(xs), 1, xs)))
		}
	}
	guide := func(ctx *ppl.Ctx) {
		tp := ctx.Tape()
		ppl.Sample(ctx, "mu", dist.Normal{Loc: tp.Full(ctx.Batch(), 1, 0.4), Scale: tp.Full(ctx.Batch(), 1, 0.3)})
	}
	const p = 3
	keep := []float64{1, 0, 1, 1, 0}
	var kept []float64
	for i, k := range keep {
		if k == 1 {
			kept = append(kept, plateData[i])
		}
	}
	// The mask is made once, on its own tape, as for every step of SVI.
	masked := vi.ELBO{Model: model(plateData), Guide: guide,
		ModelHandlers: []ppl.Handler{trace.MaskPlate("data", ad.NewTape().FromData(len(keep), 1, keep))}}
	got, err := masked.Run(ppl.Config{Rand: rand.New(rand.NewPCG(1, 2)), Batch: p})
	require.NoError(t, err)
	want, err := vi.ELBO{Model: model(kept), Guide: guide}.Run(ppl.Config{Rand: rand.New(rand.NewPCG(1, 2)), Batch: p})
	require.NoError(t, err)
	assert.Nil(t, got.Site(vi.KLAddr("mu")).Mask)
	assert.InDelta(t, vi.Loss(want).Item(), vi.Loss(got).Item(), 1e-9)
}
