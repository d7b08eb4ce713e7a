package dist

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"testing"

	"github.com/stretchr/testify/require"
	"gonum.org/v1/gonum/integrate/quad"
	"gonum.org/v1/gonum/mat"

	"github.com/backpropq/backpropq/ad"
)

// transformCases pairs each transform with the constraint it maps onto
// and the shape of its unconstrained input.
func transformCases() []struct {
	name       string
	t          Transform
	onto       Constraint
	rows, cols int
} {
	return []struct {
		name       string
		t          Transform
		onto       Constraint
		rows, cols int
	}{
		{"Identity", Identity{}, Real, 3, 2},
		{"Exp", Exp{}, Positive, 3, 2},
		{"Sigmoid", Sigmoid{}, UnitInterval, 3, 2},
		{"Affine", Affine{Loc: -1, Scale: -2.5}, Real, 3, 2},
		{"GreaterThan", Compose{Exp{}, Affine{Loc: 3, Scale: 1}}, GreaterThan(3), 3, 2},
		{"Interval", Compose{Sigmoid{}, Affine{Loc: -2, Scale: 5}}, Interval(-2, 3), 3, 2},
		{"StickBreaking", StickBreaking{}, Simplex, 3, 3},
		{"LowerCholesky", LowerCholeskyTransform{}, LowerCholesky, 4, 4},
	}
}

// jacobianLogDet returns log|det J| of the map from the free inputs of a
// row (all of x's row, or the lower triangle of a square x) to the
// matching outputs (the first len(in) columns, or the lower triangle),
// by central differences.
func jacobianLogDet(f func(x []float64) []float64, x []float64, in []int) float64 {
	const h = 1e-6
	n := len(in)
	j := mat.NewDense(n, n, nil)
	for c, k := range in {
		up, down := append([]float64(nil), x...), append([]float64(nil), x...)
		up[k] += h
		down[k] -= h
		yu, yd := f(up), f(down)
		for r, m := range in {
			j.Set(r, c, (yu[m]-yd[m])/(2*h))
		}
	}
	var lu mat.LU
	lu.Factorize(j)
	logDet, _ := lu.LogDet()
	return logDet
}

func TestTransforms(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, c := range transformCases() {
		t.Run(c.name, func(t *testing.T) {
			tp := ad.NewTape()
			data := make([]float64, c.rows*c.cols)
			for i := range data {
				data[i] = rng.NormFloat64()
			}
			x := tp.FromData(c.rows, c.cols, data)
			y := c.t.Forward(x)
			require.Equal(t, c.t.ForwardCols(c.cols), y.Cols())
			require.NoError(t, Check(c.onto, y), "Forward maps onto %v", c.onto)
			back := c.t.Inverse(y)
			lower := c.name == "LowerCholesky"
			for i, v := range back.Data() {
				if lower && i%c.cols > i/c.cols {
					continue // the upper triangle is not read
				}
				require.InDelta(t, data[i], v, 1e-9, "Inverse(Forward(x)) element %d", i)
			}
			ld := c.t.LogAbsDetJacobian(x, y)
			require.Equal(t, c.rows, ld.Rows())
			forward := func(x []float64) []float64 {
				tp := ad.NewTape()
				return c.t.Forward(tp.FromData(len(x)/c.cols, c.cols, x)).Data()
			}
			if lower { // one matrix: the Jacobian of its lower triangle
				var in []int
				for i := range c.rows {
					for j := 0; j <= i; j++ {
						in = append(in, i*c.cols+j)
					}
				}
				require.InDelta(t, jacobianLogDet(forward, data, in), ad.Sum(ld).Item(), 1e-6)
				return
			}
			for i := range c.rows {
				row := data[i*c.cols : (i+1)*c.cols]
				in := make([]int, c.cols)
				for k := range in {
					in[k] = k
				}
				require.InDelta(t, jacobianLogDet(forward, row, in), ld.At(i, 0), 1e-6, "row %d", i)
			}
		})
	}
}

func TestTransformGradients(t *testing.T) {
	for _, c := range transformCases() {
		t.Run(c.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(3, 4))
			v := newVar(c.rows, c.cols)
			v.Value.Apply(func(int, int, float64) float64 { return rng.NormFloat64() }, v.Value)
			checkGradients(t, []*ad.Var{v}, func(tp *ad.Tape, p []*ad.Tensor) *ad.Tensor {
				y := c.t.Forward(p[0])
				return ad.Add(weighted(y), ad.Add(weighted(c.t.LogAbsDetJacobian(p[0], y)), weighted(c.t.Inverse(y))))
			})
		})
	}
}

