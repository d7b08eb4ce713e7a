package nn

import (
	"fmt"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
	"gonum.org/v1/gonum/mat"
)

func TestStoreParamLazy(t *testing.T) {
	s := NewStore()
	rng := newRand()
	p, err := s.Param("w", 2, 3, Constant(0.5), rng)
	require.NoError(t, err)
	require.Equal(t, "w", p.Name)
	require.Equal(t, 0.5, p.Value.At(1, 2))
	r, c := p.Grad.Dims()
	require.Equal(t, [2]int{2, 3}, [2]int{r, c})

	// Later uses return the same parameter and ignore the initializer.
	p.Value.Set(0, 0, 9)
	again, err := s.Param("w", 2, 3, Constant(-1), rng)
	require.NoError(t, err)
	require.Same(t, p, again)
	require.Equal(t, 9.0, again.Value.At(0, 0))
	require.Same(t, p, s.Get("w"))
	require.Nil(t, s.Get("nope"))
	require.Equal(t, 1, s.Len())
}

func TestStoreParamErrors(t *testing.T) {
	s := NewStore()
	_, err := s.Param("enc/W", 2, 3, Zeros{}, nil)
	require.NoError(t, err)
	tests := []struct {
		name       string
		param      string
		rows, cols int
		init       Initializer
		msg        string
	}{
		{"shape differs", "enc/W", 3, 2, Zeros{}, `nn: parameter "enc/W": requested shape [3x2] but the store holds [2x3]`},
		{"empty name", "", 1, 1, Zeros{}, "empty parameter name"},
		{"zero rows", "x", 0, 1, Zeros{}, "invalid shape [0x1]"},
		{"negative cols", "x", 1, -2, Zeros{}, "invalid shape [1x-2]"},
		{"nil init", "x", 1, 1, nil, "nil initializer"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.Param(tc.param, tc.rows, tc.cols, tc.init, nil)
			require.ErrorContains(t, err, tc.msg)
			require.Equal(t, 1, s.Len())
		})
	}
}

func TestStoreParamsSortedAndZeroGrad(t *testing.T) {
	var s Store // the zero value is usable
	for _, name := range []string{"b", "a/z", "c", "a"} {
		p, err := s.Param(name, 1, 2, Zeros{}, nil)
		require.NoError(t, err)
		p.Grad.Set(0, 1, 3)
	}
	var names []string
	for _, p := range s.Params() {
		names = append(names, p.Name)
	}
	require.Equal(t, []string{"a", "a/z", "b", "c"}, names)
	s.ZeroGrad()
	for _, p := range s.Params() {
		require.Equal(t, 0.0, mat.Max(p.Grad))
	}
}

func TestStoreConcurrentParam(t *testing.T) {
	s := NewStore()
	const workers = 8
	got := make([]*Param, workers)
	var wg sync.WaitGroup
	for i := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p, err := s.Param("shared", 2, 2, Constant(float64(i)), nil)
			require.NoError(t, err)
			got[i] = p
			_, err = s.Param(fmt.Sprintf("own%d", i), 1, 1, Zeros{}, nil)
			require.NoError(t, err)
		}()
	}
	wg.Wait()
	for _, p := range got {
		require.Same(t, got[0], p)
	}
	require.Equal(t, workers+1, s.Len())
}

