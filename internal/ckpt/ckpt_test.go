package ckpt

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

func sample() map[string][]byte {
	var e Encoder
	e.String("weights")
	e.Uint32(2)
	e.Float64s([]float64{1.5, math.Inf(-1)})
	return map[string][]byte{
		"b.section": e.Bytes(),
		"a.empty":   {},
		"c":         []byte("xyz"),
	}
}

func encode(t *testing.T, sections map[string][]byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	require.NoError(t, Encode(&buf, sections))
	return buf.Bytes()
}

func TestRoundTrip(t *testing.T) {
	tests := []struct {
		name     string
		sections map[string][]byte
	}{
		{"none", map[string][]byte{}},
		{"several", sample()},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			data := encode(t, tc.sections)
			got, err := Decode(data)
			require.NoError(t, err)
			require.Equal(t, len(tc.sections), len(got))
			for name, want := range tc.sections {
				require.Equal(t, want, got[name], name)
			}
			// Encoding is deterministic: map order does not leak.
			require.Equal(t, data, encode(t, got))
		})
	}
}

func TestEncodeRejectsBadNames(t *testing.T) {
	for _, name := range []string{"", string(make([]byte, maxName+1))} {
		err := Encode(&bytes.Buffer{}, map[string][]byte{name: nil})
		require.Error(t, err)
	}
}

// reseal recomputes the checksum of a hand-modified file.
func reseal(data []byte) []byte {
	out := bytes.Clone(data)
	sum := crc32.Update(crc32.Checksum(out[:20], castagnoli), castagnoli, out[headerSize:])
	binary.LittleEndian.PutUint32(out[20:], sum)
	return out
}

func TestDecodeErrors(t *testing.T) {
	valid := encode(t, sample())
	wrongVersion := bytes.Clone(valid)
	binary.LittleEndian.PutUint32(wrongVersion[8:], Version+1)
	wrongVersion = reseal(wrongVersion)
	trailing := append(bytes.Clone(valid), 0)
	// A payload whose section count promises more than it holds, with a
	// valid checksum: the decoder must not trust the count.
	hugeCount := bytes.Clone(valid)
	binary.LittleEndian.PutUint32(hugeCount[headerSize:], math.MaxUint32)
	hugeCount = reseal(hugeCount)
	// Sections out of order, with a valid checksum.
	var e Encoder
	e.Uint32(2)
	e.String("b")
	e.Uint64(0)
	e.String("a")
	e.Uint64(0)
	unordered := append([]byte(magic), make([]byte, 16)...)
	binary.LittleEndian.PutUint32(unordered[8:], Version)
	binary.LittleEndian.PutUint64(unordered[12:], uint64(len(e.Bytes())))
	unordered = reseal(append(unordered, e.Bytes()...))

	tests := []struct {
		name   string
		data   []byte
		target error
		reason string
	}{
		{"empty", nil, ErrCorrupt, "truncated"},
		{"short magic", valid[:5], ErrCorrupt, "truncated"},
		{"short header", valid[:headerSize-1], ErrCorrupt, "truncated"},
		{"bad magic", append([]byte("GIF89a.."), valid[8:]...), ErrNotCheckpoint, "not a checkpoint"},
		{"wrong version", wrongVersion, ErrVersion, "version 2"},
		{"truncated payload", valid[:len(valid)-1], ErrCorrupt, "truncated"},
		{"trailing byte", trailing, ErrCorrupt, "after the"},
		{"huge count", hugeCount, ErrCorrupt, "count"},
		{"unordered sections", unordered, ErrCorrupt, "out of order"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Decode(tc.data)
			require.ErrorIs(t, err, tc.target)
			require.Contains(t, err.Error(), tc.reason)
		})
	}
}

func TestDecodeDetectsEveryTruncationAndByteFlip(t *testing.T) {
	valid := encode(t, sample())
	for n := range len(valid) {
		_, err := Decode(valid[:n])
		require.Error(t, err, "truncated to %d bytes", n)
	}
	for i := range valid {
		for _, mask := range []byte{0x01, 0x80, 0xff} {
			bad := bytes.Clone(valid)
			bad[i] ^= mask
			_, err := Decode(bad)
			require.Error(t, err, "byte %d flipped with %#x", i, mask)
		}
	}
}

func TestDecoder(t *testing.T) {
	var e Encoder
	e.Uint32(7)
	e.Int64(-3)
	e.String("name")
	e.Float64s([]float64{math.Copysign(0, -1), math.NaN()})
	d := NewDecoder("test", e.Bytes())
	require.Equal(t, uint32(7), d.Uint32())
	require.Equal(t, int64(-3), d.Int64())
	require.Equal(t, "name", d.String())
	fs := d.Float64s(2)
	require.Equal(t, math.Float64bits(math.Copysign(0, -1)), math.Float64bits(fs[0]))
	require.Equal(t, math.Float64bits(math.NaN()), math.Float64bits(fs[1]))
	require.NoError(t, d.Finish())

	// Lengths beyond the data fail without allocating them.
	d = NewDecoder("test", []byte{1, 2, 3})
	require.Nil(t, d.Float64s(1<<60))
	require.ErrorContains(t, d.Err(), "test: truncated")
	require.Equal(t, uint32(0), d.Uint32(), "sticky failure")

	d = NewDecoder("test", []byte{0xff, 0xff, 0xff, 0xff, 0})
	require.Equal(t, 0, d.Count(1))
	require.ErrorContains(t, d.Err(), "count")

	d = NewDecoder("test", []byte{1, 2})
	d.Bytes(1)
	require.ErrorContains(t, d.Finish(), "1 unexpected bytes")
}

func TestFiles(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "x.ckpt")
	require.NoError(t, WriteFile(path, sample()))
	got, err := ReadFile(path)
	require.NoError(t, err)
	require.Equal(t, []string{"a.empty", "b.section", "c"}, Names(got))
	_, err = ReadFile(filepath.Join(dir, "missing"))
	require.ErrorIs(t, err, os.ErrNotExist)
}

func FuzzDecode(f *testing.F) {
	valid := func() []byte {
		var buf bytes.Buffer
		if err := Encode(&buf, sample()); err != nil {
			f.Fatal(err)
		}
		return buf.Bytes()
	}()
	f.Add(valid)
	f.Add(valid[:headerSize])
	f.Add(valid[:len(valid)/2])
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		sections, err := Decode(data)
		if err != nil {
			return
		}
		// Whatever decodes re-encodes to the same bytes.
		var buf bytes.Buffer
		require.NoError(t, Encode(&buf, sections))
		require.Equal(t, data, buf.Bytes())
	})
}
