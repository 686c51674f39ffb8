#!/usr/bin/env python3
"""Writes src/web/openapi.json (the API contract served at /api/openapi.json).
Edit this file, run it, and commit both. The tests check the server against the output."""
import json, os
err = {"$ref": "#/components/schemas/Error"}
def resp(desc, schema=None, ct="application/json", headers=None):
    r = {"description": desc}
    if schema is not None:
        r["content"] = {ct: {"schema": schema}}
    if headers:
        r["headers"] = headers
    return r
def e(desc): return resp(desc, err)
RA = {"Retry-After": {"description": "seconds to wait", "schema": {"type": "integer", "minimum": 0}}}
def busy(desc): return resp(desc, err, headers=RA)
common = {"401": e("no or wrong credentials"), "421": e("the Host is not one of this device's names or addresses"),
          "429": busy("too many wrong secrets from this address: its secret checks are locked for a while")}
# Exports (issue 15): at most 6 at once and 96 MiB for their plans together.
export_limits = {"422": e("the range holds more frames than one export may (629,145: 5.8 h at 30 fps); export it in parts"),
                 "503": busy("6 exports in progress, or their plans fill the 96 MiB budget")}
mut = dict(common, **{"403": e("cross-site request refused (Origin/Sec-Fetch-Site)"), "413": e("request body too large"), "400": e("bad input: malformed JSON, a wrong type, a value out of range; `key` names the field")})
time_s = {"type": "string", "format": "date-time", "description": "ISO 8601 UTC, e.g. 2026-11-21T12:00:00Z (fractional seconds allowed), 1970..2200", "example": "2026-11-21T12:00:00Z"}
opt_time = {"type": "string", "format": "date-time", "nullable": True}
def jpeg(desc, extra=None):
    h = {"X-Timestamp": {"description": "capture time, Unix seconds with microseconds", "schema": {"type": "string", "pattern": "^[0-9]+\\.[0-9]{6}$"}},
         "X-Seq": {"description": "the frame's sequence number", "schema": {"type": "integer", "minimum": 0}}}
    if extra: h.update(extra)
    return resp(desc, {"type": "string", "format": "binary"}, ct="image/jpeg", headers=h)
def op(summary, responses, **kw):
    o = {"summary": summary, "responses": responses}
    o.update(kw)
    return o
def body(schema, required=True):
    return {"required": required, "content": {"application/json": {"schema": schema}}}

# Printable ASCII with no space at either end (blackbox.txt trims values).
PLAIN = "^[!-~]([ -~]*[!-~])?$"
mp4_h = {"Content-Disposition": {"description": "attachment; filename=\"blackbox_START_END.mp4\"", "schema": {"type": "string"}},
         "Accept-Ranges": {"description": "bytes", "schema": {"type": "string"}}, "ETag": {"description": "changes when the footage does", "schema": {"type": "string"}}}
inc_id = {"name": "id", "in": "path", "required": True, "schema": {"type": "integer", "minimum": 0, "maximum": 9223372036854775807}, "description": "the event's id"}
ctl_id = {"name": "id", "in": "path", "required": True, "schema": {"type": "integer", "minimum": 0, "maximum": 4294967295}, "description": "the control's V4L2 id"}
CameraControl = {"type": "object", "required": ["id", "name", "category", "type", "min", "max", "step", "default", "value", "read_only", "inactive", "flags"],
  "properties": {"id": {"type": "integer", "minimum": 0}, "name": {"type": "string"}, "category": {"type": "string"},
    "type": {"type": "string", "description": "integer, boolean, menu, integer_menu, button, integer64, string, bitmask, u8, u16, u32, compound, ..."},
    "min": {"type": "integer"}, "max": {"type": "integer"}, "step": {"type": "integer"},
    "default": {"nullable": True, "anyOf": [{"type": "integer", "nullable": True}, {"type": "boolean", "nullable": True}]},
    "value": {"nullable": True, "anyOf": [{"type": "integer", "nullable": True}, {"type": "boolean", "nullable": True}, {"type": "string", "nullable": True}]},
    "menu": {"type": "array", "items": {"type": "object", "required": ["index", "name"], "properties": {"index": {"type": "integer"}, "name": {"type": "string"}, "value": {"type": "integer"}}}},
    "read_only": {"type": "boolean"}, "inactive": {"type": "boolean"}, "flags": {"type": "array", "items": {"type": "string"}}}}
offload_props = {
  "offload": {"type": "string", "enum": ["off", "events", "all"], "description": "events: protected footage only (events, Save incident, protected ranges); all: everything, protected first"},
  "s3_endpoint": {"type": "string", "maxLength": 300, "description": "https://host[:port], or http://host[:port] with s3_allow_http; empty: unset", "example": "https://s3.eu-central-1.amazonaws.com"},
  "s3_bucket": {"type": "string", "maxLength": 63, "pattern": "^([a-z0-9.-]{3,63})?$"},
  "s3_region": {"type": "string", "minLength": 1, "maxLength": 64, "pattern": "^[!-~]+$"},
  "s3_prefix": {"type": "string", "maxLength": 200, "pattern": "^[A-Za-z0-9._/-]*$"},
  "s3_access_key": {"type": "string", "maxLength": 256, "pattern": "^[!-~]*$"},
  "s3_allow_http": {"type": "boolean", "description": "allow a plain http:// endpoint (a trusted home network)"},
  "s3_ca_file": {"type": "string", "maxLength": 256, "pattern": "^(/[!-~]*)?$", "description": "https: trust only this CA (a PEM file on the device), not the system's bundle; empty: the system's"},
  "offload_kbps": {"type": "integer", "minimum": 0, "maximum": 10000000, "description": "upload limit, kbit/s; 0: none"},
  "device_name": {"type": "string", "minLength": 1, "maxLength": 64, "pattern": "^[A-Za-z0-9_-][A-Za-z0-9._-]*$", "description": "this device's folder under the prefix"},
  "offload_target": {"type": "string", "enum": ["s3", "rsync"], "description": "S3-compatible storage, or a NAS by rsync"},
  "rsync_dest": {"type": "string", "maxLength": 300, "description": "rsync://[user@]host[:port]/module[/path] (a daemon) or [user@]host:path (SSH); empty: unset"},
  "rsync_ssh_key": {"type": "string", "maxLength": 256, "pattern": "^(/[!-~]*)?$", "description": "SSH: the private key file on the device"},
  "rsync_ssh_port": {"type": "integer", "minimum": 1, "maximum": 65535}}
OffloadSettings = {"type": "object", "required": list(offload_props) + ["s3_secret_key_set", "rsync_password_set"],
  "properties": dict(offload_props, s3_secret_key_set={"type": "boolean", "description": "a secret key is saved (it is never returned)"},
                     rsync_password_set={"type": "boolean", "description": "an rsync password is saved (it is never returned)"})}
OffloadPatch = {"type": "object", "additionalProperties": False, "properties": dict(offload_props,
  s3_secret_key={"type": "string", "maxLength": 256, "pattern": "^[!-~]*$", "description": "write-only; empty keeps the saved one"},
  rsync_password={"type": "string", "maxLength": 256, "description": "rsync daemon password; write-only; empty keeps the saved one"})}
