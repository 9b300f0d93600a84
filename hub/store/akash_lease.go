package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/pullgate/pullgate/pkg/akash"
)

// AkashLease is a lease namespace on a cluster as the cluster's binding
// controller reported it. Its namespace is the provider's hash of the
// lease id (checked on write), so a row cannot claim a namespace another
// lease's pods run in.
type AkashLease struct {
	ClusterID string
	Cluster   string // the cluster's name (read only)
	Namespace string
	akash.LeaseID
	// Workspace is the name of the workspace the owner's account owns;
	// empty when the owner has no account on this hub (then the lease
	// binds nothing).
	Workspace string
	CreatedAt time.Time
	SeenAt    time.Time
}

// dseqPattern is a deployment sequence number in decimal as installs name
// it: no sign, no leading zero.
var dseqPattern = regexp.MustCompile(`^[1-9][0-9]{0,18}$`)

// ValidAkashScope reports whether s is an install's Akash scope: "",
// "all" or a deployment sequence number in decimal that fits the
// database's BIGINT.
func ValidAkashScope(s string) bool {
	if s == "" || s == "all" {
		return true
	}
	if !dseqPattern.MatchString(s) {
		return false
	}
	_, err := strconv.ParseInt(s, 10, 64)
	return err == nil
}

// checkInstallAkash refuses a malformed Akash scope, and one combined with
// a cluster or namespace binding: an Akash install is served only in its
// account's lease namespaces.
func checkInstallAkash(in Install) error {
	if !ValidAkashScope(in.Akash) {
		return fmt.Errorf("%w: install %q: akash %q: want \"all\" or a deployment sequence number (dseq)", ErrInvalid, in.Name, in.Akash)
	}
	if in.Akash != "" && (in.Cluster != "" || in.ClusterID != "" || in.Namespace != "") {
		return fmt.Errorf("%w: install %q: an Akash install (akash %q) is served in its lease namespaces and takes no cluster or namespace", ErrInvalid, in.Name, in.Akash)
	}
	return nil
}

