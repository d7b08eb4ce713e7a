package ppl_test

import (
	"errors"
	"fmt"
	"math/rand/v2"

	"github.com/backpropq/backpropq/ad"
	"github.com/backpropq/backpropq/nn"
	"github.com/backpropq/backpropq/ppl"
	"github.com/backpropq/backpropq/ppl/dist"
	"github.com/backpropq/backpropq/trace"
)

// A model in ten lines: a layer of two binary latent causes, a linear
// decoder, observed binary data and a cost on the number of active
// causes. Tracing it rebuilds its stochastic computation graph.
func Example() {
	data := []float64{1, 0, 1, 1, 1, 0, 0, 0, 1, 0, 1, 1}
	model := func(ctx *ppl.Ctx) {
		tp := ctx.Tape()
		prior := ppl.Param(ctx, "prior", 1, 2, nn.Zeros{})
		h := ppl.Sample(ctx, "h", dist.BernoulliLogits(ppl.Expand(ctx, prior)))
		w := ppl.Param(ctx.Scope("decoder"), "W", 2, 3, nn.Constant(0.5))
		ppl.Observe(ctx, "x", dist.BernoulliLogits(ad.MatMul(h, w)), tp.FromData(4, 3, data))
		ppl.Cost(ctx, "active", ad.RowSum(h))
	}
	tr, err := trace.Run(model, trace.Seed(rand.New(rand.NewPCG(1, 2))), ppl.Config{Batch: 4})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Print(tr.Summary())
	fmt.Print(tr.Graph().DOT())
	// Output:
	// ADDRESS    KIND     SHAPE  PARENTS  MEAN LOG-PROB / COST
	// prior      param    [1x2]  -        -
	// h          sample   [4x2]  -        -1.386
	// decoder/W  param    [2x3]  -        -
	// x          observe  [4x3]  h        -2.047
	// active     cost     [4x1]  h        1
	// digraph scg {
	// 	n0 [label="h", shape=circle];
	// 	n1 [label="x", shape=square, peripheries=2];
	// 	n2 [label="active", shape=square, peripheries=2];
	// 	n0 -> n1;
	// 	n0 -> n2;
	// }
}

// Scopes and indices build hierarchical addresses.
func ExampleCtx_Scope() {
	_ = ppl.Run(func(ctx *ppl.Ctx) {
		rnn := ctx.Scope("decoder").Scope("rnn")
		for t := 0; t < 3; t++ {
			fmt.Println(rnn.Addr(ppl.At("y", t)))
		}
	})
	// Output:
	// decoder/rnn/y[0]
	// decoder/rnn/y[1]
	// decoder/rnn/y[2]
}

func ExampleAt() {
	fmt.Println(ppl.At("y", 3))
	// Output: y[3]
}

// Run runs a model under handlers without recording a trace; here a
// handler prints each site once the default behaviour has finished it.
func ExampleRun() {
	printer := ppl.HandlerFunc(func(s *ppl.Site, next func(*ppl.Site)) {
		next(s)
		fmt.Printf("%s %s id=%d parents=%v value=%v\n", s.Kind, s.Addr, s.ID, s.Parents, s.Value.Provenance())
	})
	err := ppl.Run(func(ctx *ppl.Ctx) {
		tp := ctx.Tape()
		z := ppl.Sample(ctx, "z", dist.Normal{Loc: tp.Zeros(1, 1), Scale: tp.Full(1, 1, 1)})
		y := ppl.Sample(ctx, "y", dist.Normal{Loc: z, Scale: tp.Full(1, 1, 1)})
		ppl.Cost(ctx, "f", ad.Square(ad.Sub(y, z)))
	}, ppl.Config{Rand: rand.New(rand.NewPCG(1, 2))}, printer)
	fmt.Println(err)
	// Output:
	// sample z id=0 parents={} value={0}
	// sample y id=1 parents={0} value={1}
	// cost f id=-1 parents={0,1} value={0,1}
	// <nil>
}

// A handler wraps the ones after it: this one makes every sample site
// draw without the pathwise gradient, then reports what happened.
func ExampleHandlerFunc() {
	noPathwise := ppl.HandlerFunc(func(s *ppl.Site, next func(*ppl.Site)) {
		s.NoRSample = true
		next(s)
		fmt.Printf("%s reparameterized: %v\n", s.Addr, s.Reparameterized)
	})
	_ = ppl.Run(func(ctx *ppl.Ctx) {
		tp := ctx.Tape()
		ppl.Sample(ctx, "z", dist.Normal{Loc: tp.Zeros(1, 1), Scale: tp.Full(1, 1, 1)})
	}, ppl.Config{Rand: rand.New(rand.NewPCG(1, 2))}, noPathwise)
	// Output: z reparameterized: false
}

// Library errors come back from Run naming the site.
func ExampleSiteError() {
	err := ppl.Run(func(ctx *ppl.Ctx) {
		tp := ctx.Tape()
		ppl.Sample(ctx.Scope("enc"), "z", dist.Normal{Loc: tp.Zeros(2, 1), Scale: tp.FromData(2, 1, []float64{1, -1})})
	}, ppl.Config{Rand: rand.New(rand.NewPCG(1, 2))})
	fmt.Println(err)
	var se *ppl.SiteError
	if errors.As(err, &se) {
		fmt.Println("address:", se.Addr)
	}
	// Output:
	// ppl: site "enc/z": dist: Normal: scale must be > 0 and finite, got -1 at row 1, column 0
	// address: enc/z
}

