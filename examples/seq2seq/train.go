package main

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"time"

	"github.com/backpropq/backpropq/ad"
	"github.com/backpropq/backpropq/examples/internal/exrun"
	"github.com/backpropq/backpropq/infer"
	"github.com/backpropq/backpropq/nn"
	"github.com/backpropq/backpropq/q"
	"github.com/backpropq/backpropq/vi"
)

// Sizes of the fixed evaluation sets.
const (
	validSize = 500
	testSize  = 1000
)

// meta is what a checkpoint holds beyond the SVI's state.
type meta struct {
	RunID   string  `json:"run_id"`
	Trainer string  `json:"trainer"`
	Cost    string  `json:"cost"`
	BPQMode string  `json:"bpq_mode"`
	Lambda  float64 `json:"lambda"`
	// ValueBaseline is -value-baseline.
	ValueBaseline bool    `json:"value_baseline"`
	CriticLR      float64 `json:"critic_lr"`
	CriticWarmup  int     `json:"critic_warmup"`
	Warm          int     `json:"warm"`
	Batch         int     `json:"batch"`
	LR            float64 `json:"lr"`
	Seed          uint64  `json:"seed"`
	Workers       int     `json:"workers"`
	// Seconds is the training time of the steps taken so far.
	Seconds float64 `json:"seconds"`
	// AvgSum and AvgWeight make the bias-corrected running mean of the
	// training objective (decay 0.99): AvgSum / AvgWeight.
	AvgSum    float64 `json:"avg_sum"`
	AvgWeight float64 `json:"avg_weight"`
}

// metaSection is the checkpoint section this command adds to the SVI's.
const metaSection = "seq2seq.meta"

// session is a network and its training loop.
type session struct {
	meta    meta
	trainer trainerSpec
	net     *seq2seq
	svi     *infer.SVI
	est     infer.Estimator
	// cost is the sequence cost of the sampled outputs.
	cost func(out, tgt []int) float64
	// exs is the current minibatch, which the objective reads by closure.
	exs []example
	// critics are the Backprop-Q critics when -critics is given, and
	// criticsLoaded says they were read from its file.
	critics       *q.Set
	criticsLoaded bool
}

// newSession builds the network and training loop that o describes, from
// the checkpoint o.resume when given (whose configuration then wins over
// the flags not given on the command line, and must agree with those
// given).
func newSession(o options) (*session, error) {
	m := meta{Trainer: o.trainer, Cost: o.cost, BPQMode: o.bpqMode, Lambda: o.lambda, ValueBaseline: o.valueBaseline, CriticLR: o.criticLR, CriticWarmup: o.criticWarmup, Warm: o.warm,
		Batch: o.batch, LR: o.lr, Seed: o.seed, Workers: o.workers}
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
			{"trainer", o.trainer, saved.Trainer}, {"cost", o.cost, saved.Cost}, {"bpq-mode", o.bpqMode, saved.BPQMode}, {"lambda", o.lambda, saved.Lambda},
			{"value-baseline", o.valueBaseline, saved.ValueBaseline}, {"critic-lr", o.criticLR, saved.CriticLR},
			{"critic-warmup", o.criticWarmup, saved.CriticWarmup},
			{"warm", o.warm, saved.Warm}, {"batch", o.batch, saved.Batch}, {"lr", o.lr, saved.LR}, {"seed", o.seed, saved.Seed},
			{"workers", o.workers, saved.Workers},
		} {
			if o.set[c.flag] && c.got != c.want {
				return nil, fmt.Errorf("resume %s: -%s %v differs from the checkpoint's %v", o.resume, c.flag, c.got, c.want)
			}
		}
		m = saved
		o.trainer, o.bpqMode, o.lambda, o.warm, o.seed = m.Trainer, m.BPQMode, m.Lambda, m.Warm, m.Seed
		o.valueBaseline, o.criticLR, o.criticWarmup = m.ValueBaseline, m.CriticLR, m.CriticWarmup
	}
	spec, err := findTrainer(m.Trainer)
	if err != nil {
		return nil, err
	}
	cost, ok := costs[m.Cost]
	if !ok {
		return nil, fmt.Errorf("unknown -cost %q (edit or bleu)", m.Cost)
	}
	if m.Batch < 1 || m.Workers < 1 || m.Workers > m.Batch {
		return nil, fmt.Errorf("need 1 <= -workers <= -batch, got -workers %d, -batch %d", m.Workers, m.Batch)
	}
	if !(m.LR > 0) {
		return nil, fmt.Errorf("-lr must be positive, got %v", m.LR)
	}
	if m.CriticWarmup < 0 {
		return nil, fmt.Errorf("-critic-warmup must be at least 0, got %d", m.CriticWarmup)
	}
	if spec.warm && m.Warm < 0 {
		return nil, fmt.Errorf("-warm must be at least 0, got %d", m.Warm)
	}
	store := nn.NewStore()
	net, err := newSeq2seq(rand.New(rand.NewPCG(m.Seed, 0x6e6574)), store)
	if err != nil {
		return nil, err
	}
	s := &session{meta: m, trainer: spec, net: net, cost: cost}
	ests := infer.Estimators{}
	if spec.estimator != nil {
		if s.est, err = spec.estimator(o); err != nil {
			return nil, err
		}
		ests.Default = s.est
	}
	if o.critics != "" {
		h, ok := s.est.(infer.CriticHolder)
		if !ok {
			return nil, fmt.Errorf("-critics %s: trainer %s learns no critics (only bpq and mle+bpq do)", o.critics, spec.name)
		}
		s.critics = h.QCritics().Set
		if s.criticsLoaded, err = exrun.LoadCritics(o.critics, s.critics, o.reinit); err != nil {
			return nil, err
		}
	}
	s.svi = &infer.SVI{
		Chunk:       s.chunk,
		Estimators:  ests,
		Optimizer:   nn.NewAdam(m.LR),
		Params:      store,
		Particles:   m.Batch,
		Chunks:      m.Workers,
		Workers:     m.Workers,
		MaxGradNorm: 10,
		Seed:        m.Seed,
	}
	if sections != nil {
		if err := s.svi.Restore(sections, infer.LoadOptions{}); err != nil {
			return nil, fmt.Errorf("resume %s: %w", o.resume, err)
		}
	}
	return s, nil
}

