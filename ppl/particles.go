package ppl

import (
	"errors"
	"fmt"

	"github.com/backpropq/backpropq/ad"
)

// Tile returns t with each row repeated so that the result has the run's
// batch of rows: row i of the result is row i/k of t, with k the batch
// divided by t's rows. It lets one model serve runs of one row per data
// point and runs of k particles per data point (importance-weighted bounds,
// several samples per data point), laid out batch-major: the k rows of a
// data point are consecutive. Data closed over by a model are tiled before
// they meet a distribution:
//
//	ppl.Observe(ctx, "x", dist.BernoulliLogits(logits), ppl.Tile(ctx, x))
//
// Tile returns t itself when it already has the batch's rows; otherwise a
// new tensor with t's gradient path and provenance. It panics with a
// [SiteError] when the batch size is not yet known (set [Config].Batch) or
// is not a multiple of t's rows, and inside a plate, whose rows are
// particle-major (use [Data] there).
func Tile(ctx *Ctx, t *ad.Tensor) *ad.Tensor {
	ctx.check("Tile")
	if len(ctx.plates) > 0 {
		panic(&SiteError{Addr: ctx.run.current, After: true, Err: fmt.Errorf("Tile: inside plates %v; ppl.Data brings data rows into a plate", ctx.plates)})
	}
	b := ctx.run.cfg.Batch
	rows, cols := t.Dims()
	switch {
	case b == 0:
		panic(&SiteError{Addr: ctx.run.current, After: true, Err: errors.New("Tile: the batch size is not known yet; set ppl.Config.Batch")})
	case rows == b:
		return t
	case rows == 0 || b%rows != 0:
		panic(&SiteError{Addr: ctx.run.current, After: true, Err: fmt.Errorf("Tile: tensor has %d rows, the batch %d is not a multiple", rows, b)})
	}
	k := b / rows
	var buf [16]*ad.Tensor
	copies := buf[:0]
	for range k {
		copies = append(copies, t)
	}
	// [rows x k*cols] in row-major order is row 0 k times, then row 1 k
	// times, ...: viewed as [b x cols] it is the batch-major tiling.
	return ad.Reshape(ad.Concat(copies...), b, cols)
}
