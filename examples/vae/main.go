// Command vae trains a Gaussian variational autoencoder on dynamically
// binarized MNIST and prints the validation and test ELBO.
//
// The model is the one-stochastic-layer architecture of the IWAE paper: 50
// Gaussian latents behind two 200-unit tanh layers each way, a Bernoulli
// likelihood, a standard normal prior, and a diagonal Gaussian inference
// network trained with pathwise (reparameterized) gradients and Adam.
//
// This first version is written directly on the numeric packages (ad, nn,
// ppl/dist); it moves onto the ppl/vi/infer training loop once those exist.
//
// Usage:
//
//	go run ./examples/vae -steps 3000 -batch 100 -lr 1e-3 -seed 1
package main

import (
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"time"

	"github.com/backpropq/backpropq/ad"
	"github.com/backpropq/backpropq/internal/mnist"
	"github.com/backpropq/backpropq/nn"
	"github.com/backpropq/backpropq/ppl/dist"
)

type options struct {
	steps, batch, latent, hidden, evalEvery int
	lr                                      float64
	seed                                    uint64
	duration                                time.Duration
	save                                    string
}

func main() {
	var o options
	flag.IntVar(&o.steps, "steps", 3000, "training steps")
	flag.DurationVar(&o.duration, "duration", 0, "stop after this wall-clock time (0: no limit)")
	flag.IntVar(&o.batch, "batch", 100, "minibatch size")
	flag.IntVar(&o.latent, "latent", 50, "latent dimensions")
	flag.IntVar(&o.hidden, "hidden", 200, "units per hidden layer")
	flag.Float64Var(&o.lr, "lr", 1e-3, "Adam learning rate")
	flag.Uint64Var(&o.seed, "seed", 1, "random seed")
	flag.IntVar(&o.evalEvery, "eval-every", 500, "steps between validation ELBO reports")
	flag.StringVar(&o.save, "save", "", "write the trained parameters and optimizer state to this file")
	flag.Parse()
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "vae:", err)
		os.Exit(1)
	}
}

// vae holds the encoder, which outputs the mean and log-scale of q(z|x),
// and the decoder, which outputs Bernoulli logits.
type vae struct {
	latent   int
	enc, dec *nn.MLP
	store    *nn.Store
}

func newVAE(latent, hidden int, rng *rand.Rand) (*vae, error) {
	m := &vae{
		latent: latent,
		enc:    nn.NewMLP([]int{mnist.Pixels, hidden, hidden, 2 * latent}, []nn.Activation{nn.Tanh, nn.Tanh}, rng),
		dec:    nn.NewMLP([]int{latent, hidden, hidden, mnist.Pixels}, []nn.Activation{nn.Tanh, nn.Tanh}, rng),
		store:  nn.NewStore(),
	}
	if err := m.store.Register("encoder", m.enc); err != nil {
		return nil, err
	}
	if err := m.store.Register("decoder", m.dec); err != nil {
		return nil, err
	}
	return m, nil
}

// elbo returns the single-sample ELBO of each row of x, [B x 1].
func (m *vae) elbo(x *ad.Tensor, rng *rand.Rand) *ad.Tensor {
	tp := x.Tape()
	h := m.enc.Forward(x)
	q := dist.Normal{Loc: ad.Slice(h, 0, m.latent), Scale: ad.Exp(ad.Slice(h, m.latent, 2*m.latent))}
	z := q.RSample(rng)
	prior := dist.Normal{Loc: tp.Zeros(1, m.latent), Scale: tp.Full(1, m.latent, 1)}
	px := dist.BernoulliLogits(m.dec.Forward(z)).LogProb(x)
	return ad.Sub(ad.Add(px, prior.LogProb(z)), q.LogProb(z))
}

// evaluate returns the mean ELBO over a whole split, with a fixed seed so
// that every evaluation sees the same binarization and noise.
func (m *vae) evaluate(s *mnist.Split, seed uint64) float64 {
	const chunk = 500
	rng := rand.New(rand.NewPCG(seed, 99))
	tp := ad.NewTape()
	buf := make([]float64, chunk*mnist.Pixels)
	idx := make([]int, 0, chunk)
	total := 0.0
	for from := 0; from < s.Len(); from += chunk {
		idx = idx[:0]
		for i := from; i < min(from+chunk, s.Len()); i++ {
			idx = append(idx, i)
		}
		b := buf[:len(idx)*mnist.Pixels]
		s.Batch(b, idx, mnist.Dynamic, rng)
		tp.Reset()
		total += ad.Sum(m.elbo(tp.FromData(len(idx), mnist.Pixels, b), rng)).Item()
	}
	return total / float64(s.Len())
}

func run(o options) error {
	data, err := mnist.Load()
	if err != nil {
		return err
	}
	rng := rand.New(rand.NewPCG(o.seed, 1))
	m, err := newVAE(o.latent, o.hidden, rng)
	if err != nil {
		return err
	}
	opt := nn.NewAdam(o.lr)
	params := m.store.Params()
	tp := ad.NewTape()
	buf := make([]float64, o.batch*mnist.Pixels)
	idx := make([]int, o.batch)
	fmt.Printf("Gaussian VAE %d-%d-%d-%d on MNIST (train %d, valid %d, test %d), batch %d, Adam lr %g, seed %d\n",
		mnist.Pixels, o.hidden, o.hidden, o.latent, data.Train.Len(), data.Valid.Len(), data.Test.Len(), o.batch, o.lr, o.seed)
	start := time.Now()
	running, step := 0.0, 0
	for step = 1; step <= o.steps; step++ {
		if o.duration > 0 && time.Since(start) > o.duration {
			step--
			break
		}
		for i := range idx {
			idx[i] = rng.IntN(data.Train.Len())
		}
		data.Train.Batch(buf, idx, mnist.Dynamic, rng)
		tp.Reset()
		elbo := ad.Mean(m.elbo(tp.FromData(o.batch, mnist.Pixels, buf), rng))
		tp.Backward(ad.Neg(elbo))
		if err := opt.Step(params); err != nil {
			return fmt.Errorf("step %d: %w", step, err)
		}
		m.store.ZeroGrad()
		running = 0.99*running + 0.01*elbo.Item()
		if step%o.evalEvery == 0 {
			elapsed := time.Since(start).Seconds()
			fmt.Printf("step %6d  %6.1fs  %5.1f steps/s  train ELBO (avg) %8.2f  valid ELBO %8.2f\n",
				step, elapsed, float64(step)/elapsed, running/(1-math.Pow(0.99, float64(step))), m.evaluate(data.Valid, o.seed))
		}
	}
	if step > o.steps {
		step = o.steps
	}
	elapsed := time.Since(start).Seconds()
	fmt.Printf("trained %d steps in %.1fs (%.1f steps/s)\n", step, elapsed, float64(step)/elapsed)
	fmt.Printf("test ELBO %.2f nats (10,000 images, one sample each)\n", m.evaluate(data.Test, o.seed))
	if o.save != "" {
		if err := nn.SaveFile(o.save, m.store, opt); err != nil {
			return err
		}
		fmt.Println("saved", o.save)
	}
	return nil
}
