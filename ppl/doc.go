// Package ppl is the modeling API: what users write probabilistic models
// with. A model is an ordinary Go function of a [Ctx]; data reaches it by
// closure:
//
//	model := func(ctx *ppl.Ctx) {
//		tp := ctx.Tape()
//		prior := ppl.Param(ctx, "prior", 1, 4, nn.Zeros{})
//		h := ppl.Sample(ctx, "h", dist.BernoulliLogits(ppl.Expand(ctx, prior)))
//		logits := decoder.Forward(h)
//		ppl.Observe(ctx, "x", dist.BernoulliLogits(logits), x)
//		ppl.Cost(ctx, "sparsity", ad.RowSum(h))
//	}
//
// The package trace runs a model and records what it did (trace.Run);
// this package defines the primitives and the protocol they speak.
//
// # Primitives
//
// [Sample] draws a random variable, [Observe] scores data under a
// distribution, [Cost] records a cost to minimize, [Param] creates or
// fetches a trainable parameter, [Module] registers an nn layer's
// parameters, and [Deterministic] names an intermediate value. Every
// tensor is batched: dimension 0 holds B independent particles or data
// points, a value is [B x D], a log-prob or cost is [B x 1]. [Expand]
// broadcasts a [1 x D] parameter to the batch.
//
// # Plates
//
// [Plate] declares an independence context: the data points of a data
// set, the groups and their members of a hierarchical model. Outside every
// plate a value has P rows, one per particle (the run's batch); inside a
// plate of n present members it has P*n rows, and nested plates multiply
// again, particle-major with the innermost plate varying fastest (see
// [Stack]). A site records the plates it is inside ([Site].Plates). Values
// cross plate levels explicitly, keeping their gradients and provenance:
// [Broadcast] brings a global value into a plate, [SumOut] sums a plate's
// rows out, [Data] brings a data set's rows in, and [Move] does either for
// whole plate stacks. A subsampled plate ([Subsample], [SubsampleIndices])
// weighs the sites inside it, and only those, by N/n, so that minibatches
// estimate the whole data set's objective while global latents keep their
// full prior. The learning signal of a site inside a plate holds, in each
// member's row, that member's costs and the costs outside the plate it
// reaches; a global site's holds the sum over its particle's members.
//
// # Addresses
//
// Each site has an address, unique within a run: [Ctx.Scope] returns a
// view of the context whose sites are prefixed by a name and a slash
// ("decoder/fc/W"), and [At] names the members of an indexed family
// ("y[3]"). Parameters are keyed in the store by their full address.
//
// # Provenance and the stochastic computation graph
//
// Every sample site gets a run-local integer id, and its value carries the
// provenance {id} (see ad.Provenance): every tensor computed from it
// depends on the site. A site's parents are then read off the data flow
// that actually ran. For a sample site they are the provenance of its
// distribution's parameters: the [dist.Distribution] interface does not
// expose its parameters, so the default behaviour takes the provenance of
// log p(value) and removes the site's own id, which is exact because the
// id is new. For an observe site they are the provenance of its log-prob,
// for a cost the provenance of the cost. Parameters carry no provenance,
// so a parameter shared by several distributions and costs (section 3.1
// of the paper, "SCGs with shared parameters") never makes one site the
// parent of another. Control flow, loops and helper functions need no
// declarations: the graph is what ran.
//
// Values read out of tensors into Go (with At or Data) lose their
// provenance. [Lift] runs a Go function on tensor values and returns a
// tensor, without gradient, that carries the union of its inputs'
// provenance. A cost or observation whose value carries no provenance, in
// a run that sampled sites before it, is taken to depend on all of them
// (the learning signals stay unbiased, only noisier) and is marked
// [Site].AssumedParents; [Config].StrictProvenance makes it an error
// instead.
//
// # Effect handlers
//
// A primitive builds a [Site] message and sends it through the run's
// handlers (see [Handler]), each of which wraps the next, in the style of
// net/http middleware; after the last handler the default behaviour samples,
// scores, validates and sets provenance. Handlers replay, condition,
// intervene, substitute, block, scale and mask (package trace implements
// them); [Configurer] handlers such as [Config] set up the run's tape,
// random source, parameter store and batch size.
//
// # Errors
//
// A model cannot return an error from every primitive, so primitives panic
// with a *[SiteError] that names the site's address: invalid distribution
// parameters, a value outside the support, a duplicate address, a cost
// that is not [B x 1], a batch that differs from the run's, a value with
// the rows of another plate level (naming both plate stacks). [Run] (and
// trace.Run) recovers it and returns it as an error; it does the same for
// the shape panics of package ad (*ad.ShapeError), naming the site being
// processed or, between sites, the last site started. Any other panic
// propagates unchanged. A primitive called with a nil [Ctx], or with one
// kept after its run returned, panics with a message saying so.
//
// # Concurrency and randomness
//
// A run and its Ctx belong to one goroutine. Two runs on different tapes
// may proceed concurrently if they share no random source; a parameter
// store is safe for concurrent use. Randomness comes only from the
// *rand.Rand in the run's [Config], so the same seed gives the same run.
package ppl