// teacherForcing reports whether the step to come is a maximum-likelihood
// one.
func (s *session) teacherForcing() bool {
	return s.trainer.estimator == nil || (s.trainer.warm && s.svi.StepCount() < int64(s.meta.Warm))
}

// chunk is the objective of the rows [from, to) of the current step.
func (s *session) chunk(from, to int) vi.Objective {
	return program{
		m:            s.net,
		exs:          s.exs[from:to],
		cost:         s.cost,
		teacher:      s.teacherForcing(),
		greedyCost:   s.trainer.greedy,
		criticInputs: isBPQ(s.est),
	}
}

func isBPQ(e infer.Estimator) bool {
	_, ok := e.(infer.CriticHolder)
	return ok
}

// save writes the SVI's checkpoint with this command's section added.
func (s *session) save(path string) error {
	return exrun.SaveCheckpoint(path, s.svi, metaSection, s.meta)
}

// step takes one training step, in the control-variate mode during the
// -critic-warmup steps of Backprop-Q.
func (s *session) step() (infer.Metrics, error) {
	if w, ok := s.est.(*warmupQ); ok && !s.teacherForcing() {
		rlSteps := s.svi.StepCount()
		if s.trainer.warm {
			rlSteps -= int64(s.meta.Warm)
		}
		w.warming = rlSteps < int64(s.meta.CriticWarmup)
	}
	return s.svi.Step()
}

// diagnostics returns the mean over the token sites of the learning
// signal's variance in step sm and of the critic's last squared TD error
// (zero without critics).
func (s *session) diagnostics(sm infer.Metrics) (signalVar, criticMSE float64) {
	n := 0
	h, _ := s.est.(infer.CriticHolder)
	for _, site := range sm.Sites {
		signalVar += site.SignalVar
		if h != nil {
			if e, ok := h.QCritics().TDError(site.Addr); ok {
				criticMSE += e
			}
		}
		n++
	}
	if n == 0 {
		return 0, 0
	}
	return signalVar / float64(n), criticMSE / float64(n)
}

// score is the quality of decodes of a set of examples.
type score struct {
	// Edit is the mean edit distance to the targets, Exact the fraction
	// of outputs equal to their target.
	Edit, Exact float64
}

// evalChunk is the number of examples decoded at once in evaluations.
const evalChunk = 250

