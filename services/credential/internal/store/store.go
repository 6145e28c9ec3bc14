// Package store holds the credential service's schema: its migrations are
// embedded and applied at start-up and by `credential migrate`.
package store

import (
	"embed"
	"io/fs"
)

// Schema is the PostgreSQL schema the credential service owns.
const Schema = "credential"

//go:embed migrations/*.sql
var migrations embed.FS

// Migrations returns the migration files, named NNNN_name.sql.
func Migrations() fs.FS {
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		panic(err) // the embed pattern guarantees the folder exists
	}
	return sub
}
