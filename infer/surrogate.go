package infer

import (
	"errors"
	"fmt"
	"math"

	"github.com/backpropq/backpropq/ad"
	"github.com/backpropq/backpropq/internal/arena"
	"github.com/backpropq/backpropq/ppl"
	"github.com/backpropq/backpropq/trace"
	"github.com/backpropq/backpropq/vi"
)

// siteTerm is one site's estimator term in one run.
type siteTerm struct {
	addr string
	term Term
}

// Surrogate is the surrogate loss of one run of an objective: the sum of
// the scaled costs of the run (ppl.Site.ScaledCost) and of every
// stochastic site's estimator term, so that one backward pass from Loss
// gives every gradient (paper Algorithm 1, lines 14-20). Like its trace,
// it is valid until the tape it was built on is reset.
type Surrogate struct {
	// Trace is the run's trace.
	Trace *trace.Trace
	// Loss is the [1 x 1] surrogate loss. Its value is not meaningful;
	// Cost is.
	Loss *ad.Tensor
	// Cost is the sum over rows of the run's scaled costs: the Monte Carlo
	// value of the objective being minimized.
	Cost float64

	terms  []siteTerm
	phases []TraceState
	diags  []SiteDiagnostics
}

// Commit calls the Commit function of every per-trace phase, keeping the
// diagnostics they return (see [Surrogate.Diagnostics]), then that of
// every term, in the order of the sites. A training loop calls it once
// the step has succeeded.
func (s *Surrogate) Commit() {
	clear(s.diags)
	s.diags = s.diags[:0]
	for _, ph := range s.phases {
		if ph.Commit != nil {
			s.diags = append(s.diags, ph.Commit()...)
		}
	}
	for _, t := range s.terms {
		if t.term.Commit != nil {
			t.term.Commit()
		}
	}
}

// Diagnostics returns the per-site diagnostics that the per-trace phases
// returned when the surrogate was committed (see [TraceState]).
func (s *Surrogate) Diagnostics() []SiteDiagnostics { return s.diags }

// Signals returns, for each site whose term reported a learning signal,
// its address and the signal, [B x 1], in the order of the sites.
func (s *Surrogate) Signals() (addrs []string, signals []*ad.Tensor) {
	for _, t := range s.terms {
		if t.term.Signal != nil {
			addrs = append(addrs, t.addr)
			signals = append(signals, t.term.Signal)
		}
	}
	return addrs, signals
}

// BuildSurrogate runs obj once under env, with the estimators chosen by est
// (see [Estimators]), and returns its surrogate loss. env must have a tape
// and a random source. The run is the training run: sites whose estimator
// is not [Reparameterizing] are drawn without a pathwise gradient, and a
// [Drawer] estimator supplies its site's value.
//
// Errors (a failure in the objective, an estimator's error, a NaN or
// infinite cost, log-probability or term) name the site's address; ad
// shape panics in estimator code are returned as errors too. BuildSurrogate
// changes no estimator state: see [Surrogate.Commit].
func BuildSurrogate(obj vi.Objective, est Estimators, env ppl.Config) (sur *Surrogate, err error) {
	if obj == nil {
		return nil, errors.New("infer: nil objective")
	}
	if env.Tape == nil || env.Rand == nil {
		return nil, errors.New("infer: BuildSurrogate needs a tape and a random source in env")
	}
	if err := est.Validate(); err != nil {
		return nil, err
	}
	var current string
	defer func() {
		if r := recover(); r != nil {
			se, ok := r.(*ad.ShapeError)
			if !ok {
				panic(r)
			}
			sur, err = nil, fmt.Errorf("infer: site %q: %w", current, se)
		}
	}()
	rec := buildRecords.Get(env.Tape)
	rec.sel = selection{est: est, rng: env.Rand}
	rec.hs[0] = &rec.sel
	tr, err := obj.Run(env, rec.hs[:]...)
	rec.sel, rec.hs[0] = selection{}, nil
	if err != nil {
		return nil, fmt.Errorf("infer: %w", err)
	}
	graph := tr.Graph()
	shared, err := sharedSignal(obj, tr)
	if err != nil {
		return nil, err
	}
	sur = &rec.sur
	*sur = Surrogate{Trace: tr, terms: sur.terms[:0], diags: sur.diags[:0]}
	costs, total, err := checkedCosts(tr, sur, rec.costMap(), &current)
	if err != nil {
		return nil, err
	}
	sites, ests := rec.siteContexts(obj, est, env, tr, graph, shared, costs, &current)
	if sur.phases, err = beginTraces(sites, ests, obj, &current); err != nil {
		return nil, err
	}
	for i, sc := range sites {
		current = sc.Site.Addr
		term, err := ests[i].Surrogate(sc)
		if err != nil {
			return nil, fmt.Errorf("infer: site %q: %w", current, err)
		}
		if term.Loss != nil {
			if err := checkFinite(term.Loss); err != nil {
				return nil, fmt.Errorf("infer: site %q: estimator term %w", current, err)
			}
			total = addOrNil(total, ad.Sum(term.Loss))
		}
		sur.terms = append(sur.terms, siteTerm{addr: current, term: term})
	}
	if total == nil {
		total = env.Tape.Scalar(0)
	}
	sur.Loss = total
	return sur, nil
}

