package providers

import (
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/provcred/credential/internal/npi"
	"github.com/provcred/platform/apierr"
)

var idPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)

// States are the USPS codes a license may be issued in: the states, DC and
// the territories with licensing boards.
var States = func() map[string]bool {
	m := map[string]bool{}
	for _, s := range strings.Fields(`AL AK AZ AR CA CO CT DE DC FL GA HI ID IL IN IA KS KY LA ME MD MA MI MN MS MO
		MT NE NV NH NJ NM NY NC ND OH OK OR PA RI SC SD TN TX UT VT VA WA WV WI WY PR VI GU AS MP`) {
		m[s] = true
	}
	return m
}()

// Normalize trims fields and upper-cases codes, so validation and storage
// see one spelling.
func (p *Provider) Normalize() {
	p.ID = strings.TrimSpace(p.ID)
	p.NPI = strings.TrimSpace(p.NPI)
	for _, f := range []*string{&p.FirstName, &p.MiddleName, &p.LastName, &p.Suffix, &p.Specialty} {
		*f = strings.Join(strings.Fields(*f), " ")
	}
	p.TaxonomyCode = strings.ToUpper(strings.TrimSpace(p.TaxonomyCode))
	p.DEANumber = strings.ToUpper(strings.TrimSpace(p.DEANumber))
	for i := range p.Licenses {
		l := &p.Licenses[i]
		l.State = strings.ToUpper(strings.TrimSpace(l.State))
		l.Number = strings.ToUpper(strings.TrimSpace(l.Number))
		l.Type = strings.TrimSpace(l.Type)
	}
	if p.Licenses == nil {
		p.Licenses = []License{}
	}
	if p.BoardCertifications == nil {
		p.BoardCertifications = []BoardCertification{}
	}
}

// Validate checks a normalized provider as of now and names the first bad
// field, as a 422.
func (p *Provider) Validate(now time.Time) *apierr.Error {
	if p.ID != "" && !idPattern.MatchString(p.ID) {
		return apierr.Invalid("id", "must be 1-64 letters, digits, '_', '.' or '-', starting with a letter or digit")
	}
	if err := npi.Validate(p.NPI); err != nil {
		return apierr.Invalid("npi", err.Error())
	}
	for _, f := range []struct {
		name, value string
		required    bool
	}{
		{"first_name", p.FirstName, true}, {"last_name", p.LastName, true},
		{"middle_name", p.MiddleName, false}, {"suffix", p.Suffix, false}, {"specialty", p.Specialty, false},
	} {
		if e := validName(f.name, f.value, f.required); e != nil {
			return e
		}
	}
	if !p.DateOfBirth.Valid() {
		return apierr.Invalid("date_of_birth", "must be a date as YYYY-MM-DD")
	}
	if p.DateOfBirth != nil {
		dob := p.DateOfBirth.Time
		if dob.Year() < 1900 || !dob.Before(now.AddDate(-16, 0, 0)) {
			return apierr.Invalid("date_of_birth", "must be after 1900 and at least 16 years ago")
		}
	}
	if p.TaxonomyCode != "" && !taxonomyPattern.MatchString(p.TaxonomyCode) {
		return apierr.Invalid("taxonomy_code", "must be a 10-character NUCC taxonomy code such as 207R00000X")
	}
	if p.DEANumber != "" && !ValidDEA(p.DEANumber) {
		return apierr.Invalid("dea_number", "must be a DEA registrant type letter, a letter or 9, and seven digits with a valid check digit")
	}
	if len(p.Licenses) > MaxLicenses {
		return apierr.Invalid("licenses", "must list at most "+strconv.Itoa(MaxLicenses)+" licenses")
	}
	if len(p.BoardCertifications) > MaxBoardCertifications {
		return apierr.Invalid("board_certifications", "must list at most "+strconv.Itoa(MaxBoardCertifications)+" certifications")
	}
	seen := map[string]bool{}
	for i, l := range p.Licenses {
		field := "licenses[" + strconv.Itoa(i) + "]"
		if !States[l.State] {
			return apierr.Invalid(field+".state", "must be a two-letter US state or territory code")
		}
		if l.Number == "" || len(l.Number) > 50 || !plainText(l.Number) {
			return apierr.Invalid(field+".number", "is required (at most 50 characters, no control characters)")
		}
		if !l.ExpiresOn.Valid() {
			return apierr.Invalid(field+".expires_on", "must be a date as YYYY-MM-DD")
		}
		if len(l.Type) > 50 || !plainText(l.Type) {
			return apierr.Invalid(field+".type", "must be at most 50 characters, without control characters")
		}
		if seen[l.State+"/"+l.Number] {
			return apierr.Invalid(field, "duplicates another license with the same state and number")
		}
		seen[l.State+"/"+l.Number] = true
	}
	for i, b := range p.BoardCertifications {
		field := "board_certifications[" + strconv.Itoa(i) + "]"
		if e := validName(field+".board", b.Board, true); e != nil {
			return e
		}
		if utf8.RuneCountInString(b.Specialty) > 100 || !plainText(b.Specialty) {
			return apierr.Invalid(field+".specialty", "must be at most 100 characters, without control characters")
		}
		if !b.ExpiresOn.Valid() {
			return apierr.Invalid(field+".expires_on", "must be a date as YYYY-MM-DD")
		}
	}
	return nil
}

