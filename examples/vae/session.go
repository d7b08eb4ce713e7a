package main

import (
	"errors"
	"fmt"
	"io/fs"

	"gonum.org/v1/gonum/mat"

	"github.com/backpropq/backpropq/examples/internal/exrun"
	"github.com/backpropq/backpropq/examples/internal/mnist"
	"github.com/backpropq/backpropq/infer"
	"github.com/backpropq/backpropq/nn"
	"github.com/backpropq/backpropq/q"
	"github.com/backpropq/backpropq/vi"
)

// meta is what a checkpoint holds beyond the SVI's state: the run's
// configuration and the bookkeeping of its metrics.
type meta struct {
	RunID      string  `json:"run_id"`
	Model      string  `json:"model"`
	Estimator  string  `json:"estimator"`
	Batch      int     `json:"batch"`
	LR         float64 `json:"lr"`
	Seed       uint64  `json:"seed"`
	Workers    int     `json:"workers"`
	AnalyticKL bool    `json:"analytic_kl"`
	IWAETrain  int     `json:"iwae_train"`
	// Seconds is the training time of the steps taken so far.
	Seconds float64 `json:"seconds"`
	// AvgSum and AvgWeight make the bias-corrected running mean of the
	// training bound (decay 0.99): AvgSum / AvgWeight.
	AvgSum    float64 `json:"avg_sum"`
	AvgWeight float64 `json:"avg_weight"`
}

// metaSection is the checkpoint section this command adds to the SVI's.
const metaSection = "vae.meta"

// session is a model, its data and its training loop.
type session struct {
	meta meta
	data *mnist.Data
	net  *vae
	svi  *infer.SVI
	// bpq holds the critics of the run's Backprop-Q estimator, nil for
	// the others.
	bpq *infer.Critics
	// x is the current minibatch, which the objective reads by closure.
	x *mat.Dense
	// chunks makes the objective of each chunk of the batch once: x keeps
	// its memory, so they read every step's images.
	chunks exrun.Chunks
	// batches draws the images of each step.
	batches mnist.Minibatches
}

// newSession builds the model and training loop that o describes, from the
// checkpoint o.resume when given (whose configuration then wins over flags
// not given on the command line, and must agree with those given), and
// loads the critics of o.critics when that file exists.
func newSession(o options, data *mnist.Data) (*session, error) {
	m := meta{Model: o.model, Estimator: o.estimator, Batch: o.batch, LR: o.lr,
		Seed: o.seed, Workers: o.workers, AnalyticKL: o.analyticKL, IWAETrain: o.iwaeTrain}
	m.RunID = exrun.RunID(m) // the code version and a digest of the settings
	var sections map[string][]byte
	if o.resume != "" {
		var saved meta
		var err error
		if sections, err = exrun.ReadCheckpoint(o.resume, metaSection, &saved); err != nil {
			return nil, err
		}
		for _, c := range []struct {
			flag      string
			got, want any
		}{
			{"model", o.model, saved.Model}, {"estimator", o.estimator, saved.Estimator},
			{"batch", o.batch, saved.Batch}, {"lr", o.lr, saved.LR}, {"seed", o.seed, saved.Seed},
			{"workers", o.workers, saved.Workers}, {"analytic-kl", o.analyticKL, saved.AnalyticKL},
			{"iwae-train", o.iwaeTrain, saved.IWAETrain},
		} {
			if o.set[c.flag] && c.got != c.want {
				return nil, fmt.Errorf("resume %s: -%s %v differs from the checkpoint's %v", o.resume, c.flag, c.got, c.want)
			}
		}
		m = saved
	}
	if m.Batch < 1 || m.Workers < 1 || m.Workers > m.Batch {
		return nil, fmt.Errorf("need 1 <= -workers <= -batch, got workers %d, batch %d", m.Workers, m.Batch)
	}
	if m.IWAETrain < 0 {
		return nil, fmt.Errorf("-iwae-train must be >= 0, got %d", m.IWAETrain)
	}
	if m.LR <= 0 {
		return nil, fmt.Errorf("-lr must be > 0, got %g", m.LR)
	}
	net, err := newVAE(m.Model, data.Train)
	if err != nil {
		return nil, err
	}
	spec, err := findEstimator(m.Estimator)
	if err != nil {
		return nil, err
	}
	if o.critics != "" && (m.Model == "gauss" || !spec.critics) {
		return nil, fmt.Errorf("-critics %s: model %s with estimator %s learns no critics (the bpq estimators on discrete or mixed do)", o.critics, m.Model, spec.name)
	}
	if m.IWAETrain > 0 && m.Model != "gauss" {
		return nil, fmt.Errorf("-iwae-train: only for -model gauss")
	}
	s := &session{meta: m, data: data, net: net, x: mat.NewDense(m.Batch, mnist.Pixels, nil)}
	s.chunks.Make = func(from, to int) vi.Objective {
		// With -iwae-train the IWAE objective runs K particles per
		// image of the chunk.
		x := s.x.Slice(from, to, 0, mnist.Pixels).(*mat.Dense)
		if m.IWAETrain > 0 {
			return net.iwae(x, m.IWAETrain)
		}
		return net.elbo(x, m.AnalyticKL)
	}
	net.criticInputs = spec.critics && o.criticImage
	est := spec.make(net, o)
	if h, ok := est.(infer.CriticHolder); ok && m.Model != "gauss" {
		s.bpq = h.QCritics()
	}
	s.svi = &infer.SVI{
		Chunk:      s.chunks.Objective,
		Estimators: siteEstimators(m.Model, est),
		Optimizer:  nn.NewAdam(m.LR),
		Params:     nn.NewStore(),
		Particles:  m.Batch,
		Chunks:     m.Workers,
		Workers:    m.Workers,
		Seed:       m.Seed,
	}
	if s.bpq != nil && o.critics != "" {
		err := q.Load(o.critics, s.bpq.Set, q.LoadOptions{Reinit: true})
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("critics %s: %w", o.critics, err)
		}
	}
	if sections != nil {
		if err := s.svi.Restore(sections, infer.LoadOptions{}); err != nil {
			return nil, fmt.Errorf("resume %s: %w", o.resume, err)
		}
	}
	return s, nil
}

// save writes the SVI's checkpoint with this command's section added.
func (s *session) save(path string) error {
	return exrun.SaveCheckpoint(path, s.svi, metaSection, s.meta)
}

// fillBatch draws the images of step t, from a source that depends only on
// the seed and t so that a resumed run sees the same images.
func (s *session) fillBatch(t int64) {
	s.batches.Split, s.batches.Seed, s.batches.Batch = s.data.Train, s.meta.Seed, s.meta.Batch
	s.batches.Fill(s.x.RawMatrix().Data, t)
}