nn = {"type": "integer", "minimum": 0}
OffloadState = {"type": "object", "nullable": True, "description": "offload (README, Offload); null when not running",
  "required": ["state", "mode", "target", "queued", "queued_bytes", "verified", "verified_since_start", "bytes_sent", "parts_skipped", "failed", "lost_before_offload", "current", "last_run", "last_success", "last_error"],
  "properties": {"state": {"type": "string", "enum": ["off", "idle", "uploading", "waiting", "error"], "description": "idle: everything due is copied; waiting: retrying after a failure; error: needs the owner (wrong key, no such bucket)"},
    "mode": {"type": "string", "enum": ["off", "events", "all"]}, "target": {"type": "string", "description": "s3://host/bucket/prefix; empty when off"},
    "queued": dict(nn, description="segments still to copy"), "queued_bytes": nn, "verified": dict(nn, description="segments in the store with a verified copy"),
    "verified_since_start": nn, "bytes_sent": nn, "parts_skipped": dict(nn, description="parts found on the server when resuming an interrupted upload"),
    "failed": dict(nn, description="failed attempts since start"), "lost_before_offload": dict(nn, description="protected segments retention deleted before they were copied, since start"),
    "current": {"type": "string", "nullable": True}, "last_run": opt_time, "last_success": opt_time, "last_error": {"type": "string", "nullable": True}}}
alert_props = {
  "webhook_url": {"type": "string", "maxLength": 500, "description": "http(s)://host[:port]/path?query; empty: no webhook", "example": "https://ntfy.sh/my-dashcam"},
  "webhook_format": {"type": "string", "enum": ["json", "ntfy", "discord", "slack"]},
  "smtp_server": {"type": "string", "maxLength": 260, "description": "host:port; empty: no e-mail", "example": "smtp.example.com:587"},
  "smtp_security": {"type": "string", "enum": ["starttls", "tls", "none"]},
  "smtp_user": {"type": "string", "maxLength": 256},
  "smtp_from": {"type": "string", "maxLength": 254},
  "smtp_to": {"type": "string", "maxLength": 1000, "description": "addresses separated by commas"},
  "alerts_ca_file": {"type": "string", "maxLength": 256, "pattern": "^(/[!-~]*)?$", "description": "trust only this CA (PEM file on the device) for the webhook's and mail server's TLS"},
  "alert_camera_lost_s": {"type": "integer", "minimum": 5, "maximum": 86400, "description": "the camera lost longer than this raises an alert"}}
AlertSettings = {"type": "object", "required": list(alert_props) + ["smtp_password_set"],
  "properties": dict(alert_props, smtp_password_set={"type": "boolean", "description": "a mail password is saved (it is never returned)"})}
AlertPatch = {"type": "object", "additionalProperties": False, "properties": dict(alert_props,
  smtp_password={"type": "string", "maxLength": 256, "description": "write-only; empty keeps the saved one"})}
AlertState = {"type": "object", "nullable": True, "description": "alerts (README, Alerts); null when not running",
  "required": ["queued", "sent", "failed", "dropped", "last_sent", "last_error"],
  "properties": {"queued": dict(nn, description="alerts waiting for delivery"), "sent": dict(nn, description="deliveries since start (alert x channel)"),
    "failed": dict(nn, description="failed delivery attempts since start"), "dropped": dict(nn, description="alerts dropped undelivered (more than 64 waiting)"),
    "last_sent": opt_time, "last_error": {"type": "string", "nullable": True}}}
config_props = {
  "listen": {"type": "string", "maxLength": 64, "pattern": "^(25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])([.](25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])){3}:(6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[1-9][0-9]{0,3}|0)$", "description": "dashboard address IP:PORT (applies at the next start)", "example": "127.0.0.1:8080"},
  "port": {"type": "integer", "minimum": 0, "maximum": 65535, "description": "nonzero replaces the port in listen (next start)"},
  "storage_cap_gb": {"type": "number", "minimum": 0.01, "maximum": 65536, "description": "most space recordings may use, GiB (live)"},
  "min_free_mb": {"type": "integer", "minimum": 0, "maximum": 1048576, "description": "free space to keep, MiB (live)"},
  "protected_cap_percent": {"type": "integer", "minimum": 0, "maximum": 100, "description": "share of the cap protected footage may use (live)"},
  "video_fps": {"type": "integer", "minimum": 1, "maximum": 120, "description": "frame rate (restart)"},
  "video_res_width": {"type": "integer", "minimum": 16, "maximum": 7680, "description": "frame width (restart)"},
  "video_res_height": {"type": "integer", "minimum": 16, "maximum": 4320, "description": "frame height (restart)"},
  "segment_length_s": {"type": "integer", "minimum": 1, "maximum": 3600, "description": "segment length (restart)"},
  "camera_device": {"type": "string", "maxLength": 128, "pattern": "^(/dev/(video[0-9]{1,3}|v4l/by-(id|path)/[A-Za-z0-9_:-][A-Za-z0-9_.:-]{0,96}))?$", "description": "camera device: a V4L2 device node (character device, major 81) or its /dev/v4l link; a path not there yet is waited for; anything else is refused (400) with one message whatever the path; empty = auto-detect (restart)"},
  "video_codec": {"type": "string", "enum": ["h264", "mjpeg"], "description": "what is recorded: H.264 (default; plays in browsers and phones) or Motion JPEG (restart)"},
  "video_bitrate_kbps": {"type": "integer", "minimum": 100, "maximum": 50000, "description": "H.264 target bitrate of encoded frames, kbit/s (restart)"},
  "keyframe_interval_s": {"type": "integer", "minimum": 1, "maximum": 10, "description": "seconds between H.264 key frames (restart)"},
  "mjpeg_quality": {"type": "integer", "minimum": 1, "maximum": 100, "description": "JPEG quality of encoded frames (restart)"},
  "embed_timestamp": {"type": "boolean", "description": "burn the UTC time into encoded frames (restart)"},
  "commit_interval_ms": {"type": "integer", "minimum": 10, "maximum": 60000, "description": "longest time between fdatasyncs (live)"},
  "commit_frames": {"type": "integer", "minimum": 1, "maximum": 100000, "description": "commit after this many frames at the latest (live)"},
  "max_live_clients": {"type": "integer", "minimum": 1, "maximum": 64, "description": "most simultaneous live viewers (live)"},
  "gsensor_device": {"type": "string", "maxLength": 32, "pattern": "^(|auto|off|/dev/i2c-[0-9]{1,4}(@(0[xX][0-9a-fA-F]{1,2}|[0-9]{1,3}))?)$", "description": "where the G-sensor is: auto or empty (probe every /dev/i2c-*), off, /dev/i2c-N or /dev/i2c-N@0xADDR (next start)"},
  "gps_device": {"type": "string", "maxLength": 128, "pattern": "^(|auto|off|/[A-Za-z0-9_./:+-]{1,112}(@(4800|9600|19200|38400|57600|115200))?)$", "description": "where the GPS receiver is: auto or empty (/dev/ttyACM*, then /dev/ttyUSB*), off, a tty's absolute path (rate detected) or PATH@BAUD (next start)"},
  "gsensor_threshold_g": {"type": "number", "minimum": 0.5, "maximum": 16, "description": "impact threshold while driving, g of dynamic acceleration (live)"},
  "parking_after_min": {"type": "integer", "minimum": 0, "maximum": 1440, "description": "minutes without vehicle motion (G-sensor) before parking mode starts by itself; 0 never; without a working G-sensor never (live)"},
  "event_pre_s": {"type": "integer", "minimum": 0, "maximum": 600, "description": "footage an event protects before its trigger, s, counted in footage across gaps (live)"},
  "event_post_s": {"type": "integer", "minimum": 1, "maximum": 600, "description": "footage an event protects after its trigger, s (live)"},
  "gsensor_parked_threshold_g": {"type": "number", "minimum": 0.1, "maximum": 16, "description": "impact (bump) threshold while parked, g (live)"},
  "speed_unit": {'type': 'string', 'enum': ['kmh', 'mph'], 'description': "speed unit of the export's subtitles and the player's speedometer (live)"},
  "subtitle_position": {'type': 'boolean', 'description': "whether the export's subtitles show the GPS position; false: time and speed only (privacy) (live)"},
  "audio": {'type': 'boolean', 'description': 'sound from the microphone; false mutes: nothing is stored (live)'},
  "audio_device": {'type': 'string', 'maxLength': 64, 'pattern': '^(|auto|off|/dev/snd/pcmC[0-9]{1,2}D[0-9]{1,2}c)$', 'description': 'where the microphone is: auto or empty (the first capture device), off, or /dev/snd/pcmCxDyc (next start)'},
}
# The cameras besides the first (src/config/cameras.rs); not required, as in old configs.
cameras_prop = {'type': 'array', 'maxItems': 3, 'description': 'the cameras besides the first (docs/CONFIG.md "Several cameras"); rtsp:// passwords are shown as ********, and sent back so they keep the saved one', 'items': {'type': 'object', 'additionalProperties': False, 'required': ['name', 'source'], 'properties': {'name': {'type': 'string', 'pattern': '^[a-z0-9_-]{1,16}$'}, 'source': {'type': 'string', 'maxLength': 192}, 'width': {'type': 'integer', 'minimum': 16, 'maximum': 7680}, 'height': {'type': 'integer', 'minimum': 16, 'maximum': 4320}, 'fps': {'type': 'integer', 'minimum': 1, 'maximum': 120}, 'codec': {'type': 'string', 'enum': ['h264', 'mjpeg']}, 'bitrate_kbps': {'type': 'integer', 'minimum': 100, 'maximum': 50000}, 'stall_s': {'type': 'integer', 'minimum': 1, 'maximum': 120}}}}
# The first camera may be an IP camera: camera_device is then its rtsp:// URL (password shown
# as ********). The patch's pattern leaves URLs out, as it leaves `cameras` out: a generated
# URL would have blackbox connect to a host that isn't 127.0.0.1.
camera_device_any = dict(config_props["camera_device"], maxLength=192,
                         pattern=config_props["camera_device"]["pattern"][:-3] + "|rtsp://[!-~]{1,185})?$",
                         description=config_props["camera_device"]["description"] + "; or an RTSP camera's rtsp://[user:password@]host[:port]/path (its password shown as ********; sent back, it keeps the saved one)")
