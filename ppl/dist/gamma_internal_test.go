package dist

import (
	"math"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/backpropq/backpropq/ad"
)

// TestGammaSampleDerivative checks the implicit derivative dz/dα against a
// difference of the quantile function at fixed u = P(α, z), over
// concentrations from 0.01 to 1000 and quantiles from 1e-6 to 1-1e-6,
// through both branches (series below α+1, continued fraction above).
// The quantile is found by bisection to rounding, so a central difference
// with step 1e-4·α is good to about 1e-6.
func TestGammaSampleDerivative(t *testing.T) {
	tp := ad.NewTape()
	for _, a := range []float64{0.01, 0.1, 0.5, 1, 2.5, 10, 100, 1000} {
		psi1 := ad.Digamma(tp.Scalar(a + 1)).Item()
		for _, u := range []float64{1e-6, 0.01, 0.3, 0.5, 0.7, 0.99, 1 - 1e-6} {
			z := gammaQuantile(a, 1, u)
			if z < tiny {
				continue
			}
			h := 1e-4 * a
			want := (gammaQuantile(a+h, 1, u) - gammaQuantile(a-h, 1, u)) / (2 * h)
			got := gammaSampleDerivative(a, z, psi1)
			require.InDeltaf(t, want, got, 1e-5*math.Abs(want)+1e-12, "α %v u %v z %v", a, u, z)
		}
	}
}
