// Command pause is the pod sandbox ("pause") image of the test node.
//
// The public pause image cannot be pulled here, so the tests build this one. Like
// the upstream pause program it holds the pod's namespaces open: it sleeps until
// SIGINT or SIGTERM and reaps zombies, since it is PID 1 of pods that share their
// process namespace.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	signals := make(chan os.Signal, 8)
	signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM, syscall.SIGCHLD)
	for sig := range signals {
		if sig == syscall.SIGCHLD {
			for {
				var status syscall.WaitStatus
				pid, err := syscall.Wait4(-1, &status, syscall.WNOHANG, nil)
				if pid <= 0 || err != nil {
					break
				}
			}
			continue
		}
		os.Exit(0)
	}
}
