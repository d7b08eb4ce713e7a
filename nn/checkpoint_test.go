package nn

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"gonum.org/v1/gonum/mat"

	"github.com/backpropq/backpropq/ad"
	"github.com/backpropq/backpropq/internal/ckpt"
)

// trained returns a store with an MLP, a GRU cell and a lone parameter
// holding special values, and an Adam optimizer that has taken steps.
func trained(t testing.TB) (*Store, *Adam) {
	rng := newRand()
	s := NewStore()
	mlp := NewMLP([]int{3, 4, 2}, []Activation{Tanh}, rng)
	gru := NewGRUCell(2, 2, rng)
	require.NoError(t, s.Register("mlp", mlp))
	require.NoError(t, s.Register("gru", gru))
	opt := NewAdam(0.01)
	x := randDense(rng, 5, 3)
	for range 3 {
		s.ZeroGrad()
		tp := ad.NewTape()
		h := mlp.Forward(tp.Const(x))
		h = gru.Forward(h, h)
		tp.Backward(ad.Sum(ad.Square(h)))
		require.NoError(t, opt.Step(s.Params()))
	}
	// A parameter created after training started, with values a text
	// format would not keep exactly.
	special, err := s.Param("special", 1, 6, Zeros{}, nil)
	require.NoError(t, err)
	special.Value.SetRow(0, []float64{
		math.Float64frombits(0x7ff8000000000abc), // NaN with a payload
		math.Copysign(0, -1), math.Inf(1), math.Inf(-1),
		math.SmallestNonzeroFloat64, 1.0 / 3,
	})
	special.Grad.Set(0, 5, 1)
	require.NoError(t, opt.Step([]*Param{special}))
	return s, opt
}

// target returns a store and optimizer to load into, with state of their
// own that a failed load must leave alone: a parameter of a name in the
// file with other values, a parameter the file lacks, and Adam state.
func target(t testing.TB) (*Store, *Adam) {
	s := NewStore()
	_, err := s.Param("mlp/0/W", 3, 4, Constant(42), nil)
	require.NoError(t, err)
	mine, err := s.Param("mine", 2, 2, Constant(-1), nil)
	require.NoError(t, err)
	opt := NewAdam(0.5)
	mine.Grad.Set(0, 0, 1)
	require.NoError(t, opt.Step([]*Param{mine}))
	return s, opt
}

// snapshot encodes every bit of the state of s and opt, and the identity
// of s's parameters.
func snapshot(t testing.TB, s *Store, opt Optimizer) ([]byte, []*Param) {
	var buf bytes.Buffer
	require.NoError(t, Encode(&buf, s, opt))
	return buf.Bytes(), s.Params()
}

func encodeState(t testing.TB, s *Store, opt Optimizer) []byte {
	b, _ := snapshot(t, s, opt)
	return b
}

