package ad_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/backpropq/backpropq/ad"
)

func TestScratchIsZeroedAndReusedAfterReset(t *testing.T) {
	tp := ad.NewTape()
	a, b := tp.Scratch(5), tp.Scratch(5)
	require.Equal(t, make([]float64, 5), a)
	a[0], b[0] = 1, 2
	require.Equal(t, 1.0, a[0], "two buffers of one generation are distinct")
	gen := tp.Generation()

	tp.Reset()
	require.Equal(t, gen+1, tp.Generation())
	c := tp.Scratch(5)
	require.Equal(t, make([]float64, 5), c, "reused memory is zeroed")
	require.True(t, &c[0] == &a[0] || &c[0] == &b[0], "a reset tape reuses its scratch memory")
}

func TestLocalSlotsSurviveReset(t *testing.T) {
	tp := ad.NewTape()
	key := ad.NewLocalKey()
	require.NotEqual(t, key, ad.NewLocalKey())
	made := 0
	mk := func() any { made++; return new(int) }
	v := tp.Local(key, mk)
	tp.Reset()
	require.Same(t, v, tp.Local(key, mk))
	require.Equal(t, 1, made)
	require.NotSame(t, v, ad.NewTape().Local(key, mk), "each tape has its own slots")
}
