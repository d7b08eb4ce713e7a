// Package nn holds trainable parameters and what is built from them:
// a parameter [Store] keyed by name, initializers, the layers [Linear],
// [MLP], [GRUCell] and [Embedding], the optimizers [SGD] and [Adam],
// gradient-norm clipping, and checkpoint files.
//
// A [Param] is a named [ad.Var]: its value and gradient live outside any
// tape. A layer's Forward binds its parameters to the tape of its input
// with [ad.Tape.Var] and only reads their values, so one layer may run on
// several tapes in several goroutines at once; the gradients are then
// accumulated as [ad.Tape.ComputeGradients] describes.
//
// Parameters are created lazily by name, as pyro.param does:
// [Store.Param] creates a parameter from an [Initializer] on first use and
// returns the same one afterwards, and [Store.Register] adds a layer's
// parameters under a prefix. Optimizers keep their state (momentum,
// Adam's moments and step counts) keyed by parameter name, so a parameter
// created after training started gets its state on its first step, and a
// checkpoint restores state to the parameter of the same name.
//
// [SaveFile] writes the parameters and the optimizer state to a versioned,
// checksummed binary file, atomically; [LoadFile] checks the whole file
// before changing anything, so a truncated, corrupted or wrong-version file
// is an error that names the file and leaves the store and the optimizer
// as they were. A round trip is bit-exact.
//
// Constructors panic on programmer errors (a non-positive size, a nil
// random source), as gonum's constructors do; everything that depends on
// data or files returns an error. A [Store] is safe for concurrent use;
// optimizers are not.
package nn
