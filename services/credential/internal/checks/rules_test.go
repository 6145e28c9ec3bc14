package checks

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/provcred/credential/internal/providers"
	"github.com/provcred/credential/internal/results"
	"github.com/provcred/credential/internal/seed"
	"github.com/provcred/platform/domain"
)

// ruleCase is one provider with the source rows that concern it, and the
// decision and check outcomes the rules demand.
type ruleCase struct {
	name string
	// person; NPI is made from the case index.
	first, middle, last, suffix, dob string
	lics                             []providers.License
	// source rows; "NPI" fields left empty get the provider's NPI where noted.
	nppes    *seed.NPPESRow
	leie     []seed.LEIERow
	sam      []seed.SAMRow
	licRows  []seed.LicenseRow
	decision domain.Decision
	outcomes map[string]domain.Outcome // check → outcome; unlisted checks must pass
	detail   map[string]string         // check → substring of its detail
}

const (
	future = "2099-12-31"
	past   = "2020-01-31"
	dob    = "1970-03-04"
)

func lic(state, number string) []providers.License {
	return []providers.License{{State: state, Number: number, Type: "MD", ExpiresOn: date(future)}}
}

// ruleCases: every rule of docs/verification.md and the edge cases of the brief.
// Placeholders: "$NPI" in a source row is replaced by the provider's NPI.
func ruleCases() []ruleCase {
	ok := func(last, first string) *seed.NPPESRow {
		return &seed.NPPESRow{NPI: "$NPI", Entity: "1", Last: last, First: first}
	}
	active := func(state, number, last, first string) seed.LicenseRow {
		return seed.LicenseRow{State: state, Number: number, Status: "Active", Expiry: future, Last: last, First: first, NPI: "$NPI"}
	}
	return []ruleCase{
		{name: "clean provider is approved", first: "Alice", last: "Walker", dob: dob, lics: lic("IL", "036100001"),
			nppes: ok("WALKER", "ALICE"), licRows: []seed.LicenseRow{active("IL", "036100001", "Walker", "Alice")}, decision: "approved"},
		{name: "excluded by NPI in LEIE is denied", first: "Bruno", last: "Marsh", dob: dob, lics: lic("IL", "036100002"),
			nppes: ok("MARSH", "BRUNO"), licRows: []seed.LicenseRow{active("IL", "036100002", "Marsh", "Bruno")},
			leie:     []seed.LEIERow{{Last: "MARSH", First: "BRUNO", NPI: "$NPI", DOB: "19700304"}},
			decision: "denied", outcomes: map[string]domain.Outcome{"leie": "fail"}, detail: map[string]string{"leie": "is excluded in the OIG LEIE"}},
		{name: "excluded by NPI in SAM (Indefinite) is denied", first: "Clara", last: "Nguyen", dob: dob, lics: lic("IL", "036100003"),
			nppes: ok("NGUYEN", "CLARA"), licRows: []seed.LicenseRow{active("IL", "036100003", "Nguyen", "Clara")},
			sam:      []seed.SAMRow{{First: "CLARA", Last: "NGUYEN", NPI: "$NPI", Active: "03/01/2021", Term: "Indefinite"}},
			decision: "denied", outcomes: map[string]domain.Outcome{"sam": "fail"}},
		{name: "name and DOB match without NPI (0000000000) needs review", first: "Derek", last: "O'Hara", dob: dob, lics: lic("IL", "036100004"),
			nppes: ok("OHARA", "DEREK"), licRows: []seed.LicenseRow{active("IL", "036100004", "O'Hara", "Derek")},
			leie:     []seed.LEIERow{{Last: "OHARA", First: "DEREK", DOB: "19700304"}},
			decision: "needs_review", outcomes: map[string]domain.Outcome{"leie": "needs_review"}, detail: map[string]string{"leie": "date of birth"}},
		{name: "name match with another DOB passes with a note", first: "Elena", last: "Park", dob: dob, lics: lic("IL", "036100005"),
			nppes: ok("PARK", "ELENA"), licRows: []seed.LicenseRow{active("IL", "036100005", "Park", "Elena")},
			leie:     []seed.LEIERow{{Last: "PARK", First: "ELENA", DOB: "19810102"}},
			decision: "approved", detail: map[string]string{"leie": "date of birth differs"}},
		// Issue #10: an unknown date of birth on either side cannot rule a name match out.
		{name: "name-only SAM match (SAM publishes no DOB) is a possible match", first: "Farah", last: "Quinn", dob: dob, lics: lic("IL", "036100006"),
			nppes: ok("QUINN", "FARAH"), licRows: []seed.LicenseRow{active("IL", "036100006", "Quinn", "Farah")},
			sam:      []seed.SAMRow{{First: "Farah", Last: "Quinn", Active: "03/01/2021", Term: "Indefinite"}},
			decision: "needs_review", outcomes: map[string]domain.Outcome{"sam": "needs_review"}, detail: map[string]string{"sam": "no date of birth to compare: possible match"}},
		{name: "LEIE name match on a row without DOB is a possible match", first: "Gina", last: "Rowe", dob: dob, lics: lic("IL", "036100031"),
			nppes: ok("ROWE", "GINA"), licRows: []seed.LicenseRow{active("IL", "036100031", "Rowe", "Gina")},
			leie:     []seed.LEIERow{{Last: "ROWE", First: "GINA"}},
			decision: "needs_review", outcomes: map[string]domain.Outcome{"leie": "needs_review"}, detail: map[string]string{"leie": "possible match"}},
		{name: "LEIE name match for a provider without DOB is a possible match", first: "Hugo", last: "Stone", lics: lic("IL", "036100032"),
			nppes: ok("STONE", "HUGO"), licRows: []seed.LicenseRow{active("IL", "036100032", "Stone", "Hugo")},
			leie:     []seed.LEIERow{{Last: "STONE", First: "HUGO", DOB: "19700304"}},
			decision: "needs_review", outcomes: map[string]domain.Outcome{"leie": "needs_review"}, detail: map[string]string{"leie": "possible match"}},
		{name: "LEIE name match with a differing DOB is not the person", first: "Iris", last: "Tate", dob: dob, lics: lic("IL", "036100033"),
			nppes: ok("TATE", "IRIS"), licRows: []seed.LicenseRow{active("IL", "036100033", "Tate", "Iris")},
			leie:     []seed.LEIERow{{Last: "TATE", First: "IRIS", DOB: "19700305"}},
			decision: "approved", detail: map[string]string{"leie": "date of birth differs"}},
		{name: "reinstated in the past is not excluded", first: "Gavin", last: "Reyes", dob: dob, lics: lic("IL", "036100007"),
			nppes: ok("REYES", "GAVIN"), licRows: []seed.LicenseRow{active("IL", "036100007", "Reyes", "Gavin")},
			leie:     []seed.LEIERow{{Last: "REYES", First: "GAVIN", NPI: "$NPI", DOB: "19700304", ExclDate: "20150101", Rein: "20180101"}},
			decision: "approved", detail: map[string]string{"leie": "reinstated on 2018-01-01"}},
		{name: "reinstatement in the future still excludes", first: "Hana", last: "Sato", dob: dob, lics: lic("IL", "036100008"),
			nppes: ok("SATO", "HANA"), licRows: []seed.LicenseRow{active("IL", "036100008", "Sato", "Hana")},
			leie:     []seed.LEIERow{{Last: "SATO", First: "HANA", NPI: "$NPI", Rein: "20990101"}},
			decision: "denied", outcomes: map[string]domain.Outcome{"leie": "fail"}},
		{name: "waiver in a state the provider is licensed in needs review", first: "Ivan", last: "Torres", dob: dob, lics: lic("IL", "036100009"),
			nppes: ok("TORRES", "IVAN"), licRows: []seed.LicenseRow{active("IL", "036100009", "Torres", "Ivan")},
			leie:     []seed.LEIERow{{Last: "TORRES", First: "IVAN", NPI: "$NPI", Waiver: "20210601", WvrState: "IL"}},
			decision: "needs_review", outcomes: map[string]domain.Outcome{"leie": "needs_review"}, detail: map[string]string{"leie": "waiver for IL"}},
		{name: "waiver for a state without the provider's license is denied", first: "Jon", last: "Upton", dob: dob, lics: lic("IL", "036100034"),
			nppes: ok("UPTON", "JON"), licRows: []seed.LicenseRow{active("IL", "036100034", "Upton", "Jon")},
			leie:     []seed.LEIERow{{Last: "UPTON", First: "JON", NPI: "$NPI", Waiver: "20210601", WvrState: "WI"}},
			decision: "denied", outcomes: map[string]domain.Outcome{"leie": "fail"}, detail: map[string]string{"leie": "applies only in WI"}},
		{name: "waiver for one of two licensed states needs review", first: "Kara", last: "Vogel", dob: dob,
			lics:  append(lic("IL", "036100035"), providers.License{State: "WI", Number: "W-35", Type: "MD"}),
			nppes: ok("VOGEL", "KARA"), licRows: []seed.LicenseRow{active("IL", "036100035", "Vogel", "Kara"), active("WI", "W-35", "Vogel", "Kara")},
			leie:     []seed.LEIERow{{Last: "VOGEL", First: "KARA", NPI: "$NPI", Waiver: "20210601", WvrState: "WI"}},
			decision: "needs_review", outcomes: map[string]domain.Outcome{"leie": "needs_review"}, detail: map[string]string{"leie": "waiver for WI"}},
		{name: "SAM termination in the past no longer excludes", first: "Jana", last: "Usher", dob: dob, lics: lic("IL", "036100010"),
			nppes: ok("USHER", "JANA"), licRows: []seed.LicenseRow{active("IL", "036100010", "Usher", "Jana")},
			sam:      []seed.SAMRow{{First: "JANA", Last: "USHER", NPI: "$NPI", Active: "01/01/2019", Term: "01/01/2021"}},
			decision: "approved", detail: map[string]string{"sam": "terminated on 2021-01-01"}},
		{name: "expired license status is denied", first: "Kofi", last: "Vance", dob: dob, lics: lic("IL", "036100011"),
			nppes: ok("VANCE", "KOFI"), licRows: []seed.LicenseRow{{State: "IL", Number: "036100011", Status: "Expired", Expiry: past, Last: "Vance", First: "Kofi"}},
			decision: "denied", outcomes: map[string]domain.Outcome{"license": "fail"}},
		{name: "active status past its expiry date contradicts itself: needs review", first: "Lena", last: "Wolfe", dob: dob, lics: lic("IL", "036100012"),
			nppes: ok("WOLFE", "LENA"), licRows: []seed.LicenseRow{{State: "IL", Number: "036100012", Status: "Active", Expiry: past, Last: "Wolfe", First: "Lena"}},
			decision: "needs_review", outcomes: map[string]domain.Outcome{"license": "needs_review"}, detail: map[string]string{"license": "contradicts itself"}},
		{name: "expired status past its expiry date is denied", first: "Lou", last: "Wolfe", dob: dob, lics: lic("IL", "036100036"),
			nppes: ok("WOLFE", "LOU"), licRows: []seed.LicenseRow{{State: "IL", Number: "036100036", Status: "Lapsed", Expiry: past, Last: "Wolfe", First: "Lou"}},
			decision: "denied", outcomes: map[string]domain.Outcome{"license": "fail"}, detail: map[string]string{"license": "expired"}},
		// License numbers: case, spaces and punctuation folded on both sides.
		{name: "claimed 'A 890104', board 'A-890104'", first: "Mia", last: "Wynn", dob: dob, lics: lic("IL", "A 890104"),
			nppes: ok("WYNN", "MIA"), licRows: []seed.LicenseRow{active("IL", "A-890104", "Wynn", "Mia")}, decision: "approved"},
		{name: "claimed 'b890104', board 'B 890104'", first: "Ned", last: "Wynn", dob: dob, lics: lic("IL", "b890104"),
			nppes: ok("WYNN", "NED"), licRows: []seed.LicenseRow{active("IL", "B 890104", "Wynn", "Ned")}, decision: "approved"},
		{name: "claimed 'C-890104', board 'c890104'", first: "Ola", last: "Wynn", dob: dob, lics: lic("IL", "C-890104"),
			nppes: ok("WYNN", "OLA"), licRows: []seed.LicenseRow{active("IL", "c890104", "Wynn", "Ola")}, decision: "approved"},
		{name: "folded number found only in another state", first: "Pia", last: "Wynn", dob: dob, lics: lic("IL", "d-890104"),
			nppes: ok("WYNN", "PIA"), licRows: []seed.LicenseRow{active("WI", "D890104", "Wynn", "Pia")},
			decision: "needs_review", outcomes: map[string]domain.Outcome{"license": "needs_review"}, detail: map[string]string{"license": "only found in WI"}},
		// Board status words through the default table.
		{name: "status In Good Standing is active", first: "Rex", last: "Yates", dob: dob, lics: lic("IL", "036100041"),
			nppes: ok("YATES", "REX"), licRows: []seed.LicenseRow{{State: "IL", Number: "036100041", Status: "In Good Standing", Expiry: future, Last: "Yates", First: "Rex"}},
			decision: "approved"},
		{name: "status Registered is active", first: "Sia", last: "Yates", dob: dob, lics: lic("IL", "036100042"),
			nppes: ok("YATES", "SIA"), licRows: []seed.LicenseRow{{State: "IL", Number: "036100042", Status: "Registered", Expiry: future, Last: "Yates", First: "Sia"}},
			decision: "approved"},
		{name: "status Clear is active", first: "Tom", last: "Yates", dob: dob, lics: lic("IL", "036100043"),
			nppes: ok("YATES", "TOM"), licRows: []seed.LicenseRow{{State: "IL", Number: "036100043", Status: "CLEAR", Expiry: future, Last: "Yates", First: "Tom"}},
			decision: "approved"},
		{name: "status Surrendered needs review", first: "Uli", last: "Yates", dob: dob, lics: lic("IL", "036100044"),
			nppes: ok("YATES", "ULI"), licRows: []seed.LicenseRow{{State: "IL", Number: "036100044", Status: "Surrendered", Expiry: future, Last: "Yates", First: "Uli"}},
			decision: "needs_review", outcomes: map[string]domain.Outcome{"license": "needs_review"}, detail: map[string]string{"license": "surrendered"}},
		{name: "a status the table does not know needs review", first: "Val", last: "Yates", dob: dob, lics: lic("IL", "036100045"),
			nppes: ok("YATES", "VAL"), licRows: []seed.LicenseRow{{State: "IL", Number: "036100045", Status: "Pending Board Action", Expiry: future, Last: "Yates", First: "Val"}},
			decision: "needs_review", outcomes: map[string]domain.Outcome{"license": "needs_review"}, detail: map[string]string{"license": "not in the status table"}},
		{name: "revoked license is denied", first: "Marco", last: "Xu", dob: dob, lics: lic("IL", "036100013"),
			nppes: ok("XU", "MARCO"), licRows: []seed.LicenseRow{{State: "IL", Number: "036100013", Status: "Revoked", Expiry: future, Last: "Xu", First: "Marco"}},
			decision: "denied", outcomes: map[string]domain.Outcome{"license": "fail"}, detail: map[string]string{"license": "revoked"}},
		{name: "suspended license needs review", first: "Nora", last: "Young", dob: dob, lics: lic("IL", "036100014"),
			nppes: ok("YOUNG", "NORA"), licRows: []seed.LicenseRow{{State: "IL", Number: "036100014", Status: "Suspended", Expiry: future, Last: "Young", First: "Nora"}},
			decision: "needs_review", outcomes: map[string]domain.Outcome{"license": "needs_review"}},
		{name: "license only found in another state needs review", first: "Omar", last: "Zane", dob: dob, lics: lic("IL", "036100015"),
			nppes: ok("ZANE", "OMAR"), licRows: []seed.LicenseRow{active("WI", "036100015", "Zane", "Omar")},
			decision: "needs_review", outcomes: map[string]domain.Outcome{"license": "needs_review"}, detail: map[string]string{"license": "only found in WI"}},
		{name: "license not found needs review", first: "Paula", last: "Abbot", dob: dob, lics: lic("IL", "036100016"),
			nppes: ok("ABBOT", "PAULA"), decision: "needs_review", outcomes: map[string]domain.Outcome{"license": "needs_review"}},
		{name: "several records for one license need review", first: "Quentin", last: "Baker", dob: dob, lics: lic("IL", "036100017"),
			nppes: ok("BAKER", "QUENTIN"), licRows: []seed.LicenseRow{active("IL", "036100017", "Baker", "Quentin"), active("IL", "036100017", "Baker", "Quinn")},
			decision: "needs_review", outcomes: map[string]domain.Outcome{"license": "needs_review"}, detail: map[string]string{"license": "2 records"}},
		{name: "provider with no licenses needs review", first: "Rosa", last: "Chen", dob: dob,
			nppes: ok("CHEN", "ROSA"), decision: "needs_review", outcomes: map[string]domain.Outcome{"license": "needs_review"}},
		{name: "deactivated NPI needs review (NPPES fail does not deny)", first: "Sven", last: "Diaz", dob: dob, lics: lic("IL", "036100019"),
			nppes:    &seed.NPPESRow{NPI: "$NPI", Entity: "", Deact: "03/15/2022"},
			licRows:  []seed.LicenseRow{active("IL", "036100019", "Diaz", "Sven")},
			decision: "needs_review", outcomes: map[string]domain.Outcome{"nppes": "fail"}, detail: map[string]string{"nppes": "deactivated"}},
		{name: "reactivated NPI is approved", first: "Tara", last: "Ellis", dob: dob, lics: lic("IL", "036100020"),
			nppes:    &seed.NPPESRow{NPI: "$NPI", Entity: "1", Last: "ELLIS", First: "TARA", Deact: "03/15/2019", React: "04/01/2019"},
			licRows:  []seed.LicenseRow{active("IL", "036100020", "Ellis", "Tara")},
			decision: "approved"},
		{name: "organization NPI fails NPPES", first: "Uma", last: "Ford", dob: dob, lics: lic("IL", "036100021"),
			nppes: &seed.NPPESRow{NPI: "$NPI", Entity: "2", Last: "FORD CLINIC LLC"}, licRows: []seed.LicenseRow{active("IL", "036100021", "Ford", "Uma")},
			decision: "needs_review", outcomes: map[string]domain.Outcome{"nppes": "fail"}, detail: map[string]string{"nppes": "organization"}},
		{name: "NPI missing from NPPES fails NPPES", first: "Vera", last: "Gray", dob: dob, lics: lic("IL", "036100022"),
			licRows: []seed.LicenseRow{active("IL", "036100022", "Gray", "Vera")}, decision: "needs_review", outcomes: map[string]domain.Outcome{"nppes": "fail"}},
		{name: "name variants (case, punctuation, suffix, middle initial) are approved", first: "Mary-Ann", middle: "Louise", last: "O'Neil", suffix: "Jr.", dob: dob,
			lics:     lic("IL", "036100023"),
			nppes:    &seed.NPPESRow{NPI: "$NPI", Entity: "1", Last: "ONEIL", First: "MARY ANN", Middle: "L.", Suffix: "JR"},
			licRows:  []seed.LicenseRow{{State: "IL", Number: "036100023", Status: "ACTIVE", Expiry: future, Last: "o'neil jr", First: "mary-ann", Middle: "L"}},
			decision: "approved"},
		{name: "first initial only needs review", first: "John", last: "Hale", dob: dob, lics: lic("IL", "036100024"),
			nppes: ok("HALE", "J"), licRows: []seed.LicenseRow{active("IL", "036100024", "Hale", "John")},
			decision: "needs_review", outcomes: map[string]domain.Outcome{"nppes": "needs_review"}},
		{name: "different name on the NPI fails NPPES", first: "Kyle", last: "Irwin", dob: dob, lics: lic("IL", "036100025"),
			nppes: ok("JONES", "PETER"), licRows: []seed.LicenseRow{active("IL", "036100025", "Irwin", "Kyle")},
			decision: "needs_review", outcomes: map[string]domain.Outcome{"nppes": "fail"}},
		{name: "excluded by NPI in both lists, one of two licenses expired", first: "Liam", last: "Jonas", dob: dob,
			lics:  append(lic("IL", "036100026"), providers.License{State: "WI", Number: "W-26", Type: "MD"}),
			nppes: ok("JONAS", "LIAM"),
			licRows: []seed.LicenseRow{active("IL", "036100026", "Jonas", "Liam"),
				{State: "WI", Number: "W-26", Status: "Expired", Expiry: past, Last: "Jonas", First: "Liam"}},
			leie:     []seed.LEIERow{{Last: "JONAS", First: "LIAM", NPI: "$NPI"}},
			sam:      []seed.SAMRow{{First: "LIAM", Last: "JONAS", NPI: "$NPI", Active: "03/01/2021", Term: "Indefinite"}},
			decision: "denied", outcomes: map[string]domain.Outcome{"leie": "fail", "sam": "fail", "license": "fail"}},
	}
}

