package main

import (
	"fmt"
	"io"
	"math"
	"math/rand/v2"

	"gonum.org/v1/gonum/mat"

	"github.com/backpropq/backpropq/ad"
	"github.com/backpropq/backpropq/infer"
	"github.com/backpropq/backpropq/nn"
	"github.com/backpropq/backpropq/ppl"
	"github.com/backpropq/backpropq/vi"
)

// The true hidden Markov model: 3 states, 4 symbols.
var (
	trueInit  = []float64{0.6, 0.3, 0.1}
	trueTrans = [][]float64{{0.8, 0.1, 0.1}, {0.1, 0.7, 0.2}, {0.15, 0.15, 0.7}}
	trueEmit  = [][]float64{{0.7, 0.1, 0.1, 0.1}, {0.1, 0.6, 0.2, 0.1}, {0.05, 0.05, 0.2, 0.7}}
)

// hmmModel scores the sequences obs (one-hot symbols per step, one row
// per sequence) with the states summed out, its logits as parameters;
// chain receives the chain of the run.
func hmmModel(obs []*ad.Tensor, chain *vi.Chain) ppl.Model {
	small := nn.InitFunc(func(m *mat.Dense, rng *rand.Rand) {
		for i, v := range m.RawMatrix().Data {
			m.RawMatrix().Data[i] = v + 0.5*rng.NormFloat64()
		}
	})
	return func(ctx *ppl.Ctx) {
		c := vi.Chain{Init: ppl.Param(ctx, "init", 1, 3, small), Trans: ppl.Param(ctx, "trans", 3, 3, small)}
		logEmit := ad.Transpose(ad.LogSoftmax(ppl.Param(ctx, "emit", 3, 4, small)))
		seqs := ppl.Plate(ctx, "seqs", obs[0].Rows())
		for _, x := range obs {
			c.Emit = append(c.Emit, ad.MatMul(ppl.Data(seqs, x), logEmit))
		}
		vi.SumChain(seqs, "x", c)
		*chain = c
	}
}

// hmm fits the HMM by maximum likelihood on 100 sequences of 50 steps and
// compares it with the true parameters.
func hmm(w io.Writer, effort float64) error {
	rng := rand.New(rand.NewPCG(5, 6))
	const seqs, length = 100, 50
	states := make([][]int, seqs)
	data := make([][]float64, length)
	for t := range data {
		data[t] = make([]float64, seqs*4)
	}
	for r := range states {
		s := pick(rng, trueInit)
		for t := range length {
			states[r] = append(states[r], s)
			data[t][r*4+pick(rng, trueEmit[s])] = 1
			s = pick(rng, trueTrans[s])
		}
	}
	obs := make([]*ad.Tensor, length)
	for t := range obs {
		obs[t] = ad.NewTape().FromData(seqs, 4, data[t])
	}

	var chain vi.Chain
	adam := nn.NewAdam(0.05)
	svi := &infer.SVI{Objective: vi.Program{Model: hmmModel(obs, &chain)}, Optimizer: adam, Params: nn.NewStore(), Particles: 1}
	n := steps(1500, effort)
	for i := range n {
		if i == 2*n/3 {
			adam.LR = 0.01
		}
		if _, err := svi.Step(); err != nil {
			return err
		}
	}

	emit := softmax(svi.Params.Get("emit").Value)
	trans := softmax(svi.Params.Get("trans").Value)
	perm := relabel(emit)
	fmt.Fprintln(w, "state  transitions (fitted | true)                emissions (fitted | true)")
	for i, p := range perm {
		row := make([]float64, 3)
		for j, q := range perm {
			row[j] = trans[p][q]
		}
		fmt.Fprintf(w, "%d      %.2f | %.2f   %.2f | %.2f\n", i, row, trueTrans[i], emit[p], trueEmit[i])
	}
	paths, err := chain.Viterbi()
	if err != nil {
		return err
	}
	right := 0
	for r := range paths {
		for t, s := range paths[r] {
			if perm[states[r][t]] == s {
				right++
			}
		}
	}
	fmt.Fprintf(w, "Viterbi recovers %.1f%% of the true states\n", 100*float64(right)/(seqs*length))
	return nil
}

// pick draws an index from probs.
func pick(rng *rand.Rand, probs []float64) int {
	u := rng.Float64()
	for i, p := range probs {
		if u < p {
			return i
		}
		u -= p
	}
	return len(probs) - 1
}

// softmax returns the row softmax of logits.
func softmax(logits *mat.Dense) [][]float64 {
	r, c := logits.Dims()
	out := make([][]float64, r)
	for i := range out {
		out[i] = make([]float64, c)
		var total float64
		for j := range c {
			out[i][j] = math.Exp(logits.At(i, j))
			total += out[i][j]
		}
		for j := range c {
			out[i][j] /= total
		}
	}
	return out
}

// relabel returns the fitted state perm[i] that plays true state i: the
// permutation whose emissions are closest to the true ones.
func relabel(emit [][]float64) []int {
	var best []int
	bestDist := math.Inf(1)
	for _, perm := range [][]int{{0, 1, 2}, {0, 2, 1}, {1, 0, 2}, {1, 2, 0}, {2, 0, 1}, {2, 1, 0}} {
		var d float64
		for i, p := range perm {
			for v := range trueEmit[i] {
				d += math.Abs(emit[p][v] - trueEmit[i][v])
			}
		}
		if d < bestDist {
			best, bestDist = perm, d
		}
	}
	return best
}
