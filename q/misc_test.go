package q_test

import (
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/backpropq/backpropq/ad"
	"github.com/backpropq/backpropq/internal/ckpt"
	"github.com/backpropq/backpropq/ppl"
	"github.com/backpropq/backpropq/ppl/dist"
	"github.com/backpropq/backpropq/q"
	"github.com/backpropq/backpropq/trace"
)

// mixed has a categorical, a two-column Bernoulli and a normal site feeding
// one cost.
func mixed(ctx *ppl.Ctx) {
	tp := ctx.Tape()
	b := ctx.Batch()
	c := ppl.Sample(ctx, "c", dist.Categorical{Logits: tp.Zeros(b, 3)})
	bern := ppl.Sample(ctx, "b", dist.BernoulliProbs(ad.Add(tp.Full(b, 2, 0.25), ad.Scale(c, 0.1))))
	z := ppl.Sample(ctx, "z", dist.Normal{Loc: ad.RowSum(bern), Scale: tp.Full(b, 1, 1)})
	ppl.Cost(ctx, "f", ad.Add(ad.Square(z), c))
}

// Scopes are featurized one-hot for categorical sites and raw otherwise;
// Auto picks a tabular critic for discrete layouts and an MLP otherwise.
func TestFeaturization(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	tr, err := trace.Run(mixed, ppl.Config{Rand: rng, Batch: 5})
	require.NoError(t, err)
	net, err := q.Build(tr.Graph(), q.NetworkOptions{})
	require.NoError(t, err)
	set := q.NewSet(q.Config{Seed: 1})
	v, err := set.Evaluate(net, tr)
	require.NoError(t, err)
	_, err = set.Apply(net, v, q.TD{})
	require.NoError(t, err)
	g := tr.Graph()
	for _, nd := range net.Nodes {
		c := set.Critic(set.Key(nd))
		require.NotNil(t, c)
		x := v.Inputs(nd.Index)
		switch nd.Site {
		case "c":
			// Sc(c) = {c}: f reads c directly.
			assert.Equal(t, "c:onehot3", c.Layout().String())
			assert.IsType(t, &q.Tabular{}, c)
			for r := range 5 {
				k := int(g.Site("c").Value.At(r, 0))
				for j := range 3 {
					assert.Equal(t, float64(b2i(j == k)), x.At(r, j))
				}
			}
		case "b":
			assert.Equal(t, "c:onehot3 b:binary2", c.Layout().String())
			assert.IsType(t, &q.Tabular{}, c)
			for r := range 5 {
				assert.Equal(t, g.Site("b").Value.At(r, 1), x.At(r, 4))
			}
		case "z":
			assert.Equal(t, "c:onehot3 z:real1", c.Layout().String())
			assert.IsType(t, &q.NetCritic{}, c)
			for r := range 5 {
				assert.Equal(t, g.Site("z").Value.At(r, 0), x.At(r, 3))
			}
		}
	}
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

func TestErrors(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	sh := chain(3)
	s := newSCG(sh.sites, sh.costs, rng)
	tr, err := s.run(rng, 4)
	require.NoError(t, err)
	net, err := q.Build(tr.Graph(), q.NetworkOptions{})
	require.NoError(t, err)
	other, err := newSCG(chain(4).sites, chain(4).costs, rng).run(rng, 4)
	require.NoError(t, err)

	_, err = q.Build(nil, q.NetworkOptions{})
	assert.ErrorContains(t, err, "q: Build: nil graph")
	_, err = q.Build(tr.Graph(), q.NetworkOptions{Reduce: 9})
	assert.ErrorContains(t, err, "unknown reduction")

	set := q.NewSet(q.Config{Kind: q.TabularKind})
	_, err = set.Update(net, other, q.TD{})
	assert.ErrorContains(t, err, "trace shape differs")
	_, err = set.Update(net, tr, q.TD{Lambda: 2})
	assert.ErrorContains(t, err, "lambda must be in [0, 1], got 2")
	_, err = set.Update(net, tr, q.TD{Gamma: 1.5})
	assert.ErrorContains(t, err, "gamma must be in (0, 1]")

	// A non-finite cost is an error before anything changes: the critics
	// first seen in v are not even added.
	v, err := set.Evaluate(net, tr)
	require.NoError(t, err)
	v.Costs["f"][2] = math.NaN()
	_, err = set.Apply(net, v, q.TD{})
	assert.ErrorContains(t, err, `q: cost "f" is NaN at row 2`)
	assert.Empty(t, set.Keys())

	// Values of one set cannot update another.
	_, err = q.NewSet(q.Config{}).Apply(net, v, q.TD{})
	assert.ErrorContains(t, err, "values of another set")

	// Tabular critics refuse continuous layouts.
	_, err = q.NewTabular(q.Layout{Fields: []q.Field{{Addr: "z", Kind: q.Real, Width: 1}}}, 0)
	assert.ErrorContains(t, err, "not discrete")

	// Buffers hold one shape; replay needs rows and a random source.
	buf := q.NewBuffer(10)
	_, err = set.Replay(net, buf, s.model(), ppl.Config{Rand: rng}, q.ReplayOptions{})
	assert.ErrorContains(t, err, "empty buffer")
	require.NoError(t, buf.Add(tr))
	assert.ErrorContains(t, buf.Add(other), "shape differs")
	_, err = set.Replay(net, buf, s.model(), ppl.Config{}, q.ReplayOptions{})
	assert.ErrorContains(t, err, "env.Rand is nil")
	assert.Panics(t, func() { q.NewBuffer(0) })
}

// Bad checkpoint files are errors that change nothing.
func TestLoadRejects(t *testing.T) {
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(1, 2))
	sh := chain(3)
	s := newSCG(sh.sites, sh.costs, rng)
	set := q.NewSet(q.Config{Kind: q.TabularKind})
	train(t, s, set, q.NetworkOptions{}, q.TD{}, 2, 16, rng)
	good, err := set.MarshalSections()
	require.NoError(t, err)
	data := good[q.Section]

	write := func(name string, sections map[string][]byte) string {
		p := filepath.Join(dir, name)
		require.NoError(t, ckpt.WriteFile(p, sections))
		return p
	}
	bumped := append([]byte{}, data...)
	bumped[0] = 9
	tests := []struct {
		name string
		path string
		want string
	}{
		{"missing file", filepath.Join(dir, "nope"), "no such file"},
		{"no section", write("empty", map[string][]byte{"other": {1}}), `no section "q.critics"`},
		{"version", write("version", map[string][]byte{q.Section: bumped}), "version 9"},
		{"truncated section", write("trunc", map[string][]byte{q.Section: data[:len(data)-5]}), "q.critics"},
		{"trailing bytes", write("trail", map[string][]byte{q.Section: append(append([]byte{}, data...), 0)}), "q.critics"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			target := q.NewSet(q.Config{Kind: q.TabularKind})
			err := q.Load(tt.path, target, q.LoadOptions{})
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
			assert.Empty(t, target.Keys())
		})
	}
	// Loading into a set whose critic of the same key has another layout.
	p := write("good", good)
	clash := q.NewSet(q.Config{Kind: q.TabularKind})
	c, err := q.NewTabular(q.Layout{Fields: []q.Field{{Addr: "x0", Kind: q.Binary, Width: 1}}}, 0)
	require.NoError(t, err)
	clash.Put("x1|f", c)
	assert.ErrorContains(t, q.Load(p, clash, q.LoadOptions{}), `critic "x1|f": saved for scope layout "x1:binary1"`)
	assert.Same(t, c, clash.Critic("x1|f"))
	_, err = os.Stat(p)
	require.NoError(t, err)
}

