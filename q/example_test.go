package q_test

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"

	"gonum.org/v1/gonum/mat"

	"github.com/backpropq/backpropq/ad"
	"github.com/backpropq/backpropq/ppl"
	"github.com/backpropq/backpropq/ppl/dist"
	"github.com/backpropq/backpropq/q"
	"github.com/backpropq/backpropq/trace"
)

// coin draws a Bernoulli site whose probability of 1 is 0.3 + 0.4*mean of
// parents, so that the site depends on them.
func coin(ctx *ppl.Ctx, addr string, parents ...*ad.Tensor) *ad.Tensor {
	b := ctx.Batch()
	p := ctx.Tape().Full(b, 1, 0.3)
	for _, x := range parents {
		p = ad.Add(p, ad.Scale(x, 0.4/float64(len(parents))))
	}
	return ppl.Sample(ctx, addr, dist.BernoulliProbs(p))
}

// figure2 is section 3.2's multi-cost SCG: X -> Y, X -> Z, f1(Y),
// f2(Y, Z), f3(X).
func figure2Model(ctx *ppl.Ctx) {
	x := coin(ctx, "X")
	y := coin(ctx, "Y", x)
	z := coin(ctx, "Z", x)
	ppl.Cost(ctx, "f1", y)
	ppl.Cost(ctx, "f2", ad.Mul(y, z))
	ppl.Cost(ctx, "f3", ad.Scale(x, 0.5))
}

// Build a Backprop-Q network from a traced model, per cost and merged.
func ExampleBuild() {
	rng := rand.New(rand.NewPCG(1, 2))
	tr, err := trace.Run(figure2Model, ppl.Config{Rand: rng, Batch: 4})
	if err != nil {
		fmt.Println(err)
		return
	}
	perCost, _ := q.Build(tr.Graph(), q.NetworkOptions{})
	fmt.Print(perCost)
	merged, _ := q.Build(tr.Graph(), q.NetworkOptions{Merge: true})
	fmt.Print(merged)
	// Output:
	// Q^{f2}_Z(X,Z) <- f2
	// Q^{f1}_Y(Y) <- f1
	// Q^{f2}_Y(X,Y) <- f2
	// Q^{f1}_X(X) <- Q^{f1}_Y
	// Q^{f2}_X(X) <- avg(Q^{f2}_Y, Q^{f2}_Z)
	// Q^{f3}_X(X) <- f3
	// Q^{f2}_Z(X,Z) <- f2
	// Q^{f1}_Y(Y) <- f1
	// Q^{f2}_Y(X,Y) <- f2
	// Q^{f1,f2,f3}_X(X) <- Q^{f1}_Y + avg(Q^{f2}_Y, Q^{f2}_Z) + f3
}

// Reductions to spanning trees: on a chain with a bypass to the cost,
// ReduceChain keeps the long path and ReduceShortest the bypass.
func ExampleReduction() {
	model := func(ctx *ppl.Ctx) {
		a := coin(ctx, "a")
		b := coin(ctx, "b", a)
		ppl.Cost(ctx, "f", ad.Add(a, b))
	}
	tr, _ := trace.Run(model, ppl.Config{Rand: rand.New(rand.NewPCG(1, 2)), Batch: 1})
	for _, r := range []q.Reduction{q.ReduceNone, q.ReduceShortest, q.ReduceChain} {
		net, _ := q.Build(tr.Graph(), q.NetworkOptions{Reduce: r})
		fmt.Printf("%s:\n%s", r, net)
	}
	// Output:
	// none:
	// Q^{f}_b(a,b) <- f
	// Q^{f}_a(a) <- avg(Q^{f}_b, f)
	// shortest:
	// Q^{f}_b(a,b) <- f
	// Q^{f}_a(a) <- f
	// chain:
	// Q^{f}_b(a,b) <- f
	// Q^{f}_a(a) <- Q^{f}_b
}

// Train tabular critics by TD and read the local cost of a site.
func ExampleSet_Update() {
	rng := rand.New(rand.NewPCG(1, 2))
	cache := q.Cache{Options: q.NetworkOptions{Merge: true}}
	critics := q.NewSet(q.Config{Kind: q.TabularKind})
	var net *q.Network
	for range 100 {
		tr, err := trace.Run(figure2Model, ppl.Config{Rand: rng, Batch: 256})
		if err != nil {
			fmt.Println(err)
			return
		}
		net, _ = cache.Network(tr.Graph())
		if _, err := critics.Update(net, tr, q.TD{}); err != nil {
			fmt.Println(err)
			return
		}
	}
	fmt.Println(critics.Keys())
	// Q^{f1,f2,f3}_X(x) = E[f1 + f2 + f3 | x]: for x = 1, y and z are 1
	// with probability 0.7, so 0.7 + 0.49 + 0.5 = 1.69.
	fmt.Printf("%.1f\n", predict(critics, net.NodesAt("X")[0], []float64{1}))
	// Output:
	// [X|f1,f2,f3 Y|f1 Y|f2 Z|f2]
	// 1.7
}

