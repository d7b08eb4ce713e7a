package trace_test

import (
	"fmt"
	"math/rand/v2"

	"github.com/backpropq/backpropq/ad"
	"github.com/backpropq/backpropq/nn"
	"github.com/backpropq/backpropq/ppl"
	"github.com/backpropq/backpropq/ppl/dist"
	"github.com/backpropq/backpropq/trace"
)

// gaussian returns N(loc, 1) with loc's shape.
func gaussian(loc *ad.Tensor) dist.Normal {
	r, c := loc.Dims()
	return dist.Normal{Loc: loc, Scale: loc.Tape().Full(r, c, 1)}
}

// bypass is a chain x1 -> x2 -> x3 -> f with a bypass x1 -> x3.
func bypass(ctx *ppl.Ctx) {
	x1 := ppl.Sample(ctx, "x1", gaussian(ctx.Tape().Zeros(1, 1)))
	x2 := ppl.Sample(ctx, "x2", gaussian(x1))
	x3 := ppl.Sample(ctx, "x3", gaussian(ad.Add(x1, x2)))
	ppl.Cost(ctx, "f", ad.Square(x3))
}

// Run a model and print its trace and its graph.
func ExampleRun() {
	tr, err := trace.Run(bypass, trace.Seed(rand.New(rand.NewPCG(1, 2))))
	if err != nil {
		fmt.Println(err)
		return
	}
	g := tr.Graph()
	for _, n := range g.Nodes() {
		fmt.Printf("%s <- %v\n", n, g.Parents(n))
	}
	// Output:
	// x1 <- []
	// x2 <- [x1]
	// x3 <- [x1 x2]
	// f <- [x3]
}

// The bypass from x1 around x2 enlarges x2's scope (section 3.1): the
// Q-function of x2 must also see x1.
func ExampleGraph_Scope() {
	tr, _ := trace.Run(bypass, trace.Seed(rand.New(rand.NewPCG(1, 2))))
	g := tr.Graph()
	for _, x := range g.Stochastic() {
		fmt.Printf("Sc(%s) = %v\n", x, g.Scope(x, "f"))
	}
	// Output:
	// Sc(x1) = [x1]
	// Sc(x2) = [x1 x2]
	// Sc(x3) = [x3]
}

// The frontier of a set V for a cost f: the members of V from which f is
// reachable through random variables outside V.
func ExampleGraph_Frontier() {
	tr, _ := trace.Run(bypass, trace.Seed(rand.New(rand.NewPCG(1, 2))))
	g := tr.Graph()
	fmt.Println(g.Frontier([]string{"x1", "x2"}, "f"))
	fmt.Println(g.Frontier([]string{"x1", "x3"}, "f"))
	fmt.Println(g.Ancestors("x3"), g.CostsFrom("x1"))
	// Output:
	// [x1 x2]
	// [x3]
	// [x1 x2] [f]
}

// The graph in Graphviz's DOT language: random variables are circles,
// costs double squares (the paper's Figure 10 notation).
func ExampleGraph_DOT() {
	tr, _ := trace.Run(bypass, trace.Seed(rand.New(rand.NewPCG(1, 2))))
	fmt.Print(tr.Graph().DOT())
	// Output:
	// digraph scg {
	// 	n0 [label="x1", shape=circle];
	// 	n1 [label="x2", shape=circle];
	// 	n2 [label="x3", shape=circle];
	// 	n3 [label="f", shape=square, peripheries=2];
	// 	n0 -> n1;
	// 	n0 -> n2;
	// 	n1 -> n2;
	// 	n2 -> n3;
	// }
}

// A loop over time steps with indexed addresses.
func ExampleTrace_Summary() {
	model := func(ctx *ppl.Ctx) {
		tp := ctx.Tape()
		y := tp.Zeros(1, 1)
		for t := 0; t < 3; t++ {
			y = ppl.Sample(ctx, ppl.At("y", t), gaussian(y))
		}
		ppl.Cost(ctx, "f", ad.Mul(y, tp.Scalar(0)))
	}
	tr, _ := trace.Run(model, trace.Seed(rand.New(rand.NewPCG(1, 2))))
	fmt.Print(tr.Summary())
	// Output:
	// ADDRESS  KIND    SHAPE  PARENTS  MEAN LOG-PROB / COST
	// y[0]     sample  [1x1]  -        -0.9909
	// y[1]     sample  [1x1]  y[0]     -0.9217
	// y[2]     sample  [1x1]  y[1]     -0.939
	// f        cost    [1x1]  y[2]     0
}

