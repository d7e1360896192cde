//go:build tools

// Package tools records the kwok command built from this module so that
// `go mod tidy` keeps its dependencies in go.mod/go.sum.
package tools

import (
	_ "sigs.k8s.io/kwok/cmd/kwok"
)
