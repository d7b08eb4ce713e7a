package dist

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/backpropq/backpropq/ad"
)

// Delta is the point mass at Value, [B x D]: every sample equals Value.
// It serves as a guide for MAP or maximum-likelihood estimation of a
// latent variable, and to record a deterministic value as a sample site.
//
// Delta is [Reparameterized]: RSample returns Value itself, so gradients
// flow to whatever Value is computed from.
type Delta struct {
	Value *ad.Tensor
}

// Shape returns the shape of Value.
func (d Delta) Shape() (batch, event int) { return shapeOf(d.Value) }

// Sample returns a copy of Value without a gradient path or provenance.
func (d Delta) Sample(*rand.Rand) *ad.Tensor { return d.Value.Tape().Const(d.Value.Value()) }

// RSample returns Value itself (no copy), which carries Value's gradient
// path and provenance; the random source is not used.
func (d Delta) RSample(*rand.Rand) *ad.Tensor { return d.Value }

// LogProb returns, per row, 0 where every column of value equals Value
// and -Inf elsewhere, as [B x 1] (a [1 x D] Value is compared with every
// row of value). The result has no gradient and carries the provenance of
// Value and of value.
func (d Delta) LogProb(value *ad.Tensor) *ad.Tensor {
	rows, cols := shapeOf(value, d.Value)
	x, at := viewOf(value), viewOf(d.Value)
	prov := d.Value.Provenance().Union(value.Provenance())
	return constWithProv(value.Tape(), rows, 1, prov, func(i, _ int) float64 {
		for j := 0; j < cols; j++ {
			if x.at(i, j) != at.at(i, j) {
				return math.Inf(-1)
			}
		}
		return 0
	})
}

// Mean returns Value.
func (d Delta) Mean() *ad.Tensor { return d.Value }

// Entropy returns zeros, [B x 1].
func (d Delta) Entropy() *ad.Tensor { return d.Value.Tape().Zeros(d.Value.Rows(), 1) }

// Validate reports a nil or non-finite Value.
func (d Delta) Validate() error {
	if d.Value == nil {
		return wholeErr("Delta", "point (Value)", "is nil")
	}
	return checkElems("Delta", "point (Value)", d.Value, ruleFinite, isFinite)
}

// ValidateValue reports a value of the wrong shape or one that differs
// from Value, the only point of the support.
func (d Delta) ValidateValue(value *ad.Tensor) error {
	rows, cols := d.Shape()
	if err := checkValueShape("Delta", value, d.Value, rows, cols, false); err != nil {
		return err
	}
	x, at := viewOf(value), viewOf(d.Value)
	for i := 0; i < x.rows; i++ {
		for j := 0; j < x.cols; j++ {
			if v, want := x.at(i, j), at.at(i, j); v != want {
				return &Error{Dist: "Delta", Name: "value", Rule: fmt.Sprintf("must equal the point of the Delta (%v)", want), Got: v, Row: i, Col: j}
			}
		}
	}
	return nil
}