// Caps on one provider's lists. Every license is verified on each run and
// kept in its evidence: thousands of them (which no clinician holds) made
// one run take seconds and store megabytes.
const (
	MaxLicenses            = 100
	MaxBoardCertifications = 50
)

var taxonomyPattern = regexp.MustCompile(`^[0-9]{3}[0-9A-Z]{6}X$`)

func validName(field, v string, required bool) *apierr.Error {
	switch {
	case required && v == "":
		return apierr.Invalid(field, "is required")
	case utf8.RuneCountInString(v) > 100:
		return apierr.Invalid(field, "must be at most 100 characters")
	case !plainText(v):
		return apierr.Invalid(field, "must be valid UTF-8 without control characters")
	case v != "" && !strings.ContainsFunc(v, unicode.IsLetter):
		return apierr.Invalid(field, "must contain letters")
	}
	return nil
}

// plainText reports whether v can be stored and shown as it is: valid UTF-8
// (a CSV roster is not decoded by encoding/json, which would have replaced
// bad bytes) and no control characters (PostgreSQL refuses NUL in text and
// jsonb alike).
func plainText(v string) bool {
	return utf8.ValidString(v) && !strings.ContainsFunc(v, unicode.IsControl)
}

// ValidDEA checks a DEA registration number: a registrant type letter, a
// letter (the registrant's initial, or 9), seven digits, the last being
// (d1+d3+d5 + 2*(d2+d4+d6)) mod 10.
func ValidDEA(s string) bool {
	if len(s) != 9 || !strings.ContainsRune(deaRegistrantTypes, rune(s[0])) || !(isLetter(s[1]) || s[1] == '9') {
		return false
	}
	d := make([]int, 7)
	for i := 0; i < 7; i++ {
		c := s[2+i]
		if c < '0' || c > '9' {
			return false
		}
		d[i] = int(c - '0')
	}
	sum := d[0] + d[2] + d[4] + 2*(d[1]+d[3]+d[5])
	return sum%10 == d[6]
}

// deaRegistrantTypes are the first letters the DEA assigns: A, B, F, G
// (practitioners and institutions, older series), C, D, E, H, J, K, L, P,
// R, S, T, U (the other business activities), M (mid-level practitioners),
// X (DATA-waived prescribers). I, N, O, Q, V, W, Y and Z are none.
const deaRegistrantTypes = "ABCDEFGHJKLMPRSTUX"

func isLetter(c byte) bool { return c >= 'A' && c <= 'Z' }
