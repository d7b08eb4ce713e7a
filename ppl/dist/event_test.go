package dist

import (
	"fmt"
	"math"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/backpropq/backpropq/ad"
)

// The elementwise families' per-element terms sum to LogProb, outside the
// support too, and their columns are events of one column.
func TestElementwiseLogProbElements(t *testing.T) {
	for _, f := range scalarFamilies() {
		p := f.params[0]
		t.Run(fmt.Sprintf("%s%v", f.name, p), func(t *testing.T) {
			tp := ad.NewTape()
			ps := make([]*ad.Tensor, len(p))
			for i, v := range p {
				ps[i] = tp.Full(1, 3, v)
			}
			d := f.build(ps)
			e, ok := d.(Elementwise)
			require.True(t, ok)
			require.Equal(t, 1, EventColumns(d))
			vals := append([]float64(nil), f.values...)
			for len(vals)%3 != 0 {
				vals = append(vals, f.values[0])
			}
			x := tp.FromData(len(vals)/3, 3, vals)
			elems := e.LogProbElements(x)
			require.Equal(t, []int{x.Rows(), 3}, []int{elems.Rows(), elems.Cols()})
			lp := d.LogProb(x)
			for i := range x.Rows() {
				want, negInf := 0.0, false
				for j := range 3 {
					want += elems.At(i, j)
					negInf = negInf || math.IsInf(elems.At(i, j), -1)
				}
				if negInf { // even beside a +Inf at an edge of the support
					want = math.Inf(-1)
				}
				require.Equal(t, want, lp.At(i, 0), "row %d: %v", i, x.Data()[3*i:3*i+3])
			}
		})
	}
}

func TestIndependent(t *testing.T) {
	tp := ad.NewTape()
	n := Normal{Loc: row(tp, 0, 1, 2), Scale: tp.Scalar(1.5)}
	ind := Independent(n)
	_, elementwise := ind.(Elementwise)
	require.False(t, elementwise)
	require.Equal(t, 3, EventColumns(ind))
	r, ok := ind.(Reparameterized)
	require.True(t, ok)
	require.Equal(t, n.RSample(newRNG()).Data(), r.RSample(newRNG()).Data())
	x := tp.FromData(2, 3, []float64{0, 1, 2, -1, 4, 0.5})
	require.Equal(t, n.LogProb(x).Data(), ind.LogProb(x).Data())
	require.Equal(t, n, ind.(IndependentReparameterized).Base())

	q := Normal{Loc: row(tp, 1, 1, 1), Scale: tp.Scalar(0.5)}
	want, err := KL(n, q)
	require.NoError(t, err)
	got, err := KL(ind, Independent(q))
	require.NoError(t, err)
	require.Equal(t, want.Data(), got.Data())

	pois := Independent(Poisson{Rate: row(tp, 1, 2)})
	_, ok = pois.(Reparameterized)
	require.False(t, ok, "Independent of a Poisson has no RSample")
	require.Equal(t, NonNegativeInteger.String(), pois.(Declared).Support().String())

	require.Equal(t, 3, EventColumns(MultivariateNormal{Loc: row(tp, 0, 0, 0), ScaleTril: tp.FromData(3, 3, []float64{1, 0, 0, 0, 1, 0, 0, 0, 1})}))
	require.Equal(t, 2, EventColumns(Dirichlet{Concentration: row(tp, 1, 1)}))
}
