package main

import (
	"context"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"strings"
	"time"

	"gonum.org/v1/gonum/mat"

	"github.com/backpropq/backpropq/ad"
	"github.com/backpropq/backpropq/examples/internal/exrun"
	"github.com/backpropq/backpropq/examples/internal/mnist"
	"github.com/backpropq/backpropq/infer"
	"github.com/backpropq/backpropq/ppl"
	"github.com/backpropq/backpropq/q"
	"github.com/backpropq/backpropq/vi"
)

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
	LogVar    *float64 `json:"grad_log_var,omitempty"`
}

// result is what a training run ends with.
type result struct {
	steps             int64
	seconds           float64
	trainAvg          float64
	valid, test, iwae float64
	logVar            float64
	// elbos are the training bounds (per image) of this session's steps.
	elbos []float64
	s     *session
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
	bound := "ELBO"
	if m.IWAETrain > 0 {
		bound = fmt.Sprintf("IWAE K=%d bound", m.IWAETrain)
	}
	est := m.Estimator
	if m.Model == "gauss" {
		est = "pathwise"
	}
	prog := exrun.NewProgress(exrun.ProgressOptions{Total: int64(o.steps), Start: s.svi.StepCount(), Duration: o.duration,
		Objective: bound, Quiet: o.quiet, Out: out})
	logf := prog.Printf
	logf("VAE %s on MNIST (train %d, valid %d, test %d), estimator %s, batch %d, Adam lr %g, seed %d, training the %s, run %s",
		m.Model, data.Train.Len(), data.Valid.Len(), data.Test.Len(), est, m.Batch, m.LR, m.Seed, bound, m.RunID)
	startStep := s.svi.StepCount()
	if startStep > 0 {
		logf("resumed from %s at step %d", o.resume, startStep)
	}
	start := time.Now()
	base := m.Seconds
	var paused time.Duration
	seconds := func() float64 { return base + (time.Since(start) - paused).Seconds() }
	res := &result{s: s}
	var last record
	interrupted := false
	budget := exrun.Budget{Steps: int64(o.steps), Duration: o.duration}
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
		elbo := sm.ELBO / float64(m.Batch)
		res.elbos = append(res.elbos, elbo)
		m.AvgSum = 0.99*m.AvgSum + 0.01*elbo
		m.AvgWeight = 0.99*m.AvgWeight + 0.01
		step := t + 1
		last = record{RunID: m.RunID, Model: m.Model, Estimator: m.Estimator, Step: step, Seconds: seconds(),
			ELBO: elbo, ELBOAvg: m.AvgSum / m.AvgWeight, GradNorm: sm.GradNorm}
		logLine := o.logEvery > 0 && step%int64(o.logEvery) == 0
		prog.Update(step, last.Seconds-base, last.ELBOAvg, logLine)
		if o.evalEvery > 0 && step%int64(o.evalEvery) == 0 {
			evalStart := time.Now()
			v := s.evaluate(data.Valid, o.evalLimit, m.Seed)
			last.ValidELBO = &v
			logf("step %d  valid ELBO %.2f", step, v)
			if o.save != "" {
				m.Seconds = last.Seconds
				if err := s.save(o.save); err != nil {
					return nil, err
				}
			}
			paused += time.Since(evalStart)
		}
		if logLine || last.ValidELBO != nil {
			if err := mw.Write(last); err != nil {
				return nil, err
			}
		}
	}
	prog.Finish()
	m.Seconds = seconds()
	res.steps, res.seconds, res.trainAvg = s.svi.StepCount(), m.Seconds, last.ELBOAvg
	if o.save != "" {
		if err := s.save(o.save); err != nil {
			return nil, err
		}
		logf("saved %s at step %d", o.save, res.steps)
	}
	if s.bpq != nil && o.critics != "" {
		if err := q.Save(o.critics, s.bpq.Set); err != nil {
			return nil, fmt.Errorf("critics %s: %w", o.critics, err)
		}
		logf("saved critics %s (%d)", o.critics, len(s.bpq.Set.Keys()))
	}
	if interrupted {
		fmt.Fprintf(out, "interrupted after step %d\n", res.steps)
		return res, nil
	}
	session := m.Seconds - base
	fmt.Fprintf(out, "trained to step %d in %.1fs this session (%.1f steps/s)\n", res.steps, session, float64(res.steps-startStep)/max(session, 1e-9))
	if len(res.elbos) > 0 {
		fmt.Fprintf(out, "mean training %s over this session's %d steps %.2f\n", bound, len(res.elbos), mean(res.elbos))
	}
	res.valid = s.evaluate(data.Valid, o.evalLimit, m.Seed)
	res.test = s.evaluate(data.Test, o.evalLimit, m.Seed)
	final := last
	final.Step, final.Seconds = res.steps, m.Seconds
	final.ValidELBO, final.TestELBO = &res.valid, &res.test
	fmt.Fprintf(out, "train %s (avg of recent steps) %.2f  valid ELBO %.2f  test ELBO %.2f\n", bound, res.trainAvg, res.valid, res.test)
	if o.iwae > 0 {
		n := o.iwaeLimit
		if n <= 0 || (o.evalLimit > 0 && o.evalLimit < n) {
			n = o.evalLimit
		}
		res.iwae = s.logLikelihood(data.Test, n, o.iwae, m.Seed)
		final.TestIWAE, final.IWAEK = &res.iwae, o.iwae
		images := n
		if n <= 0 || n > data.Test.Len() {
			images = data.Test.Len()
		}
		fmt.Fprintf(out, "test log-likelihood (IWAE, K=%d, first %d test images) %.2f\n", o.iwae, images, res.iwae)
	}
	if o.varDraws > 0 {
		lv, err := s.gradLogVar(data.Test, o.varDraws)
		if err != nil {
			return nil, err
		}
		res.logVar = lv
		final.LogVar = &lv
		fmt.Fprintf(out, "inference network gradient: log mean variance %.3f over %d draws on one test batch of %d\n", lv, o.varDraws, m.Batch)
	}
	if err := mw.Write(final); err != nil {
		return nil, err
	}
	if o.grid != "" {
		recon, samples, err := s.writeGrids(o.grid, data.Test)
		if err != nil {
			return nil, err
		}
		fmt.Fprintf(out, "grids %s %s\n", recon, samples)
	}
	if o.plot != "" {
		if err := plotFiles(o.plot, []string{o.metrics}); err != nil {
			return nil, err
		}
		fmt.Fprintf(out, "plot %s\n", o.plot)
	}
	return res, nil
}

