package trace_test

import (
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gonum.org/v1/gonum/mat"

	"github.com/backpropq/backpropq/ad"
	"github.com/backpropq/backpropq/nn"
	"github.com/backpropq/backpropq/ppl"
	"github.com/backpropq/backpropq/ppl/dist"
	"github.com/backpropq/backpropq/trace"
)

const log2Pi = 1.8378770664093453 // log(2π)

func normal(loc *ad.Tensor) dist.Normal {
	r, c := loc.Dims()
	return dist.Normal{Loc: loc, Scale: loc.Tape().Full(r, c, 1)}
}

// stdLogProb returns log N(v | loc, 1) of a scalar.
func stdLogProb(v, loc float64) float64 { return -0.5*(v-loc)*(v-loc) - 0.5*log2Pi }

// chainModel is z ~ N(0, 1), y ~ N(z, 1), cost f = y², on [3 x 1] values.
func chainModel(ctx *ppl.Ctx) {
	tp := ctx.Tape()
	z := ppl.Sample(ctx, "z", normal(tp.Zeros(3, 1)))
	y := ppl.Sample(ctx, "y", normal(z))
	ppl.Cost(ctx, "f", ad.Square(y))
}

func col(tp *ad.Tape, v ...float64) *ad.Tensor { return tp.FromData(len(v), 1, v) }

func TestReplay(t *testing.T) {
	tp := ad.NewTape()
	mu := ad.NewVar(mat.NewDense(3, 1, []float64{0.5, -1, 2}))
	x := []float64{1, 2, -1}
	var muT *ad.Tensor
	guide := func(ctx *ppl.Ctx) {
		muT = ctx.Tape().Var(mu)
		ppl.Sample(ctx, "z", normal(muT))
		ppl.Observe(ctx, "obs", normal(ctx.Tape().Zeros(3, 1)), ctx.Tape().Zeros(3, 1))
	}
	model := func(ctx *ppl.Ctx) {
		tp := ctx.Tape()
		z := ppl.Sample(ctx, "z", normal(tp.Zeros(3, 1)))
		ppl.Sample(ctx, "obs", normal(tp.Zeros(3, 1)))    // an observe site in the guide
		w := ppl.Sample(ctx, "w", normal(tp.Zeros(3, 1))) // absent from the guide
		ppl.Observe(ctx, "x", normal(ad.Add(z, ad.Scale(w, 0))), col(tp, x...))
	}
	env := ppl.Config{Tape: tp, Rand: seeded()}
	gt, err := trace.Run(guide, env)
	require.NoError(t, err)
	mt, err := trace.Run(model, env, trace.Replay(gt), ppl.Config{FirstID: gt.NextID()})
	require.NoError(t, err)

	gz, mz := gt.Site("z"), mt.Site("z")
	assert.True(t, mz.Replayed)
	assert.False(t, mz.Reparameterized)
	assert.Equal(t, gz.Value.Data(), mz.Value.Data())
	assert.Equal(t, gt.NextID(), mz.ID, "ids continue after the guide's")
	assert.True(t, mz.Value.Provenance().Equal(ad.ProvenanceOf(mz.ID)), "a replayed value belongs to the model's site")
	for i := 0; i < 3; i++ {
		assert.InDelta(t, stdLogProb(mz.Value.At(i, 0), 0), mz.LogProb.At(i, 0), 1e-12)
	}
	assert.False(t, mt.Site("obs").Replayed, "an observe site of the guide is not replayed")
	assert.False(t, mt.Site("w").Replayed)
	assert.Equal(t, []string{"z", "w"}, mt.Graph().Parents("x"))

	// The model's cost is differentiable in the guide's parameter through
	// the replayed value: d/dmu 0.5 (x - z)² = -(x - z), with z = mu + eps.
	g := tp.Gradients(ad.Sum(mt.Site("x").Cost), muT)[0]
	for i := 0; i < 3; i++ {
		assert.InDelta(t, -(x[i] - mz.Value.At(i, 0)), g.At(i, 0), 1e-12)
	}

	// From another tape the value is copied as a constant.
	other := ad.NewTape()
	ot, err := trace.Run(model, ppl.Config{Tape: other, Rand: seeded()}, trace.Replay(gt))
	require.NoError(t, err)
	assert.Equal(t, gz.Value.Data(), ot.Site("z").Value.Data())
	assert.Same(t, other, ot.Site("z").Value.Tape())

	// A replayed value outside the support is an error at the site.
	_, err = trace.Run(func(ctx *ppl.Ctx) {
		ppl.Sample(ctx.Scope("m"), "z", dist.BernoulliLogits(ctx.Tape().Zeros(3, 1)))
	}, env, trace.Replay(relabel(t, gt, "m/z", "z")))
	require.ErrorContains(t, err, `ppl: site "m/z": dist: Bernoulli: value must be 0 or 1`)
}