// A model re-run under Replay sees the guide's values and scores them
// under its own distributions.
func ExampleReplay() {
	tp := ad.NewTape()
	env := ppl.Config{Tape: tp, Rand: rand.New(rand.NewPCG(1, 2))}
	guide := func(ctx *ppl.Ctx) {
		ppl.Sample(ctx, "z", gaussian(ctx.Tape().Full(1, 1, 3)))
	}
	model := func(ctx *ppl.Ctx) {
		z := ppl.Sample(ctx, "z", gaussian(ctx.Tape().Zeros(1, 1)))
		ppl.Observe(ctx, "x", gaussian(z), ctx.Tape().Full(1, 1, 2.5))
	}
	gt, _ := trace.Run(guide, env)
	mt, _ := trace.Run(model, env, trace.Replay(gt), ppl.Config{FirstID: gt.NextID()})
	g, m := gt.Site("z"), mt.Site("z")
	fmt.Printf("same value: %v, replayed: %v, ids %d and %d\n", g.Value.At(0, 0) == m.Value.At(0, 0), m.Replayed, g.ID, m.ID)
	fmt.Printf("log q = %.3f, log p = %.3f\n", g.LogProb.Item(), m.LogProb.Item())
	// Output:
	// same value: true, replayed: true, ids 0 and 1
	// log q = -0.991, log p = -6.629
}

// Condition turns a sample site into an observation of the given value.
func ExampleCondition() {
	tp := ad.NewTape()
	tr, _ := trace.Run(bypass, ppl.Config{Tape: tp, Rand: rand.New(rand.NewPCG(1, 2))},
		trace.Condition(map[string]*ad.Tensor{"x2": tp.Full(1, 1, 0)}))
	g := tr.Graph()
	fmt.Println(tr.Site("x2").Kind, g.Stochastic(), g.Costs())
	fmt.Printf("%.4f\n", tr.Site("x2").LogProb.Item())
	// Output:
	// observe [x1 x3] [x2 f]
	// -0.9909
}

// Do fixes a value without scoring it: the site leaves the graph, and
// x3 no longer depends on x2.
func ExampleDo() {
	tp := ad.NewTape()
	tr, _ := trace.Run(bypass, ppl.Config{Tape: tp, Rand: rand.New(rand.NewPCG(1, 2))},
		trace.Do(map[string]*ad.Tensor{"x2": tp.Full(1, 1, 0)}))
	g := tr.Graph()
	fmt.Println(tr.Site("x2").Kind, tr.Site("x2").LogProb == nil, g.Parents("x3"))
	// Output: deterministic true [x1]
}

// Override re-runs a model with a relaxed value at a discrete site; the
// gradient flows through the relaxed value and the graph keeps its shape.
func ExampleOverride() {
	tp := ad.NewTape()
	logit := tp.Full(1, 1, 0.4)
	model := func(ctx *ppl.Ctx) {
		b := ppl.Sample(ctx, "b", dist.BernoulliLogits(logit))
		ppl.Cost(ctx, "f", ad.Square(ad.Sub(b, ctx.Tape().Scalar(0.49))))
	}
	var relaxed *ad.Tensor
	tr, _ := trace.Run(model, ppl.Config{Tape: tp, Rand: rand.New(rand.NewPCG(1, 2))},
		trace.Override(func(s *ppl.Site) *ad.Tensor {
			relaxed = ad.Sigmoid(ad.Scale(s.Dist.(dist.Bernoulli).Logits, 2)) // temperature 1/2
			return relaxed
		}))
	b := tr.Site("b")
	grad := tp.Gradients(tr.Site("f").Cost, logit)[0]
	fmt.Printf("b = %.4f, substituted: %v, scored: %v, parents of f: %v\n",
		b.Value.Item(), b.Substituted, b.LogProb != nil, tr.Graph().Parents("f"))
	fmt.Printf("df/dlogit = %.4f\n", grad.At(0, 0))
	// Output:
	// b = 0.6900, substituted: true, scored: false, parents of f: [b]
	// df/dlogit = 0.1711
}