func TestRegister(t *testing.T) {
	t.Run("adds under prefix and renames", func(t *testing.T) {
		s := NewStore()
		l := NewLinear(3, 2, newRand())
		require.NoError(t, s.Register("enc", l))
		require.Equal(t, "enc/W", l.W.Name)
		require.Equal(t, "enc/b", l.B.Name)
		require.Same(t, l.W, s.Get("enc/W"))
		require.Same(t, l.B, s.Get("enc/b"))
		require.Equal(t, 2, s.Len())
	})
	t.Run("same params twice is fine", func(t *testing.T) {
		s := NewStore()
		l := NewLinear(3, 2, newRand())
		require.NoError(t, s.Register("enc", l))
		require.NoError(t, s.Register("enc", l))
		// A shared layer registered under another prefix keeps its name.
		require.NoError(t, s.Register("dec", l))
		require.Equal(t, "enc/W", l.W.Name)
		require.Equal(t, 2, s.Len())
	})
	t.Run("copies an existing value", func(t *testing.T) {
		s := NewStore()
		old, err := s.Param("enc/W", 3, 2, Constant(7), nil)
		require.NoError(t, err)
		l := NewLinear(3, 2, newRand())
		require.NoError(t, s.Register("enc", l))
		require.True(t, mat.Equal(old.Value, l.W.Value))
		require.NotSame(t, old, l.W)
		require.Same(t, l.W, s.Get("enc/W"))
	})
	t.Run("shape mismatch changes nothing", func(t *testing.T) {
		s := NewStore()
		_, err := s.Param("enc/b", 1, 5, Constant(7), nil)
		require.NoError(t, err)
		l := NewLinear(3, 2, newRand())
		w := mat.DenseCopyOf(l.W.Value)
		err = s.Register("enc", l)
		require.ErrorContains(t, err, `nn: parameter "enc/b": the layer's shape is [1x2] but the store holds [1x5]`)
		require.Equal(t, "W", l.W.Name)
		require.True(t, mat.Equal(w, l.W.Value))
		require.Nil(t, s.Get("enc/W"))
		require.Equal(t, 1, s.Len())
	})
	t.Run("duplicate names", func(t *testing.T) {
		s := NewStore()
		a, b := NewLinear(1, 1, newRand()), NewLinear(1, 1, newRand())
		err := s.Register("x", layerOf{a.W, b.W})
		require.ErrorContains(t, err, `two parameters named "x/W"`)
		require.Equal(t, 0, s.Len())
	})
	t.Run("empty prefix and nil param", func(t *testing.T) {
		s := NewStore()
		require.ErrorContains(t, s.Register("", NewLinear(1, 1, newRand())), "empty prefix")
		require.ErrorContains(t, s.Register("x", layerOf{nil}), "nil parameter")
	})
	t.Run("mlp names", func(t *testing.T) {
		s := NewStore()
		require.NoError(t, s.Register("net", NewMLP([]int{2, 3, 1}, []Activation{Tanh}, newRand())))
		var names []string
		for _, p := range s.Params() {
			names = append(names, p.Name)
		}
		require.Equal(t, []string{"net/0/W", "net/0/b", "net/1/W", "net/1/b"}, names)
	})
}

type layerOf []*Param

func (l layerOf) Params() []*Param { return l }

// Rollback removes what Param and Register added after the mark, puts
// back the entries Register replaced and gives a registered layer its
// names back, so registering it again names it as the first time.
func TestStoreRollback(t *testing.T) {
	s := NewStore()
	kept, err := s.Param("kept", 1, 2, Constant(1), nil)
	require.NoError(t, err)
	old, err := s.Param("dec/W", 2, 2, Constant(3), nil)
	require.NoError(t, err)
	s.Commit()
	mark := s.Mark()
	_, err = s.Param("new", 2, 2, Constant(2), nil)
	require.NoError(t, err)
	enc, dec := NewLinear(2, 2, newRand()), NewLinear(2, 2, newRand())
	require.NoError(t, s.Register("enc", enc))
	require.NoError(t, s.Register("dec", dec))
	require.Same(t, dec.W, s.Get("dec/W"))
	require.Equal(t, 6, s.Len())

	s.Rollback(mark)
	require.Equal(t, 2, s.Len())
	require.Same(t, kept, s.Get("kept"))
	require.Same(t, old, s.Get("dec/W"))
	require.Equal(t, "W", enc.W.Name)
	require.Equal(t, "b", dec.B.Name)
	require.NoError(t, s.Register("enc", enc))
	require.Equal(t, "enc/W", enc.W.Name)
	require.Same(t, enc.W, s.Get("enc/W"))

	// A rollback to a mark taken after the last change changes nothing.
	s.Rollback(s.Mark())
	require.Equal(t, 4, s.Len())
}
