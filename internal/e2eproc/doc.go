// Package e2eproc runs the processes of the end-to-end suites (e2e,
// e2e/ha): the hub, agents, nats-server and the hub's CLI as child
// processes, each in a process group of its own so that a test can stop,
// kill, pause and resume it with everything it started, and nothing
// outlives the test. It is a normal package so that suites behind
// different build tags share it.
package e2eproc
