// Package bench holds pullgate's end-to-end performance benchmarks: blob
// throughput through the hub against a direct pull and distribution's own
// pull-through proxy, added manifest latency, and the hub's peak memory
// under 100 concurrent pulls. The benchmarks live in the package's test
// files; see README.md for how to run them and what each figure means.
package bench
