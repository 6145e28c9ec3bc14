module github.com/provcred/stats

go 1.26.8

require github.com/provcred/platform v0.0.0

replace github.com/provcred/platform => ../../platform
