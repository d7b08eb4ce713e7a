package ppl

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"

	"github.com/backpropq/backpropq/ad"
	"github.com/backpropq/backpropq/nn"
)

// Model is a probabilistic program: an ordinary Go function that draws
// random variables and records costs through its [Ctx]. Data reaches a
// model by closure.
type Model func(ctx *Ctx)

// Config is the environment of one run: the tape every tensor lives on,
// the random source, the parameter store and the batch size. A Config is
// also a [Handler] (the identity) and a [Configurer] that copies its
// non-zero fields into the run's, so a training loop that owns a tape, a
// store and a random source passes one Config to every run:
//
//	env := ppl.Config{Tape: tp, Rand: rng, Params: store}
//	tr, err := trace.Run(model, env, trace.Replay(guideTrace))
type Config struct {
	// Tape receives every op of the run. Default: a new tape.
	Tape *ad.Tape
	// Rand is the only random source of the run. Default: none, and a
	// sample site that must draw fails with a [SiteError].
	Rand *rand.Rand
	// Params holds the parameters of [Param] and [Module]. Default: a new
	// empty store.
	Params *nn.Store
	// Batch is the number of rows B of every value, log-prob and cost.
	// Zero means: taken from the first sample, observe or cost site.
	Batch int
	// FirstID is the id of the run's first sample site. Two runs on one
	// tape whose values meet (a guide and a model) get disjoint ids when
	// the second starts where the first ended.
	FirstID int
	// StrictProvenance makes a cost or observation whose value carries no
	// provenance, in a run that sampled sites before it, an error naming
	// the site, instead of assuming that it depends on all of them (see
	// [Site].AssumedParents). Values computed in plain Go get their
	// provenance back from [Lift].
	StrictProvenance bool
}

// Handle passes s on unchanged.
func (c Config) Handle(s *Site, next func(*Site)) { next(s) }

// Configure copies the non-zero fields of c into dst.
func (c Config) Configure(dst *Config) {
	if c.Tape != nil {
		dst.Tape = c.Tape
	}
	if c.Rand != nil {
		dst.Rand = c.Rand
	}
	if c.Params != nil {
		dst.Params = c.Params
	}
	if c.Batch != 0 {
		dst.Batch = c.Batch
	}
	if c.FirstID != 0 {
		dst.FirstID = c.FirstID
	}
	if c.StrictProvenance {
		dst.StrictProvenance = true
	}
}

// Ctx is a model's handle on its run: it carries the tape, the handler
// chain, the random source, the parameter store, the batch size and an
// address prefix. [Ctx.Scope] returns a view with a longer prefix that
// shares everything else.
//
// A Ctx is valid only while the run that created it is in progress; a
// primitive called with a finished or nil Ctx panics with a message that
// says so. A Ctx is not safe for concurrent use: a model runs on one
// goroutine.
type Ctx struct {
	run    *run
	gen    uint64 // the run's generation when c was made
	prefix string
	plates Stack
}

// run is the state that every scope of one run shares. Runs are pooled:
// gen counts the runs the struct served, so that a Ctx of an earlier run
// is recognized as finished.
type run struct {
	gen      uint64
	cfg      Config
	handlers []Handler     // those that see sites, in order
	nexts    []func(*Site) // nexts[i] passes a site to handler i
	nextID   int
	addrs    map[string]struct{}
	frames   map[string]*Frame // the plates entered, by address
	params   map[string]*ad.Tensor
	sampled  ad.Provenance // the ids of the sample sites run so far
	current  string        // address of the last site started
	inSite   bool          // a site is being processed
	finished bool
}

// Scope returns a view of c whose addresses are prefixed by name and a
// slash: ctx.Scope("decoder").Scope("fc") names its sites "decoder/fc/...".
// It panics with a [SiteError] if name is empty.
func (c *Ctx) Scope(name string) *Ctx {
	c.check("Scope")
	if name == "" {
		panic(&SiteError{Addr: c.prefix, Err: errors.New("ppl: Scope: empty scope name")})
	}
	s := c.run.ctx()
	*s = Ctx{run: c.run, gen: c.gen, prefix: c.prefix + name + "/", plates: c.plates}
	return s
}

// Addr returns the full address of the site name in c's scope.
func (c *Ctx) Addr(name string) string { c.check("Addr"); return c.prefix + name }

// Tape returns the run's tape; a model creates its data tensors on it.
func (c *Ctx) Tape() *ad.Tape { c.check("Tape"); return c.run.cfg.Tape }

// Rand returns the run's random source, nil if the run has none.
func (c *Ctx) Rand() *rand.Rand { c.check("Rand"); return c.run.cfg.Rand }

