package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"go.yaml.in/yaml/v3"

	"github.com/sluice-io/sluice/broker"
	"github.com/sluice-io/sluice/broker/cluster"
)

// serveFlags are `sluice serve`'s settings. Each comes from a flag, else a
// SLUICE_* environment variable (SLUICE_DATA_DIR for --data-dir), else the
// YAML file named by --config (keys are the flag names), else the default.
type serveFlags struct {
	config         string
	dataDir        string
	kafkaAddr      string
	advertisedAddr string
	internalAddr   string
	httpAddr       string
	raftAddr       string
	gossipAddr     string
	join           []string
	expect         int
	rack           string
	probe          time.Duration
	nodeID         int32
	roles          string
	logLevel       string
	settings       []string // broker configs as name=value (Kafka's names)

	// clusterEnabled: --join, --bootstrap-expect > 1 or an explicit
	// --gossip-addr (flag, SLUICE_GOSSIP_ADDR or YAML) was given. Without
	// them the node stays standalone and opens no gossip port, as before.
	clusterEnabled bool
}

func serveCmd() *cobra.Command { return serveCmdWith(&serveFlags{}) }

// serveCmdWith builds the serve command around f, which its flags fill.
func serveCmdWith(f *serveFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run a Sluice node (Kafka-compatible broker)",
		Long: `Run a Sluice node. Listeners default to loopback; data lives in --data-dir.
Broker configs use Kafka's names: --set num.partitions=3 --set log.retention.ms=3600000.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := f.resolve(cmd.Flags()); err != nil {
				return err
			}
			return runServe(cmd.Context(), f)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.config, "config", "", "YAML file with settings (keys are flag names)")
	fl.StringVar(&f.dataDir, "data-dir", "./data", "directory for partitions and metadata")
	fl.StringVar(&f.kafkaAddr, "kafka-addr", "127.0.0.1:9092", "Kafka protocol listener")
	fl.StringVar(&f.advertisedAddr, "advertised-kafka-addr", "", "address clients are told to use (default: --kafka-addr)")
	fl.StringVar(&f.internalAddr, "internal-kafka-addr", "", "address other nodes reach this node's Kafka listener at, for replication and forwarded writes (default: the advertised address)")
	fl.StringVar(&f.httpAddr, "http-addr", "127.0.0.1:8080", "HTTP listener for /healthz and /metrics")
	fl.StringVar(&f.raftAddr, "raft-addr", "127.0.0.1:7947", "metadata quorum (raft) listener")
	fl.StringVar(&f.gossipAddr, "gossip-addr", "127.0.0.1:7946", "cluster membership (gossip) listener; used when --join or --bootstrap-expect > 1 is given, or when set explicitly")
	fl.StringSliceVar(&f.join, "join", nil, "gossip addresses (host:port, comma-separated) of existing nodes to join")
	fl.IntVar(&f.expect, "bootstrap-expect", 1, "controller-eligible nodes a new cluster waits for before its metadata quorum bootstraps")
	fl.StringVar(&f.rack, "rack", "", "rack of this broker (broker.rack)")
	fl.DurationVar(&f.probe, "gossip-probe-interval", 400*time.Millisecond, "gossip failure-detection probe interval; a dead node is noticed about 3 intervals later")
	fl.Int32Var(&f.nodeID, "node-id", 1, "broker id")
	fl.StringVar(&f.roles, "roles", "broker", "services this process runs (broker today)")
	fl.StringVar(&f.logLevel, "log-level", "info", "debug, info, warn or error")
	fl.StringArrayVar(&f.settings, "set", nil, "broker config name=value (repeatable)")
	return cmd
}

// resolve fills flags not given on the command line from SLUICE_* variables
// and then from the --config file.
func (f *serveFlags) resolve(fl *pflag.FlagSet) error {
	if v := os.Getenv("SLUICE_CONFIG"); v != "" && !fl.Changed("config") {
		f.config = v
	}
	fileVals := map[string]any{}
	if f.config != "" {
		data, err := os.ReadFile(f.config)
		if err != nil {
			return fmt.Errorf("read --config: %w", err)
		}
		if err := yaml.Unmarshal(data, &fileVals); err != nil {
			return fmt.Errorf("parse --config %s: %w", f.config, err)
		}
		for k := range fileVals {
			if fl.Lookup(k) == nil {
				return fmt.Errorf("--config %s: unknown setting %q", f.config, k)
			}
		}
	}
	var err error
	fl.VisitAll(func(p *pflag.Flag) {
		if err != nil || fl.Changed(p.Name) || p.Name == "config" {
			return
		}
		env := "SLUICE_" + strings.ToUpper(strings.ReplaceAll(p.Name, "-", "_"))
		if v, ok := os.LookupEnv(env); ok {
			if serr := fl.Set(p.Name, v); serr != nil {
				err = fmt.Errorf("%s: %w", env, serr)
			}
			return
		}
		if v, ok := fileVals[p.Name]; ok {
			vals := []any{v}
			if list, isList := v.([]any); isList {
				vals = list
			} else if m, isMap := v.(map[string]any); isMap {
				vals = nil
				for k, mv := range m {
					vals = append(vals, fmt.Sprintf("%s=%v", k, mv))
				}
			}
			for _, one := range vals {
				if serr := fl.Set(p.Name, fmt.Sprint(one)); serr != nil {
					err = fmt.Errorf("--config %s: %s: %w", f.config, p.Name, serr)
				}
			}
		}
	})
	if err == nil {
		f.clusterEnabled = len(f.join) > 0 || f.expect > 1 || fl.Changed("gossip-addr")
	}
	return err
}

// brokerConfig turns the flags into the broker's Config, applying the
// broker-level Kafka settings given with --set.
func (f *serveFlags) brokerConfig(logger *slog.Logger, reg prometheus.Registerer) (broker.Config, error) {
	cfg := broker.Config{
		DataDir:             f.dataDir,
		KafkaAddr:           f.kafkaAddr,
		AdvertisedAddr:      f.advertisedAddr,
		InternalAddr:        f.internalAddr,
		RaftAddr:            f.raftAddr,
		NodeID:              f.nodeID,
		Join:                f.join,
		BootstrapExpect:     f.expect,
		Rack:                f.rack,
		GossipProbeInterval: f.probe,
		Roles:               cluster.ParseRoles(f.roles),
		AutoCreateTopics:    true,
		NumPartitions:       1,
		Settings:            map[string]string{},
		Logger:              logger,
		Registerer:          reg,
	}
	if f.expect < 1 {
		return cfg, fmt.Errorf("--bootstrap-expect %d: want 1 or more", f.expect)
	}
	if f.clusterEnabled {
		cfg.GossipAddr = f.gossipAddr
	}
	for _, s := range f.settings {
		name, value, ok := strings.Cut(s, "=")
		if !ok {
			return cfg, fmt.Errorf("--set %q: want name=value", s)
		}
		if err := cfg.ApplySetting(name, value); err != nil {
			return cfg, fmt.Errorf("--set %s: %w", name, err)
		}
	}
	return cfg, nil
}

func runServe(ctx context.Context, f *serveFlags) error {
	var level slog.Level
	if err := level.UnmarshalText([]byte(f.logLevel)); err != nil {
		return fmt.Errorf("--log-level: %w", err)
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	cfg, err := f.brokerConfig(logger, reg)
	if err != nil {
		return err
	}
	start := time.Now()
	b, err := broker.New(cfg)
	if err != nil {
		return err
	}
	logger.Info("sluice broker started", "kafka", b.Addr(), "node", cfg.NodeID, "data", cfg.DataDir, "startup", time.Since(start).Round(time.Millisecond))

	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("/api/cluster", clusterStatusHandler(b))
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"status":"ok","node_id":%s}`+"\n", strconv.Itoa(int(cfg.NodeID)))
	})
	srv := &http.Server{Addr: f.httpAddr, Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	httpErr := make(chan error, 1)
	go func() { httpErr <- srv.ListenAndServe() }()
	brokerErr := make(chan error, 1)
	go func() { brokerErr <- b.Serve() }()

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sig)
	var runErr error
	select {
	case s := <-sig:
		logger.Info("shutting down", "signal", s.String())
	case err := <-httpErr:
		if !errors.Is(err, http.ErrServerClosed) {
			runErr = fmt.Errorf("http listener %s: %w", f.httpAddr, err)
		}
	case err := <-brokerErr:
		runErr = err
	case <-ctx.Done():
	}
	shutCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	srv.Shutdown(shutCtx)
	if err := b.Close(); err != nil && runErr == nil {
		runErr = err
	}
	logger.Info("stopped")
	return runErr
}
