// Command pullgate-agent is the pullgate node agent (see package agent).
package main

import (
	"context"
	"os"

	"github.com/pullgate/pullgate/agent/cli"
)

func main() {
	os.Exit(cli.Main(context.Background(), os.Args[1:], os.Stdout, os.Stderr, os.LookupEnv))
}