// buildRecord is the memory of one [BuildSurrogate] on a tape, reused
// once the tape is reset, as the run's trace is: the surrogate, the
// training run's handler, the costs by address, and the sites' contexts
// and re-runs.
type buildRecord struct {
	sur    Surrogate
	sel    selection
	hs     [1]ppl.Handler
	costs  map[string]*ad.Tensor
	ctxs   []*SiteContext
	reruns []*rerun
	sites  []*SiteContext
	ests   []Estimator
	reach  []string
}

var buildRecords = arena.NewKey[buildRecord]()

// costMap returns the record's empty map of costs by address.
func (r *buildRecord) costMap() map[string]*ad.Tensor {
	if r.costs == nil {
		r.costs = make(map[string]*ad.Tensor)
	}
	clear(r.costs)
	return r.costs
}

// checkedCosts checks that every log-probability and cost of tr is
// finite, and returns the scaled costs by address, in costs, and their
// sum, adding it to sur.Cost. current tracks the site being checked.
func checkedCosts(tr *trace.Trace, sur *Surrogate, costs map[string]*ad.Tensor, current *string) (map[string]*ad.Tensor, *ad.Tensor, error) {
	var total *ad.Tensor
	for _, s := range tr.Sites() {
		*current = s.Addr
		if s.Stochastic() && s.LogProb != nil {
			if err := checkFinite(s.LogProb); err != nil {
				return nil, nil, fmt.Errorf("infer: site %q: log-probability %w", s.Addr, err)
			}
		}
		if !s.IsCost() {
			continue
		}
		c := s.ScaledCost()
		if err := checkFinite(c); err != nil {
			return nil, nil, fmt.Errorf("infer: site %q: cost %w", s.Addr, err)
		}
		costs[s.Addr] = c
		sum := ad.Sum(c)
		sur.Cost += sum.Item()
		total = addOrNil(total, sum)
	}
	return costs, total, nil
}

// siteContexts returns the context of every stochastic site of tr, with
// its learning signal (the objective's shared one, or the costs it
// reaches), and the site's estimator. current tracks the site.
func (r *buildRecord) siteContexts(obj vi.Objective, est Estimators, env ppl.Config, tr *trace.Trace, graph *trace.Graph,
	shared *ad.Tensor, costs map[string]*ad.Tensor, current *string) ([]*SiteContext, []Estimator) {
	clear(r.sites)
	clear(r.ests)
	sites, ests := r.sites[:0], r.ests[:0]
	for _, s := range tr.Sites() {
		if !s.Stochastic() {
			continue
		}
		*current = s.Addr
		r.reach = graph.AppendCostsFrom(r.reach[:0], s.Addr)
		var signal *ad.Tensor
		if shared != nil {
			signal = ppl.Move(shared, nil, s.Plates)
		} else {
			signal = signalOf(s, r.reach, graph, costs)
		}
		k := len(sites)
		if k == len(r.ctxs) {
			rr := new(rerun)
			rr.fn = rr.run
			r.ctxs, r.reruns = append(r.ctxs, new(SiteContext)), append(r.reruns, rr)
		}
		rr := r.reruns[k]
		rr.obj, rr.env, rr.tr, rr.graph, rr.addr = obj, env, tr, graph, s.Addr
		sc := r.ctxs[k]
		*sc = SiteContext{
			Site:     s,
			Trace:    tr,
			Graph:    graph,
			Signal:   signal,
			TiedRows: shared != nil || tiesPlateRows(s, r.reach, graph),
			Rerun:    rr.fn,
			Rand:     env.Rand,
			Params:   env.Params,
		}
		sites = append(sites, sc)
		ests = append(ests, est.For(s.Addr, s.Dist))
	}
	r.sites, r.ests = sites, ests
	clear(r.reach)
	return sites, ests
}

