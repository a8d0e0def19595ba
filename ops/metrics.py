"""The Prometheus text exposition (format 0.0.4) of the sync health."""
from __future__ import annotations

from ops.selectors import SyncHealth


def _label(value) -> str:
    return str(value).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number(value) -> str:
    if value is None:
        return "NaN"
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    return repr(float(value))


class _Exposition:
    def __init__(self):
        self.lines: list[str] = []

    def family(self, name: str, help_text: str, kind: str, samples) -> None:
        self.lines.append(f"# HELP {name} {help_text}")
        self.lines.append(f"# TYPE {name} {kind}")
        for labels, value in samples:
            rendered = ",".join(f'{key}="{_label(val)}"' for key, val in labels.items())
            self.lines.append(f"{name}{{{rendered}}} {_number(value)}" if rendered else f"{name} {_number(value)}")

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"


_STATUS_VALUE = {"green": 0, "amber": 1, "red": 2, "grey": 0}


def metrics_render(*, health: SyncHealth) -> str:
    """Every gauge of `health`, one family per figure, labelled per object."""
    out = _Exposition()
    stores = [s for s in health.stores]
    out.family("posinv_web_stack_depth", "Web stack records waiting or being sent, per store.", "gauge",
               [({"store": s.code}, s.depth) for s in stores])
    out.family("posinv_web_stack_oldest_waiting_seconds", "Age of the oldest waiting web stack record.", "gauge",
               [({"store": s.code}, s.oldest_waiting_age or 0) for s in stores])
    out.family("posinv_web_stack_failed", "Web stack records that failed after all attempts.", "gauge",
               [({"store": s.code}, s.failed) for s in stores])
    out.family("posinv_web_stack_throttled", "Web stack records held back by throttling.", "gauge",
               [({"store": s.code}, s.throttled) for s in stores])
    out.family("posinv_order_import_last_timestamp_seconds", "Unix time of the last order import.", "gauge",
               [({"store": s.code}, s.last_order_import_at.timestamp()) for s in stores if s.last_order_import_at])
    registers = health.registers
    out.family("posinv_sync_entries_pending", "Received register entries pending or waiting for a gap.", "gauge",
               [({"register": r.code}, r.pending) for r in registers])
    out.family("posinv_sync_entries_failed", "Received register entries that failed.", "gauge",
               [({"register": r.code}, r.failed) for r in registers])
    out.family("posinv_sync_oldest_pending_seconds", "Age of the oldest pending register entry.", "gauge",
               [({"register": r.code}, r.oldest_pending_age or 0) for r in registers])
    out.family("posinv_register_last_success_timestamp_seconds", "Unix time of the last successful transfer.",
               "gauge", [({"register": r.code}, r.last_success_at.timestamp()) for r in registers if r.last_success_at])
    cabinets = health.cabinets
    out.family("posinv_cabinet_last_reading_age_seconds", "Seconds since the cabinet's last reading.", "gauge",
               [({"cabinet": c.code}, c.last_reading_age) for c in cabinets if c.last_reading_age is not None])
    out.family("posinv_cabinet_stale_trays", "Filled trays not read for two intervals.", "gauge",
               [({"cabinet": c.code}, c.stale_trays) for c in cabinets])
    out.family("posinv_cabinet_unstable_trays", "Trays holding an ambiguous reading.", "gauge",
               [({"cabinet": c.code}, c.unstable_trays) for c in cabinets])
    out.family("posinv_stock_moves_per_minute", "Stock moves written per minute over the last 5 minutes.", "gauge",
               [({}, health.moves_per_minute)])
    lag_samples = []
    for path, figures in health.lag_seconds.items():
        if figures["n"]:
            lag_samples.append(({"path": path, "stat": "avg"}, figures["avg"]))
            lag_samples.append(({"path": path, "stat": "max"}, figures["max"]))
    out.family("posinv_propagation_lag_seconds",
               "Propagation lag over the last 15 minutes (web_stack: queued to cart; register: rung up to recorded).",
               "gauge", lag_samples)
    if health.ledger.run is not None:
        out.family("posinv_ledger_last_verification_timestamp_seconds", "Unix time of the last ledger verification.",
                   "gauge", [({}, health.ledger.run.started_at.timestamp())])
    out.family("posinv_ledger_drifting_pairs", "Pairs whose level differs from the sum of moves at the last check.",
               "gauge", [({}, health.ledger.drifting)] if health.ledger.drifting is not None else [])
    out.family("posinv_rq_queue_depth", "Jobs waiting in each RQ queue.", "gauge",
               [({"queue": q["name"]}, q["depth"]) for q in health.queues.queues])
    out.family("posinv_rq_failed_jobs", "Jobs in each RQ queue's failed registry.", "gauge",
               [({"queue": q["name"]}, q["failed"]) for q in health.queues.queues])
    out.family("posinv_rq_workers", "RQ workers registered with Redis.", "gauge",
               [({}, health.queues.workers)] if health.queues.mode == "rq" else [])
    out.family("posinv_health_status", "Status per section: 0 green, 1 amber, 2 red.", "gauge",
               [({"section": name}, _STATUS_VALUE[status]) for name, status in health.sections.items()])
    return out.text()
