// The stampede's clients as goroutines of one Go process (bench/run.py,
// STAMPEDE_CLIENTS=go): hundreds or thousands of connections, opened first,
// then released together, each sending one GET and reading the whole body.
// One line per client: first byte (seconds), body bytes, total (seconds).
//
//	stampede 127.0.0.1:PORT /path N
package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"sync"
	"time"
)

func main() {
	addr, path := os.Args[1], os.Args[2]
	n, err := strconv.Atoi(os.Args[3])
	if err != nil || n < 1 {
		fmt.Fprintln(os.Stderr, "usage: stampede ADDR PATH N")
		os.Exit(2)
	}
	conns := make([]net.Conn, n)
	for i := range conns {
		if conns[i], err = net.Dial("tcp", addr); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
	type result struct {
		first, total float64
		body         int64
	}
	res := make([]result, n)
	var ready, done sync.WaitGroup
	start := make(chan struct{})
	for i := range conns {
		ready.Add(1)
		done.Add(1)
		go func(i int) {
			defer done.Done()
			c := conns[i]
			defer c.Close()
			r := bufio.NewReaderSize(c, 1<<20)
			ready.Done()
			<-start
			t0 := time.Now()
			fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: origin\r\nConnection: close\r\n\r\n", path)
			if _, err := r.Peek(1); err != nil {
				return
			}
			res[i].first = time.Since(t0).Seconds()
			var head bytes.Buffer
			for !bytes.HasSuffix(head.Bytes(), []byte("\r\n\r\n")) {
				b, err := r.ReadByte()
				if err != nil {
					return
				}
				head.WriteByte(b)
			}
			res[i].body, _ = io.Copy(io.Discard, r)
			res[i].total = time.Since(t0).Seconds()
		}(i)
	}
	ready.Wait()
	close(start)
	done.Wait()
	w := bufio.NewWriter(os.Stdout)
	for _, x := range res {
		fmt.Fprintf(w, "%.6f %d %.6f\n", x.first, x.body, x.total)
	}
	w.Flush()
}
