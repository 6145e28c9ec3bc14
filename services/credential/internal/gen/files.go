package gen

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// File names WriteAll uses in its output directory.
const (
	FileRoster   = "providers.csv"
	FileExpected = "expected.csv"
	FileNPPES    = "npidata_pfile.csv"
	FileLEIE     = "UPDATED.csv"
	FileSAM      = "sam_exclusions.csv"
	FileLicenses = "licenses.csv"
)

// WriteAll writes every file into dir (created if needed) and returns their paths.
func WriteAll(dir string, o Options) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create %s: %w", dir, err)
	}
	g := New(o)
	writers := []struct {
		name  string
		write func(io.Writer) error
	}{
		{FileRoster, g.WriteRoster}, {FileExpected, g.WriteExpected}, {FileNPPES, g.WriteNPPES},
		{FileLEIE, g.WriteLEIE}, {FileSAM, g.WriteSAM}, {FileLicenses, g.WriteLicenses},
	}
	if o.Windows1252 {
		// The license roster's names keep their accents (the federal files
		// print ASCII upper case): written as an old Windows export would.
		writers[5].write = func(w io.Writer) error {
			dw := Windows1252(w)
			if err := g.WriteLicenses(dw); err != nil {
				return err
			}
			return dw.Close()
		}
	}
	if o.Deltas {
		writers = append(writers, []struct {
			name  string
			write func(io.Writer) error
		}{
			{g.SupplementName("EXCL"), g.WriteLEIEExclusions}, {g.SupplementName("REIN"), g.WriteLEIEReinstatements},
			{g.IncrementName(), g.WriteNPPESIncrement},
		}...)
	}
	var paths []string
	for _, wr := range writers {
		p := filepath.Join(dir, wr.name)
		if err := writeFile(p, wr.write); err != nil {
			return paths, err
		}
		paths = append(paths, p)
	}
	return paths, nil
}

func writeFile(path string, write func(io.Writer) error) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	bw := bufio.NewWriterSize(f, 1<<20)
	if err := write(bw); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := bw.Flush(); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	return f.Close()
}
