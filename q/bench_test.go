package q_test

import (
	"math/rand/v2"
	"testing"

	"github.com/backpropq/backpropq/ppl"
	"github.com/backpropq/backpropq/q"
)

// BenchmarkUpdate measures one TD update of tabular critics on a traced
// chain of 10 binary sites with 256 rows (the model run excluded).
func BenchmarkUpdate(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 2))
	sh := chain(10)
	s := newSCG(sh.sites, sh.costs, rng)
	tr, err := s.run(rng, 256)
	if err != nil {
		b.Fatal(err)
	}
	var cache q.Cache
	set := q.NewSet(q.Config{Kind: q.TabularKind})
	b.ReportAllocs()
	for b.Loop() {
		net, err := cache.Network(tr.Graph())
		if err != nil {
			b.Fatal(err)
		}
		if _, err := set.Update(net, tr, q.TD{}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkBuild measures building the merged network of Figure 4's
// layers (6 layers of 2 nodes, a cost on each).
func BenchmarkBuild(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 2))
	sh := layered(6, 2)
	s := newSCG(sh.sites, sh.costs, rng)
	tr, err := s.run(rng, 2)
	if err != nil {
		b.Fatal(err)
	}
	g := tr.Graph()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := q.Build(g, q.NetworkOptions{Merge: true, InlineCosts: true}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkBuildSequence measures the merged, chain-reduced network of a
// 50-step chain with a cost on every consecutive pair.
func BenchmarkBuildSequence(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 2))
	sh := shape{name: "pairs"}
	for i := range 50 {
		if i == 0 {
			sh.sites = append(sh.sites, n("y[0]"))
			sh.costs = append(sh.costs, n("c[0]", 0))
		} else {
			sh.sites = append(sh.sites, n(ppl.At("y", i), i-1))
			sh.costs = append(sh.costs, n(ppl.At("c", i), i-1, i))
		}
	}
	s := newSCG(sh.sites, sh.costs, rng)
	tr, err := s.run(rng, 2)
	if err != nil {
		b.Fatal(err)
	}
	g := tr.Graph()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := q.Build(g, q.NetworkOptions{Merge: true, Reduce: q.ReduceChain}); err != nil {
			b.Fatal(err)
		}
	}
}
