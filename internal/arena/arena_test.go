package arena

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/backpropq/backpropq/ad"
)

type record struct {
	n   int
	buf []int
}

var records = NewKey[record]()

func TestSlabReusesAfterReset(t *testing.T) {
	tp := ad.NewTape()
	a, b := records.New(tp), records.New(tp)
	require.NotSame(t, a, b, "one generation hands out distinct records")
	a.n, a.buf = 7, append(a.buf, 1, 2, 3)

	tp.Reset()
	c := records.Get(tp)
	require.Same(t, a, c, "a reset tape reuses its first record")
	require.Equal(t, 7, c.n, "Get leaves the record's contents")
	require.Equal(t, 3, cap(c.buf))
	d := records.New(tp)
	require.Same(t, b, d)
	require.Zero(t, *d, "New zeroes the record")
	require.NotSame(t, c, records.Get(tp), "a third record is new")

	other := ad.NewTape()
	require.NotSame(t, a, records.Get(other), "each tape has its own records")
	require.NotNil(t, records.Get(nil), "no tape: a new record")
	require.NotSame(t, records.Get(nil), records.Get(nil))
}

func TestKeysAreDistinct(t *testing.T) {
	other := NewKey[record]()
	tp := ad.NewTape()
	require.NotSame(t, records.Get(tp), other.Get(tp))
}
