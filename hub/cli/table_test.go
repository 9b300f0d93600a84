package cli

import (
	"bytes"
	"testing"
)

// Tables print names other users chose (activity targets of rows written
// before the hub cleaned them, descriptions, usernames): no byte of them
// may act on the terminal or reorder the text.
func TestTableRowPrintsPlainText(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"gh", "gh\n"},
		{"a\tb\nc\rd", "a b c d\n"},
		{"x\x1b]52;c;cHduZWQ=\x07y", "x?]52;c;cHduZWQ=?y\n"},
		{"x\x1b[2Jy", "x?[2Jy\n"},
		{"bot\u202egnp", "bot?gnp\n"},
		{"ad\u200bmin", "ad?min\n"},
	} {
		var buf bytes.Buffer
		tb := newTable(&buf)
		tb.row(tc.in)
		if err := tb.flush(); err != nil {
			t.Fatal(err)
		}
		if got := buf.String(); got != tc.want {
			t.Errorf("row(%q) printed %q, want %q", tc.in, got, tc.want)
		}
	}
}
