package dist

import (
	"fmt"
	"math"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/backpropq/backpropq/ad"
)

// finiteCases returns each Finite distribution of the package in its
// value and its pointer form, with the expected description.
func finiteCases(tp *ad.Tape) []struct {
	name          string
	value, ptr    Distribution
	enc           Encoding
	classes, size int
} {
	bern := BernoulliLogits(tp.FromData(2, 3, []float64{0.3, -1, 2, 0, 0.5, -0.2}))
	bernProbs := BernoulliProbs(row(tp, 0.2, 0.9))
	cat := Categorical{Logits: tp.FromData(2, 4, []float64{0.1, 0.2, -1, 3, 0, 0, 1, -2})}
	oneHot := OneHotCategorical{Logits: row(tp, 1, -1, 0.5)}
	binom := Binomial{TotalCount: tp.Scalar(3), Probs: tp.FromData(2, 1, []float64{0.3, 0.8})}
	binom2 := Binomial{TotalCount: tp.Full(2, 2, 2), Logits: tp.FromData(2, 2, []float64{0.5, -1, 2, 0})}
	return []struct {
		name          string
		value, ptr    Distribution
		enc           Encoding
		classes, size int
	}{
		{"Bernoulli(logits)", bern, &bern, Binary, 2, 8},
		{"Bernoulli(probs)", bernProbs, &bernProbs, Binary, 2, 4},
		{"Categorical", cat, &cat, Index, 4, 4},
		{"OneHotCategorical", oneHot, &oneHot, OneHot, 3, 3},
		{"Binomial", binom, &binom, Count, 4, 4},
		{"Binomial(2 columns)", binom2, &binom2, Count, 3, 9},
	}
}

func TestFiniteValueAndPointerAgree(t *testing.T) {
	tp := ad.NewTape()
	for _, c := range finiteCases(tp) {
		t.Run(c.name, func(t *testing.T) {
			fv, ok := c.value.(Finite)
			require.True(t, ok, "value form is Finite")
			fp, ok := c.ptr.(Finite)
			require.True(t, ok, "pointer form is Finite")
			for _, f := range []Finite{fv, fp} {
				require.Equal(t, c.enc, f.Encoding())
				require.Equal(t, c.classes, f.Classes())
				require.Equal(t, c.size, f.SupportSize())
			}
			const rows = 5
			pv, pp := fv.EnumerateSupport(tp, rows), fp.EnumerateSupport(tp, rows)
			require.Len(t, pv, c.size)
			require.Len(t, pp, c.size)
			for k := range pv {
				require.Equal(t, pv[k].Data(), pp[k].Data(), "point %d", k)
			}
		})
	}
}

// TestEnumerateSupportCoversTheSupport checks that the points are distinct
// valid values, equal in every row, encoded as Encoding says, and that
// their probabilities sum to one in every row.
func TestEnumerateSupportCoversTheSupport(t *testing.T) {
	tp := ad.NewTape()
	for _, c := range finiteCases(tp) {
		t.Run(c.name, func(t *testing.T) {
			f := c.value.(Finite)
			batch, _ := f.Shape()
			rows := batch
			if rows == 1 {
				rows = 3 // a one-row parameter scores many rows
			}
			points := f.EnumerateSupport(tp, rows)
			seen := map[string]bool{}
			total := make([]float64, rows)
			for k, v := range points {
				require.NoError(t, f.ValidateValue(v), "point %d", k)
				r, cols := v.Dims()
				require.Equal(t, rows, r)
				switch f.Encoding() {
				case Index:
					require.Equal(t, 1, cols)
				case OneHot:
					require.Equal(t, f.Classes(), cols)
				case Binary, Count:
					_, d := f.Shape()
					require.Equal(t, d, cols)
				}
				first := fmt.Sprint(v.Data()[:cols])
				for i := range rows {
					require.Equal(t, first, fmt.Sprint(v.Data()[i*cols:(i+1)*cols]), "point %d row %d", k, i)
				}
				require.False(t, seen[first], "point %d repeats %s", k, first)
				seen[first] = true
				lp := f.LogProb(v)
				for i := range rows {
					total[i] += math.Exp(lp.At(i, 0))
				}
			}
			for i, s := range total {
				require.InDelta(t, 1, s, 1e-12, "row %d", i)
			}
		})
	}
}

func TestEnumerateSupportTooLargePanics(t *testing.T) {
	tp := ad.NewTape()
	wide := BernoulliLogits(tp.Zeros(1, 40))
	require.Equal(t, 1<<40, wide.SupportSize())
	require.Panics(t, func() { wide.EnumerateSupport(tp, 1) })
	require.Equal(t, math.MaxInt, BernoulliLogits(tp.Zeros(1, 70)).SupportSize())
}

func TestEncodingString(t *testing.T) {
	require.Equal(t, "binary", Binary.String())
	require.Equal(t, "index", Index.String())
	require.Equal(t, "one-hot", OneHot.String())
	require.Equal(t, "count", Count.String())
	require.Equal(t, "Encoding(0)", Encoding(0).String())
}

// A Binomial whose total count differs between elements has no one
// support to enumerate: the Finite methods panic saying so.
func TestBinomialSupportNeedsOneTotalCount(t *testing.T) {
	tp := ad.NewTape()
	d := Binomial{TotalCount: tp.FromData(2, 1, []float64{3, 5}), Probs: tp.Scalar(0.5)}
	require.PanicsWithValue(t, "dist: Binomial: enumerating the support needs one TotalCount in every row and column, got 3 and 5", func() { d.Classes() })
	require.Panics(t, func() { d.EnumerateSupport(tp, 2) })
	require.Equal(t, math.MaxInt, Binomial{TotalCount: tp.Scalar(9), Probs: tp.Zeros(1, 30)}.SupportSize())
}