// relabel returns a trace of one sample site at addr whose value is the
// value of site from of t.
func relabel(t *testing.T, tr *trace.Trace, addr, from string) *trace.Trace {
	v := tr.Site(from).Value
	out, err := trace.Run(func(ctx *ppl.Ctx) {
		ctx = scopeOf(ctx, addr)
		ppl.Sample(ctx, addr[strings.LastIndex(addr, "/")+1:], dist.Delta{Value: v})
	}, ppl.Config{Tape: v.Tape(), Rand: seeded()})
	require.NoError(t, err)
	return out
}

func scopeOf(ctx *ppl.Ctx, addr string) *ppl.Ctx {
	parts := strings.Split(addr, "/")
	for _, p := range parts[:len(parts)-1] {
		ctx = ctx.Scope(p)
	}
	return ctx
}

func TestCondition(t *testing.T) {
	tp := ad.NewTape()
	v := col(tp, 0.5, -0.25, 1)
	var got *ad.Tensor
	model := func(ctx *ppl.Ctx) {
		tp := ctx.Tape()
		got = ppl.Sample(ctx, "z", normal(tp.Zeros(3, 1)))
		y := ppl.Sample(ctx, "y", normal(got))
		ppl.Observe(ctx, "x", normal(y), tp.Zeros(3, 1))
	}
	x2 := col(tp, 3, 3, 3)
	tr, err := trace.Run(model, ppl.Config{Tape: tp, Rand: seeded()},
		trace.Condition(map[string]*ad.Tensor{"z": v, "x": x2}))
	require.NoError(t, err)
	z := tr.Site("z")
	assert.Same(t, v, got, "the model receives the conditioned value itself")
	assert.Equal(t, ppl.KindObserve, z.Kind)
	assert.Equal(t, -1, z.ID)
	for i := 0; i < 3; i++ {
		assert.InDelta(t, stdLogProb(v.At(i, 0), 0), z.LogProb.At(i, 0), 1e-12)
		assert.Equal(t, -z.LogProb.At(i, 0), z.Cost.At(i, 0))
	}
	assert.Same(t, x2, tr.Site("x").Value, "an observe site observes the conditioned value")
	g := tr.Graph()
	assert.Equal(t, []string{"y"}, g.Stochastic())
	assert.Equal(t, []string{"z", "x"}, g.Costs())
	assert.Empty(t, g.Parents("y"), "the data carries no provenance")

	_, err = trace.Run(model, ppl.Config{Tape: tp, Rand: seeded()},
		trace.Condition(map[string]*ad.Tensor{"y": col(tp, 1, math.Inf(1), 0)}))
	require.ErrorContains(t, err, `ppl: site "y": dist: Normal: value must be finite, got +Inf at row 1, column 0`)
}

