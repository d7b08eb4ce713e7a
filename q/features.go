package q

import (
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	"gonum.org/v1/gonum/blas/blas64"
	"gonum.org/v1/gonum/mat"

	"github.com/backpropq/backpropq/ad"
	"github.com/backpropq/backpropq/internal/arena"
	"github.com/backpropq/backpropq/ppl"
	"github.com/backpropq/backpropq/ppl/dist"
	"github.com/backpropq/backpropq/trace"
)

// FieldKind says how a field of a critic's input is encoded.
type FieldKind uint8

const (
	// Binary is the raw 0/1 value of a Bernoulli site, one column per event
	// column; each column has two cells.
	Binary FieldKind = iota + 1
	// OneHot is the value of a Categorical site (a class index) encoded as a
	// one-hot row of its K classes, or the value of a OneHotCategorical
	// site as it is; K cells.
	OneHot
	// Real is the raw value of any other site (continuous).
	Real
	// Index holds the indices of an address matched by a template
	// ("y[3]" gives 3), one column per index.
	Index
	// Extra holds extra input features handed by the model with [Input].
	Extra
)

// String returns the kind's name.
func (k FieldKind) String() string {
	switch k {
	case Binary:
		return "binary"
	case OneHot:
		return "onehot"
	case Real:
		return "real"
	case Index:
		return "index"
	case Extra:
		return "extra"
	}
	return "FieldKind(" + strconv.Itoa(int(k)) + ")"
}

// Field is one part of a critic's input: the value of a scope site, the
// template index or the extra inputs.
type Field struct {
	// Addr is the site's address; when the critic serves a template, its
	// indices are written relative to the site's ("y[*]@-1" is the
	// previous y), see [Set].
	Addr string
	Kind FieldKind
	// Width is the number of input columns.
	Width int
	// Classes is the number of classes of a OneHot field.
	Classes int
}

// Layout is the input layout of a critic: its fields in order.
type Layout struct {
	Fields []Field
}

// Width returns the number of input columns.
func (l Layout) Width() int {
	w := 0
	for _, f := range l.Fields {
		w += f.Width
	}
	return w
}

// Discrete reports whether every field takes finitely many values, so that
// a [Tabular] critic can serve the layout.
func (l Layout) Discrete() bool {
	for _, f := range l.Fields {
		if f.Kind == Real || f.Kind == Extra {
			return false
		}
	}
	return true
}

// Equal reports whether l and m have the same fields: addresses, kinds
// and widths, which their strings show.
func (l Layout) Equal(m Layout) bool {
	return slices.EqualFunc(l.Fields, m.Fields, func(a, b Field) bool {
		return a.Addr == b.Addr && a.Kind == b.Kind && a.Width == b.Width
	})
}

// String returns a compact description, e.g. "x1:binary1 y[*]:onehot3";
// two layouts are equal when their strings are.
func (l Layout) String() string {
	parts := make([]string, len(l.Fields))
	for i, f := range l.Fields {
		parts[i] = fmt.Sprintf("%s:%s%d", f.Addr, f.Kind, f.Width)
	}
	return strings.Join(parts, " ")
}

// InputSuffix is appended to a site's address to name the deterministic
// site that holds its extra critic inputs (see [Input]).
const InputSuffix = "@q"

// Input hands the critics of the site name (in ctx's scope) extra input
// features x, [B x D]: a compact summary of the scope such as an RNN's
// hidden state ("compact input arguments", section 1). It records x as the
// deterministic site name+[InputSuffix] and returns it unchanged. When a
// network is evaluated, x's provenance must lie within the Q-node's scope,
// so that a critic never sees what it must not; otherwise evaluation fails
// with an error naming the offending site. A site with inputs is
// featurized as its own value followed by x, in place of the whole scope.
func Input(ctx *ppl.Ctx, name string, x *ad.Tensor) *ad.Tensor {
	return ppl.Deterministic(ctx, name+InputSuffix, x)
}

var indexRE = regexp.MustCompile(`\[(-?[0-9]+)\]`)

