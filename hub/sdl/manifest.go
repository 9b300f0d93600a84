package sdl

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// ParseManifest reads a provider manifest: the JSON list of groups, each
// with services that have a name, an image and optional credentials
// ({host, email, username, password}), as the provider receives it at
// lease creation. Other fields are kept for Rewrite and otherwise ignored.
func ParseManifest(data []byte) (*Document, error) {
	if len(data) > MaxBytes {
		return nil, invalid("manifest", 0, "%d bytes; the limit is %d (512 KiB)", len(data), MaxBytes)
	}
	var groups []json.RawMessage
	if err := json.Unmarshal(data, &groups); err != nil {
		return nil, invalid("manifest", 0, "%s", jsonMsg(err, "a list of groups"))
	}
	doc := &Document{Format: FormatManifest, src: data}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(&doc.man); err != nil {
		return nil, invalid("manifest", 0, "%s", jsonMsg(err, "a list of groups"))
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, invalid("manifest", 0, "unexpected data after the JSON list")
	}
	var ps problems
	if len(groups) == 0 {
		ps.add("manifest", 0, "no groups")
	}
	n := 0
	for gi, raw := range groups {
		var g struct {
			Name     string            `json:"name"`
			Services []json.RawMessage `json:"services"`
		}
		gpath := fmt.Sprintf("groups[%d]", gi)
		if err := json.Unmarshal(raw, &g); err != nil {
			ps.add(gpath, 0, "%s", jsonMsg(err, "a group object (name, services)"))
			continue
		}
		if g.Name != "" {
			gpath = fmt.Sprintf("group %q", clip(g.Name))
		}
		if len(g.Services) == 0 {
			ps.add(gpath, 0, "no services")
		}
		for si, sraw := range g.Services {
			if n++; n > MaxServices {
				ps.add(gpath, 0, "more than %d services", MaxServices)
				break
			}
			var ms struct {
				Name        string          `json:"name"`
				Image       string          `json:"image"`
				Credentials json.RawMessage `json:"credentials"`
			}
			spath := fmt.Sprintf("%s services[%d]", gpath, si)
			if err := json.Unmarshal(sraw, &ms); err != nil {
				ps.add(spath, 0, "%s", jsonMsg(err, "a service object (name, image, ...)"))
				continue
			}
			if ms.Name != "" {
				spath = fmt.Sprintf("%s service %q", gpath, clip(ms.Name))
			} else {
				ps.add(spath+".name", 0, "missing")
			}
			svc := &Service{Name: ms.Name, Group: g.Name, Image: ms.Image, manIndex: [2]int{gi, si}}
			if ms.Image == "" {
				ps.add(spath+".image", 0, "missing")
			}
			doc.Services = append(doc.Services, svc)
			if len(ms.Credentials) == 0 || string(ms.Credentials) == "null" {
				continue
			}
			var mc struct {
				Host     string `json:"host"`
				Email    string `json:"email"`
				Username string `json:"username"`
				Password string `json:"password"`
			}
			if err := json.Unmarshal(ms.Credentials, &mc); err != nil {
				ps.add(spath+".credentials", 0, "%s", jsonMsg(err, "an object with host, username and password"))
				continue
			}
			cred := &Credentials{Host: mc.Host, Email: mc.Email, Username: mc.Username, Password: mc.Password}
			checkCredentials(svc, cred, spath+".credentials", 0, &ps)
		}
	}
	if err := ps.err(); err != nil {
		return nil, err
	}
	return doc, nil
}

// jsonMsg describes a JSON decoding error without quoting the input.
func jsonMsg(err error, want string) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return fmt.Sprintf("not valid JSON (error at byte %d)", se.Offset)
	case errors.As(err, &te) && te.Field != "":
		return fmt.Sprintf("%s must be %s, got %s", te.Field, goKind(te.Type.Kind().String()), te.Value)
	case errors.As(err, &te):
		return fmt.Sprintf("want %s, got %s", want, te.Value)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "not valid JSON (unexpected end)"
	}
	return "not valid JSON"
}

func goKind(k string) string {
	switch k {
	case "string":
		return "a string"
	case "slice":
		return "a list"
	case "struct", "map":
		return "an object"
	}
	return "a " + k
}
