package ppl_test

import (
	"errors"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gonum.org/v1/gonum/mat"

	"github.com/backpropq/backpropq/ad"
	"github.com/backpropq/backpropq/nn"
	"github.com/backpropq/backpropq/ppl"
	"github.com/backpropq/backpropq/ppl/dist"
)

func seeded() *rand.Rand { return rand.New(rand.NewPCG(1, 2)) }

// recorder returns a handler that appends each finished site to *sites.
func recorder(sites *[]*ppl.Site) ppl.Handler {
	return ppl.HandlerFunc(func(s *ppl.Site, next func(*ppl.Site)) {
		next(s)
		*sites = append(*sites, s)
	})
}

func stdNormal(tp *ad.Tape, rows, cols int) dist.Normal {
	return dist.Normal{Loc: tp.Zeros(rows, cols), Scale: tp.Full(rows, cols, 1)}
}

func TestSampleProvenanceAndParents(t *testing.T) {
	for _, first := range []int{0, 70} {
		var sites []*ppl.Site
		model := func(ctx *ppl.Ctx) {
			tp := ctx.Tape()
			a := ppl.Sample(ctx, "a", stdNormal(tp, 3, 2))
			b := ppl.Sample(ctx, "b", dist.Normal{Loc: a, Scale: tp.Full(3, 2, 1)})
			ppl.Deterministic(ctx, "sum", ad.Add(a, b))
			c := ppl.Sample(ctx, "c", dist.BernoulliLogits(ad.RowSum(b)))
			x := tp.FromData(3, 1, []float64{1, 0, 1})
			ppl.Observe(ctx, "x", dist.BernoulliLogits(ad.Add(c, ad.RowSum(a))), x)
			ppl.Cost(ctx, "f", ad.Mul(c, ad.RowSum(b)))
		}
		err := ppl.Run(model, ppl.Config{Rand: seeded(), FirstID: first}, recorder(&sites))
		require.NoError(t, err)
		require.Len(t, sites, 6)
		a, b, sum, c, x, f := sites[0], sites[1], sites[2], sites[3], sites[4], sites[5]

		id := func(s *ppl.Site) ad.Provenance { return ad.ProvenanceOf(s.ID) }
		assert.Equal(t, []int{first, first + 1, -1, first + 2, -1, -1}, []int{a.ID, b.ID, sum.ID, c.ID, x.ID, f.ID})
		for _, s := range []*ppl.Site{a, b, c} {
			assert.Equal(t, ppl.KindSample, s.Kind)
			assert.True(t, s.Value.Provenance().Equal(id(s)), "%s value provenance %v", s.Addr, s.Value.Provenance())
			require.NotNil(t, s.LogProb)
			assert.Equal(t, [2]int{3, 1}, dims(s.LogProb))
		}
		assert.True(t, a.Parents.Empty())
		assert.True(t, b.Parents.Equal(id(a)))
		assert.True(t, c.Parents.Equal(id(b)))
		assert.Equal(t, ppl.KindDeterministic, sum.Kind)
		assert.True(t, sum.Parents.Equal(id(a).Union(id(b))))
		assert.Equal(t, ppl.KindObserve, x.Kind)
		assert.True(t, x.Parents.Equal(id(a).Union(id(c))))
		assert.Equal(t, ppl.KindCost, f.Kind)
		assert.True(t, f.Parents.Equal(id(b).Union(id(c))))

		// An observation's cost is its negative log-probability.
		for i := 0; i < 3; i++ {
			assert.Equal(t, -x.LogProb.At(i, 0), x.Cost.At(i, 0))
		}
		assert.Same(t, f.Value, f.Cost)
		for _, s := range sites {
			assert.Equal(t, 1.0, s.Scale)
			assert.Nil(t, s.Mask)
		}
	}
}

func dims(t *ad.Tensor) [2]int { r, c := t.Dims(); return [2]int{r, c} }