// seedRules creates every case's provider and imports the source files
// holding all cases' rows; it returns the provider ids in case order.
func seedRules(k *kit, cases []ruleCase) []string {
	var nppesRows []seed.NPPESRow
	var leieRows []seed.LEIERow
	var samRows []seed.SAMRow
	var licRows []seed.LicenseRow
	ids := make([]string, len(cases))
	for i, c := range cases {
		n := seed.NPI(fmt.Sprintf("1%08d", 7000+i))
		ids[i] = fmt.Sprintf("rule_%02d", i)
		var born *providers.Date
		if c.dob != "" {
			born = date(c.dob)
		}
		p := &providers.Provider{ID: ids[i], NPI: n, FirstName: c.first, MiddleName: c.middle, LastName: c.last,
			Suffix: c.suffix, DateOfBirth: born, Licenses: c.lics}
		k.create(p)
		fill := func(s string) string { return strings.ReplaceAll(s, "$NPI", n) }
		if c.nppes != nil {
			r := *c.nppes
			r.NPI = fill(r.NPI)
			nppesRows = append(nppesRows, r)
		}
		for _, r := range c.leie {
			r.NPI = fill(r.NPI)
			leieRows = append(leieRows, r)
		}
		for _, r := range c.sam {
			r.NPI = fill(r.NPI)
			samRows = append(samRows, r)
		}
		for _, r := range c.licRows {
			r.NPI = fill(r.NPI)
			licRows = append(licRows, r)
		}
	}
	// One unrelated row each: a list never arrives empty (the importer refuses that).
	other := seed.NPI("299999999")
	nppesRows = append(nppesRows, seed.NPPESRow{NPI: other, Entity: "1", Last: "UNRELATED", First: "PAT"})
	leieRows = append(leieRows, seed.LEIERow{Last: "UNRELATED", First: "PAT", NPI: other})
	samRows = append(samRows, seed.SAMRow{First: "PAT", Last: "UNRELATED", NPI: other, Active: "01/01/2020", Term: "Indefinite"})
	licRows = append(licRows, seed.LicenseRow{State: "IL", Number: "X-1", Status: "Active", Expiry: future, Last: "Unrelated", First: "Pat"})
	k.importCSV("nppes", seed.NPPES(nppesRows...))
	k.importCSV("leie", seed.LEIE(leieRows...))
	k.importCSV("sam", seed.SAM(samRows...))
	k.importCSV("licenses", seed.Licenses(licRows...))
	return ids
}

