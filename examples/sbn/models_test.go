package main

import (
	"context"
	"io"
	"math"
	"math/rand/v2"
	"path/filepath"
	"sort"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gonum.org/v1/gonum/mat"

	"github.com/backpropq/backpropq/ad"
	"github.com/backpropq/backpropq/examples/internal/mnist"
	"github.com/backpropq/backpropq/nn"
	"github.com/backpropq/backpropq/ppl"
	"github.com/backpropq/backpropq/vi"
)

// shortEstimators is one estimator of each family, the ones -short runs:
// score function with a running, a leave-one-out and a learned baseline,
// re-run control variates, relaxations, and Backprop-Q.
var shortEstimators = map[string]bool{
	"reinforce-ma": true, "rloo": true, "nvil": true, "disarm": true,
	"muprop": true, "gumbel-st": true, "relax": true, "bpq": true, "bpq-cv": true,
}

// stepCase is a model and an estimator to take a step with.
type stepCase struct {
	arch      arch
	estimator string
}

// stepCases returns every model with every available estimator, or, when
// short, one estimator of each family (shortEstimators), each with one
// model in turn, so that every model runs at least once.
func stepCases(short bool) []stepCase {
	var names []string
	for _, e := range estimators {
		if e.make != nil && (!short || shortEstimators[e.name]) {
			names = append(names, e.name)
		}
	}
	var cases []stepCase
	for i, name := range names {
		if short {
			cases = append(cases, stepCase{archs[i%len(archs)], name})
			continue
		}
		for _, a := range archs {
			cases = append(cases, stepCase{a, name})
		}
	}
	return cases
}

// TestEveryModelSteps takes one training step on a batch of 4 images with
// every model and every available estimator (fewer with -short: see
// stepCases), and checks that the step's ELBO is finite and that every
// stochastic layer's inference network gets a gradient.
func TestEveryModelSteps(t *testing.T) {
	data := smallData(t)
	require.GreaterOrEqual(t, len(shortEstimators), len(archs), "-short must run every model")
	for _, c := range stepCases(testing.Short()) {
		a := c.arch
		t.Run(a.name+"/"+c.estimator, func(t *testing.T) {
			o := testOptions(t, c.estimator, 1)
			o.model, o.batch = a.name, 4
			s, err := newSession(o, data)
			require.NoError(t, err)
			s.fillBatch(0)
			m, err := s.svi.Step()
			require.NoError(t, err)
			require.False(t, math.IsNaN(m.ELBO) || math.IsInf(m.ELBO, 0), "ELBO %v", m.ELBO)
			assert.Less(t, m.ELBO/float64(o.batch), 0.0)
			assert.Equal(t, o.batch*samplesOf(s.svi.Estimators.Default), m.Rows)
			norm := make([]float64, a.layers+1)
			for _, p := range s.svi.Params.Params() {
				if l := guideLayer(p.Name); l > 0 {
					norm[l] += mat.Norm(p.Grad, 2)
				}
			}
			for l := 1; l <= a.layers; l++ {
				assert.Greater(t, norm[l], 0.0, "no gradient reaches the inference network of h%d", l)
			}
		})
	}
}

// TestELBOCostsReachLayers checks the graph of each model's ELBO: layer
// h_i reaches the costs of the layers it conditions, kl(h_j) for
// j >= i-1 (kl(h_{i-1}) through the prior p(h_{i-1} | h_i), the others
// through the inference network, which draws h_{i+1} from h_i), and only
// h1 reaches the image's cost. So h1, the first layer drawn, reaches every
// cost, and a deep layer's learning signal holds fewer costs.
func TestELBOCostsReachLayers(t *testing.T) {
	data := smallData(t)
	for _, a := range archs {
		t.Run(a.name, func(t *testing.T) {
			net := newSBN(a, data.Train)
			x := mat.NewDense(2, mnist.Pixels, nil)
			data.Train.Batch(x.RawMatrix().Data, []int{0, 1}, mnist.Dynamic, rand.New(rand.NewPCG(1, 2)))
			tr, err := net.elbo(x).Run(ppl.Config{Tape: ad.NewTape(), Rand: rand.New(rand.NewPCG(3, 4)), Params: nn.NewStore(), Batch: 2})
			require.NoError(t, err)
			g := tr.Graph()
			var layers []string
			for i := 1; i <= a.layers; i++ {
				layers = append(layers, latentAddr(i))
			}
			assert.Equal(t, layers, g.Stochastic())
			for i := 1; i <= a.layers; i++ {
				var want []string
				if i == 1 {
					want = append(want, "x")
				}
				for j := max(i-1, 1); j <= a.layers; j++ {
					want = append(want, vi.KLAddr(latentAddr(j)))
				}
				got := g.CostsFrom(latentAddr(i))
				sort.Strings(want)
				sort.Strings(got)
				assert.Equal(t, want, got, "costs reachable from %s", latentAddr(i))
			}
		})
	}
}

