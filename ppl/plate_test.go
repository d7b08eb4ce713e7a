package ppl_test

import (
	"errors"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gonum.org/v1/gonum/mat"

	"github.com/backpropq/backpropq/ad"
	"github.com/backpropq/backpropq/ppl"
	"github.com/backpropq/backpropq/ppl/dist"
)

// requireSiteError checks that err is a *ppl.SiteError at addr whose
// message holds each of want.
func requireSiteError(t *testing.T, err error, addr string, want ...string) {
	t.Helper()
	var se *ppl.SiteError
	require.True(t, errors.As(err, &se), "error %v", err)
	assert.Equal(t, addr, se.Addr, "error %v", err)
	for _, w := range want {
		assert.ErrorContains(t, err, w)
	}
}

func TestPlateRowsScaleAndStack(t *testing.T) {
	var sites []*ppl.Site
	var data []float64
	model := func(ctx *ppl.Ctx) {
		tp := ctx.Tape()
		mu := ppl.Sample(ctx, "mu", stdNormal(tp, 2, 1))
		groups := ppl.Plate(ctx, "groups", 3)
		members := ppl.Plate(groups, "members", 4, ppl.Subsample(2))
		assert.Equal(t, 2*3*2, members.Rows())
		h := ppl.Sample(groups, "h", dist.Normal{Loc: ppl.Broadcast(groups, mu), Scale: tp.Full(6, 1, 1)})
		x := ppl.Data(members, tp.FromData(12, 1, []float64{0, 1, 2, 3, 10, 11, 12, 13, 20, 21, 22, 23}))
		data = x.Data()
		ppl.Observe(members, "x", dist.Normal{Loc: ppl.Broadcast(members, h), Scale: tp.Full(12, 1, 1)}, x)
		ppl.Cost(ctx, "total", ppl.SumOut(groups, ppl.SumOut(members, ad.Square(x))))
		// Entering a plate again gives the same plate.
		again := ppl.Plate(groups, "members", 4)
		assert.Equal(t, ppl.Indices(members), ppl.Indices(again))
	}
	require.NoError(t, ppl.Run(model, ppl.Config{Rand: seeded()}, recorder(&sites)))
	require.Len(t, sites, 6)
	mu, groups, members, h, x, total := sites[0], sites[1], sites[2], sites[3], sites[4], sites[5]
	assert.Equal(t, ppl.KindPlate, groups.Kind)
	assert.Equal(t, ppl.KindPlate, members.Kind)
	assert.Empty(t, mu.Plates)
	assert.Equal(t, []string{"groups"}, h.Plates.Names())
	assert.Equal(t, []string{"groups", "members"}, x.Plates.Names())
	assert.Equal(t, [2]int{6, 1}, dims(h.Value))
	assert.Equal(t, [2]int{12, 1}, dims(x.Value))
	assert.Equal(t, [2]int{2, 1}, dims(total.Value))
	assert.Equal(t, 1.0, h.Scale)
	assert.Equal(t, 2.0, x.Scale)
	assert.Equal(t, 1.0, total.Scale)
	idx := members.Frame().Indices
	require.Len(t, idx, 2)
	assert.NotEqual(t, idx[0], idx[1])
	// Row (particle p, group g, member i) holds datum 10 g + idx[i].
	for p := 0; p < 2; p++ {
		for g := 0; g < 3; g++ {
			for i := 0; i < 2; i++ {
				assert.Equal(t, float64(10*g+idx[i]), data[p*6+g*2+i])
			}
		}
	}
	assert.Equal(t, "groups[3]", groups.Frame().String())
	assert.Equal(t, "[groups[3] members[2/4]]", x.Plates.String())
	// The parents go through the moves.
	assert.True(t, h.Parents.Equal(ad.ProvenanceOf(mu.ID)))
	assert.True(t, x.Parents.Equal(ad.ProvenanceOf(h.ID)))

	// The same seed draws the same subsample.
	var again []*ppl.Site
	require.NoError(t, ppl.Run(model, ppl.Config{Rand: seeded()}, recorder(&again)))
	assert.Equal(t, idx, again[2].Frame().Indices)
}