func TestRules(t *testing.T) {
	t.Parallel()
	k := newKit(t)
	cases := ruleCases()
	ids := seedRules(k, cases)
	e := k.engine(Options{})
	ctx := context.Background()
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			run, err := e.Credential(ctx, ids[i], RunOptions{Actor: "tester", RequestID: "req-" + ids[i]})
			if err != nil {
				t.Fatalf("Credential: %v", err)
			}
			if run.Decision != c.decision {
				t.Errorf("decision = %s, want %s; reasons %+v", run.Decision, c.decision, run.Reasons)
			}
			if len(run.Checks) != 5 {
				t.Fatalf("got %d checks, want 5", len(run.Checks))
			}
			for _, ch := range run.Checks {
				want := c.outcomes[ch.Check]
				if want == "" {
					want = domain.Pass
				}
				if ch.Outcome != want {
					t.Errorf("check %s = %s (%s), want %s", ch.Check, ch.Outcome, ch.Detail, want)
				}
				if sub := c.detail[ch.Check]; sub != "" && !strings.Contains(ch.Detail, sub) {
					t.Errorf("check %s detail %q does not say %q", ch.Check, ch.Detail, sub)
				}
				ev := ch.Evidence
				if ev.Source == "" || ev.CheckedAt.IsZero() {
					t.Errorf("check %s evidence lacks source or checked_at: %+v", ch.Check, ev)
				}
				if ch.Check != results.CheckNPIFormat && ch.Outcome != domain.Unavailable && ch.Check != results.CheckLicense && ev.SourceVersion == nil {
					t.Errorf("check %s evidence lacks the source version", ch.Check)
				}
				if ch.Outcome == domain.Fail && ch.Check != results.CheckNPPES && (len(ev.MatchedRecord) < 3 || len(ev.Digest) != 64) {
					t.Errorf("failing check %s evidence lacks the matched record or digest: %s %q", ch.Check, ev.MatchedRecord, ev.Digest)
				}
			}
		})
	}
}