// The graph lambda-return errors: lambda = 1 gives the Monte Carlo return.
func ExampleErrors() {
	tr, _ := trace.Run(figure2Model, ppl.Config{Rand: rand.New(rand.NewPCG(1, 2)), Batch: 1})
	net, _ := q.Build(tr.Graph(), q.NetworkOptions{Merge: true})
	v := &q.Values{Rows: 1, Costs: map[string][]float64{"f1": {1}, "f2": {2}, "f3": {4}}}
	for range net.Nodes {
		v.Q = append(v.Q, []float64{0.5})
	}
	v.Target = v.Q
	x := net.NodesAt("X")[0].Index
	for _, lambda := range []float64{0, 1} {
		d, _ := q.Errors(net, v, q.TD{Lambda: lambda})
		fmt.Printf("lambda %v: target %.2f\n", lambda, v.Q[x][0]+d[x][0])
	}
	// Output:
	// lambda 0: target 5.00
	// lambda 1: target 7.00
}

// Save critics and load them into a new set.
func ExampleSave() {
	rng := rand.New(rand.NewPCG(1, 2))
	critics := q.NewSet(q.Config{Kind: q.TabularKind})
	tr, _ := trace.Run(figure2Model, ppl.Config{Rand: rng, Batch: 64})
	net, _ := q.Build(tr.Graph(), q.NetworkOptions{})
	if _, err := critics.Update(net, tr, q.TD{}); err != nil {
		fmt.Println(err)
		return
	}
	dir, _ := os.MkdirTemp("", "q")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "critics.ckpt")
	if err := q.Save(path, critics); err != nil {
		fmt.Println(err)
		return
	}
	loaded := q.NewSet(q.Config{Kind: q.TabularKind})
	if err := q.Load(path, loaded, q.LoadOptions{}); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(len(loaded.Keys()) == len(critics.Keys()))
	// Output:
	// true
}

