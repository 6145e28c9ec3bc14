package providers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/provcred/credential/internal/config"

	"github.com/provcred/credential/internal/audit"
	"github.com/provcred/platform/database"
	"github.com/provcred/platform/domain"
)

// Store reads and writes providers.
type Store struct {
	pool *pgxpool.Pool
	now  func() time.Time
	// StaleAfter is VERIFICATION_MAX_AGE: a provider's last verification
	// older than this makes its decision stale (verification_stale). NewStore
	// sets the setting's default; main sets the configured value.
	StaleAfter time.Duration
}

// NewStore returns a Store on pool, with VERIFICATION_MAX_AGE at its default.
func NewStore(pool *pgxpool.Pool) *Store {
	return &Store{pool: pool, now: time.Now, StaleAfter: config.Defaults().VerificationMaxAge}
}

// Actor identifies who makes a change, for the audit log.
type Actor struct {
	ID        string
	RequestID string
}

const selectProvider = `SELECT p.id, p.npi, p.first_name, p.middle_name, p.last_name, p.suffix, p.date_of_birth,
	p.specialty, p.taxonomy_code, p.dea_number, p.board_certifications, p.decision, p.last_verified_at,
	p.approved_at, p.exclusion_flagged_at, p.created_at, p.updated_at,
	COALESCE((SELECT json_agg(json_build_object('state', l.state, 'number', l.number, 'type', l.type,
		'expires_on', l.expires_on) ORDER BY l.state, l.number)
		FROM provider_licenses l WHERE l.provider_id = p.id), '[]')
	FROM providers p`

func (s *Store) scan(row pgx.Row) (*Provider, error) {
	var p Provider
	var dob *time.Time
	var boards, licenses []byte
	err := row.Scan(&p.ID, &p.NPI, &p.FirstName, &p.MiddleName, &p.LastName, &p.Suffix, &dob,
		&p.Specialty, &p.TaxonomyCode, &p.DEANumber, &boards, &p.Decision, &p.LastVerifiedAt,
		&p.ApprovedAt, &p.ExclusionFlaggedAt, &p.CreatedAt, &p.UpdatedAt, &licenses)
	if err != nil {
		return nil, err
	}
	if dob != nil {
		p.DateOfBirth = &Date{Time: *dob}
	}
	if err := json.Unmarshal(boards, &p.BoardCertifications); err != nil {
		return nil, fmt.Errorf("decode board_certifications of %s: %w", p.ID, err)
	}
	if err := json.Unmarshal(licenses, &p.Licenses); err != nil {
		return nil, fmt.Errorf("decode licenses of %s: %w", p.ID, err)
	}
	p.derive(s.now(), s.StaleAfter)
	return &p, nil
}

// Get returns the provider or a domain.NotFound error.
func (s *Store) Get(ctx context.Context, id string) (*Provider, error) {
	return s.get(ctx, s.pool, id)
}

func (s *Store) get(ctx context.Context, q database.Querier, id string) (*Provider, error) {
	p, err := s.scan(q.QueryRow(ctx, selectProvider+` WHERE p.id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, domain.NotFound("provider " + id + " does not exist")
	}
	if err != nil {
		return nil, fmt.Errorf("get provider: %w", err)
	}
	return p, nil
}

// Create stores a new provider, making an id when none is given.
func (s *Store) Create(ctx context.Context, actor Actor, p *Provider) (*Provider, error) {
	if p.ID == "" {
		p.ID = uuid.NewString()
	}
	var out *Provider
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO providers (id, npi, first_name, middle_name, last_name, suffix,
			date_of_birth, specialty, taxonomy_code, dea_number, board_certifications)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`, p.ID, p.NPI, p.FirstName, p.MiddleName,
			p.LastName, p.Suffix, dateArg(p.DateOfBirth), p.Specialty, p.TaxonomyCode, p.DEANumber, boardsJSON(p))
		if err != nil {
			return conflictError(err, p)
		}
		if err := writeLicenses(ctx, tx, p.ID, p.Licenses); err != nil {
			return err
		}
		if out, err = s.get(ctx, tx, p.ID); err != nil {
			return err
		}
		return audit.Write(ctx, tx, audit.Entry{Actor: actor.ID, RequestID: actor.RequestID, Event: "provider.created",
			ProviderID: p.ID, Entity: "provider", EntityID: p.ID, After: out})
	})
	return out, err
}

