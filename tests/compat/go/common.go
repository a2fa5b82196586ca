// The part of the Go SDK compatibility programs that does not depend on the SDK: the
// JSON spec read from stdin, the burst of calls, and the JSON report written to stdout.
// The test copies this file beside one SDK's program (v1.go or v2.go) and builds both.
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"runtime"
	"sync"
	"time"
)

type Cred struct {
	ID     string `json:"id"`
	Secret string `json:"secret"`
}

type Tag struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

type Allocation struct {
	Quantity int32 `json:"quantity"`
	Tags     []Tag `json:"tags"`
}

type Record struct {
	CustomerIdentifier string       `json:"customer_identifier"`
	Dimension          string       `json:"dimension"`
	Quantity           int32        `json:"quantity"`
	TimestampMs        int64        `json:"timestamp_ms"`
	Allocations        []Allocation `json:"allocations"`
}

// Call is one operation with its input; Credentials names an entry of Spec.Credentials.
type Call struct {
	Name        string   `json:"name"`
	Credentials string   `json:"credentials"`
	Operation   string   `json:"operation"`
	ProductCode string   `json:"product_code"`
	Records     []Record `json:"records"`
	Dimension   string   `json:"dimension"`
	Quantity    int32    `json:"quantity"`
	TimestampMs int64    `json:"timestamp_ms"`
	DryRun      bool     `json:"dry_run"`
	Token       string   `json:"token"`
	KeyVersion  int32    `json:"key_version"`
	Nonce       string   `json:"nonce"`
}

// Burst repeats the named calls round-robin, Calls times, from Concurrency goroutines.
type Burst struct {
	Calls       int      `json:"calls"`
	Concurrency int      `json:"concurrency"`
	Mix         []string `json:"mix"`
}

type Spec struct {
	Endpoint    string          `json:"endpoint"`
	Region      string          `json:"region"`
	Credentials map[string]Cred `json:"credentials"`
	Calls       []Call          `json:"calls"`
	Burst       *Burst          `json:"burst"`
}

// Outcome is what the SDK reported for one call. An answer the SDK could not read (no
// API error, no output: a transport or deserialization failure) is Lost.
type Outcome struct {
	OK      bool           `json:"ok"`
	Status  int            `json:"status"`
	Code    string         `json:"code,omitempty"`
	GoType  string         `json:"go_type,omitempty"`
	Message string         `json:"message,omitempty"`
	Lost    bool           `json:"lost"`
	Output  map[string]any `json:"output,omitempty"`
}

type Tally struct {
	OK     int            `json:"ok"`
	Errors map[string]int `json:"errors"`
	Lost   int            `json:"lost"`
}

type BurstReport struct {
	Calls        int               `json:"calls"`
	Seconds      float64           `json:"seconds"`
	ByCall       map[string]*Tally `json:"by_call"`
	LostExamples []string          `json:"lost_examples"`
}

type Report struct {
	SDK     string             `json:"sdk"`
	Version string             `json:"version"`
	Go      string             `json:"go"`
	Results map[string]Outcome `json:"results"`
	Burst   *BurstReport       `json:"burst,omitempty"`
}

func millis(t *time.Time) any {
	if t == nil {
		return nil
	}
	return t.UnixMilli()
}

func fromMillis(ms int64) *time.Time {
	t := time.UnixMilli(ms).UTC()
	return &t
}

func runBurst(spec *Spec, call func(Call) Outcome) *BurstReport {
	byName := map[string]Call{}
	for _, c := range spec.Calls {
		byName[c.Name] = c
	}
	report := &BurstReport{Calls: spec.Burst.Calls, ByCall: map[string]*Tally{}}
	for _, name := range spec.Burst.Mix {
		report.ByCall[name] = &Tally{Errors: map[string]int{}}
	}
	var mu sync.Mutex
	next := make(chan int)
	var wg sync.WaitGroup
	started := time.Now()
	for w := 0; w < spec.Burst.Concurrency; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				name := spec.Burst.Mix[i%len(spec.Burst.Mix)]
				out := call(byName[name])
				mu.Lock()
				tally := report.ByCall[name]
				switch {
				case out.Lost:
					tally.Lost++
					if len(report.LostExamples) < 10 {
						report.LostExamples = append(report.LostExamples, name+": "+out.Message)
					}
				case out.OK:
					tally.OK++
				default:
					tally.Errors[out.Code]++
				}
				mu.Unlock()
			}
		}()
	}
	for i := 0; i < spec.Burst.Calls; i++ {
		next <- i
	}
	close(next)
	wg.Wait()
	report.Seconds = time.Since(started).Seconds()
	return report
}

func main() {
	var spec Spec
	if err := json.NewDecoder(os.Stdin).Decode(&spec); err != nil {
		fmt.Fprintln(os.Stderr, "reading the spec:", err)
		os.Exit(2)
	}
	call := newCaller(&spec)
	report := Report{SDK: sdkName, Version: sdkVersion, Go: runtime.Version(), Results: map[string]Outcome{}}
	for _, c := range spec.Calls {
		report.Results[c.Name] = call(c)
	}
	if spec.Burst != nil {
		report.Burst = runBurst(&spec, call)
	}
	if err := json.NewEncoder(os.Stdout).Encode(report); err != nil {
		fmt.Fprintln(os.Stderr, "writing the report:", err)
		os.Exit(2)
	}
}
