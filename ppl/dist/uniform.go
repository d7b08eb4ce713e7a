package dist

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/backpropq/backpropq/ad"
)

// Uniform is a batch of independent continuous uniform distributions on
// [Low, High], elementwise; Low and High are [B x D] or broadcast to it.
//
// Uniform is [Reparameterized]: RSample returns Low + (High-Low)·u with u
// uniform on [0, 1).
type Uniform struct {
	Low, High *ad.Tensor
}

// Shape returns the broadcast shape of Low and High.
func (d Uniform) Shape() (batch, event int) { return shapeOf(d.Low, d.High) }

// Sample draws a value of shape [Uniform.Shape] without a gradient path.
// With the same source it returns the same numbers as [Uniform.RSample].
func (d Uniform) Sample(rng *rand.Rand) *ad.Tensor {
	rows, cols := d.Shape()
	lo, hi := viewOf(d.Low), viewOf(d.High)
	return fill(d.Low.Tape(), rows, cols, func(i, j int) float64 {
		a, b := lo.at(i, j), hi.at(i, j)
		return a + (b-a)*rng.Float64()
	})
}

// RSample draws Low + (High-Low)·u, differentiable in both bounds.
func (d Uniform) RSample(rng *rand.Rand) *ad.Tensor {
	rows, cols := d.Shape()
	u := fill(d.Low.Tape(), rows, cols, func(int, int) float64 { return rng.Float64() })
	return ad.Add(d.Low, ad.Mul(ad.Sub(d.High, d.Low), u))
}

// LogProb returns Σ_j -log(High_j - Low_j) per row, as [B x 1], or -Inf
// for a row with an element outside [Low, High]. The gradient reaches the
// bounds through the log-width only; the result carries the provenance of
// the bounds and of value.
func (d Uniform) LogProb(value *ad.Tensor) *ad.Tensor {
	tp := value.Tape()
	rows, cols := shapeOf(value, d.Low, d.High)
	x, lo, hi := viewOf(value), viewOf(d.Low), viewOf(d.High)
	inside := constWithProv(tp, rows, cols, value.Provenance(), func(i, j int) float64 {
		v := x.at(i, j)
		return b2f(v >= lo.at(i, j) && v <= hi.at(i, j))
	})
	density := expand(ad.Neg(ad.Log(ad.Sub(d.High, d.Low))), rows, cols)
	return ad.RowSum(ad.Where(inside, density, tp.Scalar(math.Inf(-1))))
}

// Mean returns (Low + High) / 2, [B x D].
func (d Uniform) Mean() *ad.Tensor {
	rows, cols := d.Shape()
	return expand(ad.Scale(ad.Add(d.Low, d.High), 0.5), rows, cols)
}

// Entropy returns Σ_j log(High_j - Low_j) per row, as [B x 1].
func (d Uniform) Entropy() *ad.Tensor {
	rows, cols := d.Shape()
	return ad.RowSum(expand(ad.Log(ad.Sub(d.High, d.Low)), rows, cols))
}

// Validate reports nil bounds, shapes that do not broadcast, non-finite
// bounds and a High that is not above Low.
func (d Uniform) Validate() error {
	rows, cols, err := checkParams("Uniform", param{"low", d.Low}, param{"high", d.High})
	if err != nil {
		return err
	}
	if err := checkElems("Uniform", "low", d.Low, ruleFinite, isFinite); err != nil {
		return err
	}
	if err := checkElems("Uniform", "high", d.High, ruleFinite, isFinite); err != nil {
		return err
	}
	lo, hi := viewOf(d.Low), viewOf(d.High)
	for i := 0; i < rows; i++ {
		for j := 0; j < cols; j++ {
			if a, b := lo.at(i, j), hi.at(i, j); !(b > a) {
				r, c := min(i, d.High.Rows()-1), min(j, d.High.Cols()-1)
				return &Error{Dist: "Uniform", Name: "high", Rule: fmt.Sprintf("must be > low (%v)", a), Got: b, Row: r, Col: c}
			}
		}
	}
	return nil
}

// ValidateValue reports a value of the wrong shape or outside [Low, High].
func (d Uniform) ValidateValue(value *ad.Tensor) error {
	rows, cols := d.Shape()
	if err := checkValueShape("Uniform", value, d.Low, rows, cols, false); err != nil {
		return err
	}
	x, lo, hi := viewOf(value), viewOf(d.Low), viewOf(d.High)
	for i := 0; i < x.rows; i++ {
		for j := 0; j < x.cols; j++ {
			v, a, b := x.at(i, j), lo.at(i, j), hi.at(i, j)
			if !(v >= a && v <= b) {
				return &Error{Dist: "Uniform", Name: "value", Rule: fmt.Sprintf("must be in [low, high] = [%v, %v]", a, b), Got: v, Row: i, Col: j}
			}
		}
	}
	return nil
}
