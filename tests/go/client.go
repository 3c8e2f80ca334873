// A client built on Go's net/http, standard library only, as elastic-agent,
// fleet-server and Elastic Endpoint are: one GET, printed as one JSON line.
//
//	client [-proxy URL] [-cacert FILE] [-etag ETAG] URL
//
// -proxy goes through http.ProxyURL exactly as the agent's download proxy
// does (credentials in the URL become Proxy-Authorization, https URLs use
// CONNECT); -etag sends If-None-Match, as Endpoint polls its manifest.
// Prints {"status","status_text","etag","sha256","len","err"}; exit 0 even on
// HTTP errors, so the test reads what the client saw.
package main

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"flag"
	"io"
	"net/http"
	"net/url"
	"os"
	"time"
)

func main() {
	proxy := flag.String("proxy", "", "proxy URL")
	cacert := flag.String("cacert", "", "extra CA (PEM)")
	etag := flag.String("etag", "", "If-None-Match")
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