func TestPlateMovesKeepGradients(t *testing.T) {
	tp := ad.NewTape()
	var grads [3][]float64
	model := func(ctx *ppl.Ctx) {
		plate := ppl.Plate(ctx, "data", 3, ppl.SubsampleIndices([]int{2, 0}))
		global := tp.WithProvenance(tp.FromData(2, 2, []float64{1, 2, 3, 4}), ad.ProvenanceOf(9))
		wide := ppl.Broadcast(plate, global)
		assert.Equal(t, []float64{1, 2, 1, 2, 3, 4, 3, 4}, wide.Data())
		assert.True(t, wide.Provenance().Equal(ad.ProvenanceOf(9)))
		back := ppl.SumOut(plate, wide)
		assert.Equal(t, []float64{2, 4, 6, 8}, back.Data())
		rows := ppl.Data(plate, tp.FromData(3, 1, []float64{10, 11, 12}))
		assert.Equal(t, []float64{12, 10, 12, 10}, rows.Data())
		assert.Equal(t, []int{2, 0}, ppl.Indices(plate))
		assert.Equal(t, []int{0, 1, 2}, ppl.Indices(ppl.Plate(ctx, "all", 3)))
	}
	require.NoError(t, ppl.Run(model, ppl.Config{Tape: tp, Batch: 2}))

	// Gradients: d/dx of sum(w * move(x)) is move's adjoint applied to w.
	// x, with 3 rows for 3 particles and plates of 3 members, is a value
	// per particle for Broadcast by its provenance.
	perParticle := func(x *ad.Tensor) *ad.Tensor { return x.Tape().WithProvenance(x, ad.ProvenanceOf(9)) }
	for k, move := range []func(ctx *ppl.Ctx, x *ad.Tensor) *ad.Tensor{
		func(ctx *ppl.Ctx, x *ad.Tensor) *ad.Tensor {
			return ppl.Broadcast(ppl.Plate(ctx, "d", 3), perParticle(x))
		},
		func(ctx *ppl.Ctx, x *ad.Tensor) *ad.Tensor {
			return ppl.SumOut(ppl.Plate(ctx, "d", 3), ppl.Broadcast(ppl.Plate(ctx, "d", 3), perParticle(x)))
		},
		func(ctx *ppl.Ctx, x *ad.Tensor) *ad.Tensor {
			return ppl.Data(ppl.Plate(ctx, "d", 3, ppl.SubsampleIndices([]int{1, 2})), x)
		},
	} {
		require.NoError(t, ppl.Run(func(ctx *ppl.Ctx) {
			tp := ctx.Tape()
			x := tp.Var(ad.NewVar(matOf(3, 2, 1, 2, 3, 4, 5, 6)))
			out := move(ctx, x)
			w := make([]float64, out.Rows()*out.Cols())
			for i := range w {
				w[i] = float64(i + 1)
			}
			loss := ad.Sum(ad.Mul(out, tp.FromData(out.Rows(), out.Cols(), w)))
			grads[k] = tp.Gradients(loss, x)[0].RawMatrix().Data
		}, ppl.Config{Batch: 3}))
	}
	// Broadcast: row r of x feeds rows 3r..3r+2 of the result.
	assert.Equal(t, []float64{1 + 3 + 5, 2 + 4 + 6, 7 + 9 + 11, 8 + 10 + 12, 13 + 15 + 17, 14 + 16 + 18}, grads[0])
	// Broadcast then SumOut is 3x the identity.
	assert.Equal(t, []float64{3, 6, 9, 12, 15, 18}, grads[1])
	// Data with members 1, 2 for 3 particles: x row 1 feeds result rows
	// 0, 2, 4 and x row 2 rows 1, 3, 5.
	assert.Equal(t, []float64{0, 0, 1 + 5 + 9, 2 + 6 + 10, 3 + 7 + 11, 4 + 8 + 12}, grads[2])
}