// evalRows bounds the rows of one evaluation run (images times particles).
const evalRows = 2000

// bounds returns the mean over the first n images of split (all when n is
// 0) of the bound obj gives each, where obj(x) is the objective of the
// images x and perImage the rows a run has per image. Every evaluation
// with one seed sees the same binarization and the same latent draws.
func (s *session) bounds(split *mnist.Split, n int, seed uint64, perImage int, obj func(x *mat.Dense) vi.Bounded) float64 {
	if n <= 0 || n > split.Len() {
		n = split.Len()
	}
	chunk := max(1, evalRows/perImage)
	rng := rand.New(rand.NewPCG(seed, 0x6576616c))
	tp := ad.NewTape()
	defer s.net.data.Delete(tp)
	buf := make([]float64, chunk*mnist.Pixels)
	idx := make([]int, 0, chunk)
	total := 0.0
	for from := 0; from < n; from += chunk {
		idx = idx[:0]
		for i := from; i < min(from+chunk, n); i++ {
			idx = append(idx, i)
		}
		b := buf[:len(idx)*mnist.Pixels]
		split.Batch(b, idx, mnist.Dynamic, rng)
		tp.Reset()
		o := obj(mat.NewDense(len(idx), mnist.Pixels, b))
		tr, err := o.Run(ppl.Config{Tape: tp, Rand: rng, Params: s.svi.Params, Batch: len(idx)})
		if err != nil {
			return math.NaN()
		}
		bd, err := o.Bounds(tr)
		if err != nil {
			return math.NaN()
		}
		total += ad.Sum(bd).Item()
	}
	return total / float64(n)
}

// evaluate returns the mean single-sample ELBO of the first n images of
// split (all when n is 0), with the sampled (not analytic) KL.
func (s *session) evaluate(split *mnist.Split, n int, seed uint64) float64 {
	return s.bounds(split, n, seed, 1, func(x *mat.Dense) vi.Bounded { return s.net.elbo(x, false) })
}

// logLikelihood returns the mean importance-weighted bound with k samples
// per image, an estimate of log p(x) from below that tightens as k grows.
func (s *session) logLikelihood(split *mnist.Split, n, k int, seed uint64) float64 {
	return s.bounds(split, n, seed, k, func(x *mat.Dense) vi.Bounded { return s.net.iwae(x, k) })
}

// gradLogVar returns the log of the variance of the inference network's
// gradient (parameters under "q/"), averaged over its elements, over draws
// estimates on one batch of the first images of split, at the current
// parameters and with the estimators' current state.
func (s *session) gradLogVar(split *mnist.Split, draws int) (float64, error) {
	b := min(s.meta.Batch, split.Len())
	x := mat.NewDense(b, mnist.Pixels, nil)
	idx := make([]int, b)
	for i := range idx {
		idx[i] = i
	}
	split.Batch(x.RawMatrix().Data, idx, mnist.Dynamic, rand.New(rand.NewPCG(s.meta.Seed, 0x76617220)))
	obj := s.net.elbo(x, s.meta.AnalyticKL)
	var sum, sum2 []float64
	tp := ad.NewTape()
	defer s.net.data.Delete(tp)
	for d := 0; d < draws; d++ {
		tp.Reset()
		s.svi.Params.ZeroGrad()
		env := ppl.Config{Tape: tp, Rand: rand.New(rand.NewPCG(s.meta.Seed, uint64(d)+1<<32)), Params: s.svi.Params, Batch: b}
		sur, err := infer.BuildSurrogate(obj, s.svi.Estimators, env)
		if err != nil {
			return 0, err
		}
		tp.Backward(sur.Loss)
		i := 0
		for _, p := range s.svi.Params.Params() {
			if !strings.HasPrefix(p.Name, "q/") {
				continue
			}
			data := p.Value.RawMatrix().Data
			if sum == nil || i+len(data) > len(sum) {
				sum = append(sum, make([]float64, len(data))...)
				sum2 = append(sum2, make([]float64, len(data))...)
			}
			if p.Grad != nil {
				for j, g := range p.Grad.RawMatrix().Data {
					sum[i+j] += g
					sum2[i+j] += g * g
				}
			}
			i += len(data)
		}
	}
	s.svi.Params.ZeroGrad()
	m := float64(draws)
	total := 0.0
	for i := range sum {
		mean := sum[i] / m
		total += max(sum2[i]/m-mean*mean, 0) * m / (m - 1)
	}
	return math.Log(total / float64(len(sum))), nil
}

// mean returns the mean of xs.
func mean(xs []float64) float64 {
	t := 0.0
	for _, x := range xs {
		t += x
	}
	return t / float64(len(xs))
}
