package main

import (
	"fmt"
	"io"
	"math"
	"math/rand/v2"

	"gonum.org/v1/gonum/mat"

	"github.com/backpropq/backpropq/ad"
	"github.com/backpropq/backpropq/infer"
	"github.com/backpropq/backpropq/nn"
	"github.com/backpropq/backpropq/ppl"
	"github.com/backpropq/backpropq/ppl/dist"
	"github.com/backpropq/backpropq/vi"
)

// linear is y = w x + b + N(0, 0.5²) with w, b ~ N(0, 2²); ys nil draws y
// (prediction at new inputs).
func linear(xs, ys []float64) ppl.Model {
	return func(ctx *ppl.Ctx) {
		tp, p := ctx.Tape(), ctx.Batch()
		prior := dist.Normal{Loc: tp.Zeros(p, 1), Scale: tp.Full(p, 1, 2)}
		w, b := ppl.Sample(ctx, "w", prior), ppl.Sample(ctx, "b", prior)
		data := ppl.Plate(ctx, "data", len(xs))
		loc := ad.Add(ad.Mul(ppl.Broadcast(data, w), ppl.Data(data, tp.FromData(len(xs), 1, xs))), ppl.Broadcast(data, b))
		y := dist.Normal{Loc: loc, Scale: tp.Full(data.Rows(), 1, 0.5)}
		if ys == nil {
			ppl.Sample(data, "y", y)
			return
		}
		ppl.Observe(data, "y", y, ppl.Data(data, tp.FromData(len(ys), 1, ys)))
	}
}

// regression fits the regression with a full-rank automatic guide and
// compares it, and its posterior predictive, with the conjugate posterior.
func regression(w io.Writer, effort float64) error {
	rng := rand.New(rand.NewPCG(1, 2))
	xs, ys := make([]float64, 200), make([]float64, 200)
	for i := range xs {
		xs[i] = 4 * rng.Float64()
		ys[i] = 1.5*xs[i] - 0.7 + 0.5*rng.NormFloat64()
	}

	model := linear(xs, ys)
	guide, err := infer.NewAutoMultivariateNormal(model, infer.AutoOptions{})
	if err != nil {
		return err
	}
	adam := nn.NewAdam(0.05)
	svi := &infer.SVI{Objective: vi.ELBO{Model: model, Guide: guide.Guide}, Optimizer: adam, Params: nn.NewStore(), Particles: 16}
	for i := range steps(3000, effort) {
		adam.LR = 0.05 * math.Pow(0.02, float64(i)/float64(steps(3000, effort))) // decay to 0.001
		if _, err := svi.Step(); err != nil {
			return err
		}
	}

	mean, cov, err := guide.Moments(svi.Params)
	if err != nil {
		return err
	}
	exactMean, exactCov, err := conjugate(xs, ys)
	if err != nil {
		return err
	}
	fmt.Fprintln(w, "posterior      fitted            exact")
	for j, name := range []string{"w", "b"} {
		fmt.Fprintf(w, "%-6s  %6.3f ± %.4f   %6.3f ± %.4f\n", name, mean.AtVec(j), math.Sqrt(cov.At(j, j)), exactMean.AtVec(j), math.Sqrt(exactCov.At(j, j)))
	}
	fmt.Fprintf(w, "corr(w, b)  %6.3f           %6.3f\n", cov.At(0, 1)/math.Sqrt(cov.At(0, 0)*cov.At(1, 1)), exactCov.At(0, 1)/math.Sqrt(exactCov.At(0, 0)*exactCov.At(1, 1)))

	inputs := []float64{0.5, 2, 3.5}
	pred, err := infer.Predictive{Model: linear(inputs, nil), Guide: guide.Guide, Params: svi.Params, Sites: []string{"y"}, Samples: 20000}.Run()
	if err != nil {
		return err
	}
	sum, err := pred.Summary("y")
	if err != nil {
		return err
	}
	fmt.Fprintln(w, "predictive y   fitted           exact")
	for i, x := range inputs {
		f := mat.NewVecDense(2, []float64{x, 1})
		fmt.Fprintf(w, "x = %.1f   %6.3f ± %.3f   %6.3f ± %.3f\n", x, sum.Mean.At(i, 0), sum.SD.At(i, 0), mat.Dot(f, exactMean), math.Sqrt(mat.Inner(f, exactCov, f)+0.25))
	}
	return nil
}

// conjugate returns the exact posterior mean and covariance of (w, b).
func conjugate(xs, ys []float64) (*mat.VecDense, *mat.SymDense, error) {
	prec := mat.NewSymDense(2, []float64{0.25, 0, 0, 0.25})
	rhs := mat.NewVecDense(2, nil)
	for i, x := range xs {
		f := mat.NewVecDense(2, []float64{x, 1})
		prec.SymRankOne(prec, 4, f) // 1 / 0.5²
		rhs.AddScaledVec(rhs, 4*ys[i], f)
	}
	var chol mat.Cholesky
	var cov mat.SymDense
	if !chol.Factorize(prec) {
		return nil, nil, fmt.Errorf("posterior precision is not positive definite")
	}
	if err := chol.InverseTo(&cov); err != nil {
		return nil, nil, err
	}
	var mean mat.VecDense
	mean.MulVec(&cov, rhs)
	return &mean, &cov, nil
}
