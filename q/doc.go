// Package q implements the Backprop-Q network of the paper (sections 3 and
// 4, appendix 3 and 4): local surrogate costs, Q-functions, for the
// stochastic sites of a stochastic computation graph (SCG), learned
// critics that approximate them, and their training backward through the
// graph.
//
// Where to begin: a critic ([Critic]) is a learned Q-function, the
// expected downstream cost of one stochastic site given its scope. A [Set]
// holds a model's critics, one per key, created on first sight and
// configured by [Config]. A [Network], built from a trace's graph by
// [Build] (or kept per trace shape by a [Cache]) and configured by
// [NetworkOptions], says which Q-functions the graph has, what each one's
// scope is and which values its update reads; it holds no critic. A training step evaluates the
// critics on a trace ([Set.Evaluate]), uses the values, and then trains
// the critics on them ([Set.Apply]). Most users meet this package through
// the Backprop-Q estimators of package infer and only construct a
// [Config].
//
// # The network
//
// [Build] turns the graph of a trace ([trace.Trace.Graph]) into a
// [Network]. For each stochastic site X and each cost f reachable from it
// there is a Q-function Q^f_X(Sc_X), the expected cost given the scope
// Sc_X = Fr^f of An_X ∪ {X} ([trace.Graph.Scope]); its update rules read
// the Q-functions of X's children for the same cost, or f itself where X
// feeds f directly (the cost is the root Q_f of footnote 3). Equivalent
// rules of one cost source are averaged and different sources summed
// (section 3.2). [NetworkOptions] select:
//
//   - Merge: the per-cost networks are merged wherever Theorem 3 allows, by
//     partition refinement: all sources of a site start in one Q-node, and a
//     node is split whenever a parent could not write its own target through
//     it. For stacked fully connected stochastic layers with a cost on every
//     node (appendix 3, Figure 4) this leaves one Q-function per node.
//   - Reduce: each per-cost network is first reduced to a rooted spanning
//     tree (Figure 3(c) shortest paths, or 3(d) chains).
//   - InlineCosts: a Q-function that is exactly a cost of its scope is
//     replaced by the cost.
//
// A [Node] lists its site, sources, scope, update rule ([Group]s of [Ref]s)
// and depth (l of Theorem 2). [Cache] keeps networks by trace shape
// ([ShapeOf]: the sequence of addresses, kinds and parents), and
// [Network.DOT] draws the network beside the SCG.
//
// # Critics
//
// A [Set] holds one [Critic] per key ([Set.Key]: site address and cost
// sources), created on first sight. [Tabular] critics serve small discrete
// scopes, [NetCritic]s (linear or MLP, trained with Adam) the others. A
// scope is featurized by a [Layout]: one-hot for Categorical sites, raw
// values for Bernoulli and continuous ones. [Config].Normalize makes
// NetCritics learn in normalized units ([NetCritic.NormalizeTargets]),
// which costs of hundreds of nats need. [Config].Templates such as "y[*]"
// make one critic serve every index, with the index as a feature and
// scope sites named relative to it (see [Set.Key]).
// A model hands extra critic inputs for a site with [Input]; their
// provenance must lie within the site's scope.
//
// # Training
//
// [Set.Update] (or [Set.Evaluate] then [Set.Apply]) runs Algorithm 1's
// backward pass: in topological order from the costs, each critic moves
// toward its sample target, the one-step target at [TD].Lambda 0 or the
// graph lambda-return with discount [TD].Gamma (appendix 4.1); [Errors]
// gives the lambda-return errors of fixed values. [Config].SlowTarget
// turns on the slow-tracking target of appendix 4.3. A [Buffer] with
// [Set.Replay] implements graph experience replay (appendix 4.2, eq. 15),
// re-sampling the children of each Q-node under the current parameters;
// [Set.ReplayRuns] replays any objective's runs (a guide's, under an
// ELBO), which is how infer.Critics.Replay uses it in training.
// [Advantages] gives advantage signals (appendix 4.4, Figures 8 and 9).
//
// # Persistence
//
// [Save] and [Load] write and read critics keyed by address with their
// layouts, atomically and with checksums (the container of the project's
// checkpoints), with each NetCritic's Adam state and output
// normalization and the slow-tracking copies, so that training resumes bit
// for bit. A changed scope is an error, or a fresh critic with
// [LoadOptions].Reinit; a grown model reuses the critics whose keys and
// layouts still match.
//
// # Use by a gradient estimator
//
// A Backprop-Q estimator of package infer (whose infer.Critics hold a
// Set, a Cache and a TD) is a thin layer on top:
//
//	net, err := cache.Network(tr.Graph())       // once per shape
//	vals, err := critics.Evaluate(net, tr)       // changes nothing
//	signal := vals.Local(net, site.Addr)         // Q_X summed over sources (eq. 1)
//	adv, err := q.Advantages(net, vals, td, ...) // or an advantage signal
//	...                                          // surrogate terms, backward, step
//	_, err = critics.Apply(net, vals, td)        // in the commit, once the step succeeded
//
// The learning signal of a site in mode "local cost" is [Values.Local];
// as a control variate with the actual return R, the same values are the c
// of eq. 27, and [Values.Forward] runs a [NetCritic] critic on the tape at
// relaxed values for the a*dQ/dz term. [Stats] gives each node's TD error
// for diagnostics. [Save] and [Load] (or [Set.MarshalSections] and
// [Set.PrepareLoad] inside a training checkpoint) persist the critics.
// Rows that a mask leaves out of a cost are left out of the updates of the
// Q-nodes that carry it.
//
// # Concurrency
//
// A [Network] is immutable and safe for concurrent use; a [Cache] is safe
// for concurrent use. A [Set], its critics, [Values] and a [Buffer] are not.
package q
