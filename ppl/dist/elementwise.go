package dist

import (
	"math"

	"github.com/backpropq/backpropq/ad"
)

// maskedLogProb evaluates an elementwise log-density lp on value, as
// [B x D], with -Inf for an element outside the support (in false). lp sees value with the outside elements replaced
// by fallback, a point of the support, so that neither its value nor its
// gradient is NaN there; the mask carries value's provenance.
func maskedLogProb(value *ad.Tensor, rows, cols int, in func(float64) bool, fallback float64, lp func(x *ad.Tensor) *ad.Tensor) *ad.Tensor {
	data, vc := value.Data(), value.Cols()
	return maskedLogProbAt(value, rows, cols, func(i, j int) bool { return in(data[i*vc+j]) }, fallback, lp)
}

// xlogy returns a·log x elementwise for x >= 0, with the limit at x = 0:
// -Inf for a > 0, +Inf for a < 0 and 0 for a = 0. At x = 0 the result is
// a constant, without a gradient.
func xlogy(a, x *ad.Tensor) *ad.Tensor {
	allPositive := true
	for _, v := range x.Data() {
		if !(v > 0) {
			allPositive = false
			break
		}
	}
	if allPositive {
		return ad.Mul(a, ad.Log(x))
	}
	tp := x.Tape()
	rows, cols := shapeOf(a, x)
	av, xv := viewOf(a), viewOf(x)
	positive := constWithProv(tp, rows, cols, x.Provenance(), func(i, j int) float64 { return b2f(xv.at(i, j) > 0) })
	edge := fill(tp, rows, cols, func(i, j int) float64 {
		switch a := av.at(i, j); {
		case a > 0:
			return math.Inf(-1)
		case a < 0:
			return math.Inf(1)
		}
		return 0
	})
	return ad.Where(positive, ad.Mul(a, ad.Log(ad.Where(positive, x, tp.Scalar(1)))), edge)
}

// constOf returns a constant tensor of f applied to t's elements.
func constOf(t *ad.Tensor, f func(float64) float64) *ad.Tensor {
	rows, cols := t.Dims()
	data := t.Data()
	return fill(t.Tape(), rows, cols, func(i, j int) float64 { return f(data[i*cols+j]) })
}

func isNonNegative(v float64) bool { return v >= 0 && !math.IsInf(v, 1) }
func inUnit(v float64) bool        { return v >= 0 && v <= 1 }

func isNonNegativeInteger(v float64) bool {
	return v >= 0 && v == math.Trunc(v) && !math.IsInf(v, 1)
}

const (
	ruleNonNegative = "must be >= 0 and finite"
	ruleUnit        = "must be in [0, 1]"
	ruleCount       = "must be a non-negative integer"
)

// maskedLogProbAt is [maskedLogProb] with a support test that depends on
// the element's position (a bound given by a parameter).
func maskedLogProbAt(value *ad.Tensor, rows, cols int, in func(i, j int) bool, fallback float64, lp func(x *ad.Tensor) *ad.Tensor) *ad.Tensor {
	tp := value.Tape()
	vr, vc := value.Dims()
	allIn := true
	for i := 0; i < vr && allIn; i++ {
		for j := 0; j < vc; j++ {
			if !in(i, j) {
				allIn = false
				break
			}
		}
	}
	if allIn {
		return expand(lp(value), rows, cols)
	}
	inside := constWithProv(tp, vr, vc, value.Provenance(), func(i, j int) float64 { return b2f(in(i, j)) })
	safe := ad.Where(inside, value, tp.Scalar(fallback))
	return ad.Where(inside, expand(lp(safe), rows, cols), tp.Scalar(math.Inf(-1)))
}

// checkElemsAt is checkElems with a test that depends on the position.
func checkElemsAt(dist string, value *ad.Tensor, rule string, ok func(i, j int, v float64) bool) error {
	cols := value.Cols()
	for k, v := range value.Data() {
		if !ok(k/cols, k%cols, v) {
			return &Error{Dist: dist, Name: "value", Rule: rule, Got: v, Row: k / cols, Col: k % cols}
		}
	}
	return nil
}

// sumRows returns the row sums of per-element log-probabilities, [B x 1],
// with -Inf for a row that has a -Inf element, even where another element
// is +Inf (a density's limit at an edge of its support), so that no row
// is NaN.
func sumRows(elems *ad.Tensor) *ad.Tensor {
	sum := ad.RowSum(elems)
	cols := elems.Cols()
	data := elems.Data()
	hasNegInf := func(i int) bool {
		for _, v := range data[i*cols : (i+1)*cols] {
			if math.IsInf(v, -1) {
				return true
			}
		}
		return false
	}
	masked := false
	for i := range elems.Rows() {
		if hasNegInf(i) {
			masked = true
			break
		}
	}
	if !masked {
		return sum
	}
	tp := elems.Tape()
	mask := constWithProv(tp, elems.Rows(), 1, elems.Provenance(), func(i, _ int) float64 { return b2f(!hasNegInf(i)) })
	return ad.Where(mask, sum, tp.Scalar(math.Inf(-1)))
}