// Extra critic inputs must depend only on the site's scope.
func ExampleInput() {
	model := func(ctx *ppl.Ctx) {
		a := coin(ctx, "a")
		b := coin(ctx, "b", a)
		q.Input(ctx, "b", a) // a is not in b's scope: f depends on a only through b
		ppl.Cost(ctx, "f", b)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	tr, _ := trace.Run(model, ppl.Config{Rand: rng, Batch: 2})
	net, _ := q.Build(tr.Graph(), q.NetworkOptions{})
	_, err := q.NewSet(q.Config{Kind: q.LinearKind, Seed: 1}).Evaluate(net, tr)
	fmt.Println(err)
	// Output:
	// q: site "b": critic inputs "b@q" depend on site "a", outside the scope [b]
}

// One critic serves every step of a chain through an address template.
func ExampleTemplate() {
	fmt.Println(q.Template("decoder/y[3]/z[12]"))
	// Output:
	// decoder/y[*]/z[*] [3 12]
}

// Graph experience replay on stored rows, re-sampling children.
func ExampleBuffer() {
	rng := rand.New(rand.NewPCG(1, 2))
	buf := q.NewBuffer(1000)
	tr, _ := trace.Run(figure2Model, ppl.Config{Rand: rng, Batch: 500})
	_ = buf.Add(tr)
	net, _ := q.Build(tr.Graph(), q.NetworkOptions{Merge: true})
	critics := q.NewSet(q.Config{Kind: q.TabularKind})
	for range 50 {
		if _, err := critics.Replay(net, buf, figure2Model, ppl.Config{Rand: rng}, q.ReplayOptions{Rows: 256}); err != nil {
			fmt.Println(err)
			return
		}
	}
	fmt.Printf("%d rows, Q_X(1) = %.2f\n", buf.Len(), predict(critics, net.NodesAt("X")[0], []float64{1}))
	// Output:
	// 500 rows, Q_X(1) = 1.69
}

// Advantages subtract the parent's value from a site's Q-function. Q_X
// sums Q^f1_Y, the average of Q^f2_Y and Q^f2_Z, and f3: Y's advantage is
// (Q^f1_Y + Q^f2_Y + f3) - Q_X = 1 + 0.3 + 0.5 - 1.5, with the sampled f3
// standing for the other branch (Figure 8(c)); Z's takes Q^f1_Y's sampled
// value: 1 + 0.2 + 0.5 - 1.5.
func ExampleAdvantages() {
	tr, _ := trace.Run(figure2Model, ppl.Config{Rand: rand.New(rand.NewPCG(1, 2)), Batch: 1})
	net, _ := q.Build(tr.Graph(), q.NetworkOptions{Merge: true})
	v := &q.Values{Rows: 1, Costs: map[string][]float64{"f1": {1}, "f2": {0}, "f3": {0.5}}}
	for _, nd := range net.Nodes {
		val := map[string]float64{"Z": 0.2, "Y": 0.3, "X": 1.5}[nd.Site]
		if nd.Site == "Y" && nd.Sources[0] == "f1" {
			val = 1
		}
		v.Q = append(v.Q, []float64{val})
	}
	v.Target = v.Q
	adv, _ := q.Advantages(net, v, q.TD{}, false)
	fmt.Printf("Y: %.2f, Z: %.2f\n", adv["Y"][0], adv["Z"][0])
	// Output:
	// Y: 0.30, Z: 0.20
}

// The network beside the SCG in Graphviz's DOT language.
func ExampleNetwork_DOT() {
	model := func(ctx *ppl.Ctx) {
		a := coin(ctx, "a")
		ppl.Cost(ctx, "f", a)
	}
	tr, _ := trace.Run(model, ppl.Config{Rand: rand.New(rand.NewPCG(1, 2)), Batch: 1})
	net, _ := q.Build(tr.Graph(), q.NetworkOptions{})
	fmt.Print(net.DOT())
	// Output:
	// digraph backpropq {
	// 	compound=true;
	// 	subgraph cluster_scg {
	// 		label="SCG";
	// 		s0 [label="a", shape=circle];
	// 		s1 [label="f", shape=square, peripheries=2];
	// 		s0 -> s1;
	// 	}
	// 	subgraph cluster_q {
	// 		label="Backprop-Q network";
	// 		f0 [label="Q_f", shape=square, peripheries=2];
	// 		q0 [label="Q^{f}_a(a)", shape=box];
	// 		f0 -> q0 [label="f"];
	// 	}
	// }
}

// A Cache builds one network per trace shape: runs of one model with other
// batch sizes share it.
func ExampleCache() {
	rng := rand.New(rand.NewPCG(1, 2))
	cache := q.Cache{Options: q.NetworkOptions{Merge: true}}
	for _, b := range []int{1, 8, 64} {
		tr, _ := trace.Run(figure2Model, ppl.Config{Rand: rng, Batch: b})
		if _, err := cache.Network(tr.Graph()); err != nil {
			fmt.Println(err)
			return
		}
	}
	fmt.Println(cache.Len())
	// Output:
	// 1
}

// A tabular critic averages the targets of each cell of its scope.
func ExampleNewTabular() {
	layout := q.Layout{Fields: []q.Field{{Addr: "x", Kind: q.Binary, Width: 1}}}
	critic, _ := q.NewTabular(layout, 0)
	x := mat.NewDense(4, 1, []float64{0, 1, 0, 1})
	_ = critic.Update(x, []float64{1, 5, 3, 7})
	out := make([]float64, 2)
	critic.Predict(mat.NewDense(2, 1, []float64{0, 1}), out)
	fmt.Println(out)
	// Output:
	// [2 6]
}

// A neural critic on the tape: its value at a relaxed sample has a
// gradient, the dQ/dz of a control variate.
func ExampleValues_Forward() {
	rng := rand.New(rand.NewPCG(1, 2))
	tp := ad.NewTape()
	tr, _ := trace.Run(figure2Model, ppl.Config{Tape: tp, Rand: rng, Batch: 2})
	net, _ := q.Build(tr.Graph(), q.NetworkOptions{Merge: true})
	critics := q.NewSet(q.Config{Kind: q.MLPKind, Seed: 1})
	vals, _ := critics.Evaluate(net, tr)
	x := net.NodesAt("X")[0].Index
	relaxed := tp.FromData(2, 1, []float64{0.3, 0.8})
	qx, err := vals.Forward(net, tr, x, map[string]*ad.Tensor{"X": relaxed})
	if err != nil {
		fmt.Println(err)
		return
	}
	grad := tp.Gradients(ad.Sum(qx), relaxed)[0]
	r, c := grad.Dims()
	fmt.Println(r, c)
	// Output:
	// 2 1
}
