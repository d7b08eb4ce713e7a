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
	"github.com/backpropq/backpropq/examples/internal/mnist"
	"github.com/backpropq/backpropq/infer"
	"github.com/backpropq/backpropq/nn"
	"github.com/backpropq/backpropq/ppl"
	"github.com/backpropq/backpropq/vi"
)

// evalRows bounds the rows of one evaluation run (images times particles).
const evalRows = 2000

// bounds returns the mean over the first n images of split (all when n is
// 0) of the bound that obj gives each, where obj(x) is the objective of
// the images x and perImage the rows a run has per image. Every evaluation
// with one seed sees the same binarization and the same latent draws.
func (s *session) bounds(split *mnist.Split, n int, seed uint64, perImage int, obj func(x *mat.Dense) vi.Bounded) float64 {
	if n <= 0 || n > split.Len() {
		n = split.Len()
	}
	chunk := max(1, evalRows/perImage)
	rng := rand.New(rand.NewPCG(seed, 0x6576616c))
	tp := ad.NewTape()
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
	s.net.data.Delete(tp)
	return total / float64(n)
}

// evaluate returns the mean single-sample ELBO of the first n images of
// split (all when n is 0).
func (s *session) evaluate(split *mnist.Split, n int, seed uint64) float64 {
	return s.bounds(split, n, seed, 1, func(x *mat.Dense) vi.Bounded { return s.net.elbo(x) })
}

// logLikelihood returns the mean importance-weighted bound with k samples
// per image, an estimate of log p(x) from below that tightens as k grows.
func (s *session) logLikelihood(split *mnist.Split, n, k int, seed uint64) float64 {
	return s.bounds(split, n, seed, k, func(x *mat.Dense) vi.Bounded { return s.net.iwae(x, k) })
}

// evalMode evaluates a checkpoint.
func evalMode(o options, out io.Writer) error {
	if o.resume == "" {
		return fmt.Errorf("-mode eval needs -resume CHECKPOINT")
	}
	data, err := mnist.Load()
	if err != nil {
		return err
	}
	s, err := newSession(o, data)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "%s: SBN %s trained with %s\n", o.resume, s.meta.Model, s.meta.Estimator)
	fmt.Fprintf(out, "valid ELBO %.2f  test ELBO %.2f\n", s.evaluate(data.Valid, o.evalLimit, s.meta.Seed), s.evaluate(data.Test, o.evalLimit, s.meta.Seed))
	if o.iwae > 0 {
		fmt.Fprintf(out, "test log-likelihood (IWAE, K=%d) %.2f\n", o.iwae, s.logLikelihood(data.Test, o.evalLimit, o.iwae, s.meta.Seed))
	}
	return nil
}

// variance is the gradient variance of one estimator.
type variance struct {
	estimator string
	// logMeanVar is the log of the variance of the inference network's
	// gradient, averaged over its parameters' elements.
	logMeanVar float64
	// meanLogVar is the mean over elements of the log variance, over the
	// elements whose variance is not zero.
	meanLogVar float64
	// meanNorm is the norm of the mean gradient.
	meanNorm float64
	// logRelVar is log(mean variance / mean square of the mean gradient),
	// which a rescaling of the estimate (NVIL's variance normalization)
	// leaves unchanged.
	logRelVar float64
	// layers holds logMeanVar for the parameters of each stochastic
	// layer's inference network alone, h1 (nearest the data) first.
	layers  []float64
	perDraw time.Duration
}

// varianceMode measures, at the parameters of a checkpoint, the variance
// of each estimator's gradient of the inference network on one fixed
// minibatch.
func varianceMode(ctx context.Context, o options, out io.Writer) error {
	if o.resume == "" {
		return fmt.Errorf("-mode variance needs -resume CHECKPOINT")
	}
	data, err := mnist.Load()
	if err != nil {
		return err
	}
	rows, err := measureVariances(ctx, o, data)
	if err != nil {
		return err
	}
	printVariances(out, o, rows)
	return nil
}

func printVariances(out io.Writer, o options, rows []variance) {
	fmt.Fprintf(out, "gradient variance of the inference network at %s, batch of %d images, M=%d draws, %d warm-up steps\n", o.resume, o.batch, o.draws, o.warmup)
	fmt.Fprintf(out, "%-12s %14s %14s %14s %12s %10s", "estimator", "log mean var", "mean log var", "log rel var", "|mean grad|", "ms/draw")
	if len(rows) > 0 {
		for i := range rows[0].layers {
			fmt.Fprintf(out, " %10s", fmt.Sprintf("log var h%d", i+1))
		}
	}
	fmt.Fprintln(out)
	for _, r := range rows {
		fmt.Fprintf(out, "%-12s %14.3f %14.3f %14.3f %12.4g %10.1f", r.estimator, r.logMeanVar, r.meanLogVar, r.logRelVar, r.meanNorm, float64(r.perDraw.Microseconds())/1000)
		for _, v := range r.layers {
			fmt.Fprintf(out, " %10.3f", v)
		}
		fmt.Fprintln(out)
	}
	fmt.Fprintln(out, "log mean var: ln of the variance averaged over the parameters' elements (log var hN: of layer N's inference network only); mean log var: ln variance averaged over elements with nonzero variance;")
	fmt.Fprintln(out, "log rel var: ln(mean variance / mean squared mean gradient), unchanged by a rescaled estimate (NVIL normalizes its signal).")
}

