package imageprune

import (
	"context"
	"fmt"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// DefaultCRIEndpoint is containerd's CRI socket.
const DefaultCRIEndpoint = "unix:///run/containerd/containerd.sock"

// CRI is the runtime's CRI image service over its unix socket.
type CRI struct {
	conn *grpc.ClientConn
	c    runtimeapi.ImageServiceClient
}

// DialCRI connects to a CRI endpoint (unix:///path or /path). The
// connection is made lazily; errors show on the first call.
func DialCRI(endpoint string) (*CRI, error) {
	if !strings.HasPrefix(endpoint, "unix://") {
		if !strings.HasPrefix(endpoint, "/") {
			return nil, fmt.Errorf("CRI endpoint %q: want unix:///path/to/socket", endpoint)
		}
		endpoint = "unix://" + endpoint
	}
	conn, err := grpc.NewClient(endpoint, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, fmt.Errorf("CRI endpoint %q: %w", endpoint, err)
	}
	return &CRI{conn: conn, c: runtimeapi.NewImageServiceClient(conn)}, nil
}

// Close closes the connection.
func (c *CRI) Close() error { return c.conn.Close() }

// ListImages lists the runtime's images.
func (c *CRI) ListImages(ctx context.Context) ([]Image, error) {
	r, err := c.c.ListImages(ctx, &runtimeapi.ListImagesRequest{})
	if err != nil {
		return nil, err
	}
	out := make([]Image, 0, len(r.Images))
	for _, img := range r.Images {
		if img.Pinned {
			continue // the sandbox image, kept by the runtime itself
		}
		out = append(out, Image{ID: img.Id, Refs: append(append([]string(nil), img.RepoTags...), img.RepoDigests...)})
	}
	return out, nil
}

// RemoveImage removes an image by id.
func (c *CRI) RemoveImage(ctx context.Context, id string) error {
	_, err := c.c.RemoveImage(ctx, &runtimeapi.RemoveImageRequest{Image: &runtimeapi.ImageSpec{Image: id}})
	return err
}
