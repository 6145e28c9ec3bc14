package providers

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/provcred/credential/internal/config"
)

var now = time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)

func valid() Provider {
	dob, _ := ParseDate("1970-01-31")
	exp, _ := ParseDate("2027-06-30")
	return Provider{NPI: "1234567893", FirstName: "Ann", LastName: "Lee", DateOfBirth: &dob,
		TaxonomyCode: "207r00000x", DEANumber: "AB1234563",
		Licenses: []License{{State: "ca", Number: " a123 ", Type: "MD", ExpiresOn: &exp}}}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		mutate    func(p *Provider)
		wantField string
	}{
		{"valid", func(p *Provider) {}, ""},
		{"provider_001 style id", func(p *Provider) { p.ID = "provider_001" }, ""},
		{"bad id", func(p *Provider) { p.ID = "has space" }, "id"},
		{"bad npi check digit", func(p *Provider) { p.NPI = "1234567890" }, "npi"},
		{"short npi", func(p *Provider) { p.NPI = "123" }, "npi"},
		{"missing first name", func(p *Provider) { p.FirstName = " " }, "first_name"},
		{"missing last name", func(p *Provider) { p.LastName = "" }, "last_name"},
		{"digits only name", func(p *Provider) { p.LastName = "123" }, "last_name"},
		{"control char", func(p *Provider) { p.MiddleName = "a\x00b" }, "middle_name"},
		{"invalid utf8 name", func(p *Provider) { p.LastName = "Lov\xffelace" }, "last_name"},
		{"nul in license type", func(p *Provider) { p.Licenses[0].Type = "MD\x00" }, "licenses[0].type"},
		{"invalid utf8 license type", func(p *Provider) { p.Licenses[0].Type = "M\xffD" }, "licenses[0].type"},
		{"nul in board specialty", func(p *Provider) {
			p.BoardCertifications = []BoardCertification{{Board: "ABIM", Specialty: "x\x00"}}
		}, "board_certifications[0].specialty"},
		{"long board specialty", func(p *Provider) {
			p.BoardCertifications = []BoardCertification{{Board: "ABIM", Specialty: strings.Repeat("x", 101)}}
		}, "board_certifications[0].specialty"},
		{"born in the future", func(p *Provider) { d := Date{Time: now.AddDate(1, 0, 0)}; p.DateOfBirth = &d }, "date_of_birth"},
		{"born 1850", func(p *Provider) { d := Date{Time: time.Date(1850, 1, 1, 0, 0, 0, 0, time.UTC)}; p.DateOfBirth = &d }, "date_of_birth"},
		{"unparsable dob", func(p *Provider) { p.DateOfBirth = &Date{invalid: "31/01/1970"} }, "date_of_birth"},
		{"bad state", func(p *Provider) { p.Licenses[0].State = "XX" }, "licenses[0].state"},
		{"missing license number", func(p *Provider) { p.Licenses[0].Number = "" }, "licenses[0].number"},
		{"bad license expiry", func(p *Provider) { p.Licenses[0].ExpiresOn = &Date{invalid: "soon"} }, "licenses[0].expires_on"},
		{"duplicate license", func(p *Provider) { p.Licenses = append(p.Licenses, p.Licenses[0]) }, "licenses[1]"},
		{"too many licenses", func(p *Provider) {
			for i := 0; i < MaxLicenses; i++ {
				p.Licenses = append(p.Licenses, License{State: "NY", Number: "N" + strconv.Itoa(i)})
			}
		}, "licenses"},
		{"as many licenses as allowed", func(p *Provider) {
			for i := 1; i < MaxLicenses; i++ {
				p.Licenses = append(p.Licenses, License{State: "NY", Number: "N" + strconv.Itoa(i)})
			}
		}, ""},
		{"too many board certifications", func(p *Provider) {
			for i := 0; i <= MaxBoardCertifications; i++ {
				p.BoardCertifications = append(p.BoardCertifications, BoardCertification{Board: "ABIM"})
			}
		}, "board_certifications"},
		{"bad taxonomy", func(p *Provider) { p.TaxonomyCode = "207R" }, "taxonomy_code"},
		{"bad DEA check digit", func(p *Provider) { p.DEANumber = "AB1234567" }, "dea_number"},
		{"board without name", func(p *Provider) { p.BoardCertifications = []BoardCertification{{Specialty: "x"}} }, "board_certifications[0].board"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := valid()
			tt.mutate(&p)
			p.Normalize()
			err := p.Validate(now)
			switch {
			case tt.wantField == "" && err != nil:
				t.Fatalf("unexpected %v", err)
			case tt.wantField != "" && (err == nil || err.Field != tt.wantField || err.Status != 422):
				t.Fatalf("want 422 on %s, got %v", tt.wantField, err)
			}
		})
	}
}

func TestNormalize(t *testing.T) {
	t.Parallel()
	p := valid()
	p.FirstName = "  Mary   Ann "
	p.Normalize()
	if p.FirstName != "Mary Ann" || p.Licenses[0].State != "CA" || p.Licenses[0].Number != "A123" || p.TaxonomyCode != "207R00000X" {
		t.Fatalf("%+v", p)
	}
}

func TestValidDEA(t *testing.T) {
	t.Parallel()
	for s, want := range map[string]bool{"AB1234563": true, "AB1234567": false, "A91234563": true, "1B1234563": false, "AB123456": false} {
		if ValidDEA(s) != want {
			t.Errorf("ValidDEA(%s) != %v", s, want)
		}
	}
}

func TestDerive(t *testing.T) {
	t.Parallel()
	verified := now.Add(-121 * 24 * time.Hour)
	approved := time.Date(2024, 3, 15, 10, 0, 0, 0, time.UTC)
	p := Provider{LastVerifiedAt: &verified, ApprovedAt: &approved}
	maxAge := config.Defaults().VerificationMaxAge
	if maxAge != 120*24*time.Hour {
		t.Fatalf("VERIFICATION_MAX_AGE defaults to %s, not 120 days", maxAge)
	}
	p.derive(now, maxAge)
	if !p.VerificationStale || p.RecredentialDueOn.String() != "2027-03-15" {
		t.Fatalf("stale=%v due=%v", p.VerificationStale, p.RecredentialDueOn)
	}
	fresh := now.Add(-119 * 24 * time.Hour)
	p = Provider{LastVerifiedAt: &fresh}
	p.derive(now, maxAge)
	if p.VerificationStale || p.RecredentialDueOn != nil {
		t.Fatalf("fresh: %+v", p)
	}
	// A CVO's 90 days: the same verification is stale.
	if p.derive(now, 90*24*time.Hour); !p.VerificationStale {
		t.Fatalf("90 days: %+v", p)
	}
}

func TestDateJSON(t *testing.T) {
	t.Parallel()
	var v struct {
		D *Date `json:"d"`
	}
	if err := json.Unmarshal([]byte(`{"d":"2020-02-29"}`), &v); err != nil || !v.D.Valid() || v.D.String() != "2020-02-29" {
		t.Fatalf("%v %v", err, v.D)
	}
	if err := json.Unmarshal([]byte(`{"d":"2021-02-29"}`), &v); err != nil || v.D.Valid() {
		t.Fatal("2021-02-29 must be invalid")
	}
	b, _ := json.Marshal(struct{ D Date }{Date{Time: now}})
	if string(b) != `{"D":"2026-11-27"}` {
		t.Fatal(string(b))
	}
}
