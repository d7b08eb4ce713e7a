package dist

import (
	"fmt"
	"math"
	"testing"

	"github.com/stretchr/testify/require"
	"gonum.org/v1/gonum/mat"
	"gonum.org/v1/gonum/stat/distuv"

	"github.com/backpropq/backpropq/ad"
)

// reference is an independent scalar implementation of a distribution:
// gonum's stat/distuv where it has one, closed forms otherwise. A NaN mean
// or variance is not checked (it does not exist, or its sampling error is
// not estimable from the fourth moment).
type reference struct {
	logProb        func(x float64) float64
	mean, variance float64
	quantile       func(u float64) float64
}

func fromDistuv(d interface {
	LogProb(float64) float64
	Mean() float64
	Variance() float64
	Quantile(float64) float64
}) reference {
	return reference{d.LogProb, d.Mean(), d.Variance(), d.Quantile}
}

// domain says how the normalization quadrature maps the support to the
// real line.
type domain int

const (
	real domain = iota
	positive
	unit
	counts
)

// scalarFamily describes a family of elementwise distributions for the
// shared tests: its parameter grid, how to build it from [n x 1] or
// [1 x 1] parameter tensors, its reference, and values to score (inside,
// on the edges of and outside the support).
type scalarFamily struct {
	name     string
	params   [][]float64
	build    func(p []*ad.Tensor) Distribution
	ref      func(p []float64) reference
	values   []float64
	domain   domain
	discrete bool
}

