// Command openloop measures HTTP/1.1 latency at a fixed request rate (an open loop): request i
// is due at start + i/rate whatever the earlier ones are doing, and its latency is taken from
// when it was due, so a stall shows in the tail instead of slowing the load down. wrk's closed
// loop (each connection waits for its answer before asking again) hides stalls that way and, at
// saturation, makes p99 a function of throughput ("coordinated omission").
//
//	openloop -url http://127.0.0.1:18077/ -rate 5000 -d 10s -c 64
//
// It prints one line: requests, achieved rate, errors, p50/p90/p99/p99.9/max in milliseconds.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

func main() {
	target := flag.String("url", "http://127.0.0.1:18077/", "HTTP URL to GET")
	rate := flag.Int("rate", 5000, "requests per second")
	dur := flag.Duration("d", 10*time.Second, "how long to send (after the warm-up)")
	warm := flag.Duration("warmup", 2*time.Second, "sent at the same rate first, not counted")
	conns := flag.Int("c", 64, "keep-alive connections")
	flag.Parse()
	u, err := url.Parse(*target)
	if err != nil || u.Scheme != "http" {
		fmt.Fprintln(os.Stderr, "openloop: -url must be an http:// URL")
		os.Exit(2)
	}
	req := []byte("GET " + u.RequestURI() + " HTTP/1.1\r\nHost: " + u.Host + "\r\nUser-Agent: openloop\r\n\r\n")
	interval := time.Second / time.Duration(*rate)
	total := int64((*warm + *dur) / interval)
	skip := int64(*warm / interval)
	lat := make([]time.Duration, total)
	var next, errs atomic.Int64
	start := time.Now().Add(50 * time.Millisecond)
	var wg sync.WaitGroup
	for range *conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var nc net.Conn
			var br *bufio.Reader
			for {
				i := next.Add(1) - 1
				if i >= total {
					break
				}
				due := start.Add(time.Duration(i) * interval)
				if d := time.Until(due); d > 0 {
					time.Sleep(d)
				}
				if nc == nil {
					if nc, err = net.Dial("tcp", u.Host); err != nil {
						errs.Add(1)
						nc = nil
						continue
					}
					br = bufio.NewReader(nc)
				}
				ok := false
				if _, err := nc.Write(req); err == nil {
					if resp, err := http.ReadResponse(br, nil); err == nil {
						_, err = io.Copy(io.Discard, resp.Body)
						resp.Body.Close()
						ok = err == nil && resp.StatusCode == 200
					}
				}
				lat[i] = time.Since(due)
				if !ok {
					errs.Add(1)
					nc.Close()
					nc = nil
				}
			}
			if nc != nil {
				nc.Close()
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start.Add(*warm))
	counted := slices.Clone(lat[skip:])
	slices.Sort(counted)
	q := func(p float64) float64 {
		return float64(counted[min(len(counted)-1, int(p*float64(len(counted))))]) / 1e6
	}
	fmt.Printf("requests %d rate %.0f/s errors %d p50 %.3f p90 %.3f p99 %.3f p99.9 %.3f max %.3f ms\n",
		len(counted), float64(len(counted))/elapsed.Seconds(), errs.Load(), q(0.5), q(0.9), q(0.99), q(0.999), q(1))
}
