package ppl

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"

	"gonum.org/v1/gonum/mat"

	"github.com/backpropq/backpropq/ad"
	"github.com/backpropq/backpropq/nn"
	"github.com/backpropq/backpropq/ppl/dist"
)

// Param returns the trainable parameter addr, a [rows x cols] matrix bound
// to the run's tape, creating it in the run's store from init (drawing
// from the run's random source) the first time the store lacks it. The
// store keys it by the full address. The returned tensor has no
// provenance: a parameter is never a stochastic parent, however many sites
// share it.
//
// Calling Param again with the same address in one run returns the same
// tensor. Param panics with a [SiteError] when addr is empty or names a
// site of another kind, when the store holds the parameter with another
// shape, when rows or cols is not positive, and when init is nil or needs
// a random source the run does not have while the parameter must be
// created.
func Param(ctx *Ctx, addr string, rows, cols int, init nn.Initializer) *ad.Tensor {
	ctx.check("Param")
	r := ctx.run
	full := ctx.Addr(addr)
	if t, ok := r.params[full]; ok {
		if tr, tc := t.Dims(); tr != rows || tc != cols {
			r.current = full
			panic(&SiteError{Addr: full, Err: fmt.Errorf("parameter is [%dx%d], requested [%dx%d]", tr, tc, rows, cols)})
		}
		return t
	}
	s := r.site()
	*s = Site{Addr: full, Kind: KindParam, ID: -1, Scale: 1, rows: rows, cols: cols, init: init}
	r.start(s, addr)
	r.send(s)
	r.params[full] = s.Value
	return s.Value
}

// ParamIn is [Param] for a parameter constrained to c, such as
// dist.Positive, dist.Interval(0, 1), dist.Simplex or dist.LowerCholesky:
// the store holds an unconstrained value u under addr, and ParamIn returns
// T(u), [rows x cols], for T = dist.BijectTo(c). An optimizer then steps u
// freely while the model always sees a value in c (a scale never steps
// below zero). init gives the initial constrained value, which is mapped
// through T's inverse when the parameter is created; the stored matrix has
// T's inverse shape (one column fewer for dist.Simplex).
//
// The param site, the store and any handler that substitutes the
// parameter see the unconstrained value. ParamIn panics with a
// [SiteError] naming the address when c has no
// bijection (a discrete set) or the initial value lies outside c, and
// otherwise as Param does.
func ParamIn(ctx *Ctx, addr string, rows, cols int, c dist.Constraint, init nn.Initializer) *ad.Tensor {
	ctx.check("ParamIn")
	full := ctx.Addr(addr)
	t, err := dist.BijectTo(c)
	if err != nil {
		ctx.run.current = full
		panic(&SiteError{Addr: full, Err: err})
	}
	var unconstrained nn.Initializer
	if init != nil {
		unconstrained = nn.InitFunc(func(m *mat.Dense, rng *rand.Rand) {
			v := mat.NewDense(rows, cols, nil)
			init.Init(v, rng)
			u, err := inverseOf(t, c, v)
			if err != nil {
				panic(&SiteError{Addr: full, Err: fmt.Errorf("initial value: %w", err)})
			}
			m.Copy(u)
		})
	}
	return t.Forward(Param(ctx, addr, rows, t.InverseCols(cols), unconstrained))
}

// inverseOf returns T⁻¹(v) for a constrained value v, or an error when v
// is outside c or maps to a non-finite number.
func inverseOf(t dist.Transform, c dist.Constraint, v *mat.Dense) (*mat.Dense, error) {
	tp := ad.NewTape()
	y := tp.Const(v)
	if err := dist.Check(c, y); err != nil {
		return nil, err
	}
	u := t.Inverse(y)
	for _, x := range u.Data() {
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return nil, fmt.Errorf("is on the boundary of %v, which the unconstrained parameter cannot reach", c)
		}
	}
	return mat.DenseCopyOf(u.Value()), nil
}

// Module registers the parameters of layer in the run's store under the
// address prefix (see [nn.Store.Register]: a parameter "W" of a layer
// registered under "decoder" becomes "decoder/W"), so that optimizers and
// checkpoints find them, and records a param site for each. The layer's
// Forward binds its own parameters, so handlers cannot substitute them.
// Calling Module again with a layer already registered is a no-op for its
// parameters. It panics with a [SiteError] when prefix is empty or the
// store rejects the layer (a name clash or a shape mismatch).
func Module(ctx *Ctx, prefix string, layer nn.Layer) {
	ctx.check("Module")
	r := ctx.run
	full := ctx.Addr(prefix)
	r.current = full
	if prefix == "" {
		panic(&SiteError{Addr: full, Err: errors.New("empty address")})
	}
	if layer == nil {
		panic(&SiteError{Addr: full, Err: errors.New("nil layer")})
	}
	if err := r.cfg.Params.Register(full, layer); err != nil {
		panic(&SiteError{Addr: full, Err: err})
	}
	for _, p := range layer.Params() {
		if _, ok := r.params[p.Name]; ok {
			continue
		}
		s := r.site()
		*s = Site{Addr: p.Name, Kind: KindParam, ID: -1, Scale: 1, Param: p, module: true}
		r.start(s, p.Name)
		r.send(s)
		r.params[p.Name] = s.Value
	}
}

func (r *run) param(s *Site) {
	tp := r.cfg.Tape
	if s.module {
		if s.Value != nil {
			fail(s, "the parameters of a Module cannot be substituted: the layer binds its own")
		}
		s.Value = tp.Var(s.Param.Var)
		return
	}
	if s.Value != nil {
		r.checkTape(s, s.Value, "substituted parameter")
		if rows, cols := s.Value.Dims(); rows != s.rows || cols != s.cols {
			fail(s, "substituted parameter is [%dx%d], requested [%dx%d]", rows, cols, s.rows, s.cols)
		}
		s.Param = nil
		return
	}
	s.Param = r.storeParam(s)
	s.Value = tp.Var(s.Param.Var)
}

// storeParam gets or creates the parameter of s, turning the nn package's
// panics for a missing random source into a SiteError.
func (r *run) storeParam(s *Site) (p *nn.Param) {
	defer func() {
		if v := recover(); v != nil {
			if msg, ok := v.(string); ok && strings.HasPrefix(msg, "nn: ") {
				fail(s, "%s (the run has no random source: pass one with trace.Seed or ppl.Config)", msg)
			}
			panic(v)
		}
	}()
	p, err := r.cfg.Params.Param(s.Addr, s.rows, s.cols, s.init, r.cfg.Rand)
	if err != nil {
		panic(&SiteError{Addr: s.Addr, Err: err})
	}
	return p
}
