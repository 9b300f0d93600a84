// Command pullgate-credential-provider hands install tokens from the local
// pullgate agent to the kubelet (image credential provider, JSON on stdin)
// or, when invoked as docker-credential-pullgate, to docker-credential-
// helper clients. It is exec'd for every image pull: keep start-up cheap.
package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/docker/docker-credential-helpers/credentials"

	"github.com/pullgate/pullgate/helper/dockercred"
	"github.com/pullgate/pullgate/helper/kubelet"
	"github.com/pullgate/pullgate/internal/version"
)

func main() {
	if name := filepath.Base(os.Args[0]); strings.HasPrefix(name, "docker-credential-") {
		// The protocol's own version action prints the library's version:
		// answer every spelling with this build's stamp instead.
		if len(os.Args) == 2 && (os.Args[1] == "version" || os.Args[1] == "--version" || os.Args[1] == "-v") {
			fmt.Println(version.String(name))
			return
		}
		credentials.Serve(dockercred.New(os.Getenv(dockercred.EnvSocket)))
		return
	}
	os.Exit(kubelet.Main(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}
