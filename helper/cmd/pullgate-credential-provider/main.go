// Command pullgate-credential-provider hands install tokens from the local
// pullgate agent to the kubelet (image credential provider, JSON on stdin)
// or, when invoked as docker-credential-pullgate, to docker-credential-
// helper clients. It is exec'd for every image pull: keep start-up cheap.
package main

import (
	"os"
	"path/filepath"
	"strings"

	"github.com/docker/docker-credential-helpers/credentials"

	"github.com/pullgate/pullgate/helper/dockercred"
	"github.com/pullgate/pullgate/helper/kubelet"
)

func main() {
	if strings.HasPrefix(filepath.Base(os.Args[0]), "docker-credential-") {
		credentials.Serve(dockercred.New(os.Getenv(dockercred.EnvSocket)))
		return
	}
	os.Exit(kubelet.Main(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}
