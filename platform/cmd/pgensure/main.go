// Command pgensure creates the database named in a PostgreSQL URL when it
// does not exist yet (connecting to the server's `postgres` database to do
// so), so `make run` works on a machine without psql.
//
//	pgensure postgres://postgres@127.0.0.1:5432/credentialing?sslmode=disable
package main

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: pgensure DATABASE_URL")
		os.Exit(2)
	}
	if err := ensure(os.Args[1]); err != nil {
		fmt.Fprintln(os.Stderr, "pgensure:", err)
		os.Exit(1)
	}
}

func ensure(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("cannot parse the database URL")
	}
	name := strings.TrimPrefix(u.Path, "/")
	if name == "" {
		return fmt.Errorf("the URL names no database")
	}
	admin := *u
	admin.Path = "/postgres"
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var conn *pgx.Conn
	for {
		conn, err = pgx.Connect(ctx, admin.String())
		if err == nil || ctx.Err() != nil {
			break
		}
		time.Sleep(300 * time.Millisecond) // the server may still be starting
	}
	if err != nil {
		return fmt.Errorf("connect to %s: %w", u.Host, err)
	}
	defer conn.Close(ctx)
	var exists bool
	if err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`, name).Scan(&exists); err != nil {
		return err
	}
	if exists {
		return nil
	}
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		return fmt.Errorf("create database %s: %w", name, err)
	}
	fmt.Println("created database", name)
	return nil
}
