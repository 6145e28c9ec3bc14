// Package npi validates National Provider Identifiers. An NPI is 10 digits,
// the first 1 or 2, the last a Luhn check digit computed over the number
// prefixed with 80840 (the ISO 7812 issuer prefix for US health). Adding 24
// to the Luhn sum of the first nine digits is the same thing.
package npi

import "errors"

// Errors returned by Validate, worded for API clients.
var (
	ErrLength     = errors.New("must be exactly 10 digits")
	ErrDigits     = errors.New("must contain digits only")
	ErrFirstDigit = errors.New("must start with 1 or 2")
	ErrCheckDigit = errors.New("check digit does not match (Luhn with the 80840 prefix)")
)

// Validate reports why s is not a valid NPI, or nil.
func Validate(s string) error {
	if len(s) != 10 {
		return ErrLength
	}
	for i := 0; i < 10; i++ {
		if s[i] < '0' || s[i] > '9' {
			return ErrDigits
		}
	}
	if s[0] != '1' && s[0] != '2' {
		return ErrFirstDigit
	}
	if CheckDigit(s[:9]) != s[9] {
		return ErrCheckDigit
	}
	return nil
}

// Valid reports whether s is a valid NPI.
func Valid(s string) bool { return Validate(s) == nil }

// CheckDigit computes the check digit for the first nine digits of an NPI.
// It assumes nine ASCII digits.
func CheckDigit(first9 string) byte {
	sum := 24 // the doubled-and-summed digits of the 80840 prefix
	for i := 0; i < 9; i++ {
		d := int(first9[8-i] - '0')
		if i%2 == 0 { // rightmost digit of the payload is doubled
			d *= 2
			if d > 9 {
				d -= 9
			}
		}
		sum += d
	}
	return byte('0' + (10-sum%10)%10)
}
