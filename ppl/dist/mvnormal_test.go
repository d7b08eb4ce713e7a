package dist

import (
	"errors"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
	"gonum.org/v1/gonum/mat"

	"github.com/backpropq/backpropq/ad"
)

// randomTril returns a lower-triangular [n x n] matrix with a diagonal in
// [0.3, 1.3) and, above the diagonal, garbage that must be ignored.
func randomTril(rng *rand.Rand, n int) []float64 {
	l := make([]float64, n*n)
	for i := range n {
		for j := range n {
			switch {
			case j < i:
				l[i*n+j] = rng.NormFloat64() * 0.5
			case j == i:
				l[i*n+j] = 0.3 + rng.Float64()
			default:
				l[i*n+j] = 99
			}
		}
	}
	return l
}

// mvnReference is log N(x; μ, LLᵀ) from gonum's mat (Cholesky, LogDet and
// SolveVec), the computation of gonum's stat/distmv Normal.LogProb.
func mvnReference(mu, l []float64, n int, x []float64) float64 {
	low := mat.NewDense(n, n, nil)
	for i := range n {
		for j := 0; j <= i; j++ {
			low.Set(i, j, l[i*n+j])
		}
	}
	var cov mat.Dense
	cov.Mul(low, low.T())
	var chol mat.Cholesky
	if !chol.Factorize(mat.NewSymDense(n, cov.RawMatrix().Data)) {
		panic("not positive definite")
	}
	diff := mat.NewVecDense(n, nil)
	for i := range n {
		diff.SetVec(i, x[i]-mu[i])
	}
	var sol mat.VecDense
	if err := chol.SolveVecTo(&sol, diff); err != nil {
		panic(err)
	}
	return -0.5*float64(n)*math.Log(2*math.Pi) - 0.5*chol.LogDet() - 0.5*mat.Dot(diff, &sol)
}

func TestMultivariateNormalAgreesWithReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, n := range []int{1, 3, 6} {
		tp := ad.NewTape()
		l := randomTril(rng, n)
		const rows = 4
		mu := make([]float64, rows*n)
		x := make([]float64, rows*n)
		for i := range mu {
			mu[i] = rng.NormFloat64()
			x[i] = mu[i] + 3*rng.NormFloat64()
		}
		d := MultivariateNormal{Loc: tp.FromData(rows, n, mu), ScaleTril: tp.FromData(n, n, l)}
		require.NoError(t, d.Validate())
		lp := d.LogProb(tp.FromData(rows, n, x))
		for i := range rows {
			want := mvnReference(mu[i*n:(i+1)*n], l, n, x[i*n:(i+1)*n])
			require.InDelta(t, want, lp.At(i, 0), 1e-10*(1+math.Abs(want)), "n %d row %d", n, i)
		}
		// A one-row loc scores every row of the value.
		shared := MultivariateNormal{Loc: tp.FromData(1, n, mu[:n]), ScaleTril: tp.FromData(n, n, l)}
		lp = shared.LogProb(tp.FromData(rows, n, x))
		for i := range rows {
			want := mvnReference(mu[:n], l, n, x[i*n:(i+1)*n])
			require.InDelta(t, want, lp.At(i, 0), 1e-10*(1+math.Abs(want)), "shared loc, n %d row %d", n, i)
		}
		cov, err := MultivariateNormalCovariance(tp.FromData(1, n, mu[:n]), shared.Covariance())
		require.NoError(t, err)
		require.InDeltaSlice(t, shared.LogProb(tp.FromData(rows, n, x)).Data(), cov.LogProb(tp.FromData(rows, n, x)).Data(), 1e-10)
	}
}

func TestMultivariateNormalValidate(t *testing.T) {
	tp := ad.NewTape()
	loc := row(tp, 0, 0)
	cases := []struct {
		d         MultivariateNormal
		name      string
		row, col_ int
	}{
		{MultivariateNormal{ScaleTril: tp.Zeros(2, 2)}, "loc", -1, -1},
		{MultivariateNormal{Loc: loc}, "scale_tril", -1, -1},
		{MultivariateNormal{Loc: loc, ScaleTril: tp.Zeros(3, 3)}, "scale_tril", -1, -1},
		{MultivariateNormal{Loc: loc, ScaleTril: tp.FromData(2, 2, []float64{1, 0, 0, -1})}, "scale_tril", 1, 1},
		{MultivariateNormal{Loc: loc, ScaleTril: tp.FromData(2, 2, []float64{1, 0, math.NaN(), 1})}, "scale_tril", 1, 0},
		{MultivariateNormal{Loc: row(tp, math.Inf(1), 0), ScaleTril: tp.FromData(2, 2, []float64{1, 0, 0, 1})}, "loc", 0, 0},
	}
	for _, c := range cases {
		var e *Error
		require.True(t, errors.As(c.d.Validate(), &e), "%+v", c)
		require.Equal(t, c.name, e.Name)
		require.Equal(t, [2]int{c.row, c.col_}, [2]int{e.Row, e.Col}, e.Error())
	}
	// The upper triangle is not read.
	require.NoError(t, MultivariateNormal{Loc: loc, ScaleTril: tp.FromData(2, 2, []float64{1, math.NaN(), 0, 1})}.Validate())
	_, err := MultivariateNormalCovariance(loc, tp.FromData(2, 2, []float64{1, 2, 2, 1}))
	var e *Error
	require.True(t, errors.As(err, &e))
	require.Equal(t, "covariance", e.Name)
	_, err = MultivariateNormalCovariance(loc, tp.Zeros(3, 3))
	require.True(t, errors.As(err, &e))
}