func TestSaveLoadRoundTrip(t *testing.T) {
	src, srcOpt := trained(t)
	path := filepath.Join(t.TempDir(), "model.ckpt")
	require.NoError(t, SaveFile(path, src, srcOpt))

	t.Run("into empty", func(t *testing.T) {
		s, opt := NewStore(), NewAdam(0.01)
		require.NoError(t, LoadFile(path, s, opt))
		requireSameState(t, src, srcOpt, s, opt)
	})
	t.Run("into registered layers", func(t *testing.T) {
		s, opt := target(t)
		mlp := NewMLP([]int{3, 4, 2}, []Activation{Tanh}, newRand())
		require.NoError(t, s.Register("mlp", mlp))
		w := mlp.Layers[0].W
		require.NoError(t, LoadFile(path, s, opt))
		// The layer's own parameter received the value.
		require.Same(t, w, s.Get("mlp/0/W"))
		requireBitsEqual(t, src.Get("mlp/0/W").Value, w.Value)
		// A parameter the file does not mention is kept.
		require.NotNil(t, s.Get("mine"))
		require.Equal(t, src.Len()+1, s.Len())
		for _, p := range src.Params() {
			requireBitsEqual(t, p.Value, s.Get(p.Name).Value)
		}
		require.Equal(t, copyState(srcOpt.State()), copyState(opt.State()))
	})
	t.Run("parameters only", func(t *testing.T) {
		s := NewStore()
		require.NoError(t, LoadFile(path, s, nil))
		require.Equal(t, src.Len(), s.Len())
		// Loaded parameters are found by later lazy creation.
		p, err := s.Param("special", 1, 6, Constant(0), nil)
		require.NoError(t, err)
		requireBitsEqual(t, src.Get("special").Value, p.Value)
	})
	t.Run("save again is identical", func(t *testing.T) {
		s, opt := NewStore(), NewAdam(0.01)
		require.NoError(t, LoadFile(path, s, opt))
		again := filepath.Join(t.TempDir(), "again.ckpt")
		require.NoError(t, SaveFile(again, s, opt))
		a, err := os.ReadFile(path)
		require.NoError(t, err)
		b, err := os.ReadFile(again)
		require.NoError(t, err)
		require.Equal(t, a, b)
	})
	t.Run("sgd", func(t *testing.T) {
		p := param("w", 1, 2)
		setGrad(p, 1, -1)
		sgd := &SGD{LR: 0.1, Momentum: 0.9}
		require.NoError(t, sgd.Step([]*Param{p}))
		s := NewStore()
		require.NoError(t, s.Register("x", layerOf{p}))
		var buf bytes.Buffer
		require.NoError(t, Encode(&buf, s, sgd))
		s2, sgd2 := NewStore(), &SGD{}
		require.NoError(t, Decode(&buf, s2, sgd2))
		requireSameState(t, s, sgd, s2, sgd2)
	})
}

func requireBitsEqual(t *testing.T, want, got *mat.Dense) {
	t.Helper()
	wr, wc := want.Dims()
	gr, gc := got.Dims()
	require.Equal(t, [2]int{wr, wc}, [2]int{gr, gc})
	for i := 0; i < wr; i++ {
		for j := 0; j < wc; j++ {
			require.Equal(t, math.Float64bits(want.At(i, j)), math.Float64bits(got.At(i, j)), "[%d,%d]", i, j)
		}
	}
}

func requireSameState(t *testing.T, s1 *Store, o1 Optimizer, s2 *Store, o2 Optimizer) {
	t.Helper()
	p1, p2 := s1.Params(), s2.Params()
	require.Equal(t, len(p1), len(p2))
	for i := range p1 {
		require.Equal(t, p1[i].Name, p2[i].Name)
		requireBitsEqual(t, p1[i].Value, p2[i].Value)
	}
	st1, st2 := o1.State(), o2.State()
	require.Equal(t, len(st1), len(st2))
	for name, a := range st1 {
		b := st2[name]
		require.NotNil(t, b, name)
		require.Equal(t, a.Step, b.Step, name)
		require.Equal(t, len(a.Buffers), len(b.Buffers))
		for k := range a.Buffers {
			requireBitsEqual(t, a.Buffers[k], b.Buffers[k])
		}
	}
}

// requireLoadFails loads path into a fresh target and checks that it fails
// with an error naming the file and containing reason, and changes
// nothing.
func requireLoadFails(t *testing.T, path, reason string, opt func() Optimizer) {
	t.Helper()
	s, adam := target(t)
	var o Optimizer = adam
	if opt != nil {
		o = opt()
	}
	before, params := snapshot(t, s, o)
	err := LoadFile(path, s, o)
	require.Error(t, err)
	require.Contains(t, err.Error(), `nn: load "`+path+`"`)
	require.Contains(t, err.Error(), reason)
	after, paramsAfter := snapshot(t, s, o)
	require.Equal(t, before, after, "state changed by a failed load")
	require.Equal(t, params, paramsAfter)
}

// sealed wraps sections in a valid container.
func sealed(t *testing.T, sections map[string][]byte) []byte {
	var buf bytes.Buffer
	require.NoError(t, ckpt.Encode(&buf, sections))
	return buf.Bytes()
}