func TestMove(t *testing.T) {
	tp := ad.NewTape()
	a := &ppl.Frame{Name: "a", Size: 2}
	b := &ppl.Frame{Name: "b", Size: 3, Indices: []int{0, 2}}
	c := &ppl.Frame{Name: "c", Size: 2}
	// One particle; x inside [a b] has 2*2 rows.
	x := tp.FromData(4, 1, []float64{1, 2, 3, 4})
	assert.Equal(t, []float64{10}, ppl.Move(x, ppl.Stack{a, b}, nil).Data())
	assert.Equal(t, []float64{3, 7}, ppl.Move(x, ppl.Stack{a, b}, ppl.Stack{a}).Data())
	// To a sibling plate: sum out b, broadcast over c.
	assert.Equal(t, []float64{3, 3, 7, 7}, ppl.Move(x, ppl.Stack{a, b}, ppl.Stack{a, c}).Data())
	assert.Equal(t, x.Data(), ppl.Move(x, ppl.Stack{a, b}, ppl.Stack{a, b}).Data())
	assert.Panics(t, func() { ppl.Move(tp.Zeros(3, 1), ppl.Stack{a, b}, nil) })
}

func TestPlateErrors(t *testing.T) {
	normal := func(tp *ad.Tape, loc *ad.Tensor) dist.Normal {
		return dist.Normal{Loc: loc, Scale: tp.Full(loc.Rows(), 1, 1)}
	}
	cases := []struct {
		name  string
		model ppl.Model
		addr  string
		want  []string
	}{
		{"global value inside a plate", func(ctx *ppl.Ctx) {
			tp := ctx.Tape()
			mu := ppl.Sample(ctx, "mu", normal(tp, tp.Zeros(2, 1)))
			data := ppl.Plate(ctx, "data", 5)
			ppl.Observe(data, "x", normal(tp, mu), ppl.Data(data, tp.Zeros(5, 1)))
		}, "x", []string{"plates []", "plates [data[5]]", "ppl.Broadcast"}},
		{"local value drawn once", func(ctx *ppl.Ctx) {
			tp := ctx.Tape()
			ppl.Sample(ctx, "mu", normal(tp, tp.Zeros(2, 1)))
			data := ppl.Plate(ctx, "data", 5)
			ppl.Sample(data, "z", normal(tp, tp.Zeros(2, 1)))
		}, "z", []string{"plates [data[5]]", "ppl.Broadcast"}},
		{"subsample larger than the plate", func(ctx *ppl.Ctx) {
			ppl.Plate(ctx, "data", 5, ppl.Subsample(6))
		}, "data", []string{"subsample of 6 is larger than the plate's size 5"}},
		{"given subsample larger than the plate", func(ctx *ppl.Ctx) {
			ppl.Plate(ctx, "data", 2, ppl.SubsampleIndices([]int{0, 1, 0}))
		}, "data", []string{"larger than the plate's size 2"}},
		{"index outside the plate", func(ctx *ppl.Ctx) {
			ppl.Plate(ctx, "data", 2, ppl.SubsampleIndices([]int{2}))
		}, "data", []string{"index 2 is outside"}},
		{"index twice", func(ctx *ppl.Ctx) {
			ppl.Plate(ctx, "data", 3, ppl.SubsampleIndices([]int{1, 1}))
		}, "data", []string{"index 1 appears twice"}},
		{"name reused at another size", func(ctx *ppl.Ctx) {
			ppl.Plate(ctx, "data", 3)
			ppl.Plate(ctx, "data", 4)
		}, "data", []string{"size 4", "size 3"}},
		{"plate inside itself", func(ctx *ppl.Ctx) {
			ppl.Plate(ppl.Plate(ctx, "data", 3), "data", 3)
		}, "data", []string{"inside itself"}},
		{"zero size", func(ctx *ppl.Ctx) { ppl.Plate(ctx, "data", 0) }, "data", []string{"size must be > 0"}},
		{"address taken by a site", func(ctx *ppl.Ctx) {
			ppl.Sample(ctx, "data", normal(ctx.Tape(), ctx.Tape().Zeros(2, 1)))
			ppl.Plate(ctx, "data", 3)
		}, "data", []string{"duplicate address"}},
		{"sum out of wrong rows", func(ctx *ppl.Ctx) {
			tp := ctx.Tape()
			ppl.Sample(ctx, "mu", normal(tp, tp.Zeros(2, 1)))
			ppl.SumOut(ppl.Plate(ctx, "data", 3), tp.Zeros(2, 1))
		}, "data", []string{"SumOut", "plates [data[3]]"}},
		{"data of wrong rows", func(ctx *ppl.Ctx) {
			tp := ctx.Tape()
			ppl.Sample(ctx, "mu", normal(tp, tp.Zeros(2, 1)))
			ppl.Data(ppl.Plate(ctx, "data", 3), tp.Zeros(4, 1))
		}, "data", []string{"4 rows", "3 members"}},
		{"ad shape error inside a plate", func(ctx *ppl.Ctx) {
			tp := ctx.Tape()
			mu := ppl.Sample(ctx, "mu", normal(tp, tp.Zeros(2, 1)))
			data := ppl.Plate(ctx, "data", 3)
			ad.Add(mu, ppl.Data(data, tp.Zeros(3, 1)))
		}, "data", []string{"ad: Add", "ppl.Broadcast"}},
		{"expand of an outer level", func(ctx *ppl.Ctx) {
			tp := ctx.Tape()
			mu := ppl.Sample(ctx, "mu", normal(tp, tp.Zeros(2, 1)))
			ppl.Expand(ppl.Plate(ctx, "data", 3), mu)
		}, "data", []string{"plates [data[3]]", "ppl.Broadcast"}},
		{"tile inside a plate", func(ctx *ppl.Ctx) {
			tp := ctx.Tape()
			ppl.Sample(ctx, "mu", normal(tp, tp.Zeros(2, 1)))
			ppl.Tile(ppl.Plate(ctx, "data", 3), tp.Zeros(1, 1))
		}, "data", []string{"ppl.Data"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := ppl.Run(tc.model, ppl.Config{Rand: rand.New(rand.NewPCG(1, 2))})
			requireSiteError(t, err, tc.addr, tc.want...)
		})
	}
}