func scalarFamilies() []scalarFamily {
	nan := math.NaN()
	neg := []float64{-1e300, -1, -1e-300}
	return []scalarFamily{
		{name: "Normal", params: [][]float64{{0, 1}, {-3, 0.2}, {10, 40}},
			build: func(p []*ad.Tensor) Distribution { return Normal{Loc: p[0], Scale: p[1]} },
			ref: func(p []float64) reference {
				return fromDistuv(distuv.Normal{Mu: p[0], Sigma: p[1]})
			}, values: []float64{-100, -1, 0, 0.5, 30}},
		{name: "Gamma", params: [][]float64{{0.1, 1.5}, {1, 0.5}, {4, 2}, {0.01, 1}, {250, 3}},
			build: func(p []*ad.Tensor) Distribution { return Gamma{Concentration: p[0], Rate: p[1]} },
			ref: func(p []float64) reference {
				r := fromDistuv(distuv.Gamma{Alpha: p[0], Beta: p[1]})
				r.quantile = func(u float64) float64 { return gammaQuantile(p[0], p[1], u) }
				return r
			}, values: append([]float64{0, 1e-300, 1e-8, 0.3, 1, 7.5, 100, 1e5}, neg...), domain: positive},
		{name: "Beta", params: [][]float64{{0.5, 0.5}, {1, 1}, {2, 5}, {0.1, 3}, {1, 0.3}, {40, 60}},
			build: func(p []*ad.Tensor) Distribution { return Beta{Alpha: p[0], Beta: p[1]} },
			ref: func(p []float64) reference {
				r := fromDistuv(distuv.Beta{Alpha: p[0], Beta: p[1]})
				r.quantile = func(u float64) float64 { return betaQuantile(p[0], p[1], u) }
				return r
			}, values: []float64{0, 1e-300, 1e-8, 0.3, 0.5, 0.99, 1 - 1e-12, 1, -1, -1e-300, 1 + 1e-15, 2}, domain: unit},
		{name: "Exponential", params: [][]float64{{1}, {0.01}, {30}},
			build: func(p []*ad.Tensor) Distribution { return Exponential{Rate: p[0]} },
			ref: func(p []float64) reference {
				return fromDistuv(distuv.Exponential{Rate: p[0]})
			}, values: append([]float64{0, 1e-300, 0.2, 3, 1e3}, neg...), domain: positive},
		{name: "LogNormal", params: [][]float64{{0, 1}, {2, 0.3}, {-1, 0.6}},
			build: func(p []*ad.Tensor) Distribution { return LogNormal{Loc: p[0], Scale: p[1]} },
			ref: func(p []float64) reference {
				return fromDistuv(distuv.LogNormal{Mu: p[0], Sigma: p[1]})
			}, values: append([]float64{1e-300, 1e-5, 0.4, 1, 9, 1e4}, neg...), domain: positive},
		{name: "Laplace", params: [][]float64{{0, 1}, {-2, 0.1}, {5, 7}},
			build: func(p []*ad.Tensor) Distribution { return Laplace{Loc: p[0], Scale: p[1]} },
			ref: func(p []float64) reference {
				return fromDistuv(distuv.Laplace{Mu: p[0], Scale: p[1]})
			}, values: []float64{-1e3, -2, 0, 0.1, 5, 40}},
		{name: "StudentT", params: [][]float64{{1, 0, 1}, {3, -2, 0.5}, {30, 4, 2}},
			build: func(p []*ad.Tensor) Distribution { return StudentT{Df: p[0], Loc: p[1], Scale: p[2]} },
			ref: func(p []float64) reference {
				r := fromDistuv(distuv.StudentsT{Nu: p[0], Mu: p[1], Sigma: p[2]})
				if p[0] <= 8 { // the sample variance's error needs an 8th moment
					r.variance = nan
				}
				if p[0] <= 2 {
					r.mean = nan
				}
				return r
			}, values: []float64{-1e5, -3, 0, 0.7, 4, 1e3}},
		{name: "Cauchy", params: [][]float64{{0, 1}, {3, 0.2}},
			build: func(p []*ad.Tensor) Distribution { return Cauchy{Loc: p[0], Scale: p[1]} },
			ref: func(p []float64) reference {
				return reference{
					logProb: func(x float64) float64 { z := (x - p[0]) / p[1]; return -math.Log(math.Pi * p[1] * (1 + z*z)) },
					mean:    nan, variance: nan,
					quantile: func(u float64) float64 { return p[0] + p[1]*math.Tan(math.Pi*(u-0.5)) },
				}
			}, values: []float64{-1e10, -2, 0, 3, 1e5}},
		{name: "HalfNormal", params: [][]float64{{1}, {0.05}, {12}},
			build: func(p []*ad.Tensor) Distribution { return HalfNormal{Scale: p[0]} },
			ref: func(p []float64) reference {
				n := distuv.Normal{Mu: 0, Sigma: p[0]}
				return reference{
					logProb: func(x float64) float64 {
						if x < 0 {
							return math.Inf(-1)
						}
						return math.Ln2 + n.LogProb(x)
					},
					mean: p[0] * math.Sqrt(2/math.Pi), variance: p[0] * p[0] * (1 - 2/math.Pi),
					quantile: func(u float64) float64 { return n.Quantile((1 + u) / 2) },
				}
			}, values: append([]float64{0, 1e-300, 0.3, 2, 50}, neg...), domain: positive},
		{name: "HalfCauchy", params: [][]float64{{1}, {0.3}},
			build: func(p []*ad.Tensor) Distribution { return HalfCauchy{Scale: p[0]} },
			ref: func(p []float64) reference {
				return reference{
					logProb: func(x float64) float64 {
						if x < 0 {
							return math.Inf(-1)
						}
						z := x / p[0]
						return math.Log(2 / (math.Pi * p[0] * (1 + z*z)))
					},
					mean: nan, variance: nan,
					quantile: func(u float64) float64 { return p[0] * math.Tan(math.Pi*u/2) },
				}
			}, values: append([]float64{0, 1e-300, 0.3, 2, 1e6}, neg...), domain: positive},
		{name: "Poisson", params: [][]float64{{0.3}, {4}, {50}, {1e3}},
			build: func(p []*ad.Tensor) Distribution { return Poisson{Rate: p[0]} },
			ref: func(p []float64) reference {
				d := distuv.Poisson{Lambda: p[0]}
				return reference{logProb: d.LogProb, mean: d.Mean(), variance: d.Variance()}
			}, values: []float64{0, 1, 3, 50, 1e3, 1e4, -1, 0.5, 2.0000001}, domain: counts, discrete: true},
		{name: "Binomial", params: [][]float64{{10, 0.3}, {1, 0.5}, {0, 0.4}, {200, 0.9}, {1000, 0.02}},
			build: func(p []*ad.Tensor) Distribution { return Binomial{TotalCount: p[0], Probs: p[1]} },
			ref: func(p []float64) reference {
				d := distuv.Binomial{N: p[0], P: p[1]}
				return reference{logProb: d.LogProb, mean: d.Mean(), variance: d.Variance()}
			}, values: []float64{0, 1, 3, 10, 11, 200, 201, -1, 0.5}, domain: counts, discrete: true},
		{name: "BinomialLogits", params: [][]float64{{10, -0.8}, {200, 2}},
			build: func(p []*ad.Tensor) Distribution { return Binomial{TotalCount: p[0], Logits: p[1]} },
			ref: func(p []float64) reference {
				d := distuv.Binomial{N: p[0], P: sigmoidF(p[1])}
				return reference{logProb: d.LogProb, mean: d.Mean(), variance: d.Variance()}
			}, values: []float64{0, 1, 3, 10, 11, 200, 201, -1, 0.5}, domain: counts, discrete: true},
		{name: "Geometric", params: [][]float64{{0.3}, {1}, {0.05}},
			build: func(p []*ad.Tensor) Distribution { return Geometric{Probs: p[0]} },
			ref: func(p []float64) reference {
				return reference{
					logProb: func(k float64) float64 {
						if k < 0 || k != math.Trunc(k) {
							return math.Inf(-1)
						}
						if p[0] == 1 {
							if k == 0 {
								return 0
							}
							return math.Inf(-1)
						}
						return k*math.Log1p(-p[0]) + math.Log(p[0])
					},
					mean: (1 - p[0]) / p[0], variance: (1 - p[0]) / (p[0] * p[0]),
				}
			}, values: []float64{0, 1, 7, 100, -1, 2.5}, domain: counts, discrete: true},
		{name: "NegativeBinomial", params: [][]float64{{3, 0.4}, {0.5, 0.9}, {20, 0}, {7.5, 0.1}},
			build: func(p []*ad.Tensor) Distribution { return NegativeBinomial{TotalCount: p[0], Probs: p[1]} },
			ref: func(p []float64) reference {
				r, q := p[0], p[1]
				return reference{
					logProb: func(k float64) float64 {
						if k < 0 || k != math.Trunc(k) || (q == 0 && k > 0) {
							return math.Inf(-1)
						}
						a, _ := math.Lgamma(k + r)
						b, _ := math.Lgamma(k + 1)
						c, _ := math.Lgamma(r)
						kl := 0.0
						if k > 0 {
							kl = k * math.Log(q)
						}
						return a - b - c + kl + r*math.Log1p(-q)
					},
					mean: r * q / (1 - q), variance: r * q / ((1 - q) * (1 - q)),
				}
			}, values: []float64{0, 1, 7, 100, -1, 2.5}, domain: counts, discrete: true},
	}
}