// beginTraces runs the per-trace phase of the estimators ests of the sites
// once for each distinct phase, in the order of the phases' first sites,
// and hands each site its phase's shared state; obj is the objective,
// which a phase may run again. current tracks the site an ad shape panic
// is attributed to: a phase's first site.
func beginTraces(sites []*SiteContext, ests []Estimator, obj vi.Objective, current *string) ([]TraceState, error) {
	var phases []TracePhase
	var served map[TracePhase][]int
	for i, e := range ests {
		te, ok := e.(TraceEstimator)
		if !ok {
			continue
		}
		ph := te.TracePhase()
		if served == nil {
			served = map[TracePhase][]int{}
		}
		if _, seen := served[ph]; !seen {
			phases = append(phases, ph)
		}
		served[ph] = append(served[ph], i)
	}
	if len(phases) == 0 {
		return nil, nil
	}
	states := make([]TraceState, len(phases))
	for k, ph := range phases {
		idx := served[ph]
		first := sites[idx[0]]
		*current = first.Site.Addr
		tc := &TraceContext{Trace: first.Trace, Graph: first.Graph, Rand: first.Rand, Params: first.Params, Run: obj.Run}
		for _, i := range idx {
			tc.Sites = append(tc.Sites, sites[i])
		}
		st, err := ph.BeginTrace(tc)
		if err != nil {
			return nil, fmt.Errorf("infer: site %q: %w", first.Site.Addr, err)
		}
		for _, i := range idx {
			sites[i].Shared = st.Shared
		}
		states[k] = st
	}
	return states, nil
}

// VIMCOSignaler is an optional interface of a [vi.Objective] whose rows
// are tied together, so that the costs a site can reach in a row are not
// its score-function learning signal: vi.IWAE, whose K particles of a data
// point share one bound. [BuildSurrogate] then gives every site the
// objective's signal ([SiteContext].Signal), multiplied by the Scale of the
// cost site at vi.IWAEAddr when there is one; a site inside plates gets
// its particle's signal in each of its rows. vi.IWAE with K < 2 keeps the
// graph's signal, which is then the right one.
type VIMCOSignaler interface {
	VIMCOSignal(tr *trace.Trace) (*ad.Tensor, error)
}

// sharedSignal returns the objective's own learning signal for every site,
// or nil when the graph's Rao-Blackwellized signal is the one to use.
func sharedSignal(obj vi.Objective, tr *trace.Trace) (*ad.Tensor, error) {
	vs, ok := obj.(VIMCOSignaler)
	if !ok {
		return nil, nil
	}
	switch w := obj.(type) {
	case vi.IWAE:
		if w.K < 2 {
			return nil, nil
		}
	case *vi.IWAE:
		if w.K < 2 {
			return nil, nil
		}
	}
	sig, err := vs.VIMCOSignal(tr)
	if err != nil {
		return nil, fmt.Errorf("infer: the objective's learning signal: %w", err)
	}
	if err := checkFinite(sig); err != nil {
		return nil, fmt.Errorf("infer: the objective's learning signal %w", err)
	}
	if c := tr.Site(vi.IWAEAddr); c != nil && c.Scale != 1 {
		sig = ad.Scale(sig, c.Scale)
	}
	return ad.StopGradient(sig), nil
}