func TestAddresses(t *testing.T) {
	var sites []*ppl.Site
	err := ppl.Run(func(ctx *ppl.Ctx) {
		dec := ctx.Scope("decoder")
		fc := dec.Scope("fc")
		assert.Equal(t, "decoder/fc/y[3]", fc.Addr(ppl.At("y", 3)))
		ppl.Sample(fc, ppl.At("y", 3), stdNormal(ctx.Tape(), 1, 1))
		ppl.Sample(dec, "y", stdNormal(ctx.Tape(), 1, 1))
		ppl.Sample(ctx, "y", stdNormal(ctx.Tape(), 1, 1))
	}, ppl.Config{Rand: seeded()}, recorder(&sites))
	require.NoError(t, err)
	var addrs []string
	for _, s := range sites {
		addrs = append(addrs, s.Addr)
	}
	assert.Equal(t, []string{"decoder/fc/y[3]", "decoder/y", "y"}, addrs)
	assert.Equal(t, "y[-1]", ppl.At("y", -1))
}

func TestReparameterized(t *testing.T) {
	noRSample := ppl.HandlerFunc(func(s *ppl.Site, next func(*ppl.Site)) {
		s.NoRSample = true
		next(s)
	})
	for _, tc := range []struct {
		name     string
		handlers []ppl.Handler
		bern     bool
		reparam  bool
	}{
		{"normal", nil, false, true},
		{"normal with NoRSample", []ppl.Handler{noRSample}, false, false},
		{"bernoulli", nil, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tp := ad.NewTape()
			loc := tp.FromData(2, 1, []float64{0.5, -1})
			var sites []*ppl.Site
			hs := append([]ppl.Handler{ppl.Config{Tape: tp, Rand: seeded()}}, tc.handlers...)
			hs = append(hs, recorder(&sites))
			err := ppl.Run(func(ctx *ppl.Ctx) {
				var d dist.Distribution = dist.Normal{Loc: loc, Scale: tp.Full(2, 1, 1)}
				if tc.bern {
					d = dist.BernoulliLogits(loc)
				}
				ppl.Sample(ctx, "z", d)
			}, hs...)
			require.NoError(t, err)
			z := sites[0]
			assert.Equal(t, tc.reparam, z.Reparameterized)
			// dz/dloc is 1 for a pathwise sample and 0 otherwise.
			g := tp.Gradients(ad.Sum(z.Value), loc)[0]
			want := 0.0
			if tc.reparam {
				want = 1
			}
			assert.Equal(t, []float64{want, want}, g.RawMatrix().Data)
		})
	}
}

