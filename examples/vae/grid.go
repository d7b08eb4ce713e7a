package main

import (
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"math"
	"math/rand/v2"

	"gonum.org/v1/gonum/mat"

	"github.com/backpropq/backpropq/ad"
	"github.com/backpropq/backpropq/examples/internal/mnist"
	"github.com/backpropq/backpropq/internal/atomicfile"
	"github.com/backpropq/backpropq/ppl"
)

// Grid layout: gridCols columns of side-pixel tiles with gridGap pixels
// between them.
const (
	side     = 28
	gridCols = 10
	gridRows = 10
	gridGap  = 2
)

// gridSize returns the width and height in pixels of a grid of rows x cols
// tiles.
func gridSize(rows, cols int) (w, h int) {
	return cols*side + (cols+1)*gridGap, rows*side + (rows+1)*gridGap
}

// gridImage draws tiles (each side*side gray levels in [0, 1], row-major)
// into a rows x cols grid on a mid-gray background.
func gridImage(tiles [][]float64, rows, cols int) *image.Gray {
	w, h := gridSize(rows, cols)
	img := image.NewGray(image.Rect(0, 0, w, h))
	for i := range img.Pix {
		img.Pix[i] = 128
	}
	for t, tile := range tiles {
		r, c := t/cols, t%cols
		x0, y0 := gridGap+c*(side+gridGap), gridGap+r*(side+gridGap)
		for p, v := range tile {
			img.SetGray(x0+p%side, y0+p/side, color.Gray{Y: uint8(math.Round(255 * min(max(v, 0), 1)))})
		}
	}
	return img
}

// writePNG writes img to path atomically.
func writePNG(path string, img image.Image) error {
	return atomicfile.Write(path, 0o644, func(w io.Writer) error { return png.Encode(w, img) })
}

// pixelMeans returns the Bernoulli means of logits, one slice per row.
func pixelMeans(logits *ad.Tensor) [][]float64 {
	rows := make([][]float64, logits.Rows())
	data := logits.Data()
	for i := range rows {
		row := make([]float64, mnist.Pixels)
		for j := range row {
			row[j] = 1 / (1 + math.Exp(-data[i*mnist.Pixels+j]))
		}
		rows[i] = row
	}
	return rows
}

// writeGrids writes prefix-recon.png, the first 50 images of split (binarized)
// in the odd columns with their reconstructions (the decoder's pixel means
// at a draw from the guide) in the even ones, and prefix-samples.png, the
// pixel means of 100 draws from the prior. It returns the two paths.
func (s *session) writeGrids(prefix string, split *mnist.Split) (recon, samples string, err error) {
	rng := rand.New(rand.NewPCG(s.meta.Seed, 0x67726964))
	n := min(gridRows*gridCols/2, split.Len())
	x := mat.NewDense(n, mnist.Pixels, nil)
	idx := make([]int, n)
	for i := range idx {
		idx[i] = i
	}
	split.Batch(x.RawMatrix().Data, idx, mnist.Dynamic, rng)
	tp := ad.NewTape()
	defer s.net.data.Delete(tp)
	var logits *ad.Tensor
	obj := s.net.elbo(x, false)
	obj.Model = s.net.model(x, &logits)
	if _, err := obj.Run(ppl.Config{Tape: tp, Rand: rng, Params: s.svi.Params, Batch: n}); err != nil {
		return "", "", fmt.Errorf("reconstructions: %w", err)
	}
	means := pixelMeans(logits)
	tiles := make([][]float64, 0, 2*n)
	for i := 0; i < n; i++ {
		tiles = append(tiles, x.RawRowView(i), means[i])
	}
	recon = prefix + "-recon.png"
	if err := writePNG(recon, gridImage(tiles, gridRows, gridCols)); err != nil {
		return "", "", err
	}
	tp.Reset()
	logits = nil
	if err := ppl.Run(s.net.model(nil, &logits), ppl.Config{Tape: tp, Rand: rng, Params: s.svi.Params, Batch: gridRows * gridCols}); err != nil {
		return "", "", fmt.Errorf("samples: %w", err)
	}
	samples = prefix + "-samples.png"
	if err := writePNG(samples, gridImage(pixelMeans(logits), gridRows, gridCols)); err != nil {
		return "", "", err
	}
	return recon, samples, nil
}
