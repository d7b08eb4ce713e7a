package dist

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
	"gonum.org/v1/gonum/integrate/quad"
	"gonum.org/v1/gonum/mat"
	"gonum.org/v1/gonum/mathext"

	"github.com/backpropq/backpropq/ad"
)

// kSE is the number of standard errors a Monte Carlo estimate may stray
// from its expectation; with a fixed seed the tests are deterministic, and
// 5 SE would fail by chance with probability about 6e-7 per check.
const kSE = 5

func newRNG() *rand.Rand { return rand.New(rand.NewPCG(1, 2)) }

// repeatRows returns an [n x len(row)] tensor whose rows all equal row.
func repeatRows(tp *ad.Tape, n int, row ...float64) *ad.Tensor {
	data := make([]float64, 0, n*len(row))
	for range n {
		data = append(data, row...)
	}
	return tp.FromData(n, len(row), data)
}

func row(tp *ad.Tape, v ...float64) *ad.Tensor { return tp.FromData(1, len(v), v) }

func col(tp *ad.Tape, v ...float64) *ad.Tensor { return tp.FromData(len(v), 1, v) }

// column returns column j of t.
func column(t *ad.Tensor, j int) []float64 {
	out := make([]float64, t.Rows())
	for i := range out {
		out[i] = t.At(i, j)
	}
	return out
}

// sampleStats holds the sample mean and variance of draws with the
// standard errors of both, the variance's from the sample fourth central
// moment: Var(s²) ≈ (m4 - s⁴)/n.
type sampleStats struct {
	mean, variance, seVar float64
	n                     int
}

func statsOf(xs []float64) sampleStats {
	n := float64(len(xs))
	mean := 0.0
	for _, x := range xs {
		mean += x
	}
	mean /= n
	m2, m4 := 0.0, 0.0
	for _, x := range xs {
		d := (x - mean) * (x - mean)
		m2 += d
		m4 += d * d
	}
	m2 /= n
	m4 /= n
	return sampleStats{mean: mean, variance: m2, seVar: math.Sqrt(max(m4-m2*m2, 0) / n), n: len(xs)}
}

// requireMoments checks the sample mean and variance of xs against the
// true mean and variance within kSE standard errors.
func requireMoments(t *testing.T, xs []float64, mean, variance float64, msg string) {
	t.Helper()
	s := statsOf(xs)
	seMean := math.Sqrt(variance / float64(s.n))
	require.InDeltaf(t, mean, s.mean, kSE*seMean+1e-12, "%s: mean", msg)
	require.InDeltaf(t, variance, s.variance, kSE*s.seVar+1e-12, "%s: variance", msg)
}

// requireFraction checks an empirical frequency against a probability.
func requireFraction(t *testing.T, want float64, hits, n int, msg string, args ...any) {
	t.Helper()
	se := math.Sqrt(want * (1 - want) / float64(n))
	require.InDeltaf(t, want, float64(hits)/float64(n), kSE*se+1e-12, msg, args...)
}

// lossFunc builds a scalar loss on tp from tensors bound to the Vars.
type lossFunc func(tp *ad.Tape, params []*ad.Tensor) *ad.Tensor

// weighted returns Σ w ⊙ out with fixed pseudo-random weights, a generic
// linear functional of out, so that every element's gradient is checked.
func weighted(out *ad.Tensor) *ad.Tensor {
	rng := rand.New(rand.NewPCG(7, 8))
	r, c := out.Dims()
	w := make([]float64, r*c)
	for i := range w {
		w[i] = rng.Float64()*2 - 1
	}
	return ad.Sum(ad.Mul(out, out.Tape().FromData(r, c, w)))
}

// checkGradients compares the gradient that Backward puts in each Var with
// central finite differences of the loss.
func checkGradients(t *testing.T, vars []*ad.Var, loss lossFunc) {
	t.Helper()
	eval := func() (*ad.Tape, *ad.Tensor) {
		tp := ad.NewTape()
		ts := make([]*ad.Tensor, len(vars))
		for i, v := range vars {
			ts[i] = tp.Var(v)
		}
		return tp, loss(tp, ts)
	}
	for _, v := range vars {
		v.ZeroGrad()
	}
	tp, l := eval()
	require.False(t, math.IsNaN(l.Item()) || math.IsInf(l.Item(), 0), "loss %v", l.Item())
	tp.Backward(l)
	const h = 1e-6
	for vi, v := range vars {
		data := v.Value.RawMatrix().Data
		for k := range data {
			orig := data[k]
			data[k] = orig + h
			_, up := eval()
			data[k] = orig - h
			_, down := eval()
			data[k] = orig
			fd := (up.Item() - down.Item()) / (2 * h)
			got := v.Grad.RawMatrix().Data[k]
			require.InDeltaf(t, fd, got, 1e-5*(1+math.Abs(fd)), "var %d element %d: backward %v, finite difference %v", vi, k, got, fd)
		}
	}
}

func newVar(rows, cols int, data ...float64) *ad.Var {
	return ad.NewVar(mat.NewDense(rows, cols, data))
}

// legendre returns n Gauss-Legendre nodes and weights on [a, b].
func legendre(n int, a, b float64) (x, w []float64) {
	x, w = make([]float64, n), make([]float64, n)
	quad.Legendre{}.FixedLocations(x, w, a, b)
	return x, w
}

func sigmoidF(x float64) float64 { return 1 / (1 + math.Exp(-x)) }

func logSoftmaxF(l []float64) []float64 {
	m := math.Inf(-1)
	for _, v := range l {
		m = max(m, v)
	}
	s := 0.0
	for _, v := range l {
		s += math.Exp(v - m)
	}
	out := make([]float64, len(l))
	for k, v := range l {
		out[k] = v - m - math.Log(s)
	}
	return out
}

// invertCDF returns the x = to(s) with cdf(x) = u by bisection on s in
// [lo, hi], assuming cdf∘to increases; it is accurate to rounding in s.
func invertCDF(cdf, to func(float64) float64, u, lo, hi float64) float64 {
	for range 200 {
		mid := (lo + hi) / 2
		if mid == lo || mid == hi {
			break
		}
		if cdf(to(mid)) < u {
			lo = mid
		} else {
			hi = mid
		}
	}
	return to((lo + hi) / 2)
}

// gammaQuantile is the quantile function of Gamma(a, rate), which gonum's
// inverse of the incomplete gamma function underflows to 0 for small a.
func gammaQuantile(a, rate, u float64) float64 {
	return invertCDF(func(x float64) float64 { return mathext.GammaIncReg(a, x) }, math.Exp, u, -745, 709) / rate
}

// betaQuantile is the quantile function of Beta(a, b), by bisection in
// logit x.
func betaQuantile(a, b, u float64) float64 {
	return invertCDF(func(x float64) float64 { return mathext.RegIncBeta(a, b, x) }, sigmoidF, u, -745, 37)
}
