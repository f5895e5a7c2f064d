// Command pause is the node ground's sandbox ("pause") image: it holds a
// pod's namespaces, reaps orphaned children and exits on SIGINT/SIGTERM.
// registry.k8s.io/pause cannot be pulled offline, so tools/node.sh builds
// this one FROM scratch.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGCHLD)
	for s := range sigs {
		if s != syscall.SIGCHLD {
			os.Exit(0)
		}
		for {
			pid, err := syscall.Wait4(-1, nil, syscall.WNOHANG, nil)
			if pid <= 0 || err != nil {
				break
			}
		}
	}
}