// dnsLabel is a Kubernetes namespace name; dnsSubdomain a service
// account's.
var (
	dnsLabel     = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$`)
	dnsSubdomain = regexp.MustCompile(`^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$`)
)

// CheckAkashController checks "namespace:serviceaccount" as a cluster's
// akash_controller names it.
func CheckAkashController(s string) error {
	ns, sa, ok := strings.Cut(s, ":")
	if !ok || !dnsLabel.MatchString(ns) || !dnsSubdomain.MatchString(sa) {
		return fmt.Errorf("%w: akash controller %q: want namespace:serviceaccount (Kubernetes names)", ErrInvalid, s)
	}
	return nil
}

// checkClusterAkash checks a cluster's Akash settings: both or neither,
// a valid provider address and controller, and only on a shared cluster
// (Akash tenants are workspaces of their own).
func checkClusterAkash(c Cluster) error {
	if c.AkashProvider == "" && c.AkashController == "" {
		return nil
	}
	if c.AkashProvider == "" || c.AkashController == "" {
		return fmt.Errorf("%w: cluster %q: akash provider and akash controller are set together", ErrInvalid, c.Name)
	}
	if err := akash.ValidateAddress(c.AkashProvider); err != nil {
		return fmt.Errorf("%w: cluster %q: akash provider: %v", ErrInvalid, c.Name, err)
	}
	if err := CheckAkashController(c.AkashController); err != nil {
		return err
	}
	if c.WorkspaceID != "" {
		return fmt.Errorf("%w: cluster %q belongs to one workspace: only a shared cluster runs Akash leases", ErrInvalid, c.Name)
	}
	return nil
}

// SetClusterAkash sets (or, both empty, clears) a cluster's Akash provider
// and controller. Lease rows of another provider stay but bind nothing
// (InstallsByCluster and AkashLeaseBound match the provider).
func (s *SQL) SetClusterAkash(ctx context.Context, name, provider, controller string) (Cluster, error) {
	var c Cluster
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var err error
		c, err = scanCluster(tx.QueryRowContext(ctx, s.q(`SELECT `+clusterCols+` FROM clusters WHERE name = ?`+s.forUpdate()), name))
		if errors.Is(err, sql.ErrNoRows) {
			return clusterNotFound(name)
		}
		if err != nil {
			return err
		}
		c.AkashProvider, c.AkashController = provider, controller
		if err := checkClusterAkash(c); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, s.q(`UPDATE clusters SET akash_provider = ?, akash_controller = ? WHERE id = ?`),
			provider, controller, c.ID)
		return err
	})
	if err != nil {
		return Cluster{}, wrap(err, "set akash of cluster %q", name)
	}
	return c, nil
}

// checkLease checks a lease a controller reports for a cluster: a valid
// lease id, its namespace the provider's hash of it, the cluster's own
// provider, and a dseq the database holds.
func checkLease(c Cluster, ns string, l akash.LeaseID) error {
	if c.AkashProvider == "" {
		return fmt.Errorf("%w: cluster %q runs no Akash provider (cluster update --akash-provider)", ErrInvalid, c.Name)
	}
	if err := l.Validate(); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if l.DSeq > math.MaxInt64 {
		return fmt.Errorf("%w: lease %s: dseq out of range", ErrInvalid, l)
	}
	if want := l.Namespace(); ns != want {
		return fmt.Errorf("%w: namespace %q is not the namespace of lease %s (%s)", ErrInvalid, ns, l, want)
	}
	if l.Provider != c.AkashProvider {
		return fmt.Errorf("%w: lease %s: provider is not cluster %q's (%s)", ErrInvalid, l, c.Name, c.AkashProvider)
	}
	return nil
}

// lockedCluster reads a cluster by id in tx, locking its row.
func (s *SQL) lockedCluster(ctx context.Context, tx *sql.Tx, id string) (Cluster, error) {
	c, err := scanCluster(tx.QueryRowContext(ctx, s.q(`SELECT `+clusterCols+` FROM clusters WHERE id = ?`+s.forUpdate()), id))
	if errors.Is(err, sql.ErrNoRows) {
		return Cluster{}, fmt.Errorf("cluster id %q: %w", id, ErrNotFound)
	}
	return c, err
}

// upsertLease writes one checked lease row in tx; created says whether it
// is new.
func (s *SQL) upsertLease(ctx context.Context, tx *sql.Tx, clusterID, ns string, l akash.LeaseID, t time.Time) (bool, error) {
	res, err := tx.ExecContext(ctx, s.q(`UPDATE akash_leases SET owner = ?, dseq = ?, gseq = ?, oseq = ?, provider = ?, seen_at = ?
		WHERE cluster_id = ? AND namespace = ?`),
		l.Owner, int64(l.DSeq), int64(l.GSeq), int64(l.OSeq), l.Provider, toNanos(t), clusterID, ns)
	if err != nil {
		return false, err
	}
	if n, err := res.RowsAffected(); err != nil || n > 0 {
		return false, err
	}
	_, err = tx.ExecContext(ctx, s.q(`INSERT INTO akash_leases (cluster_id, namespace, owner, dseq, gseq, oseq, provider, created_at, seen_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`),
		clusterID, ns, l.Owner, int64(l.DSeq), int64(l.GSeq), int64(l.OSeq), l.Provider, toNanos(t), toNanos(t))
	return err == nil, err
}

// PutAkashLease records one lease namespace of a cluster (by id), checked
// as checkLease says; created reports a new row.
func (s *SQL) PutAkashLease(ctx context.Context, clusterID, namespace string, l akash.LeaseID) (created bool, err error) {
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		c, err := s.lockedCluster(ctx, tx, clusterID)
		if err != nil {
			return err
		}
		if err := checkLease(c, namespace, l); err != nil {
			return err
		}
		created, err = s.upsertLease(ctx, tx, clusterID, namespace, l, now())
		return err
	})
	return created, wrap(err, "put lease %q of cluster %q", namespace, clusterID)
}

// ReplaceAkashLeases makes leases the cluster's full set of lease
// namespaces: each is checked (one bad lease changes nothing), written,
// and every other row of the cluster is deleted. It returns the
// namespaces added (new rows) and removed.
func (s *SQL) ReplaceAkashLeases(ctx context.Context, clusterID string, leases []akash.LeaseID) (added, removed []string, err error) {
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		added, removed = nil, nil
		c, err := s.lockedCluster(ctx, tx, clusterID)
		if err != nil {
			return err
		}
		keep := map[string]bool{}
		for _, l := range leases {
			ns := l.Namespace()
			if err := checkLease(c, ns, l); err != nil {
				return err
			}
			keep[ns] = true
		}
		t := now()
		for _, l := range leases {
			created, err := s.upsertLease(ctx, tx, clusterID, l.Namespace(), l, t)
			if err != nil {
				return err
			}
			if created {
				added = append(added, l.Namespace())
			}
		}
		rows, err := tx.QueryContext(ctx, s.q(`SELECT namespace FROM akash_leases WHERE cluster_id = ? ORDER BY namespace`), clusterID)
		if err != nil {
			return err
		}
		var gone []string
		for rows.Next() {
			var ns string
			if err := rows.Scan(&ns); err != nil {
				rows.Close()
				return err
			}
			if !keep[ns] {
				gone = append(gone, ns)
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for _, ns := range gone {
			if _, err := tx.ExecContext(ctx, s.q(`DELETE FROM akash_leases WHERE cluster_id = ? AND namespace = ?`), clusterID, ns); err != nil {
				return err
			}
		}
		removed = gone
		return nil
	})
	if err != nil {
		return nil, nil, wrap(err, "replace leases of cluster %q", clusterID)
	}
	return added, removed, nil
}

// DeleteAkashLease removes a lease namespace of a cluster (ErrNotFound
// when there is none).
func (s *SQL) DeleteAkashLease(ctx context.Context, clusterID, namespace string) error {
	res, err := s.db.ExecContext(ctx, s.q(`DELETE FROM akash_leases WHERE cluster_id = ? AND namespace = ?`), clusterID, namespace)
	if err != nil {
		return fmt.Errorf("delete lease %q of cluster %q: %w", namespace, clusterID, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("delete lease %q of cluster %q: %w", namespace, clusterID, err)
	} else if n == 0 {
		return fmt.Errorf("lease namespace %q: %w", namespace, ErrNotFound)
	}
	return nil
}

// leaseSelect lists a lease row (alias l), its cluster's name and the
// name of the workspace its owner's account owns (empty when none).
const leaseSelect = `l.cluster_id, c.name, l.namespace, l.owner, l.dseq, l.gseq, l.oseq, l.provider, l.created_at, l.seen_at,
	COALESCE((SELECT w.name FROM akash_accounts a JOIN workspaces w ON w.id = a.workspace_id WHERE a.address = l.owner), '')
	FROM akash_leases l JOIN clusters c ON c.id = l.cluster_id`

func (s *SQL) listLeases(ctx context.Context, where string, args ...any) ([]AkashLease, error) {
	rows, err := s.rdb.QueryContext(ctx, s.q(`SELECT `+leaseSelect+` WHERE `+where+` ORDER BY c.name, l.namespace`), args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []AkashLease
	for rows.Next() {
		var l AkashLease
		var dseq, gseq, oseq, created, seen int64
		if err := rows.Scan(&l.ClusterID, &l.Cluster, &l.Namespace, &l.Owner, &dseq, &gseq, &oseq, &l.Provider,
			&created, &seen, &l.Workspace); err != nil {
			return nil, err
		}
		l.DSeq, l.GSeq, l.OSeq = uint64(dseq), uint32(gseq), uint32(oseq)
		l.CreatedAt, l.SeenAt = fromNanos(created), fromNanos(seen)
		out = append(out, l)
	}
	return out, rows.Err()
}

// AkashLeasesByCluster lists a cluster's lease namespaces (by cluster id).
func (s *SQL) AkashLeasesByCluster(ctx context.Context, clusterID string) ([]AkashLease, error) {
	out, err := s.listLeases(ctx, `l.cluster_id = ?`, clusterID)
	return out, wrap(err, "list leases of cluster %q", clusterID)
}

// AkashLeasesByWorkspace lists the lease namespaces, on every cluster, of
// the Akash account the named workspace owns (none without one).
func (s *SQL) AkashLeasesByWorkspace(ctx context.Context, workspace string) ([]AkashLease, error) {
	wsID, err := s.workspaceID(ctx, s.rdb, workspace)
	if err != nil {
		return nil, wrap(err, "list leases of workspace %q", workspace)
	}
	out, err := s.listLeases(ctx, `l.owner IN (SELECT a.address FROM akash_accounts a WHERE a.workspace_id = ?)`, wsID)
	return out, wrap(err, "list leases of workspace %q", workspace)
}

// AkashLeaseClusters returns the ids of the clusters that have a lease of
// the workspace's Akash account: where its Akash installs are served.
func (s *SQL) AkashLeaseClusters(ctx context.Context, workspaceID string) ([]string, error) {
	rows, err := s.rdb.QueryContext(ctx, s.q(`SELECT DISTINCT l.cluster_id FROM akash_leases l
		JOIN akash_accounts a ON a.address = l.owner WHERE a.workspace_id = ? ORDER BY l.cluster_id`), workspaceID)
	if err != nil {
		return nil, fmt.Errorf("list lease clusters of workspace %q: %w", workspaceID, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("list lease clusters of workspace %q: %w", workspaceID, err)
		}
		out = append(out, id)
	}
	return out, wrap(rows.Err(), "list lease clusters of workspace %q", workspaceID)
}

// AkashLeaseBound reports whether a lease namespace of a cluster is still
// there, for the cluster's provider, and owned by the account of the
// workspace: the proxy's live check of a token minted for a lease copy.
func (s *SQL) AkashLeaseBound(ctx context.Context, clusterID, namespace, workspaceID string) (bool, error) {
	var n int
	err := s.rdb.QueryRowContext(ctx, s.q(`SELECT COUNT(*) FROM akash_leases l
		JOIN clusters c ON c.id = l.cluster_id AND c.akash_provider = l.provider
		JOIN akash_accounts a ON a.address = l.owner
		WHERE l.cluster_id = ? AND l.namespace = ? AND a.workspace_id = ?`), clusterID, namespace, workspaceID).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("check lease %q of cluster %q: %w", namespace, clusterID, err)
	}
	return n > 0, nil
}

// leaseCopies lists, for each lease namespace of the cluster (its
// provider's, with an owner that has an account here), the Akash installs
// of the owner's workspace whose scope matches the lease ("all" or its
// dseq), as copies bound to the cluster and that namespace.
func (s *SQL) leaseCopies(ctx context.Context, q queryer, clusterID string) ([]Install, error) {
	rows, err := q.QueryContext(ctx, s.q(`SELECT `+installSelect("i")+`, l.namespace, c.name
		FROM akash_leases l
		JOIN clusters c ON c.id = l.cluster_id AND c.akash_provider <> '' AND c.akash_provider = l.provider
		JOIN akash_accounts a ON a.address = l.owner
		JOIN installs i ON i.workspace_id = a.workspace_id AND (i.akash = 'all' OR i.akash = CAST(l.dseq AS TEXT))
		WHERE l.cluster_id = ?
		ORDER BY i.workspace_id, i.name, l.namespace`), clusterID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Install
	for rows.Next() {
		var ns, cluster string
		in, err := scanInstall(rows, &ns, &cluster)
		if err != nil {
			return nil, err
		}
		in.ClusterID, in.Cluster, in.Namespace, in.Lease = clusterID, cluster, ns, ns
		out = append(out, in)
	}
	return out, rows.Err()
}