func TestDo(t *testing.T) {
	tp := ad.NewTape()
	model := func(ctx *ppl.Ctx) {
		tp := ctx.Tape()
		w := ppl.Sample(ctx, "w", normal(tp.Zeros(3, 1)))
		z := ppl.Sample(ctx, "z", normal(w))
		y := ppl.Sample(ctx, "y", normal(z))
		ppl.Cost(ctx, "f", y)
	}
	for _, tc := range []struct {
		name    string
		value   func(w *ad.Tensor) *ad.Tensor
		parents []string
	}{
		{"constant", func(*ad.Tensor) *ad.Tensor { return col(tp, 1, 2, 3) }, nil},
		{"from another site", func(w *ad.Tensor) *ad.Tensor { return ad.Scale(w, 2) }, []string{"w"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var fixed *ad.Tensor
			fix := ppl.HandlerFunc(func(s *ppl.Site, next func(*ppl.Site)) {
				next(s)
				if s.Addr == "w" {
					fixed = tc.value(s.Value)
				}
			})
			lazy := ppl.HandlerFunc(func(s *ppl.Site, next func(*ppl.Site)) {
				if s.Addr == "z" {
					trace.Do(map[string]*ad.Tensor{"z": fixed}).Handle(s, next)
					return
				}
				next(s)
			})
			tr, err := trace.Run(model, ppl.Config{Tape: tp, Rand: seeded()}, fix, lazy)
			require.NoError(t, err)
			z := tr.Site("z")
			assert.Equal(t, ppl.KindDeterministic, z.Kind)
			assert.True(t, z.Intervened)
			assert.Nil(t, z.LogProb)
			assert.Same(t, fixed, z.Value)
			g := tr.Graph()
			assert.Equal(t, []string{"w", "y"}, g.Stochastic(), "an intervened site is no random variable")
			assert.Equal(t, tc.parents, g.Parents("y"))
		})
	}
	_, err := trace.Run(model, ppl.Config{Tape: tp, Rand: seeded()}, trace.Do(map[string]*ad.Tensor{"z": tp.Zeros(3, 2)}))
	require.ErrorContains(t, err, `ppl: site "z": fixed value is [3x2], the distribution's values are [3x1]`)
}

func TestSubstitute(t *testing.T) {
	tp := ad.NewTape()
	store := nn.NewStore()
	v := tp.FromData(1, 2, []float64{7, 8})
	var got *ad.Tensor
	model := func(ctx *ppl.Ctx) {
		got = ppl.Param(ctx.Scope("enc"), "w", 1, 2, nn.Zeros{})
		ppl.Param(ctx, "u", 1, 1, nn.Constant(3))
	}
	tr, err := trace.Run(model, ppl.Config{Tape: tp, Params: store}, trace.Substitute(map[string]*ad.Tensor{"enc/w": v}))
	require.NoError(t, err)
	assert.Same(t, v, got)
	assert.Nil(t, tr.Site("enc/w").Param)
	assert.Equal(t, []float64{3}, tr.Site("u").Value.Data())
	assert.NotNil(t, tr.Site("u").Param)

	_, err = trace.Run(model, ppl.Config{Tape: tp, Params: store}, trace.Substitute(map[string]*ad.Tensor{"enc/w": tp.Zeros(2, 1)}))
	require.ErrorContains(t, err, `ppl: site "enc/w": substituted parameter is [2x1], requested [1x2]`)

	lin := nn.NewLinear(1, 1, seeded())
	_, err = trace.Run(func(ctx *ppl.Ctx) { ppl.Module(ctx, "net", lin) }, ppl.Config{Tape: tp, Params: store},
		trace.Substitute(map[string]*ad.Tensor{"net/W": tp.Zeros(1, 1)}))
	require.ErrorContains(t, err, `ppl: site "net/W": the parameters of a Module cannot be substituted`)
}