// signalOf returns the learning signal of the sample site s: the
// stop-gradient sum of the given costs, each moved to s's plate level
// (ppl.Move), so that the row of a member of a plate holds the costs of
// its own member and the costs outside the plate it reaches, and the row
// of a site outside a plate the sum over its particle's members.
func signalOf(s *ppl.Site, addrs []string, graph *trace.Graph, costs map[string]*ad.Tensor) *ad.Tensor {
	var sum *ad.Tensor
	for _, a := range addrs {
		c := costs[a]
		if c == nil {
			continue
		}
		c = ppl.Move(c, graph.Site(a).Plates, s.Plates)
		if sum == nil {
			sum = c
		} else {
			sum = ad.Add(sum, c)
		}
	}
	if sum == nil {
		return s.Value.Tape().Zeros(s.Value.Rows(), 1)
	}
	return ad.StopGradient(sum)
}

// tiesPlateRows reports whether the site s, inside plates, reaches a cost
// that is outside one of them: that cost's value in a member's row then
// depends on the other members' values, so a re-run that changes the site
// in every row at once does not give one row's downstream cost.
func tiesPlateRows(s *ppl.Site, addrs []string, graph *trace.Graph) bool {
	for _, a := range addrs {
		if graph.Site(a).Plates.Common(s.Plates) < len(s.Plates) {
			return true
		}
	}
	return false
}

// rerun is the Rerun function of the site at addr ([SiteContext].Rerun),
// fn, with its memory: it runs obj again on env's tape with the given
// handlers first, then a handler that gives every sample site of tr that
// is not addr or one of its descendants the value it had in tr (scored
// like a replayed value, or substituted again where tr's value was
// substituted) and every plate its subsample, and returns the sum of the
// scaled costs reachable from addr in the new run, moved to addr's plate
// level, with gradient paths.
type rerun struct {
	obj   vi.Objective
	env   ppl.Config
	tr    *trace.Trace
	graph *trace.Graph
	addr  string
	fn    func(...ppl.Handler) (*ad.Tensor, error)
	// The memory of a call: the sites left to draw anew and those kept,
	// the handlers, the costs.
	skip  map[string]bool
	keep  map[string]*ppl.Site
	hs    []ppl.Handler
	costs []string
}

// Handle gives a sample site that the re-run keeps the value it had in the
// trace.
func (r *rerun) Handle(s *ppl.Site, next func(*ppl.Site)) {
	if old, ok := r.keep[s.Addr]; ok && s.Kind == ppl.KindSample && s.Value == nil {
		s.Value = old.Value
		if old.Substituted {
			s.Substituted = true
		} else {
			s.Replayed = true
		}
	}
	next(s)
}

func (r *rerun) run(handlers ...ppl.Handler) (*ad.Tensor, error) {
	obj, env, tr, addr := r.obj, r.env, r.tr, r.addr
	if r.keep == nil {
		r.keep, r.skip = make(map[string]*ppl.Site), make(map[string]bool)
	}
	r.skip[addr] = true
	r.costs = r.graph.AppendDescendants(r.costs[:0], addr)
	for _, d := range r.costs {
		r.skip[d] = true
	}
	for _, s := range tr.Sites() {
		if s.Stochastic() && !r.skip[s.Addr] {
			r.keep[s.Addr] = s
		}
	}
	clear(r.skip)
	hs := append(append(r.hs[:0], handlers...), r, trace.ReplayPlates(tr))
	r.hs = hs
	tr2, err := obj.Run(env, hs...)
	clear(r.hs)
	clear(r.keep)
	if err != nil {
		return nil, fmt.Errorf("infer: rerun for site %q: %w", addr, err)
	}
	plates := tr.Site(addr).Plates
	var sum *ad.Tensor
	r.costs = tr2.Graph().AppendCostsFrom(r.costs[:0], addr)
	for _, c := range r.costs {
		cs := tr2.Site(c)
		cost := ppl.Move(cs.ScaledCost(), cs.Plates, plates)
		if sum == nil {
			sum = cost
		} else {
			sum = ad.Add(sum, cost)
		}
	}
	clear(r.costs)
	if sum == nil {
		sum = env.Tape.Zeros(tr.Site(addr).Value.Rows(), 1)
	}
	return sum, nil
}

// checkFinite returns an error locating the first NaN or infinite element
// of t, or nil.
func checkFinite(t *ad.Tensor) error {
	cols := t.Cols()
	for i, v := range t.Data() {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return fmt.Errorf("is %v at row %d, column %d", v, i/cols, i%cols)
		}
	}
	return nil
}