Config = {"type": "object", "properties": dict(config_props, camera_device=camera_device_any, cameras=cameras_prop), "required": list(config_props), "additionalProperties": False}
# PUT also takes `cameras` (the whole list, checked as the file is): left out of the patch's
# schema, as its rules (unique names, sources a device, URL or file) are more than a schema says.
ConfigPatch = {"type": "object", "properties": config_props, "additionalProperties": False, "description": "any subset of the config keys (and `cameras`: the whole list, as in Config; `camera_device` also takes an rtsp:// URL, as in Config)"}
nint = lambda: {"type": "integer", "minimum": 0}
Status = {"type": "object", "required": ["recording", "state", "camera", "format", "fps", "frames", "delivered", "camera_sequence", "dropped", "lost", "durable_seq", "storage", "segments", "oldest", "newest", "started", "uptime_s", "system", "live_clients", "version", "name", "cameras"],
  "properties": {
    "name": {'type': 'string', 'description': 'the camera this status is about (`front`: the first)'},
    "cameras": {'type': 'array', 'description': 'every camera, the first first: state and counters (lost frames by cause)', 'items': {'type': 'object', 'required': ['name', 'state', 'recording', 'frames', 'lost'], 'properties': {'name': {'type': 'string'}, 'state': {'type': 'string', 'enum': ['starting', 'recording', 'stopped', 'camera_lost', 'card_full']}, 'recording': {'type': 'boolean'}, 'camera': {'type': 'string'}, 'width': {'type': 'integer'}, 'height': {'type': 'integer'}, 'fps': {'type': 'integer'}, 'frames': {'type': 'integer'}, 'delivered': {'type': 'integer'}, 'dropped': {'type': 'integer'}, 'lost': {'type': 'object', 'properties': {'driver': {'type': 'integer'}, 'deadline': {'type': 'integer'}, 'encoder': {'type': 'integer'}, 'backpressure': {'type': 'integer'}, 'store': {'type': 'integer'}}}, 'durable_seq': {'type': 'integer', 'nullable': True}, 'used_bytes': {'type': 'integer'}, 'segments': {'type': 'integer'}, 'oldest': {'type': 'string', 'nullable': True}, 'newest': {'type': 'string', 'nullable': True}}}},
    "audio": {'type': 'object', 'description': 'the microphone: state, device, what was stored and what was lost, by cause', 'required': ['state', 'enabled', 'device', 'card', 'rate', 'channels', 'codec', 'stored_s', 'lost_ms', 'overruns', 'opens', 'encoder_errors', 'store_errors'], 'properties': {'state': {'type': 'string', 'enum': ['off', 'muted', 'searching', 'recording', 'lost'], 'description': 'off: audio_device off; muted: the audio switch is off (nothing stored); searching: no microphone; lost: it vanished or stalled (opened again)'}, 'enabled': {'type': 'boolean', 'description': 'the audio switch (config audio)'}, 'device': {'type': ['string', 'null'], 'description': 'the capture PCM, e.g. /dev/snd/pcmC1D0c'}, 'card': {'type': ['string', 'null'], 'description': "its sound card's id"}, 'rate': {'type': ['integer', 'null'], 'description': 'sample rate, Hz'}, 'channels': {'type': 'integer', 'description': 'channels the device gives (mixed down to mono)'}, 'codec': {'type': 'string', 'enum': ['aac']}, 'stored_s': {'type': 'number', 'description': 'seconds of sound made durable since start'}, 'lost_ms': {'type': 'object', 'required': ['overrun', 'device', 'disk'], 'description': 'sound lost since start, ms, by cause', 'properties': {'overrun': {'type': 'integer', 'minimum': 0, 'description': 'the capture buffer overran'}, 'device': {'type': 'integer', 'minimum': 0, 'description': 'the microphone stalled or was unplugged: the time from its last sample until it recorded again (counted when it is back)'}, 'disk': {'type': 'integer', 'minimum': 0, 'description': 'the card was slower than the microphone for 30 s'}}, 'additionalProperties': False}, 'overruns': {'type': 'integer', 'minimum': 0}, 'opens': {'type': 'integer', 'minimum': 0}, 'encoder_errors': {'type': 'integer', 'minimum': 0}, 'store_errors': {'type': 'integer', 'minimum': 0}}, 'additionalProperties': False},
    "recording": {"type": "boolean"},
    "state": {"type": "string", "enum": ["starting", "recording", "stopped", "camera_lost", "card_full"]},
    "camera": {"type": "string", "description": "one line describing the camera as opened"},
    "format": {"type": "object", "required": ["device", "driver", "pixel_format", "width", "height", "fps"], "properties": {
        "device": {"type": "string", "nullable": True}, "driver": {"type": "string", "nullable": True},
        "pixel_format": {"type": "string", "nullable": True}, "width": nint(), "height": nint(), "fps": nint()}},
    "fps": {"type": "number", "minimum": 0, "description": "frames recorded per second over the last few seconds"},
    "frames": nint(), "dropped": nint(),
    "delivered": {"type": "integer", "minimum": 0, "description": "frames the camera handed to the recorder (stored, lost to backpressure or the store, or in flight)"},
    "camera_sequence": {"type": "integer", "minimum": 0, "nullable": True, "description": "the V4L2 driver's sequence number of the newest frame: its own count of the frames it produced"},
    "lost": {"type": "object", "description": "frames the camera produced and the store did not keep, by cause (their sum is `dropped`)",
             "required": ["driver", "deadline", "encoder", "backpressure", "store"],
             "properties": {"driver": nint(), "deadline": nint(), "encoder": nint(), "backpressure": nint(), "store": nint()}},
    "durable_seq": {"type": "integer", "minimum": 0, "nullable": True},
    "storage": {"type": "object", "required": ["used_bytes", "cap_bytes", "free_bytes"], "properties": {
        "used_bytes": nint(), "cap_bytes": nint(), "free_bytes": {"type": "integer", "minimum": 0, "nullable": True}}},
    "segments": nint(), "oldest": opt_time, "newest": opt_time, "started": {"type": "string", "format": "date-time"},
    "uptime_s": nint(),
    "version": {"type": "string", "description": "blackbox's version"},
    "system": {"type": "object", "required": ["cpu_percent", "mem_used_bytes", "mem_total_bytes", "rss_bytes", "temp_c", "throttled"], "properties": {
        "cpu_percent": {"type": "number", "minimum": 0, "maximum": 100, "nullable": True},
        "mem_used_bytes": {"type": "integer", "minimum": 0, "nullable": True},
        "mem_total_bytes": {"type": "integer", "minimum": 0, "nullable": True},
        "rss_bytes": {"type": "integer", "minimum": 0, "nullable": True},
        "temp_c": {"type": "number", "nullable": True},
        "throttled": {"type": "object", "nullable": True, "description": "Raspberry Pi firmware flags (get_throttled); null elsewhere",
            "required": ["under_voltage", "freq_capped", "throttled", "soft_temp_limit", "under_voltage_occurred", "throttled_occurred", "raw"],
            "properties": {k: {"type": "boolean"} for k in ["under_voltage", "freq_capped", "throttled", "soft_temp_limit", "under_voltage_occurred", "throttled_occurred"]} | {"raw": {"type": "string", "pattern": "^0x[0-9a-f]+$"}}}}},
    "live_clients": nint(),
    "web_allocations": {"type": "integer", "minimum": 0, "description": "diagnostics: heap allocations the web thread made so far"},
    "codec": {"type": "string", "enum": ["h264", "mjpeg"], "description": "the recording's codec: h264 plays /api/live.mp4, mjpeg /api/live.mjpeg"},
    "gsensor": {"type": "object", "required": ["state", "chip", "bus", "addr", "samples", "overflows", "lost_samples", "impacts", "last_peak_g", "last_impact_mono_ns", "moving"], "description": "the G-sensor (accelerometer)", "properties": {
      "state": {"type": "string", "enum": ["off", "searching", "ok", "lost"], "description": "searching: none found yet (looked for every 30 s); lost: it vanished and is looked for again"},
      "chip": {"type": "string", "nullable": True, "example": "MPU-6050"},
      "bus": {"type": "string", "nullable": True, "example": "/dev/i2c-1"},
      "addr": {"type": "integer", "nullable": True, "minimum": 8, "maximum": 119, "description": "7-bit I2C address"},
      "samples": nint(), "overflows": dict(nint(), description="FIFO overflows (the reader was late)"),
      "lost_samples": dict(nint(), description="samples the overflows cost (estimated from the time they spanned)"),
      "impacts": nint(), "last_peak_g": {"type": "number", "nullable": True},
      "last_impact_mono_ns": {"type": "integer", "nullable": True, "minimum": 0, "description": "sample time of the last impact's onset, CLOCK_MONOTONIC ns"},
      "moving": {"type": "boolean", "description": "vibration above 0.03 g RMS within the last 10 s"}}},
    "gps": {"type": "object", "required": ["state", "device", "baud", "fix", "satellites", "hdop", "sentences", "bad_checksum", "void_fixes", "bad_dates", "bad_fields", "track_points", "track_errors", "clock", "clock_offset_s"], "description": "the GPS receiver", "properties": {
      "state": {"type": "string", "enum": ["off", "searching", "no fix", "fix", "lost"]},
      "device": {"type": "string", "nullable": True, "example": "/dev/ttyACM0"}, "baud": {"type": "integer", "nullable": True},
      "fix": {"type": "object", "nullable": True, "required": ["time", "lat", "lon", "speed_kmh", "course_deg", "altitude_m", "age_s"], "description": "the last valid fix", "properties": {
        "time": {"type": "string", "format": "date-time"}, "lat": {"type": "number", "minimum": -90, "maximum": 90}, "lon": {"type": "number", "minimum": -180, "maximum": 180},
        "speed_kmh": {"type": "number", "minimum": 0}, "course_deg": {"type": "number", "nullable": True}, "altitude_m": {"type": "number", "nullable": True},
        "age_s": {"type": "number", "minimum": 0, "description": "seconds since it arrived"}}},
      "satellites": nint(), "hdop": {"type": "number", "nullable": True},
      "sentences": dict(nint(), description="sentences with a good checksum"), "bad_checksum": nint(), "void_fixes": dict(nint(), description="RMC without a fix (status V, mode N)"),
      "bad_dates": dict(nint(), description="dates outside [build year, +19] (a week-rollover receiver) or impossible"), "bad_fields": nint(),
      "track_points": dict(nint(), description="track points written since start (one a second)"), "track_errors": dict(nint(), description="track writes that failed (a second of track each)"),
      "clock": {"type": "string", "enum": ["waiting", "set", "right", "not allowed"], "description": "the system clock from GPS: set once after 3 agreeing fixes"},
      "clock_offset_s": {"type": "number", "nullable": True, "description": "GPS time minus the system clock when it was checked"}}},
    "offload": {"$ref": "#/components/schemas/OffloadState"},
    "alerts": {"$ref": "#/components/schemas/AlertState"}}}