func TestOverride(t *testing.T) {
	tp := ad.NewTape()
	model := func(ctx *ppl.Ctx) {
		tp := ctx.Tape()
		a := ppl.Sample(ctx, "a", normal(tp.Zeros(3, 1)))
		z := ppl.Sample(ctx, "z", dist.BernoulliLogits(a))
		y := ppl.Sample(ctx, "y", normal(ad.Scale(z, 2)))
		ppl.Cost(ctx, "f", y)
	}
	plain, err := trace.Run(model, ppl.Config{Tape: tp, Rand: seeded()})
	require.NoError(t, err)

	var relaxed *ad.Tensor
	calls := 0
	relax := trace.Override(func(s *ppl.Site) *ad.Tensor {
		calls++
		if s.Addr != "z" {
			return nil
		}
		// A relaxed value computed from the site's own distribution.
		relaxed = ad.Sigmoid(s.Dist.(dist.Bernoulli).Logits)
		return relaxed
	})
	tr, err := trace.Run(model, ppl.Config{Tape: tp, Rand: seeded()}, relax)
	require.NoError(t, err)
	assert.Equal(t, 3, calls, "called for each sample site")
	z := tr.Site("z")
	assert.True(t, z.Substituted)
	assert.Nil(t, z.LogProb, "a substituted value is not scored")
	assert.Equal(t, relaxed.Data(), z.Value.Data())
	assert.True(t, z.Value.Provenance().Equal(ad.ProvenanceOf(z.ID)))
	assert.True(t, z.Parents.Equal(plain.Site("z").Parents), "same parents as an ordinary run")
	for _, n := range plain.Graph().Nodes() {
		assert.Equal(t, plain.Graph().Parents(n), tr.Graph().Parents(n), "graph shape at %s", n)
	}
	// The gradient flows through the substituted tensor: y = 2z + eps.
	g := tp.Gradients(ad.Sum(tr.Site("f").Cost), relaxed)[0]
	assert.Equal(t, []float64{2, 2, 2}, g.RawMatrix().Data)
	assert.False(t, tr.Site("a").Substituted)

	_, err = trace.Run(model, ppl.Config{Tape: tp, Rand: seeded()}, trace.Override(func(s *ppl.Site) *ad.Tensor {
		if s.Addr == "z" {
			return tp.Zeros(3, 2)
		}
		return nil
	}))
	require.ErrorContains(t, err, `ppl: site "z": substituted value is [3x2], the distribution's values are [3x1]`)
}

func TestBlock(t *testing.T) {
	var inner trace.Trace
	var got *ad.Tensor
	model := func(ctx *ppl.Ctx) {
		tp := ctx.Tape()
		enc := ctx.Scope("enc")
		got = ppl.Sample(enc, "z", normal(tp.Zeros(3, 1)))
		y := ppl.Sample(ctx, "y", normal(got))
		ppl.Cost(ctx, "f", y)
	}
	for _, match := range []func(*ppl.Site) bool{trace.Addrs("enc/z"), trace.Under("enc")} {
		inner = trace.Trace{}
		tr, err := trace.Run(model, trace.Seed(seeded()), trace.Record(&inner), trace.Block(match))
		require.NoError(t, err)
		assert.Nil(t, tr.Site("enc/z"), "hidden from the outer trace")
		require.NotNil(t, inner.Site("enc/z"), "seen by the inner recorder")
		assert.Same(t, got, inner.Site("enc/z").Value, "the model still gets the value")
		assert.NotNil(t, inner.Site("enc/z").LogProb, "a blocked site is still scored")
		assert.Equal(t, []string{"y", "f"}, tr.Graph().Nodes())
		assert.Empty(t, tr.Graph().Parents("y"), "the hidden site is no node")
		assert.Equal(t, []string{"enc/z"}, inner.Graph().Parents("y"))
	}
	assert.False(t, trace.Under("enc")(&ppl.Site{Addr: "encoder/z"}))
}