// Params returns the run's parameter store.
func (c *Ctx) Params() *nn.Store { c.check("Params"); return c.run.cfg.Params }

// Batch returns the run's batch size, the rows of a value outside every
// plate, or 0 while it is not yet known (no [Config].Batch and no sample,
// observe or cost site so far).
func (c *Ctx) Batch() int { c.check("Batch"); return c.run.cfg.Batch }

// check panics with a clear message when c cannot be used by a primitive.
func (c *Ctx) check(fn string) {
	if c == nil || c.run == nil {
		panic("ppl: " + fn + " called with a nil *ppl.Ctx; a model receives its Ctx from ppl.Run or trace.Run")
	}
	if c.run.finished || c.gen != c.run.gen {
		panic("ppl: " + fn + " called with a finished Ctx; the run that created it has returned, and a model must not keep its Ctx")
	}
}

// At returns the address of element i of the indexed family name:
// At("y", 3) is "y[3]".
func At(name string, i int) string { return name + "[" + strconv.Itoa(i) + "]" }

// SiteError is a failure at a site: invalid distribution parameters, a
// value outside the support, a duplicate address, a bad shape. Primitives
// panic with a *SiteError, and [Run] returns it as an error.
type SiteError struct {
	// Addr is the full address of the site; empty when the failure came
	// before any site.
	Addr string
	// After reports that the failure was in model code run after the site
	// at Addr finished, not in the site itself (an ad shape panic between
	// sites).
	After bool
	// Err is what went wrong.
	Err error
}

// Error returns `ppl: site "addr": ...`, or `ppl: after site "addr": ...`.
func (e *SiteError) Error() string {
	switch {
	case e.After && e.Addr == "":
		return "ppl: before the first site: " + e.Err.Error()
	case e.After:
		return fmt.Sprintf("ppl: after site %q: %v", e.Addr, e.Err)
	}
	return fmt.Sprintf("ppl: site %q: %v", e.Addr, e.Err)
}

// Unwrap returns e.Err.
func (e *SiteError) Unwrap() error { return e.Err }

// Run runs model once with handlers, and returns the first [SiteError] as
// an error. A shape or index panic of the ad package (*ad.ShapeError,
// *ad.IndexError) is returned as a SiteError naming the site being
// processed, or, when it came from model code between sites, the last
// site started (with After set). Any other panic propagates unchanged. A
// nil model or handler, a negative batch size or first id is an error
// before the model runs.
//
// Handlers see each site in the order given, then the default behaviour
// runs; see [Handler]. Handlers that implement [Configurer] set up the run
// first; see [Config] for the defaults. Run allocates the run's state, so
// the [Ctx] the model receives is finished when Run returns.
func Run(model Model, handlers ...Handler) (err error) {
	if model == nil {
		return errors.New("ppl: Run: nil model")
	}
	for i, h := range handlers {
		if h == nil {
			return fmt.Errorf("ppl: Run: handler %d is nil", i)
		}
	}
	r := newRun()
	cfg := &r.cfg
	for _, h := range handlers {
		if c, ok := h.(Configurer); ok {
			c.Configure(cfg)
		}
	}
	if cfg.Tape == nil {
		cfg.Tape = ad.NewTape()
	}
	if cfg.Params == nil {
		cfg.Params = nn.NewStore()
	}
	if b, id := cfg.Batch, cfg.FirstID; b < 0 || id < 0 {
		r.release()
		if b < 0 {
			return fmt.Errorf("ppl: Run: batch size must be >= 0, got %d", b)
		}
		return fmt.Errorf("ppl: Run: first site id must be >= 0, got %d", id)
	}
	r.nextID = cfg.FirstID
	for _, h := range handlers {
		if _, ok := h.(Config); !ok { // Config is the identity on sites
			r.handlers = append(r.handlers, h)
		}
	}
	defer func() {
		r.finished = true
		if p := recover(); p != nil {
			switch e := p.(type) {
			case *SiteError:
				err = e
			case *ad.ShapeError, *ad.IndexError:
				cause := p.(error)
				if _, shape := p.(*ad.ShapeError); shape && len(r.frames) > 0 {
					cause = fmt.Errorf("%w (the run has plates: a value has the rows of its plate level, and ppl.Broadcast, ppl.SumOut and ppl.Data move values between levels)", cause)
				}
				err = &SiteError{Addr: r.current, After: !r.inSite, Err: cause}
			default:
				panic(p)
			}
		}
		r.release()
	}()
	ctx := r.ctx()
	*ctx = Ctx{run: r, gen: r.gen}
	model(ctx)
	return nil
}