// buildScalar builds the family's distribution with every parameter a
// [1 x 1] tensor.
func buildScalar(f scalarFamily, tp *ad.Tape, p []float64) Distribution {
	ts := make([]*ad.Tensor, len(p))
	for i, v := range p {
		ts[i] = tp.Scalar(v)
	}
	return f.build(ts)
}

// LogProb agrees with the reference to 1e-10 over each family's grid,
// including the edges of the support, and is -Inf (never NaN) outside it.
func TestScalarLogProbAgreesWithReference(t *testing.T) {
	for _, f := range scalarFamilies() {
		for _, p := range f.params {
			t.Run(fmt.Sprintf("%s%v", f.name, p), func(t *testing.T) {
				tp := ad.NewTape()
				d := buildScalar(f, tp, p)
				require.NoError(t, d.Validate())
				ref := f.ref(p)
				lp := d.LogProb(col(tp, f.values...))
				for i, x := range f.values {
					got, want := lp.At(i, 0), ref.logProb(x)
					require.Falsef(t, math.IsNaN(got), "NaN at %v", x)
					if math.IsInf(want, 0) {
						require.Equalf(t, want, got, "at %v", x)
						continue
					}
					require.InDeltaf(t, want, got, 1e-10*(1+math.Abs(want)), "at %v", x)
					require.Equalf(t, d.ValidateValue(tp.Scalar(x)) == nil, !math.IsInf(want, -1) || isEdge(f, x),
						"ValidateValue agrees with the support at %v", x)
				}
				require.True(t, math.IsInf(d.LogProb(tp.Scalar(math.NaN())).Item(), -1) || !isBounded(f), "NaN value")
			})
		}
	}
}

