// Command kstatus prints what kstatus (sigs.k8s.io/cli-utils, the library
// Flux and kpt use) computes for one Kubernetes object: it reads the object
// as JSON on stdin and prints "<Status> <message>" (status.Compute's
// result, message as is) on stdout.
package main

import (
	"fmt"
	"io"
	"os"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
)

func main() {
	data, err := io.ReadAll(os.Stdin)
	if err != nil {
		fail("read stdin: %v", err)
	}
	// UnmarshalJSON keeps integers as int64, which kstatus expects for
	// metadata.generation and status.observedGeneration.
	obj := &unstructured.Unstructured{}
	if err := obj.UnmarshalJSON(data); err != nil {
		fail("stdin is not a Kubernetes object as JSON: %v", err)
	}
	res, err := status.Compute(obj)
	if err != nil {
		fail("compute status: %v", err)
	}
	fmt.Printf("%s %s\n", res.Status, res.Message)
}

func fail(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "kstatus: "+format+"\n", args...)
	os.Exit(1)
}