// evaluate decodes exs greedily (rng nil) or by sampling from rng and
// scores the outputs; it returns the outputs too.
func (s *session) evaluate(exs []example, rng *rand.Rand) (score, [][]int) {
	tp := ad.NewTape()
	var sc score
	var outs [][]int
	for from := 0; from < len(exs); from += evalChunk {
		part := exs[from:min(from+evalChunk, len(exs))]
		tp.Reset()
		choose := greedy
		if rng != nil {
			choose = sampler(rng)
		}
		tokens, _ := s.net.decode(s.net.encode(tp, part), maxSteps, true, choose)
		for r, c := range editCosts(tokens, part) {
			sc.Edit += c
			if c == 0 && len(untilEOS(tokens[r])) == len(tokens[r])-1 {
				sc.Exact++
			}
		}
		outs = append(outs, tokens...)
	}
	sc.Edit /= float64(len(exs))
	sc.Exact /= float64(len(exs))
	return sc, outs
}

// record is one line of a metrics file.
type record struct {
	RunID   string  `json:"run_id"`
	Trainer string  `json:"trainer"`
	BPQMode string  `json:"bpq_mode,omitempty"`
	Step    int64   `json:"step"`
	Seconds float64 `json:"seconds"`
	// Phase is "mle" for teacher-forcing steps (Train is then the
	// negative log-likelihood per sequence) and "rl" for sampled ones
	// (Train is the sampled outputs' mean cost: edit distance, or 1 -
	// BLEU with -cost bleu).
	Phase    string  `json:"phase"`
	Train    float64 `json:"train"`
	TrainAvg float64 `json:"train_avg"`
	GradNorm float64 `json:"grad_norm"`
	// SignalVar is the variance over the batch of the token sites'
	// learning signals (after baselines or control variates), averaged
	// over the sites y[t] (RL steps only).
	SignalVar float64 `json:"signal_var,omitempty"`
	// CriticMSE is the Backprop-Q critic's squared TD error, averaged
	// over the sites y[t] (RL steps only).
	CriticMSE  float64  `json:"critic_mse,omitempty"`
	ValidEdit  *float64 `json:"valid_edit,omitempty"`
	ValidExact *float64 `json:"valid_exact,omitempty"`
	TestEdit   *float64 `json:"test_edit,omitempty"`
	TestExact  *float64 `json:"test_exact,omitempty"`
	// TestSampledEdit and TestSampledExact score one sampled decode per
	// test input.
	TestSampledEdit  *float64 `json:"test_sampled_edit,omitempty"`
	TestSampledExact *float64 `json:"test_sampled_exact,omitempty"`
	StepsPerSec      float64  `json:"steps_per_sec,omitempty"`
}

// result is what a training run ends with.
type result struct {
	steps            int64
	seconds          float64
	stepsPerSec      float64
	valid            score
	test, testSample score
	// trainAvg is the running mean of the last phase's training
	// objective.
	trainAvg float64
}

