package ppl

import (
	"github.com/backpropq/backpropq/ad"
)

// Lift runs fn, a computation in plain Go on the values of inputs (reading
// them with At or Data, building its result with the tape's FromData, say),
// and returns fn's result with no gradient path and with the union of the
// inputs' provenance. Values read out of tensors into Go lose their
// provenance; Lift gives it back, so that a cost computed in Go is reached
// by the sample sites it was computed from:
//
//	dist := ppl.Lift(func(in ...*ad.Tensor) *ad.Tensor {
//		b := in[0]
//		out := make([]float64, b.Rows())
//		for r := range out {
//			out[r] = hamming(b, r, target)
//		}
//		return b.Tape().FromData(b.Rows(), 1, out)
//	}, bits)
//	ppl.Cost(ctx, "hamming", dist)
//
// Lift panics if inputs is empty, if fn returns nil, or if its result is on
// another tape than the inputs'.
func Lift(fn func(inputs ...*ad.Tensor) *ad.Tensor, inputs ...*ad.Tensor) *ad.Tensor {
	if len(inputs) == 0 {
		panic("ppl: Lift: no inputs")
	}
	var prov ad.Provenance
	for _, in := range inputs {
		prov = prov.Union(in.Provenance())
	}
	out := fn(inputs...)
	if out == nil {
		panic("ppl: Lift: the function returned nil")
	}
	tp := inputs[0].Tape()
	if out.Tape() != tp {
		panic("ppl: Lift: the function's result is on another tape than its inputs")
	}
	return tp.WithProvenance(ad.StopGradient(out), prov)
}