// Param creates a parameter in the store the first time and returns it
// afterwards; a training loop passes the same store to every run.
func ExampleParam() {
	store := nn.NewStore()
	for run := 0; run < 2; run++ {
		_ = ppl.Run(func(ctx *ppl.Ctx) {
			w := ppl.Param(ctx.Scope("enc"), "w", 1, 2, nn.Constant(0.25))
			fmt.Println(w.Data(), w.Provenance())
		}, ppl.Config{Params: store})
	}
	fmt.Println(store.Len(), store.Get("enc/w") != nil)
	// Output:
	// [0.25 0.25] {}
	// [0.25 0.25] {}
	// 1 true
}

// Expand broadcasts a [1 x D] parameter to the batch, so that a prior
// draws one value per row.
func ExampleExpand() {
	_ = ppl.Run(func(ctx *ppl.Ctx) {
		prior := ctx.Tape().FromData(1, 2, []float64{-1, 1})
		fmt.Println(ppl.Expand(ctx, prior).Dims())
	}, ppl.Config{Batch: 3})
	// Output: 3 2
}

// Module registers a layer's parameters under an address prefix.
func ExampleModule() {
	store := nn.NewStore()
	enc := nn.NewLinear(4, 2, rand.New(rand.NewPCG(1, 2)))
	_ = ppl.Run(func(ctx *ppl.Ctx) {
		ppl.Module(ctx, "encoder", enc)
	}, ppl.Config{Params: store})
	for _, p := range store.Params() {
		fmt.Println(p.Name, p.Value.RawMatrix().Rows, p.Value.RawMatrix().Cols)
	}
	// Output:
	// encoder/W 4 2
	// encoder/b 1 2
}

// Deterministic names an intermediate so that a trace shows it.
func ExampleDeterministic() {
	tr, _ := trace.Run(func(ctx *ppl.Ctx) {
		tp := ctx.Tape()
		z := ppl.Sample(ctx, "z", dist.Normal{Loc: tp.Zeros(1, 1), Scale: tp.Full(1, 1, 1)})
		ppl.Deterministic(ctx, "z2", ad.Square(z))
	}, trace.Seed(rand.New(rand.NewPCG(1, 2))))
	s := tr.Site("z2")
	fmt.Println(s.Kind, s.Parents)
	// Output: deterministic {0}
}

// A training loop owns one tape, one parameter store and one random
// source, and passes them to every run as a Config; resetting the tape
// between steps recycles its memory.
func ExampleConfig() {
	env := ppl.Config{Tape: ad.NewTape(), Params: nn.NewStore(), Rand: rand.New(rand.NewPCG(1, 2)), Batch: 2}
	model := func(ctx *ppl.Ctx) {
		loc := ppl.Param(ctx, "loc", 1, 1, nn.Constant(1))
		z := ppl.Sample(ctx, "z", dist.Normal{Loc: ppl.Expand(ctx, loc), Scale: ctx.Tape().Full(2, 1, 1)})
		ppl.Cost(ctx, "f", ad.Square(z))
	}
	for step := 0; step < 3; step++ {
		var cost *ad.Tensor
		err := ppl.Run(model, env, ppl.HandlerFunc(func(s *ppl.Site, next func(*ppl.Site)) {
			next(s)
			if s.Kind == ppl.KindCost {
				cost = s.Cost
			}
		}))
		if err != nil {
			fmt.Println(err)
			return
		}
		env.Params.ZeroGrad()
		env.Tape.Backward(ad.Mean(cost))
		fmt.Printf("step %d: d loss / d loc = %.3f\n", step, env.Params.Get("loc").Grad.At(0, 0))
		env.Tape.Reset()
	}
	// Output:
	// step 0: d loss / d loc = 2.454
	// step 1: d loss / d loc = 1.075
	// step 2: d loss / d loc = -1.486
}

// A plate holds the data points of a Bayesian linear regression: the
// slope w is global (one row per particle), the observations are local to
// the plate "data", subsampled to 3 of its 6 points. ppl.Broadcast brings
// w into the plate and ppl.Data brings the subsample's rows in; the
// observation inside the plate is weighed by 6/3, the global prior is not.
func ExamplePlate() {
	xs := []float64{0, 1, 2, 3, 4, 5}
	ys := []float64{0.1, 2.1, 3.9, 6.2, 7.8, 10.1}
	model := func(ctx *ppl.Ctx) {
		tp := ctx.Tape()
		w := ppl.Sample(ctx, "w", dist.Normal{Loc: tp.Zeros(ctx.Batch(), 1), Scale: tp.Full(ctx.Batch(), 1, 10)})
		data := ppl.Plate(ctx, "data", len(xs), ppl.Subsample(3))
		x := ppl.Data(data, tp.FromData(len(xs), 1, xs))
		y := ppl.Data(data, tp.FromData(len(ys), 1, ys))
		loc := ad.Mul(ppl.Broadcast(data, w), x)
		ppl.Observe(data, "y", dist.Normal{Loc: loc, Scale: tp.Full(data.Rows(), 1, 0.5)}, y)
	}
	tr, err := trace.Run(model, trace.Seed(rand.New(rand.NewPCG(1, 2))), ppl.Config{Batch: 2})
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, addr := range []string{"w", "y"} {
		s := tr.Site(addr)
		fmt.Printf("%s: %d rows, plates %v, scale %g, parents %v\n", addr, s.Value.Rows(), s.Plates, s.Scale, tr.Graph().Parents(addr))
	}
	// Output:
	// w: 2 rows, plates [], scale 1, parents []
	// y: 6 rows, plates [data[3/6]], scale 2, parents [w]
}
