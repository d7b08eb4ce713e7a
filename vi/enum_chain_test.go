package vi_test

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gonum.org/v1/gonum/mat"

	"github.com/backpropq/backpropq/ad"
	"github.com/backpropq/backpropq/infer"
	"github.com/backpropq/backpropq/nn"
	"github.com/backpropq/backpropq/ppl"
	"github.com/backpropq/backpropq/trace"
	"github.com/backpropq/backpropq/vi"
)

// The hidden Markov model of hmmK states and hmmV symbols.
const (
	hmmK = 3
	hmmV = 4
)

// hmmTruth returns the true first-state, transition and emission
// probabilities.
func hmmTruth() (init []float64, trans, emit [][]float64) {
	return []float64{0.6, 0.3, 0.1},
		[][]float64{{0.8, 0.1, 0.1}, {0.1, 0.7, 0.2}, {0.15, 0.15, 0.7}},
		[][]float64{{0.7, 0.1, 0.1, 0.1}, {0.1, 0.6, 0.2, 0.1}, {0.05, 0.05, 0.2, 0.7}}
}

// draw returns an index drawn from probs.
func draw(rng *rand.Rand, probs []float64) int {
	u := rng.Float64()
	for i, p := range probs {
		if u < p {
			return i
		}
		u -= p
	}
	return len(probs) - 1
}

// hmmSample draws n sequences of length steps.
func hmmSample(seed uint64, n, steps int) [][]int {
	rng := rand.New(rand.NewPCG(seed, 3))
	init, trans, emit := hmmTruth()
	obs := make([][]int, n)
	for r := range obs {
		s := draw(rng, init)
		for range steps {
			obs[r] = append(obs[r], draw(rng, emit[s]))
			s = draw(rng, trans[s])
		}
	}
	return obs
}

// hmmModel is the HMM over the sequences obs, one per member of the plate
// "seqs", with its logits as parameters drawn from rng's normal at
// creation; chain receives the chain of each run.
func hmmModel(obs [][]int, chain *vi.Chain) ppl.Model {
	randn := nn.InitFunc(func(m *mat.Dense, rng *rand.Rand) {
		r, c := m.Dims()
		for i := range r {
			for j := range c {
				m.Set(i, j, 0.5*rng.NormFloat64())
			}
		}
	})
	steps := len(obs[0])
	onehots := make([]*ad.Tensor, steps)
	for t := range onehots {
		data := make([]float64, len(obs)*hmmV)
		for r, o := range obs {
			data[r*hmmV+o[t]] = 1
		}
		onehots[t] = ad.NewTape().FromData(len(obs), hmmV, data)
	}
	return func(ctx *ppl.Ctx) {
		c := vi.Chain{Init: ppl.Param(ctx, "init", 1, hmmK, randn), Trans: ppl.Param(ctx, "trans", hmmK, hmmK, randn)}
		logEmit := ad.Transpose(ad.LogSoftmax(ppl.Param(ctx, "emit", hmmK, hmmV, randn))) // [V x K]
		seqs := ppl.Plate(ctx, "seqs", len(obs))
		for _, oh := range onehots {
			c.Emit = append(c.Emit, ad.MatMul(ppl.Data(seqs, oh), logEmit))
		}
		vi.SumChain(seqs, "x", c)
		if chain != nil {
			*chain = c
		}
	}
}

// softmaxRows returns the row softmax of m's values.
func softmaxRows(m *mat.Dense) [][]float64 {
	r, c := m.Dims()
	out := make([][]float64, r)
	for i := range r {
		row, tot := make([]float64, c), 0.0
		for j := range c {
			row[j] = math.Exp(m.At(i, j))
			tot += row[j]
		}
		for j := range row {
			row[j] /= tot
		}
		out[i] = row
	}
	return out
}

// forward is the scaled forward algorithm in probability space: the
// log-likelihood of one sequence.
func forward(init []float64, trans, emit [][]float64, obs []int) float64 {
	alpha := make([]float64, len(init))
	for k := range alpha {
		alpha[k] = init[k] * emit[k][obs[0]]
	}
	var ll float64
	for t := 0; ; t++ {
		var c float64
		for _, a := range alpha {
			c += a
		}
		ll += math.Log(c)
		for k := range alpha {
			alpha[k] /= c
		}
		if t+1 == len(obs) {
			return ll
		}
		next := make([]float64, len(alpha))
		for j := range next {
			for i, a := range alpha {
				next[j] += a * trans[i][j]
			}
			next[j] *= emit[j][obs[t+1]]
		}
		alpha = next
	}
}

// TestSumChainForward: the cost SumChain records for each sequence of
// length 50 is minus a hand-written forward algorithm's log-likelihood,
// to 1e-9.
func TestSumChainForward(t *testing.T) {
	obs := hmmSample(1, 5, 50)
	store := nn.NewStore()
	tr, err := trace.Run(hmmModel(obs, nil), ppl.Config{Params: store, Rand: rand.New(rand.NewPCG(1, 2)), Batch: 1})
	require.NoError(t, err)
	init := softmaxRows(store.Get("init").Value)[0]
	trans, emit := softmaxRows(store.Get("trans").Value), softmaxRows(store.Get("emit").Value)
	cost := tr.Site("x").Cost
	for r, o := range obs {
		assert.InDelta(t, -forward(init, trans, emit, o), cost.At(r, 0), 1e-9, "sequence %d", r)
	}
}

