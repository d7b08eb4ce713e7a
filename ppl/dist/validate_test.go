package dist

import (
	"errors"
	"math"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/backpropq/backpropq/ad"
)

var (
	nan  = math.NaN()
	pInf = math.Inf(1)
	nInf = math.Inf(-1)
)

// validateCase is a distribution and the message of its Validate error,
// "" for a valid one.
type validateCase struct {
	name string
	dist Distribution
	msg  string
}

// checkValidate checks each case's Validate error, an *Error.
func checkValidate(t *testing.T, cases []validateCase) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := c.dist.Validate()
			if c.msg == "" {
				require.NoError(t, err)
				return
			}
			require.EqualError(t, err, c.msg)
			var de *Error
			require.True(t, errors.As(err, &de))
		})
	}
}

// Every invalid parameter gives an error naming the distribution, the
// parameter, the position, the number found and the rule.
func TestValidate(t *testing.T) {
	tp, other := ad.NewTape(), ad.NewTape()
	s := tp.Scalar
	cases := []validateCase{
		{"Normal ok", Normal{Loc: row(tp, 1, 2), Scale: col(tp, 1, 2, 3)}, ""},
		{"Normal nil loc", Normal{Scale: s(1)}, "dist: Normal: loc is nil"},
		{"Normal nil scale", Normal{Loc: s(1)}, "dist: Normal: scale is nil"},
		{"Normal negative scale", Normal{Loc: s(0), Scale: col(tp, 1, 1, 1, -1)},
			"dist: Normal: scale must be > 0 and finite, got -1 at row 3, column 0"},
		{"Normal zero scale", Normal{Loc: s(0), Scale: row(tp, 1, 0)},
			"dist: Normal: scale must be > 0 and finite, got 0 at row 0, column 1"},
		{"Normal infinite scale", Normal{Loc: s(0), Scale: s(pInf)}, "dist: Normal: scale must be > 0 and finite, got +Inf at row 0, column 0"},
		{"Normal NaN scale", Normal{Loc: s(0), Scale: s(nan)}, "dist: Normal: scale must be > 0 and finite, got NaN at row 0, column 0"},
		{"Normal NaN loc", Normal{Loc: row(tp, 0, nan), Scale: s(1)}, "dist: Normal: loc must be finite, got NaN at row 0, column 1"},
		{"Normal infinite loc", Normal{Loc: s(nInf), Scale: s(1)}, "dist: Normal: loc must be finite, got -Inf at row 0, column 0"},
		{"Normal shapes", Normal{Loc: tp.Zeros(2, 3), Scale: tp.Full(4, 3, 1)},
			"dist: Normal: scale is [4x3], which does not broadcast with loc [2x3]"},
		{"Normal tapes", Normal{Loc: s(0), Scale: other.Scalar(1)}, "dist: Normal: scale is on another tape than loc"},

		{"Bernoulli ok logits", BernoulliLogits(row(tp, -100, 100)), ""},
		{"Bernoulli ok probs", BernoulliProbs(row(tp, 0, 0.5, 1)), ""},
		{"Bernoulli none", Bernoulli{}, "dist: Bernoulli: logits and probs are both nil; set exactly one"},
		{"Bernoulli both", Bernoulli{Logits: s(0), Probs: s(0.5)}, "dist: Bernoulli: logits and probs are both set; set exactly one"},
		{"Bernoulli infinite logit", BernoulliLogits(tp.FromData(2, 3, []float64{0, 0, 0, 0, 0, pInf})),
			"dist: Bernoulli: logits must be finite, got +Inf at row 1, column 2"},
		{"Bernoulli NaN logit", BernoulliLogits(s(nan)), "dist: Bernoulli: logits must be finite, got NaN at row 0, column 0"},
		{"Bernoulli prob above 1", BernoulliProbs(row(tp, 0.5, 1.5)), "dist: Bernoulli: probs must be in [0, 1], got 1.5 at row 0, column 1"},
		{"Bernoulli negative prob", BernoulliProbs(col(tp, 0.5, -0.1)), "dist: Bernoulli: probs must be in [0, 1], got -0.1 at row 1, column 0"},
		{"Bernoulli NaN prob", BernoulliProbs(s(nan)), "dist: Bernoulli: probs must be in [0, 1], got NaN at row 0, column 0"},

		{"Categorical ok", Categorical{Logits: row(tp, 1, 2, 3)}, ""},
		{"Categorical nil", Categorical{}, "dist: Categorical: logits is nil"},
		{"Categorical NaN", Categorical{Logits: row(tp, 1, nan)}, "dist: Categorical: logits must be finite, got NaN at row 0, column 1"},
		{"OneHotCategorical nil", OneHotCategorical{}, "dist: OneHotCategorical: logits is nil"},
		{"OneHotCategorical infinite", OneHotCategorical{Logits: row(tp, nInf, 2)},
			"dist: OneHotCategorical: logits must be finite, got -Inf at row 0, column 0"},

		{"RelaxedBernoulli ok", RelaxedBernoulli{Logits: tp.Zeros(3, 2), Temperature: row(tp, 0.5, 2)}, ""},
		{"RelaxedBernoulli nil temperature", RelaxedBernoulli{Logits: s(0)}, "dist: RelaxedBernoulli: temperature is nil"},
		{"RelaxedBernoulli zero temperature", RelaxedBernoulli{Logits: s(0), Temperature: s(0)},
			"dist: RelaxedBernoulli: temperature must be > 0 and finite, got 0 at row 0, column 0"},
		{"RelaxedBernoulli negative temperature", RelaxedBernoulli{Logits: s(0), Temperature: row(tp, 1, -1)},
			"dist: RelaxedBernoulli: temperature must be > 0 and finite, got -1 at row 0, column 1"},
		{"RelaxedBernoulli infinite temperature", RelaxedBernoulli{Logits: s(0), Temperature: s(pInf)},
			"dist: RelaxedBernoulli: temperature must be > 0 and finite, got +Inf at row 0, column 0"},
		{"RelaxedBernoulli NaN logit", RelaxedBernoulli{Logits: s(nan), Temperature: s(1)},
			"dist: RelaxedBernoulli: logits must be finite, got NaN at row 0, column 0"},
		{"RelaxedBernoulli shapes", RelaxedBernoulli{Logits: tp.Zeros(2, 2), Temperature: tp.Full(1, 3, 1)},
			"dist: RelaxedBernoulli: temperature is [1x3], which does not broadcast with logits [2x2]"},
		{"RelaxedOneHotCategorical ok", RelaxedOneHotCategorical{Logits: tp.Zeros(2, 3), Temperature: col(tp, 1, 2)}, ""},
		{"RelaxedOneHotCategorical row temperature", RelaxedOneHotCategorical{Logits: tp.Zeros(2, 3), Temperature: row(tp, 1, 1, 1)},
			"dist: RelaxedOneHotCategorical: temperature must be [1x1] or [Bx1], got [1x3]"},
		{"RelaxedOneHotCategorical temperature rows", RelaxedOneHotCategorical{Logits: tp.Zeros(2, 3), Temperature: col(tp, 1, 1, 1)},
			"dist: RelaxedOneHotCategorical: temperature is [3x1], which does not broadcast with logits [2x3]"},
		{"RelaxedOneHotCategorical NaN temperature", RelaxedOneHotCategorical{Logits: tp.Zeros(2, 3), Temperature: s(nan)},
			"dist: RelaxedOneHotCategorical: temperature must be > 0 and finite, got NaN at row 0, column 0"},

		{"Uniform ok", Uniform{Low: row(tp, 0, 1), High: row(tp, 1, 1.5)}, ""},
		{"Uniform equal bounds", Uniform{Low: s(1), High: s(1)}, "dist: Uniform: high must be > low (1), got 1 at row 0, column 0"},
		{"Uniform reversed broadcast", Uniform{Low: row(tp, 0, 2), High: tp.FromData(3, 2, []float64{1, 3, 1, 3, 1, 1.5})},
			"dist: Uniform: high must be > low (2), got 1.5 at row 2, column 1"},
		{"Uniform NaN low", Uniform{Low: s(nan), High: s(1)}, "dist: Uniform: low must be finite, got NaN at row 0, column 0"},
		{"Uniform infinite high", Uniform{Low: s(0), High: s(pInf)}, "dist: Uniform: high must be finite, got +Inf at row 0, column 0"},
		{"Uniform nil", Uniform{Low: s(0)}, "dist: Uniform: high is nil"},

		{"Delta ok", Delta{Value: row(tp, 1, 2)}, ""},
		{"Delta nil", Delta{}, "dist: Delta: point (Value) is nil"},
		{"Delta NaN", Delta{Value: row(tp, 1, nan)}, "dist: Delta: point (Value) must be finite, got NaN at row 0, column 1"},
	}
	checkValidate(t, cases)
	err := Normal{Loc: s(0), Scale: col(tp, 1, 1, 1, -1)}.Validate()
	var de *Error
	require.True(t, errors.As(err, &de))
	require.Equal(t, Error{Dist: "Normal", Name: "scale", Rule: "must be > 0 and finite", Got: -1, Row: 3, Col: 0}, *de)
}

