package providers

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/provcred/platform/domain"
)

// UpsertResult says what an Upsert did.
type UpsertResult struct {
	Created int      `json:"created"`
	Updated int      `json:"updated"`
	IDs     []string `json:"-"` // in input order
}

// Upsert writes many validated providers in one transaction, set-based (a
// roster of tens of thousands is a few statements, not one per row). A row
// is matched to an existing provider by id when it has one, else by NPI;
// unmatched rows get a new UUID. Licenses of every upserted provider are
// replaced by the roster's. Each created or updated provider gets its audit
// entry, with before and after.
func (s *Store) Upsert(ctx context.Context, actor Actor, ps []*Provider) (*UpsertResult, error) {
	res := &UpsertResult{}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `CREATE TEMP TABLE roster_in (
			ord int, id text, npi text, first_name text, middle_name text, last_name text, suffix text,
			date_of_birth date, specialty text, taxonomy_code text, dea_number text,
			board_certifications jsonb, licenses jsonb) ON COMMIT DROP`); err != nil {
			return fmt.Errorf("staging table: %w", err)
		}
		_, err := tx.CopyFrom(ctx, pgx.Identifier{"roster_in"}, []string{"ord", "id", "npi", "first_name",
			"middle_name", "last_name", "suffix", "date_of_birth", "specialty", "taxonomy_code", "dea_number",
			"board_certifications", "licenses"}, pgx.CopyFromSlice(len(ps), func(i int) ([]any, error) {
			p := ps[i]
			lic, err := json.Marshal(p.Licenses)
			if err != nil {
				return nil, err
			}
			var id any
			if p.ID != "" {
				id = p.ID
			}
			return []any{i, id, p.NPI, p.FirstName, p.MiddleName, p.LastName, p.Suffix, dateArg(p.DateOfBirth),
				p.Specialty, p.TaxonomyCode, p.DEANumber, boardsJSON(p), lic}, nil
		}))
		if err != nil {
			return fmt.Errorf("stage roster: %w", err)
		}
		// A temp table has no statistics until analyzed: the planner then
		// guesses a few hundred rows and joins the staged roster with the
		// upsert's results by nested loops, quadratic in the roster's size
		// (50,000 rows took minutes instead of seconds).
		if _, err := tx.Exec(ctx, `ANALYZE roster_in`); err != nil {
			return fmt.Errorf("analyze roster: %w", err)
		}
		// Rows without an id take the id of the provider that has their NPI, else a new one.
		if _, err := tx.Exec(ctx, `UPDATE roster_in r SET id = p.id FROM providers p WHERE r.id IS NULL AND p.npi = r.npi;
			UPDATE roster_in SET id = gen_random_uuid()::text WHERE id IS NULL`); err != nil {
			return fmt.Errorf("resolve ids: %w", err)
		}
		var clashID, clashNPI, otherID string
		err = tx.QueryRow(ctx, `SELECT r.id, r.npi, p.id FROM roster_in r JOIN providers p ON p.npi = r.npi AND p.id <> r.id
			UNION ALL SELECT a.id, a.npi, b.id FROM roster_in a JOIN roster_in b ON a.npi = b.npi AND a.ord < b.ord
			LIMIT 1`).Scan(&clashID, &clashNPI, &otherID)
		if err == nil {
			return domain.Conflict("npi_exists", fmt.Sprintf("NPI %s of provider %s already belongs to provider %s", clashNPI, clashID, otherID))
		} else if err != pgx.ErrNoRows {
			return fmt.Errorf("check npi clashes: %w", err)
		}
		// Two rows can still name one provider: one by id, another (without
		// an id) by that provider's current NPI while the first changes it.
		// One statement cannot update a row twice, so say which rows clash.
		var twiceID, npiA, npiB string
		err = tx.QueryRow(ctx, `SELECT a.id, a.npi, b.npi FROM roster_in a JOIN roster_in b ON a.id = b.id AND a.ord < b.ord
			LIMIT 1`).Scan(&twiceID, &npiA, &npiB)
		if err == nil {
			return domain.Conflict("conflict", fmt.Sprintf("rows with NPI %s and NPI %s both resolve to provider %s; give each row its id", npiA, npiB, twiceID))
		} else if err != pgx.ErrNoRows {
			return fmt.Errorf("check id clashes: %w", err)
		}
		// The CTEs share one snapshot: "old" sees the rows as they were before "up" writes.
		rows, err := tx.Query(ctx, `WITH old AS (
				SELECT p.id, to_jsonb(p) AS j FROM providers p JOIN roster_in r USING (id)),
			up AS (
				INSERT INTO providers AS p (id, npi, first_name, middle_name, last_name, suffix, date_of_birth,
					specialty, taxonomy_code, dea_number, board_certifications)
				SELECT id, npi, first_name, middle_name, last_name, suffix, date_of_birth, specialty,
					taxonomy_code, dea_number, board_certifications FROM roster_in ORDER BY ord
				ON CONFLICT (id) DO UPDATE SET npi = EXCLUDED.npi, first_name = EXCLUDED.first_name,
					middle_name = EXCLUDED.middle_name, last_name = EXCLUDED.last_name, suffix = EXCLUDED.suffix,
					date_of_birth = EXCLUDED.date_of_birth, specialty = EXCLUDED.specialty,
					taxonomy_code = EXCLUDED.taxonomy_code, dea_number = EXCLUDED.dea_number,
					board_certifications = EXCLUDED.board_certifications, updated_at = now()
				RETURNING p.id, (p.xmax = 0) AS inserted, to_jsonb(p) AS j),
			logged AS (
				INSERT INTO audit_log (actor, event, provider_id, entity, entity_id, before, after, request_id)
				SELECT $1, CASE WHEN up.inserted THEN 'provider.created' ELSE 'provider.updated' END,
					up.id, 'provider', up.id, old.j, up.j, $2
				FROM up LEFT JOIN old USING (id))
			SELECT r.id, up.inserted FROM roster_in r JOIN up USING (id) ORDER BY r.ord`, actor.ID, actor.RequestID)
		if err != nil {
			return fmt.Errorf("upsert providers: %w", err)
		}
		for rows.Next() {
			var id string
			var inserted bool
			if err := rows.Scan(&id, &inserted); err != nil {
				rows.Close() // the transaction's connection is busy until then
				return fmt.Errorf("upsert providers: %w", err)
			}
			res.IDs = append(res.IDs, id)
			if inserted {
				res.Created++
			} else {
				res.Updated++
			}
		}
		if err := rows.Err(); err != nil {
			return conflictError(err, &Provider{})
		}
		_, err = tx.Exec(ctx, `DELETE FROM provider_licenses WHERE provider_id IN (SELECT id FROM roster_in);
			INSERT INTO provider_licenses (provider_id, state, number, type, expires_on)
			SELECT r.id, l.state, l.number, COALESCE(l.type, ''), l.expires_on
			FROM roster_in r, jsonb_to_recordset(r.licenses) AS l(state text, number text, type text, expires_on date)`)
		if err != nil {
			return fmt.Errorf("write roster licenses: %w", err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return res, nil
}
