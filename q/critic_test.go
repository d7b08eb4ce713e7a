package q_test

import (
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gonum.org/v1/gonum/mat"

	"github.com/backpropq/backpropq/ad"
	"github.com/backpropq/backpropq/ppl"
	"github.com/backpropq/backpropq/ppl/dist"
	"github.com/backpropq/backpropq/q"
	"github.com/backpropq/backpropq/trace"
)

// train runs iters TD updates of set on s's model.
func train(t *testing.T, s *scg, set *q.Set, opts q.NetworkOptions, td q.TD, iters, b int, rng *rand.Rand) *q.Network {
	t.Helper()
	cache := q.Cache{Options: opts}
	var net *q.Network
	for range iters {
		tr, err := s.run(rng, b)
		require.NoError(t, err)
		net, err = cache.Network(tr.Graph())
		require.NoError(t, err)
		_, err = set.Update(net, tr, td)
		require.NoError(t, err)
	}
	return net
}

func sum(xs []float64) float64 {
	t := 0.0
	for _, x := range xs {
		t += x
	}
	return t
}

// Linear and MLP critics trained by TD approach the exact Q-functions when
// these are representable: one binary input (an affine function) for the
// linear critic on a chain, scopes of two binary sites for the MLP on
// Figure 2. Adam with a constant rate leaves a noise floor, so we require
// a squared error below 2e-3 and ten times below the untrained one.
func TestFunctionCriticsConverge(t *testing.T) {
	tests := []struct {
		name  string
		sh    shape
		opts  q.NetworkOptions
		kind  q.Kind
		iters int
	}{
		{"linear chain5", chain(5), q.NetworkOptions{}, q.LinearKind, 600},
		{"mlp figure2", figure2(), q.NetworkOptions{Merge: true}, q.MLPKind, 800},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(1, 2))
			s := newSCG(tt.sh.sites, tt.sh.costs, rng)
			set := q.NewSet(q.Config{Kind: tt.kind, LR: 0.01, Hidden: []int{16}, Seed: 1})
			net := train(t, s, set, tt.opts, q.TD{}, 1, 64, rng)
			h0, _ := s.errorsByNode(net, set)
			net = train(t, s, set, tt.opts, q.TD{}, tt.iters, 64, rng)
			h, _ := s.errorsByNode(net, set)
			for i, nd := range net.Nodes {
				t.Logf("%s %v: squared error %.2g (untrained %.2g)", nd.Site, nd.Sources, h[i], h0[i])
				assert.Less(t, h[i], 2e-3, "node %s", nd.Site)
			}
			assert.Less(t, sum(h), sum(h0)/10)
		})
	}
}

// One critic serves every y[t] of a template, with the index as a feature,
// and still reaches the exact Q-functions.
func TestTemplateCritic(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	sh := shape{name: "ychain"}
	for i := range 6 {
		if i == 0 {
			sh.sites = append(sh.sites, n(ppl.At("y", 0)))
		} else {
			sh.sites = append(sh.sites, n(ppl.At("y", i), i-1))
		}
	}
	sh.costs = []scgNode{n("f", 5)}
	s := newSCG(sh.sites, sh.costs, rng)
	set := q.NewSet(q.Config{Kind: q.TabularKind, Templates: []string{"y[*]"}})
	const iters, b = 100, 256
	net := train(t, s, set, q.NetworkOptions{}, q.TD{}, iters, b, rng)
	assert.Equal(t, []string{"y[*]|f"}, set.Keys())
	layout := set.Critic("y[*]|f").Layout()
	assert.Equal(t, "y[*]@0:binary1 index:index1", layout.String())
	// The critic takes the index as a feature: compare with the exact Q
	// at each (index, value).
	qs, ps := s.exactQ(net)
	for i, nd := range net.Nodes {
		_, idx := q.Template(nd.Site)
		for k, p := range ps[i] {
			var v float64
			if k == "[1]" {
				v = 1
			}
			got := make([]float64, 1)
			set.Critic("y[*]|f").Predict(matRow(v, float64(idx[0])), got)
			// Three standard errors of a cell average of costs in [0, 1].
			tol := 3 * math.Sqrt(0.25/(p*iters*b)) * float64(nd.Depth)
			assert.InDelta(t, qs[i][k], got[0], tol, "%s=%v", nd.Site, v)
		}
	}
}