// Template returns addr with every index replaced by "*" ("y[3]/z[1]"
// gives "y[*]/z[*]") and the indices.
func Template(addr string) (string, []int) {
	if !strings.Contains(addr, "[") {
		return addr, nil
	}
	var idx []int
	t := indexRE.ReplaceAllStringFunc(addr, func(m string) string {
		n, _ := strconv.Atoi(m[1 : len(m)-1])
		idx = append(idx, n)
		return "[*]"
	})
	return t, idx
}

// fieldOf returns the field of site s: Binary or OneHot for a
// dist.Finite distribution (a class index is featurized one-hot), Real
// otherwise.
func fieldOf(s *ppl.Site, name string) Field {
	_, d := s.Value.Dims()
	if f, ok := s.Dist.(dist.Finite); ok {
		switch f.Encoding() {
		case dist.Binary:
			return Field{Addr: name, Kind: Binary, Width: d}
		case dist.Index:
			k := f.Classes()
			return Field{Addr: name, Kind: OneHot, Width: k, Classes: k}
		case dist.OneHot:
			return Field{Addr: name, Kind: OneHot, Width: d, Classes: d}
		}
	}
	return Field{Addr: name, Kind: Real, Width: d}
}

// featurizer turns the values of a Q-node's scope in a trace into a
// critic's input rows.
type featurizer struct {
	layout Layout
	sites  []*ppl.Site // per field; nil for Index
	index  []int
	rows   int
	plates ppl.Stack // the node's site's, to which every field moves
	// tape is the run's: the input rows live in its memory.
	tape *ad.Tape
}

// denseRecords are the headers of the input rows on each tape.
var denseRecords = arena.NewKey[mat.Dense]()

// newFeaturizer prepares the input of node nd in trace tr; templated says
// whether the critic is shared by a template.
func newFeaturizer(nd *Node, tr *trace.Trace, g *trace.Graph, templated bool) (*featurizer, error) {
	own := g.Site(nd.Site)
	fz := &featurizer{rows: own.Value.Rows(), plates: own.Plates, tape: own.Value.Tape()}
	_, siteIdx := Template(nd.Site)
	name := func(a string) string {
		if templated {
			return relativeName(a, siteIdx)
		}
		return a
	}
	scope := nd.Scope
	in := tr.Site(nd.Site + InputSuffix)
	if in != nil {
		allowed := map[int]bool{}
		for _, a := range nd.Scope {
			allowed[g.Site(a).ID] = true
		}
		for _, id := range in.Parents.IDs() {
			if !allowed[id] {
				what := fmt.Sprintf("id %d", id)
				if s := tr.ByID(id); s != nil {
					what = strconv.Quote(s.Addr)
				}
				return nil, fmt.Errorf("q: site %q: critic inputs %q depend on site %s, outside the scope %v",
					nd.Site, in.Addr, what, nd.Scope)
			}
		}
		scope = []string{nd.Site}
	}
	for _, a := range scope {
		s := g.Site(a)
		fz.layout.Fields = append(fz.layout.Fields, fieldOf(s, name(a)))
		fz.sites = append(fz.sites, s)
	}
	if templated {
		_, idx := Template(nd.Site)
		if len(idx) > 0 {
			fz.layout.Fields = append(fz.layout.Fields, Field{Addr: "index", Kind: Index, Width: len(idx)})
			fz.sites = append(fz.sites, nil)
			fz.index = idx
		}
	}
	if in != nil {
		r, c := in.Value.Dims()
		if r != fz.rows {
			return nil, fmt.Errorf("q: site %q: critic inputs have %d rows, the site %d", nd.Site, r, fz.rows)
		}
		fz.layout.Fields = append(fz.layout.Fields, Field{Addr: name(in.Addr), Kind: Extra, Width: c})
		fz.sites = append(fz.sites, in)
	}
	return fz, nil
}

