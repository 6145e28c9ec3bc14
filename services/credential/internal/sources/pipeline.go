package sources

import (
	"io"
	"sync"
)

// Pipeline is a pgx.CopyFromSource that reads and parses the file in its own
// goroutine, a batch of rows ahead of the consumer. pgx encodes rows for COPY
// in the goroutine that calls Next; moving CSV parsing, the record and the
// digest to another one lets the two overlap. Memory stays bounded: at most
// pipelineDepth+2 batches of pipelineBatch rows exist at once, recycled.
type Pipeline struct {
	r     *Reader
	ready chan *batch
	free  chan *batch
	done  chan struct{}
	wg    sync.WaitGroup
	cur   *batch
	pos   int
	err   error
	once  sync.Once
	rows  int64
}

const (
	pipelineBatch = 512
	pipelineDepth = 2
)

type batch struct {
	vals  [][]any
	arena []byte // copies of the parser's reused []byte values
	n     int
	err   error
	line  int64
}

// NewPipeline reads r's header (errors as NewReader) and starts parsing rows
// ahead. Close must be called when done.
func NewPipeline(f Format, r io.Reader) (*Pipeline, error) {
	rd, err := NewReader(f, r)
	if err != nil {
		return nil, err
	}
	p := &Pipeline{r: rd, ready: make(chan *batch, pipelineDepth), free: make(chan *batch, pipelineDepth+2),
		done: make(chan struct{})}
	cols := len(f.Columns())
	for i := 0; i < pipelineDepth+2; i++ {
		b := &batch{vals: make([][]any, pipelineBatch)}
		for j := range b.vals {
			b.vals[j] = make([]any, cols)
		}
		p.free <- b
	}
	p.wg.Add(1)
	go p.produce()
	return p, nil
}

func (p *Pipeline) produce() {
	defer p.wg.Done()
	defer close(p.ready)
	for {
		var b *batch
		select {
		case b = <-p.free:
		case <-p.done:
			return
		}
		b.n, b.err, b.arena = 0, nil, b.arena[:0]
		// Offsets into the arena are fixed up after the batch is full: the
		// arena may move while it grows.
		type ref struct{ row, col, off, end int }
		var refs []ref
		for b.n < pipelineBatch && p.r.Next() {
			v, _ := p.r.Values()
			dst := b.vals[b.n]
			for i, x := range v {
				if bs, ok := x.([]byte); ok {
					off := len(b.arena)
					b.arena = append(b.arena, bs...)
					refs = append(refs, ref{b.n, i, off, len(b.arena)})
					dst[i] = nil
					continue
				}
				dst[i] = x
			}
			b.n++
		}
		for _, rf := range refs {
			b.vals[rf.row][rf.col] = b.arena[rf.off:rf.end:rf.end]
		}
		b.err, b.line = p.r.Err(), p.r.Line()
		last := b.n < pipelineBatch
		select {
		case p.ready <- b:
		case <-p.done:
			return
		}
		if last {
			return
		}
	}
}

// Next implements pgx.CopyFromSource.
func (p *Pipeline) Next() bool {
	for {
		if p.cur != nil && p.pos < p.cur.n {
			p.pos++
			p.rows++
			return true
		}
		if p.cur != nil {
			if p.cur.err != nil {
				p.err = p.cur.err
				return false
			}
			if p.cur.n < pipelineBatch { // the file ended in this batch
				return false
			}
			p.free <- p.cur
			p.cur = nil
		}
		b, ok := <-p.ready
		if !ok {
			return false
		}
		p.cur, p.pos = b, 0
	}
}

// Values implements pgx.CopyFromSource.
func (p *Pipeline) Values() ([]any, error) { return p.cur.vals[p.pos-1], nil }

// Err implements pgx.CopyFromSource: nil, or the *LineError that stopped the file.
func (p *Pipeline) Err() error { return p.err }

// Rows is the number of rows handed out so far.
func (p *Pipeline) Rows() int64 { return p.rows }

// Line is the file line of the last record of the batch being handed out
// (1, the header, before any). Call it after Next returned false.
func (p *Pipeline) Line() int64 {
	if p.cur != nil {
		return p.cur.line
	}
	return 1
}

// Encoding is the file's text encoding (sources.EncodingUTF8 or
// EncodingWindows1252) as far as it was read. Call it after Close.
func (p *Pipeline) Encoding() string { return p.r.Encoding() }

// Close stops the parser goroutine and waits for it.
func (p *Pipeline) Close() {
	p.once.Do(func() { close(p.done) })
	p.wg.Wait()
}