// train runs the training loop o describes and reports to out.
func train(ctx context.Context, o options, out io.Writer) (*result, error) {
	s, err := newSession(o)
	if err != nil {
		return nil, err
	}
	mw, err := exrun.OpenMetrics(o.metrics)
	if err != nil {
		return nil, err
	}
	defer mw.Close()
	m := &s.meta
	valid, test := makeSet(validSeed, validSize), makeSet(testSeed, testSize)
	if o.evalLimit < 0 {
		return nil, fmt.Errorf("-eval-limit must be at least 0, got %d", o.evalLimit)
	}
	if o.evalLimit > 0 {
		valid, test = valid[:min(o.evalLimit, validSize)], test[:min(o.evalLimit, testSize)]
	}
	if !o.quiet {
		mode := ""
		if isBPQ(s.est) {
			mode = fmt.Sprintf(" (mode %s, lambda %g)", m.BPQMode, m.Lambda)
		}
		fmt.Fprintf(out, "seq2seq: sort %d-%d digits; trainer %s%s, cost %s, batch %d, Adam lr %g, seed %d, run %s\n",
			minLen, maxLen, m.Trainer, mode, m.Cost, m.Batch, m.LR, m.Seed, m.RunID)
		if s.svi.StepCount() > 0 {
			fmt.Fprintf(out, "resumed from %s at step %d\n", o.resume, s.svi.StepCount())
		}
		if s.criticsLoaded {
			fmt.Fprintf(out, "loaded critics %s\n", o.critics)
		}
	}
	startStep := s.svi.StepCount()
	prog := exrun.NewProgress(exrun.ProgressOptions{Total: int64(o.steps), Start: startStep, Duration: o.duration,
		Objective: "train (avg)", Quiet: o.quiet, Out: out})
	budget := exrun.Budget{Steps: int64(o.steps), Duration: o.duration}
	start := time.Now()
	base := m.Seconds
	// Training time leaves out evaluations and checkpoints.
	var paused time.Duration
	seconds := func() float64 { return base + (time.Since(start) - paused).Seconds() }
	evalRecord := func(rec record) error {
		evalStart := time.Now()
		defer func() { paused += time.Since(evalStart) }()
		v, _ := s.evaluate(valid, nil)
		rec.ValidEdit, rec.ValidExact = &v.Edit, &v.Exact
		prog.Printf("step %d  %.1fs  valid edit distance %.3f  exact %.3f", rec.Step, rec.Seconds, v.Edit, v.Exact)
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
	interrupted := false
	phase := ""
	for !budget.Done(s.svi.StepCount(), time.Since(start)-paused) {
		if ctx.Err() != nil {
			interrupted = true
			break
		}
		t := s.svi.StepCount()
		s.exs = trainBatch(m.Seed, t, m.Batch)
		p := "rl"
		if s.teacherForcing() {
			p = "mle"
		}
		if p != phase && phase != "" {
			// The running mean restarts with the objective.
			m.AvgSum, m.AvgWeight = 0, 0
			prog.Printf("step %d: switching from %s to %s", t, phase, p)
		}
		phase = p
		sm, err := s.step()
		if err != nil {
			prog.Finish()
			return nil, err
		}
		obj := sm.Loss / float64(sm.Rows)
		m.AvgSum = 0.99*m.AvgSum + 0.01*obj
		m.AvgWeight = 0.99*m.AvgWeight + 0.01
		step := t + 1
		last = record{RunID: m.RunID, Trainer: m.Trainer, Step: step, Seconds: seconds(), Phase: p,
			Train: obj, TrainAvg: m.AvgSum / m.AvgWeight, GradNorm: sm.GradNorm}
		if isBPQ(s.est) {
			last.BPQMode = m.BPQMode
		}
		if p == "rl" {
			last.SignalVar, last.CriticMSE = s.diagnostics(sm)
		}
		logLine := o.logEvery > 0 && step%int64(o.logEvery) == 0
		prog.Update(step, last.Seconds-base, last.TrainAvg, logLine)
		if o.evalEvery > 0 && step%int64(o.evalEvery) == 0 {
			if err := evalRecord(last); err != nil {
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
	session := m.Seconds - base
	res := &result{steps: steps, seconds: m.Seconds, trainAvg: last.TrainAvg, stepsPerSec: float64(steps-startStep) / max(session, 1e-9)}
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
	fmt.Fprintf(out, "trained to step %d in %.1fs this session (%.1f steps/s)\n", steps, session, res.stepsPerSec)
	res.valid, _ = s.evaluate(valid, nil)
	var greedyOut, sampledOut [][]int
	res.test, greedyOut = s.evaluate(test, nil)
	res.testSample, sampledOut = s.evaluate(test, rand.New(rand.NewPCG(m.Seed, 0x73616d70)))
	fmt.Fprintf(out, "valid: greedy edit distance %.3f, exact match %.3f\n", res.valid.Edit, res.valid.Exact)
	fmt.Fprintf(out, "test:  greedy edit distance %.3f, exact match %.3f; sampled edit distance %.3f, exact match %.3f\n",
		res.test.Edit, res.test.Exact, res.testSample.Edit, res.testSample.Exact)
	shown := min(5, len(test))
	printDecodes(out, test[:shown], greedyOut[:shown], sampledOut[:shown])
	final := last
	final.Step, final.Seconds, final.StepsPerSec = steps, m.Seconds, res.stepsPerSec
	final.ValidEdit, final.ValidExact = &res.valid.Edit, &res.valid.Exact
	final.TestEdit, final.TestExact = &res.test.Edit, &res.test.Exact
	final.TestSampledEdit, final.TestSampledExact = &res.testSample.Edit, &res.testSample.Exact
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

// printDecodes prints test inputs beside their targets and decodes.
func printDecodes(out io.Writer, exs []example, greedyOut, sampledOut [][]int) {
	fmt.Fprintf(out, "%-14s %-14s %-16s %s\n", "input", "target", "greedy", "sampled")
	for i, e := range exs {
		fmt.Fprintf(out, "%-14s %-14s %-16s %s\n", tokenString(e.src), tokenString(e.tgt), tokenString(greedyOut[i]), tokenString(sampledOut[i]))
	}
}
