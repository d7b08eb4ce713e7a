package vi

import (
	"fmt"
	"math"

	"gonum.org/v1/gonum/floats"

	"github.com/backpropq/backpropq/ad"
	"github.com/backpropq/backpropq/ppl"
)

// Chain is a chain of discrete hidden states s_1 -> s_2 -> ... -> s_T over
// K values, each emitting an observation, in every row of a batch (one
// sequence per row): the hidden Markov model. SumChain sums the states out
// inside a model with the forward algorithm, so they need no guide;
// Posterior and Viterbi recover them afterwards.
type Chain struct {
	// Init holds the logits of the first state, [1 x K] or [rows x K]
	// (normalized with a softmax).
	Init *ad.Tensor
	// Trans holds the transition logits, [K x K]: row i gives the logits
	// of the next state from state i (normalized with a row softmax).
	Trans *ad.Tensor
	// Emit holds, for each step t, log p(x_t | s_t = k), [rows x K]:
	// each row's observation scored under each state's emission
	// distribution.
	Emit []*ad.Tensor
}

// check returns an error unless c's shapes agree.
func (c Chain) check() error {
	if c.Init == nil || c.Trans == nil || len(c.Emit) == 0 {
		return fmt.Errorf("the chain needs Init, Trans and at least one step of Emit")
	}
	k := c.Init.Cols()
	if r, cols := c.Trans.Dims(); r != k || cols != k {
		return fmt.Errorf("the transition logits are [%dx%d], want [%dx%d] for %d states", r, cols, k, k, k)
	}
	rows := c.Emit[0].Rows()
	for t, e := range c.Emit {
		if r, cols := e.Dims(); r != rows || cols != k {
			return fmt.Errorf("the emissions of step %d are [%dx%d], want [%dx%d]", t, r, cols, rows, k)
		}
	}
	if r := c.Init.Rows(); r != 1 && r != rows {
		return fmt.Errorf("the first state's logits have %d rows, want 1 or %d", r, rows)
	}
	return nil
}

// SumChain records at addr the cost -log p(x_1, ..., x_T) of each row,
// [rows x 1], the states summed out by the forward algorithm, and returns
// the log-likelihood log p(x_1, ..., x_T). Gradients reach Init, Trans and
// Emit, so the chain's parameters train as parameters or latents of any
// objective. The rows must be ctx's (one sequence per member of a plate,
// say).
//
// SumChain panics with a ppl.SiteError naming addr when the shapes of c
// disagree.
func SumChain(ctx *ppl.Ctx, addr string, c Chain) *ad.Tensor {
	if err := c.check(); err != nil {
		panic(&ppl.SiteError{Addr: ctx.Addr(addr), Err: err})
	}
	trans := ad.Softmax(c.Trans)
	alpha := ad.Add(ad.LogSoftmax(c.Init), c.Emit[0])
	for _, e := range c.Emit[1:] {
		// log Σ_i exp(alpha_i) P_ij, shifted by log Σ_i exp(alpha_i) so
		// that the exponentials cannot all underflow.
		shift := ad.LogSumExp(alpha)
		alpha = ad.Add(ad.Add(ad.Log(ad.MatMul(ad.Exp(ad.Sub(alpha, shift)), trans)), shift), e)
	}
	ll := ad.LogSumExp(alpha)
	ppl.Cost(ctx, addr, ad.Neg(ll))
	return ll
}

// logs returns the values of c as log-probabilities: the first state's,
// the transitions' and the emissions', with rows the number of sequences.
func (c Chain) logs() (init [][]float64, trans [][]float64, emit [][][]float64) {
	k := c.Init.Cols()
	rows := c.Emit[0].Rows()
	init = make([][]float64, rows)
	for r := range init {
		init[r] = logNormalize(c.Init.Value().RawRowView(min(r, c.Init.Rows()-1)))
	}
	trans = make([][]float64, k)
	for i := range trans {
		trans[i] = logNormalize(c.Trans.Value().RawRowView(i))
	}
	emit = make([][][]float64, rows)
	for r := range emit {
		emit[r] = make([][]float64, len(c.Emit))
		for t, e := range c.Emit {
			emit[r][t] = e.Value().RawRowView(r)
		}
	}
	return init, trans, emit
}

// logNormalize returns the log-softmax of logits.
func logNormalize(logits []float64) []float64 {
	lse := floats.LogSumExp(logits)
	out := make([]float64, len(logits))
	for i, l := range logits {
		out[i] = l - lse
	}
	return out
}

// Posterior returns p(s_t = k | x_1, ..., x_T) of each row r, step t and
// state k, as out[r][t][k], by the forward-backward algorithm on c's
// values. It returns an error when c's shapes disagree.
func (c Chain) Posterior() ([][][]float64, error) {
	if err := c.check(); err != nil {
		return nil, fmt.Errorf("vi: Chain: %w", err)
	}
	init, trans, emit := c.logs()
	k, steps := len(trans), len(c.Emit)
	out := make([][][]float64, len(emit))
	for r := range emit {
		alpha := make([][]float64, steps)
		alpha[0] = make([]float64, k)
		floats.AddTo(alpha[0], init[r], emit[r][0])
		for t := 1; t < steps; t++ {
			alpha[t] = forwardStep(alpha[t-1], trans, emit[r][t])
		}
		beta := make([]float64, k)
		out[r] = make([][]float64, steps)
		for t := steps - 1; t >= 0; t-- {
			post := make([]float64, k)
			floats.AddTo(post, alpha[t], beta)
			out[r][t] = logNormalize(post)
			for j := range post {
				out[r][t][j] = math.Exp(out[r][t][j])
			}
			next := make([]float64, k)
			for i := range next {
				terms := make([]float64, k)
				for j := range terms {
					terms[j] = trans[i][j] + emit[r][t][j] + beta[j]
				}
				next[i] = floats.LogSumExp(terms)
			}
			beta = next
		}
	}
	return out, nil
}

// forwardStep returns the forward message of the next step: for each
// state j, log Σ_i exp(msg_i + trans_ij), plus emit_j.
func forwardStep(msg []float64, trans [][]float64, emit []float64) []float64 {
	out := make([]float64, len(emit))
	terms := make([]float64, len(msg))
	for j := range out {
		for i := range msg {
			terms[i] = msg[i] + trans[i][j]
		}
		out[j] = floats.LogSumExp(terms) + emit[j]
	}
	return out
}

// Viterbi returns the most likely states of each row given its
// observations, out[r][t], on c's values. It returns an error when c's
// shapes disagree.
func (c Chain) Viterbi() ([][]int, error) {
	if err := c.check(); err != nil {
		return nil, fmt.Errorf("vi: Chain: %w", err)
	}
	init, trans, emit := c.logs()
	k, steps := len(trans), len(c.Emit)
	out := make([][]int, len(emit))
	for r := range emit {
		delta := make([]float64, k)
		floats.AddTo(delta, init[r], emit[r][0])
		back := make([][]int, steps)
		for t := 1; t < steps; t++ {
			back[t] = make([]int, k)
			next := make([]float64, k)
			for j := range next {
				best := math.Inf(-1)
				for i := range delta {
					if v := delta[i] + trans[i][j]; v > best {
						best, back[t][j] = v, i
					}
				}
				next[j] = best + emit[r][t][j]
			}
			delta = next
		}
		path := make([]int, steps)
		path[steps-1] = floats.MaxIdx(delta)
		for t := steps - 1; t > 0; t-- {
			path[t-1] = back[t][path[t]]
		}
		out[r] = path
	}
	return out, nil
}
