package config

import (
	"fmt"

	"github.com/dustin/go-humanize"
	"go.yaml.in/yaml/v3"
)

// ByteSize is a size in bytes, written in YAML as an integer or with a unit:
// "64KiB", "32MiB" (powers of 1024) or "8MB" (powers of 1000).
type ByteSize int64

// UnmarshalYAML accepts an integer or a humanized size.
func (b *ByteSize) UnmarshalYAML(n *yaml.Node) error {
	var s string
	if err := n.Decode(&s); err != nil {
		return err
	}
	v, err := humanize.ParseBytes(s)
	if err != nil {
		return fmt.Errorf("line %d: %q is not a size (use bytes or units such as 64KiB, 32MiB)", n.Line, s)
	}
	*b = ByteSize(v)
	return nil
}

func (b ByteSize) String() string { return humanize.IBytes(uint64(b)) }
