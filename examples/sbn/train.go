package main

import (
	"context"
	"fmt"
	"io"
	"time"

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
	RunID     string  `json:"run_id"`
	Model     string  `json:"model"`
	Estimator string  `json:"estimator"`
	Batch     int     `json:"batch"`
	LR        float64 `json:"lr"`
	Seed      uint64  `json:"seed"`
	Workers   int     `json:"workers"`
	// CriticWarmup is -critic-warmup.
	CriticWarmup int `json:"critic_warmup,omitempty"`
	// Seconds is the training time of the steps taken so far.
	Seconds float64 `json:"seconds"`
	// AvgSum and AvgWeight make the bias-corrected running mean of the
	// training ELBO (decay 0.99): AvgSum / AvgWeight.
	AvgSum    float64 `json:"avg_sum"`
	AvgWeight float64 `json:"avg_weight"`
}

// metaSection is the checkpoint section this command adds to the SVI's.
const metaSection = "sbn.meta"

// session is a model, its data and its training loop.
type session struct {
	meta meta
	data *mnist.Data
	net  *sbn
	svi  *infer.SVI
	// x is the current minibatch, which the objective reads by closure.
	x *mat.Dense
	// critics are the estimator's critics when -critics is given, and
	// criticsLoaded says they were read from its file.
	critics       *q.Set
	criticsLoaded bool
	// chunks makes the objective of each chunk of the batch once: x keeps
	// its memory, so they read every step's images.
	chunks exrun.Chunks
	// batches draws the images of each step.
	batches mnist.Minibatches
}

// newSession builds the model and training loop that o describes, from the
// checkpoint o.resume when given (whose configuration then wins over flags
// not given on the command line, and must agree with those given).
func newSession(o options, data *mnist.Data) (*session, error) {
	m := meta{Model: o.model, Estimator: o.estimator, Batch: o.batch, LR: o.lr, Seed: o.seed, Workers: o.workers, CriticWarmup: o.criticWarmup}
	m.RunID = exrun.RunID(m) // the code version and a digest of the settings
	var sections map[string][]byte
	if o.resume != "" {
		var saved meta
		var err error
		if sections, err = exrun.ReadCheckpoint(o.resume, metaSection, &saved); err != nil {
			return nil, err
		}
		if o.mode == "train" {
			for _, c := range []struct {
				flag      string
				got, want any
			}{
				{"model", o.model, saved.Model}, {"estimator", o.estimator, saved.Estimator},
				{"batch", o.batch, saved.Batch}, {"lr", o.lr, saved.LR}, {"seed", o.seed, saved.Seed},
				{"workers", o.workers, saved.Workers}, {"critic-warmup", o.criticWarmup, saved.CriticWarmup},
			} {
				if o.set[c.flag] && c.got != c.want {
					return nil, fmt.Errorf("resume %s: -%s %v differs from the checkpoint's %v", o.resume, c.flag, c.got, c.want)
				}
			}
			m = saved
		} else {
			m.Model, m.Batch, m.Seed, m.Workers = saved.Model, saved.Batch, saved.Seed, saved.Workers
			m.RunID, m.Seconds = saved.RunID, saved.Seconds
			if !o.set["estimator"] {
				m.Estimator = saved.Estimator
			}
		}
	}
	a, err := findArch(m.Model)
	if err != nil {
		return nil, err
	}
	if m.Batch < 1 || m.Workers < 1 || m.Workers > m.Batch {
		return nil, fmt.Errorf("need 1 <= -workers <= -batch, got workers %d, batch %d", m.Workers, m.Batch)
	}
	s := &session{meta: m, data: data, net: newSBN(a, data.Train), x: mat.NewDense(m.Batch, mnist.Pixels, nil)}
	spec, err := findEstimator(firstName(m.Estimator))
	if err != nil {
		return nil, err
	}
	s.net.criticInputs = spec.critics && o.criticImage
	est, err := spec.make(s.net, o)
	if err != nil {
		return nil, fmt.Errorf("estimator %s: %w", spec.name, err)
	}
	if o.critics != "" && o.mode == "train" {
		if s.critics, err = criticsOf(est); err != nil {
			return nil, err
		}
		if s.criticsLoaded, err = exrun.LoadCritics(o.critics, s.critics, o.reinit); err != nil {
			return nil, err
		}
	}
	s.chunks.Make = func(from, to int) vi.Objective {
		return s.net.trainELBO(s.x.Slice(from, to, 0, mnist.Pixels).(*mat.Dense), samplesOf(est))
	}
	s.svi = &infer.SVI{
		Chunk:      s.chunks.Objective,
		Estimators: infer.Estimators{Default: est},
		Optimizer:  nn.NewAdam(m.LR),
		Params:     nn.NewStore(),
		Particles:  m.Batch,
		Chunks:     m.Workers,
		Workers:    m.Workers,
		Seed:       m.Seed,
		Warmup:     int64(m.CriticWarmup),
	}
	if sections != nil && o.mode == "train" {
		if err := s.svi.Restore(sections, infer.LoadOptions{}); err != nil {
			return nil, fmt.Errorf("resume %s: %w", o.resume, err)
		}
	}
	if sections != nil && o.mode != "train" {
		// Evaluation reads the parameters alone, whatever the estimator.
		if err := s.svi.Restore(sections, infer.LoadOptions{WarmStart: true}); err != nil {
			return nil, fmt.Errorf("load %s: %w", o.resume, err)
		}
	}
	return s, nil
}