// TestErrors checks that each library error comes back from Run as a
// *SiteError naming the address.
func TestErrors(t *testing.T) {
	normal := func(ctx *ppl.Ctx, addr string, rows int) *ad.Tensor {
		return ppl.Sample(ctx, addr, stdNormal(ctx.Tape(), rows, 1))
	}
	var shapeErr *ad.ShapeError
	var distErr *dist.Error
	for _, tc := range []struct {
		name   string
		model  ppl.Model
		noRand bool
		addr   string
		after  bool
		as     any
		msg    string
	}{
		{
			name: "invalid scale",
			model: func(ctx *ppl.Ctx) {
				tp := ctx.Tape()
				ppl.Sample(ctx.Scope("enc"), "z", dist.Normal{Loc: tp.Zeros(2, 1), Scale: tp.FromData(2, 1, []float64{1, -1})})
			},
			addr: "enc/z", as: &distErr, msg: "scale must be > 0",
		},
		{
			name: "non-finite logits",
			model: func(ctx *ppl.Ctx) {
				ppl.Sample(ctx, "b", dist.BernoulliLogits(ctx.Tape().Scalar(mathNaN())))
			},
			addr: "b", as: &distErr, msg: "logits",
		},
		{
			name: "observed value outside the support",
			model: func(ctx *ppl.Ctx) {
				tp := ctx.Tape()
				ppl.Observe(ctx.Scope("data"), ppl.At("x", 2), dist.BernoulliLogits(tp.Zeros(2, 1)), tp.FromData(2, 1, []float64{1, 0.5}))
			},
			addr: "data/x[2]", as: &distErr, msg: "0.5",
		},
		{
			name: "duplicate sample address",
			model: func(ctx *ppl.Ctx) {
				normal(ctx, "z", 1)
				normal(ctx, "z", 1)
			},
			addr: "z", msg: "duplicate address",
		},
		{
			name: "duplicate address across kinds",
			model: func(ctx *ppl.Ctx) {
				z := normal(ctx, "z", 1)
				ppl.Cost(ctx, "z", z)
			},
			addr: "z", msg: "duplicate address",
		},
		{
			name: "duplicate address of a param",
			model: func(ctx *ppl.Ctx) {
				normal(ctx, "w", 1)
				ppl.Param(ctx, "w", 1, 1, nn.Zeros{})
			},
			addr: "w", msg: "duplicate address",
		},
		{
			name:  "empty address",
			model: func(ctx *ppl.Ctx) { normal(ctx.Scope("s"), "", 1) },
			addr:  "s/", msg: "empty address",
		},
		{
			name:  "empty scope name",
			model: func(ctx *ppl.Ctx) { ctx.Scope("a").Scope("") },
			addr:  "a/", msg: "empty scope name",
		},
		{
			name:  "nil distribution",
			model: func(ctx *ppl.Ctx) { ppl.Sample(ctx, "z", dist.Distribution(nil)) },
			addr:  "z", msg: "nil distribution",
		},
		{
			name: "cost not a column",
			model: func(ctx *ppl.Ctx) {
				ppl.Cost(ctx, "f", ctx.Tape().Zeros(2, 2))
			},
			addr: "f", msg: "cost must be [Bx1], got [2x2]",
		},
		{
			name: "cost batch differs from the run's",
			model: func(ctx *ppl.Ctx) {
				normal(ctx, "z", 3)
				ppl.Cost(ctx, "f", ctx.Tape().Zeros(2, 1))
			},
			addr: "f", msg: "cost has batch 2, the run has batch 3",
		},
		{
			name: "sample batch differs from the run's",
			model: func(ctx *ppl.Ctx) {
				normal(ctx, "z", 3)
				normal(ctx, "y", 1)
			},
			addr: "y", msg: "ppl.Expand",
		},
		{
			name:   "no random source",
			model:  func(ctx *ppl.Ctx) { normal(ctx, "z", 1) },
			noRand: true,
			addr:   "z", msg: "no random source",
		},
		{
			name: "observed value on another tape",
			model: func(ctx *ppl.Ctx) {
				other := ad.NewTape()
				ppl.Observe(ctx, "x", stdNormal(ctx.Tape(), 1, 1), other.Zeros(1, 1))
			},
			addr: "x", msg: "another tape",
		},
		{
			name: "distribution on another tape",
			model: func(ctx *ppl.Ctx) {
				ppl.Sample(ctx, "z", stdNormal(ad.NewTape(), 1, 1))
			},
			addr: "z", msg: "another tape",
		},
		{
			name: "param shape differs within a run",
			model: func(ctx *ppl.Ctx) {
				ppl.Param(ctx, "w", 2, 3, nn.Zeros{})
				ppl.Param(ctx, "w", 3, 2, nn.Zeros{})
			},
			addr: "w", msg: "[2x3], requested [3x2]",
		},
		{
			name:   "param needs a random source",
			model:  func(ctx *ppl.Ctx) { ppl.Param(ctx.Scope("enc"), "W", 2, 3, nn.GlorotUniform{}) },
			noRand: true,
			addr:   "enc/W", msg: "no random source",
		},
		{
			name:  "param without initializer",
			model: func(ctx *ppl.Ctx) { ppl.Param(ctx, "W", 2, 3, nil) },
			addr:  "W", msg: "nil initializer",
		},
		{
			name: "module clashes with a param of another shape",
			model: func(ctx *ppl.Ctx) {
				ppl.Param(ctx, "net/W", 1, 1, nn.Zeros{})
				ppl.Module(ctx, "net", nn.NewLinear(2, 3, seeded()))
			},
			addr: "net", msg: "shape",
		},
		{
			name: "shape panic inside a site",
			model: func(ctx *ppl.Ctx) {
				normal(ctx, "z", 2)
				ppl.Sample(ctx.Scope("dec"), "y", badLogProb{stdNormal(ctx.Tape(), 2, 1)})
			},
			addr: "dec/y", as: &shapeErr, msg: `site "dec/y": ad: MatMul`,
		},
		{
			name: "parameters that do not broadcast",
			model: func(ctx *ppl.Ctx) {
				tp := ctx.Tape()
				normal(ctx, "z", 2)
				// Loc and Scale do not broadcast: Validate reports it.
				ppl.Sample(ctx, "y", dist.Normal{Loc: tp.Zeros(2, 3), Scale: tp.Full(2, 2, 1)})
			},
			addr: "y", as: &distErr, msg: "does not broadcast",
		},
		{
			name: "shape panic between sites",
			model: func(ctx *ppl.Ctx) {
				z := normal(ctx.Scope("enc"), "z", 2)
				ad.MatMul(z, ctx.Tape().Zeros(2, 2))
			},
			addr: "enc/z", after: true, as: &shapeErr, msg: `after site "enc/z": ad: MatMul`,
		},
		{
			name: "shape panic before any site",
			model: func(ctx *ppl.Ctx) {
				ad.Add(ctx.Tape().Zeros(2, 2), ctx.Tape().Zeros(3, 3))
			},
			addr: "", after: true, as: &shapeErr, msg: "before the first site",
		},
		{
			name: "Expand before the batch is known",
			model: func(ctx *ppl.Ctx) {
				ppl.Expand(ctx, ctx.Tape().Zeros(1, 2))
			},
			addr: "", after: true, msg: "batch size is not known",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var hs []ppl.Handler
			if !tc.noRand {
				hs = append(hs, ppl.Config{Rand: seeded()})
			}
			err := ppl.Run(tc.model, hs...)
			require.Error(t, err)
			var se *ppl.SiteError
			require.ErrorAs(t, err, &se)
			assert.Equal(t, tc.addr, se.Addr)
			assert.Equal(t, tc.after, se.After)
			assert.Contains(t, err.Error(), tc.msg)
			if tc.addr != "" {
				assert.Contains(t, err.Error(), `"`+tc.addr+`"`)
			}
			if tc.as != nil {
				assert.True(t, errors.As(err, tc.as), "error %v does not wrap %T", err, tc.as)
			}
		})
	}
}

