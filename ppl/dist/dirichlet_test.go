package dist

import (
	"fmt"
	"math"
	"testing"

	"github.com/stretchr/testify/require"
	"gonum.org/v1/gonum/mat"

	"github.com/backpropq/backpropq/ad"
)

var dirichletParams = [][]float64{{0.1, 0.1, 0.1}, {1, 1, 1}, {2, 0.5, 7}, {0.1, 3, 30}}

// dirichletLogProb is gonum's stat/distmv Dirichlet.LogProb, restated
// because that package needs a module (golang.org/x/tools) this one does
// not require.
func dirichletLogProb(a, x []float64) float64 {
	lp, sum := 0.0, 0.0
	for k := range a {
		lp += (a[k] - 1) * math.Log(x[k])
		lg, _ := math.Lgamma(a[k])
		lp -= lg
		sum += a[k]
	}
	lg, _ := math.Lgamma(sum)
	return lp + lg
}

func TestDirichletAgreesWithReference(t *testing.T) {
	points := [][]float64{{0.2, 0.3, 0.5}, {1e-10, 0.5, 0.5 - 1e-10}, {0.98, 0.01, 0.01}, {1. / 3, 1. / 3, 1. / 3}}
	for _, a := range dirichletParams {
		tp := ad.NewTape()
		d := Dirichlet{Concentration: row(tp, a...)}
		require.NoError(t, d.Validate())
		var flat []float64
		for _, x := range points {
			flat = append(flat, x...)
		}
		lp := d.LogProb(tp.FromData(len(points), 3, flat))
		for i, x := range points {
			want := dirichletLogProb(a, x)
			require.InDeltaf(t, want, lp.At(i, 0), 1e-10*(1+math.Abs(want)), "α %v x %v", a, x)
		}
		// Faces: the density's limit. Outside: -Inf.
		edge := d.LogProb(tp.FromData(1, 3, []float64{0, 0.5, 0.5})).Item()
		switch {
		case a[0] < 1:
			require.Equal(t, math.Inf(1), edge, "α %v at a face", a)
		case a[0] == 1:
			require.False(t, math.IsInf(edge, 0) || math.IsNaN(edge))
		default:
			require.Equal(t, math.Inf(-1), edge)
		}
		for _, bad := range [][]float64{{-0.1, 0.6, 0.5}, {0.2, 0.2, 0.2}, {math.NaN(), 0.5, 0.5}} {
			lp := d.LogProb(row(tp, bad...)).Item()
			require.Equalf(t, math.Inf(-1), lp, "α %v outside the simplex at %v", a, bad)
			require.Error(t, d.ValidateValue(row(tp, bad...)))
		}
	}
}

func TestDirichletMomentsAndEntropy(t *testing.T) {
	for _, a := range dirichletParams {
		t.Run(fmt.Sprint(a), func(t *testing.T) {
			tp := ad.NewTape()
			d := Dirichlet{Concentration: repeatRows(tp, nDraws, a...)}
			x := d.Sample(newRNG())
			require.NoError(t, d.ValidateValue(x))
			a0 := a[0] + a[1] + a[2]
			for k := range a {
				m := a[k] / a0
				requireMoments(t, column(x, k), m, m*(1-m)/(a0+1), fmt.Sprintf("component %d", k))
			}
			// Entropy against -E[log p] from the sample.
			lp := d.LogProb(x)
			s := statsOf(column(lp, 0))
			h := (Dirichlet{Concentration: row(tp, a...)}).Entropy().Item()
			require.InDelta(t, -s.mean, h, kSE*math.Sqrt(s.variance/nDraws)+1e-12)
		})
	}
}

// The Dirichlet pathwise gradient: x₁ ~ Beta(α₁, α₂+α₃), so E[f(x₁)] is a
// one-dimensional quadrature over the Beta quantile, differenced in each
// α_k.
func TestDirichletPathwiseGradient(t *testing.T) {
	us, ws := legendre(400, 0, 1)
	bump := func(x float64) float64 { return math.Exp(-0.5 * math.Pow((x-0.3)/0.2, 2)) }
	expect := func(a []float64) float64 {
		sum := 0.0
		for i, u := range us {
			sum += ws[i] * bump(betaQuantile(a[0], a[1]+a[2], u))
		}
		return sum
	}
	for _, a := range dirichletParams {
		tp := ad.NewTape()
		v := ad.NewVar(mat.NewDense(nDraws, 3, nil))
		v.Value.Apply(func(_, j int, _ float64) float64 { return a[j] }, v.Value)
		x := Dirichlet{Concentration: tp.Var(v)}.RSample(newRNG())
		c := ad.Scale(ad.Sub(ad.Slice(x, 0, 1), tp.Scalar(0.3)), 1/0.2)
		tp.Backward(ad.Sum(ad.Exp(ad.Scale(ad.Square(c), -0.5))))
		for k := range a {
			h := 1e-5 * a[k]
			up, down := append([]float64(nil), a...), append([]float64(nil), a...)
			up[k] += h
			down[k] -= h
			want := (expect(up) - expect(down)) / (2 * h)
			s := statsOf(column(tp.Const(v.Grad), k))
			require.InDeltaf(t, want, s.mean, kSE*math.Sqrt(s.variance/nDraws)+1e-6*(1+math.Abs(want)), "α %v d/dα%d", a, k)
		}
	}
}

// Beta(α, β) is the first component of Dirichlet(α, β); Sample and
// RSample return the same numbers.
func TestBetaIsTwoComponentDirichlet(t *testing.T) {
	tp := ad.NewTape()
	b := Beta{Alpha: tp.Full(5, 1, 0.7), Beta: tp.Scalar(2.5)}
	one := Beta{Alpha: tp.Scalar(0.7), Beta: tp.Scalar(2.5)}
	d := Dirichlet{Concentration: row(tp, 0.7, 2.5)}
	xs := b.Sample(newRNG())
	require.Equal(t, xs.Data(), b.RSample(newRNG()).Data())
	for i := range 5 {
		x := xs.At(i, 0)
		require.InDelta(t, d.LogProb(row(tp, x, 1-x)).Item(), one.LogProb(tp.Scalar(x)).Item(), 1e-12)
	}
	require.Equal(t, d.Sample(newRNG()).Data(), d.RSample(newRNG()).Data())
}

// The density integrates to 1 over the triangle y₀ + y₁ <= 1, in the
// coordinates y₀ = u, y₁ = (1-u)·v, by Gauss-Legendre quadrature
// (integer concentrations, where the density is a polynomial the rule
// integrates to rounding).
func TestDirichletIntegratesToOne(t *testing.T) {
	us, ws := legendre(300, 0, 1)
	for _, a := range [][]float64{{1, 1, 1}, {2, 3, 7}, {3, 4, 2}} {
		tp := ad.NewTape()
		d := Dirichlet{Concentration: row(tp, a...)}
		pts := make([]float64, 0, 3*len(us)*len(us))
		for _, u := range us {
			for _, v := range us {
				y0, y1 := u, (1-u)*v
				pts = append(pts, y0, y1, 1-y0-y1)
			}
		}
		lp := d.LogProb(tp.FromData(len(pts)/3, 3, pts))
		sum := 0.0
		for i, u := range us {
			for j := range us {
				sum += ws[i] * ws[j] * (1 - u) * math.Exp(lp.At(i*len(us)+j, 0))
			}
		}
		require.InDelta(t, 1, sum, 1e-11, "α %v", a)
	}
}
