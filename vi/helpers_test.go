package vi_test

import (
	"math"

	"github.com/backpropq/backpropq/ad"
	"github.com/backpropq/backpropq/ppl"
	"github.com/backpropq/backpropq/ppl/dist"
)

// conjugate is the Normal-Normal model z ~ N(mu0, s0²), x | z ~ N(z, s²)
// with one observation x, whose evidence and posterior are known.
type conjugate struct {
	mu0, s0, s, x float64
}

var conj = conjugate{mu0: 0.5, s0: 1.5, s: 0.8, x: 2}

// model samples z for every row and observes x, tiled to the batch.
func (c conjugate) model(ctx *ppl.Ctx) {
	tp := ctx.Tape()
	z := ppl.Sample(ctx, "z", dist.Normal{Loc: ppl.Expand(ctx, tp.Scalar(c.mu0)), Scale: ppl.Expand(ctx, tp.Scalar(c.s0))})
	ppl.Observe(ctx, "x", dist.Normal{Loc: z, Scale: tp.Scalar(c.s)}, ppl.Tile(ctx, tp.Scalar(c.x)))
}

// guide returns the guide q(z) = N(m, sq²).
func (c conjugate) guide(m, sq float64) ppl.Model {
	return func(ctx *ppl.Ctx) {
		tp := ctx.Tape()
		ppl.Sample(ctx, "z", dist.Normal{Loc: ppl.Expand(ctx, tp.Scalar(m)), Scale: ppl.Expand(ctx, tp.Scalar(sq))})
	}
}

// logEvidence returns log p(x) = log N(x; mu0, s0² + s²).
func (c conjugate) logEvidence() float64 {
	return logNormal(c.x, c.mu0, math.Sqrt(c.s0*c.s0+c.s*c.s))
}

// posterior returns the mean and standard deviation of p(z | x).
func (c conjugate) posterior() (m, sd float64) {
	v := 1 / (1/(c.s0*c.s0) + 1/(c.s*c.s))
	return v * (c.mu0/(c.s0*c.s0) + c.x/(c.s*c.s)), math.Sqrt(v)
}

// elbo returns the ELBO of the guide N(m, sq²) in closed form.
func (c conjugate) elbo(m, sq float64) float64 {
	lik := -0.5*math.Log(2*math.Pi*c.s*c.s) - ((c.x-m)*(c.x-m)+sq*sq)/(2*c.s*c.s)
	return lik - c.kl(m, sq)
}

// kl returns KL(N(m, sq²) || N(mu0, s0²)).
func (c conjugate) kl(m, sq float64) float64 {
	return math.Log(c.s0/sq) + (sq*sq+(m-c.mu0)*(m-c.mu0))/(2*c.s0*c.s0) - 0.5
}

// elboGrad returns the gradient of -ELBO with respect to m and log sq.
func (c conjugate) elboGrad(m, sq float64) (dm, dlogsq float64) {
	dm = -(c.x-m)/(c.s*c.s) + (m-c.mu0)/(c.s0*c.s0)
	dlogsq = sq*sq/(c.s*c.s) - 1 + sq*sq/(c.s0*c.s0)
	return dm, dlogsq
}

func logNormal(x, m, sd float64) float64 {
	d := (x - m) / sd
	return -0.5*d*d - math.Log(sd) - 0.5*math.Log(2*math.Pi)
}

// meanSE returns the mean of xs and its standard error.
func meanSE(xs []float64) (mean, se float64) {
	n := float64(len(xs))
	for _, v := range xs {
		mean += v
	}
	mean /= n
	var ss float64
	for _, v := range xs {
		ss += (v - mean) * (v - mean)
	}
	return mean, math.Sqrt(ss / (n - 1) / n)
}

// varianceSE returns the sample variance of xs and its standard error,
// sqrt((m4 - m2²)/n) from the fourth central moment, which holds for
// rows that are not Gaussian.
func varianceSE(xs []float64) (v, se float64) {
	mean, _ := meanSE(xs)
	n := float64(len(xs))
	var m2, m4 float64
	for _, x := range xs {
		d := (x - mean) * (x - mean)
		m2 += d
		m4 += d * d
	}
	m2 /= n
	m4 /= n
	return m2 * n / (n - 1), math.Sqrt((m4 - m2*m2) / n)
}

// bern returns a Bernoulli with logits a·t + b, for a [B x D] t.
func bern(t *ad.Tensor, a, b float64) dist.Bernoulli {
	return dist.BernoulliLogits(ad.Add(ad.Scale(t, a), t.Tape().Scalar(b)))
}