// badLogProb is a normal whose LogProb makes a shape error.
type badLogProb struct{ dist.Normal }

func (d badLogProb) LogProb(v *ad.Tensor) *ad.Tensor {
	return ad.MatMul(v, v)
}

func TestRunArguments(t *testing.T) {
	for _, tc := range []struct {
		name     string
		model    ppl.Model
		handlers []ppl.Handler
		msg      string
	}{
		{"nil model", nil, nil, "ppl: Run: nil model"},
		{"nil handler", func(*ppl.Ctx) {}, []ppl.Handler{ppl.Config{}, nil}, "ppl: Run: handler 1 is nil"},
		{"negative batch", func(*ppl.Ctx) {}, []ppl.Handler{ppl.Config{Batch: -1}}, "ppl: Run: batch size must be >= 0, got -1"},
		{"negative first id", func(*ppl.Ctx) {}, []ppl.Handler{ppl.Config{FirstID: -2}}, "ppl: Run: first site id must be >= 0, got -2"},
	} {
		assert.EqualError(t, ppl.Run(tc.model, tc.handlers...), tc.msg, tc.name)
	}
}

func mathNaN() float64 { z := 0.0; return z / z }

type customErr struct{ s string }

func (e *customErr) Error() string { return e.s }

func TestOrdinaryPanicsPropagate(t *testing.T) {
	assert.PanicsWithValue(t, "boom", func() {
		_ = ppl.Run(func(ctx *ppl.Ctx) {
			ppl.Sample(ctx, "z", stdNormal(ctx.Tape(), 1, 1))
			panic("boom")
		}, ppl.Config{Rand: seeded()})
	})
	e := &customErr{"mine"}
	assert.PanicsWithError(t, "mine", func() {
		_ = ppl.Run(func(*ppl.Ctx) { panic(e) })
	})
	defer func() {
		assert.Same(t, e, recover(), "the panic value is unchanged")
	}()
	_ = ppl.Run(func(*ppl.Ctx) { panic(e) })
}