// Substitute replaces a parameter's value for one run.
func ExampleSubstitute() {
	tp := ad.NewTape()
	model := func(ctx *ppl.Ctx) {
		w := ppl.Param(ctx, "w", 1, 2, nn.Zeros{})
		fmt.Println(w.Data())
	}
	_, _ = trace.Run(model, ppl.Config{Tape: tp})
	_, _ = trace.Run(model, ppl.Config{Tape: tp}, trace.Substitute(map[string]*ad.Tensor{"w": tp.FromData(1, 2, []float64{1, 2})}))
	// Output:
	// [0 0]
	// [1 2]
}

// Block hides sites from the trace (and the handlers after it); Record
// placed before it sees them.
func ExampleBlock() {
	var inner trace.Trace
	tr, _ := trace.Run(bypass, trace.Seed(rand.New(rand.NewPCG(1, 2))),
		trace.Record(&inner), trace.Block(trace.Addrs("x2")))
	fmt.Println(tr.Graph().Nodes(), inner.Graph().Nodes())
	// Output: [x1 x3 f] [x1 x2 x3 f]
}

// Scale and Mask weigh log-probs and costs, for a minibatch of 2 out of
// 10 data points of which the second is padding.
func ExampleMask() {
	tp := ad.NewTape()
	model := func(ctx *ppl.Ctx) {
		ppl.Cost(ctx, "f", ctx.Tape().FromData(2, 1, []float64{1.5, 7}))
	}
	tr, _ := trace.Run(model, ppl.Config{Tape: tp},
		trace.Scale(5), trace.Mask(tp.FromData(2, 1, []float64{1, 0})))
	f := tr.Site("f")
	fmt.Println(f.Scale, f.Cost.Data(), f.ScaledCost().Data())
	// Output: 5 [1.5 7] [7.5 0]
}

// Seed makes a run reproducible.
func ExampleSeed() {
	draw := func() float64 {
		tr, _ := trace.Run(bypass, trace.Seed(rand.New(rand.NewPCG(7, 7))))
		return tr.Site("x3").Value.At(0, 0)
	}
	fmt.Println(draw() == draw())
	// Output: true
}

// The two-cost graph of the paper's Figure 2(a): the costs each random
// variable reaches, and the scope of Y for each of them.
func ExampleGraph_CostsFrom() {
	model := func(ctx *ppl.Ctx) {
		x := ppl.Sample(ctx, "X", gaussian(ctx.Tape().Zeros(1, 1)))
		y := ppl.Sample(ctx, "Y", gaussian(x))
		z := ppl.Sample(ctx, "Z", gaussian(x))
		ppl.Cost(ctx, "f1", ad.Square(y))
		ppl.Cost(ctx, "f2", ad.Mul(y, z))
	}
	tr, _ := trace.Run(model, trace.Seed(rand.New(rand.NewPCG(1, 2))))
	g := tr.Graph()
	for _, x := range g.Stochastic() {
		fmt.Println(x, "reaches", g.CostsFrom(x))
	}
	fmt.Println("Sc(Y, f1) =", g.Scope("Y", "f1"), " Sc(Y, f2) =", g.Scope("Y", "f2"))
	// Output:
	// X reaches [f1 f2]
	// Y reaches [f1 f2]
	// Z reaches [f2]
	// Sc(Y, f1) = [Y]  Sc(Y, f2) = [X Y]
}

// ReplayValues fixes sample values from a map (an experience-replay
// buffer, say) while the sites stay random variables, so the sites
// downstream are drawn given them.
func ExampleReplayValues() {
	tp := ad.NewTape()
	tr, _ := trace.Run(bypass, ppl.Config{Tape: tp, Rand: rand.New(rand.NewPCG(1, 2))},
		trace.ReplayValues(map[string]*ad.Tensor{"x1": tp.Full(1, 1, 2), "x2": tp.Full(1, 1, -1)}))
	for _, a := range []string{"x1", "x2"} {
		s := tr.Site(a)
		fmt.Printf("%s = %v, replayed %v, log p = %.4f\n", a, s.Value.Item(), s.Replayed, s.LogProb.Item())
	}
	fmt.Println(tr.Graph().Parents("x3"))
	// Output:
	// x1 = 2, replayed true, log p = -2.9189
	// x2 = -1, replayed true, log p = -5.4189
	// [x1 x2]
}
