package server

import (
	"context"
	"math"
	"os"
	"runtime"

	"github.com/shirou/gopsutil/v4/cpu"
	"github.com/shirou/gopsutil/v4/mem"
	"github.com/shirou/gopsutil/v4/process"
)

// System is the host and process view in /health/concurrency. Host figures
// keep the original service's names; process figures are this replica's.
type System struct {
	CPUPercent        float64 `json:"cpu_percent"`
	MemoryPercent     float64 `json:"memory_percent"`
	MemoryAvailableGB float64 `json:"memory_available_gb"`
	Process           struct {
		CPUPercent float64 `json:"cpu_percent"`
		RSSMB      float64 `json:"rss_mb"`
		Goroutines int     `json:"goroutines"`
	} `json:"process"`
}

// SystemStats samples CPU and memory. CPU is measured since the previous
// call (gopsutil keeps the last sample), so it costs no sleep.
func SystemStats(ctx context.Context) System {
	var s System
	if p, err := cpu.PercentWithContext(ctx, 0, false); err == nil && len(p) > 0 {
		s.CPUPercent = round1(p[0])
	}
	if vm, err := mem.VirtualMemoryWithContext(ctx); err == nil {
		s.MemoryPercent = round1(vm.UsedPercent)
		s.MemoryAvailableGB = round1(float64(vm.Available) / (1 << 30))
	}
	if p, err := process.NewProcessWithContext(ctx, int32(os.Getpid())); err == nil {
		if c, err := p.PercentWithContext(ctx, 0); err == nil {
			s.Process.CPUPercent = round1(c)
		}
		if mi, err := p.MemoryInfoWithContext(ctx); err == nil {
			s.Process.RSSMB = round1(float64(mi.RSS) / (1 << 20))
		}
	}
	s.Process.Goroutines = runtime.NumGoroutine()
	return s
}

func round1(f float64) float64 { return math.Round(f*10) / 10 }