func TestScaleAndMask(t *testing.T) {
	tp := ad.NewTape()
	m1 := col(tp, 1, 0, 1)
	m2 := col(tp, 1, 1, 0)
	model := func(ctx *ppl.Ctx) {
		chainModel(ctx)
		ppl.Observe(ctx, "x", normal(ctx.Tape().Zeros(3, 1)), ctx.Tape().Zeros(3, 1))
		ppl.Param(ctx, "p", 1, 1, nn.Zeros{})
		ppl.Deterministic(ctx, "d", ctx.Tape().Zeros(1, 1))
	}
	for _, tc := range []struct {
		name     string
		handlers []ppl.Handler
		scale    float64
		mask     []float64
	}{
		{"scale", []ppl.Handler{trace.Scale(2)}, 2, nil},
		{"nested scales multiply", []ppl.Handler{trace.Scale(2), trace.Scale(3)}, 6, nil},
		{"mask", []ppl.Handler{trace.Mask(m1)}, 1, []float64{1, 0, 1}},
		{"nested masks multiply", []ppl.Handler{trace.Mask(m1), trace.Mask(m2)}, 1, []float64{1, 0, 0}},
		{"scale with mask", []ppl.Handler{trace.Scale(4), trace.Mask(m1)}, 4, []float64{1, 0, 1}},
		{"mask with scale", []ppl.Handler{trace.Mask(m1), trace.Scale(4)}, 4, []float64{1, 0, 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hs := append([]ppl.Handler{ppl.Config{Tape: tp, Rand: seeded()}}, tc.handlers...)
			tr, err := trace.Run(model, hs...)
			require.NoError(t, err)
			plain, err := trace.Run(model, ppl.Config{Tape: tp, Rand: seeded()})
			require.NoError(t, err)
			sum := make([]float64, 3)
			for _, s := range tr.Sites() {
				switch s.Kind {
				case ppl.KindParam, ppl.KindDeterministic:
					assert.Equal(t, 1.0, s.Scale, s.Addr)
					assert.Nil(t, s.Mask, s.Addr)
					continue
				}
				assert.Equal(t, tc.scale, s.Scale, s.Addr)
				if tc.mask == nil {
					assert.Nil(t, s.Mask)
				} else {
					assert.Equal(t, tc.mask, s.Mask.Data(), s.Addr)
				}
				// Values and raw log-probs and costs are unchanged.
				p := plain.Site(s.Addr)
				assert.Equal(t, p.Value.Data(), s.Value.Data(), s.Addr)
				raw, scaled := s.LogProb, s.ScaledLogProb()
				if s.Kind == ppl.KindCost {
					raw, scaled = s.Cost, s.ScaledCost()
					assert.Equal(t, p.Cost.Data(), raw.Data())
				} else {
					assert.Equal(t, p.LogProb.Data(), raw.Data())
				}
				for i := 0; i < 3; i++ {
					want := tc.scale * raw.At(i, 0)
					if tc.mask != nil && tc.mask[i] == 0 {
						want = 0
					}
					assert.InDelta(t, want, scaled.At(i, 0), 1e-12, "%s row %d", s.Addr, i)
					if s.Kind != ppl.KindCost {
						sum[i] += want
					}
				}
			}
			lps := tr.LogProbSum()
			for i := 0; i < 3; i++ {
				assert.InDelta(t, sum[i], lps.At(i, 0), 1e-12)
			}
		})
	}
	for _, bad := range []float64{0, -1, math.Inf(1), math.NaN()} {
		_, err := trace.Run(model, trace.Seed(seeded()), trace.Scale(bad))
		require.ErrorContains(t, err, fmt.Sprintf(`ppl: site "z": trace: Scale: factor must be finite and > 0, got %v`, bad))
	}
	_, err := trace.Run(model, ppl.Config{Tape: tp, Rand: seeded()}, trace.Mask(tp.Zeros(2, 1)))
	require.ErrorContains(t, err, `ppl: site "z": trace: Mask: mask is [2x1], the site has 3 rows inside plates []`)
	other := ad.NewTape()
	_, err = trace.Run(model, ppl.Config{Tape: tp, Rand: seeded()}, trace.Mask(other.Var(ad.NewVar(mat.NewDense(3, 1, nil)))))
	require.ErrorContains(t, err, `ppl: site "z": trace: Mask: mask is a tensor with a gradient path on another tape`)
	// A constant mask of another tape is copied onto the run's.
	tr, err := trace.Run(model, ppl.Config{Tape: tp, Rand: seeded()}, trace.Mask(other.FromData(3, 1, []float64{1, 0, 1})))
	require.NoError(t, err)
	require.Same(t, tp, tr.Site("z").Mask.Tape())
	require.Equal(t, []float64{1, 0, 1}, tr.Site("z").Mask.Data())
}

