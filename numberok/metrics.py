"""
The one registry of numberok's counters (prometheus-client), read by
C{GET /metrics}, the admin page and C{/api/connections}.

Every part takes a L{Metrics} in its constructor (C{metrics=None} gives it a
private one through L{metricsOrPrivate}, so a unit test needs nothing);
L{numberok.build.buildServer}
makes one per server and hands the same object to every part.  A registry
per server, not prometheus-client's global one: two servers in one test
process must not share counts.

Names follow Prometheus' rules: C{numberok_} prefix, C{_total} added to
counters by the library, seconds for durations.  docs/operations.rst lists
them with sample queries.
"""

from __future__ import annotations

from typing import Optional

from prometheus_client import (CollectorRegistry, Counter, Gauge,
                               generate_latest)
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from numberok.metrictypes import ReactorCounter, ReactorHistogram

__all__ = ["Metrics", "CONTENT_TYPE_LATEST", "metricsOrPrivate"]


class Metrics:
    """
    All counters, gauges and histograms of one server.

    Attributes are the metric objects themselves; label values are bound
    where the count happens (C{metrics.reads.labels(source="demo").inc()}),
    or once in a constructor where the path is hot.
    """

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry

        # -- reads and analytics (analytics.py, sources) -----------------
        # The per-read path counts with the lock-free reactor types
        # (numberok.metrictypes); the rest with prometheus-client's own.
        self.reads = ReactorCounter(
            "numberok_reads", "Plate reads taken by the analytics.",
            ["source"], registry=r)
        self.readErrors = Counter(
            "numberok_read_errors",
            "Reads refused at a source's edge (bad line, bad file, bad "
            "message), by source.", ["source"], registry=r)
        self.emptyReads = Counter(
            "numberok_empty_reads",
            "Reads whose plate text was empty after cleaning.", registry=r)
        self.events = ReactorCounter(
            "numberok_events", "Vehicle events emitted by the analytics.",
            ["state"], registry=r)
        self.readToEvent = ReactorHistogram(
            "numberok_read_to_event_seconds",
            "From a read's arrival to the event it caused.",
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                     0.25, 0.5, 1.0, 2.5), registry=r)
        self.activeTracks = Gauge(
            "numberok_active_tracks", "Vehicle tracks open right now.",
            registry=r)
        self.noiseTracks = Counter(
            "numberok_noise_tracks",
            "Tracks dropped before Detected (skip-first-X noise).",
            registry=r)
        self.droppedTracks = Counter(
            "numberok_dropped_tracks",
            "Tracks refused or closed early by the track caps.",
            ["reason"], registry=r)

        # -- perf: analytics and ingest (analytics.py, sources/ingest.py) --
        self.mergedTracks = Counter(
            "numberok_merged_tracks",
            "Small tracks folded into an announced neighbour (a partial or "
            "garbled copy of it) before Detected.", registry=r)
        self.ingestRepliesDropped = Counter(
            "numberok_ingest_replies_dropped",
            "Error replies not sent to an ingest peer that does not read "
            "them.", registry=r)
        self.sinkFailures = Counter(
            "numberok_read_sink_failures",
            "Reads a source could not hand to the analytics (a bug), by "
            "source.", ["source"], registry=r)

        # -- publisher (publisher.py) -------------------------------------
        self.droppedEvents = ReactorCounter(
            "numberok_dropped_events",
            "Events dropped from a client's full queue, by state.",
            ["state"], registry=r)
        self.unencodableEvents = Counter(
            "numberok_unencodable_events",
            "Events that could not be encoded for the wire.", registry=r)
        self.eventsSent = Counter(
            "numberok_events_sent", "Events written to clients.", registry=r)
        self.bytesSent = Counter(
            "numberok_sent_bytes", "Bytes written to clients.", registry=r)

        # -- event port (server.py) ---------------------------------------
        self.connections = Gauge(
            "numberok_connections", "NumberOk clients connected now.",
            registry=r)
        self.connectionsAccepted = Counter(
            "numberok_connections_accepted",
            "NumberOk client connections accepted.", registry=r)
        self.connectionsRefused = Counter(
            "numberok_connections_refused",
            "NumberOk client connections refused, by reason.", ["reason"],
            registry=r)
        self.protocolErrors = Counter(
            "numberok_protocol_errors",
            "Client connections closed for a protocol error or timeout.",
            ["reason"], registry=r)

        # -- screenshots (screenshots.py, images.py) -----------------------
        self.screenshotsEncoded = Counter(
            "numberok_screenshots_encoded", "Screenshots re-encoded.",
            registry=r)
        self.screenshotCacheHits = Counter(
            "numberok_screenshot_cache_hits",
            "Screenshot requests answered from an encode already made.",
            registry=r)
        self.screenshotsSkipped = Counter(
            "numberok_screenshots_skipped",
            "Screenshots not attached, by reason (overloaded, unfit, "
            "invalid).", ["reason"], registry=r)

        # -- journal (journal/) -------------------------------------------
        self.journalRecorded = Counter(
            "numberok_journal_recorded", "Lost events written to the journal.",
            registry=r)
        self.journalFailures = Counter(
            "numberok_journal_failures",
            "Events (or a start) the journal could not record, by reason "
            "(disk_full, read_only, overflow, closed, other).", ["reason"],
            registry=r)
        self.journalPicturesSkipped = Counter(
            "numberok_journal_pictures_skipped",
            "Pictures of recorded events not kept, by reason (not_jpeg, "
            "disk_full, read_only, other).", ["reason"], registry=r)
        self.journalPruned = Counter(
            "numberok_journal_pruned", "Journal rows removed by retention.",
            registry=r)
        self.journalEpochs = Counter(
            "numberok_journal_epochs",
            "New journal databases started because the old one was lost.",
            registry=r)
        self.recentThumbnailsSkipped = Counter(
            "numberok_recent_thumbnails_skipped",
            "Admin page rows left without a thumbnail because the thumbnail "
            "thread was behind.", registry=r)

        # -- ingest port and HTTP (sources/ingest.py, web/) ----------------
        self.ingestRefused = Counter(
            "numberok_ingest_connections_refused",
            "Ingest connections refused at the per-peer or total cap.",
            registry=r)

        # -- admin web (web/) ---------------------------------------------
        self.loginFailures = Counter(
            "numberok_login_failures", "Wrong admin passwords.", registry=r)
        self.adminRefused = Counter(
            "numberok_admin_refused",
            "Admin requests or connections refused before any work, by "
            "reason.", ["reason"], registry=r)
        self.passwordChecks = Counter(
            "numberok_password_checks",
            "Admin password hashes computed (PBKDF2; throttled attempts and "
            "remembered passwords compute none).", registry=r)

        # -- mqtt (mqtt/) -------------------------------------------------
        self.mqttPublished = Counter(
            "numberok_mqtt_published",
            "Event messages handed to the MQTT client, by state.", ["state"],
            registry=r)
        self.mqttAcknowledged = Counter(
            "numberok_mqtt_acknowledged",
            "Lost messages of the outbox the broker acknowledged.",
            registry=r)
        self.mqttOutboxBacklog = Gauge(
            "numberok_mqtt_outbox_backlog",
            "Journal ids after the outbox cursor: Lost events the broker "
            "has not acknowledged yet.", registry=r)
        self.mqttDropped = Counter(
            "numberok_mqtt_dropped",
            "Live (Detected/Updated) messages not published, by reason "
            "(disconnected, busy, client).", ["reason"], registry=r)
        self.mqttConnected = Gauge(
            "numberok_mqtt_connected",
            "1 while the MQTT connection is up, by role (publish, collect).",
            ["role"], registry=r)
        self.mqttReconnects = Counter(
            "numberok_mqtt_reconnects",
            "Failed or lost MQTT connections (each one schedules a retry), "
            "by role.", ["role"], registry=r)
        self.mqttCollected = Counter(
            "numberok_mqtt_collected",
            "Events of other instances handed on by the collector.",
            registry=r)
        self.mqttDuplicates = Counter(
            "numberok_mqtt_duplicates",
            "Collected messages dropped as duplicates.", registry=r)
        self.mqttBadMessages = Counter(
            "numberok_mqtt_bad_messages",
            "Messages on the events topics that could not be used (bad "
            "reads count in numberok_read_errors_total{source=\"mqtt\"}).",
            registry=r)
        self.mqttOwnDropped = Counter(
            "numberok_mqtt_own_dropped",
            "Collected messages dropped because they carry our own "
            "SystemId (another instance configured with the same one?).",
            registry=r)
        self.mqttGapEvents = Counter(
            "numberok_mqtt_gap_events",
            "Lost events missing from a site's consecutive journal ids, by "
            "outcome: asked (a republish was requested), unfilled (they did "
            "not come).", ["outcome"], registry=r)
        self.mqttGapOpen = Gauge(
            "numberok_mqtt_gap_open",
            "Lost events of sites still missing and asked for again.",
            registry=r)

        # -- cameras (sources/hikvision.py, web/cameras.py) ---------------
        self.cameraAlarms = Counter(
            "numberok_camera_alarms",
            "Alarms pushed by cameras, by kind (anpr, unknown_plate, "
            "heartbeat, other).", ["kind"], registry=r)
        self.cameraRefused = Counter(
            "numberok_camera_refused",
            "Camera pushes refused, by reason (too_large, unauthorized, "
            "invalid, unsupported_type).", ["reason"], registry=r)
        self.cameraPicturesDropped = Counter(
            "numberok_camera_pictures_dropped",
            "Camera pictures left out of a read (not a JPEG, over the pixel "
            "limit, listed but not sent); the read itself is kept.",
            registry=r)

        # -- sources (sources/demo/, sources/replay.py, sources/watch.py) --
        # Their reads are counted by the analytics (reads), their bad lines
        # and files in readErrors; these are what only a source knows.
        self.demoVehicles = Counter(
            "numberok_demo_vehicles",
            "Simulated vehicles whose first read the demo handed on.",
            registry=r)
        self.demoFramesSkipped = Counter(
            "numberok_demo_frames_skipped",
            "Demo reads sent without a frame because rendering fell behind.",
            registry=r)
        self.replayPasses = Counter(
            "numberok_replay_passes",
            "Passes through the replay file started (more than one when "
            "looping).", registry=r)

        # -- journal search, export, visits (journal/search*.py) ----------
        self.searchRequests = Counter(
            "numberok_search_requests",
            "Journal searches, exports and visit queries answered, by kind "
            "(search, csv, jsonl, visits, inside).", ["kind"], registry=r)
        self.searchRefused = Counter(
            "numberok_search_refused",
            "Journal searches refused with a 400, by the parameter at "
            "fault.", ["param"], registry=r)
        self.exportRows = Counter(
            "numberok_export_rows",
            "Rows written by the CSV and JSON lines exports.", registry=r)
        # -- the outbox and webhooks (journal/outbox.py, webhooks/) -------
        self.outboxBacklog = Gauge(
            "numberok_outbox_backlog",
            "Journal rows an outbox consumer has not had acknowledged yet.",
            ["consumer"], registry=r)
        self.outboxSkipped = Counter(
            "numberok_outbox_skipped",
            "Journal rows retention removed before an outbox consumer "
            "delivered them (also logged at error level).", ["consumer"],
            registry=r)
        self.webhookDelivered = Counter(
            "numberok_webhook_delivered",
            "Events a webhook target acknowledged with 2xx, by target and "
            "state.", ["target", "state"], registry=r)
        self.webhookAttempts = Counter(
            "numberok_webhook_attempts",
            "Webhook requests that failed, by target and outcome (timeout, "
            "connect, 5xx, 4xx, ...); each is retried with backoff.",
            ["target", "outcome"], registry=r)
        self.webhookParked = Counter(
            "numberok_webhook_parked",
            "Lost events a webhook target refused (4xx other than 408/429) "
            "until parked; listed in /api/webhooks.", ["target"], registry=r)
        self.webhookDropped = Counter(
            "numberok_webhook_dropped",
            "Live Detected/Updated events not sent to a webhook target, by "
            "reason (busy: its bounded queue was full; failed: the one "
            "try failed).", ["target", "reason"], registry=r)
        self.webhookLag = Gauge(
            "numberok_webhook_lag",
            "Lost events in the journal a webhook target has not "
            "acknowledged yet.", ["target"], registry=r)
        self.webhookLastSuccess = Gauge(
            "numberok_webhook_last_success_seconds",
            "When a webhook target last answered 2xx (Unix time).",
            ["target"], registry=r)
        # -- memory (memory.py) ----------------------------------------------
        self.memoryTrims = Counter(
            "numberok_memory_trims",
            "Times freed memory was handed back to the system "
            "(malloc_trim) after the process grew.", registry=r)
        self.memoryTrimmedBytes = Counter(
            "numberok_memory_trimmed_bytes",
            "Resident bytes those trims gave back.", registry=r)
        # -- lists and gates (lists/, gates/) -----------------------------
        self.listDecisions = Counter(
            "numberok_list_decisions",
            "Access decisions made for passages, by access (granted, "
            "denied, unknown).", ["access"], registry=r)
        self.listDecisionSeconds = ReactorHistogram(
            "numberok_list_decision_seconds",
            "Time one access decision took (memory only).",
            buckets=(0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025,
                     0.01), registry=r)
        self.listEntries = Gauge(
            "numberok_list_entries", "Entries in all lists.", registry=r)
        self.listRefused = Counter(
            "numberok_list_refused",
            "List and entry changes refused as bad input, by what "
            "(list, entry, csv).", ["what"], registry=r)
        self.visitsCounted = Counter(
            "numberok_list_visits_counted",
            "Visits counted down on entries with a visit limit.",
            registry=r)
        self.accessLogDropped = Counter(
            "numberok_access_log_dropped",
            "Access log rows dropped (the writer fell behind or failed).",
            registry=r)
        self.gateOpens = Counter(
            "numberok_gate_opens",
            "Gate open attempts, by result (ok, failed, timeout, given_up).",
            ["result"], registry=r)

    def render(self) -> bytes:
        """The Prometheus text exposition of every metric."""
        return generate_latest(self.registry)

    def value(self, name: str, **labels: str) -> float:
        """
        One sample's current value (0 when it has none yet), for the admin
        page and tests: C{metrics.value("numberok_reads_total",
        source="demo")}.
        """
        found: Optional[float] = self.registry.get_sample_value(name, labels)
        return found or 0.0


def metricsOrPrivate(metrics: Optional[Metrics]) -> Metrics:
    """
    The one fallback for a part built without the server's registry: the
    registry given, or a private one (unit tests need nothing; the
    server's counters never see a part that was not handed them).
    """
    return metrics if metrics is not None else Metrics()
