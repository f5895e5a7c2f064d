"""The chaos soak (`make soak`): two operator replicas with leader election
on the ground run a random workload across all five kinds while a fault
injector kills, freezes and cuts them off; then an invariant checker that
shares no code with the operator reads what AWS (the emulator), the API
server and the Lease record say happened, and reports every violation.

Modules: `proxy` (loopback TCP proxies that drop or stall connections),
`replicas` (the operator processes, restarted as a kubelet would, their
memory, the Lease record), `workload` (what tenants do), `faults` (what
goes wrong), `collect` (the record of a run), `checker` (the invariants,
pure over a record) and `__main__` (one run, start to report).
"""
