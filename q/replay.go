package q

import (
	"fmt"

	"github.com/backpropq/backpropq/ad"
	"github.com/backpropq/backpropq/internal/ckpt"
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

// Shape returns the shape ([ShapeOf]) of the traces the buffer holds, ""
// while it is empty.
func (b *Buffer) Shape() string { return b.shape }

// Len returns the number of rows held.
func (b *Buffer) Len() int { return len(b.rows) }

// Add stores every row of tr, replacing the oldest rows when full. A trace
// of another shape than the buffer's first is an error.
func (b *Buffer) Add(tr *trace.Trace) error {
	g := tr.Graph()
	for _, a := range g.Stochastic() {
		if len(g.Site(a).Plates) > 0 {
			return fmt.Errorf("q: Buffer.Add: site %q is inside plates, which replay does not support", a)
		}
	}
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
	run := func(env ppl.Config, handlers ...ppl.Handler) (*trace.Trace, error) {
		return trace.Run(model, append([]ppl.Handler{env}, handlers...)...)
	}
	return s.ReplayRuns(net, buf, run, env, opts)
}

// Runner runs a stochastic computation once under env and handlers and
// returns its trace: trace.Run of a model, or the Run method of an
// objective of package vi (an ELBO runs its guide under the handlers).
type Runner func(env ppl.Config, handlers ...ppl.Handler) (*trace.Trace, error)

// ReplayRuns is [Set.Replay] with the re-runs made by run, so that traces
// of any objective can be replayed: the values of the sites that are not
// descendants of a Q-node's site are fixed by trace.ReplayValues among
// run's handlers.
func (s *Set) ReplayRuns(net *Network, buf *Buffer, run Runner, env ppl.Config, opts ReplayOptions) (*Stats, error) {
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
		for _, d := range net.scg.descendants[nd.Site] {
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
		renv := env
		renv.Tape, renv.Batch = tp, n
		tr, err := run(renv, trace.ReplayValues(values))
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

// MarshalBinary encodes the buffer's capacity, shape and rows, so that a
// training run that replays resumes bit for bit.
func (b *Buffer) MarshalBinary() ([]byte, error) {
	var e ckpt.Encoder
	e.Uint32(uint32(b.capacity))
	e.String(b.shape)
	e.Uint32(uint32(len(b.sites)))
	for i, a := range b.sites {
		e.String(a)
		e.Uint32(uint32(b.cols[i]))
	}
	e.Uint32(uint32(len(b.rows)))
	e.Uint32(uint32(b.next))
	for _, row := range b.rows {
		for _, v := range row {
			e.Float64s(v)
		}
	}
	return e.Bytes(), nil
}

// UnmarshalBinary restores what MarshalBinary returned; on error b is
// unchanged.
func (b *Buffer) UnmarshalBinary(data []byte) error {
	d := ckpt.NewDecoder("q: Buffer", data)
	var n Buffer
	n.capacity = int(d.Uint32())
	n.shape = d.String()
	for range d.Count(8) {
		n.sites = append(n.sites, d.String())
		n.cols = append(n.cols, int(d.Uint32()))
	}
	rowBytes := 0
	for _, c := range n.cols {
		rowBytes += 8 * c
	}
	rows, next := d.Count(max(rowBytes, 1)), int(d.Uint32())
	for r := 0; r < rows && d.Err() == nil; r++ {
		row := make([][]float64, len(n.sites))
		for i := range row {
			row[i] = d.Float64s(uint64(n.cols[i]))
		}
		n.rows = append(n.rows, row)
	}
	if d.Err() == nil && (n.capacity <= 0 || rows > n.capacity || next < 0 || next >= max(n.capacity, 1) || (rows < n.capacity && next != 0)) {
		d.Fail("capacity %d, %d rows, next %d", n.capacity, rows, next)
	}
	if err := d.Finish(); err != nil {
		return err
	}
	n.next = next
	*b = n
	return nil
}
