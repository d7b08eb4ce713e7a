package atomicfile_test

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/backpropq/backpropq/internal/atomicfile"
)

func ExampleWriteFile() {
	dir, err := os.MkdirTemp("", "atomicfile-example")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "state.txt")
	if err := atomicfile.WriteFile(path, []byte("step 1"), 0o644); err != nil {
		fmt.Println(err)
		return
	}
	// A reader sees the old or the new content, never a mix.
	if err := atomicfile.WriteFile(path, []byte("step 2"), 0o644); err != nil {
		fmt.Println(err)
		return
	}
	b, _ := os.ReadFile(path)
	fmt.Println(string(b))
	// Output: step 2
}
