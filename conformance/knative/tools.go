//go:build tools

// Knative's queue-proxy, built from this module as `go build knative.dev/serving/cmd/queue`;
// the import keeps its dependencies in go.mod and go.sum.
package tools

import _ "knative.dev/serving/cmd/queue"