func TestBijectTo(t *testing.T) {
	for _, c := range transformCases() {
		if c.name == "Identity" || c.name == "Affine" {
			continue
		}
		tr, err := BijectTo(c.onto)
		require.NoError(t, err, c.name)
		tp := ad.NewTape()
		y := tr.Forward(tp.Full(c.rows, c.cols, -0.7))
		require.NoError(t, Check(c.onto, y), c.name)
	}
	for _, c := range []Constraint{Boolean, NonNegativeInteger, OneHotRows, IntegerInterval(0, 3)} {
		_, err := BijectTo(c)
		require.Error(t, err, c.String())
	}
	tp := ad.NewTape()
	y, _ := BijectTo(NonNegative)
	require.NoError(t, Check(NonNegative, y.Forward(tp.Scalar(-800))), "underflow to 0 is still non-negative")
	require.Panics(t, func() { Interval(1, 1) })
}

func TestCheckNamesTheElement(t *testing.T) {
	tp := ad.NewTape()
	err := Check(Positive, tp.FromData(2, 3, []float64{1, 2, 3, 4, 5, -1}))
	var e *Error
	require.True(t, errors.As(err, &e))
	require.Equal(t, [3]float64{-1, 1, 2}, [3]float64{e.Got, float64(e.Row), float64(e.Col)}, e.Error())
	err = Check(Simplex, tp.FromData(2, 2, []float64{0.5, 0.5, 0.5, 0.6}))
	require.ErrorContains(t, err, "row 1")
	require.NoError(t, Check(LowerCholesky, tp.FromData(2, 2, []float64{1, 0, -3, 2})))
	require.Error(t, Check(LowerCholesky, tp.FromData(2, 2, []float64{1, 0.1, -3, 2})))
	require.Error(t, Check(LowerCholesky, tp.FromData(2, 2, []float64{1, 0, -3, 0})))
}

func TestTransformedLogNormalAndAffine(t *testing.T) {
	tp := ad.NewTape()
	loc, scale := row(tp, 0.3, -1), row(tp, 0.5, 2)
	ln := LogNormal{Loc: loc, Scale: scale}
	tr := Transformed{Base: Normal{Loc: loc, Scale: scale}, Transform: Exp{}}
	x := tp.FromData(3, 2, []float64{0.5, 2, 1e-3, 7, 3, 0.1})
	require.InDeltaSlice(t, ln.LogProb(x).Data(), tr.LogProb(x).Data(), 1e-12)
	require.Equal(t, math.Inf(-1), tr.LogProb(row(tp, -1, 1)).Item())
	require.Error(t, tr.ValidateValue(row(tp, -1, 1)))
	require.NoError(t, tr.ValidateValue(row(tp, 1, 1)))
	require.InDeltaSlice(t, ln.Sample(newRNG()).Data(), tr.Sample(newRNG()).Data(), 1e-12)
	require.InDeltaSlice(t, ln.RSample(newRNG()).Data(), tr.RSample(newRNG()).Data(), 1e-12)

	affine := Transformed{Base: Normal{Loc: tp.Scalar(0), Scale: tp.Scalar(1)}, Transform: Affine{Loc: 2, Scale: -3}}
	n := Normal{Loc: tp.Scalar(2), Scale: tp.Scalar(3)}
	v := col(tp, -4, 0, 2, 9)
	require.InDeltaSlice(t, n.LogProb(v).Data(), affine.LogProb(v).Data(), 1e-12)
}

// The logit-normal (a Normal through Sigmoid) integrates to 1 on (0, 1),
// and the logistic-normal on the simplex (a Normal over 2 columns through
// StickBreaking) integrates to 1 over the triangle, by quadrature.
func TestTransformedIntegratesToOne(t *testing.T) {
	tp := ad.NewTape()
	logitNormal := Transformed{Base: Normal{Loc: tp.Scalar(0.4), Scale: tp.Scalar(1.3)}, Transform: Sigmoid{}}
	got := quad.Fixed(func(x float64) float64 {
		return math.Exp(logitNormal.LogProb(tp.Scalar(x)).Item())
	}, 0, 1, 2000, nil, 0)
	require.InDelta(t, 1, got, 1e-8)

	// Over the triangle y₀ + y₁ <= 1, in coordinates y₀ = u, y₁ = (1-u)·v.
	ln := Transformed{Base: Normal{Loc: row(tp, 0.2, -0.3), Scale: row(tp, 0.8, 0.6)}, Transform: StickBreaking{}}
	us, wu := legendre(400, 0, 1)
	var pts []float64
	for _, u := range us {
		for _, v := range us {
			y0, y1 := u, (1-u)*v
			pts = append(pts, y0, y1, 1-y0-y1)
		}
	}
	lp := ln.LogProb(tp.FromData(len(pts)/3, 3, pts))
	sum := 0.0
	for i, u := range us {
		for j := range us {
			sum += wu[i] * wu[j] * (1 - u) * math.Exp(lp.At(i*len(us)+j, 0))
		}
	}
	require.InDelta(t, 1, sum, 1e-6)
}

