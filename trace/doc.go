// Package trace runs models written with package ppl under effect
// handlers, records what they did as a [Trace], and rebuilds from it the
// stochastic computation graph (SCG) of the paper's section 2, with the
// ancestors, frontiers and scopes of section 3.1 that Backprop-Q needs.
//
// # Running and recording
//
// [Run] runs a model once and returns its trace:
//
//	tr, err := trace.Run(model, trace.Seed(rng))
//
// A trace holds the sites in execution order (address, kind,
// distribution, value, log-prob, cost, scale, mask, parents) with lookup
// by address ([Trace.Site]). [Trace.Summary] prints them as a table.
//
// A training loop that owns one tape, one parameter store and one random
// source passes them as a [ppl.Config] to every run; a guide and a model
// run on one tape, the model replaying the guide:
//
//	env := ppl.Config{Tape: tp, Params: store, Rand: rng}
//	guideTr, err := trace.Run(guide, env)
//	modelTr, err := trace.Run(model, env, trace.Replay(guideTr),
//		ppl.Config{FirstID: guideTr.NextID()})
//
// # Handlers
//
// Handlers (see [ppl.Handler]) are listed in the order in which they see
// each site: the first is the closest to the model, and [Run]'s own recording
// comes after the last. Each handler's documentation says exactly what it
// does to a site's value, log-prob and provenance:
//
//   - [Record] records the sites it sees into a [Trace] (an inner view).
//   - [Replay] reuses the sample values of a recorded trace by address,
//     and its plates' subsamples; [ReplayValues] takes values from a map,
//     [ReplayPlates] replays the subsamples only.
//   - [Condition] observes given values: sample sites become observations.
//   - [Do] fixes a sample site's value without scoring it (an
//     intervention); the site leaves the graph.
//   - [Override] puts arbitrary tensors (relaxed or mean-field values) in
//     place of sample values; gradients flow through them and the graph
//     keeps its shape.
//   - [Substitute] replaces parameter values.
//   - [Block] hides sites from the handlers after it and from the trace.
//   - [Scale] and [Mask] weigh log-probs and costs (minibatches, padding).
//   - [Seed] sets the run's random source; [ppl.Config] sets the tape,
//     parameter store, batch size and first site id.
//
// Composition follows from the order: Run(model, Condition(v), Block(p))
// conditions a site and hides it, while Run(model, Block(p), Condition(v))
// hides it from the condition too, so it is drawn.
//
// # The graph
//
// [Trace.Graph] returns the SCG: the sample sites are its random
// variables, the cost and observe sites its costs, and its edges are read
// from provenance (see package ppl): X -> Y when Y's distribution
// parameters depend on X's value through deterministic computation, X -> f
// when the cost f does. [Graph] answers Parents, Children, Ancestors,
// Descendants, the costs reachable from a site ([Graph.CostsFrom]),
// [Graph.Frontier] and [Graph.Scope], and draws itself in Graphviz's DOT
// language ([Graph.DOT]) with the paper's notation: circles for random
// variables, double squares for costs.
//
// # Errors
//
// [Run] returns the library's errors, each a *[ppl.SiteError] naming the
// address; an ordinary panic in a model propagates unchanged.
package trace
