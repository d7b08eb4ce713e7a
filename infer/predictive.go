package infer

import (
	"errors"
	"fmt"
	"math/rand/v2"

	"github.com/backpropq/backpropq/ad"
	"github.com/backpropq/backpropq/nn"
	"github.com/backpropq/backpropq/ppl"
	"github.com/backpropq/backpropq/trace"
)

// Predictive draws samples of a model's sites: from the prior (no Guide and
// no Traces), from the posterior a trained guide approximates (Guide), or
// from recorded posterior samples (Traces). The model's latents take the
// guide's or the traces' values by address (a latent they lack, such as
// the local latent of a new data point, is drawn from the model), and its
// observations are drawn afresh from their distributions rather than
// scored, so an observe site yields predicted data: the posterior
// predictive distribution.
//
// To predict at new inputs, give Predictive the model closed over the new
// inputs; its plates may have other sizes than in training as long as the
// guide's latents keep theirs.
type Predictive struct {
	// Model is the model whose sites are sampled.
	Model ppl.Model
	// Guide, when not nil, supplies the latents: it runs first on each
	// batch and the model replays its values.
	Guide ppl.Model
	// Traces supply the latents instead of a Guide: each is
	// replayed into one run of the model, its rows being draws (a trace
	// of the guide, say). Their tapes must not have been reset.
	Traces []*trace.Trace
	// Params holds the parameters of the model and the guide, trained. A
	// parameter that a run would have to create is an error, since it
	// would be a fresh initial value rather than a trained one.
	Params *nn.Store
	// Sites are the addresses to return; empty means every sample, observe
	// and deterministic site of the model.
	Sites []string
	// Samples is the number of draws with a Guide or from the prior.
	Samples int
	// Batch is the number of draws per run (0: all Samples in one run).
	Batch int
	// Seed determines every random number drawn.
	Seed uint64
}

// Samples are the draws of Predictive.Run: for each address, the values of
// Draws draws stacked along dimension 0, draw-major. A site inside plates
// has the rows of its plates per draw (see ppl.Stack), so draw d of a site
// with n rows per draw is rows [d*n, (d+1)*n).
type Samples struct {
	Draws int
	Sites map[string]*ad.Tensor
}

// Run draws the samples. It returns an error naming the address when a
// requested site never appears in the model's run, when a site's shape
// changes between runs, and when a run would create a parameter (an
// untrained guide, a store that is not the training one); and the errors of
// the runs themselves, naming their sites.
func (p Predictive) Run() (Samples, error) {
	if p.Model == nil {
		return Samples{}, errors.New("infer: Predictive: nil Model")
	}
	rng := rand.New(rand.NewPCG(p.Seed, 0x9e3779b97f4a7c15))
	store := p.Params
	if store == nil {
		store = nn.NewStore()
	}
	acc := &collector{sites: p.Sites}
	runOne := func(latents *trace.Trace, batch int) error {
		tr, err := p.runModel(store, rng, latents, batch)
		if err != nil {
			return err
		}
		return acc.add(tr, batch)
	}
	if p.Guide != nil && len(p.Traces) > 0 {
		return Samples{}, errors.New("infer: Predictive: both Guide and Traces are set; give one source of latents")
	}
	if len(p.Traces) > 0 {
		for _, lat := range p.Traces {
			if err := runOne(lat, lat.Batch()); err != nil {
				return Samples{}, err
			}
		}
		return acc.result()
	}
	if p.Samples <= 0 {
		return Samples{}, fmt.Errorf("infer: Predictive: Samples must be positive, got %d", p.Samples)
	}
	batch := p.Batch
	if batch <= 0 || batch > p.Samples {
		batch = p.Samples
	}
	for done := 0; done < p.Samples; done += batch {
		b := min(batch, p.Samples-done)
		var lat *trace.Trace
		if p.Guide != nil {
			var err error
			lat, err = runChecked(store, p.Guide, ppl.Config{Tape: ad.NewTape(), Rand: rng, Params: store, Batch: b})
			if err != nil {
				return Samples{}, fmt.Errorf("infer: Predictive: guide: %w", err)
			}
		}
		if err := runOne(lat, b); err != nil {
			return Samples{}, err
		}
	}
	return acc.result()
}

