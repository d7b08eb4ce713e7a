package dist

import (
	"fmt"

	"github.com/backpropq/backpropq/ad"
)

// predicate is a constraint given by a function of a row.
type predicate struct {
	name     string
	contains func(value *ad.Tensor, i int) bool
}

func (c predicate) Contains(value *ad.Tensor, i int) bool { return c.contains(value, i) }
func (c predicate) String() string                        { return c.name }

type params = map[string]Constraint

// Support returns [Real].
func (Normal) Support() Constraint { return Real }

// ParamConstraints returns loc: [Real], scale: [Positive].
func (Normal) ParamConstraints() map[string]Constraint { return params{"loc": Real, "scale": Positive} }

// Support returns [Boolean].
func (Bernoulli) Support() Constraint { return Boolean }

// ParamConstraints returns logits: [Real], probs: [UnitInterval] (exactly
// one is set).
func (Bernoulli) ParamConstraints() map[string]Constraint {
	return params{"logits": Real, "probs": UnitInterval}
}

// Support returns the integers in [0, K-1].
func (d Categorical) Support() Constraint { return IntegerInterval(0, d.Classes()-1) }

// ParamConstraints returns logits: [Real].
func (Categorical) ParamConstraints() map[string]Constraint { return params{"logits": Real} }

// Support returns [OneHotRows].
func (OneHotCategorical) Support() Constraint { return OneHotRows }

// ParamConstraints returns logits: [Real].
func (OneHotCategorical) ParamConstraints() map[string]Constraint { return params{"logits": Real} }

// Support returns [UnitInterval].
func (RelaxedBernoulli) Support() Constraint { return UnitInterval }

// ParamConstraints returns logits: [Real], temperature: [Positive].
func (RelaxedBernoulli) ParamConstraints() map[string]Constraint {
	return params{"logits": Real, "temperature": Positive}
}

// Support returns [Simplex].
func (RelaxedOneHotCategorical) Support() Constraint { return Simplex }

// ParamConstraints returns logits: [Real], temperature: [Positive].
func (RelaxedOneHotCategorical) ParamConstraints() map[string]Constraint {
	return params{"logits": Real, "temperature": Positive}
}

// Support returns the elementwise intervals [Low, High].
func (d Uniform) Support() Constraint {
	return predicate{"[low, high]", func(value *ad.Tensor, i int) bool {
		lo, hi := viewOf(d.Low), viewOf(d.High)
		cols := value.Cols()
		for j, v := range value.Data()[i*cols : (i+1)*cols] {
			if !(v >= lo.at(i, j) && v <= hi.at(i, j)) {
				return false
			}
		}
		return true
	}}
}

// ParamConstraints returns low: [Real], high: [Real]; high must also
// exceed low.
func (Uniform) ParamConstraints() map[string]Constraint { return params{"low": Real, "high": Real} }

// Support returns the rows equal to Value.
func (d Delta) Support() Constraint {
	return predicate{"the point Value", func(value *ad.Tensor, i int) bool {
		at := viewOf(d.Value)
		cols := value.Cols()
		for j, v := range value.Data()[i*cols : (i+1)*cols] {
			if v != at.at(i, j) {
				return false
			}
		}
		return true
	}}
}

// ParamConstraints returns value: [Real].
func (Delta) ParamConstraints() map[string]Constraint { return params{"value": Real} }

// Support returns [NonNegative].
func (Gamma) Support() Constraint { return NonNegative }

// ParamConstraints returns concentration and rate: [Positive].
func (Gamma) ParamConstraints() map[string]Constraint {
	return params{"concentration": Positive, "rate": Positive}
}

// Support returns [UnitInterval].
func (Beta) Support() Constraint { return UnitInterval }

// ParamConstraints returns alpha and beta: [Positive].
func (Beta) ParamConstraints() map[string]Constraint {
	return params{"alpha": Positive, "beta": Positive}
}

// Support returns [Simplex].
func (Dirichlet) Support() Constraint { return Simplex }

// ParamConstraints returns concentration: [Positive].
func (Dirichlet) ParamConstraints() map[string]Constraint { return params{"concentration": Positive} }

// Support returns [NonNegative].
func (Exponential) Support() Constraint { return NonNegative }

// ParamConstraints returns rate: [Positive].
func (Exponential) ParamConstraints() map[string]Constraint { return params{"rate": Positive} }

// Support returns [Positive].
func (LogNormal) Support() Constraint { return Positive }