// Rows a mask leaves out of a cost are left out of the updates of the
// Q-nodes that carry it: critics trained on half-masked batches still reach
// the exact Q-functions (with masked rows counted as zero costs they would
// be about half of them).
func TestMaskedRowsLeftOut(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	sh := chain(3)
	s := newSCG(sh.sites, sh.costs, rng)
	set := q.NewSet(q.Config{Kind: q.TabularKind})
	var cache q.Cache
	var net *q.Network
	const iters, b = 100, 256
	for range iters {
		tp := ad.NewTape()
		m := make([]float64, b)
		for r := range m {
			m[r] = float64(r % 2)
		}
		tr, err := trace.Run(s.model(), ppl.Config{Tape: tp, Rand: rng, Batch: b}, trace.Mask(tp.FromData(b, 1, m)))
		require.NoError(t, err)
		net, err = cache.Network(tr.Graph())
		require.NoError(t, err)
		_, err = set.Update(net, tr, q.TD{})
		require.NoError(t, err)
	}
	h, _ := s.errorsByNode(net, set)
	for i, nd := range net.Nodes {
		// Half the rows count: the tolerance of TestTabularTDReachesExactQ
		// with N/2 rows.
		tol := 9 * float64(nd.Depth) * 2 * 0.25 / float64(iters*b/2)
		assert.LessOrEqual(t, h[i], tol, "node %s", nd.Site)
	}
}