func TestNilAndFinishedCtx(t *testing.T) {
	assert.PanicsWithValue(t,
		"ppl: Sample called with a nil *ppl.Ctx; a model receives its Ctx from ppl.Run or trace.Run",
		func() { ppl.Sample(nil, "z", dist.Distribution(nil)) })
	var kept *ppl.Ctx
	require.NoError(t, ppl.Run(func(ctx *ppl.Ctx) { kept = ctx.Scope("s") }))
	for name, call := range map[string]func(){
		"Sample":        func() { ppl.Sample(kept, "z", dist.Distribution(nil)) },
		"Observe":       func() { ppl.Observe(kept, "z", dist.Distribution(nil), nil) },
		"Cost":          func() { ppl.Cost(kept, "z", nil) },
		"Param":         func() { ppl.Param(kept, "z", 1, 1, nn.Zeros{}) },
		"Module":        func() { ppl.Module(kept, "z", nil) },
		"Deterministic": func() { ppl.Deterministic(kept, "z", nil) },
		"Expand":        func() { ppl.Expand(kept, nil) },
		"Scope":         func() { kept.Scope("x") },
		"Tape":          func() { kept.Tape() },
	} {
		assert.PanicsWithValue(t,
			"ppl: "+name+" called with a finished Ctx; the run that created it has returned, and a model must not keep its Ctx",
			call, name)
	}
}

// A Ctx kept from an earlier run stays finished while later runs are in
// progress (runs reuse their state).
func TestFinishedCtxDuringLaterRuns(t *testing.T) {
	var kept *ppl.Ctx
	require.NoError(t, ppl.Run(func(ctx *ppl.Ctx) { kept = ctx }))
	for i := 0; i < 3; i++ {
		require.NoError(t, ppl.Run(func(ctx *ppl.Ctx) {
			assert.PanicsWithValue(t,
				"ppl: Tape called with a finished Ctx; the run that created it has returned, and a model must not keep its Ctx",
				func() { kept.Tape() })
			ctx.Tape() // the run's own Ctx works
		}))
	}
}

func TestParam(t *testing.T) {
	tp := ad.NewTape()
	store := nn.NewStore()
	env := ppl.Config{Tape: tp, Params: store, Rand: seeded()}
	var first *mat.Dense
	for run := 0; run < 2; run++ {
		var sites []*ppl.Site
		err := ppl.Run(func(ctx *ppl.Ctx) {
			enc := ctx.Scope("enc")
			w := ppl.Param(enc, "w", 2, 3, nn.Normal{Std: 1})
			assert.Same(t, w, ppl.Param(enc, "w", 2, 3, nn.Normal{Std: 1}), "a second call returns the same tensor")
			assert.True(t, w.Provenance().Empty())
			assert.True(t, w.RequiresGrad())
			ppl.Cost(ctx, "f", ad.RowSum(ad.MatMul(ctx.Tape().Full(1, 2, 1), w)))
		}, env, recorder(&sites))
		require.NoError(t, err)
		p := store.Get("enc/w")
		require.NotNil(t, p, "the store keys the parameter by its full address")
		if run == 0 {
			first = mat.DenseCopyOf(p.Value)
		} else {
			assert.True(t, mat.Equal(first, p.Value), "the second run reuses the parameter")
		}
		require.Len(t, sites, 2)
		assert.Equal(t, ppl.KindParam, sites[0].Kind)
		assert.Same(t, p, sites[0].Param)
		assert.True(t, sites[1].Parents.Empty(), "a parameter is not a stochastic parent")
		// The bound tensor reaches the store's Var.
		p.ZeroGrad()
		tp.Backward(ad.Sum(sites[1].Cost))
		assert.Equal(t, []float64{1, 1, 1, 1, 1, 1}, p.Grad.RawMatrix().Data)
		tp.Reset()
	}
}

