package nn_test

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"

	"gonum.org/v1/gonum/mat"

	"github.com/backpropq/backpropq/ad"
	"github.com/backpropq/backpropq/nn"
)

func ExampleStore_Param() {
	s := nn.NewStore()
	rng := rand.New(rand.NewPCG(1, 2))
	// The first use creates the parameter from the initializer.
	loc, _ := s.Param("loc", 1, 2, nn.Constant(0.5), rng)
	fmt.Println(loc.Name, mat.Formatted(loc.Value))
	// Later uses return the same parameter.
	again, _ := s.Param("loc", 1, 2, nn.Zeros{}, rng)
	fmt.Println(again == loc)
	// Asking for another shape is an error.
	_, err := s.Param("loc", 2, 2, nn.Zeros{}, rng)
	fmt.Println(err)
	// Output:
	// loc [0.5  0.5]
	// true
	// nn: parameter "loc": requested shape [2x2] but the store holds [1x2]
}

func ExampleStore_Register() {
	s := nn.NewStore()
	enc := nn.NewMLP([]int{4, 8, 2}, []nn.Activation{nn.Tanh}, rand.New(rand.NewPCG(1, 2)))
	if err := s.Register("encoder", enc); err != nil {
		fmt.Println(err)
		return
	}
	for _, p := range s.Params() {
		r, c := p.Value.Dims()
		fmt.Printf("%s [%dx%d]\n", p.Name, r, c)
	}
	// Output:
	// encoder/0/W [4x8]
	// encoder/0/b [1x8]
	// encoder/1/W [8x2]
	// encoder/1/b [1x2]
}

func ExampleLinear() {
	l := nn.NewLinear(3, 2, rand.New(rand.NewPCG(1, 2)))
	tp := ad.NewTape()
	x := tp.Full(5, 3, 1) // a batch of 5 inputs
	y := l.Forward(x)
	fmt.Println(y.Dims())
	// Output: 5 2
}

func ExampleMLP() {
	rng := rand.New(rand.NewPCG(1, 2))
	net := nn.NewMLP([]int{2, 16, 1}, []nn.Activation{nn.Tanh}, rng)
	opt := nn.NewAdam(0.05)
	// Fit y = x0·x1 on four points.
	tp := ad.NewTape()
	for range 500 {
		tp.Reset()
		x := tp.FromData(4, 2, []float64{-1, -1, -1, 1, 1, -1, 1, 1})
		y := tp.FromData(4, 1, []float64{1, -1, -1, 1})
		loss := ad.Mean(ad.Square(ad.Sub(net.Forward(x), y)))
		for _, p := range net.Params() {
			p.ZeroGrad()
		}
		tp.Backward(loss)
		if err := opt.Step(net.Params()); err != nil {
			fmt.Println(err)
			return
		}
	}
	tp.Reset()
	out := net.Forward(tp.FromData(2, 2, []float64{-1, 1, 1, 1}))
	fmt.Printf("%.1f %.1f\n", out.At(0, 0), out.At(1, 0))
	// Output: -1.0 1.0
}

func ExampleGRUCell() {
	rng := rand.New(rand.NewPCG(1, 2))
	cell := nn.NewGRUCell(3, 4, rng)
	tp := ad.NewTape()
	h := tp.Zeros(1, 4) // one initial state shared by the batch
	for t := range 3 {
		x := tp.Full(2, 3, float64(t)) // a batch of 2 inputs at step t
		h = cell.Forward(x, h)
	}
	fmt.Println(h.Dims())
	// Output: 2 4
}

func ExampleEmbedding() {
	emb := nn.NewEmbedding(10, 3, rand.New(rand.NewPCG(1, 2)))
	tp := ad.NewTape()
	ids := tp.FromData(2, 1, []float64{7, 2})
	rows := emb.Forward(ids)
	fmt.Println(mat.Equal(rows.Value().RowView(0), emb.W.Value.RowView(7)))
	// Output: true
}

func ExampleSGD() {
	w := nn.NewParam("w", mat.NewDense(1, 1, []float64{1}))
	opt := &nn.SGD{LR: 0.1, Momentum: 0.9}
	for range 2 {
		w.Grad.Set(0, 0, 1) // a constant gradient
		if err := opt.Step([]*nn.Param{w}); err != nil {
			fmt.Println(err)
		}
	}
	// Velocities 1 and 1.9: w = 1 - 0.1 - 0.19.
	fmt.Printf("%.2f\n", w.Value.At(0, 0))
	// Output: 0.71
}

func ExampleAdam() {
	w := nn.NewParam("w", mat.NewDense(1, 1, []float64{1}))
	opt := nn.NewAdam(0.1)
	w.Grad.Set(0, 0, 1e-3)
	if err := opt.Step([]*nn.Param{w}); err != nil {
		fmt.Println(err)
	}
	// Bias correction makes the first step LR in size, whatever the
	// gradient's scale.
	fmt.Printf("%.3f %d\n", w.Value.At(0, 0), opt.State()["w"].Step)

	// A non-finite gradient is an error and changes nothing.
	w.Grad.Set(0, 0, math.Inf(1))
	fmt.Println(opt.Step([]*nn.Param{w}))
	// Output:
	// 0.900 1
	// nn: Adam: parameter "w": gradient is +Inf at row 0, column 0
}

func ExampleClipGradNorm() {
	a := nn.NewParam("a", mat.NewDense(1, 2, nil))
	b := nn.NewParam("b", mat.NewDense(1, 1, nil))
	a.Grad.SetRow(0, []float64{3, 4})
	b.Grad.Set(0, 0, 12)
	norm := nn.ClipGradNorm([]*nn.Param{a, b}, 6.5)
	fmt.Println(norm, a.Grad.RawRowView(0), b.Grad.At(0, 0))
	// Output: 13 [1.5 2] 6
}

func ExampleSaveFile() {
	dir, err := os.MkdirTemp("", "nn-example")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "model.ckpt")

	s := nn.NewStore()
	if _, err := s.Param("w", 2, 2, nn.Constant(1.5), nil); err != nil {
		fmt.Println(err)
		return
	}
	if err := nn.SaveFile(path, s, nn.NewAdam(0.01)); err != nil {
		fmt.Println(err)
		return
	}

	restored := nn.NewStore()
	if err := nn.LoadFile(path, restored, nn.NewAdam(0.01)); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(mat.Formatted(restored.Get("w").Value))

	// A damaged file is an error and leaves the store as it was.
	data, _ := os.ReadFile(path)
	os.WriteFile(path, data[:len(data)-1], 0o644)
	err = nn.LoadFile(path, restored, nil)
	fmt.Println(err != nil, restored.Get("w").Value.At(0, 0))
	// Output:
	// ⎡1.5  1.5⎤
	// ⎣1.5  1.5⎦
	// true 1.5
}
