package ckpt

import (
	"encoding/binary"
	"fmt"
	"math"
)

// Encoder appends little-endian values to a byte slice. The zero value is
// ready to use.
type Encoder struct {
	buf []byte
}

// Bytes returns the encoded bytes. The slice aliases the encoder's buffer.
func (e *Encoder) Bytes() []byte { return e.buf }

// Uint32 appends v.
func (e *Encoder) Uint32(v uint32) { e.buf = binary.LittleEndian.AppendUint32(e.buf, v) }

// Uint64 appends v.
func (e *Encoder) Uint64(v uint64) { e.buf = binary.LittleEndian.AppendUint64(e.buf, v) }

// Int64 appends v.
func (e *Encoder) Int64(v int64) { e.Uint64(uint64(v)) }

// Float64s appends the bits of each value of v, so that a round trip is
// exact, NaN payloads included. The length is not written.
func (e *Encoder) Float64s(v []float64) {
	e.buf = append(e.buf, make([]byte, 8*len(v))...)
	out := e.buf[len(e.buf)-8*len(v):]
	for i, x := range v {
		binary.LittleEndian.PutUint64(out[8*i:], math.Float64bits(x))
	}
}

// String appends the length of s as a uint32, then s.
func (e *Encoder) String(s string) {
	e.Uint32(uint32(len(s)))
	e.buf = append(e.buf, s...)
}

// Decoder reads the values an [Encoder] wrote, checking each length
// against the bytes that remain. After the first failure every method
// returns a zero value and [Decoder.Err] reports the failure, so a caller
// may read a whole record and check once.
type Decoder struct {
	what string
	data []byte
	off  int
	err  error
}

// NewDecoder returns a decoder of data; what names the data in errors
// (a section name, say).
func NewDecoder(what string, data []byte) *Decoder {
	return &Decoder{what: what, data: data}
}

// Err returns the first failure, or nil.
func (d *Decoder) Err() error { return d.err }

// Remaining returns the number of bytes not yet read.
func (d *Decoder) Remaining() int { return len(d.data) - d.off }

// Fail records a failure described by format and args, unless one is
// already recorded.
func (d *Decoder) Fail(format string, args ...any) {
	if d.err == nil {
		d.err = fmt.Errorf("%s: %s", d.what, fmt.Sprintf(format, args...))
	}
}

// Finish returns the first failure, or an error if bytes remain unread.
func (d *Decoder) Finish() error {
	if d.err == nil && d.off != len(d.data) {
		d.Fail("%d unexpected bytes at the end", len(d.data)-d.off)
	}
	return d.err
}

func (d *Decoder) take(n uint64, what string) []byte {
	if d.err != nil {
		return nil
	}
	if n > uint64(d.Remaining()) {
		d.Fail("truncated: %s needs %d bytes, %d remain", what, n, d.Remaining())
		return nil
	}
	b := d.data[d.off : d.off+int(n)]
	d.off += int(n)
	return b
}

// Uint32 reads a uint32.
func (d *Decoder) Uint32() uint32 {
	b := d.take(4, "uint32")
	if b == nil {
		return 0
	}
	return binary.LittleEndian.Uint32(b)
}

// Uint64 reads a uint64.
func (d *Decoder) Uint64() uint64 {
	b := d.take(8, "uint64")
	if b == nil {
		return 0
	}
	return binary.LittleEndian.Uint64(b)
}

// Int64 reads an int64.
func (d *Decoder) Int64() int64 { return int64(d.Uint64()) }

// Bytes reads n raw bytes, which alias the decoder's data.
func (d *Decoder) Bytes(n uint64) []byte {
	b := d.take(n, "byte string")
	if b == nil {
		return nil
	}
	return b
}

// String reads a string written by [Encoder.String].
func (d *Decoder) String() string {
	n := d.Uint32()
	return string(d.take(uint64(n), "string"))
}

// Float64s reads n float64 values into a new slice. It fails, without
// allocating, if fewer than 8n bytes remain.
func (d *Decoder) Float64s(n uint64) []float64 {
	if d.err == nil && n > uint64(d.Remaining())/8 {
		d.Fail("truncated: %d float64 values need %d bytes, %d remain", n, 8*n, d.Remaining())
	}
	b := d.take(8*n, "float64 values")
	if d.err != nil {
		return nil
	}
	out := make([]float64, n)
	for i := range out {
		out[i] = math.Float64frombits(binary.LittleEndian.Uint64(b[8*i:]))
	}
	return out
}

// Count reads a uint32 element count and checks that the remaining bytes
// can hold that many elements of at least minSize bytes each, so that a
// caller may allocate count elements safely.
func (d *Decoder) Count(minSize int) int {
	n := uint64(d.Uint32())
	if d.err == nil && minSize > 0 && n > uint64(d.Remaining())/uint64(minSize) {
		d.Fail("count %d of elements of at least %d bytes exceeds the %d bytes that remain", n, minSize, d.Remaining())
		return 0
	}
	if d.err != nil {
		return 0
	}
	return int(n)
}
