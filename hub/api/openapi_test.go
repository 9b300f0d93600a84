package api

import (
	"os"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// TestOpenAPIMatchesRoutes keeps docs/openapi.yaml and the route table in
// step: every registered route is documented and every documented
// operation is registered.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	raw, err := os.ReadFile("../../docs/openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		OpenAPI    string                          `yaml:"openapi"`
		Paths      map[string]map[string]yaml.Node `yaml:"paths"`
		Components struct {
			SecuritySchemes map[string]struct{ Type, Scheme string } `yaml:"securitySchemes"`
		} `yaml:"components"`
		Security []map[string][]string `yaml:"security"`
	}
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		t.Fatalf("parse openapi.yaml: %v", err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.1") {
		t.Errorf("openapi %q, want 3.1.x", doc.OpenAPI)
	}
	if s := doc.Components.SecuritySchemes["adminToken"]; s.Type != "http" || s.Scheme != "bearer" {
		t.Errorf("adminToken security scheme: %+v", s)
	}
	// The admin token, an API token or the session cookie: alternatives.
	if len(doc.Security) != 3 || doc.Security[0]["adminToken"] == nil || doc.Security[1]["apiToken"] == nil || doc.Security[2]["sessionCookie"] == nil {
		t.Errorf("global security: %+v", doc.Security)
	}

	methods := []string{"get", "put", "post", "delete", "options", "head", "patch", "trace"}
	var documented []string
	for path, item := range doc.Paths {
		for m := range item {
			if slices.Contains(methods, m) {
				documented = append(documented, strings.ToUpper(m)+" "+path)
			}
		}
	}
	var registered []string
	for _, rt := range routes {
		registered = append(registered, rt.method+" "+rt.path)
	}
	slices.Sort(documented)
	slices.Sort(registered)
	for _, r := range registered {
		if !slices.Contains(documented, r) {
			t.Errorf("route %s is not in docs/openapi.yaml", r)
		}
	}
	for _, d := range documented {
		if !slices.Contains(registered, d) {
			t.Errorf("docs/openapi.yaml documents %s, which New does not register", d)
		}
	}
	if len(registered) != len(slices.Compact(slices.Clone(registered))) {
		t.Errorf("duplicate routes: %v", registered)
	}
}

// TestOpenAPIRefsResolve checks that every $ref points at a defined
// component.
func TestOpenAPIRefsResolve(t *testing.T) {
	raw, err := os.ReadFile("../../docs/openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var root yaml.Node
	if err := yaml.Unmarshal(raw, &root); err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := root.Decode(&doc); err != nil {
		t.Fatal(err)
	}
	var walk func(n *yaml.Node)
	walk = func(n *yaml.Node) {
		if n.Kind == yaml.MappingNode {
			for i := 0; i+1 < len(n.Content); i += 2 {
				if n.Content[i].Value == "$ref" {
					ref := n.Content[i+1].Value
					parts := strings.Split(strings.TrimPrefix(ref, "#/"), "/")
					var cur any = doc
					for _, p := range parts {
						m, ok := cur.(map[string]any)
						if !ok {
							cur = nil
							break
						}
						cur = m[p]
					}
					if cur == nil {
						t.Errorf("line %d: $ref %s does not resolve", n.Content[i+1].Line, ref)
					}
				}
			}
		}
		for _, c := range n.Content {
			walk(c)
		}
	}
	walk(&root)
}