func TestMultivariateNormalMoments(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	const n = 3
	tp := ad.NewTape()
	l := randomTril(rng, n)
	mu := []float64{1, -2, 0.5}
	d := MultivariateNormal{Loc: repeatRows(tp, nDraws, mu...), ScaleTril: tp.FromData(n, n, l)}
	x := d.Sample(newRNG())
	require.Equal(t, x.Data(), d.RSample(newRNG()).Data(), "Sample and RSample draw the same numbers")
	require.NoError(t, d.ValidateValue(x))
	cov := d.Covariance()
	for i := range n {
		requireMoments(t, column(x, i), mu[i], cov.At(i, i), "component")
		for j := range i {
			prods := make([]float64, nDraws)
			for k := range prods {
				prods[k] = (x.At(k, i) - mu[i]) * (x.At(k, j) - mu[j])
			}
			s := statsOf(prods)
			require.InDelta(t, cov.At(i, j), s.mean, kSE*math.Sqrt(s.variance/nDraws), "covariance (%d,%d)", i, j)
		}
	}
	lp := statsOf(column(d.LogProb(x), 0))
	require.InDelta(t, -lp.mean, d.Entropy().At(0, 0), kSE*math.Sqrt(lp.variance/nDraws))
}

// The D=2 density integrates to 1 by tensor-product Gauss-Legendre
// quadrature over μ ± 9σ in each coordinate (mass outside below 1e-18).
func TestMultivariateNormalIntegratesToOne(t *testing.T) {
	tp := ad.NewTape()
	l := []float64{0.8, 0, 0.6, 0.3}
	mu := []float64{1, -1}
	d := MultivariateNormal{Loc: row(tp, mu...), ScaleTril: tp.FromData(2, 2, l)}
	s0, s1 := 0.8, math.Sqrt(0.6*0.6+0.3*0.3)
	x0, w0 := legendre(300, mu[0]-9*s0, mu[0]+9*s0)
	x1, w1 := legendre(300, mu[1]-9*s1, mu[1]+9*s1)
	pts := make([]float64, 0, 2*len(x0)*len(x1))
	for _, a := range x0 {
		for _, b := range x1 {
			pts = append(pts, a, b)
		}
	}
	lp := d.LogProb(tp.FromData(len(pts)/2, 2, pts))
	sum := 0.0
	for i := range x0 {
		for j := range x1 {
			sum += w0[i] * w1[j] * math.Exp(lp.At(i*len(x1)+j, 0))
		}
	}
	require.InDelta(t, 1, sum, 1e-9)
}

// The pathwise gradient of E[f(aᵀx)] through RSample matches the closed
// form: aᵀx ~ N(m, v) with m = aᵀμ and v = ‖Lᵀa‖², and for the Gaussian
// bump f(y) = exp(-(y-c)²/(2s²)), E[f] = s/√(s²+v)·exp(-(m-c)²/(2(s²+v))),
// differenced in each parameter. The tolerance is kSE standard errors of
// the mean over 20 independent batches of draws.
func TestMultivariateNormalPathwiseGradient(t *testing.T) {
	const n, batches, per = 3, 20, 1000
	a := []float64{0.7, -0.4, 1.1}
	const c, s = 0.8, 1.5
	mu := []float64{0.3, -0.2, 0.5}
	l := []float64{1, 0, 0, 0.4, 0.8, 0, -0.3, 0.2, 0.6}
	expect := func(mu, l []float64) float64 {
		m, v := 0.0, 0.0
		for i := range n {
			m += a[i] * mu[i]
		}
		for j := range n { // (Lᵀa)_j = Σ_i L_ij a_i
			lta := 0.0
			for i := j; i < n; i++ {
				lta += l[i*n+j] * a[i]
			}
			v += lta * lta
		}
		return s / math.Sqrt(s*s+v) * math.Exp(-(m-c)*(m-c)/(2*(s*s+v)))
	}
	const h = 1e-6
	diff := func(p []float64, k int, e func([]float64) float64) float64 {
		up, down := append([]float64(nil), p...), append([]float64(nil), p...)
		up[k] += h
		down[k] -= h
		return (e(up) - e(down)) / (2 * h)
	}
	locVar, lVar := ad.NewVar(mat.NewDense(1, n, mu)), ad.NewVar(mat.NewDense(n, n, l))
	gLoc, gL := make([][]float64, n), make([][]float64, n*n)
	rng := newRNG()
	for range batches {
		locVar.ZeroGrad()
		lVar.ZeroGrad()
		tp := ad.NewTape()
		loc := ad.Add(tp.Var(locVar), tp.Zeros(per, n))
		x := MultivariateNormal{Loc: loc, ScaleTril: tp.Var(lVar)}.RSample(rng)
		y := ad.MatMul(x, tp.FromData(n, 1, a))
		f := ad.Exp(ad.Scale(ad.Square(ad.Sub(y, tp.Scalar(c))), -0.5/(s*s)))
		tp.Backward(ad.Mean(f))
		for k := range n {
			gLoc[k] = append(gLoc[k], locVar.Grad.At(0, k))
		}
		for k := range n * n {
			gL[k] = append(gL[k], lVar.Grad.RawMatrix().Data[k])
		}
	}
	check := func(want float64, got []float64, what string, k int) {
		st := statsOf(got)
		require.InDeltaf(t, want, st.mean, kSE*math.Sqrt(st.variance/batches)+1e-7, "%s %d", what, k)
	}
	for k := range n {
		check(diff(mu, k, func(p []float64) float64 { return expect(p, l) }), gLoc[k], "loc", k)
	}
	for k := range n * n {
		if k%n > k/n { // the upper triangle is not read: zero gradient
			for _, g := range gL[k] {
				require.Zero(t, g)
			}
			continue
		}
		check(diff(l, k, func(p []float64) float64 { return expect(mu, p) }), gL[k], "scale_tril", k)
	}
}
