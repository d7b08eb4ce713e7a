package dist

import (
	"errors"
	"math"
	"testing"

	"github.com/backpropq/backpropq/ad"
)

// fuzzDist builds distribution kind (mod the number of kinds) from
// arbitrary numbers, as a user might.
func fuzzDist(tp *ad.Tape, kind uint8, a, b, c float64) Declared {
	s := tp.Scalar
	switch kind % 20 {
	case 0:
		return Normal{Loc: s(a), Scale: s(b)}
	case 1:
		return Gamma{Concentration: s(a), Rate: s(b)}
	case 2:
		return Beta{Alpha: s(a), Beta: s(b)}
	case 3:
		return Exponential{Rate: s(a)}
	case 4:
		return LogNormal{Loc: s(a), Scale: s(b)}
	case 5:
		return Laplace{Loc: s(a), Scale: s(b)}
	case 6:
		return StudentT{Df: s(a), Loc: s(b), Scale: s(c)}
	case 7:
		return Cauchy{Loc: s(a), Scale: s(b)}
	case 8:
		return HalfNormal{Scale: s(a)}
	case 9:
		return HalfCauchy{Scale: s(a)}
	case 10:
		return Poisson{Rate: s(a)}
	case 11:
		return Binomial{TotalCount: s(a), Probs: s(b)}
	case 12:
		return Geometric{Probs: s(a)}
	case 13:
		return NegativeBinomial{TotalCount: s(a), Probs: s(b)}
	case 14:
		return Dirichlet{Concentration: row(tp, a, b, c)}
	case 15:
		return MultivariateNormal{Loc: row(tp, a, b), ScaleTril: tp.FromData(2, 2, []float64{c, 0, a, b})}
	case 16:
		return Multinomial{TotalCount: int(math.Mod(a, 50)), Logits: row(tp, a, b, c)}
	case 17:
		return BernoulliProbs(s(a))
	case 18:
		return Uniform{Low: s(a), High: s(b)}
	}
	return Binomial{TotalCount: s(a), Logits: s(b)}
}

// moderate reports whether every number is 0 or of magnitude within
// [1e-50, 1e50], where a valid distribution's log-probability of a valid
// value must be a number (not NaN) in floating point.
func moderate(xs ...float64) bool {
	for _, x := range xs {
		if x != 0 && !(math.Abs(x) >= 1e-50 && math.Abs(x) <= 1e50) {
			return false
		}
	}
	return true
}

// FuzzDistribution checks that no parameters make Validate, LogProb or
// ValidateValue panic, that Validate's errors are *Error values naming a
// declared parameter, and that a valid value of a valid distribution has
// a log-probability that is not NaN (for moderate numbers).
func FuzzDistribution(f *testing.F) {
	for kind := range uint8(20) {
		f.Add(kind, 0.5, 2.0, 1.5, 1.0)
		f.Add(kind, -1.0, 0.0, math.NaN(), 0.0)
		f.Add(kind, 1e-300, math.Inf(1), 3.0, -2.0)
	}
	f.Fuzz(func(t *testing.T, kind uint8, a, b, c, x float64) {
		tp := ad.NewTape()
		d := fuzzDist(tp, kind, a, b, c)
		err := d.Validate()
		if err != nil {
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("%T: Validate returned %v, not an *Error", d, err)
			}
			if _, ok := d.ParamConstraints()[e.Name]; !ok && e.Name != "total_count" {
				t.Fatalf("%T: Validate names %q, not a parameter of %v", d, e.Name, d.ParamConstraints())
			}
			return
		}
		_, cols := d.Shape()
		v := tp.Full(1, cols, x)
		if _, ok := d.(Multinomial); ok {
			v = tp.FromData(1, cols, append([]float64{x}, make([]float64, cols-1)...))
		}
		lp := d.LogProb(v).Item()
		if d.ValidateValue(v) == nil && math.IsNaN(lp) && moderate(a, b, c, x) {
			t.Fatalf("%T(%v, %v, %v): LogProb(%v) is NaN", d, a, b, c, x)
		}
	})
}

// FuzzMultivariateNormalCovariance checks that any covariance gives a
// distribution or an *Error naming "covariance", never a panic.
func FuzzMultivariateNormalCovariance(f *testing.F) {
	f.Add(1.0, 0.5, 2.0)
	f.Add(1.0, 2.0, 1.0)
	f.Add(math.NaN(), 0.0, -1.0)
	f.Fuzz(func(t *testing.T, a, b, c float64) {
		tp := ad.NewTape()
		_, err := MultivariateNormalCovariance(row(tp, 0, 0), tp.FromData(2, 2, []float64{a, b, b, c}))
		var e *Error
		if err != nil && (!errors.As(err, &e) || e.Name != "covariance") {
			t.Fatalf("error %v does not name the covariance", err)
		}
	})
}