func TestLoadFailures(t *testing.T) {
	src, srcOpt := trained(t)
	dir := t.TempDir()
	valid, err := MarshalSections(src, srcOpt)
	require.NoError(t, err)
	file := sealed(t, valid)

	with := func(name string, data []byte) map[string][]byte {
		out := map[string][]byte{}
		for k, v := range valid {
			out[k] = v
		}
		if data == nil {
			delete(out, name)
		} else {
			out[name] = data
		}
		return out
	}
	wrongVersion := bytes.Clone(file)
	binary.LittleEndian.PutUint32(wrongVersion[8:], 9)
	sectionVersion2 := bytes.Clone(valid[paramsSection])
	binary.LittleEndian.PutUint32(sectionVersion2, 2)
	var huge ckpt.Encoder // one parameter claiming [2^32-1 x 2^32-1]
	huge.Uint32(1)
	huge.Uint32(1)
	huge.String("w")
	huge.Uint32(math.MaxUint32)
	huge.Uint32(math.MaxUint32)
	huge.Float64s(make([]float64, 8))
	var wrongShape ckpt.Encoder // mlp/0/W is [3x4] in the target
	wrongShape.Uint32(1)
	wrongShape.Uint32(1)
	wrongShape.String("mlp/0/W")
	wrongShape.Uint32(4)
	wrongShape.Uint32(3)
	wrongShape.Float64s(make([]float64, 12))
	var dup ckpt.Encoder
	dup.Uint32(1)
	dup.Uint32(2)
	for range 2 {
		dup.String("w")
		dup.Uint32(1)
		dup.Uint32(1)
		dup.Float64s([]float64{1})
	}
	var stateShape ckpt.Encoder // state for "mine" [2x2] of shape [1x1]
	stateShape.Uint32(1)
	stateShape.String("adam")
	stateShape.Uint32(1)
	stateShape.String("mine")
	stateShape.Int64(1)
	stateShape.Uint32(2)
	for range 2 {
		stateShape.Uint32(1)
		stateShape.Uint32(1)
		stateShape.Float64s([]float64{0})
	}

	tests := []struct {
		name   string
		data   []byte // nil: no file
		reason string
		opt    func() Optimizer
	}{
		{"missing file", nil, "no such file", nil},
		{"empty file", []byte{}, "truncated", nil},
		{"wrong magic", append([]byte("NOTACKPT"), file[8:]...), "not a checkpoint file", nil},
		{"wrong version", wrongVersion, "unsupported version 9 (this build reads version 1)", nil},
		{"truncated", file[:len(file)-3], "truncated", nil},
		{"checksum", append(bytes.Clone(file[:len(file)-1]), file[len(file)-1]^1), "checksum mismatch", nil},
		{"wrong section version", sealed(t, with(paramsSection, sectionVersion2)), "unsupported section version 2", nil},
		{"no params section", sealed(t, with(paramsSection, nil)), `no "nn.params" section`, nil},
		{"no optimizer section", sealed(t, with(optimizerSection, nil)), "holds no optimizer state", nil},
		{"wrong optimizer kind", file, `state is of a "adam" optimizer, not "sgd"`, func() Optimizer { return &SGD{LR: 1} }},
		{"huge shape", sealed(t, with(paramsSection, huge.Bytes())), "truncated", nil},
		{"shape differs from store", sealed(t, with(paramsSection, wrongShape.Bytes())), `parameter "mlp/0/W" has shape [4x3] in the file but [3x4] in the store`, nil},
		{"duplicate parameter", sealed(t, with(paramsSection, dup.Bytes())), `parameter "w" appears twice`, nil},
		{"state shape differs", sealed(t, with(optimizerSection, stateShape.Bytes())), `state of "mine" has shape [1x1] but the parameter has [2x2]`, nil},
		{"trailing section bytes", sealed(t, with(paramsSection, append(bytes.Clone(valid[paramsSection]), 0))), "1 unexpected bytes", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "_")+".ckpt")
			if tc.data != nil {
				require.NoError(t, os.WriteFile(path, tc.data, 0o600))
			}
			requireLoadFails(t, path, tc.reason, tc.opt)
		})
	}

	t.Run("missing file is ErrNotExist", func(t *testing.T) {
		s, opt := target(t)
		err := LoadFile(filepath.Join(dir, "nope"), s, opt)
		require.True(t, errors.Is(err, os.ErrNotExist))
	})
}