// firstName returns the first name of a comma-separated list.
func firstName(list string) string {
	for i, c := range list {
		if c == ',' {
			return list[:i]
		}
	}
	return list
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

// record is one line of a metrics file.
type record struct {
	RunID     string   `json:"run_id"`
	Model     string   `json:"model"`
	Estimator string   `json:"estimator"`
	Step      int64    `json:"step"`
	Seconds   float64  `json:"seconds"`
	ELBO      float64  `json:"elbo"`
	ELBOAvg   float64  `json:"elbo_avg"`
	GradNorm  float64  `json:"grad_norm"`
	ValidELBO *float64 `json:"valid_elbo,omitempty"`
	TestELBO  *float64 `json:"test_elbo,omitempty"`
	TestIWAE  *float64 `json:"test_iwae,omitempty"`
	IWAEK     int      `json:"iwae_k,omitempty"`
}

// result is what a training run ends with.
type result struct {
	steps             int64
	seconds           float64
	trainAvg          float64
	valid, test, iwae float64
}

// train runs the training loop o describes and reports to out.
func train(ctx context.Context, o options, out io.Writer) (*result, error) {
	data, err := mnist.Load()
	if err != nil {
		return nil, err
	}
	return trainOn(ctx, o, data, out)
}

func trainOn(ctx context.Context, o options, data *mnist.Data, out io.Writer) (*result, error) {
	s, err := newSession(o, data)
	if err != nil {
		return nil, err
	}
	mw, err := exrun.OpenMetrics(o.metrics)
	if err != nil {
		return nil, err
	}
	defer mw.Close()
	m := &s.meta
	if !o.quiet {
		fmt.Fprintf(out, "SBN %s on MNIST (train %d, valid %d, test %d), estimator %s, batch %d, Adam lr %g, seed %d, run %s\n",
			m.Model, data.Train.Len(), data.Valid.Len(), data.Test.Len(), m.Estimator, m.Batch, m.LR, m.Seed, m.RunID)
		if s.svi.StepCount() > 0 {
			fmt.Fprintf(out, "resumed from %s at step %d\n", o.resume, s.svi.StepCount())
		}
	}
	startStep := s.svi.StepCount()
	if s.criticsLoaded {
		fmt.Fprintf(out, "loaded critics %s\n", o.critics)
	}
	prog := exrun.NewProgress(exrun.ProgressOptions{Total: int64(o.steps), Start: startStep, Duration: o.duration,
		Objective: "train ELBO (avg)", Quiet: o.quiet, Out: out})
	budget := exrun.Budget{Steps: int64(o.steps), Duration: o.duration}
	start := time.Now()
	base := m.Seconds
	// Training time leaves out the evaluations and checkpoints made
	// along the way, so that runs compare by the time their steps took.
	var paused time.Duration
	seconds := func() float64 { return base + (time.Since(start) - paused).Seconds() }
	evalRecord := func(step int64, rec record) error {
		evalStart := time.Now()
		defer func() { paused += time.Since(evalStart) }()
		v := s.evaluate(data.Valid, o.evalLimit, s.meta.Seed)
		rec.ValidELBO = &v
		prog.Printf("step %d  %.1fs  valid ELBO %.2f", step, rec.Seconds, v)
		if err := mw.Write(rec); err != nil {
			return err
		}
		if o.save != "" {
			m.Seconds = rec.Seconds
			return s.save(o.save)
		}
		return nil
	}
	var last record
	// The critics' fit is averaged over the last 100 steps.
	var fit criticFit
	_, learnsCritics := s.svi.Estimators.Default.(infer.CriticHolder)
	s.svi.ReturnVariance = learnsCritics
	interrupted := false
	// One Metrics for every step: its memory is reused.
	var sm infer.Metrics
	for !budget.Done(s.svi.StepCount(), time.Since(start)-paused) {
		if ctx.Err() != nil {
			interrupted = true
			break
		}
		t := s.svi.StepCount()
		s.fillBatch(t)
		if err := s.svi.StepInto(&sm); err != nil {
			prog.Finish()
			return nil, err
		}
		if learnsCritics && o.steps > 0 && t >= int64(o.steps)-100 {
			fit.add(sm)
		}
		elbo := sm.ELBO / float64(m.Batch)
		m.AvgSum = 0.99*m.AvgSum + 0.01*elbo
		m.AvgWeight = 0.99*m.AvgWeight + 0.01
		step := t + 1
		last = record{RunID: m.RunID, Model: m.Model, Estimator: m.Estimator, Step: step, Seconds: seconds(),
			ELBO: elbo, ELBOAvg: m.AvgSum / m.AvgWeight, GradNorm: sm.GradNorm}
		logLine := o.logEvery > 0 && step%int64(o.logEvery) == 0
		prog.Update(step, last.Seconds-base, last.ELBOAvg, logLine)
		if o.evalEvery > 0 && step%int64(o.evalEvery) == 0 {
			if err := evalRecord(step, last); err != nil {
				return nil, err
			}
		} else if logLine {
			if err := mw.Write(last); err != nil {
				return nil, err
			}
		}
	}
	prog.Finish()
	m.Seconds = seconds()
	steps := s.svi.StepCount()
	res := &result{steps: steps, seconds: m.Seconds, trainAvg: last.ELBOAvg}
	if o.save != "" {
		if err := s.save(o.save); err != nil {
			return nil, err
		}
		fmt.Fprintf(out, "saved %s at step %d\n", o.save, steps)
	}
	if s.critics != nil {
		if err := exrun.SaveCritics(o.critics, s.critics); err != nil {
			return nil, err
		}
		fmt.Fprintf(out, "saved critics %s\n", o.critics)
	}
	if interrupted {
		fmt.Fprintf(out, "interrupted after step %d\n", steps)
		return res, nil
	}
	session := m.Seconds - base
	fmt.Fprintf(out, "trained to step %d in %.1fs this session (%.1f steps/s)\n", steps, session, float64(steps-startStep)/max(session, 1e-9))
	res.valid = s.evaluate(data.Valid, o.evalLimit, m.Seed)
	res.test = s.evaluate(data.Test, o.evalLimit, m.Seed)
	final := last
	final.Step, final.Seconds = steps, m.Seconds
	final.ValidELBO, final.TestELBO = &res.valid, &res.test
	fmt.Fprintf(out, "train ELBO (avg of recent steps) %.2f  valid ELBO %.2f  test ELBO %.2f\n", res.trainAvg, res.valid, res.test)
	fit.print(out)
	if o.iwae > 0 {
		res.iwae = s.logLikelihood(data.Test, o.evalLimit, o.iwae, m.Seed)
		final.TestIWAE, final.IWAEK = &res.iwae, o.iwae
		fmt.Fprintf(out, "test log-likelihood (IWAE, K=%d) %.2f\n", o.iwae, res.iwae)
	}
	if err := mw.Write(final); err != nil {
		return nil, err
	}
	if o.plot != "" && o.metrics != "" {
		if err := plotFiles(o.plot, []string{o.metrics}); err != nil {
			return nil, err
		}
		fmt.Fprintf(out, "plot %s\n", o.plot)
	}
	return res, nil
}
