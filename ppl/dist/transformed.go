package dist

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/backpropq/backpropq/ad"
)

// Transformed is the distribution of y = T(x) for x drawn from Base and T
// the bijection Transform: log p(y) = log p_Base(T⁻¹(y)) - log|det ∂T/∂x|.
// Exp of a Normal is a log-normal, an [Affine] of a standard distribution
// adds a location and scale, [StickBreaking] of a Normal over K-1 columns
// is a logistic-normal on the simplex.
//
// Support: the image of Base's support under Transform.
//
// Transformed is [Reparameterized] when Base is: RSample returns
// T(Base.RSample). A value that Transform's inverse maps to a non-finite
// number (outside the image) has log-probability -Inf.
type Transformed struct {
	Base      Distribution
	Transform Transform
}

// Shape returns Base's rows and Transform's output columns.
func (d Transformed) Shape() (batch, event int) {
	rows, cols := d.Base.Shape()
	return rows, d.Transform.ForwardCols(cols)
}

// Sample returns T(x) for x from Base.Sample, without a gradient path.
func (d Transformed) Sample(rng *rand.Rand) *ad.Tensor {
	x := d.Base.Sample(rng)
	return x.Tape().Const(d.Transform.Forward(x).Value())
}

// RSample returns T(x) for x from Base's RSample. It panics if Base is not
// [Reparameterized].
func (d Transformed) RSample(rng *rand.Rand) *ad.Tensor {
	r, ok := d.Base.(Reparameterized)
	if !ok {
		panic(fmt.Sprintf("dist: Transformed.RSample: base %T is not Reparameterized", d.Base))
	}
	return d.Transform.Forward(r.RSample(rng))
}

// LogProb returns log p_Base(T⁻¹(y)) - log|det ∂T/∂x| per row, as
// [B x 1], or -Inf for a row whose inverse is not finite.
func (d Transformed) LogProb(value *ad.Tensor) *ad.Tensor {
	x := d.Transform.Inverse(value)
	lp := ad.Sub(d.Base.LogProb(x), d.Transform.LogAbsDetJacobian(x, value))
	return maskRows(lp, x, func(row []float64) bool {
		for _, v := range row {
			if !isFinite(v) {
				return false
			}
		}
		return true
	})
}

// Validate reports a nil Base or Transform, and Base's own errors.
func (d Transformed) Validate() error {
	switch {
	case d.Base == nil:
		return wholeErr("Transformed", "base", "is nil")
	case d.Transform == nil:
		return wholeErr("Transformed", "transform", "is nil")
	}
	return d.Base.Validate()
}

// ValidateValue reports a value of the wrong shape, one the inverse maps
// to a non-finite number, and one whose inverse Base rejects.
func (d Transformed) ValidateValue(value *ad.Tensor) error {
	if value == nil {
		return wholeErr("Transformed", "value", "is nil")
	}
	rows, cols := d.Shape()
	if r, c := value.Dims(); c != cols || (r != rows && rows != 1) {
		return wholeErr("Transformed", "value", "must be [%dx%d], got [%dx%d]", rows, cols, r, c)
	}
	x := d.Transform.Inverse(value)
	for k, v := range x.Data() {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return wholeErr("Transformed", "value", "must lie in the transform's image; row %d does not", k/x.Cols())
		}
	}
	return d.Base.ValidateValue(x)
}
