// Package ckpt is the container format of the project's checkpoint files:
// named sections of bytes behind a header with a magic number, a format
// version, the payload length and a CRC-32C checksum.
//
// Each package that saves state owns its sections (nn writes "nn.params"
// and "nn.optimizer"; later packages add their own) and encodes their
// contents with an [Encoder]; a reader decodes them with a [Decoder], which
// checks every length against the bytes that remain, so that arbitrary
// input yields an error, never a panic or a huge allocation. Readers ignore
// sections they do not know, so new sections do not need a new version.
//
// Layout, all integers little-endian:
//
//	magic    8 bytes  "BPQCKPT\x00"
//	version  uint32   [Version]
//	length   uint64   number of payload bytes
//	checksum uint32   CRC-32C (Castagnoli) of the 20 bytes above and the payload
//	payload: count uint32, then per section, in order of name:
//	         name length uint32, name, data length uint64, data
package ckpt

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"slices"
	"sort"

	"github.com/backpropq/backpropq/internal/atomicfile"
)

// Version is the container version this package writes and reads.
const Version = 1

const (
	magic      = "BPQCKPT\x00"
	headerSize = len(magic) + 4 + 8 + 4
	maxName    = 1 << 10
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Errors returned by [Decode], wrapped with the reason.
var (
	// ErrNotCheckpoint means the input does not start with the magic
	// number.
	ErrNotCheckpoint = errors.New("ckpt: not a checkpoint file")
	// ErrVersion means the container version is not [Version].
	ErrVersion = errors.New("ckpt: unsupported version")
	// ErrCorrupt means the input is truncated, fails its checksum or is
	// malformed.
	ErrCorrupt = errors.New("ckpt: corrupt checkpoint")
)

// Encode writes sections, keyed by name, to w in the container format.
// Names must be non-empty and at most 1024 bytes.
func Encode(w io.Writer, sections map[string][]byte) error {
	names := make([]string, 0, len(sections))
	size := 4
	for name, data := range sections {
		if name == "" || len(name) > maxName {
			return fmt.Errorf("ckpt: section name %q must have 1 to %d bytes", name, maxName)
		}
		names = append(names, name)
		size += 4 + len(name) + 8 + len(data)
	}
	sort.Strings(names)
	payload := make([]byte, 0, size)
	payload = binary.LittleEndian.AppendUint32(payload, uint32(len(names)))
	for _, name := range names {
		payload = binary.LittleEndian.AppendUint32(payload, uint32(len(name)))
		payload = append(payload, name...)
		payload = binary.LittleEndian.AppendUint64(payload, uint64(len(sections[name])))
		payload = append(payload, sections[name]...)
	}
	header := make([]byte, 0, headerSize)
	header = append(header, magic...)
	header = binary.LittleEndian.AppendUint32(header, Version)
	header = binary.LittleEndian.AppendUint64(header, uint64(len(payload)))
	sum := crc32.Update(crc32.Checksum(header, castagnoli), castagnoli, payload)
	header = binary.LittleEndian.AppendUint32(header, sum)
	if _, err := w.Write(header); err != nil {
		return fmt.Errorf("ckpt: %w", err)
	}
	if _, err := w.Write(payload); err != nil {
		return fmt.Errorf("ckpt: %w", err)
	}
	return nil
}

// Decode checks data and returns its sections keyed by name. The section
// contents alias data. The error wraps [ErrNotCheckpoint], [ErrVersion] or
// [ErrCorrupt] and says what is wrong.
func Decode(data []byte) (map[string][]byte, error) {
	if len(data) < len(magic) {
		if bytes.HasPrefix([]byte(magic), data) {
			return nil, fmt.Errorf("%w: truncated: %d bytes, shorter than the %d-byte header", ErrCorrupt, len(data), headerSize)
		}
		return nil, ErrNotCheckpoint
	}
	if !bytes.Equal(data[:len(magic)], []byte(magic)) {
		return nil, ErrNotCheckpoint
	}
	if len(data) < headerSize {
		return nil, fmt.Errorf("%w: truncated: %d bytes, shorter than the %d-byte header", ErrCorrupt, len(data), headerSize)
	}
	if v := binary.LittleEndian.Uint32(data[8:]); v != Version {
		return nil, fmt.Errorf("%w %d (this build reads version %d)", ErrVersion, v, Version)
	}
	n := binary.LittleEndian.Uint64(data[12:])
	payload := data[headerSize:]
	switch {
	case n > uint64(len(payload)):
		return nil, fmt.Errorf("%w: truncated: header says %d payload bytes, found %d", ErrCorrupt, n, len(payload))
	case n < uint64(len(payload)):
		return nil, fmt.Errorf("%w: %d bytes after the %d-byte payload", ErrCorrupt, uint64(len(payload))-n, n)
	}
	sum := crc32.Update(crc32.Checksum(data[:20], castagnoli), castagnoli, payload)
	if want := binary.LittleEndian.Uint32(data[20:]); sum != want {
		return nil, fmt.Errorf("%w: checksum mismatch (stored %08x, computed %08x)", ErrCorrupt, want, sum)
	}
	d := NewDecoder("payload", payload)
	count := d.Count(4 + 8)
	sections := make(map[string][]byte, count)
	prev := ""
	for i := 0; i < count && d.Err() == nil; i++ {
		name := d.String()
		size := d.Uint64()
		data := d.Bytes(size)
		if d.Err() != nil {
			break
		}
		if name == "" || len(name) > maxName || (i > 0 && name <= prev) {
			d.Fail("section %d: name %q is empty, too long, or out of order", i, name)
			break
		}
		prev = name
		sections[name] = data
	}
	if err := d.Finish(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	return sections, nil
}

// WriteFile encodes sections and writes them to path atomically (see
// [atomicfile.Write]): on error the previous file, if any, is unchanged.
func WriteFile(path string, sections map[string][]byte) error {
	return atomicfile.Write(path, 0o644, func(w io.Writer) error {
		return Encode(w, sections)
	})
}

// ReadFile reads and decodes the file at path with [Decode]. Errors do not
// repeat the path except those of the file system; callers add it.
func ReadFile(path string) (map[string][]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Decode(data)
}

// Names returns the section names of sections in sorted order.
func Names(sections map[string][]byte) []string {
	names := make([]string, 0, len(sections))
	for name := range sections {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}