// isEdge reports whether x is an edge of the family's support, where the
// density may be 0 (log-density -Inf) although x is a valid value.
func isEdge(f scalarFamily, x float64) bool {
	switch f.domain {
	case positive:
		return x >= 0
	case unit:
		return x >= 0 && x <= 1
	}
	return false
}

func isBounded(f scalarFamily) bool { return f.domain != real }

// Sample moments are within kSE standard errors of the reference, so is
// the entropy of the mean of -log p over the sample, and the empirical
// distribution function at the reference quartiles and deciles
// is within kSE standard errors of the quantile's level.
func TestScalarSampleMoments(t *testing.T) {
	for _, f := range scalarFamilies() {
		for _, p := range f.params {
			t.Run(fmt.Sprintf("%s%v", f.name, p), func(t *testing.T) {
				tp := ad.NewTape()
				ps := make([]*ad.Tensor, len(p))
				for i, v := range p {
					ps[i] = tp.Full(nDraws, 1, v)
				}
				d := f.build(ps)
				x := d.Sample(newRNG())
				require.NoError(t, d.ValidateValue(x))
				ref := f.ref(p)
				xs := column(x, 0)
				if !math.IsNaN(ref.variance) {
					requireMoments(t, xs, ref.mean, ref.variance, f.name)
				} else if !math.IsNaN(ref.mean) {
					s := statsOf(xs)
					require.InDelta(t, ref.mean, s.mean, kSE*math.Sqrt(s.variance/nDraws))
				}
				if m, ok := d.(interface{ Mean() *ad.Tensor }); ok && !math.IsNaN(ref.mean) {
					require.InDelta(t, ref.mean, m.Mean().At(0, 0), 1e-12*(1+math.Abs(ref.mean)), "Mean")
				}
				if v, ok := d.(interface{ Variance() *ad.Tensor }); ok && !math.IsNaN(ref.variance) {
					require.InDelta(t, ref.variance, v.Variance().At(0, 0), 1e-12*(1+math.Abs(ref.variance)), "Variance")
				}
				if e, ok := d.(Entropier); ok {
					lp := statsOf(column(d.LogProb(x), 0))
					require.InDelta(t, -lp.mean, e.Entropy().At(0, 0), kSE*math.Sqrt(lp.variance/nDraws)+1e-12, "Entropy")
				}
				if ref.quantile == nil {
					return
				}
				for _, u := range []float64{0.1, 0.25, 0.5, 0.75, 0.9} {
					q := ref.quantile(u)
					hits := 0
					for _, v := range xs {
						if v <= q {
							hits++
						}
					}
					requireFraction(t, u, hits, nDraws, "P(x <= Q(%v))", u)
				}
			})
		}
	}
}

// The density integrates to 0.998 between the 0.001 and 0.999 quantiles
// (by Gauss-Legendre quadrature in log x on (0, ∞), in logit x on (0, 1)
// and in asinh((x-median)/scale) on the real line), and the pmf sums to 1.
func TestScalarNormalization(t *testing.T) {
	for _, f := range scalarFamilies() {
		for _, p := range f.params {
			t.Run(fmt.Sprintf("%s%v", f.name, p), func(t *testing.T) {
				tp := ad.NewTape()
				d := buildScalar(f, tp, p)
				ref := f.ref(p)
				if f.discrete {
					n := int(ref.mean + 40*math.Sqrt(ref.variance) + 40)
					ks := make([]float64, n)
					for k := range ks {
						ks[k] = float64(k)
					}
					sum := 0.0
					for _, l := range d.LogProb(col(tp, ks...)).Data() {
						sum += math.Exp(l)
					}
					require.InDelta(t, 1, sum, 1e-12)
					return
				}
				lo, hi := ref.quantile(1e-3), ref.quantile(1-1e-3)
				to, jac := func(s float64) float64 { return s }, func(float64) float64 { return 1 }
				switch f.domain {
				case positive:
					lo, hi = math.Log(lo), math.Log(hi)
					to, jac = math.Exp, math.Exp
				case unit:
					lo, hi = math.Log(lo/(1-lo)), math.Log(hi/(1-hi))
					to = sigmoidF
					jac = func(s float64) float64 { x := sigmoidF(s); return x * (1 - x) }
				}
				ss, ws := legendre(1000, lo, hi)
				if f.domain == real {
					// x = m + c·sinh(s) compresses heavy tails; splitting
					// at the median s = 0 puts Laplace's kink on a panel
					// edge.
					m, c := ref.quantile(0.5), ref.quantile(0.75)-ref.quantile(0.5)
					to = func(s float64) float64 { return m + c*math.Sinh(s) }
					jac = func(s float64) float64 { return c * math.Cosh(s) }
					s1, w1 := legendre(1000, math.Asinh((lo-m)/c), 0)
					s2, w2 := legendre(1000, 0, math.Asinh((hi-m)/c))
					ss, ws = append(s1, s2...), append(w1, w2...)
				}
				xs := make([]float64, len(ss))
				for i, s := range ss {
					xs[i] = to(s)
				}
				lp := d.LogProb(col(tp, xs...))
				sum := 0.0
				for i, s := range ss {
					sum += ws[i] * math.Exp(lp.At(i, 0)) * jac(s)
				}
				require.InDelta(t, 0.998, sum, 1e-9)
			})
		}
	}
}

