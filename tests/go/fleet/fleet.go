// A fleet of Elastic Agents on Go's net/http, standard library only: N
// goroutines at once, each an agent of its own (its own http.Client and
// Transport, keep-alive on, so one connection per agent reused for its own
// requests and never shared), printing one JSON summary.
//
//	fleet [-n N] [-timeout D] upgrade BASE_URL PACKAGE_NAME
//	fleet [-n N] [-timeout D] poll URL ETAG
//
// -timeout is each agent's http.Client.Timeout (per request, as the agent's
// client has one): an agent still waiting then counts an error, so the
// summary always comes.
//
// upgrade does what elastic-agent's upgrade does with its HTTP source
// (elastic/elastic-agent v9.5.2, abae0c4393b11bd6d50e37e935ea4125ff2baae0):
// internal/pkg/agent/application/upgrade/artifact/download/http/downloader.go
// Downloader.Download GETs the package (downloadFile: non-200 is an error,
// the body is copied out), then the package's .sha512 (downloadHash); the
// transport is NewDownloader's (keep-alive on, IdleConnTimeout 30s) and
// download/headers_rtt.go adds "User-Agent: Beat elastic-agent v<version>".
// http/verifier.go Verifier.Verify then checks the package against the
// .sha512 (download/verifier.go VerifyChecksum, readChecksumFile: the line
// whose second field, less a leading '*', is the package's name) and fetches
// the .asc (getPublicAsc: 200 or an error, io.ReadAll). The package is hashed
// as it streams in instead of from a file: the same bytes.
//
// poll sends GET with If-None-Match: ETAG, as Endpoint polls its manifest.
//
// The summary: n, statuses per request kind, errors (count and the first
// few), sha_mismatch, asc_sha256 (distinct .asc bodies), and first-byte and
// total time percentiles in milliseconds. Exit 0 whatever the agents saw.
package main

import (
	"bufio"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"strings"
	"sync"
	"time"
)

const userAgent = "Beat elastic-agent v9.5.2"

type summary struct {
	mu          sync.Mutex
	N           int                       `json:"n"`
	Status      map[string]map[string]int `json:"status"`
	Errors      int                       `json:"errors"`
	FirstErrors []string                  `json:"first_errors"`
	ShaMismatch int                       `json:"sha_mismatch"`
	Verified    int                       `json:"verified"`
	AscSha256   map[string]int            `json:"asc_sha256"`
	BodyBytes   int64                     `json:"body_bytes"`
	firstByte   []float64
	total       []float64
	FirstByteMs map[string]float64 `json:"first_byte_ms"`
	TotalMs     map[string]float64 `json:"total_ms"`
}

func (s *summary) status(kind string, code int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.Status[kind] == nil {
		s.Status[kind] = map[string]int{}
	}
	s.Status[kind][fmt.Sprint(code)]++
}

func (s *summary) fail(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.Errors++
	if len(s.FirstErrors) < 5 {
		s.FirstErrors = append(s.FirstErrors, err.Error())
	}
}

// get is one request on the agent's client: the status, the body read whole
// into sink (or discarded), and when the head came in.
func get(c *http.Client, url, etag string, sink io.Writer) (int, time.Time, int64, error) {
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		return 0, time.Time{}, 0, err
	}
	req.Header.Set("User-Agent", userAgent)
	if etag != "" {
		req.Header.Set("If-None-Match", etag)
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, time.Time{}, 0, err
	}
	head := time.Now()
	defer resp.Body.Close()
	if sink == nil {
		sink = io.Discard
	}
	n, err := io.Copy(sink, resp.Body)
	return resp.StatusCode, head, n, err
}

// checksum is readChecksumFile's rule: the hash on the line naming the file.
func checksum(text, name string) string {
	sum := ""
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		parts := strings.Fields(sc.Text())
		if len(parts) == 2 && strings.TrimLeft(parts[1], "*") == name {
			sum = parts[0]
		}
	}
	return sum
}

func agent(s *summary, start <-chan struct{}, timeout time.Duration, mode string, args []string) {
	tr := &http.Transport{IdleConnTimeout: 30 * time.Second, DisableKeepAlives: false}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr, Timeout: timeout}
	<-start
	t0 := time.Now()
	var first time.Time
	defer func() {
		s.mu.Lock()
		if !first.IsZero() {
			s.firstByte = append(s.firstByte, float64(first.Sub(t0).Microseconds())/1000)
		}
		s.total = append(s.total, float64(time.Since(t0).Microseconds())/1000)
		s.mu.Unlock()
	}()
	if mode == "poll" {
		code, head, n, err := get(c, args[0], args[1], nil)
		first = head
		if err != nil {
			s.fail(err)
			return
		}
		s.status("poll", code)
		s.mu.Lock()
		s.BodyBytes += n
		s.mu.Unlock()
		return
	}
	base, name := strings.TrimRight(args[0], "/"), args[1]
	h := sha512.New()
	code, head, n, err := get(c, base+"/"+name, "", h)
	first = head
	if err != nil {
		s.fail(err)
		return
	}
	s.status("package", code)
	if code != 200 {
		return
	}
	var shaText strings.Builder
	code, _, _, err = get(c, base+"/"+name+".sha512", "", &shaText)
	if err != nil {
		s.fail(err)
		return
	}
	s.status("sha512", code)
	if code != 200 {
		return
	}
	if checksum(shaText.String(), name) != hex.EncodeToString(h.Sum(nil)) {
		s.mu.Lock()
		s.ShaMismatch++
		s.mu.Unlock()
		return
	}
	a := sha256.New()
	code, _, _, err = get(c, base+"/"+name+".asc", "", a)
	if err != nil {
		s.fail(err)
		return
	}
	s.status("asc", code)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.BodyBytes += n
	if code == 200 {
		s.Verified++
		s.AscSha256[hex.EncodeToString(a.Sum(nil))]++
	}
}

func percentiles(v []float64) map[string]float64 {
	out := map[string]float64{}
	if len(v) == 0 {
		return out
	}
	sort.Float64s(v)
	for _, p := range []int{50, 90, 99, 100} {
		i := (len(v)*p + 99) / 100
		if i > 0 {
			i--
		}
		out[fmt.Sprintf("p%d", p)] = v[i]
	}
	return out
}

func main() {
	n := flag.Int("n", 1000, "agents at once")
	timeout := flag.Duration("timeout", 120*time.Second, "each request's bound")
	flag.Parse()
	mode, args := flag.Arg(0), flag.Args()
	if len(args) != 3 || (mode != "upgrade" && mode != "poll") {
		fmt.Fprintln(os.Stderr, "usage: fleet [-n N] [-timeout D] upgrade BASE_URL PACKAGE_NAME | poll URL ETAG")
		os.Exit(2)
	}
	s := &summary{N: *n, Status: map[string]map[string]int{}, AscSha256: map[string]int{}, FirstErrors: []string{}}
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := 0; i < *n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			agent(s, start, *timeout, mode, args[1:])
		}()
	}
	close(start)
	wg.Wait()
	s.FirstByteMs = percentiles(s.firstByte)
	s.TotalMs = percentiles(s.total)
	json.NewEncoder(os.Stdout).Encode(s)
}