// Extra critic inputs: the library checks that their provenance lies in
// the site's scope.
func TestInputProvenance(t *testing.T) {
	// x0 -> x1 -> x2 -> f(x1, x2): Sc(x2) = {x1, x2}, Sc(x1) = {x1}.
	model := func(inputFor string, from ...string) ppl.Model {
		return func(ctx *ppl.Ctx) {
			tp := ctx.Tape()
			b := ctx.Batch()
			vals := map[string]*ad.Tensor{}
			half := tp.Full(b, 1, 0.5)
			vals["x0"] = ppl.Sample(ctx, "x0", dist.BernoulliProbs(half))
			vals["x1"] = ppl.Sample(ctx, "x1", dist.BernoulliProbs(ad.Add(ad.Scale(vals["x0"], 0.5), tp.Full(b, 1, 0.25))))
			vals["x2"] = ppl.Sample(ctx, "x2", dist.BernoulliProbs(ad.Add(ad.Scale(vals["x1"], 0.5), tp.Full(b, 1, 0.25))))
			in := tp.Zeros(b, 1)
			for _, a := range from {
				in = ad.Add(in, vals[a])
			}
			q.Input(ctx, inputFor, in)
			ppl.Cost(ctx, "f", ad.Add(vals["x1"], vals["x2"]))
		}
	}
	tests := []struct {
		name    string
		site    string
		from    []string
		wantErr string
	}{
		{"within scope", "x2", []string{"x1", "x2"}, ""},
		{"outside scope", "x2", []string{"x0"}, `q: site "x2": critic inputs "x2@q" depend on site "x0", outside the scope [x1 x2]`},
		{"later site", "x1", []string{"x2"}, `depend on site "x2"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(1, 2))
			tr, err := trace.Run(model(tt.site, tt.from...), ppl.Config{Rand: rng, Batch: 4})
			require.NoError(t, err)
			net, err := q.Build(tr.Graph(), q.NetworkOptions{})
			require.NoError(t, err)
			set := q.NewSet(q.Config{Kind: q.LinearKind, Seed: 1})
			_, err = set.Update(net, tr, q.TD{})
			if tt.wantErr != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tt.wantErr)
				return
			}
			require.NoError(t, err)
			// The site is featurized as its own value and the inputs.
			assert.Equal(t, "x2:binary1 x2@q:extra1", set.Critic("x2|f").Layout().String())
		})
	}
}

// Save and Load: a round trip restores every critic bit for bit; a changed
// scope is an error or a fresh critic on request; a grown model reuses the
// critics it can; a corrupted file changes nothing.
func TestSaveLoad(t *testing.T) {
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(1, 2))
	sh := figure2()
	s := newSCG(sh.sites, sh.costs, rng)
	for _, kind := range []q.Kind{q.TabularKind, q.MLPKind} {
		set := q.NewSet(q.Config{Kind: kind, Seed: 1})
		net := train(t, s, set, q.NetworkOptions{Merge: true}, q.TD{}, 5, 32, rng)
		path := filepath.Join(dir, "critics.ckpt")
		require.NoError(t, q.Save(path, set))

		fresh := q.NewSet(q.Config{Kind: kind, Seed: 1})
		require.NoError(t, q.Load(path, fresh, q.LoadOptions{}))
		tr, err := s.run(rng, 16)
		require.NoError(t, err)
		v1, err := set.Evaluate(net, tr)
		require.NoError(t, err)
		v2, err := fresh.Evaluate(net, tr)
		require.NoError(t, err)
		assert.Equal(t, v1.Q, v2.Q, "kind %d: loaded critics predict the same", kind)
		assert.Equal(t, set.Keys(), fresh.Keys())

		// Corruption: one flipped byte fails the checksum; nothing changes.
		data, err := os.ReadFile(path)
		require.NoError(t, err)
		data[len(data)-3] ^= 0xff
		bad := filepath.Join(dir, "bad.ckpt")
		require.NoError(t, os.WriteFile(bad, data, 0o644))
		before := fresh.Keys()
		require.Error(t, q.Load(bad, fresh, q.LoadOptions{}))
		assert.Equal(t, before, fresh.Keys())
		v3, err := fresh.Evaluate(net, tr)
		require.NoError(t, err)
		assert.Equal(t, v1.Q, v3.Q)
	}

	// A changed scope: Y's cost f1 now also reads X, so Q^f1_Y's scope
	// grows from (Y) to (X, Y).
	set := q.NewSet(q.Config{Kind: q.TabularKind})
	train(t, s, set, q.NetworkOptions{Merge: true}, q.TD{}, 3, 32, rng)
	path := filepath.Join(dir, "old.ckpt")
	require.NoError(t, q.Save(path, set))
	changed := newSCG(sh.sites, []scgNode{n("f1", 1, 0), n("f2", 1, 2), n("f3", 0)}, rng)
	tr, err := changed.run(rng, 8)
	require.NoError(t, err)
	net, err := q.Build(tr.Graph(), q.NetworkOptions{Merge: true})
	require.NoError(t, err)

	strict := q.NewSet(q.Config{Kind: q.TabularKind})
	require.NoError(t, q.Load(path, strict, q.LoadOptions{}))
	_, err = strict.Evaluate(net, tr)
	require.Error(t, err)
	assert.Contains(t, err.Error(), `critic "Y|f1": saved for scope layout "Y:binary1", the model now has "X:binary1 Y:binary1"`)

	lenient := q.NewSet(q.Config{Kind: q.TabularKind})
	require.NoError(t, q.Load(path, lenient, q.LoadOptions{Reinit: true}))
	v, err := lenient.Evaluate(net, tr)
	require.NoError(t, err)
	y := net.NodesAt("Y")
	require.Len(t, y, 2)
	for _, nd := range y {
		if nd.Sources[0] == "f1" {
			assert.Equal(t, make([]float64, 8), v.Q[nd.Index], "re-initialized")
		} else {
			assert.NotEqual(t, make([]float64, 8), v.Q[nd.Index], "f2's critic reused")
		}
	}

	// A grown model: figure2 plus a new site W feeding a new cost reuses
	// the old critics of the sites whose scopes did not change.
	grown := newSCG(append(append([]scgNode(nil), sh.sites...), n("W", 2)), append(append([]scgNode(nil), sh.costs...), n("g", 3)), rng)
	copy(grown.cpt, s.cpt)
	copy(grown.table, s.table)
	tr, err = grown.run(rng, 8)
	require.NoError(t, err)
	net, err = q.Build(tr.Graph(), q.NetworkOptions{Merge: true})
	require.NoError(t, err)
	reuse := q.NewSet(q.Config{Kind: q.TabularKind})
	require.NoError(t, q.Load(path, reuse, q.LoadOptions{}))
	v, err = reuse.Evaluate(net, tr)
	require.NoError(t, err)
	for _, nd := range net.Nodes {
		c := set.Critic(reuse.Key(nd))
		if c == nil {
			continue // a new key
		}
		want := make([]float64, 8)
		c.Predict(v.Inputs(nd.Index), want)
		assert.Equal(t, want, v.Q[nd.Index], "reused %s", reuse.Key(nd))
	}
	assert.NotContains(t, reuse.Keys(), "W|g", "Evaluate changes nothing")
	_, err = reuse.Apply(net, v, q.TD{})
	require.NoError(t, err)
	assert.Contains(t, reuse.Keys(), "W|g")
}

func matRow(xs ...float64) *mat.Dense { return mat.NewDense(1, len(xs), xs) }

// A template over a chain with pairwise costs c[t](y[t-1], y[t]): y[0]'s
// scope lacks the previous y, so the shared critic's layout is the union
// and y[0] reads zeros there; the critic still reaches the exact
// Q-functions of every index.
func TestTemplateUnionLayout(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	sh := shape{name: "pairs"}
	for i := range 5 {
		if i == 0 {
			sh.sites = append(sh.sites, n(ppl.At("y", 0)))
			sh.costs = append(sh.costs, n(ppl.At("c", 0), 0))
		} else {
			sh.sites = append(sh.sites, n(ppl.At("y", i), i-1))
			sh.costs = append(sh.costs, n(ppl.At("c", i), i-1, i))
		}
	}
	s := newSCG(sh.sites, sh.costs, rng)
	set := q.NewSet(q.Config{Kind: q.TabularKind, Templates: []string{"y[*]"}})
	const iters, b = 100, 256
	// The chain reduction lets the per-cost networks merge into one
	// Q-node per site (without it, c[t] and c[t+1] reach y[t] by different
	// rules at y[t-1]).
	net := train(t, s, set, q.NetworkOptions{Merge: true, Reduce: q.ReduceChain}, q.TD{}, iters, b, rng)
	require.Equal(t, []string{"y[*]|c[*]"}, set.Keys())
	c := set.Critic("y[*]|c[*]")
	assert.Equal(t, "y[*]@-1:binary1 y[*]@0:binary1 index:index1", c.Layout().String())
	qs, ps := s.exactQ(net)
	for i, nd := range net.Nodes {
		_, idx := q.Template(nd.Site)
		for k, p := range ps[i] {
			var row []float64
			for _, f := range strings.Fields(strings.Trim(k, "[]")) {
				x, err := strconv.ParseFloat(f, 64)
				require.NoError(t, err)
				row = append(row, x)
			}
			if len(row) == 1 {
				row = []float64{0, row[0]} // y[0]: no previous y
			}
			got := make([]float64, 1)
			c.Predict(matRow(append(row, float64(idx[0]))...), got)
			// Sums of up to 5 costs in [0, 1]: sigma <= 5/2; three
			// standard errors of the cell average, times the depth.
			tol := 3 * math.Sqrt(25.0/4/(p*iters*b)) * float64(nd.Depth)
			assert.InDelta(t, qs[i][k], got[0], tol, "%s at %s", nd.Site, k)
		}
	}
	// Per-cost networks would give one site several nodes of one key.
	tr, err := s.run(rng, 4)
	require.NoError(t, err)
	perCost, err := q.Build(tr.Graph(), q.NetworkOptions{})
	require.NoError(t, err)
	_, err = q.NewSet(q.Config{Kind: q.TabularKind, Templates: []string{"y[*]"}}).Evaluate(perCost, tr)
	assert.ErrorContains(t, err, `would serve two Q-nodes of site "y[3]"`)
}

// MarshalState and UnmarshalState round-trip in memory; corrupted bytes are
// an error that changes nothing.
func TestMarshalState(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	sh := figure5()
	s := newSCG(sh.sites, sh.costs, rng)
	set := q.NewSet(q.Config{Kind: q.TabularKind})
	net := train(t, s, set, q.NetworkOptions{}, q.TD{}, 3, 32, rng)
	data, err := set.MarshalState()
	require.NoError(t, err)
	other := q.NewSet(q.Config{Kind: q.TabularKind})
	bad := append([]byte{}, data...)
	bad[len(bad)/2] ^= 1
	require.Error(t, other.UnmarshalState(bad))
	assert.Empty(t, other.Keys())
	require.NoError(t, other.UnmarshalState(data))
	tr, err := s.run(rng, 8)
	require.NoError(t, err)
	v1, err := set.Evaluate(net, tr)
	require.NoError(t, err)
	v2, err := other.Evaluate(net, tr)
	require.NoError(t, err)
	assert.Equal(t, v1.Q, v2.Q)
}
