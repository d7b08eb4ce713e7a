package dist

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/backpropq/backpropq/ad"
)

// The tracer rebuilds the graph from provenance: a log-prob carries the
// provenance of the parameters and of the value, a sample carries none,
// a hard value carries its relaxed sample's, and a conditional relaxed
// sample carries the parameters' and b's.
func TestProvenance(t *testing.T) {
	tp := ad.NewTape()
	with := func(x *ad.Tensor, ids ...int) *ad.Tensor { return tp.WithProvenance(x, ad.ProvenanceOf(ids...)) }
	val := func(x *ad.Tensor) *ad.Tensor { return with(x, 9) }
	cases := []struct {
		name  string
		dist  Distribution
		value *ad.Tensor
	}{
		{"Normal", Normal{Loc: with(row(tp, 0, 1), 1), Scale: with(tp.Scalar(1), 2)}, val(row(tp, 0.5, 0.5))},
		{"BernoulliLogits", BernoulliLogits(with(row(tp, 0, 1), 1, 2)), val(row(tp, 0, 1))},
		{"BernoulliProbs", BernoulliProbs(with(row(tp, 0.2, 1), 1, 2)), val(row(tp, 0, 1))},
		{"Categorical", Categorical{Logits: with(row(tp, 0, 1), 1, 2)}, val(col(tp, 1))},
		{"OneHotCategorical", OneHotCategorical{Logits: with(row(tp, 0, 1), 1, 2)}, val(row(tp, 0, 1))},
		{"RelaxedBernoulli", RelaxedBernoulli{Logits: with(row(tp, 0, 1), 1), Temperature: with(tp.Scalar(1), 2)}, val(row(tp, 0.5, 0.5))},
		{"RelaxedOneHotCategorical", RelaxedOneHotCategorical{Logits: with(row(tp, 0, 1), 1), Temperature: with(tp.Scalar(1), 2)}, val(row(tp, 0.5, 0.5))},
		{"Uniform", Uniform{Low: with(row(tp, 0, 1), 1), High: with(tp.Scalar(3), 2)}, val(row(tp, 2, 2))},
		{"UniformOutside", Uniform{Low: with(row(tp, 0, 1), 1), High: with(tp.Scalar(3), 2)}, val(row(tp, 5, 2))},
		{"Delta", Delta{Value: with(row(tp, 0, 1), 1, 2)}, val(row(tp, 0, 1))},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			lp := c.dist.LogProb(c.value)
			require.Equal(t, []int{1, 2, 9}, lp.Provenance().IDs())
			require.True(t, c.dist.Sample(newRNG()).Provenance().Empty())
		})
	}
	for _, d := range []Relaxable{
		BernoulliLogits(with(row(tp, 0, 1), 1)),
		Categorical{Logits: with(row(tp, 0, 1), 1)},
		OneHotCategorical{Logits: with(row(tp, 0, 1), 1)},
	} {
		z, b := d.RelaxedSample(newRNG())
		require.Equal(t, []int{1}, z.Provenance().IDs())
		require.Equal(t, []int{1}, b.Provenance().IDs())
		require.False(t, b.RequiresGrad())
		zt := d.ConditionalRelaxedSample(with(b, 4), newRNG())
		require.Equal(t, []int{1, 4}, zt.Provenance().IDs())
		require.Equal(t, []int{7}, d.Hard(with(zt, 7)).Provenance().IDs())
	}
}
