//go:build tools

// Package tools records the SeaweedFS command built from this module so that
// `go mod tidy` keeps its dependencies in go.mod/go.sum.
package tools

import (
	_ "github.com/seaweedfs/seaweedfs/weed"
)
