//go:build tools

// Package tools pins modules the node side is being built on, so that
// `go mod tidy` keeps them while the packages that import them are written.
package tools

import (
	_ "github.com/aws/aws-sdk-go-v2/aws"
	_ "github.com/aws/aws-sdk-go-v2/credentials"
	_ "github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	_ "github.com/aws/aws-sdk-go-v2/service/ecr"
	_ "github.com/aws/aws-sdk-go-v2/service/sts"
	_ "github.com/docker/docker-credential-helpers/credentials"
	_ "github.com/fsnotify/fsnotify"
	_ "github.com/go-jose/go-jose/v4"
	_ "github.com/go-jose/go-jose/v4/jwt"
	_ "github.com/nats-io/jwt/v2"
	_ "github.com/nats-io/nkeys"
	_ "k8s.io/kubelet/config/v1"
	_ "k8s.io/kubelet/pkg/apis/credentialprovider/v1"
)
