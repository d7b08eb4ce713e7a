package ad_test

import (
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gonum.org/v1/gonum/mat"

	"github.com/backpropq/backpropq/ad"
)

func TestProvenanceSetOps(t *testing.T) {
	tests := []struct {
		name        string
		p, q        []int
		union       []int
		minus       []int
		pSubsetOfQ  bool
		qSubsetOfP  bool
		wantPString string
	}{
		{"both empty", nil, nil, []int{}, []int{}, true, true, "{}"},
		{"empty p", nil, []int{2}, []int{2}, []int{}, true, false, "{}"},
		{"disjoint", []int{1, 4}, []int{2, 7}, []int{1, 2, 4, 7}, []int{1, 4}, false, false, "{1,4}"},
		{"subset", []int{3}, []int{3, 5}, []int{3, 5}, []int{}, true, false, "{3}"},
		{"equal", []int{0, 63}, []int{63, 0}, []int{0, 63}, []int{}, true, true, "{0,63}"},
		{"word boundary", []int{63}, []int{64}, []int{63, 64}, []int{63}, false, false, "{63}"},
		{"large ids", []int{5, 200}, []int{130, 200}, []int{5, 130, 200}, []int{5}, false, false, "{5,200}"},
		{"long minus short", []int{1, 1000}, []int{1000}, []int{1, 1000}, []int{1}, false, true, "{1,1000}"},
		{"duplicates", []int{7, 7, 7}, []int{7}, []int{7}, []int{}, true, true, "{7}"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, q := ad.ProvenanceOf(tt.p...), ad.ProvenanceOf(tt.q...)
			assert.Equal(t, tt.union, p.Union(q).IDs())
			assert.Equal(t, tt.union, q.Union(p).IDs())
			assert.Equal(t, tt.minus, p.Minus(q).IDs())
			assert.Equal(t, tt.pSubsetOfQ, p.SubsetOf(q))
			assert.Equal(t, tt.qSubsetOfP, q.SubsetOf(p))
			assert.Equal(t, tt.pSubsetOfQ && tt.qSubsetOfP, p.Equal(q))
			assert.Equal(t, tt.wantPString, p.String())
			ids := slices.Compact(slices.Sorted(slices.Values(tt.p)))
			assert.Equal(t, len(ids), p.Len())
			assert.Equal(t, len(ids) == 0, p.Empty())
			for _, id := range ids {
				assert.True(t, p.Has(id))
				assert.True(t, p.Union(q).Has(id))
			}
			assert.False(t, p.Has(-1))
			assert.False(t, p.Has(100000))
			// Minus of the union gives back the part outside the other set.
			assert.True(t, p.Union(q).Minus(q).Equal(p.Minus(q)))
		})
	}
}

func TestProvenanceRandomAgainstMap(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for range 200 {
		draw := func() ([]int, map[int]bool) {
			n := rng.IntN(6)
			ids, set := make([]int, n), map[int]bool{}
			for i := range ids {
				ids[i] = rng.IntN(300)
				set[ids[i]] = true
			}
			return ids, set
		}
		pi, ps := draw()
		qi, qs := draw()
		p, q := ad.ProvenanceOf(pi...), ad.ProvenanceOf(qi...)
		u, m := p.Union(q), p.Minus(q)
		for id := range 320 {
			require.Equal(t, ps[id] || qs[id], u.Has(id), "union has %d", id)
			require.Equal(t, ps[id] && !qs[id], m.Has(id), "minus has %d", id)
		}
	}
}

func TestProvenanceUnionDoesNotAllocateForSubsets(t *testing.T) {
	big, small := ad.ProvenanceOf(1, 70, 300), ad.ProvenanceOf(70)
	var empty ad.Provenance
	allocs := testing.AllocsPerRun(100, func() {
		_ = big.Union(small)
		_ = small.Union(big)
		_ = big.Union(empty)
		_ = empty.Union(big)
		_ = big.Union(big)
	})
	assert.Zero(t, allocs)
	// A proper union must not alias either operand: changing neither is
	// possible through the API, so check that the operands are unchanged.
	u := ad.ProvenanceOf(1).Union(ad.ProvenanceOf(2))
	assert.Equal(t, []int{1, 2}, u.IDs())
}

func TestProvenanceOfNegativePanics(t *testing.T) {
	assert.PanicsWithValue(t, "ad: negative provenance id -3", func() { ad.ProvenanceOf(1, -3) })
}

func TestProvenanceFlowsThroughOps(t *testing.T) {
	tp := ad.NewTape()
	p1, p2, p3 := ad.ProvenanceOf(1), ad.ProvenanceOf(2), ad.ProvenanceOf(70)
	a := tp.WithProvenance(tp.Full(2, 3, 0.5), p1)
	b := tp.WithProvenance(tp.Full(2, 3, 1.5), p2)
	col := tp.WithProvenance(tp.Full(2, 1, 1), p3)
	idx := tp.WithProvenance(tp.FromData(2, 1, []float64{0, 2}), p3)
	plain := tp.Full(3, 2, 1)
	p12 := p1.Union(p2)
	p123 := p12.Union(p3)

	tests := []struct {
		name string
		out  *ad.Tensor
		want ad.Provenance
	}{
		{"const", plain, ad.Provenance{}},
		{"Add", ad.Add(a, b), p12},
		{"Sub broadcast", ad.Sub(a, col), p1.Union(p3)},
		{"Mul", ad.Mul(a, b), p12},
		{"Div", ad.Div(b, a), p12},
		{"MatMul", ad.MatMul(a, plain), p1},
		{"MatMulT", ad.MatMulT(a, b, true, false), p12},
		{"Exp", ad.Exp(a), p1},
		{"Softplus", ad.Softplus(b), p2},
		{"Sum", ad.Sum(ad.Add(a, b)), p12},
		{"RowMean", ad.RowMean(b), p2},
		{"ColSum", ad.ColSum(a), p1},
		{"LogSoftmax", ad.LogSoftmax(a), p1},
		{"Concat", ad.Concat(a, col, b), p123},
		{"Slice", ad.Slice(ad.Concat(a, b), 0, 1), p12},
		{"Gather carries index provenance", ad.Gather(a, idx), p1.Union(p3)},
		{"OneHot carries index provenance", ad.OneHot(idx, 4), p3},
		{"Where carries mask provenance", ad.Where(col, a, b), p123},
		{"Reshape", ad.Reshape(a, 3, 2), p1},
		{"Transpose", ad.Transpose(b), p2},
		{"StopGradient keeps provenance", ad.StopGradient(ad.Add(a, b)), p12},
		{"WithProvenance replaces", tp.WithProvenance(ad.Add(a, b), p3), p3},
		{"WithProvenance to empty", tp.WithProvenance(a, ad.Provenance{}), ad.Provenance{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Truef(t, tt.want.Equal(tt.out.Provenance()), "got %v, want %v", tt.out.Provenance(), tt.want)
		})
	}
}

func TestWithProvenanceSharesValueAndGradient(t *testing.T) {
	tp := ad.NewTape()
	v := ad.NewVar(mat.NewDense(1, 2, []float64{1, 2}))
	x := tp.Var(v)
	y := tp.WithProvenance(x, ad.ProvenanceOf(4))
	assert.Equal(t, x.Data(), y.Data())
	assert.True(t, y.RequiresGrad())
	tp.Backward(ad.Sum(ad.Square(y)))
	assert.Equal(t, []float64{2, 4}, v.Grad.RawMatrix().Data)
}
