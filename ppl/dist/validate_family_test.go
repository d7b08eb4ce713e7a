package dist

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/backpropq/backpropq/ad"
)

// The new families' validation errors name the distribution, the
// parameter, the position, the number found and the rule, like the
// others.
func TestValidateFamilies(t *testing.T) {
	tp := ad.NewTape()
	s := tp.Scalar
	cases := []validateCase{
		{"Gamma ok", Gamma{Concentration: row(tp, 0.1, 3), Rate: s(2)}, ""},
		{"Gamma concentration", Gamma{Concentration: row(tp, 0.1, -3), Rate: s(2)},
			"dist: Gamma: concentration must be > 0 and finite, got -3 at row 0, column 1"},
		{"Gamma rate", Gamma{Concentration: s(1), Rate: col(tp, 1, 0)}, "dist: Gamma: rate must be > 0 and finite, got 0 at row 1, column 0"},
		{"Gamma nil", Gamma{Concentration: s(1)}, "dist: Gamma: rate is nil"},
		{"Beta alpha", Beta{Alpha: s(nan), Beta: s(1)}, "dist: Beta: alpha must be > 0 and finite, got NaN at row 0, column 0"},
		{"Beta beta", Beta{Alpha: s(1), Beta: s(pInf)}, "dist: Beta: beta must be > 0 and finite, got +Inf at row 0, column 0"},
		{"Dirichlet columns", Dirichlet{Concentration: s(1)}, "dist: Dirichlet: concentration must have at least 2 columns, got 1"},
		{"Dirichlet element", Dirichlet{Concentration: tp.FromData(2, 2, []float64{1, 1, 1, -2})},
			"dist: Dirichlet: concentration must be > 0 and finite, got -2 at row 1, column 1"},
		{"Exponential", Exponential{Rate: s(-1)}, "dist: Exponential: rate must be > 0 and finite, got -1 at row 0, column 0"},
		{"LogNormal", LogNormal{Loc: s(0), Scale: s(-1)}, "dist: LogNormal: scale must be > 0 and finite, got -1 at row 0, column 0"},
		{"Laplace", Laplace{Loc: s(nInf), Scale: s(1)}, "dist: Laplace: loc must be finite, got -Inf at row 0, column 0"},
		{"StudentT df", StudentT{Df: s(0), Loc: s(0), Scale: s(1)}, "dist: StudentT: df must be > 0 and finite, got 0 at row 0, column 0"},
		{"Cauchy", Cauchy{Loc: s(0), Scale: s(0)}, "dist: Cauchy: scale must be > 0 and finite, got 0 at row 0, column 0"},
		{"HalfNormal", HalfNormal{Scale: s(-2)}, "dist: HalfNormal: scale must be > 0 and finite, got -2 at row 0, column 0"},
		{"HalfCauchy", HalfCauchy{}, "dist: HalfCauchy: scale is nil"},
		{"Poisson", Poisson{Rate: row(tp, 1, 0)}, "dist: Poisson: rate must be > 0 and finite, got 0 at row 0, column 1"},
		{"Binomial count", Binomial{TotalCount: s(2.5), Probs: s(0.5)},
			"dist: Binomial: total_count must be a non-negative integer, got 2.5 at row 0, column 0"},
		{"Binomial probs", Binomial{TotalCount: s(2), Probs: s(1.5)}, "dist: Binomial: probs must be in [0, 1], got 1.5 at row 0, column 0"},
		{"Binomial both", Binomial{TotalCount: s(2), Probs: s(0.5), Logits: s(0)},
			"dist: Binomial: logits and probs are both set; set exactly one"},
		{"Geometric", Geometric{Probs: s(0)}, "dist: Geometric: probs must be in (0, 1], got 0 at row 0, column 0"},
		{"NegativeBinomial", NegativeBinomial{TotalCount: s(1), Probs: s(1)},
			"dist: NegativeBinomial: probs must be in [0, 1), got 1 at row 0, column 0"},
		{"Multinomial", Multinomial{TotalCount: -1, Logits: row(tp, 0, 0)}, "dist: Multinomial: total_count must be >= 0, got -1 at row 0, column 0"},
		{"MultivariateNormal", MultivariateNormal{Loc: row(tp, 0, 0), ScaleTril: tp.FromData(2, 2, []float64{1, 0, 0, 0})},
			"dist: MultivariateNormal: scale_tril must have a diagonal > 0 and finite, got 0 at row 1, column 1"},
		{"Transformed", Transformed{Base: Normal{Loc: s(0), Scale: s(-1)}, Transform: Exp{}},
			"dist: Normal: scale must be > 0 and finite, got -1 at row 0, column 0"},
	}
	checkValidate(t, cases)
}

// Values outside the support give errors naming the row and column.
func TestValidateValueFamilies(t *testing.T) {
	tp := ad.NewTape()
	s := tp.Scalar
	cases := []struct {
		dist  Distribution
		value *ad.Tensor
		msg   string
	}{
		{Gamma{Concentration: s(1), Rate: s(1)}, col(tp, 1, -0.5), "dist: Gamma: value must be >= 0 and finite, got -0.5 at row 1, column 0"},
		{Beta{Alpha: s(1), Beta: s(1)}, row(tp, 0.5, 1.5), "dist: Beta: value must be in [0, 1], got 1.5 at row 0, column 1"},
		{Poisson{Rate: s(1)}, s(0.5), "dist: Poisson: value must be a non-negative integer, got 0.5 at row 0, column 0"},
		{Binomial{TotalCount: s(3), Probs: s(0.5)}, s(4), "dist: Binomial: value must be an integer in [0, total_count], got 4 at row 0, column 0"},
		{Dirichlet{Concentration: row(tp, 1, 1)}, row(tp, 0.5, 0.6), "dist: Dirichlet: value row 0 must sum to 1 (within 1e-06), sums to 1.1"},
		{LogNormal{Loc: s(0), Scale: s(1)}, s(0), "dist: LogNormal: value must be > 0 and finite, got 0 at row 0, column 0"},
	}
	for _, c := range cases {
		require.EqualError(t, c.dist.ValidateValue(c.value), c.msg)
	}
}
