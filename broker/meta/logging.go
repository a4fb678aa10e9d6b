package meta

import (
	"bytes"
	"context"
	"io"
	"log"
	"log/slog"

	"github.com/hashicorp/go-hclog"
)

// hclogAdapter sends hashicorp/raft's hclog output to slog. It passes warnings
// and errors only: raft narrates elections and snapshots at info level, which
// is noise for a single node.
type hclogAdapter struct {
	l    *slog.Logger
	name string
	args []any
}

func newHCLog(l *slog.Logger) hclog.Logger {
	return &hclogAdapter{l: l, name: "raft"}
}

const hclogMin = hclog.Warn

func (a *hclogAdapter) Log(level hclog.Level, msg string, args ...any) {
	if level < hclogMin || level == hclog.Off {
		return
	}
	sl := slog.LevelWarn
	switch {
	case level >= hclog.Error:
		sl = slog.LevelError
	case msg == "heartbeat timeout reached, starting election":
		// Every start of a node begins with this warning; it is routine.
		sl = slog.LevelInfo
	}
	a.l.Log(context.Background(), sl, msg, append([]any{"component", a.name}, args...)...)
}

func (a *hclogAdapter) Trace(msg string, args ...any) { a.Log(hclog.Trace, msg, args...) }
func (a *hclogAdapter) Debug(msg string, args ...any) { a.Log(hclog.Debug, msg, args...) }
func (a *hclogAdapter) Info(msg string, args ...any)  { a.Log(hclog.Info, msg, args...) }
func (a *hclogAdapter) Warn(msg string, args ...any)  { a.Log(hclog.Warn, msg, args...) }
func (a *hclogAdapter) Error(msg string, args ...any) { a.Log(hclog.Error, msg, args...) }

func (a *hclogAdapter) IsTrace() bool { return false }
func (a *hclogAdapter) IsDebug() bool { return false }
func (a *hclogAdapter) IsInfo() bool  { return false }
func (a *hclogAdapter) IsWarn() bool  { return true }
func (a *hclogAdapter) IsError() bool { return true }

func (a *hclogAdapter) ImpliedArgs() []any { return a.args }

func (a *hclogAdapter) With(args ...any) hclog.Logger {
	return &hclogAdapter{l: a.l.With(args...), name: a.name, args: append(a.args[:len(a.args):len(a.args)], args...)}
}

func (a *hclogAdapter) Name() string { return a.name }

func (a *hclogAdapter) Named(name string) hclog.Logger {
	c := *a
	c.name = a.name + "." + name
	return &c
}

func (a *hclogAdapter) ResetNamed(name string) hclog.Logger {
	c := *a
	c.name = name
	return &c
}

func (a *hclogAdapter) SetLevel(hclog.Level) {}

func (a *hclogAdapter) GetLevel() hclog.Level { return hclogMin }

func (a *hclogAdapter) StandardLogger(opts *hclog.StandardLoggerOptions) *log.Logger {
	return log.New(a.StandardWriter(opts), "", 0)
}

// StandardWriter logs each write as one warning (or at opts.ForceLevel).
func (a *hclogAdapter) StandardWriter(opts *hclog.StandardLoggerOptions) io.Writer {
	level := hclog.Warn
	if opts != nil && opts.ForceLevel != hclog.NoLevel {
		level = opts.ForceLevel
	}
	return writerFunc(func(p []byte) (int, error) {
		a.Log(level, string(bytes.TrimRight(p, "\n")))
		return len(p), nil
	})
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

var _ hclog.Logger = (*hclogAdapter)(nil)
