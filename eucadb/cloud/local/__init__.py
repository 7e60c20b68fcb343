"""The embedded local cloud (docs/architecture.md §3): every eucadb code path runs against it exactly as on AWS.

- `api`/`gateway`: moto (all services) on a 127.0.0.1 port, behind a WSGI gateway that performs the
  data-plane part of volume, snapshot and instance actions synchronously at API time;
- `realizer`: turns running instances of the eucadb DB image into processes (`instances`, `procs`),
  each with its IMDSv2 service (`metadata`, `identity`) on its own loopback IP;
- `disks`: volumes and snapshots as directories, plugged in as `<instance root>/dev/<device>`;
- `network`, `image`, `runtime`, `control`, `status`: what `eucadb cloud …`/`image install` drive.
"""
