package trace_test

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/backpropq/backpropq/ad"
	"github.com/backpropq/backpropq/ppl"
	"github.com/backpropq/backpropq/trace"
)

// randomDAG returns a model of n random variables, each depending on up to
// three earlier ones, and n/2 costs of random variables: large enough for
// the graph's maps and its edge memory beyond the built-in buffers.
func randomDAG(n int, seed uint64) ppl.Model {
	rng := rand.New(rand.NewPCG(seed, 1))
	parents := make([][]int, n)
	for i := range n {
		for range rng.IntN(4) {
			if i > 0 {
				parents[i] = append(parents[i], rng.IntN(i))
			}
		}
	}
	costs := make([][]int, n/2)
	for k := range costs {
		costs[k] = []int{rng.IntN(n), rng.IntN(n)}
	}
	return func(ctx *ppl.Ctx) {
		xs := make([]*ad.Tensor, n)
		for i := range n {
			var ps []*ad.Tensor
			for _, p := range parents[i] {
				ps = append(ps, xs[p])
			}
			xs[i] = rv(ctx, fmt.Sprintf("x%d", i), ps...)
		}
		for k, c := range costs {
			cost(ctx, fmt.Sprintf("f%d", k), xs[c[0]], xs[c[1]])
		}
	}
}

// graphOf returns every relation of every node of g, to compare graphs.
func graphOf(g *trace.Graph) map[string][]string {
	out := map[string][]string{}
	for _, a := range g.Nodes() {
		out["parents "+a] = g.Parents(a)
		out["children "+a] = g.Children(a)
		out["ancestors "+a] = g.Ancestors(a)
		out["descendants "+a] = g.Descendants(a)
		out["costs "+a] = g.CostsFrom(a)
		out["append "+a] = g.AppendCostsFrom([]string{"kept"}, a)
	}
	return out
}

// TestTraceMemoryReusedAfterReset runs models of every size on one tape,
// several per reset and in a shuffled order, and checks that each trace
// and graph made in memory reused from earlier runs equals the one made
// on a fresh tape, that the traces of one generation are distinct, and
// that a reset lets the next run reuse the first trace's memory.
func TestTraceMemoryReusedAfterReset(t *testing.T) {
	var models []ppl.Model
	for _, c := range scgCases() {
		models = append(models, c.model)
	}
	for n := 1; n <= 40; n += 13 {
		models = append(models, randomDAG(n, uint64(n)))
	}
	want := make([]map[string][]string, len(models))
	for i, m := range models {
		tr, err := trace.Run(m, ppl.Config{Tape: ad.NewTape(), Rand: seeded()})
		require.NoError(t, err)
		want[i] = graphOf(tr.Graph())
	}
	tp := ad.NewTape()
	rng := rand.New(rand.NewPCG(5, 6))
	var first *trace.Trace
	for round := range 6 {
		tp.Reset()
		order := rng.Perm(len(models))[:3]
		var traces []*trace.Trace
		for _, i := range order {
			tr, err := trace.Run(models[i], ppl.Config{Tape: tp, Rand: seeded()})
			require.NoError(t, err)
			require.NotContains(t, traces, tr, "two traces of one generation share memory")
			traces = append(traces, tr)
			require.Equal(t, want[i], graphOf(tr.Graph()), "model %d in round %d", i, round)
		}
		// The graphs of the generation stay as built when later runs
		// build theirs.
		for k, i := range order {
			require.Equal(t, want[i], graphOf(traces[k].Graph()), "model %d in round %d, after later runs", i, round)
		}
		if round == 0 {
			first = traces[0]
		} else {
			require.Same(t, first, traces[0], "a reset tape gives its first trace's memory to the next run")
		}
	}
}
