package ad

import (
	"fmt"

	"github.com/backpropq/backpropq/ad/internal/vmath"
)

// SigmoidValues sets dst[i] = 1/(1 + exp(-x[i])) for every element of x,
// outside any tape, for code that needs probabilities from log-odds
// without a gradient (a sampler, say). Where the CPU has AVX2 and FMA it
// runs the vector kernel of [Softplus]'s derivative, within 3 ulps of the
// exact value; elsewhere, and beyond |x| of about 708, it uses math.Exp.
// Each result depends on its own x[i] alone, never on the length of x.
// ±Inf and NaN give 1, 0 and NaN. It panics if dst is shorter than x;
// dst must not overlap x.
func SigmoidValues(dst, x []float64) {
	if len(dst) < len(x) {
		panic(fmt.Sprintf("ad: SigmoidValues: %d destinations for %d values", len(dst), len(x)))
	}
	var sp [256]float64
	for lo := 0; lo < len(x); lo += len(sp) {
		hi := min(lo+len(sp), len(x))
		vmath.SoftplusSigmoid(x[lo:hi], sp[:hi-lo], dst[lo:hi])
	}
}
