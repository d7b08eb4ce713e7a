package dist

import (
	"math"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/backpropq/backpropq/ad"
)

// The pathwise gradient of E[f(z)], z ~ Normal(μ, σ), estimated by
// backpropagating through RSample, equals the analytic gradient within
// kSE standard errors of the per-draw gradients.
func TestNormalPathwiseGradient(t *testing.T) {
	const n = 20000
	cases := []struct {
		name      string
		f         func(z *ad.Tensor) *ad.Tensor
		df        func(z float64) float64 // f'(z), for the per-draw gradients
		dmu, dsig func(mu, sigma float64) float64
	}{
		{"square", ad.Square, func(z float64) float64 { return 2 * z },
			func(mu, _ float64) float64 { return 2 * mu }, func(_, s float64) float64 { return 2 * s }},
		{"exp", ad.Exp, math.Exp,
			func(mu, s float64) float64 { return math.Exp(mu + s*s/2) }, func(mu, s float64) float64 { return s * math.Exp(mu+s*s/2) }},
	}
	for _, c := range cases {
		for _, p := range []struct{ mu, sigma float64 }{{0.7, 1.3}, {-1, 0.2}} {
			mu, sigma := newVar(1, 1, p.mu), newVar(1, 1, p.sigma)
			tp := ad.NewTape()
			// The [1x1] parameters are broadcast to n rows so that RSample
			// draws n independent values.
			loc := ad.Add(tp.Var(mu), tp.Zeros(n, 1))
			z := Normal{Loc: loc, Scale: tp.Var(sigma)}.RSample(newRNG())
			tp.Backward(ad.Mean(c.f(z)))

			// Per-draw gradients: f'(z) and f'(z)·ε with ε = (z-μ)/σ.
			gMu, gSig := make([]float64, n), make([]float64, n)
			for i, v := range z.Data() {
				gMu[i] = c.df(v)
				gSig[i] = c.df(v) * (v - p.mu) / p.sigma
			}
			sMu, sSig := statsOf(gMu), statsOf(gSig)
			// Backward computes exactly the mean of the per-draw gradients.
			require.InDelta(t, sMu.mean, mu.Grad.At(0, 0), 1e-9*(1+math.Abs(sMu.mean)))
			require.InDelta(t, sSig.mean, sigma.Grad.At(0, 0), 1e-9*(1+math.Abs(sSig.mean)))
			// And its expectation is the analytic gradient.
			require.InDeltaf(t, c.dmu(p.mu, p.sigma), mu.Grad.At(0, 0), kSE*math.Sqrt(sMu.variance/n), "%s %+v d/dμ", c.name, p)
			require.InDeltaf(t, c.dsig(p.mu, p.sigma), sigma.Grad.At(0, 0), kSE*math.Sqrt(sSig.variance/n), "%s %+v d/dσ", c.name, p)
		}
	}
}