// relativeName templates address a for a critic that serves a template:
// its indices become offsets from the site's indices when it has as many
// ("y[2]" for the site "y[3]" gives "y[*]@-1"), so that one name means the
// same relative site at every index; otherwise every index becomes "*".
func relativeName(a string, siteIdx []int) string {
	t, idx := Template(a)
	if len(idx) == 0 || len(idx) != len(siteIdx) {
		return t
	}
	var b strings.Builder
	b.WriteString(t)
	for i, k := range idx {
		if i == 0 {
			b.WriteByte('@')
		} else {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Itoa(k - siteIdx[i]))
	}
	return b.String()
}

// unionLayout returns a layout holding the fields of every layout in ls:
// the scope fields sorted by name, then the index and extra fields. Fields
// of one name must agree; otherwise it returns an error.
func unionLayout(ls []Layout) (Layout, error) {
	seen := map[string]Field{}
	var scope, tail []Field
	for _, l := range ls {
		for _, f := range l.Fields {
			if g, ok := seen[f.Addr]; ok {
				if g != f {
					return Layout{}, fmt.Errorf("field %q is %s%d in one node and %s%d in another", f.Addr, g.Kind, g.Width, f.Kind, f.Width)
				}
				continue
			}
			seen[f.Addr] = f
			if f.Kind == Index || f.Kind == Extra {
				tail = append(tail, f)
			} else {
				scope = append(scope, f)
			}
		}
	}
	sort.SliceStable(scope, func(i, j int) bool { return scope[i].Addr < scope[j].Addr })
	return Layout{Fields: append(scope, tail...)}, nil
}

// into writes the input rows in layout, a superset of fz.layout, into a
// new [B x W] matrix: the columns of fields fz lacks are zero. It returns an
// error if a field of fz is not in layout.
func (fz *featurizer) into(layout Layout) (*mat.Dense, error) {
	if layout.Equal(fz.layout) {
		return fz.features(), nil
	}
	at := map[string]int{}
	col := 0
	for _, f := range layout.Fields {
		at[f.Addr+"\x00"+f.Kind.String()+strconv.Itoa(f.Width)] = col
		col += f.Width
	}
	own := fz.features()
	x := mat.NewDense(fz.rows, max(col, 1), nil)
	src := 0
	for _, f := range fz.layout.Fields {
		dst, ok := at[f.Addr+"\x00"+f.Kind.String()+strconv.Itoa(f.Width)]
		if !ok {
			return nil, fmt.Errorf("field %s:%s%d is not in the critic's layout %q", f.Addr, f.Kind, f.Width, layout.String())
		}
		for r := 0; r < fz.rows; r++ {
			for j := 0; j < f.Width; j++ {
				x.Set(r, dst+j, own.At(r, src+j))
			}
		}
		src += f.Width
	}
	return x, nil
}

// features writes the input rows into a new [B x W] matrix.
func (fz *featurizer) features() *mat.Dense {
	w := max(fz.layout.Width(), 1)
	// The rows live until the run's tape is reset, as the values do.
	var x *mat.Dense
	if fz.tape == nil {
		x = mat.NewDense(fz.rows, w, nil)
	} else {
		x = denseRecords.Get(fz.tape)
		x.SetRawMatrix(blas64.General{Rows: fz.rows, Cols: w, Stride: w, Data: fz.tape.Scratch(fz.rows * w)})
	}
	col := 0
	for fi, f := range fz.layout.Fields {
		s := fz.sites[fi]
		switch {
		case f.Kind == Index:
			for r := 0; r < fz.rows; r++ {
				for j, v := range fz.index {
					x.Set(r, col+j, float64(v))
				}
			}
		case f.Kind == OneHot && s.Value.Cols() == 1 && f.Classes > 1:
			val := moveValue(s, fz.plates)
			for r := 0; r < fz.rows; r++ {
				k := int(val.At(r, 0))
				if k >= 0 && k < f.Classes {
					x.Set(r, col+k, 1)
				}
			}
		default:
			val := moveValue(s, fz.plates)
			for r := 0; r < fz.rows; r++ {
				for j := 0; j < f.Width; j++ {
					x.Set(r, col+j, val.At(r, j))
				}
			}
		}
		col += f.Width
	}
	return x
}
