// Command pullgate-hub runs the pullgate hub (serve) and is its operator CLI.
package main

import (
	"context"
	"os"

	"github.com/pullgate/pullgate/hub/cli"
	"github.com/pullgate/pullgate/hub/server"
)

func main() {
	os.Exit(cli.Execute(context.Background(), cli.NewRoot(server.Command(), server.NATSConfigCommand())))
}