// TestChainPosteriorViterbi compares the posterior marginals and the
// Viterbi path with enumeration of every state sequence of length 7.
func TestChainPosteriorViterbi(t *testing.T) {
	const steps = 7
	obs := hmmSample(2, 3, steps)
	var chain vi.Chain
	store := nn.NewStore()
	_, err := trace.Run(hmmModel(obs, &chain), ppl.Config{Params: store, Rand: rand.New(rand.NewPCG(3, 4)), Batch: 1})
	require.NoError(t, err)
	post, err := chain.Posterior()
	require.NoError(t, err)
	paths, err := chain.Viterbi()
	require.NoError(t, err)
	init := softmaxRows(store.Get("init").Value)[0]
	trans, emit := softmaxRows(store.Get("trans").Value), softmaxRows(store.Get("emit").Value)
	for r, o := range obs {
		marg := make([][]float64, steps)
		for step := range marg {
			marg[step] = make([]float64, hmmK)
		}
		best, bestP, total := []int(nil), -1.0, 0.0
		states := make([]int, steps)
		for code := range int(math.Pow(hmmK, steps)) {
			for step, c := 0, code; step < steps; step, c = step+1, c/hmmK {
				states[step] = c % hmmK
			}
			p := init[states[0]] * emit[states[0]][o[0]]
			for step := 1; step < steps; step++ {
				p *= trans[states[step-1]][states[step]] * emit[states[step]][o[step]]
			}
			total += p
			for step, s := range states {
				marg[step][s] += p
			}
			if p > bestP {
				best, bestP = append([]int(nil), states...), p
			}
		}
		assert.Equal(t, best, paths[r], "Viterbi path of sequence %d", r)
		for step := range marg {
			for k := range marg[step] {
				assert.InDelta(t, marg[step][k]/total, post[r][step][k], 1e-9, "p(s_%d = %d) of sequence %d", step, k, r)
			}
		}
	}
}

// TestSumChainLearns fits the HMM's parameters by maximum likelihood on
// 100 sequences of length 50 (5000 observations) with the states summed
// out. The fit must reach the maximum likelihood: at least the
// likelihood of the true parameters, and by Wilks' theorem (twice the
// gain is χ² with 17 degrees of freedom) less than 20 nats above it
// (the χ² 0.999 quantile is 40.8). It then recovers the true
// probabilities up to a relabeling of the states within 0.1 for the
// transitions and emissions (the states overlap in their emissions, so
// the estimator's own error reaches 0.08 on this data set) and 0.15 for
// the first state, seen in 100 sequences only.
func TestSumChainLearns(t *testing.T) {
	obs := hmmSample(5, 100, 50)
	adam := nn.NewAdam(0.05)
	svi := &infer.SVI{Objective: vi.Program{Model: hmmModel(obs, nil)}, Optimizer: adam, Params: nn.NewStore(), Particles: 1, Seed: 1}
	for i := range 1500 {
		if i == 1000 {
			adam.LR = 0.01
		}
		_, err := svi.Step()
		require.NoError(t, err)
	}
	init := softmaxRows(svi.Params.Get("init").Value)[0]
	trans, emit := softmaxRows(svi.Params.Get("trans").Value), softmaxRows(svi.Params.Get("emit").Value)
	wantInit, wantTrans, wantEmit := hmmTruth()
	perm := bestRelabeling(emit, wantEmit)
	t.Logf("relabeling %v; init %.3f; trans %.3f; emit %.3f", perm, init, trans, emit)
	var ll, trueLL float64
	for _, o := range obs {
		ll += forward(init, trans, emit, o)
		trueLL += forward(wantInit, wantTrans, wantEmit, o)
	}
	t.Logf("log-likelihood %.3f, at the true parameters %.3f", ll, trueLL)
	assert.Greater(t, ll, trueLL, "the fit is at least as likely as the truth")
	assert.Less(t, ll, trueLL+20, "the fit is within Wilks' bound of the truth")
	for i := range hmmK {
		assert.InDelta(t, wantInit[i], init[perm[i]], 0.15, "init[%d]", i)
		for j := range hmmK {
			assert.InDelta(t, wantTrans[i][j], trans[perm[i]][perm[j]], 0.1, "trans[%d][%d]", i, j)
		}
		for v := range hmmV {
			assert.InDelta(t, wantEmit[i][v], emit[perm[i]][v], 0.1, "emit[%d][%d]", i, v)
		}
	}
}

// bestRelabeling returns the permutation p of the states that makes
// emit[p[i]] closest to want[i].
func bestRelabeling(emit, want [][]float64) []int {
	var best []int
	bestD := math.Inf(1)
	for _, p := range [][]int{{0, 1, 2}, {0, 2, 1}, {1, 0, 2}, {1, 2, 0}, {2, 0, 1}, {2, 1, 0}} {
		var d float64
		for i := range want {
			for v := range want[i] {
				d += math.Abs(want[i][v] - emit[p[i]][v])
			}
		}
		if d < bestD {
			best, bestD = p, d
		}
	}
	return best
}

// TestSumChainShapes: a chain whose shapes disagree is an error naming
// the cost's address.
func TestSumChainShapes(t *testing.T) {
	_, err := trace.Run(func(ctx *ppl.Ctx) {
		tp := ctx.Tape()
		vi.SumChain(ctx, "x", vi.Chain{Init: tp.Zeros(1, 3), Trans: tp.Zeros(3, 2), Emit: []*ad.Tensor{tp.Zeros(2, 3)}})
	}, ppl.Config{Batch: 2})
	assert.ErrorContains(t, err, `"x"`)
	assert.ErrorContains(t, err, "transition")
	chain := vi.Chain{Init: ad.NewTape().Zeros(1, 3)}
	_, err = chain.Viterbi()
	assert.Error(t, err)
}
