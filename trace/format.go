package trace

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/backpropq/backpropq/ad"
	"github.com/backpropq/backpropq/ppl"
)

// DOT returns the graph in Graphviz's DOT language, drawn in the notation
// of the paper's appendix (Figure 10, after Schulman et al.): random
// variables are circles, costs are double-line squares, and an edge
// X -> Y means that Y depends on X. Nodes are labelled by address and
// appear in execution order. A cost whose parents were assumed (see
// [ppl.Site].AssumedParents) is labelled "(assumed)" and its incoming
// edges are dashed. The nodes inside plates are drawn inside a box per
// plate (a cluster labelled by the plate, see [ppl.Frame.String]), nested
// as the plates are.
func (g *Graph) DOT() string {
	var b strings.Builder
	b.WriteString("digraph scg {\n")
	clusters := 0
	g.writeNodes(&b, nil, &clusters)
	for i := range g.nodes {
		for _, c := range g.children[i] {
			if g.nodes[c].AssumedParents {
				fmt.Fprintf(&b, "\tn%d -> n%d [style=dashed];\n", i, c)
			} else {
				fmt.Fprintf(&b, "\tn%d -> n%d;\n", i, c)
			}
		}
	}
	b.WriteString("}\n")
	return b.String()
}

// writeNodes writes the nodes whose plates are exactly the stack plates,
// then a cluster for each plate one level deeper, in order of first
// appearance.
func (g *Graph) writeNodes(b *strings.Builder, plates ppl.Stack, clusters *int) {
	indent := strings.Repeat("\t", len(plates)+1)
	var inner []*ppl.Frame
	for i, s := range g.nodes {
		switch {
		case s.Plates.Common(plates) < len(plates):
		case len(s.Plates) == len(plates):
			label := s.Addr
			if s.AssumedParents {
				label += " (assumed)"
			}
			if s.Stochastic() {
				fmt.Fprintf(b, "%sn%d [label=%s, shape=circle];\n", indent, i, dotQuote(label))
			} else {
				fmt.Fprintf(b, "%sn%d [label=%s, shape=square, peripheries=2];\n", indent, i, dotQuote(label))
			}
		default:
			next := s.Plates[len(plates)]
			if !slices.ContainsFunc(inner, func(f *ppl.Frame) bool { return f.Name == next.Name }) {
				inner = append(inner, next)
			}
		}
	}
	for _, f := range inner {
		fmt.Fprintf(b, "%ssubgraph cluster_%d {\n%s\tlabel=%s;\n", indent, *clusters, indent, dotQuote(f.String()))
		*clusters++
		g.writeNodes(b, append(slices.Clone(plates), f), clusters)
		fmt.Fprintf(b, "%s}\n", indent)
	}
}

// dotQuote returns s as a DOT double-quoted string.
func dotQuote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch r {
		case '"', '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case '\n':
			b.WriteString(`\n`)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// WriteSummary writes a table of t's sites in execution order, one line
// each: address, kind, value shape, the addresses of its parents (sample
// sites in the trace, followed by "(assumed)" when they were assumed; see
// [ppl.Site].AssumedParents), and the mean over counted rows of its log-prob
// (sample and observe sites) or cost (cost sites), unscaled. Substituted
// sample sites have no log-prob and show "-".
func (t *Trace) WriteSummary(w io.Writer) error {
	_, byID := t.index()
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ADDRESS\tKIND\tSHAPE\tPARENTS\tMEAN LOG-PROB / COST")
	for _, s := range t.sites {
		shape := "-"
		if s.Value != nil {
			r, c := s.Value.Dims()
			shape = fmt.Sprintf("[%dx%d]", r, c)
		}
		if f := s.Frame(); f != nil {
			shape = f.String()
		} else if len(s.Plates) > 0 {
			shape += " in " + strings.Join(s.Plates.Names(), "/")
		}
		var parents []string
		for _, id := range s.Parents.IDs() {
			if p := byID[id]; p != nil {
				parents = append(parents, p.Addr)
			}
		}
		pa := "-"
		if len(parents) > 0 {
			pa = strings.Join(parents, ",")
		}
		if s.AssumedParents {
			pa += " (assumed)"
		}
		mean := "-"
		switch {
		case s.Kind == ppl.KindCost:
			mean = meanRows(s.Cost, s.Mask)
		case s.LogProb != nil:
			mean = meanRows(s.LogProb, s.Mask)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", s.Addr, s.Kind, shape, pa, mean)
	}
	return tw.Flush()
}

// Summary returns the table of [Trace.WriteSummary] as a string.
func (t *Trace) Summary() string {
	var b strings.Builder
	_ = t.WriteSummary(&b) // a strings.Builder does not fail
	return b.String()
}

// meanRows formats the mean of the [B x 1] column v over the rows where
// mask (nil: all) is non-zero.
func meanRows(v, mask *ad.Tensor) string {
	if v == nil {
		return "-"
	}
	sum, n := 0.0, 0
	for i := 0; i < v.Rows(); i++ {
		if mask != nil && mask.At(i, 0) == 0 {
			continue
		}
		sum += v.At(i, 0)
		n++
	}
	if n == 0 {
		return "-"
	}
	return fmt.Sprintf("%.4g", sum/float64(n))
}