// runModel runs the model once with batch draws, replaying latents when
// not nil, with every observation drawn.
func (p Predictive) runModel(store *nn.Store, rng *rand.Rand, latents *trace.Trace, batch int) (*trace.Trace, error) {
	env := ppl.Config{Tape: ad.NewTape(), Rand: rng, Params: store, Batch: batch}
	handlers := []ppl.Handler{ppl.HandlerFunc(unobserve)}
	if latents != nil {
		env.FirstID = latents.NextID()
		handlers = append(handlers, trace.Replay(latents))
	}
	tr, err := runChecked(store, p.Model, append(handlers, env)...)
	if err != nil {
		return nil, fmt.Errorf("infer: Predictive: model: %w", err)
	}
	return tr, nil
}

// runChecked runs model and fails, removing them again, if it created
// parameters in store.
func runChecked(store *nn.Store, model ppl.Model, handlers ...ppl.Handler) (*trace.Trace, error) {
	mark := store.Mark()
	tr, err := trace.Run(model, handlers...)
	if created := store.Since(mark); len(created) > 0 {
		store.Rollback(mark)
		if err == nil {
			err = fmt.Errorf("parameter %q is not in the store: train first, and pass the training store as Params", created[0])
		}
		return nil, err
	}
	store.Commit()
	return tr, err
}

// unobserve turns an observation into a draw from its distribution.
func unobserve(s *ppl.Site, next func(*ppl.Site)) {
	if s.Kind == ppl.KindObserve {
		s.Kind = ppl.KindSample
		s.Value = nil
	}
	next(s)
}

// collector gathers the values of sites over runs.
type collector struct {
	sites []string // requested; nil means all
	draws int
	cols  map[string]int
	rows  map[string]int // per draw
	data  map[string][]float64
	order []string
}

// add appends the values of tr's sites, batch draws.
func (c *collector) add(tr *trace.Trace, batch int) error {
	if c.data == nil {
		if err := c.init(tr); err != nil {
			return err
		}
	}
	for _, addr := range c.order {
		s := tr.Site(addr)
		if s == nil || s.Value == nil {
			return fmt.Errorf("infer: Predictive: site %q of the first run is missing from a later run", addr)
		}
		r, k := s.Value.Dims()
		if k != c.cols[addr] || r != batch*c.rows[addr] {
			return fmt.Errorf("infer: Predictive: site %q changed shape between runs: %d x %d, want %d x %d", addr, r, k, batch*c.rows[addr], c.cols[addr])
		}
		c.data[addr] = append(c.data[addr], s.Value.Data()...)
	}
	c.draws += batch
	return nil
}

// init chooses the sites from the first run.
func (c *collector) init(tr *trace.Trace) error {
	c.cols, c.rows, c.data = map[string]int{}, map[string]int{}, map[string][]float64{}
	c.order = c.sites
	if len(c.order) == 0 {
		for _, s := range tr.Sites() {
			switch s.Kind {
			case ppl.KindSample, ppl.KindObserve, ppl.KindDeterministic:
				c.order = append(c.order, s.Addr)
			}
		}
	}
	for _, addr := range c.order {
		s := tr.Site(addr)
		if s == nil || s.Value == nil {
			return fmt.Errorf("infer: Predictive: site %q never appears in the model's run", addr)
		}
		c.cols[addr] = s.Value.Cols()
		c.rows[addr] = s.Plates.Rows()
	}
	return nil
}

// result returns what was collected as tensors of a new tape.
func (c *collector) result() (Samples, error) {
	if c.data == nil {
		return Samples{}, errors.New("infer: Predictive: no runs (no Samples and no Traces)")
	}
	tp := ad.NewTape()
	out := Samples{Draws: c.draws, Sites: make(map[string]*ad.Tensor, len(c.order))}
	for _, addr := range c.order {
		out.Sites[addr] = tp.FromData(c.draws*c.rows[addr], c.cols[addr], c.data[addr])
	}
	return out, nil
}