// Values.Forward reproduces the critic's value on the tape and its gradient
// with respect to a replaced (relaxed) value matches finite differences.
func TestForwardGradient(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	tp := ad.NewTape()
	tr, err := trace.Run(mixed, ppl.Config{Tape: tp, Rand: rng, Batch: 4})
	require.NoError(t, err)
	net, err := q.Build(tr.Graph(), q.NetworkOptions{})
	require.NoError(t, err)
	set := q.NewSet(q.Config{Kind: q.MLPKind, Seed: 1})
	v, err := set.Evaluate(net, tr)
	require.NoError(t, err)
	i := net.NodesAt("b")[0].Index // scope (c, b): one-hot and binary
	out, err := v.Forward(net, tr, i, nil)
	require.NoError(t, err)
	assert.InDeltaSlice(t, v.Q[i], out.Data(), 1e-12)

	// Replace b by a relaxed value and differentiate.
	relaxed := tp.FromData(4, 2, []float64{0.2, 0.7, 0.9, 0.1, 0.4, 0.4, 0.6, 0.3})
	out, err = v.Forward(net, tr, i, map[string]*ad.Tensor{"b": relaxed})
	require.NoError(t, err)
	grad := tp.Gradients(ad.Sum(out), relaxed)[0]
	const h = 1e-6
	for r := range 4 {
		for j := range 2 {
			shift := func(d float64) float64 {
				data := append([]float64(nil), relaxed.Data()...)
				data[r*2+j] += d
				o, err := v.Forward(net, tr, i, map[string]*ad.Tensor{"b": tp.FromData(4, 2, data)})
				require.NoError(t, err)
				return sum(o.Data())
			}
			fd := (shift(h) - shift(-h)) / (2 * h)
			// Central differences: error O(h^2) plus rounding ~1e-10/h.
			assert.InDelta(t, fd, grad.At(r, j), 1e-6)
		}
	}
	_, err = v.Forward(net, tr, i, map[string]*ad.Tensor{"b": tp.Zeros(4, 3)})
	assert.ErrorContains(t, err, `value of "b" is [4x3], the critic reads [4x2]`)
	tab := q.NewSet(q.Config{Seed: 1}) // Auto: b's scope is discrete
	tv, err := tab.Evaluate(net, tr)
	require.NoError(t, err)
	_, err = tv.Forward(net, tr, i, nil)
	assert.ErrorContains(t, err, "not differentiable")
}

// Forward of a template critic fills the fields a node lacks with zeros,
// as Evaluate does.
func TestForwardTemplate(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	sh := shape{name: "pairs"}
	for i := range 3 {
		if i == 0 {
			sh.sites = append(sh.sites, n(ppl.At("y", 0)))
			sh.costs = append(sh.costs, n(ppl.At("c", 0), 0))
		} else {
			sh.sites = append(sh.sites, n(ppl.At("y", i), i-1))
			sh.costs = append(sh.costs, n(ppl.At("c", i), i-1, i))
		}
	}
	s := newSCG(sh.sites, sh.costs, rng)
	tr, err := s.run(rng, 6)
	require.NoError(t, err)
	net, err := q.Build(tr.Graph(), q.NetworkOptions{Merge: true, Reduce: q.ReduceChain})
	require.NoError(t, err)
	set := q.NewSet(q.Config{Kind: q.MLPKind, Templates: []string{"y[*]"}, Seed: 1})
	v, err := set.Evaluate(net, tr)
	require.NoError(t, err)
	for i := range net.Nodes {
		out, err := v.Forward(net, tr, i, nil)
		require.NoError(t, err)
		assert.InDeltaSlice(t, v.Q[i], out.Data(), 1e-12, net.Nodes[i].Site)
	}
}

// A buffer's encoding round-trips, ring position included; damaged bytes
// are an error that leaves the buffer as it was.
func TestBufferEncoding(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	s := newSCG(chain(3).sites, chain(3).costs, rng)
	buf := q.NewBuffer(5)
	for range 3 {
		tr, err := s.run(rng, 2)
		require.NoError(t, err)
		require.NoError(t, buf.Add(tr))
	}
	data, err := buf.MarshalBinary()
	require.NoError(t, err)
	var back q.Buffer
	require.NoError(t, back.UnmarshalBinary(data))
	again, err := back.MarshalBinary()
	require.NoError(t, err)
	require.Equal(t, data, again)
	require.Equal(t, buf.Shape(), back.Shape())
	require.Equal(t, 5, back.Len())

	for _, bad := range [][]byte{data[:len(data)-1], append(append([]byte(nil), data...), 0)} {
		require.Error(t, back.UnmarshalBinary(bad))
		same, err := back.MarshalBinary()
		require.NoError(t, err)
		require.Equal(t, data, same)
	}
}