// The pathwise gradient of E[f(z)] through RSample is unbiased: its mean
// over nDraws draws is within kSE standard errors (plus 1e-6 for the
// quadrature) of the derivative of E[f(z)] = ∫₀¹ f(Q(u; θ)) du, computed by
// Gauss-Legendre quadrature over u and a central difference in each
// parameter θ. f is a Gaussian bump at the 0.4 quantile, as wide as the
// interquartile range, so that E[f] is sensitive to every parameter.
func TestScalarPathwiseGradient(t *testing.T) {
	us, ws := legendre(400, 0, 1)
	for _, f := range scalarFamilies() {
		if f.discrete {
			continue
		}
		for _, p := range f.params {
			ref := f.ref(p)
			med, iqr := ref.quantile(0.4), ref.quantile(0.75)-ref.quantile(0.25)
			bump := func(z float64) float64 { return math.Exp(-0.5 * math.Pow((z-med)/iqr, 2)) }
			expect := func(p []float64) float64 {
				q, sum := f.ref(p).quantile, 0.0
				for i, u := range us {
					sum += ws[i] * bump(q(u))
				}
				return sum
			}
			for k := range p {
				t.Run(fmt.Sprintf("%s%v/d%d", f.name, p, k), func(t *testing.T) {
					h := 1e-5 * max(math.Abs(p[k]), 1)
					up, down := append([]float64(nil), p...), append([]float64(nil), p...)
					up[k] += h
					down[k] -= h
					want := (expect(up) - expect(down)) / (2 * h)

					tp := ad.NewTape()
					v := ad.NewVar(mat.NewDense(nDraws, 1, nil))
					v.Value.Apply(func(int, int, float64) float64 { return p[k] }, v.Value)
					ps := make([]*ad.Tensor, len(p))
					for i, x := range p {
						ps[i] = tp.Scalar(x)
					}
					ps[k] = tp.Var(v)
					z := f.build(ps).(Reparameterized).RSample(newRNG())
					centered := ad.Scale(ad.Sub(z, tp.Scalar(med)), 1/iqr)
					tp.Backward(ad.Sum(ad.Exp(ad.Scale(ad.Square(centered), -0.5))))
					s := statsOf(v.Grad.RawMatrix().Data)
					require.InDeltaf(t, want, s.mean, kSE*math.Sqrt(s.variance/nDraws)+1e-6*(1+math.Abs(want)),
						"pathwise %v ± %v, quadrature %v", s.mean, math.Sqrt(s.variance/nDraws), want)
				})
			}
		}
	}
}

// Sample and RSample draw the same numbers from the same seed.
func TestScalarSampleEqualsRSample(t *testing.T) {
	for _, f := range scalarFamilies() {
		if f.discrete {
			continue
		}
		for _, p := range f.params {
			tp := ad.NewTape()
			ps := make([]*ad.Tensor, len(p))
			for i, v := range p {
				ps[i] = tp.Full(7, 1, v)
			}
			d := f.build(ps).(Reparameterized)
			a, r := d.Sample(newRNG()).Data(), d.RSample(newRNG()).Data()
			require.Equal(t, a, d.Sample(newRNG()).Data(), "%s%v reproducible", f.name, p)
			for i := range a {
				require.InDeltaf(t, a[i], r[i], 1e-12*math.Abs(a[i]), "%s%v draw %d", f.name, p, i)
			}
		}
	}
}