// TestLoadEveryTruncationAndByteFlip checks a small file cut at every
// length and with every byte flipped.
func TestLoadEveryTruncationAndByteFlip(t *testing.T) {
	s := NewStore()
	p, err := s.Param("w", 2, 1, Constant(0.25), nil)
	require.NoError(t, err)
	opt := &SGD{LR: 0.1, Momentum: 0.9}
	setGrad(p, 1, 2)
	require.NoError(t, opt.Step([]*Param{p}))
	var buf bytes.Buffer
	require.NoError(t, Encode(&buf, s, opt))
	file := buf.Bytes()
	t.Logf("file of %d bytes", len(file))

	check := func(data []byte, what string) {
		ts := NewStore()
		tp, err := ts.Param("w", 2, 1, Constant(9), nil)
		require.NoError(t, err)
		topt := &SGD{LR: 0.1, Momentum: 0.9}
		tp.Grad.Set(0, 0, 1)
		require.NoError(t, topt.Step([]*Param{tp}))
		before := encodeState(t, ts, topt)
		require.Error(t, Decode(bytes.NewReader(data), ts, topt), what)
		require.Equal(t, before, encodeState(t, ts, topt), what)
	}
	for n := range len(file) {
		check(file[:n], "truncated")
	}
	for i := range file {
		for _, mask := range []byte{0x01, 0x10, 0xff} {
			bad := bytes.Clone(file)
			bad[i] ^= mask
			check(bad, "flipped")
		}
	}
}

func TestSaveFile(t *testing.T) {
	s, opt := trained(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "m.ckpt")
	require.NoError(t, SaveFile(path, s, opt))
	require.NoError(t, SaveFile(path, s, opt)) // overwrite
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Len(t, entries, 1, "no temporary files left behind")

	// A failed save leaves the previous file intact.
	before, err := os.ReadFile(path)
	require.NoError(t, err)
	require.ErrorContains(t, SaveFile(path, nil, opt), `nn: save "`+path+`": nil store`)
	bad := NewAdam(0.1)
	bad.State()["x"] = &ParamState{Buffers: []*mat.Dense{nil}}
	require.ErrorContains(t, SaveFile(path, s, bad), "buffer 0 is nil")
	after, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Equal(t, before, after)
	entries, err = os.ReadDir(dir)
	require.NoError(t, err)
	require.Len(t, entries, 1)

	require.ErrorContains(t, SaveFile(filepath.Join(dir, "no", "dir", "m.ckpt"), s, opt), "nn: save")
}

func FuzzLoad(f *testing.F) {
	src, srcOpt := trained(f)
	sections, err := MarshalSections(src, srcOpt)
	if err != nil {
		f.Fatal(err)
	}
	var buf bytes.Buffer
	if err := ckpt.Encode(&buf, sections); err != nil {
		f.Fatal(err)
	}
	file := buf.Bytes()
	f.Add(file)
	for _, n := range []int{0, 5, 8, 24, 30, len(file) / 2, len(file) - 1} {
		f.Add(file[:n])
	}
	for _, i := range []int{0, 9, 13, 21, 24, 40, len(file) / 2, len(file) - 1} {
		bad := bytes.Clone(file)
		bad[i] ^= 0x04
		f.Add(bad)
	}
	// Section contents, which the second half of the target seals into a
	// valid container so that the fuzzer gets past the checksum.
	f.Add(sections[paramsSection])
	f.Add(sections[optimizerSection])
	f.Add(sections[paramsSection][:len(sections[paramsSection])/2])

	f.Fuzz(func(t *testing.T, data []byte) {
		try := func(data []byte) {
			s, opt := target(t)
			before := encodeState(t, s, opt)
			if err := Decode(bytes.NewReader(data), s, opt); err != nil {
				require.Equal(t, before, encodeState(t, s, opt), "a failed load changed state")
				return
			}
			// What loads, saves and loads again to the same state.
			saved := encodeState(t, s, opt)
			s2, opt2 := target(t)
			require.NoError(t, Decode(bytes.NewReader(saved), s2, opt2))
			require.Equal(t, saved, encodeState(t, s2, opt2))
		}
		try(data)
		for _, name := range []string{paramsSection, optimizerSection} {
			secs := map[string][]byte{}
			for k, v := range sections {
				secs[k] = v
			}
			secs[name] = data
			var buf bytes.Buffer
			require.NoError(t, ckpt.Encode(&buf, secs))
			try(buf.Bytes())
		}
	})
}
