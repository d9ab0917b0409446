package h2

import (
	"strings"

	"golang.org/x/net/http/httpguts"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// headerBlock decodes request header blocks (a HEADERS frame and its CONTINUATIONs) for one
// connection. x/net's Framer can do it (ReadMetaHeaders), but allocates a frame, a closure
// and its captured state, and a growing field slice for every block: six allocations of a
// proxied request's ~25. This one decodes into a field slice and a MetaHeadersFrame the
// connection keeps, with the same checks and the same errors (RFC 9113 §8.2, §8.3):
//
//   - a field value with bytes a field may not carry, a name that is not a lowercase token, or
//     a pseudo-header after a regular field: stream error PROTOCOL_ERROR (the connection
//     ends instead if the block goes on in CONTINUATION frames: past an invalid field its
//     size is no longer counted);
//   - unknown or repeated pseudo-headers, request and response ones mixed: stream error;
//   - a list past MaxHeaderListSize: Truncated (answered 431), decoding goes on without
//     keeping fields so the HPACK state stays in step; a fragment more than twice the size
//     still allowed: connection error, before decoding it;
//   - an HPACK error, or a block that ends mid-field: connection error COMPRESSION_ERROR.
//
// Like x/net's, "trailer" values are counted apart, by the fields they name, so that the
// names a request declares do not use up its header budget.
//
// What read returns is valid until the next read: the connection's reader uses it (under the
// connection's lock) before it reads the next frame.
type headerBlock struct {
	dec    *hpack.Decoder
	fields []hpack.HeaderField
	meta   http2.MetaHeadersFrame
	// remain and trailerRemain are the header list bytes still allowed in this block.
	remain, trailerRemain uint32
	sawRegular, truncated bool
	invalid               bool
}

// maxKeptFields bounds the field slice kept between blocks: a client that once sent many
// fields does not make its connection hold them.
const maxKeptFields = 32

// newHeaderBlock ties a block to the connection's decoder (the emit function is a method
// value, allocated here and not per block). A resting connection lets go of its block
// (release) and takes a new one when it wakes.
func newHeaderBlock(dec *hpack.Decoder) *headerBlock {
	b := &headerBlock{dec: dec}
	dec.SetEmitFunc(b.emit)
	return b
}

// release unties the block from the decoder, so that the block can be collected.
func (b *headerBlock) release() { b.dec.SetEmitFunc(discardField) }

func discardField(hpack.HeaderField) {}

func (b *headerBlock) emit(hf hpack.HeaderField) {
	if !httpguts.ValidHeaderFieldValue(hf.Value) {
		b.invalid = true
	}
	if strings.HasPrefix(hf.Name, ":") {
		if b.sawRegular {
			b.invalid = true
		}
	} else {
		b.sawRegular = true
		if !lowercaseToken(hf.Name) {
			b.invalid = true
		}
	}
	if b.invalid {
		b.dec.SetEmitEnabled(false)
		return
	}
	remain, size := &b.remain, hf.Size()
	if hf.Name == "trailer" {
		// Each declared trailer counts as a field of its own (name length plus 32).
		n := uint32(strings.Count(hf.Value, ",") + 1)
		remain, size = &b.trailerRemain, uint32(len(hf.Value))-n+1+n*32
	}
	if size > *remain {
		b.dec.SetEmitEnabled(false)
		b.truncated = true
		b.remain, b.trailerRemain = 0, 0
		return
	}
	*remain -= size
	b.fields = append(b.fields, hf)
}

// lowercaseToken says whether a field name is a token without uppercase letters (HTTP/2
// field names are lowercase, RFC 9113 §8.2.1).
func lowercaseToken(name string) bool {
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		ch := name[i]
		if ch >= 'A' && ch <= 'Z' || !httpguts.IsTokenRune(rune(ch)) {
			return false
		}
	}
	return true
}

// read decodes the block hf opens, reading its CONTINUATION frames from fr (the Framer has
// already checked that nothing else comes between them). limit is MaxHeaderListSize.
func (b *headerBlock) read(fr *http2.Framer, hf *http2.HeadersFrame, limit uint32) (*http2.MetaHeadersFrame, error) {
	if cap(b.fields) > maxKeptFields {
		b.fields = nil
	}
	b.fields = b.fields[:0]
	b.remain, b.trailerRemain = limit, limit
	b.sawRegular, b.truncated, b.invalid = false, false, false
	b.dec.SetEmitEnabled(true)
	frag, ended := hf.HeaderBlockFragment(), hf.HeadersEnded()
	for {
		if int64(len(frag)) > 2*(int64(b.remain)+int64(b.trailerRemain)) || b.invalid {
			return nil, http2.ConnectionError(http2.ErrCodeProtocol)
		}
		if _, err := b.dec.Write(frag); err != nil {
			return nil, http2.ConnectionError(http2.ErrCodeCompression)
		}
		if ended {
			break
		}
		f, err := fr.ReadFrame()
		if err != nil {
			return nil, err
		}
		cf, ok := f.(*http2.ContinuationFrame)
		if !ok {
			return nil, http2.ConnectionError(http2.ErrCodeProtocol)
		}
		frag, ended = cf.HeaderBlockFragment(), cf.HeadersEnded()
	}
	if err := b.dec.Close(); err != nil {
		return nil, http2.ConnectionError(http2.ErrCodeCompression)
	}
	if b.invalid || !pseudosValid(b.fields) {
		return nil, http2.StreamError{StreamID: hf.StreamID, Code: http2.ErrCodeProtocol}
	}
	b.meta = http2.MetaHeadersFrame{HeadersFrame: hf, Fields: b.fields, Truncated: b.truncated}
	return &b.meta, nil
}

// pseudosValid checks the pseudo-headers leading fields: known ones, none twice, not request
// and response ones together.
func pseudosValid(fields []hpack.HeaderField) bool {
	var request, response bool
	for i, hf := range fields {
		if !strings.HasPrefix(hf.Name, ":") {
			break
		}
		switch hf.Name {
		case ":method", ":path", ":scheme", ":authority", ":protocol":
			request = true
		case ":status":
			response = true
		default:
			return false
		}
		for _, prev := range fields[:i] {
			if prev.Name == hf.Name {
				return false
			}
		}
	}
	return !(request && response)
}