func TestSeedAndIdentity(t *testing.T) {
	values := func(hs ...ppl.Handler) []float64 {
		tr, err := trace.Run(chainModel, hs...)
		require.NoError(t, err)
		return append(append([]float64(nil), tr.Site("z").Value.Data()...), tr.Site("y").Value.Data()...)
	}
	a := values(trace.Seed(seeded()))
	assert.Equal(t, a, values(trace.Seed(seeded())), "the same seed gives the same run")
	identity := ppl.HandlerFunc(func(s *ppl.Site, next func(*ppl.Site)) { next(s) })
	assert.Equal(t, a, values(identity, trace.Seed(seeded()), identity), "the identity handler changes nothing")
	assert.NotEqual(t, a, values(trace.Seed(rand2())), "another seed gives another run")
}

func TestBlockAroundCondition(t *testing.T) {
	tp := ad.NewTape()
	v := col(tp, 9, 9, 9)
	var got *ad.Tensor
	model := func(ctx *ppl.Ctx) {
		got = ppl.Sample(ctx, "z", normal(ctx.Tape().Zeros(3, 1)))
		ppl.Cost(ctx, "f", got)
	}
	cond := trace.Condition(map[string]*ad.Tensor{"z": v})
	block := trace.Block(trace.Addrs("z"))

	// Condition first, then Block: the site is observed and hidden.
	var inner trace.Trace
	tr, err := trace.Run(model, ppl.Config{Tape: tp, Rand: seeded()}, cond, trace.Record(&inner), block)
	require.NoError(t, err)
	assert.Same(t, v, got)
	assert.Nil(t, tr.Site("z"))
	assert.Equal(t, ppl.KindObserve, inner.Site("z").Kind)
	assert.Equal(t, []string{"f"}, tr.Graph().Nodes())

	// Block first: the condition never sees the site, which is drawn.
	tr, err = trace.Run(model, ppl.Config{Tape: tp, Rand: seeded()}, block, cond)
	require.NoError(t, err)
	assert.NotEqual(t, v.Data(), got.Data())
	assert.Nil(t, tr.Site("z"))
}

// TestSharedParameters checks section 3.1's "SCGs with shared
// parameters": a layer and a parameter shared by two distributions and a
// cost make no stochastic edges.
func TestSharedParameters(t *testing.T) {
	store := nn.NewStore()
	lin := nn.NewLinear(2, 2, seeded())
	model := func(ctx *ppl.Ctx) {
		tp := ctx.Tape()
		ppl.Module(ctx, "shared", lin)
		w := ppl.Param(ctx, "w", 1, 2, nn.Constant(0.5))
		x := tp.FromData(3, 2, []float64{1, 2, 3, 4, 5, 6})
		z1 := ppl.Sample(ctx, "z1", normal(ad.Mul(lin.Forward(x), w)))
		z2 := ppl.Sample(ctx, "z2", normal(ad.Mul(lin.Forward(z1), w)))
		h := ppl.Deterministic(ctx, "h", lin.Forward(z2))
		u := ppl.Sample(ctx, "u", normal(ad.Mul(lin.Forward(x), w)))
		ppl.Cost(ctx, "f", ad.RowSum(ad.Mul(h, w)))
		ppl.Cost(ctx, "g", ad.RowSum(ad.Mul(u, w)))
	}
	tr, err := trace.Run(model, ppl.Config{Params: store, Rand: seeded()})
	require.NoError(t, err)
	g := tr.Graph()
	assert.Equal(t, []string{"z1", "z2", "u"}, g.Stochastic())
	assert.Empty(t, g.Parents("z1"))
	assert.Equal(t, []string{"z1"}, g.Parents("z2"))
	assert.Empty(t, g.Parents("u"), "sharing the layer and w with z1 and z2 makes no edge")
	assert.Equal(t, []string{"z2"}, g.Parents("f"))
	assert.Equal(t, []string{"u"}, g.Parents("g"))
	assert.Equal(t, []string{"f"}, g.CostsFrom("z1"))
	assert.Equal(t, []string{"z2"}, tr.Graph().Parents("f"))
	assert.True(t, tr.Site("h").Parents.Equal(ad.ProvenanceOf(tr.Site("z2").ID)))
	for _, name := range []string{"shared/W", "shared/b", "w"} {
		assert.NotNil(t, store.Get(name), name)
		assert.Equal(t, ppl.KindParam, tr.Site(name).Kind)
		assert.True(t, tr.Site(name).Value.Provenance().Empty())
	}
}

