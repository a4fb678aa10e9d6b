package broker

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime/debug"
	"time"

	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// conn is one client connection. Requests are read and handled in order;
// each handler may finish its reply later (produce waiting for fsync, fetch
// waiting for data), and a writer goroutine sends replies strictly in request
// order, as Kafka clients that pipeline requests rely on.
type conn struct {
	b       *Broker
	c       net.Conn
	replies chan *queued
	markers markerSource
}

// request is one decoded request.
type request struct {
	conn     *conn
	key      int16
	version  int16
	corr     int32
	clientID string
	kreq     kmsg.Request
}

// reply is what a handler returns. resp is encoded once ready (if set) has
// returned; files are record sets sent with sendfile in place of the marker
// bytes the handler put in resp (see fetch.go); none means the request gets
// no response (acks=0 produce).
type reply struct {
	resp  kmsg.Response
	ready func()
	files []fileRange
	none  bool
}

type queued struct {
	corr  int32
	reply *reply
}

// maxPipelined bounds how many requests of one connection may be in flight.
const maxPipelined = 64

func (b *Broker) serveConn(c net.Conn) {
	cc := &conn{b: b, c: c, replies: make(chan *queued, maxPipelined)}
	cc.markers.init()
	b.metrics.connections.Inc()
	defer b.metrics.connections.Dec()
	done := make(chan struct{})
	go func() {
		defer close(done)
		cc.writeLoop()
	}()
	err := cc.readLoop()
	close(cc.replies)
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
		b.logger.Info("closing connection", "remote", c.RemoteAddr().String(), "err", err)
		c.Close() // also ends a writer blocked on a client that stopped reading
	}
	<-done
	c.Close()
}

func (cc *conn) readLoop() error {
	r := bufio.NewReaderSize(cc.c, 64<<10)
	var size [4]byte
	for {
		cc.c.SetReadDeadline(time.Now().Add(cc.b.cfg.ConnectionsMaxIdle))
		if _, err := io.ReadFull(r, size[:]); err != nil {
			return err
		}
		n := int32(binary.BigEndian.Uint32(size[:]))
		if n < 8 || n > cc.b.cfg.SocketRequestMaxBytes {
			return fmt.Errorf("request size %d outside [8, %d] (socket.request.max.bytes)", n, cc.b.cfg.SocketRequestMaxBytes)
		}
		rep, req, err := cc.readOne(r, int64(n))
		if err != nil {
			return err
		}
		if rep == nil {
			continue
		}
		select {
		case cc.replies <- &queued{corr: req.corr, reply: rep}:
		case <-cc.b.closing:
			return net.ErrClosed
		}
	}
}

// readOne reads, decodes and handles one request of n bytes, holding its
// bytes in the broker-wide budget until the handler has run (handlers keep
// nothing of the body after they return).
func (cc *conn) readOne(r io.Reader, n int64) (*reply, *request, error) {
	if !cc.b.budget.acquire(n, cc.b.closing) {
		return nil, nil, net.ErrClosed
	}
	defer cc.b.budget.release(n)
	body := make([]byte, n)
	if _, err := io.ReadFull(r, body); err != nil {
		return nil, nil, fmt.Errorf("truncated request: %w", err)
	}
	req, err := cc.decode(body)
	if err != nil {
		return nil, nil, err
	}
	rep, err := cc.handle(req)
	return rep, req, err
}

// decode parses the request header and body. Anything malformed is an error
// that closes the connection, as Kafka does.
func (cc *conn) decode(body []byte) (*request, error) {
	rd := kbin.Reader{Src: body}
	req := &request{conn: cc, key: rd.Int16(), version: rd.Int16(), corr: rd.Int32()}
	if cid := rd.NullableString(); cid != nil {
		req.clientID = *cid
	}
	if !rd.Ok() {
		return nil, errors.New("malformed request header")
	}
	h, ok := handlers[req.key]
	if !ok {
		return nil, fmt.Errorf("unsupported api key %d", req.key)
	}
	if req.version < h.min || req.version > h.max {
		if req.key == apiKeyApiVersions {
			// Answered with a v0 UNSUPPORTED_VERSION response; the body of
			// an unknown version is not parsed (KAFKA-NOTES.md, Framing).
			req.kreq = &kmsg.ApiVersionsRequest{Version: req.version}
			return req, nil
		}
		return nil, fmt.Errorf("unsupported version %d of api key %d", req.version, req.key)
	}
	kreq := kmsg.RequestForKey(req.key)
	kreq.SetVersion(req.version)
	if kreq.IsFlexible() {
		kmsg.SkipTags(&rd)
	}
	if !rd.Ok() {
		return nil, errors.New("malformed request header tags")
	}
	if err := kreq.ReadFrom(rd.Src); err != nil {
		return nil, fmt.Errorf("malformed %s v%d request: %w", kmsg.NameForKey(req.key), req.version, err)
	}
	req.kreq = kreq
	return req, nil
}

// handle runs the handler, turning a panic into a closed connection rather
// than a crashed broker.
func (cc *conn) handle(req *request) (rep *reply, err error) {
	defer func() {
		if p := recover(); p != nil {
			cc.b.logger.Error("handler panic", "api", kmsg.NameForKey(req.key), "version", req.version, "panic", p, "stack", string(debug.Stack()))
			rep, err = nil, fmt.Errorf("internal error handling %s", kmsg.NameForKey(req.key))
		}
	}()
	cc.b.metrics.requests.WithLabelValues(kmsg.NameForKey(req.key)).Inc()
	rep, err = handlers[req.key].fn(cc.b, req)
	if rep != nil && rep.resp != nil {
		rep.resp.SetVersion(req.version)
	}
	return rep, err
}

func (cc *conn) writeLoop() {
	var buf []byte
	failed := false
	for q := range cc.replies {
		if q.reply.ready != nil {
			q.reply.ready()
		}
		if failed || q.reply.none {
			continue
		}
		var err error
		// A client that stops reading must not pin the connection, its
		// goroutines and segment descriptors forever.
		cc.c.SetWriteDeadline(time.Now().Add(cc.b.cfg.ConnectionsMaxIdle))
		buf, err = cc.write(buf[:0], q)
		if err != nil {
			failed = true
			cc.c.Close() // unblocks the reader
		}
	}
}

// write encodes and sends one response: size, correlation id, the header's
// tagged fields for flexible responses (never for ApiVersions), the body.
func (cc *conn) write(buf []byte, q *queued) ([]byte, error) {
	resp := q.reply.resp
	buf = append(buf, 0, 0, 0, 0, 0, 0, 0, 0)
	binary.BigEndian.PutUint32(buf[4:], uint32(q.corr))
	if resp.IsFlexible() && resp.Key() != apiKeyApiVersions {
		buf = append(buf, 0)
	}
	buf = resp.AppendTo(buf)
	if len(q.reply.files) > 0 {
		var n int64
		for _, f := range q.reply.files {
			n += f.size
		}
		cc.b.metrics.bytesOut.Add(float64(n))
		return buf, cc.sendWithFiles(buf, q.reply.files, resp.IsFlexible())
	}
	binary.BigEndian.PutUint32(buf, uint32(len(buf)-4))
	_, err := cc.c.Write(buf)
	return buf, err
}
