// Command redisclient measures the two Redis clients the limiter could use,
// go-redis v9 (UniversalClient, a connection pool) and rueidis (auto-
// pipelining over a few connections), on the limiter's own call: the GCRA
// script by SHA on one key per caller, at 1, 32 and 128 concurrent callers,
// interleaved rounds. It prints calls/s and the client process's CPU time
// per call (Redis's own CPU is the same for both). docs/benchmarks.md has
// the result and the choice.
//
//	go run ./bench/redisclient [-duration 2s] [-rounds 3]
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"sort"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/rueidis"

	"github.com/provcred/gateway/internal/ratelimit"
)

func main() {
	duration := flag.Duration("duration", 2*time.Second, "time per client, concurrency and round")
	rounds := flag.Int("rounds", 3, "interleaved rounds (the median is shown)")
	addr := flag.String("addr", "127.0.0.1:6379", "Redis")
	flag.Parse()
	ctx := context.Background()
	prefix := fmt.Sprintf("bench:client:%d:", os.Getpid())
	// T = 1µs, huge burst: every call is an allowed decision that writes.
	args := []string{"1.000", "1000000000000.000"}

	gr := redis.NewUniversalClient(&redis.UniversalOptions{Addrs: []string{*addr}, PoolSize: 256})
	defer gr.Close()
	grScript := redis.NewScript(ratelimit.GCRAScript)
	rc, err := rueidis.NewClient(rueidis.ClientOption{InitAddress: []string{*addr}, DisableCache: true})
	if err != nil {
		log.Fatal(err)
	}
	defer rc.Close()
	rcScript := rueidis.NewLuaScript(ratelimit.GCRAScript)
	clients := []struct {
		name string
		call func(key string) error
	}{
		{"go-redis v9", func(k string) error { return grScript.Run(ctx, gr, []string{k}, args[0], args[1]).Err() }},
		{"rueidis", func(k string) error { return rcScript.Exec(ctx, rc, []string{k}, args).Error() }},
	}
	fmt.Printf("Redis client for the limiter: the GCRA script by SHA, one key per caller, %d rounds of %s\n\n", *rounds, *duration)
	fmt.Printf("%-12s %6s %12s %14s\n", "client", "conc", "calls/s", "CPU/call")
	for _, conc := range []int{1, 32, 128} {
		type res struct{ rps, cpu float64 }
		runs := make([][]res, len(clients))
		for r := 0; r < *rounds; r++ {
			for i, c := range clients {
				n, cpu := run(c.call, prefix, conc, *duration)
				runs[i] = append(runs[i], res{float64(n) / duration.Seconds(), float64(cpu.Microseconds()) / float64(max(n, 1))})
			}
		}
		for i, c := range clients {
			sort.Slice(runs[i], func(a, b int) bool { return runs[i][a].rps < runs[i][b].rps })
			m := runs[i][len(runs[i])/2]
			fmt.Printf("%-12s %6d %12.0f %12.1fµs\n", c.name, conc, m.rps, m.cpu)
		}
	}
}

func run(call func(string) error, prefix string, conc int, d time.Duration) (int64, time.Duration) {
	var n atomic.Int64
	var wg sync.WaitGroup
	stop := time.Now().Add(d)
	c0 := cpu()
	for i := 0; i < conc; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			k := fmt.Sprintf("%s{k%d}", prefix, i)
			for time.Now().Before(stop) {
				if err := call(k); err != nil {
					log.Fatal(err)
				}
				n.Add(1)
			}
		}(i)
	}
	wg.Wait()
	return n.Load(), cpu() - c0
}

func cpu() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
