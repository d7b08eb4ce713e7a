package dist

import (
	"errors"
	"fmt"
	"math"

	"github.com/backpropq/backpropq/ad"
)

// Error is the error returned by Validate and ValidateValue: which
// distribution, which parameter or value, the rule it breaks and, for an
// element that breaks it, the offending number and its position. Use
// [errors.As] to inspect it; its message reads, for example,
//
//	dist: Bernoulli: value must be 0 or 1, got 0.5 at row 2, column 7
type Error struct {
	// Dist is the distribution's type name, e.g. "Normal".
	Dist string
	// Name is the parameter ("scale", "logits", ...) or "value".
	Name string
	// Rule says what must hold, e.g. "must be > 0 and finite".
	Rule string
	// Got is the offending element; meaningful when Row >= 0.
	Got float64
	// Row and Col locate the offending element in the parameter's or the
	// value's own shape; both are -1 when the error is not about one
	// element (a nil tensor, a shape mismatch).
	Row, Col int
}

// Error returns the message described on [Error].
func (e *Error) Error() string {
	if e.Row < 0 {
		return fmt.Sprintf("dist: %s: %s %s", e.Dist, e.Name, e.Rule)
	}
	return fmt.Sprintf("dist: %s: %s %s, got %v at row %d, column %d", e.Dist, e.Name, e.Rule, e.Got, e.Row, e.Col)
}

// ErrNoKL is wrapped by the error of [KL] for a pair of distributions
// without a closed-form divergence.
var ErrNoKL = errors.New("no closed-form KL divergence")

func wholeErr(dist, name, rule string, args ...any) *Error {
	return &Error{Dist: dist, Name: name, Rule: fmt.Sprintf(rule, args...), Row: -1, Col: -1}
}

// param is a named tensor parameter of a distribution for validation.
type param struct {
	name string
	t    *ad.Tensor
}

// checkParams reports a nil parameter, parameters on different tapes, or
// parameter shapes that do not broadcast, and returns the common shape.
func checkParams(dist string, ps ...param) (rows, cols int, err error) {
	for _, p := range ps {
		if p.t == nil {
			return 0, 0, wholeErr(dist, p.name, "is nil")
		}
	}
	first := ps[0]
	rows, cols = first.t.Dims()
	for _, p := range ps[1:] {
		if p.t.Tape() != first.t.Tape() {
			return 0, 0, wholeErr(dist, p.name, "is on another tape than %s", first.name)
		}
		r, c := p.t.Dims()
		nr, okr := broadcastDim(rows, r)
		nc, okc := broadcastDim(cols, c)
		if !okr || !okc {
			return 0, 0, wholeErr(dist, p.name, "is [%dx%d], which does not broadcast with %s [%dx%d]",
				r, c, first.name, rows, cols)
		}
		rows, cols = nr, nc
	}
	return rows, cols, nil
}

// checkElems reports the first element of t, in row-major order, for
// which ok is false.
func checkElems(dist, name string, t *ad.Tensor, rule string, ok func(float64) bool) error {
	cols := t.Cols()
	for k, v := range t.Data() {
		if !ok(v) {
			return &Error{Dist: dist, Name: name, Rule: rule, Got: v, Row: k / cols, Col: k % cols}
		}
	}
	return nil
}

func isFinite(v float64) bool   { return !math.IsInf(v, 0) && !math.IsNaN(v) }
func isPositive(v float64) bool { return v > 0 && !math.IsInf(v, 1) }

const (
	ruleFinite   = "must be finite"
	rulePositive = "must be > 0 and finite"
)

// checkValueShape reports a nil value, a value on another tape than the
// parameters, or a value whose shape the distribution's [rows x cols]
// shape does not broadcast to. With exactCols the value must have exactly
// cols columns.
func checkValueShape(dist string, value, anyParam *ad.Tensor, rows, cols int, exactCols bool) error {
	if value == nil {
		return wholeErr(dist, "value", "is nil")
	}
	if anyParam == nil {
		return wholeErr(dist, "value", "cannot be checked: the distribution has a nil parameter")
	}
	if value.Tape() != anyParam.Tape() {
		return wholeErr(dist, "value", "is on another tape than the parameters")
	}
	r, c := value.Dims()
	okRows := r == rows || rows == 1
	okCols := c == cols || (cols == 1 && !exactCols)
	if !okRows || !okCols {
		return wholeErr(dist, "value", "must be [%dx%d] (or broadcast from it), got [%dx%d]", rows, cols, r, c)
	}
	return nil
}