// TestRLOOTrainsOnTwoSamples checks that the rloo estimator's objective
// has two rows per image, each image's rows together, and costs scaled so
// that the step's ELBO per image is on the scale of one sample's.
func TestRLOOTrainsOnTwoSamples(t *testing.T) {
	data := smallData(t)
	o := testOptions(t, "rloo", 1)
	o.batch = 3
	s, err := newSession(o, data)
	require.NoError(t, err)
	s.fillBatch(0)
	tr, err := s.net.trainELBO(s.x, 2).Run(ppl.Config{Tape: ad.NewTape(), Rand: rand.New(rand.NewPCG(1, 2)), Params: s.svi.Params, Batch: 3})
	require.NoError(t, err)
	require.Equal(t, 6, tr.Batch())
	obs := tr.Site("x")
	require.NotNil(t, obs)
	assert.Equal(t, 0.5, obs.Scale)
	v := obs.Value
	for i := 0; i < 3; i++ {
		assert.Equal(t, mat.Row(nil, i, s.x), mat.Row(nil, 2*i, v.Value()), "row %d", 2*i)
		assert.Equal(t, mat.Row(nil, i, s.x), mat.Row(nil, 2*i+1, v.Value()), "row %d", 2*i+1)
	}

	one := testOptions(t, "reinforce-ma", 1)
	one.batch = 3
	ref, err := newSession(one, data)
	require.NoError(t, err)
	ref.fillBatch(0)
	m1, err := ref.svi.Step()
	require.NoError(t, err)
	m2, err := s.svi.Step()
	require.NoError(t, err)
	// At the same initialization the ELBO per image differs only by the
	// noise of the samples: a few nats, far less than a factor of two.
	assert.InDelta(t, m1.ELBO/3, m2.ELBO/3, 20)
}

// TestVarianceModePerLayer measures the gradient variance of each
// stochastic layer's inference network on the two-layer model: REINFORCE
// without baseline has far more variance than RLOO in every layer.
func TestVarianceModePerLayer(t *testing.T) {
	data := smallData(t)
	o := testOptions(t, "disarm", 1)
	o.model = "linear2"
	o.save = filepath.Join(t.TempDir(), "linear2.ckpt")
	_, err := trainOn(context.Background(), o, data, io.Discard)
	require.NoError(t, err)

	v := testOptions(t, "reinforce", 0)
	v.mode, v.estimator, v.resume, v.draws, v.warmup = "variance", "reinforce,rloo", o.save, 8, 1
	v.set["estimator"] = true
	rows, err := measureVariances(context.Background(), v, data)
	require.NoError(t, err)
	require.Len(t, rows, 2)
	for _, r := range rows {
		require.Len(t, r.layers, 2, r.estimator)
		for _, l := range r.layers {
			require.False(t, math.IsNaN(l) || math.IsInf(l, 0), "%s: %v", r.estimator, r.layers)
		}
	}
	for l := range rows[0].layers {
		assert.Greater(t, rows[0].layers[l], rows[1].layers[l]+1, "h%d: reinforce %v, rloo %v", l+1, rows[0].layers, rows[1].layers)
	}
}

// TestGuideLayer checks which parameters count as a layer's inference
// network in the per-layer variance.
func TestGuideLayer(t *testing.T) {
	for name, want := range map[string]int{
		"q/1/0/W": 1, "q/3/2/b": 3, "q/12/0/W": 12,
		"p/1/0/W": 0, "p/prior": 0, "q/x/0/W": 0, "q/0/0/W": 0, "infer/nvil/h1/W": 0, "q1/0/W": 0,
	} {
		assert.Equal(t, want, guideLayer(name), name)
	}
}

// TestCriticWarmup checks -critic-warmup: its steps leave the model and
// the inference network as they were created, while the critics learn;
// the next step trains them.
func TestCriticWarmup(t *testing.T) {
	data := smallData(t)
	o := testOptions(t, "bpq-cv", 3)
	o.model, o.batch, o.criticWarmup = "linear2", 4, 2
	s, err := newSession(o, data)
	require.NoError(t, err)
	values := func() [][]float64 {
		var out [][]float64
		for _, p := range s.svi.Params.Params() {
			out = append(out, append([]float64(nil), p.Value.RawMatrix().Data...))
		}
		return out
	}
	var first [][]float64
	var critics []byte
	for step := range 3 {
		s.fillBatch(int64(step))
		_, err := s.svi.Step()
		require.NoError(t, err)
		set, err := criticsOf(s.svi.Estimators.Default)
		require.NoError(t, err)
		state, err := set.MarshalState()
		require.NoError(t, err)
		switch step {
		case 0:
			first, critics = values(), state
		case 1:
			assert.Equal(t, first, values(), "the warm-up leaves the networks")
			assert.NotEqual(t, critics, state, "the critics learn during the warm-up")
		case 2:
			assert.NotEqual(t, first, values(), "the networks train after the warm-up")
		}
	}
}