// Every distribution declares a support its samples lie in and parameter
// constraints its (valid) parameters satisfy, under the names its
// validation errors use, and its pointer form behaves as the value.
func TestDeclaredSupportAndParams(t *testing.T) {
	tp := ad.NewTape()
	l := tp.FromData(2, 2, []float64{1, 0, 0.5, 2})
	dists := []Declared{
		Normal{Loc: row(tp, 0, 1), Scale: row(tp, 1, 2)},
		BernoulliLogits(row(tp, 0.3, -2)),
		Categorical{Logits: row(tp, 0.3, -2, 1)},
		OneHotCategorical{Logits: row(tp, 0.3, -2, 1)},
		RelaxedBernoulli{Logits: row(tp, 0.3), Temperature: tp.Scalar(0.5)},
		RelaxedOneHotCategorical{Logits: row(tp, 0.3, -2, 1), Temperature: tp.Scalar(0.5)},
		Uniform{Low: row(tp, 0, -1), High: row(tp, 1, 3)},
		Delta{Value: row(tp, 2, 3)},
		Gamma{Concentration: row(tp, 0.5, 3), Rate: tp.Scalar(2)},
		Beta{Alpha: row(tp, 0.5, 3), Beta: tp.Scalar(2)},
		Dirichlet{Concentration: row(tp, 0.5, 3, 1)},
		Exponential{Rate: row(tp, 0.5, 3)},
		LogNormal{Loc: row(tp, 0, 1), Scale: row(tp, 1, 2)},
		Laplace{Loc: row(tp, 0, 1), Scale: row(tp, 1, 2)},
		StudentT{Df: tp.Scalar(3), Loc: row(tp, 0, 1), Scale: row(tp, 1, 2)},
		Cauchy{Loc: row(tp, 0, 1), Scale: row(tp, 1, 2)},
		HalfNormal{Scale: row(tp, 1, 2)},
		HalfCauchy{Scale: row(tp, 1, 2)},
		Poisson{Rate: row(tp, 1, 20)},
		MultivariateNormal{Loc: row(tp, 0, 1), ScaleTril: l},
		MultivariateNormalDiag{Loc: row(tp, 0, 1), Scale: row(tp, 1, 2)},
		Transformed{Base: Normal{Loc: row(tp, 0, 1), Scale: row(tp, 1, 2)}, Transform: Exp{}},
		Binomial{TotalCount: row(tp, 3, 10), Probs: tp.Scalar(0.4)},
		Geometric{Probs: row(tp, 0.3, 1)},
		NegativeBinomial{TotalCount: row(tp, 3, 0.5), Probs: tp.Scalar(0.4)},
		Multinomial{TotalCount: 5, Logits: row(tp, 0, 1, -1)},
	}
	for _, d := range dists {
		t.Run(fmt.Sprintf("%T", d), func(t *testing.T) {
			requirePointerFormAgrees(t, d)
			require.NoError(t, d.Validate())
			x := d.Sample(newRNG())
			require.NoError(t, Check(d.Support(), x), "samples lie in %v", d.Support())
			require.NotEmpty(t, d.Support().String())
			for name, c := range d.ParamConstraints() {
				require.NotNil(t, c, name)
			}
		})
	}
	// The constraints hold for the parameters themselves.
	require.NoError(t, Check(LowerCholesky, l))
	require.Error(t, Check(Gamma{}.ParamConstraints()["rate"], tp.Scalar(-1)))
}

// requirePointerFormAgrees checks that a pointer to d has the same
// capabilities as d and scores values the same, so that a model passing
// &dist.X{...} behaves as one passing the value.
func requirePointerFormAgrees(t *testing.T, d Distribution) {
	t.Helper()
	ptr := reflect.New(reflect.TypeOf(d))
	ptr.Elem().Set(reflect.ValueOf(d))
	p := ptr.Interface().(Distribution)
	capabilities := func(d Distribution) [7]bool {
		_, r := d.(Reparameterized)
		_, f := d.(Finite)
		_, rl := d.(Relaxable)
		_, e := d.(Elementwise)
		_, m := d.(Meaner)
		_, h := d.(Entropier)
		_, dc := d.(Declared)
		return [7]bool{r, f, rl, e, m, h, dc}
	}
	require.Equal(t, capabilities(d), capabilities(p), "capabilities of the pointer form")
	x := d.Sample(newRNG())
	require.Equal(t, d.LogProb(x).Data(), p.LogProb(x).Data())
	require.Equal(t, d.Sample(newRNG()).Data(), p.Sample(newRNG()).Data())
	require.Equal(t, EventColumns(d), EventColumns(p))
}