Range = {"type": "object", "required": ["from", "to"], "properties": {"from": time_s, "to": time_s}, "additionalProperties": False}
RangeOut = {"type": "object", "required": ["from", "to"], "properties": {"from": {"type": "string", "format": "date-time"}, "to": {"type": "string", "format": "date-time"}}}
Ranges = {"type": "object", "required": ["ranges"], "properties": {"ranges": {"type": "array", "items": {"$ref": "#/components/schemas/RangeOut"}}}}
Segment = {"type": "object", "required": ["id", "start", "end", "start_ms", "end_ms", "footage_ms", "first_seq", "frames", "bytes", "open", "protected", "gaps"], "properties": {
    "id": {"type": "integer", "minimum": 0, "description": "the segment's first frame's seq"},
    "start": {"type": "string", "format": "date-time"}, "end": {"type": "string", "format": "date-time"},
    "start_ms": {"type": "integer"}, "end_ms": {"type": "integer"},
    "footage_ms": {"type": "integer", "minimum": 0, "description": "time covered by frames: end - start less the gaps inside"},
    "first_seq": nint(), "frames": nint(), "bytes": nint(), "open": {"type": "boolean"}, "protected": {"type": "boolean"},
    "gaps": {"type": "array", "description": "stretches without frames inside the segment (frames more than 1 s apart)", "items": {"$ref": "#/components/schemas/RangeOut"}}}}
