package ad

import "github.com/backpropq/backpropq/internal/par"

// Elementwise work whose function is costly (an exponential, a logarithm,
// a hyperbolic tangent: tens of nanoseconds an element) runs on several
// cores once it spans parallelMinElems elements, cut into ranges of
// multiples of parallelGrain elements (or of whole rows). Each element's
// value depends on its inputs alone, so the result does not depend on the
// cut.
const (
	parallelMinElems = 4096
	parallelGrain    = 512
)

// costly reports whether o's elementwise function costs enough to share
// between cores.
func (o op) costly() bool {
	switch o {
	case opExp, opLog, opLog1p, opSigmoid, opLogSigmoid, opSoftplus, opTanh:
		return true
	}
	return false
}

// parallelParts returns the number of parts to cut costly work over elems
// elements into.
func parallelParts(elems int) int {
	if elems < parallelMinElems {
		return 1
	}
	return min(par.Workers(), elems/parallelGrain)
}
