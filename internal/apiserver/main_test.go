package apiserver

import (
	"flag"
	"io"
	"os"
	"testing"

	"github.com/go-logr/logr"
	"google.golang.org/grpc/grpclog"
	"k8s.io/klog/v2"
)

func TestMain(m *testing.M) {
	flag.Parse()
	if !testing.Verbose() {
		// The Kubernetes libraries log every server start at info level.
		klog.SetLogger(logr.Discard())
		grpclog.SetLoggerV2(grpclog.NewLoggerV2(io.Discard, io.Discard, io.Discard))
	}
	os.Exit(m.Run())
}