Recording = {"type": "object", "required": ["recording", "state"], "properties": {"recording": {"type": "boolean", "description": "recording is wanted"}, "state": Status["properties"]["state"]}}
Time = {"type": "object", "required": ["utc", "unix_ms", "settable"], "properties": {"utc": {"type": "string", "format": "date-time"}, "unix_ms": {"type": "integer"}, "settable": {"type": "boolean", "description": "this process may set the clock (CAP_SYS_TIME)"}}}
Health = {"type": "object", "required": ["status", "uptime_s", "recording", "state", "durable_seq"], "properties": {"status": {"type": "string", "enum": ["ok"]}, "uptime_s": nint(), "recording": {"type": "boolean"}, "state": Status["properties"]["state"], "durable_seq": {"type": "integer", "minimum": 0, "nullable": True}}}
time_q = lambda name, d: {"name": name, "in": "query", "required": False, "description": d, "schema": time_s}
doc = {
 "openapi": "3.0.3",
 "info": {"title": "blackbox dash cam API", "version": "1", "description": "The HTTP API of blackbox (docs/API.md). Every route needs the session cookie or the device secret as a Bearer token, except /health. Times are ISO 8601 UTC. Errors are {\"error\":\"...\"} with \"key\" naming the field at fault."},
 "servers": [{"url": "/"}],
 "security": [{"bearer": []}, {"session": []}],
 "paths": {
  "/health": {"get": op("Liveness and recorder state (public)", {"200": resp("ok", {"$ref": "#/components/schemas/Health"})}, security=[], operationId="getHealth")},
  "/api/status": {"get": op("Recorder, storage and system status", dict(common, **{"200": resp("status", {"$ref": "#/components/schemas/Status"}), "400": e("unexpected query parameter")}), operationId="getStatus")},
  "/api/events": {"get": op("Server-sent events: `event: status` with the status object, at once, on change and at least every 2 s (an endless stream)",
      dict(common, **{"200": resp("event stream", {"type": "string"}, ct="text/event-stream"), "503": busy("too many event streams")}), operationId="getEvents")},
  "/api/live.mjpeg": {"get": op("Live view: multipart/x-mixed-replace JPEG parts with X-Timestamp and X-Seq (an endless stream); a slow client skips to the newest frame",
      dict(common, **{"200": resp("the stream", {"type": "string", "format": "binary"}, ct="multipart/x-mixed-replace"), "409": e("the recording is H.264: watch /api/live.mp4"), "503": busy("max_live_clients viewers already")}), operationId="getLive")},
  "/api/live.mp4": {"get": op("Live view of an H.264 recording: fragmented MP4 (an endless stream) for Media Source Extensions: ftyp+moov (avc1/avcC), then prft+moof+mdat per picture, starting at the newest IDR; a slow client skips ahead to the next IDR; prft carries the capture time",
      dict(common, **{"200": resp("the stream", {"type": "string", "format": "binary"}, ct="video/mp4"), "409": e("the recording is Motion JPEG: watch /api/live.mjpeg"), "503": busy("max_live_clients viewers already (shared with /api/live.mjpeg)")}), operationId="getLiveMp4")},
  "/api/snapshot.jpg": {"get": op("The newest frame as a JPEG (H.264 recordings: the newest picture, decoded from its IDR)", dict(common, **{"200": jpeg("the frame"), "400": e("unexpected query parameter"), "500": e("the H.264 picture could not be decoded"), "503": busy("no frame within 3 s (recording stopped?)")}), operationId="getSnapshot")},
  "/api/segments": {"get": op("Segments overlapping a UTC range (both ends optional; times outside 1970..2200 are clamped), and the gaps of more than 2 s between them",
      dict(common, **{"200": resp("segments", {"type": "object", "required": ["segments", "gaps"], "properties": {"segments": {"type": "array", "items": {"$ref": "#/components/schemas/Segment"}}, "gaps": {"type": "array", "items": {"$ref": "#/components/schemas/RangeOut"}}}}),
                      "400": e("bad time or unknown parameter"), "500": e("the segment directory could not be read")}),
      parameters=[time_q("from", "start of the range"), time_q("to", "end of the range")], operationId="getSegments")},
  "/api/segments/{id}/download": {"get": op("A segment's CRC-valid frames as stored: an H.264 Annex-B stream (SPS/PPS before every IDR) or a concatenated-JPEG stream (plays in VLC/mpv/ffplay)",
      dict(common, **{"200": {"description": "the frames", "content": {"video/h264": {"schema": {"type": "string", "format": "binary"}}, "video/x-motion-jpeg": {"schema": {"type": "string", "format": "binary"}}},
                              "headers": {"Content-Disposition": {"description": "attachment; filename=\"blackbox_START_END.h264\" (or .mjpeg)", "schema": {"type": "string"}}}},
                      "400": e("the id is not a decimal number"), "404": e("no such segment"), "500": e("the segment could not be read")}),
      parameters=[{"name": "id", "in": "path", "required": True, "description": "the segment id (its first frame's seq)", "schema": {"type": "integer", "minimum": 0, "maximum": 9223372036854775807}}], operationId="downloadSegment")},
  "/api/segments/{id}/thumb.jpg": {"get": op("A segment's first picture, at most 320 px wide, as a JPEG (H.264 footage: decoded from its IDR); never changes, so browsers keep it a week",
      dict(common, **{"200": resp("the picture", {"type": "string", "format": "binary"}, ct="image/jpeg"), "400": e("the id is not a decimal number"), "404": e("no such segment, or it has no frame"),
                      "500": e("the segment could not be read or decoded")}),
      parameters=[{"name": "id", "in": "path", "required": True, "description": "the segment id (its first frame's seq)", "schema": {"type": "integer", "minimum": 0, "maximum": 9223372036854775807}}], operationId="segmentThumb")},
  "/api/frame": {"get": op("The stored frame nearest a time `at` (within 5 s), or frame number `seq` (which wins when both are given), or without either the newest stored frame, as a JPEG (H.264 footage: decoded from the IDR before it); for the player and thumbnails",
      dict(common, **{"200": jpeg("the frame", {"X-Prev-Seq": {"description": "the previous stored frame (absent at the start)", "schema": {"type": "integer"}}, "X-Next-Seq": {"description": "the next stored frame (absent at the end)", "schema": {"type": "integer"}}}),
                      "400": e("neither or both of at/seq, or a bad value"), "404": e("nothing stored there (or a picture it needs is damaged)"), "500": e("the footage could not be read or decoded")}),
      parameters=[time_q("at", "the time wanted"), {"name": "seq", "in": "query", "required": False, "description": "a frame's sequence number", "schema": {"type": "integer", "minimum": 0, "maximum": 9223372036854775807}}], operationId="getFrame")},
  "/api/recording": {
     "get": op("Whether recording is on", dict(common, **{"200": resp("state", {"$ref": "#/components/schemas/Recording"}), "400": e("unexpected query parameter")}), operationId="getRecording"),
     "put": op("Start or stop recording (stopping closes the camera); answers once the recorder got there (or after 3 s)",
        dict(mut, **{"200": resp("the new state", {"$ref": "#/components/schemas/Recording"})}),
        requestBody=body({"type": "object", "required": ["recording"], "properties": {"recording": {"type": "boolean"}}, "additionalProperties": False}), operationId="putRecording")},
  "/api/protected": {"get": op("Protected UTC ranges (kept by retention)", dict(common, **{"200": resp("ranges", {"$ref": "#/components/schemas/Ranges"}), "400": e("unexpected query parameter")}), operationId="getProtected")},
  "/api/protect": {"post": op("Protect a UTC range from retention (the order of from and to does not matter)", dict(mut, **{"200": resp("the protected ranges now", {"$ref": "#/components/schemas/Ranges"}), "409": e("more than 4096 separate protected ranges: unprotect some first"), "500": e("the ranges could not be saved"), "503": busy("the recorder did not answer in time")}),
      requestBody=body({"$ref": "#/components/schemas/Range"}), operationId="protect")},
  "/api/unprotect": {"post": op("Remove protection from a UTC range (ranges sticking out are trimmed)", dict(mut, **{"200": resp("the protected ranges now", {"$ref": "#/components/schemas/Ranges"}), "500": e("the ranges could not be saved"), "503": busy("the recorder did not answer in time")}),
      requestBody=body({"$ref": "#/components/schemas/Range"}), operationId="unprotect")},
  "/api/save-last": {"post": op("Protect the last N seconds (default 60)", dict(mut, **{"200": resp("the range protected", {"$ref": "#/components/schemas/RangeOut"}), "409": e("more than 4096 separate protected ranges: unprotect some first"), "500": e("the ranges could not be saved"), "503": busy("the recorder did not answer in time")}),
      requestBody=body({"type": "object", "properties": {"seconds": {"type": "integer", "minimum": 1, "maximum": 3600}}, "additionalProperties": False}, required=True), operationId="saveLast")},
  "/api/parking": {
     "get": op("Parking mode: on or off, how it was entered, and the motion analysis's counters", dict(common, **{"200": resp("the state", {"$ref": "#/components/schemas/Parking"}), "400": e("unexpected query parameter")}), operationId="getParking"),
     "post": op("Enter or leave parking mode (while parked, motion on the picture and bumps make events; driving again leaves it)",
        dict(mut, **{"200": resp("the state", {"$ref": "#/components/schemas/Parking"})}),
        requestBody=body({"type": "object", "required": ["on"], "properties": {"on": {"type": "boolean"}}, "additionalProperties": False}), operationId="setParking")},
  "/api/incidents": {
     "get": op("Events (impacts, Save incident, motion and bumps while parked), newest first, whose trigger lies in a UTC range; each names the MP4 export of exactly its window",
        dict(common, **{"200": resp("events", {"type": "object", "required": ["incidents"], "properties": {"incidents": {"type": "array", "items": {"$ref": "#/components/schemas/Incident"}}}}),
                        "400": e("bad time, kind or unknown parameter"), "503": e("events are not available (DATA/events could not be opened)")}),
        parameters=[time_q("from", "earliest trigger"), time_q("to", "trigger before this"), {"name": "kind", "in": "query", "required": False, "schema": {"type": "string", "enum": ["impact", "button", "motion", "bump"]}}], operationId="listIncidents"),
     "post": op("Save incident: an event now that protects event_pre_s of footage before (counted in footage) and event_post_s after; a press inside the last event's window extends it. Answers once the event is on disk",
        dict(mut, **{"201": resp("the event", {"$ref": "#/components/schemas/Incident"}), "500": e("the event could not be written"), "503": e("events are not available")}),
        requestBody=body({"type": "object", "properties": {"kind": {"type": "string", "enum": ["button"]}}, "additionalProperties": False}, required=True), operationId="saveIncident")},
  "/api/incidents/{id}": {"get": op("One event", dict(common, **{"200": resp("the event", {"$ref": "#/components/schemas/Incident"}), "400": e("the id is not a decimal number"), "404": e("no such event"), "503": e("events are not available")}),
      parameters=[inc_id], operationId="getIncident")},
  "/api/incidents/{id}/unlock": {"post": op("Unlock an event: its window is no longer protected (except where another locked event covers it)",
      dict(mut, **{"200": resp("the event", {"$ref": "#/components/schemas/Incident"}), "404": e("no such event"), "500": e("the journal could not be written"), "503": e("events are not available")}),
      parameters=[inc_id], operationId="unlockIncident")},
  "/api/incidents/{id}/thumb.jpg": {"get": op("The picture at the event's trigger (kept once made, so it outlives the footage)",
      dict(common, **{"200": jpeg("the picture"), "400": e("the id is not a decimal number"), "404": e("no such event, or no frame stored near its trigger"), "500": e("the footage could not be read or decoded"), "503": e("events are not available")}),
      parameters=[inc_id], operationId="incidentThumb")},
  "/api/config": {
     "get": op("The configuration as saved", dict(common, **{"200": resp("the config", {"$ref": "#/components/schemas/Config"}), "400": e("unexpected query parameter")}), operationId="getConfig"),
     "put": op("Change any subset of the configuration: validated (400 naming the key, nothing saved), saved atomically, applied live or by restarting the recorder",
        dict(mut, **{"200": resp("saved and applied", {"type": "object", "required": ["config", "applied", "next_start"], "properties": {
             "config": {"$ref": "#/components/schemas/Config"}, "applied": {"type": "string", "enum": ["live", "restarted"]},
             "next_start": {"type": "array", "items": {"type": "string", "enum": ["listen", "port", "gsensor_device", "gps_device", "audio_device"]}, "description": "changed keys that apply at the next start"}}}),
             "500": e("the config could not be saved"), "503": busy("the recorder did not answer in time")}),
        requestBody=body({"$ref": "#/components/schemas/ConfigPatch"}), operationId="putConfig")},
  "/api/time": {
     "get": op("The device's clock", dict(common, **{"200": resp("now", {"$ref": "#/components/schemas/Time"}), "400": e("unexpected query parameter")}), operationId="getTime"),
     "put": op("Set the system clock (the Pi has no RTC) to a time in 2020..2200 (400 otherwise); 409 when this process may not",
        dict(mut, **{"200": resp("the clock after setting", {"$ref": "#/components/schemas/Time"}), "409": e("the process may not set the clock (no CAP_SYS_TIME) or setting is disabled")}),
        requestBody=body({"type": "object", "properties": {"unix_ms": {"type": "integer", "minimum": 1577836800000, "maximum": 7258118400000}, "utc": time_s}, "additionalProperties": False, "description": "exactly one of unix_ms or utc"}), operationId="putTime")},
  "/api/pairing": {"post": op("A one-time pairing link for another phone (GET /pair?code=... signs it in once, within 10 minutes), with its QR code as SVG; the link uses the Host this request came by",
      dict(mut, **{"200": resp("the link", {"type": "object", "required": ["url", "expires", "qr_svg"], "properties": {
          "url": {"type": "string"}, "expires": time_s, "qr_svg": {"type": "string", "description": "the QR code of url, an SVG document"}}}),
          "500": e("no random numbers")}), operationId="newPairing")},
  "/api/camera/modes": {"get": op("The recording camera's sizes and frame rates (what `blackbox cameras` lists for its node, usable formats only), largest first; sources that take any size (the test pattern, files) list common ones with any_size true",
      dict(common, **{"200": resp("the modes", {"type": "object", "required": ["device", "card", "any_size", "modes"], "properties": {
          "device": {"type": "string", "nullable": True}, "card": {"type": "string", "nullable": True}, "any_size": {"type": "boolean"},
          "modes": {"type": "array", "items": {"type": "object", "required": ["width", "height", "fps", "formats"], "properties": {
              "width": {"type": "integer", "minimum": 1}, "height": {"type": "integer", "minimum": 1},
              "fps": {"type": "array", "items": {"type": "integer", "minimum": 1}, "description": "frame rates offered, highest first"},
              "formats": {"type": "array", "items": {"type": "string"}, "description": "FOURCCs with this size"}}}}}}),
          "400": e("unexpected query parameter"), "503": e("the camera could not be queried (gone, busy)")}), operationId="getCameraModes")},
  "/api/device/credentials": {
     "get": op("The device's Wi-Fi name and country as the access point runs them, the home Wi-Fi's name and state (appliance; null elsewhere) and which settings wait for the next start; never a password",
        dict(common, **{"200": resp("the settings", {"type": "object", "required": ["appliance", "wifi_ssid", "wifi_country", "home_wifi_ssid", "home_wifi", "pending", "applies"], "properties": {
            "appliance": {"type": "boolean"}, "wifi_ssid": {"type": "string", "nullable": True}, "wifi_country": {"type": "string", "nullable": True},
            "home_wifi_ssid": {"type": "string", "nullable": True, "description": "the home Wi-Fi joined when in range (null: none set)"},
            "home_wifi": {"type": "string", "nullable": True, "description": "\"away\", \"joining\" or \"home FREQ_MHZ ADDRESS\""},
            "pending": {"type": "array", "items": {"type": "string", "enum": ["wifi_ssid", "wifi_passphrase", "wifi_country", "dashboard_password", "home_wifi_ssid", "home_wifi_passphrase"]}},
            "applies": {"type": "string"}}}), "400": e("unexpected query parameter")}), operationId="getCredentials"),
     "put": op("Change the Wi-Fi name (1-32), Wi-Fi password (8-63), country (two letters or empty), dashboard password (8-64 printable ASCII), home Wi-Fi name (0-32; empty: none) or password (8-63): on the appliance saved for blackbox.txt at the next start; elsewhere only the dashboard password (DATA/secret, next start), 409 for the rest",
        dict(mut, **{"200": resp("saved", {"type": "object", "required": ["saved", "applies"], "properties": {"saved": {"type": "array", "items": {"type": "string"}}, "applies": {"type": "string"}}}),
            "409": e("not the appliance: its Wi-Fi is the computer's"), "500": e("could not be saved")}),
        requestBody=body({"type": "object", "additionalProperties": False, "minProperties": 1, "properties": {
            "wifi_ssid": {"type": "string", "minLength": 1, "maxLength": 32, "pattern": PLAIN}, "wifi_passphrase": {"type": "string", "minLength": 8, "maxLength": 63, "pattern": PLAIN},
            "wifi_country": {"type": "string", "pattern": "^([A-Za-z]{2})?$"}, "dashboard_password": {"type": "string", "minLength": 8, "maxLength": 64, "pattern": PLAIN},
            "home_wifi_ssid": {"type": "string", "maxLength": 32, "pattern": "^([!-~]([ -~]*[!-~])?)?$"}, "home_wifi_passphrase": {"type": "string", "minLength": 8, "maxLength": 63, "pattern": PLAIN}}}), operationId="putCredentials")},
  "/api/device/reboot": {"post": op("Reboot the appliance cleanly (init stops the recorder first), a second after answering; 409 elsewhere",
      dict(mut, **{"202": resp("rebooting", {"type": "object", "required": ["rebooting"], "properties": {"rebooting": {"type": "boolean"}}}), "409": e("not the appliance"), "500": e("could not start the reboot")}),
      requestBody=body({"type": "object", "required": ["confirm"], "additionalProperties": False, "properties": {"confirm": {"type": "string", "enum": ["reboot"]}}}), operationId="reboot")},
  "/api/storage/erase": {"post": op("Erase every recording, protected range, event and thumbnail (\"format the card\"); recording goes on into the empty store. Sequence numbers go on from where they were",
      dict(mut, **{"200": resp("erased", {"type": "object", "required": ["erased"], "properties": {"erased": {"type": "boolean"}}}), "500": e("the erase failed part way (what was deleted stays deleted)"), "503": busy("the recorder has not erased yet")}),
      requestBody=body({"type": "object", "required": ["confirm"], "additionalProperties": False, "properties": {"confirm": {"type": "string", "enum": ["erase"]}}}), operationId="eraseStorage")},
  "/api/alerts": {
     "get": op("Alert channels (never the mail password: only whether one is saved) and the outbox's state",
        dict(common, **{"200": resp("channels and state", {"type": "object", "required": ["settings", "status"], "properties": {
            "settings": {"$ref": "#/components/schemas/AlertSettings"}, "status": {"$ref": "#/components/schemas/AlertState"}}}),
            "400": e("unexpected query parameter"), "503": e("alerts are not running in this process")}), operationId="getAlerts"),
     "put": op("Change alert channels (docs/CONFIG.md, Alerts): checked as a whole, nothing saved unless all are good; an empty smtp_password keeps the saved one (write-only)",
        dict(mut, **{"200": resp("saved and applied", {"$ref": "#/components/schemas/AlertSettings"}),
            "500": e("the settings could not be saved"), "503": e("alerts are not running in this process")}),
        requestBody=body(AlertPatch), operationId="putAlerts")},
  "/api/alerts/test": {"post": op("Send a test alert now on one channel (not through the outbox) and say what happened",
      dict(mut, **{"200": resp("what worked, or what failed", {"type": "object", "required": ["ok", "message"], "properties": {"ok": {"type": "boolean"}, "message": {"type": "string"}}}),
                   "500": e("the test failed unexpectedly"), "503": e("alerts are not running in this process")}),
      requestBody=body({"type": "object", "required": ["channel"], "additionalProperties": False, "properties": {"channel": {"type": "string", "enum": ["webhook", "email"]}}}),
      operationId="testAlert")},
  "/api/offload": {
     "get": op("Offload settings (never the secret key: only whether one is saved) and state",
        dict(common, **{"200": resp("settings and state", {"type": "object", "required": ["settings", "status"], "properties": {
            "settings": {"$ref": "#/components/schemas/OffloadSettings"}, "status": {"$ref": "#/components/schemas/OffloadState"}}}),
            "400": e("unexpected query parameter"), "503": e("offload is not running in this process")}), operationId="getOffload"),
     "put": op("Change offload settings (docs/CONFIG.md, Offload): checked as a whole, nothing saved unless all are good; an empty s3_secret_key keeps the saved one (write-only)",
        dict(mut, **{"200": resp("saved and applied (the upload in progress stops and starts over)", {"$ref": "#/components/schemas/OffloadSettings"}),
            "500": e("the settings could not be saved"), "503": e("offload is not running in this process")}),
        requestBody=body(OffloadPatch), operationId="putOffload")},
  "/api/offload/run": {"post": op("Offload now: the offload thread stops waiting (after a failure's pause too)",
      dict(mut, **{"202": resp("started", {"type": "object", "required": ["started"], "properties": {"started": {"type": "boolean"}}}), "503": e("offload is not running in this process")}),
      operationId="runOffload")},
  "/api/offload/test": {"post": op("Try the target now: the bucket reached with the key, a small test object (PREFIX/DEVICE/.blackbox-test) written with Content-MD5 and read back",
      dict(mut, **{"200": resp("what worked, or what failed", {"type": "object", "required": ["ok", "message"], "properties": {"ok": {"type": "boolean"}, "message": {"type": "string"}}}),
                   "500": e("the test failed unexpectedly"), "503": e("offload is not running in this process")}),
      operationId="testOffload")},
  "/api/export.mp4": {"get": op("MP4 of the frames captured in from (included) .. to (excluded), built on the fly (docs/EXPORT.md); Range requests for seeking and resuming",
      dict(common, **{"200": resp("the whole file", {"type": "string", "format": "binary"}, ct="video/mp4", headers=mp4_h),
                      "206": resp("the requested byte range", {"type": "string", "format": "binary"}, ct="video/mp4", headers=mp4_h),
                      "400": e("a bad time or an unknown parameter"), "404": e("no footage in the range (also when from is not before to)"),
                      "416": resp("the range is not one satisfiable byte range (beyond the end, several ranges, malformed)"), "500": e("the footage could not be read"), **export_limits}),
      parameters=[time_q("from", "start, included (default: the first frame)"), time_q("to", "end, excluded (default: after the last frame)")], operationId="exportMp4")},
  "/api/export.gpx": {"get": op("The GPS track (one point a second, README \"GPS\") from .. to as GPX 1.1: ele, time, sat, and speed (m/s) and course in Garmin's TrackPointExtension v2; a new trkseg after a gap over 10 s; no points (also when from is after to): a GPX with an empty trk",
      dict(common, **{"200": resp("the track", {"type": "string"}, ct="application/gpx+xml"),
                      "400": e("a bad time or an unknown parameter"), "413": e("more than 200000 points: ask for a shorter range"), "500": e("the track could not be read")}),
      parameters=[time_q("from", "start, included (default: the first point)"), time_q("to", "end, included (default: the last point)")], operationId="exportGpx")},
  "/api/export.json": {"get": op("What /api/export.mp4 would send for the same range: size, frames, duration, file name",
      dict(common, **{"200": resp("the export's figures", {"type": "object", "required": ["bytes", "frames", "duration_s", "start", "end", "file_name"], "properties": {
                          "bytes": {"type": "integer", "minimum": 0}, "frames": {"type": "integer", "minimum": 0}, "duration_s": {"type": "number", "minimum": 0},
                          "start": time_s, "end": time_s, "skipped": {"type": "integer", "minimum": 0}, "file_name": {"type": "string"},
                          "codec": {"type": "string", "enum": ["h264", "mjpeg"], "description": "the video track's codec"},
                          "codecs": {"type": "string", "description": "RFC 6381 codec string of the video track, e.g. avc1.42C01F"},
                          "other_settings": {"type": "integer", "minimum": 0, "description": "frames in the range recorded with another codec or other H.264 parameters, left out"},
                          "clock": {"type": "array", "items": {"type": "array", "items": {"type": "number"}, "minItems": 2, "maxItems": 2}, "description": "with clock=1: [presentation time s, UTC ms] at each UTC second"}}}),
                      "400": e("a bad time or an unknown parameter"), "404": e("no footage in the range (also when from is not before to)"), "500": e("the footage could not be read"), **export_limits}),
      parameters=[time_q("from", "start, included"), time_q("to", "end, excluded"),
                  {"name": "clock", "in": "query", "required": False, "schema": {"type": "string", "enum": ["1"]}, "description": "1: add the clock points the player maps its time with"}], operationId="exportInfo")},
  "/api/segments/{id}/export.mp4": {"get": op("One segment as MP4 (same headers and Range rules as /api/export.mp4)",
      dict(common, **{"200": resp("the whole file", {"type": "string", "format": "binary"}, ct="video/mp4", headers=mp4_h),
                      "206": resp("the requested byte range", {"type": "string", "format": "binary"}, ct="video/mp4", headers=mp4_h),
                      "400": e("the id is not a decimal number"), "404": e("no such segment"), "416": resp("the range is not one satisfiable byte range (beyond the end, several ranges, malformed)"),
                      "500": e("the segment could not be read"), **export_limits}),
      parameters=[{"name": "id", "in": "path", "required": True, "description": "the segment id (its first frame's seq)", "schema": {"type": "integer", "minimum": 0, "maximum": 9223372036854775807}}],
      operationId="exportSegmentMp4")},
  "/api/controls": {"get": op("The camera's V4L2 controls (empty for cameras without any: synthetic, file); cached for 1 s",
      dict(common, **{"200": resp("the controls", {"type": "object", "required": ["controls"], "properties": {"controls": {"type": "array", "items": {"$ref": "#/components/schemas/CameraControl"}}}}),
                      "503": busy("the camera is gone or not answering")}), operationId="listControls")},
  "/api/controls/{id}": {"put": op("Set one control (validated against its type, range, step and menu; never interrupts recording)",
      dict(mut, **{"200": resp("the control after setting", {"$ref": "#/components/schemas/CameraControl"}), "404": e("no control with that id"),
                   "409": e("the control is busy (grabbed by the driver)"), "503": busy("the camera is gone or not answering")}),
      parameters=[ctl_id], requestBody=body({"type": "object", "required": ["value"], "properties": {"value": {"anyOf": [{"type": "integer"}, {"type": "boolean"}, {"type": "string"}]}}, "additionalProperties": False}),
      operationId="setControl")},
  "/api/controls/{id}/reset": {"post": op("Set one control back to its default",
      dict(mut, **{"200": resp("the control after the reset", {"$ref": "#/components/schemas/CameraControl"}), "404": e("no control with that id"),
                   "409": e("the control is busy (grabbed by the driver)"), "503": busy("the camera is gone or not answering")}),
      parameters=[ctl_id], operationId="resetControl")},
  "/api/docs": {"get": op("This document as a page (routes, parameters, schemas, responses, 'Try it' with the session); without a session, a redirect to /login", {"200": resp("the page", {"type": "string"}, ct="text/html"), "303": resp("no session: to /login", None, ct="text/html"), "421": common["421"], "429": common["429"]}, operationId="getDocs")},
  "/api/openapi.json": {"get": op("This document", dict(common, **{"200": resp("OpenAPI 3", {"type": "object"})}), operationId="getOpenapi")},
 },
 "components": {
  "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "description": "the device secret (DATA/secret)"},
                      "session": {"type": "apiKey", "in": "cookie", "name": "bb_session", "description": "set by POST /login"}},
  "schemas": {"Parking": {"type": "object", "required": ["on", "auto", "since", "after_min", "analysed", "motions", "errors"],
     "properties": {"on": {"type": "boolean"}, "auto": {"type": "boolean", "description": "the last change was automatic (not the owner)"},
       "since": {"type": "string", "format": "date-time", "nullable": True, "description": "when it last changed"}, "after_min": {"type": "integer", "minimum": 0},
       "analysed": {"type": "integer", "minimum": 0, "description": "pictures analysed for motion"}, "motions": {"type": "integer", "minimum": 0},
       "errors": {"type": "integer", "minimum": 0, "description": "pictures that could not be analysed"}}},
    "Incident": {"type": "object", "required": ["id", "kind", "time", "peak_g", "from", "to", "locked", "repeats", "thumb", "mp4"],
     "properties": {"id": {"type": "integer", "minimum": 1}, "kind": {"type": "string", "enum": ["impact", "button", "motion", "bump"]}, "time": time_s,
       "peak_g": {"type": "number", "nullable": True, "description": "highest acceleration (impacts and bumps)"}, "from": time_s, "to": time_s,
       "locked": {"type": "boolean", "description": "its window is protected"}, "repeats": {"type": "integer", "minimum": 0, "description": "triggers folded into it"},
       "thumb": {"type": "string", "description": "its thumbnail's path"}, "mp4": {"type": "string", "description": "the path of the MP4 export of exactly its window"}}},
    "Error": {"type": "object", "required": ["error"], "properties": {"error": {"type": "string"}, "key": {"type": "string", "description": "the field or parameter at fault"}}},
              "Status": Status, "Health": Health, "Segment": Segment, "Range": Range, "RangeOut": RangeOut, "Ranges": Ranges,
              "Recording": Recording, "Time": Time, "Config": Config, "ConfigPatch": ConfigPatch, "CameraControl": CameraControl,
              "OffloadSettings": OffloadSettings, "OffloadState": OffloadState,
              "AlertSettings": AlertSettings, "AlertState": AlertState}}}
