package main

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/backpropq/backpropq/ad"
	"github.com/backpropq/backpropq/nn"
	"github.com/backpropq/backpropq/ppl"
	"github.com/backpropq/backpropq/ppl/dist"
	"github.com/backpropq/backpropq/q"
	"github.com/backpropq/backpropq/trace"
)

// Sizes of the network.
const (
	embedDim = 16
	hidden   = 64
)

// Addresses of the program's sites other than the tokens y[t].
const (
	costAddr   = "edit"
	greedyAddr = "greedy_edit"
)

// seq2seq is the encoder-decoder: a GRU reads the input digits, and a GRU
// decoder, fed the previous token and the encoder's final state at every
// step, gives the distribution of each output token.
type seq2seq struct {
	embed *nn.Embedding
	enc   *nn.GRUCell
	dec   *nn.GRUCell
	out   *nn.Linear
}

// newSeq2seq returns a network with weights drawn from rng, its parameters
// registered in store (so that the optimizer steps them and checkpoints
// hold them).
func newSeq2seq(rng *rand.Rand, store *nn.Store) (*seq2seq, error) {
	m := &seq2seq{
		embed: nn.NewEmbedding(vocab, embedDim, rng),
		enc:   nn.NewGRUCell(embedDim, hidden, rng),
		dec:   nn.NewGRUCell(embedDim+hidden, hidden, rng),
		out:   nn.NewLinear(hidden, outputs, rng),
	}
	for _, l := range []struct {
		prefix string
		layer  nn.Layer
	}{{"embed", m.embed}, {"enc", m.enc}, {"dec", m.dec}, {"out", m.out}} {
		if err := store.Register(l.prefix, l.layer); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// encode runs the encoder over the inputs of exs, each row stopping at its
// own length (a row's state is kept unchanged past its end), and returns
// the final states [B x hidden].
func (m *seq2seq) encode(tp *ad.Tape, exs []example) *ad.Tensor {
	b := len(exs)
	longest := 0
	for _, e := range exs {
		longest = max(longest, len(e.src))
	}
	h := tp.Zeros(b, hidden)
	ids := make([]float64, b)
	live := make([]float64, b)
	for i := range longest {
		for r, e := range exs {
			ids[r], live[r] = 0, 0
			if i < len(e.src) {
				ids[r], live[r] = float64(e.src[i]), 1
			}
		}
		x := m.embed.Forward(tp.FromData(b, 1, ids))
		h = ad.Where(tp.FromData(b, 1, live), m.enc.Forward(x, h), h)
	}
	return h
}

// chooser picks the tokens of decoder step t given the decoder state h,
// the output logits [B x outputs] and which rows are still decoding
// (alive[r] is 1 until row r has emitted the end token). It returns them
// as a [B x 1] tensor of token ids.
type chooser func(t int, h, logits *ad.Tensor, alive []float64) *ad.Tensor

// decode runs the decoder from the encoder states enc for steps steps, or
// fewer when stopEarly is set and every row has emitted the end token, and
// returns each row's tokens (the end token included when emitted) and the
// token tensors of the steps.
func (m *seq2seq) decode(enc *ad.Tensor, steps int, stopEarly bool, choose chooser) ([][]int, []*ad.Tensor) {
	tp := enc.Tape()
	b := enc.Rows()
	prev := tp.Full(b, 1, bos)
	h := enc
	alive := make([]float64, b)
	for r := range alive {
		alive[r] = 1
	}
	tokens := make([][]int, b)
	var ys []*ad.Tensor
	for t := range steps {
		in := ad.Concat(m.embed.Forward(prev), enc)
		h = m.dec.Forward(in, h)
		logits := m.out.Forward(h)
		y := choose(t, h, logits, alive)
		ys = append(ys, y)
		done := true
		for r, v := range y.Data() {
			if alive[r] == 0 {
				continue
			}
			tokens[r] = append(tokens[r], int(v))
			if int(v) == eos {
				alive[r] = 0
			} else {
				done = false
			}
		}
		if done && stopEarly {
			break
		}
		prev = y
	}
	return tokens, ys
}

// greedy picks the most probable token of every row.
func greedy(_ int, _, logits *ad.Tensor, _ []float64) *ad.Tensor {
	b, k := logits.Dims()
	ids := make([]float64, b)
	data := logits.Data()
	for r := range b {
		best := 0
		for j := 1; j < k; j++ {
			if data[r*k+j] > data[r*k+best] {
				best = j
			}
		}
		ids[r] = float64(best)
	}
	return logits.Tape().FromData(b, 1, ids)
}

// sampler returns a chooser that draws each token from the softmax of the
// logits with rng, outside any probabilistic program (for evaluation).
func sampler(rng *rand.Rand) chooser {
	return func(_ int, _, logits *ad.Tensor, _ []float64) *ad.Tensor {
		b, k := logits.Dims()
		ids := make([]float64, b)
		data := logits.Data()
		p := make([]float64, k)
		for r := range b {
			row := data[r*k : (r+1)*k]
			top := row[0]
			for _, v := range row {
				top = math.Max(top, v)
			}
			sum := 0.0
			for j, v := range row {
				p[j] = math.Exp(v - top)
				sum += p[j]
			}
			u := rng.Float64() * sum
			ids[r] = float64(k - 1)
			for j := range p {
				if u < p[j] {
					ids[r] = float64(j)
					break
				}
				u -= p[j]
			}
		}
		return logits.Tape().FromData(b, 1, ids)
	}
}

// editCosts returns the edit distance of each row's output (up to its end
// token) to its target.
func editCosts(tokens [][]int, exs []example) []float64 {
	return rowCosts(costs["edit"], tokens, exs)
}

// rowCosts returns the cost of each row's output (up to its end token)
// given its target.
func rowCosts(cost func(out, tgt []int) float64, tokens [][]int, exs []example) []float64 {
	out := make([]float64, len(exs))
	for r, e := range exs {
		out[r] = cost(untilEOS(tokens[r]), e.tgt)
	}
	return out
}

// program is what a training step runs on a chunk of examples.
type program struct {
	m   *seq2seq
	exs []example
	// cost is the sequence cost of an output given its target; nil means
	// the edit distance.
	cost func(out, tgt []int) float64
	// teacher makes the program observe the targets (teacher forcing,
	// maximum likelihood) instead of sampling the output.
	teacher bool
	// greedyCost records the cost of the greedy decode of each row at
	// greedyAddr, for the self-critical baseline.
	greedyCost bool
	// criticInputs hands each y[t]'s critic the decoder state (q.Input).
	criticInputs bool
}

// Run runs the program: it implements vi.Objective. The rows that have
// emitted their end token (or, under teacher forcing, whose target has
// ended) are masked at every later token site, so those sites' log-probs
// and costs count for nothing.
func (p program) Run(env ppl.Config, handlers ...ppl.Handler) (*trace.Trace, error) {
	if env.Batch != len(p.exs) {
		return nil, fmt.Errorf("seq2seq: the run has %d rows, the program %d examples", env.Batch, len(p.exs))
	}
	masks := map[string]*ad.Tensor{}
	mask := ppl.HandlerFunc(func(s *ppl.Site, next func(*ppl.Site)) {
		if mk, ok := masks[s.Addr]; ok {
			if s.Mask == nil {
				s.Mask = mk
			} else {
				s.Mask = ad.Mul(s.Mask, mk)
			}
		}
		next(s)
	})
	model := p.sample
	if p.teacher {
		model = p.observe
	}
	run := func(ctx *ppl.Ctx) { model(ctx, masks) }
	return trace.Run(run, append([]ppl.Handler{env, mask}, handlers...)...)
}

// sample is the stochastic decoder: y[t] ~ Categorical(softmax(W h_t)),
// and the cost is the edit distance of the output to the target (or
// p.cost).
func (p program) sample(ctx *ppl.Ctx, masks map[string]*ad.Tensor) {
	tp := ctx.Tape()
	cost := p.cost
	if cost == nil {
		cost = costs["edit"]
	}
	enc := p.m.encode(tp, p.exs)
	if p.greedyCost {
		tokens, _ := p.m.decode(enc, maxSteps, true, greedy)
		ppl.Deterministic(ctx, greedyAddr, tp.FromData(len(p.exs), 1, rowCosts(cost, tokens, p.exs)))
	}
	// Every run has all maxSteps token sites, so that the trace has one
	// shape: the critic of the template y[*] takes its input layout from
	// the first trace it sees, and a later, longer one would not fit it.
	tokens, ys := p.m.decode(enc, maxSteps, false, func(t int, h, logits *ad.Tensor, alive []float64) *ad.Tensor {
		addr := ppl.At("y", t)
		masks[ctx.Addr(addr)] = tp.FromData(len(alive), 1, append([]float64(nil), alive...))
		if p.criticInputs {
			q.Input(ctx, addr, h)
		}
		return ppl.Sample(ctx, addr, dist.Categorical{Logits: logits})
	})
	var prov ad.Provenance
	for _, y := range ys {
		prov = prov.Union(y.Provenance())
	}
	c := tp.FromData(len(p.exs), 1, rowCosts(cost, tokens, p.exs))
	ppl.Cost(ctx, costAddr, tp.WithProvenance(c, prov))
}

// observe is teacher forcing: the decoder reads the target's tokens and
// each y[t] observes the target's token t (the end token after the last
// digit).
func (p program) observe(ctx *ppl.Ctx, masks map[string]*ad.Tensor) {
	tp := ctx.Tape()
	b := len(p.exs)
	longest := 0
	for _, e := range p.exs {
		longest = max(longest, len(e.tgt)+1)
	}
	enc := p.m.encode(tp, p.exs)
	p.m.decode(enc, longest, true, func(t int, _, logits *ad.Tensor, _ []float64) *ad.Tensor {
		ids := make([]float64, b)
		live := make([]float64, b)
		for r, e := range p.exs {
			switch {
			case t < len(e.tgt):
				ids[r], live[r] = float64(e.tgt[t]), 1
			case t == len(e.tgt):
				ids[r], live[r] = eos, 1
			default:
				ids[r] = eos
			}
		}
		addr := ppl.At("y", t)
		masks[ctx.Addr(addr)] = tp.FromData(b, 1, live)
		y := tp.FromData(b, 1, ids)
		ppl.Observe(ctx, addr, dist.Categorical{Logits: logits}, y)
		return y
	})
}
