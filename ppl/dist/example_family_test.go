package dist_test

import (
	"fmt"
	"math/rand/v2"

	"gonum.org/v1/gonum/mat"

	"github.com/backpropq/backpropq/ad"
	"github.com/backpropq/backpropq/ppl/dist"
)

// A Transformed distribution pushes a base distribution through a
// bijection: exp of a Normal is a log-normal, and StickBreaking of a
// Normal over K-1 columns is a logistic-normal on the K-simplex.
func ExampleTransformed() {
	tp := ad.NewTape()
	logNormal := dist.Transformed{
		Base:      dist.Normal{Loc: tp.Scalar(0), Scale: tp.Scalar(1)},
		Transform: dist.Exp{},
	}
	same := dist.LogNormal{Loc: tp.Scalar(0), Scale: tp.Scalar(1)}
	x := tp.FromData(3, 1, []float64{0.5, 1, -1})
	fmt.Printf("%.4f\n%.4f\n", logNormal.LogProb(x).Data(), same.LogProb(x).Data())

	simplex := dist.Transformed{
		Base:      dist.Normal{Loc: tp.Zeros(1, 2), Scale: tp.Full(1, 2, 1)},
		Transform: dist.StickBreaking{},
	}
	y := simplex.Sample(rand.New(rand.NewPCG(1, 2)))
	fmt.Println(simplex.Shape())
	fmt.Println(dist.Check(dist.Simplex, y))
	// Output:
	// [-0.4660 -0.9189 -Inf]
	// [-0.4660 -0.9189 -Inf]
	// 1 3
	// <nil>
}

// BijectTo gives the transform from unconstrained numbers onto a
// constraint: a parameter stored unconstrained stays in its domain
// whatever step an optimizer takes.
func ExampleBijectTo() {
	tp := ad.NewTape()
	t, _ := dist.BijectTo(dist.Interval(0, 10))
	u := tp.FromData(1, 3, []float64{-50, 0, 50})
	fmt.Printf("%.3f\n", t.Forward(u).Data())
	// Output: [0.000 5.000 10.000]
}

// A Gamma's samples carry implicit reparameterization gradients: here the
// gradient of E[z] = α/β with respect to the concentration α is 1/β.
func ExampleGamma() {
	tp := ad.NewTape()
	alpha := ad.NewVar(mat.NewDense(1, 1, []float64{0.5}))
	d := dist.Gamma{Concentration: ad.Add(tp.Var(alpha), tp.Zeros(100000, 1)), Rate: tp.Scalar(2)}
	z := d.RSample(rand.New(rand.NewPCG(1, 2)))
	tp.Backward(ad.Mean(z))
	fmt.Printf("d E[z] / d alpha ≈ %.2f (exact 0.5)\n", alpha.Grad.At(0, 0))
	// Output: d E[z] / d alpha ≈ 0.50 (exact 0.5)
}

// A MultivariateNormal with a lower-triangular scale: its covariance is
// L·Lᵀ, and RSample's gradient reaches both parameters.
func ExampleMultivariateNormal() {
	tp := ad.NewTape()
	d := dist.MultivariateNormal{
		Loc:       tp.FromData(1, 2, []float64{1, -1}),
		ScaleTril: tp.FromData(2, 2, []float64{2, 0, 0.5, 1}),
	}
	fmt.Println(d.Covariance().Data())
	fmt.Printf("log p(loc) = %.4f\n", d.LogProb(d.Loc).Item())
	fmt.Println(d.Validate())
	// Output:
	// [4 1 1 1.25]
	// log p(loc) = -2.5310
	// <nil>
}

// A Dirichlet's samples lie on the simplex; its KL to another Dirichlet
// has a closed form.
func ExampleDirichlet() {
	tp := ad.NewTape()
	p := dist.Dirichlet{Concentration: tp.FromData(1, 3, []float64{2, 3, 5})}
	q := dist.Dirichlet{Concentration: tp.FromData(1, 3, []float64{1, 1, 1})}
	x := p.Sample(rand.New(rand.NewPCG(1, 2)))
	fmt.Println(dist.Check(dist.Simplex, x))
	fmt.Printf("mean %.2f\n", p.Mean().Data())
	kl, _ := dist.KL(p, q)
	fmt.Printf("KL(p || uniform) = %.4f\n", kl.Item())
	// Output:
	// <nil>
	// mean [0.20 0.30 0.50]
	// KL(p || uniform) = 0.7680
}

// Independent declares the columns of an elementwise distribution one
// event; the log-probability of a row is the same.
func ExampleIndependent() {
	tp := ad.NewTape()
	n := dist.Normal{Loc: tp.Zeros(1, 3), Scale: tp.Full(1, 3, 1)}
	fmt.Println(dist.EventColumns(n), dist.EventColumns(dist.Independent(n)))
	// Output: 1 3
}