// ParamConstraints returns loc: [Real], scale: [Positive].
func (LogNormal) ParamConstraints() map[string]Constraint {
	return params{"loc": Real, "scale": Positive}
}

// Support returns [Real].
func (Laplace) Support() Constraint { return Real }

// ParamConstraints returns loc: [Real], scale: [Positive].
func (Laplace) ParamConstraints() map[string]Constraint {
	return params{"loc": Real, "scale": Positive}
}

// Support returns [Real].
func (StudentT) Support() Constraint { return Real }

// ParamConstraints returns df: [Positive], loc: [Real], scale: [Positive].
func (StudentT) ParamConstraints() map[string]Constraint {
	return params{"df": Positive, "loc": Real, "scale": Positive}
}

// Support returns [Real].
func (Cauchy) Support() Constraint { return Real }

// ParamConstraints returns loc: [Real], scale: [Positive].
func (Cauchy) ParamConstraints() map[string]Constraint { return params{"loc": Real, "scale": Positive} }

// Support returns [NonNegative].
func (HalfNormal) Support() Constraint { return NonNegative }

// ParamConstraints returns scale: [Positive].
func (HalfNormal) ParamConstraints() map[string]Constraint { return params{"scale": Positive} }

// Support returns [NonNegative].
func (HalfCauchy) Support() Constraint { return NonNegative }

// ParamConstraints returns scale: [Positive].
func (HalfCauchy) ParamConstraints() map[string]Constraint { return params{"scale": Positive} }

// Support returns [NonNegativeInteger].
func (Poisson) Support() Constraint { return NonNegativeInteger }

// ParamConstraints returns rate: [Positive].
func (Poisson) ParamConstraints() map[string]Constraint { return params{"rate": Positive} }

// Support returns [Real]: every row of R^D.
func (MultivariateNormal) Support() Constraint { return Real }

// ParamConstraints returns loc: [Real], scale_tril: [LowerCholesky].
func (MultivariateNormal) ParamConstraints() map[string]Constraint {
	return params{"loc": Real, "scale_tril": LowerCholesky}
}

// Support returns [Real].
func (MultivariateNormalDiag) Support() Constraint { return Real }

// ParamConstraints returns loc: [Real], scale: [Positive].
func (MultivariateNormalDiag) ParamConstraints() map[string]Constraint {
	return params{"loc": Real, "scale": Positive}
}

// Support returns the image of Base's support: the rows whose inverse is
// finite and in Base's support (Base must be [Declared]; otherwise every
// row with a finite inverse).
func (d Transformed) Support() Constraint {
	return predicate{fmt.Sprintf("image of the support of %T", d.Base), func(value *ad.Tensor, i int) bool {
		x := d.Transform.Inverse(rowOf(value, i))
		for _, v := range x.Data() {
			if !isFinite(v) {
				return false
			}
		}
		if b, ok := d.Base.(Declared); ok {
			return b.Support().Contains(x, 0)
		}
		return true
	}}
}

// ParamConstraints returns Base's, when it is [Declared].
func (d Transformed) ParamConstraints() map[string]Constraint {
	if b, ok := d.Base.(Declared); ok {
		return b.ParamConstraints()
	}
	return params{}
}

// rowOf returns row i of t as a new constant [1 x cols] tensor.
func rowOf(t *ad.Tensor, i int) *ad.Tensor {
	cols := t.Cols()
	return t.Tape().FromData(1, cols, t.Data()[i*cols:(i+1)*cols])
}

// Interface checks: every distribution declares its support and its
// parameters' constraints.
var (
	_ Declared = Normal{}
	_ Declared = Bernoulli{}
	_ Declared = Categorical{}
	_ Declared = OneHotCategorical{}
	_ Declared = RelaxedBernoulli{}
	_ Declared = RelaxedOneHotCategorical{}
	_ Declared = Uniform{}
	_ Declared = Delta{}
	_ Declared = Gamma{}
	_ Declared = Beta{}
	_ Declared = Dirichlet{}
	_ Declared = Exponential{}
	_ Declared = LogNormal{}
	_ Declared = Laplace{}
	_ Declared = StudentT{}
	_ Declared = Cauchy{}
	_ Declared = HalfNormal{}
	_ Declared = HalfCauchy{}
	_ Declared = Poisson{}
	_ Declared = MultivariateNormal{}
	_ Declared = MultivariateNormalDiag{}
	_ Declared = Transformed{}
	_ Declared = Binomial{}
	_ Declared = Geometric{}
	_ Declared = NegativeBinomial{}
	_ Declared = Multinomial{}
)