# `?camera=NAME` (src/web/percam.rs): every route about one camera takes it; an unknown camera
# is 404 with key `camera`. Device-wide routes (config, time, incidents, offload, ...) don't.
doc["components"]["parameters"] = {"Camera": {'name': 'camera', 'in': 'query', 'required': False, 'description': 'Which camera (config `cameras`): its name. Without it, the first camera (`front`) answers, as with one camera.', 'schema': {'type': 'string', 'pattern': '^[a-z0-9_-]{1,16}$'}}}
per_camera = ["/api/status", "/api/events", "/api/live.mjpeg", "/api/live.mp4", "/api/snapshot.jpg", "/api/segments",
              "/api/segments/{id}/download", "/api/segments/{id}/thumb.jpg", "/api/frame", "/api/recording", "/api/protected", "/api/protect", "/api/unprotect",
              "/api/save-last", "/api/camera/modes", "/api/export.mp4", "/api/export.json", "/api/segments/{id}/export.mp4",
              "/api/controls", "/api/controls/{id}", "/api/controls/{id}/reset"]
no_camera = "no camera of that name (`camera`)"
for path in per_camera:
    for o in doc["paths"][path].values():
        o.setdefault("parameters", []).append({"$ref": "#/components/parameters/Camera"})
        r = o["responses"].get("404")
        if r is None:
            o["responses"]["404"] = e(no_camera)
        else:
            o["responses"]["404"] = dict(r, description=f"{r['description']}; or {no_camera}")
open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src", "web", "openapi.json"), "w").write(json.dumps(doc, indent=1) + "\n")