func TestModule(t *testing.T) {
	store := nn.NewStore()
	lin := nn.NewLinear(2, 3, seeded())
	for run := 0; run < 2; run++ {
		var sites []*ppl.Site
		err := ppl.Run(func(ctx *ppl.Ctx) {
			dec := ctx.Scope("model")
			ppl.Module(dec, "fc", lin)
			ppl.Module(dec, "fc", lin) // idempotent
			h := lin.Forward(ctx.Tape().Full(4, 2, 1))
			assert.True(t, h.Provenance().Empty())
		}, ppl.Config{Params: store}, recorder(&sites))
		require.NoError(t, err)
		var addrs []string
		for _, s := range sites {
			assert.Equal(t, ppl.KindParam, s.Kind)
			addrs = append(addrs, s.Addr)
		}
		assert.Equal(t, []string{"model/fc/W", "model/fc/b"}, addrs)
		assert.Same(t, lin.W, store.Get("model/fc/W"))
		assert.Same(t, lin.B, store.Get("model/fc/b"))
	}
}

func TestBatchAndExpand(t *testing.T) {
	for _, tc := range []struct {
		name   string
		config int
	}{{"configured", 4}, {"inferred", 0}} {
		t.Run(tc.name, func(t *testing.T) {
			err := ppl.Run(func(ctx *ppl.Ctx) {
				tp := ctx.Tape()
				assert.Equal(t, tc.config, ctx.Batch())
				if tc.config == 0 {
					ppl.Sample(ctx, "first", stdNormal(tp, 4, 1))
				}
				assert.Equal(t, 4, ctx.Batch())
				prior := tp.FromData(1, 2, []float64{3, -3})
				logits := ppl.Expand(ctx, prior)
				assert.Equal(t, [2]int{4, 2}, dims(logits))
				for i := 0; i < 4; i++ {
					assert.Equal(t, []float64{3, -3}, logits.Data()[2*i:2*i+2])
				}
				assert.Same(t, logits, ppl.Expand(ctx, logits))
				h := ppl.Sample(ctx, "h", dist.BernoulliLogits(logits))
				assert.Equal(t, [2]int{4, 2}, dims(h))
				// An observation may broadcast [1xD] parameters itself.
				ppl.Observe(ctx, "x", dist.BernoulliLogits(prior), h)
			}, ppl.Config{Rand: seeded(), Batch: tc.config})
			require.NoError(t, err)
		})
	}
}

func TestKindString(t *testing.T) {
	for k, want := range map[ppl.Kind]string{
		ppl.KindSample: "sample", ppl.KindObserve: "observe", ppl.KindCost: "cost",
		ppl.KindParam: "param", ppl.KindDeterministic: "deterministic", 0: "invalid", 99: "invalid",
	} {
		assert.Equal(t, want, k.String())
	}
}

func TestScaledLogProbAndCost(t *testing.T) {
	tp := ad.NewTape()
	lp := tp.FromData(3, 1, []float64{-1, -2, -3})
	s := &ppl.Site{LogProb: lp, Cost: ad.Neg(lp), Scale: 2, Mask: tp.FromData(3, 1, []float64{1, 0, 1})}
	assert.Equal(t, []float64{-2, 0, -6}, s.ScaledLogProb().Data())
	assert.Equal(t, []float64{2, 0, 6}, s.ScaledCost().Data())
	// A masked row with a -Inf log-prob gives 0, not NaN.
	inf := tp.FromData(2, 1, []float64{-1, -1 / mathZero()})
	s = &ppl.Site{LogProb: inf, Scale: 1, Mask: tp.FromData(2, 1, []float64{1, 0})}
	assert.Equal(t, []float64{-1, 0}, s.ScaledLogProb().Data())
	assert.Nil(t, (&ppl.Site{Scale: 1}).ScaledCost())
}

func mathZero() float64 { return 0 }