func TestSummary(t *testing.T) {
	tr, err := trace.Run(func(ctx *ppl.Ctx) {
		chainModel(ctx)
		ppl.Param(ctx, "p", 1, 1, nn.Zeros{})
	}, trace.Seed(seeded()))
	require.NoError(t, err)
	lines := strings.Split(strings.TrimRight(tr.Summary(), "\n"), "\n")
	require.Len(t, lines, 5)
	assert.Equal(t, []string{"ADDRESS", "KIND", "SHAPE", "PARENTS", "MEAN", "LOG-PROB", "/", "COST"}, strings.Fields(lines[0]))
	mean := func(v *ad.Tensor) string {
		return fmt.Sprintf("%.4g", (v.At(0, 0)+v.At(1, 0)+v.At(2, 0))/3)
	}
	assert.Equal(t, []string{"z", "sample", "[3x1]", "-", mean(tr.Site("z").LogProb)}, strings.Fields(lines[1]))
	assert.Equal(t, []string{"y", "sample", "[3x1]", "z", mean(tr.Site("y").LogProb)}, strings.Fields(lines[2]))
	assert.Equal(t, []string{"f", "cost", "[3x1]", "y", mean(tr.Site("f").Cost)}, strings.Fields(lines[3]))
	assert.Equal(t, []string{"p", "param", "[1x1]", "-", "-"}, strings.Fields(lines[4]))
}

func TestTraceAccessors(t *testing.T) {
	tr, err := trace.Run(chainModel, trace.Seed(seeded()), ppl.Config{FirstID: 5})
	require.NoError(t, err)
	assert.Equal(t, 3, tr.Len())
	assert.Equal(t, 3, tr.Batch())
	assert.Same(t, tr.Site("z"), tr.ByID(5))
	assert.Same(t, tr.Site("y"), tr.ByID(6))
	assert.Nil(t, tr.ByID(7))
	assert.Equal(t, 7, tr.NextID())
	assert.Same(t, tr.Graph(), tr.Graph(), "cached")
	empty, err := trace.Run(func(*ppl.Ctx) {})
	require.NoError(t, err)
	assert.Equal(t, 0, empty.NextID())
	assert.Equal(t, 0, empty.Batch())
	assert.Nil(t, empty.LogProbSum())
	assert.Equal(t, "digraph scg {\n}\n", empty.Graph().DOT())
}

func TestReplayValues(t *testing.T) {
	tp := ad.NewTape()
	stored := ad.NewTape().FromData(3, 1, []float64{0.5, 1, -2}) // another tape
	tr, err := trace.Run(chainModel, ppl.Config{Tape: tp, Rand: seeded()},
		trace.ReplayValues(map[string]*ad.Tensor{"z": stored}))
	require.NoError(t, err)
	z := tr.Site("z")
	assert.True(t, z.Replayed)
	assert.Equal(t, ppl.KindSample, z.Kind)
	assert.Equal(t, stored.Data(), z.Value.Data())
	assert.Same(t, tp, z.Value.Tape(), "copied onto the run's tape")
	for i := 0; i < 3; i++ {
		assert.InDelta(t, stdLogProb(stored.At(i, 0), 0), z.LogProb.At(i, 0), 1e-12)
		// y is drawn given the replayed z.
		assert.InDelta(t, stdLogProb(tr.Site("y").Value.At(i, 0), stored.At(i, 0)), tr.Site("y").LogProb.At(i, 0), 1e-12)
	}
	assert.Equal(t, []string{"z"}, tr.Graph().Parents("y"), "the site stays a random variable")
	_, err = trace.Run(chainModel, ppl.Config{Tape: tp, Rand: seeded()},
		trace.ReplayValues(map[string]*ad.Tensor{"y": tp.Zeros(2, 1)}))
	require.ErrorContains(t, err, `ppl: site "y": dist: Normal: value must be [3x1]`)
}
