package npi

import (
	"errors"
	"testing"
)

func TestValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want error
	}{
		{"1234567893", nil},
		{"1234567890", ErrCheckDigit},
		{"1245319599", nil}, // CMS's own example
		{"1003000126", nil},
		{"2000000002", nil},
		{"123456789", ErrLength},
		{"12345678931", ErrLength},
		{"123456789a", ErrDigits},
		{"3234567893", ErrFirstDigit},
		{"", ErrLength},
	}
	for _, tt := range tests {
		if got := Validate(tt.in); !errors.Is(got, tt.want) {
			t.Errorf("Validate(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

// Exactly one check digit makes a valid NPI for any nine-digit payload.
func TestCheckDigitUnique(t *testing.T) {
	t.Parallel()
	for _, p := range []string{"123456789", "100000000", "299999999", "154321987"} {
		n := 0
		for d := byte('0'); d <= '9'; d++ {
			if Valid(p + string(d)) {
				n++
			}
		}
		if n != 1 {
			t.Errorf("%s: %d valid check digits", p, n)
		}
	}
}

func FuzzValidate(f *testing.F) {
	f.Add("1234567893")
	f.Add("x")
	f.Fuzz(func(t *testing.T, s string) {
		if Validate(s) == nil && (len(s) != 10 || CheckDigit(s[:9]) != s[9]) {
			t.Fatalf("accepted %q", s)
		}
	})
}
