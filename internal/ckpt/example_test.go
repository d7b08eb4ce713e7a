package ckpt_test

import (
	"bytes"
	"fmt"

	"github.com/backpropq/backpropq/internal/ckpt"
)

func Example() {
	var e ckpt.Encoder
	e.String("step")
	e.Uint64(42)
	var file bytes.Buffer
	if err := ckpt.Encode(&file, map[string][]byte{"demo.counter": e.Bytes()}); err != nil {
		fmt.Println(err)
		return
	}

	sections, err := ckpt.Decode(file.Bytes())
	if err != nil {
		fmt.Println(err)
		return
	}
	d := ckpt.NewDecoder("demo.counter", sections["demo.counter"])
	name, value := d.String(), d.Uint64()
	if err := d.Finish(); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(name, value)

	// A damaged file is an error, never a panic.
	damaged := file.Bytes()
	damaged[len(damaged)-1] ^= 1
	_, err = ckpt.Decode(damaged)
	fmt.Println(err)
	// Output:
	// step 42
	// ckpt: corrupt checkpoint: checksum mismatch (stored d03067b0, computed 225be4b3)
}