// estimatorOnly wraps an optimizer so that it steps only the estimators'
// own parameters (those whose names start with "infer/").
type estimatorOnly struct{ nn.Optimizer }

func (e estimatorOnly) Step(params []*nn.Param) error {
	var own []*nn.Param
	for _, p := range params {
		if strings.HasPrefix(p.Name, "infer/") {
			own = append(own, p)
		}
	}
	return e.Optimizer.Step(own)
}

func measureVariances(ctx context.Context, o options, data *mnist.Data) ([]variance, error) {
	names := strings.Split(o.estimator, ",")
	if !o.set["estimator"] {
		names = nil
		for _, e := range estimators {
			if e.make != nil {
				names = append(names, e.name)
			}
		}
	}
	var rows []variance
	for _, name := range names {
		if ctx.Err() != nil {
			break
		}
		oe := o
		oe.estimator = strings.TrimSpace(name)
		oe.set = map[string]bool{"estimator": true}
		s, err := newSession(oe, data)
		if err != nil {
			return nil, err
		}
		spec, _ := findEstimator(oe.estimator)
		est := s.svi.Estimators.Default
		// Warm up the estimator's own parameters and state with the
		// model fixed.
		s.svi.Optimizer = estimatorOnly{nn.NewAdam(1e-3)}
		s.svi.Seed = o.seed + 1000
		for i := 0; i < o.warmup; i++ {
			s.fillBatch(int64(i) + 1<<40)
			if _, err := s.svi.Step(); err != nil {
				return nil, fmt.Errorf("%s: warm-up: %w", spec.name, err)
			}
		}
		// One fixed minibatch; M draws of the estimate.
		s.meta.Batch = o.batch
		s.x = mat.NewDense(o.batch, mnist.Pixels, nil)
		s.chunks.Reset() // they read the old batch
		s.fillBatch(-1)
		var guide []*nn.Param
		// layer holds the stochastic layer of each element of the
		// inference network's parameters, in the order of sum.
		var layer []int
		for _, p := range s.svi.Params.Params() {
			if l := guideLayer(p.Name); l > 0 {
				guide = append(guide, p)
				for range p.Value.RawMatrix().Data {
					layer = append(layer, l)
				}
			}
		}
		size := len(layer)
		sum := make([]float64, size)
		sum2 := make([]float64, size)
		tp := ad.NewTape()
		obj := s.net.trainELBO(s.x, samplesOf(est))
		start := time.Now()
		for d := 0; d < o.draws; d++ {
			tp.Reset()
			s.svi.Params.ZeroGrad()
			env := ppl.Config{Tape: tp, Rand: rand.New(rand.NewPCG(o.seed, uint64(d)+1<<32)), Params: s.svi.Params, Batch: s.x.RawMatrix().Rows}
			sur, err := infer.BuildSurrogate(obj, infer.Estimators{Default: est}, env)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", spec.name, err)
			}
			tp.Backward(sur.Loss)
			i := 0
			for _, p := range guide {
				if p.Grad == nil {
					i += len(p.Value.RawMatrix().Data)
					continue
				}
				for _, g := range p.Grad.RawMatrix().Data {
					sum[i] += g
					sum2[i] += g * g
					i++
				}
			}
		}
		per := time.Since(start) / time.Duration(max(o.draws, 1))
		s.net.data.Delete(tp)
		m := float64(o.draws)
		var meanVar, logSum, norm2 float64
		nonzero := 0
		layerVar := make([]float64, s.net.arch.layers)
		layerSize := make([]float64, s.net.arch.layers)
		for i := range sum {
			mean := sum[i] / m
			v := max(sum2[i]/m-mean*mean, 0) * m / max(m-1, 1)
			meanVar += v
			layerVar[layer[i]-1] += v
			layerSize[layer[i]-1]++
			norm2 += mean * mean
			if v > 0 {
				logSum += math.Log(v)
				nonzero++
			}
		}
		for i := range layerVar {
			layerVar[i] = math.Log(layerVar[i] / layerSize[i])
		}
		rows = append(rows, variance{
			estimator:  spec.name,
			logMeanVar: math.Log(meanVar / float64(size)),
			meanLogVar: logSum / float64(max(nonzero, 1)),
			meanNorm:   math.Sqrt(norm2),
			logRelVar:  math.Log(meanVar / norm2),
			layers:     layerVar,
			perDraw:    per,
		})
	}
	return rows, nil
}