// Every value outside the support or of the wrong shape gives an error
// naming the distribution, the row, the column, the number and the rule.
func TestValidateValue(t *testing.T) {
	tp, other := ad.NewTape(), ad.NewTape()
	s := tp.Scalar
	normal := Normal{Loc: row(tp, 0, 0), Scale: s(1)}
	bern := BernoulliLogits(tp.Zeros(3, 8))
	cat := Categorical{Logits: tp.Zeros(2, 3)}
	oneHot := OneHotCategorical{Logits: tp.Zeros(2, 3)}
	relB := RelaxedBernoulli{Logits: row(tp, 0, 0), Temperature: s(1)}
	relK := RelaxedOneHotCategorical{Logits: tp.Zeros(2, 3), Temperature: s(1)}
	uni := Uniform{Low: row(tp, 0, -1), High: row(tp, 1, 1)}
	delta := Delta{Value: row(tp, 1, 2)}
	bernValue := tp.Zeros(3, 8).Value()
	bernValue.Set(2, 7, 0.5)
	cases := []struct {
		name  string
		dist  Distribution
		value *ad.Tensor
		msg   string // "" for valid
	}{
		{"Normal ok broadcast", normal, tp.Zeros(5, 2), ""},
		{"Normal nil", normal, nil, "dist: Normal: value is nil"},
		{"Normal tape", normal, other.Zeros(1, 2), "dist: Normal: value is on another tape than the parameters"},
		{"Normal shape", normal, tp.Zeros(2, 3), "dist: Normal: value must be [1x2] (or broadcast from it), got [2x3]"},
		{"Normal NaN", normal, tp.FromData(2, 2, []float64{0, 0, nan, 0}), "dist: Normal: value must be finite, got NaN at row 1, column 0"},
		{"Normal shape of many rows", Normal{Loc: tp.Zeros(3, 2), Scale: s(1)}, tp.Zeros(2, 2),
			"dist: Normal: value must be [3x2] (or broadcast from it), got [2x2]"},

		{"Bernoulli ok", bern, tp.Full(3, 8, 1), ""},
		{"Bernoulli half", bern, tp.Const(bernValue), "dist: Bernoulli: value must be 0 or 1, got 0.5 at row 2, column 7"},
		{"Bernoulli negative", BernoulliProbs(s(0.5)), s(-1), "dist: Bernoulli: value must be 0 or 1, got -1 at row 0, column 0"},
		{"Bernoulli shape", bern, tp.Zeros(3, 7), "dist: Bernoulli: value must be [3x8] (or broadcast from it), got [3x7]"},

		{"Categorical ok", cat, col(tp, 0, 2), ""},
		{"Categorical fraction", cat, col(tp, 0, 2.5), "dist: Categorical: value must be an integer class index in [0, 3), got 2.5 at row 1, column 0"},
		{"Categorical too large", cat, col(tp, 3, 0), "dist: Categorical: value must be an integer class index in [0, 3), got 3 at row 0, column 0"},
		{"Categorical negative", cat, col(tp, 0, -1), "dist: Categorical: value must be an integer class index in [0, 3), got -1 at row 1, column 0"},
		{"Categorical NaN", cat, col(tp, nan, 0), "dist: Categorical: value must be an integer class index in [0, 3), got NaN at row 0, column 0"},
		{"Categorical one-hot shape", cat, tp.Zeros(2, 3), "dist: Categorical: value must be [2x1] (or broadcast from it), got [2x3]"},

		{"OneHotCategorical ok", oneHot, tp.FromData(2, 3, []float64{0, 1, 0, 1, 0, 0}), ""},
		{"OneHotCategorical entry", oneHot, tp.FromData(2, 3, []float64{0, 1, 0, 0.5, 0.5, 0}),
			"dist: OneHotCategorical: value must be one-hot (entries 0 or 1), got 0.5 at row 1, column 0"},
		{"OneHotCategorical two ones", oneHot, tp.FromData(2, 3, []float64{0, 1, 1, 1, 0, 0}),
			"dist: OneHotCategorical: value must be one-hot (the row already has a 1 at column 1), got 1 at row 0, column 2"},
		{"OneHotCategorical no one", oneHot, tp.FromData(2, 3, []float64{0, 1, 0, 0, 0, 0}),
			"dist: OneHotCategorical: value must be one-hot, got no 1 in row 1"},
		{"OneHotCategorical index shape", oneHot, col(tp, 0, 1), "dist: OneHotCategorical: value must be [2x3] (or broadcast from it), got [2x1]"},

		{"RelaxedBernoulli ok", relB, row(tp, 1e-300, 0.999), ""},
		{"RelaxedBernoulli zero", relB, row(tp, 0.5, 0), "dist: RelaxedBernoulli: value must be in the open interval (0, 1), got 0 at row 0, column 1"},
		{"RelaxedBernoulli one", relB, row(tp, 1, 0.5), "dist: RelaxedBernoulli: value must be in the open interval (0, 1), got 1 at row 0, column 0"},
		{"RelaxedBernoulli NaN", relB, row(tp, 0.5, nan), "dist: RelaxedBernoulli: value must be in the open interval (0, 1), got NaN at row 0, column 1"},
		{"RelaxedOneHotCategorical ok", relK, tp.FromData(2, 3, []float64{0.2, 0.3, 0.5, 0.1, 0.1, 0.8}), ""},
		{"RelaxedOneHotCategorical zero", relK, tp.FromData(2, 3, []float64{0.2, 0.3, 0.5, 0, 0.2, 0.8}),
			"dist: RelaxedOneHotCategorical: value must be in (0, 1] (the open simplex), got 0 at row 1, column 0"},
		{"RelaxedOneHotCategorical sum", relK, tp.FromData(2, 3, []float64{0.2, 0.3, 0.6, 0.1, 0.1, 0.8}),
			"dist: RelaxedOneHotCategorical: value rows must sum to 1 (within 1e-06), got sum 1.1 in row 0"},
		{"RelaxedOneHotCategorical shape", relK, tp.Zeros(2, 2),
			"dist: RelaxedOneHotCategorical: value must be [2x3] (or broadcast from it), got [2x2]"},

		{"Uniform ok bounds", uni, tp.FromData(2, 2, []float64{0, -1, 1, 1}), ""},
		{"Uniform above", uni, tp.FromData(2, 2, []float64{0, -1, 1, 1.5}), "dist: Uniform: value must be in [low, high] = [-1, 1], got 1.5 at row 1, column 1"},
		{"Uniform below", uni, row(tp, -0.1, 0), "dist: Uniform: value must be in [low, high] = [0, 1], got -0.1 at row 0, column 0"},
		{"Uniform NaN", uni, row(tp, nan, 0), "dist: Uniform: value must be in [low, high] = [0, 1], got NaN at row 0, column 0"},

		{"Delta ok", delta, tp.FromData(2, 2, []float64{1, 2, 1, 2}), ""},
		{"Delta other", delta, tp.FromData(2, 2, []float64{1, 2, 1, 2.5}), "dist: Delta: value must equal the point of the Delta (2), got 2.5 at row 1, column 1"},
		{"Delta nil point", Delta{}, s(1), "dist: Delta: value cannot be checked: the distribution has a nil parameter"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := c.dist.ValidateValue(c.value)
			if c.msg == "" {
				require.NoError(t, err)
				return
			}
			require.EqualError(t, err, c.msg)
		})
	}
}
