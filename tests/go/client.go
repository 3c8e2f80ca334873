// A client built on Go's net/http, standard library only, as elastic-agent,
// fleet-server and Elastic Endpoint are: one GET, printed as one JSON line.
//
//	client [-proxy URL] [-cacert FILE] [-etag ETAG] [-rcvbuf N] [-hold] URL
//
// -proxy goes through http.ProxyURL exactly as the agent's download proxy
// does (credentials in the URL become Proxy-Authorization, https URLs use
// CONNECT); -etag sends If-None-Match, as Endpoint polls its manifest.
// -rcvbuf sets the socket's receive buffer before connecting and -hold waits,
// once the head is in, for a line on stdin before reading the body (it says
// HEAD on stderr then): a client on a slow link, whose response waits in
// socket queues meanwhile.
// Prints {"status","status_text","etag","sha256","len","err"}; exit 0 even on
// HTTP errors, so the test reads what the client saw.
package main

import (
	"bufio"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"syscall"
	"time"
)

func main() {
	proxy := flag.String("proxy", "", "proxy URL")
	cacert := flag.String("cacert", "", "extra CA (PEM)")
	etag := flag.String("etag", "", "If-None-Match")
	rcvbuf := flag.Int("rcvbuf", 0, "SO_RCVBUF before connecting")
	hold := flag.Bool("hold", false, "after the head, wait for a line on stdin before reading the body")
	flag.Parse()
	out := map[string]interface{}{}
	defer func() {
		json.NewEncoder(os.Stdout).Encode(out)
	}()
	tr := &http.Transport{}
	if *proxy != "" {
		u, err := url.Parse(*proxy)
		if err != nil {
			out["err"] = err.Error()
			return
		}
		tr.Proxy = http.ProxyURL(u)
	}
	if *cacert != "" {
		pem, err := os.ReadFile(*cacert)
		if err != nil {
			out["err"] = err.Error()
			return
		}
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(pem)
		tr.TLSClientConfig = &tls.Config{RootCAs: pool}
	}
	if *rcvbuf > 0 {
		d := &net.Dialer{Control: func(network, address string, rc syscall.RawConn) error {
			var serr error
			if err := rc.Control(func(fd uintptr) {
				serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, *rcvbuf)
			}); err != nil {
				return err
			}
			return serr
		}}
		tr.DialContext = d.DialContext
	}
	c := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	req, err := http.NewRequest("GET", flag.Arg(0), nil)
	if err != nil {
		out["err"] = err.Error()
		return
	}
	if *etag != "" {
		req.Header.Set("If-None-Match", *etag)
	}
	resp, err := c.Do(req)
	if err != nil {
		out["err"] = err.Error()
		return
	}
	defer resp.Body.Close()
	if *hold {
		fmt.Fprintln(os.Stderr, "HEAD")
		bufio.NewReader(os.Stdin).ReadString('\n')
	}
	h := sha256.New()
	n, err := io.Copy(h, resp.Body)
	if err != nil {
		out["err"] = err.Error()
	}
	out["status"] = resp.StatusCode
	out["status_text"] = resp.Status
	out["etag"] = resp.Header.Get("ETag")
	out["cache_status"] = resp.Header.Get("Cache-Status")
	out["sha256"] = hex.EncodeToString(h.Sum(nil))
	out["len"] = n
}