// Replace overwrites the provider's own fields and licenses (PUT semantics);
// verification state is kept.
func (s *Store) Replace(ctx context.Context, actor Actor, id string, p *Provider) (*Provider, error) {
	p.ID = id
	var out *Provider
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		before, err := s.get(ctx, tx, id)
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `UPDATE providers SET npi = $2, first_name = $3, middle_name = $4, last_name = $5,
			suffix = $6, date_of_birth = $7, specialty = $8, taxonomy_code = $9, dea_number = $10,
			board_certifications = $11, updated_at = now() WHERE id = $1`, id, p.NPI, p.FirstName, p.MiddleName,
			p.LastName, p.Suffix, dateArg(p.DateOfBirth), p.Specialty, p.TaxonomyCode, p.DEANumber, boardsJSON(p))
		if err != nil {
			return conflictError(err, p)
		}
		if _, err := tx.Exec(ctx, `DELETE FROM provider_licenses WHERE provider_id = $1`, id); err != nil {
			return fmt.Errorf("replace licenses: %w", err)
		}
		if err := writeLicenses(ctx, tx, id, p.Licenses); err != nil {
			return err
		}
		if out, err = s.get(ctx, tx, id); err != nil {
			return err
		}
		return audit.Write(ctx, tx, audit.Entry{Actor: actor.ID, RequestID: actor.RequestID, Event: "provider.updated",
			ProviderID: id, Entity: "provider", EntityID: id, Before: before, After: out})
	})
	return out, err
}

// Delete removes the provider and its licenses. Its credentialing history
// and audit trail stay: they are evidence, kept apart from the record.
func (s *Store) Delete(ctx context.Context, actor Actor, id string) error {
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		before, err := s.get(ctx, tx, id)
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM providers WHERE id = $1`, id); err != nil {
			return fmt.Errorf("delete provider: %w", err)
		}
		return audit.Write(ctx, tx, audit.Entry{Actor: actor.ID, RequestID: actor.RequestID, Event: "provider.deleted",
			ProviderID: id, Entity: "provider", EntityID: id, Before: before})
	})
}

// Filter narrows List.
type Filter struct {
	State     string // has a license in this state
	Specialty string // case-insensitive equality
	Decision  string // latest decision; "none" for never credentialed
	Q         string // NPI, or a name fragment
}

// ListCursor is the keyset position of List.
type ListCursor struct {
	LastName string `json:"l"`
	ID       string `json:"i"`
}

// List returns up to limit+1 providers ordered by last name then id, after
// the cursor when given (the caller trims the extra row into a cursor).
func (s *Store) List(ctx context.Context, f Filter, after *ListCursor, limit int) ([]*Provider, error) {
	var args []any
	arg := func(v any) string { args = append(args, v); return fmt.Sprintf("$%d", len(args)) }
	var where []string
	if f.State != "" {
		where = append(where, `EXISTS (SELECT 1 FROM provider_licenses l WHERE l.provider_id = p.id AND l.state = `+arg(f.State)+`)`)
	}
	if f.Specialty != "" {
		where = append(where, `lower(p.specialty) = lower(`+arg(f.Specialty)+`)`)
	}
	switch f.Decision {
	case "":
	case "none":
		where = append(where, `p.decision IS NULL`)
	default:
		where = append(where, `p.decision = `+arg(f.Decision))
	}
	if f.Q != "" {
		like := "%" + escapeLike(strings.ToLower(f.Q)) + "%"
		where = append(where, `(p.npi = `+arg(f.Q)+` OR p.id = `+arg(f.Q)+` OR lower(p.first_name || ' ' || p.last_name) LIKE `+arg(like)+`)`)
	}
	if after != nil {
		where = append(where, `(lower(p.last_name), p.id) > (`+arg(after.LastName)+`, `+arg(after.ID)+`)`)
	}
	sql := selectProvider
	if len(where) > 0 {
		sql += " WHERE " + strings.Join(where, " AND ")
	}
	sql += ` ORDER BY lower(p.last_name), p.id LIMIT ` + arg(limit+1)
	rows, err := s.pool.Query(ctx, sql, args...)
	if err != nil {
		return nil, fmt.Errorf("list providers: %w", err)
	}
	defer rows.Close()
	var out []*Provider
	for rows.Next() {
		p, err := s.scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

func escapeLike(s string) string {
	return strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(s)
}

func writeLicenses(ctx context.Context, tx pgx.Tx, id string, ls []License) error {
	for _, l := range ls {
		if _, err := tx.Exec(ctx, `INSERT INTO provider_licenses (provider_id, state, number, type, expires_on)
			VALUES ($1, $2, $3, $4, $5)`, id, l.State, l.Number, l.Type, dateArg(l.ExpiresOn)); err != nil {
			return fmt.Errorf("insert license: %w", err)
		}
	}
	return nil
}

func dateArg(d *Date) any {
	if d == nil {
		return nil
	}
	return d.Time
}

func boardsJSON(p *Provider) []byte {
	b, _ := json.Marshal(p.BoardCertifications) // plain structs always marshal
	return b
}

// conflictError turns unique violations into domain conflicts that say which key clashed.
func conflictError(err error, p *Provider) error {
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == "23505" {
		if strings.Contains(pe.ConstraintName, "npi") {
			return domain.Conflict("npi_exists", "another provider already has NPI "+p.NPI)
		}
		return domain.Conflict("provider_exists", "provider "+p.ID+" already exists")
	}
	return fmt.Errorf("write provider: %w", err)
}
