"""Workarounds for the embedded Tansu broker, switched on only by ``broker_flavor="tansu"``.

Measured differences from Apache Kafka that matter here:

* a waiting Fetch is not answered early when data arrives, so latency is the fetch max wait:
  a short wait on this broker only;
* a group join completes only after about half the session timeout: short session timeout;
* ListOffsets reports a too-low end offset: nothing in the worker relies on it (the supplier
  index reads the high-water mark from Fetch responses, which is right on both brokers), and
  replay finds time ranges from record timestamps (see ``streams/replay.py``).

Production runs on Apache Kafka with none of this in use.
"""

from __future__ import annotations

TANSU_FETCH_MAX_WAIT_MS = 50
TANSU_SESSION_TIMEOUT_S = 6.0
TANSU_HEARTBEAT_INTERVAL_S = 1.0
