package q

import (
	"fmt"

	"github.com/backpropq/backpropq/ad"
	"github.com/backpropq/backpropq/ppl"
	"github.com/backpropq/backpropq/trace"
)

// Buffer is a graph experience-replay buffer (section 4.1, appendix 4.2):
// it keeps the sampled values of the stochastic sites of the last rows
// (up to its capacity) of traces of one shape. A row holds, for every
// Q-node Q_X, the tuple of eq. 15: the scope of X and the co-parents of
// X's children, since it holds every site. A Buffer is not safe for
// concurrent use.
type Buffer struct {
	capacity int
	shape    string
	sites    []string
	cols     []int
	rows     [][][]float64 // ring of rows: per site, the row's values
	next     int
}

// NewBuffer returns an empty buffer of capacity rows. It panics if
// capacity is not positive.
func NewBuffer(capacity int) *Buffer {
	if capacity <= 0 {
		panic("q: NewBuffer: capacity must be positive")
	}
	return &Buffer{capacity: capacity}
}

// Len returns the number of rows held.
func (b *Buffer) Len() int { return len(b.rows) }

// Add stores every row of tr, replacing the oldest rows when full. A trace
// of another shape than the buffer's first is an error.
func (b *Buffer) Add(tr *trace.Trace) error {
	g := tr.Graph()
	shape := ShapeOf(g)
	if b.shape == "" {
		b.shape = shape
		b.sites = g.Stochastic()
		for _, a := range b.sites {
			b.cols = append(b.cols, g.Site(a).Value.Cols())
		}
	} else if shape != b.shape {
		return fmt.Errorf("q: Buffer.Add: trace shape differs from the buffer's")
	}
	for r := 0; r < tr.Batch(); r++ {
		row := make([][]float64, len(b.sites))
		for i, a := range b.sites {
			v := g.Site(a).Value
			row[i] = make([]float64, b.cols[i])
			for j := range row[i] {
				row[i][j] = v.At(r, j)
			}
		}
		if len(b.rows) < b.capacity {
			b.rows = append(b.rows, row)
		} else {
			b.rows[b.next] = row
			b.next = (b.next + 1) % b.capacity
		}
	}
	return nil
}

// ReplayOptions configure [Set.Replay].
type ReplayOptions struct {
	// Rows is the number of experiences drawn per Q-node; default 64.
	Rows int
	// Draws is the number of times each experience's children are
	// re-sampled (n of eq. 15); default 1.
	Draws int
	// Gamma is the discount; zero means 1.
	Gamma float64
}

// Replay takes one replay step for every Q-node of net (appendix 4.2,
// eq. 15): it draws experiences uniformly from buf with env.Rand, re-runs
// model with the values of every site that is not a descendant of X fixed
// to the experience's (trace.ReplayValues), so that X's children and
// everything after them are re-sampled under the current parameters, and
// moves Q_X toward its one-step target read in that run. env supplies the
// parameter store and random source of the re-runs (each on a new tape,
// with env.Batch replaced). A re-run of another shape than net's is an
// error.
func (s *Set) Replay(net *Network, buf *Buffer, model ppl.Model, env ppl.Config, opts ReplayOptions) (*Stats, error) {
	if buf.Len() == 0 {
		return nil, fmt.Errorf("q: Replay: empty buffer")
	}
	if buf.shape != net.shape {
		return nil, fmt.Errorf("q: Replay: buffer shape differs from the network's")
	}
	if env.Rand == nil {
		return nil, fmt.Errorf("q: Replay: env.Rand is nil")
	}
	if opts.Rows <= 0 {
		opts.Rows = 64
	}
	if opts.Draws <= 0 {
		opts.Draws = 1
	}
	td := TD{Gamma: opts.Gamma}
	if err := td.check(); err != nil {
		return nil, err
	}
	st := &Stats{MSE: make([]float64, len(net.Nodes))}
	n := opts.Rows * opts.Draws
	for i, nd := range net.Nodes {
		desc := map[string]bool{}
		for _, d := range net.graph.Descendants(nd.Site) {
			desc[d] = true
		}
		picks := make([]int, opts.Rows)
		for k := range picks {
			picks[k] = env.Rand.IntN(buf.Len())
		}
		tp := ad.NewTape()
		values := map[string]*ad.Tensor{}
		for si, a := range buf.sites {
			if desc[a] {
				continue
			}
			c := buf.cols[si]
			data := make([]float64, 0, n*c)
			for _, p := range picks {
				for range opts.Draws {
					data = append(data, buf.rows[p][si]...)
				}
			}
			values[a] = tp.FromData(n, c, data)
		}
		run := env
		run.Tape, run.Batch = tp, n
		tr, err := trace.Run(model, run, trace.ReplayValues(values))
		if err != nil {
			return nil, fmt.Errorf("q: Replay: %w", err)
		}
		v, err := s.Evaluate(net, tr)
		if err != nil {
			return nil, fmt.Errorf("q: Replay: %w", err)
		}
		v.install()
		one, err := s.sequential(net, v, td, []int{i})
		if err != nil {
			return nil, err
		}
		st.MSE[i] = one.MSE[i]
	}
	return st, nil
}