func matOf(rows, cols int, vs ...float64) *mat.Dense { return mat.NewDense(rows, cols, vs) }

func TestDataFromAnotherTape(t *testing.T) {
	data := ad.NewTape().FromData(3, 1, []float64{1, 2, 3})
	require.NoError(t, ppl.Run(func(ctx *ppl.Ctx) {
		rows := ppl.Data(ppl.Plate(ctx, "d", 3, ppl.SubsampleIndices([]int{2})), data)
		assert.Equal(t, ctx.Tape(), rows.Tape())
		assert.Equal(t, []float64{3, 3}, rows.Data())
	}, ppl.Config{Batch: 2}))
}

// A value with one row per member of the plates, when the run's batch
// happens to have as many rows, is ambiguous for Broadcast: taken as one
// row per particle it would give every member of particle p the row p.
// Broadcast refuses it, pointing to Data, unless it is a sampled value
// (provenance says it is per particle) or its rows are all equal.
func TestBroadcastRefusesPerMemberValues(t *testing.T) {
	run := func(value func(ctx *ppl.Ctx) *ad.Tensor) ([]float64, error) {
		var got []float64
		err := ppl.Run(func(ctx *ppl.Ctx) {
			groups := ppl.Plate(ctx, "groups", 3)
			got = ppl.Broadcast(groups, value(ctx)).Data()
		}, ppl.Config{Rand: rand.New(rand.NewPCG(1, 2)), Batch: 3})
		return got, err
	}
	_, err := run(func(ctx *ppl.Ctx) *ad.Tensor { return ctx.Tape().FromData(3, 1, []float64{10, 20, 30}) })
	requireSiteError(t, err, "groups", "3 rows", "ppl.Data", "ppl.Move")

	got, err := run(func(ctx *ppl.Ctx) *ad.Tensor { return ctx.Tape().Full(3, 1, 7) })
	require.NoError(t, err)
	assert.Equal(t, []float64{7, 7, 7, 7, 7, 7, 7, 7, 7}, got)
	got, err = run(func(ctx *ppl.Ctx) *ad.Tensor { return ppl.Sample(ctx, "mu", stdNormal(ctx.Tape(), 3, 1)) })
	require.NoError(t, err)
	assert.Len(t, got, 9)
	assert.Equal(t, got[0], got[2])
	assert.NotEqual(t, got[0], got[3])
}
