module apoxy.dev/apoxy/test/conformance

go 1.26.8

require golang.org/x/net v0.61.0

require (
	golang.org/x/sys v0.49.0 // indirect
	golang.org/x/text v0.43.0 // indirect
	google.golang.org/genproto/googleapis/rpc v0.0.0-20260427160629-7cedc36a6bc4 // indirect
	google.golang.org/grpc v1.81.1 // indirect
	google.golang.org/protobuf v1.36.12-0.20260120151049-f2248ac996af // indirect
	sigs.k8s.io/gateway-api/conformance v1.6.3 // indirect
)

replace apoxy.dev/apoxy => ../..

tool sigs.k8s.io/gateway-api/conformance/echo-basic
