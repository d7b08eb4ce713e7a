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

// gmm is a mixture of three unit-variance Normals with weights ~
// Dirichlet(1, 1, 1) and means ~ N(0, 10²); each point's assignment z is
// summed out by the objective (vi.TraceEnum), so it needs no guide.
func gmm(xs []float64) ppl.Model {
	return func(ctx *ppl.Ctx) {
		tp, p := ctx.Tape(), ctx.Batch()
		weights := ppl.Sample(ctx, "weights", dist.Dirichlet{Concentration: tp.Full(p, 3, 1)})
		means := ppl.Sample(ctx, "means", dist.Normal{Loc: tp.Zeros(p, 3), Scale: tp.Full(p, 3, 10)})
		data := ppl.Plate(ctx, "data", len(xs))
		z := ppl.Sample(data, "z", dist.Categorical{Logits: ppl.Broadcast(data, ad.Log(weights))})
		loc := ad.Gather(ppl.Broadcast(data, means), z)
		ppl.Observe(data, "x", dist.Normal{Loc: loc, Scale: tp.Full(data.Rows(), 1, 1)}, ppl.Data(data, tp.FromData(len(xs), 1, xs)))
	}
}

// mixture fits the mixture's weights and means (MAP) and compares them
// with EM run from the same start.
func mixture(w io.Writer, effort float64) error {
	rng := rand.New(rand.NewPCG(3, 4))
	xs := make([]float64, 300)
	for i := range xs {
		xs[i] = []float64{-4, 0, 3.5}[rng.IntN(3)] + rng.NormFloat64()
	}
	start := []float64{xs[0], xs[1], xs[2]}

	guide := func(ctx *ppl.Ctx) {
		weights := ppl.ParamIn(ctx, "map/weights", 1, 3, dist.Simplex, nn.Constant(1.0/3))
		means := ppl.Param(ctx, "map/means", 1, 3, nn.InitFunc(func(m *mat.Dense, _ *rand.Rand) { m.SetRow(0, start) }))
		ppl.Sample(ctx, "weights", dist.Delta{Value: ppl.Expand(ctx, weights)})
		ppl.Sample(ctx, "means", dist.Delta{Value: ppl.Expand(ctx, means)})
	}
	obj := vi.TraceEnum{ELBO: vi.ELBO{Model: gmm(xs), Guide: guide}, Site: "z"}
	adam := nn.NewAdam(0.05)
	svi := &infer.SVI{Objective: obj, Optimizer: adam, Params: nn.NewStore(), Particles: 1}
	n := steps(1500, effort)
	for i := range n {
		if i == 2*n/3 {
			adam.LR = 0.005
		}
		if _, err := svi.Step(); err != nil {
			return err
		}
	}

	simplex, err := dist.BijectTo(dist.Simplex)
	if err != nil {
		return err
	}
	weights := simplex.Forward(ad.NewTape().Const(svi.Params.Get("map/weights").Value)).Data()
	means := svi.Params.Get("map/means").Value.RawRowView(0)
	emWeights, emMeans := em(xs, start)
	ll, resp := logLik(xs, weights, means)
	emLL, _ := logLik(xs, emWeights, emMeans)
	fmt.Fprintf(w, "weights          %.3f   EM %.3f\n", weights, emWeights)
	fmt.Fprintf(w, "means            %.3f   EM %.3f\n", means, emMeans)
	fmt.Fprintf(w, "log-likelihood   %.3f   EM %.3f\n", ll, emLL)

	post, err := obj.Posterior(ppl.Config{Params: svi.Params, Rand: rng, Batch: 1})
	if err != nil {
		return err
	}
	for i := range 3 {
		fmt.Fprintf(w, "p(z[%d] | x) = %.3f   by hand %.3f\n", i, post.Value().RawRowView(i), resp[i])
	}
	return nil
}

// logLik returns the mixture's log-likelihood and each point's
// responsibilities p(z_i = k | x_i).
func logLik(xs, weights, means []float64) (float64, [][]float64) {
	var ll float64
	resp := make([][]float64, len(xs))
	for i, x := range xs {
		r, total := make([]float64, 3), 0.0
		for k := range r {
			r[k] = weights[k] * math.Exp(-0.5*(x-means[k])*(x-means[k])) / math.Sqrt(2*math.Pi)
			total += r[k]
		}
		for k := range r {
			r[k] /= total
		}
		resp[i], ll = r, ll+math.Log(total)
	}
	return ll, resp
}

// em runs expectation-maximization from uniform weights and start.
func em(xs, start []float64) (weights, means []float64) {
	weights, means = []float64{1.0 / 3, 1.0 / 3, 1.0 / 3}, append([]float64(nil), start...)
	for range 1000 {
		_, resp := logLik(xs, weights, means)
		for k := range 3 {
			var nk, sum float64
			for i, r := range resp {
				nk, sum = nk+r[k], sum+r[k]*xs[i]
			}
			weights[k], means[k] = nk/float64(len(xs)), sum/nk
		}
	}
	return weights, means
}
