package dist

import (
	"fmt"
	"math"

	"github.com/backpropq/backpropq/ad"
)

// Constraint is a set of values: the support of a distribution or the
// domain of a parameter. Rows are checked one at a time, since a row may
// be one event (a point of the simplex) or a row of a matrix (of a lower
// Cholesky factor).
type Constraint interface {
	// Contains reports whether row i of value lies in the set.
	Contains(value *ad.Tensor, i int) bool
	// String names the set, e.g. "positive" or "interval(0, 1)".
	String() string
}

// Bijector is a continuous [Constraint] that is the image of a bijection
// from unconstrained real numbers: what [BijectTo] returns.
type Bijector interface {
	Constraint
	// Bijection returns a [Transform] from unconstrained values onto the
	// set.
	Bijection() Transform
}

// BijectTo returns the bijection from unconstrained values onto c, the
// transform that a parameter constrained to c is stored through. It
// returns an error for a constraint that is not a [Bijector] (a discrete
// set).
func BijectTo(c Constraint) (Transform, error) {
	b, ok := c.(Bijector)
	if !ok {
		return nil, fmt.Errorf("dist: no bijection onto the constraint %v", c)
	}
	return b.Bijection(), nil
}

// Check returns nil if every row of value lies in c, or an *[Error] naming
// the first row (and, for an elementwise constraint, the element) that
// does not.
func Check(c Constraint, value *ad.Tensor) error {
	for i := range value.Rows() {
		if c.Contains(value, i) {
			continue
		}
		rule := "must lie in " + c.String()
		if e, ok := c.(interface{ element(float64) bool }); ok {
			cols := value.Cols()
			for j, v := range value.Data()[i*cols : (i+1)*cols] {
				if !e.element(v) {
					return &Error{Dist: "constraint", Name: "value", Rule: rule, Got: v, Row: i, Col: j}
				}
			}
		}
		return wholeErr("constraint", "value", "row %d %s", i, rule)
	}
	return nil
}

// elementwise is a constraint on each element separately.
type elementwise struct {
	name string
	ok   func(float64) bool
	// to maps unconstrained reals onto the set; nil for a discrete set.
	to func() Transform
}

func (c elementwise) Contains(value *ad.Tensor, i int) bool {
	cols := value.Cols()
	for _, v := range value.Data()[i*cols : (i+1)*cols] {
		if !c.ok(v) {
			return false
		}
	}
	return true
}

func (c elementwise) String() string { return c.name }

func (c elementwise) element(v float64) bool { return c.ok(v) }

// continuous is an elementwise constraint with a bijection onto it.
type continuous struct{ elementwise }

func (c continuous) Bijection() Transform { return c.to() }

// The constraints of the distributions' supports and parameters.
var (
	// Real is the set of finite real numbers.
	Real Constraint = continuous{elementwise{"real", isFinite, func() Transform { return Identity{} }}}
	// Positive is the set of finite numbers > 0.
	Positive Constraint = continuous{elementwise{"positive", isPositive, func() Transform { return Exp{} }}}
	// NonNegative is the set of finite numbers >= 0; its bijection is
	// that of Positive.
	NonNegative Constraint = continuous{elementwise{"non-negative", isNonNegative, func() Transform { return Exp{} }}}
	// UnitInterval is [0, 1]; its bijection is the logistic sigmoid onto
	// (0, 1).
	UnitInterval Constraint = continuous{elementwise{"unit interval", inUnit, func() Transform { return Sigmoid{} }}}
	// Boolean is the set {0, 1}.
	Boolean Constraint = elementwise{name: "boolean", ok: func(v float64) bool { return v == 0 || v == 1 }}
	// NonNegativeInteger is the set {0, 1, 2, ...}.
	NonNegativeInteger Constraint = elementwise{name: "non-negative integer", ok: isNonNegativeInteger}
	// Simplex is the set of rows of numbers >= 0 summing to 1 (within
	// 1e-6); its bijection is [StickBreaking].
	Simplex Constraint = simplex{}
	// LowerCholesky is the set of square lower-triangular matrices with a
	// diagonal > 0, the Cholesky factors of positive definite matrices;
	// its bijection is [LowerCholeskyTransform].
	LowerCholesky Constraint = lowerCholesky{}
)

// GreaterThan returns the set of finite numbers > lower; its bijection is
// lower + exp(x).
func GreaterThan(lower float64) Constraint {
	return continuous{elementwise{fmt.Sprintf("greater than %v", lower), func(v float64) bool { return v > lower && isFinite(v) },
		func() Transform { return Compose{Exp{}, Affine{Loc: lower, Scale: 1}} }}}
}

// Interval returns the closed interval [lower, upper]; its bijection is
// lower + (upper-lower)·sigmoid(x) onto the open interval. It panics if
// lower >= upper.
func Interval(lower, upper float64) Constraint {
	if !(lower < upper) {
		panic(fmt.Sprintf("dist: Interval(%v, %v): lower must be below upper", lower, upper))
	}
	return continuous{elementwise{fmt.Sprintf("interval(%v, %v)", lower, upper), func(v float64) bool { return v >= lower && v <= upper },
		func() Transform { return Compose{Sigmoid{}, Affine{Loc: lower, Scale: upper - lower}} }}}
}

// IntegerInterval returns the set of integers in [lower, upper].
func IntegerInterval(lower, upper int) Constraint {
	return elementwise{name: fmt.Sprintf("integers in [%d, %d]", lower, upper), ok: func(v float64) bool {
		return v >= float64(lower) && v <= float64(upper) && v == math.Trunc(v)
	}}
}

// OneHotRows is the set of rows with exactly one 1 and 0s elsewhere.
var OneHotRows Constraint = oneHotRows{}

type simplex struct{}

func (simplex) Contains(value *ad.Tensor, i int) bool {
	cols := value.Cols()
	return simplexRowError(value.Data()[i*cols:(i+1)*cols]) == ""
}
func (simplex) String() string       { return "simplex" }
func (simplex) Bijection() Transform { return StickBreaking{} }

type lowerCholesky struct{}

func (lowerCholesky) Contains(value *ad.Tensor, i int) bool {
	cols := value.Cols()
	if value.Rows() != cols {
		return false
	}
	for j, v := range value.Data()[i*cols : (i+1)*cols] {
		switch {
		case j < i && !isFinite(v), j == i && !isPositive(v), j > i && v != 0:
			return false
		}
	}
	return true
}
func (lowerCholesky) String() string       { return "lower Cholesky factor" }
func (lowerCholesky) Bijection() Transform { return LowerCholeskyTransform{} }

type oneHotRows struct{}

func (oneHotRows) Contains(value *ad.Tensor, i int) bool {
	cols := value.Cols()
	return checkOneHotRow("", value.Data()[i*cols:(i+1)*cols], i) == nil
}
func (oneHotRows) String() string { return "one-hot rows" }

// Declared is a [Distribution] that declares its support and the domains
// of its parameters, named as in its validation errors. Every
// distribution of this package implements it.
type Declared interface {
	Distribution
	// Support returns the set the values lie in.
	Support() Constraint
	// ParamConstraints returns the domain of each parameter by name.
	ParamConstraints() map[string]Constraint
}
